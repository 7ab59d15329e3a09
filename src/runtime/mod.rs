//! ONNX Runtime: discovery, loading, execution providers and sessions.
//!
//! ORT is loaded dynamically (the `ort` crate's `load-dynamic`), so one faceperf binary runs on
//! whatever ORT the user has (1.30 or newer: the crate is built against API 30). ORT allows one
//! environment per process; [`init`] creates it once and every later call returns the same one.

pub mod binding;
pub mod deps;
pub mod discover;
pub mod ep;
pub mod gpu_monitor;
pub mod session;

use std::ffi::{c_char, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

pub use discover::{discover, Discovery, INSTALL_HINT};
pub use ep::EpConfig;
pub use session::{SessionConfig, SessionRunner};

/// Oldest ORT minor version this build can drive (ort feature `api-30`).
pub const MIN_ORT_MINOR: u32 = 30;

/// The loaded runtime.
#[derive(Debug, Serialize)]
pub struct Runtime {
    /// Path of the library in use.
    pub library: PathBuf,
    /// The discovery step that found it.
    pub source: String,
    /// ORT's version string, e.g. `1.32.0`.
    pub version: String,
    /// Execution providers the library offers, e.g. `CPUExecutionProvider`.
    pub providers: Vec<String>,
    #[serde(skip)]
    env: ort::environment::Environment,
}

impl Runtime {
    /// The ORT environment sessions are created in.
    pub fn environment(&self) -> &ort::environment::Environment {
        &self.env
    }

    /// True when the library offers the provider (`CUDAExecutionProvider`, …).
    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.iter().any(|p| p == name)
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

#[repr(C)]
struct OrtApiBase {
    get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
    get_version_string: unsafe extern "C" fn() -> *const c_char,
}

/// Reads the version of an ORT library without handing it to `ort` (which would panic later on an
/// incompatible one).
pub fn library_version(path: &Path) -> Result<String> {
    // SAFETY: loading ORT runs only its static initialisers; the symbol has the documented C ABI.
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| anyhow!("cannot load {}: {e}", path.display()))?;
        let base: libloading::Symbol<unsafe extern "C" fn() -> *const OrtApiBase> = lib
            .get(b"OrtGetApiBase")
            .map_err(|_| anyhow!("{} is not an ONNX Runtime library (no OrtGetApiBase)", path.display()))?;
        let base = base();
        if base.is_null() {
            bail!("{}: OrtGetApiBase returned null", path.display());
        }
        let v = CStr::from_ptr(((*base).get_version_string)()).to_string_lossy().into_owned();
        // Keep the library loaded: ORT does not support being unloaded and reloaded in a process.
        std::mem::forget(lib);
        Ok(v)
    }
}

fn minor_of(version: &str) -> u32 {
    version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
}

fn available_providers() -> Result<Vec<String>> {
    let api = ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut n: std::ffi::c_int = 0;
    // SAFETY: documented ORT C API; the list is released with the matching call.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut list, &mut n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            bail!("ORT could not list its execution providers");
        }
        let names = (0..n as usize).map(|i| CStr::from_ptr(*list.add(i)).to_string_lossy().into_owned()).collect();
        let _ = (api.ReleaseAvailableProviders)(list, n);
        Ok(names)
    }
}

/// Loads ORT (once per process) from `explicit` or the discovery order, and creates the environment.
pub fn init(explicit: Option<&Path>) -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        if let Some(p) = explicit {
            if p != rt.library {
                bail!(
                    "ONNX Runtime is already loaded from {}; cannot switch to {} in the same process",
                    rt.library.display(),
                    p.display()
                );
            }
        }
        return Ok(rt);
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    // A library the user named explicitly must be used or refused, never silently replaced.
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("--ort-lib {} does not exist ({INSTALL_HINT})", p.display());
        }
    } else if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        if !p.is_empty() && !Path::new(&p).is_file() {
            bail!("ORT_DYLIB_PATH={p} does not exist: unset it or point it at libonnxruntime ({INSTALL_HINT})");
        }
    }
    let found = discover(explicit);
    let (library, source) =
        found.chosen.clone().ok_or_else(|| anyhow!("ONNX Runtime library not found: {INSTALL_HINT}"))?;
    let version = library_version(&library)?;
    if minor_of(&version) < MIN_ORT_MINOR {
        bail!(
            "{} is ONNX Runtime {version}; faceperf needs 1.{MIN_ORT_MINOR} or newer ({INSTALL_HINT})",
            library.display()
        );
    }
    let env = ort::init_from(&library)
        .map_err(|e| anyhow!("cannot load ONNX Runtime: {e}"))?
        .with_name("faceperf")
        .build()
        .map_err(|e| anyhow!("cannot create the ONNX Runtime environment: {e}"))?;
    let providers = available_providers()?;
    let rt = Runtime { library, source, version, providers, env };
    Ok(RUNTIME.get_or_init(|| rt))
}

/// The runtime if it was already initialised.
pub fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions() {
        assert_eq!(minor_of("1.32.0"), 32);
        assert_eq!(minor_of("garbage"), 0);
    }

    #[test]
    fn non_ort_library_is_a_clear_error() {
        let e = library_version(Path::new("/nonexistent.so")).unwrap_err().to_string();
        assert!(e.contains("cannot load /nonexistent.so"), "{e}");
    }
}
