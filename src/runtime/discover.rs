//! Finding the ONNX Runtime shared library.
//!
//! Order (each step is recorded so `doctor` can show the route taken):
//! 1. `--ort-lib PATH`, then the `ORT_DYLIB_PATH` environment variable;
//! 2. the `onnxruntime` package of the active Python (`onnxruntime`, `onnxruntime-gpu` and
//!    `onnxruntime-silicon` all install as `onnxruntime` and ship `capi/libonnxruntime*`);
//! 3. a project-local install made by `ci/setup-ort.sh` (`.ort/site/onnxruntime/capi`), searched
//!    from the current folder upwards and from the executable's folder upwards, or `FACEPERF_ORT_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

/// One step of the search, as reported by `doctor`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    /// What was tried, e.g. `ORT_DYLIB_PATH`.
    pub source: String,
    /// The library found there, if any.
    pub found: Option<PathBuf>,
    /// Why this step gave nothing, or what it found.
    pub note: String,
}

/// The outcome of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub steps: Vec<Step>,
    /// The first library found, with the name of the step that found it.
    pub chosen: Option<(PathBuf, String)>,
}

/// The fix printed whenever no library is found.
pub const INSTALL_HINT: &str =
    "run `bash ci/setup-ort.sh` (installs the onnxruntime wheel into .ort/), `pip install onnxruntime`, or pass --ort-lib PATH / set ORT_DYLIB_PATH";

/// Library file names ORT ships under, per platform.
fn is_ort_library(name: &str) -> bool {
    (name.starts_with("libonnxruntime.so")
        || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
        || name == "onnxruntime.dll")
        && !name.contains("providers")
}

/// The ORT library inside an `onnxruntime` Python package folder (`.../onnxruntime`).
pub fn library_in_package(pkg: &Path) -> Option<PathBuf> {
    let capi = pkg.join("capi");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| is_ort_library(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    // Prefer the fully versioned name (the real file) over symlinks.
    found.sort_by_key(|p| std::cmp::Reverse(p.file_name().map(|n| n.len()).unwrap_or(0)));
    found.into_iter().next()
}

/// Python interpreters to ask, most specific first.
fn python_candidates() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var("FACEPERF_PYTHON") {
        v.push(p);
    }
    if let Ok(venv) = std::env::var("VIRTUAL_ENV") {
        v.push(Path::new(&venv).join("bin/python").display().to_string());
    }
    v.push("python3".into());
    v.push("python".into());
    v
}

/// Asks `python` where its `onnxruntime` package lives, without importing it.
fn python_package_dir(python: &str) -> Result<Option<PathBuf>, String> {
    let script = "import importlib.util, os\ns = importlib.util.find_spec('onnxruntime')\nprint(os.path.dirname(s.origin) if s and s.origin else '')";
    let out = Command::new(python).args(["-c", script]).output().map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{python} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((!dir.is_empty()).then(|| PathBuf::from(dir)))
}

/// Folders to look for a project-local `.ort/` in.
fn project_local_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(d) = std::env::var("FACEPERF_ORT_DIR") {
        roots.push(PathBuf::from(d));
    }
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        starts.push(dir);
    }
    for s in starts {
        for a in s.ancestors() {
            roots.push(a.join(".ort"));
        }
    }
    roots.dedup();
    roots
}

/// Runs the search. `explicit` is `--ort-lib`.
pub fn discover(explicit: Option<&Path>) -> Discovery {
    let mut steps = Vec::new();
    let mut chosen = None;
    let mut record = |steps: &mut Vec<Step>, source: &str, found: Option<PathBuf>, note: String| {
        if chosen.is_none() {
            if let Some(f) = &found {
                chosen = Some((f.clone(), source.to_string()));
            }
        }
        steps.push(Step { source: source.into(), found, note });
    };

    match explicit {
        Some(p) if p.is_file() => {
            record(&mut steps, "--ort-lib", Some(p.to_path_buf()), "given on the command line".into())
        }
        Some(p) => record(&mut steps, "--ort-lib", None, format!("{} does not exist", p.display())),
        None => record(&mut steps, "--ort-lib", None, "not given".into()),
    }
    match std::env::var("ORT_DYLIB_PATH") {
        Ok(p) if !p.is_empty() && Path::new(&p).is_file() => {
            record(&mut steps, "ORT_DYLIB_PATH", Some(PathBuf::from(&p)), "from the environment".into())
        }
        Ok(p) if !p.is_empty() => record(&mut steps, "ORT_DYLIB_PATH", None, format!("{p} does not exist")),
        _ => record(&mut steps, "ORT_DYLIB_PATH", None, "not set".into()),
    }
    let mut python_notes = Vec::new();
    let mut python_found = None;
    for py in python_candidates() {
        match python_package_dir(&py) {
            Ok(Some(dir)) => match library_in_package(&dir) {
                Some(lib) => {
                    python_found = Some((lib, format!("onnxruntime package of {py} ({})", dir.display())));
                    break;
                }
                None => python_notes.push(format!("{py}: {} has no capi/libonnxruntime*", dir.display())),
            },
            Ok(None) => python_notes.push(format!("{py}: no onnxruntime package")),
            Err(e) => python_notes.push(e),
        }
    }
    match python_found {
        Some((lib, note)) => record(&mut steps, "python", Some(lib), note),
        None => record(&mut steps, "python", None, python_notes.join("; ")),
    }
    let roots = project_local_roots();
    let local = roots.iter().find_map(|r| library_in_package(&r.join("site/onnxruntime")));
    match local {
        Some(lib) => record(&mut steps, "project-local", Some(lib), "installed by ci/setup-ort.sh".into()),
        None => {
            record(&mut steps, "project-local", None, "no .ort/site/onnxruntime found (run ci/setup-ort.sh)".into())
        }
    }
    Discovery { steps, chosen }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versioned_library_in_a_package_folder() {
        let dir = tempfile::tempdir().unwrap();
        let capi = dir.path().join("onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        for f in ["libonnxruntime.so.1.32.0", "libonnxruntime_providers_shared.so", "onnxruntime_pybind11_state.so"] {
            std::fs::write(capi.join(f), b"x").unwrap();
        }
        let lib = library_in_package(&dir.path().join("onnxruntime")).unwrap();
        assert_eq!(lib.file_name().unwrap(), "libonnxruntime.so.1.32.0");
        assert!(library_in_package(dir.path()).is_none());
    }

    #[test]
    fn explicit_missing_path_is_reported_not_chosen() {
        let d = discover(Some(Path::new("/nonexistent/libonnxruntime.so")));
        assert_eq!(d.steps[0].source, "--ort-lib");
        assert!(d.steps[0].note.contains("does not exist"));
        assert!(d.chosen.as_ref().map(|c| c.1 != "--ort-lib").unwrap_or(true));
    }
}
