//! Finding the ONNX Runtime shared library.
//!
//! Order (each step is recorded so `doctor` can show the route taken):
//! 1. `--ort-lib PATH`, then the `ORT_DYLIB_PATH` environment variable;
//! 2. the `onnxruntime` package of the active Python (`onnxruntime`, `onnxruntime-gpu` and
//!    `onnxruntime-silicon` all install as `onnxruntime` and ship the library in `capi/`:
//!    `libonnxruntime.so.<version>` on Linux, `libonnxruntime.<version>.dylib` on macOS,
//!    `onnxruntime.dll` on Windows; see [`Platform`]);
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

/// How an operating system names ONNX Runtime's files and a virtual environment's interpreter.
///
/// Discovery takes the platform as a parameter so the layouts of all three can be tested on any
/// machine (on simulated folders); [`Platform::current`] is the one the binary runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// `libonnxruntime.so.1.32.0` (plus `libonnxruntime.so.1` / `libonnxruntime.so` symlinks).
    Linux,
    /// `libonnxruntime.1.32.0.dylib` (plus a `libonnxruntime.dylib` symlink in release archives).
    MacOs,
    /// `onnxruntime.dll`; file names compare case-insensitively; venvs have `Scripts\python.exe`.
    Windows,
}

impl Platform {
    /// The platform this binary was built for (other Unixes use the Linux naming).
    pub const fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Linux
        }
    }

    /// Whether `name` is the ORT core library on this platform: never a provider library
    /// (`libonnxruntime_providers_shared.so`, `onnxruntime_providers_cuda.dll`, …) nor the Python
    /// binding (`onnxruntime_pybind11_state.so` / `.pyd`).
    pub fn is_ort_library(self, name: &str) -> bool {
        if name.contains("providers") || name.contains("pybind") {
            return false;
        }
        match self {
            Platform::Linux => name == "libonnxruntime.so" || name.starts_with("libonnxruntime.so."),
            Platform::MacOs => name.starts_with("libonnxruntime.") && name.ends_with(".dylib"),
            Platform::Windows => name.eq_ignore_ascii_case("onnxruntime.dll"),
        }
    }

    /// The interpreter of the virtual environment at `venv`.
    pub fn venv_python(self, venv: &Path) -> PathBuf {
        match self {
            Platform::Windows => venv.join("Scripts").join("python.exe"),
            Platform::Linux | Platform::MacOs => venv.join("bin").join("python"),
        }
    }

    /// Interpreter names to try on `PATH` after the virtual environment's.
    pub fn python_names(self) -> &'static [&'static str] {
        match self {
            Platform::Windows => &["python", "py"],
            Platform::Linux | Platform::MacOs => &["python3", "python"],
        }
    }
}

/// The ORT library inside an `onnxruntime` Python package folder (`.../onnxruntime`), for the
/// platform this binary runs on.
pub fn library_in_package(pkg: &Path) -> Option<PathBuf> {
    library_in_package_for(Platform::current(), pkg)
}

/// The ORT library of `platform` inside the package folder `pkg` (`pkg/capi/...`): a real file is
/// preferred over symlinks to it, then the most specific (longest, fully versioned) name.
pub fn library_in_package_for(platform: Platform, pkg: &Path) -> Option<PathBuf> {
    let capi = pkg.join("capi");
    let mut found: Vec<(bool, usize, PathBuf)> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| platform.is_ort_library(&e.file_name().to_string_lossy()))
        .filter(|e| e.path().is_file())
        .map(|e| {
            let link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
            (link, e.file_name().len(), e.path())
        })
        .collect();
    // Real files first (false < true), then the longest name, then by path for a stable choice.
    found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    found.into_iter().next().map(|(_, _, p)| p)
}

/// Python interpreters to ask, most specific first.
fn python_candidates() -> Vec<String> {
    python_candidates_for(Platform::current(), &|k| std::env::var(k).ok())
}

/// Python interpreters to ask on `platform`, with environment variables read through `env`:
/// `FACEPERF_PYTHON`, the interpreter of `VIRTUAL_ENV`, then the platform's names on `PATH`.
pub fn python_candidates_for(platform: Platform, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = env("FACEPERF_PYTHON").filter(|p| !p.is_empty()) {
        v.push(p);
    }
    if let Some(venv) = env("VIRTUAL_ENV").filter(|p| !p.is_empty()) {
        v.push(platform.venv_python(Path::new(&venv)).display().to_string());
    }
    v.extend(platform.python_names().iter().map(|s| s.to_string()));
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
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        starts.push(dir);
    }
    project_local_roots_from(std::env::var_os("FACEPERF_ORT_DIR").map(PathBuf::from), &starts)
}

/// `.ort` folders to search: `ort_dir` (`FACEPERF_ORT_DIR`) first, then `.ort` in each of
/// `starts` (the current folder, the executable's folder) and in every folder above them.
pub fn project_local_roots_from(ort_dir: Option<PathBuf>, starts: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ort_dir.into_iter().collect();
    for s in starts {
        for a in s.ancestors() {
            roots.push(a.join(".ort"));
        }
    }
    roots.dedup();
    roots
}

/// The first ORT library of `platform` in a project-local install under one of `roots`
/// (`<root>/site/onnxruntime/capi/...`, the layout `ci/setup-ort.sh` writes on every platform).
pub fn project_local_library(platform: Platform, roots: &[PathBuf]) -> Option<PathBuf> {
    roots.iter().find_map(|r| library_in_package_for(platform, &r.join("site").join("onnxruntime")))
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
                None => python_notes.push(format!("{py}: {} has no ONNX Runtime library in capi/", dir.display())),
            },
            Ok(None) => python_notes.push(format!("{py}: no onnxruntime package")),
            Err(e) => python_notes.push(e),
        }
    }
    match python_found {
        Some((lib, note)) => record(&mut steps, "python", Some(lib), note),
        None => record(&mut steps, "python", None, python_notes.join("; ")),
    }
    let local = project_local_library(Platform::current(), &project_local_roots());
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

    /// Creates `files` (relative paths) under `root` with a few bytes each.
    fn touch(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
    }

    fn name(p: Option<PathBuf>) -> Option<String> {
        p.map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
    }

    #[cfg(unix)]
    #[test]
    fn linux_layout_prefers_the_real_versioned_file_over_symlinks_and_providers() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("venv/lib/python3.12/site-packages/onnxruntime");
        let capi = pkg.join("capi");
        touch(
            &capi,
            &[
                "libonnxruntime.so.1.32.0",
                "libonnxruntime_providers_shared.so",
                "libonnxruntime_providers_cuda.so",
                "libonnxruntime_providers_tensorrt.so",
                "onnxruntime_pybind11_state.so",
            ],
        );
        std::os::unix::fs::symlink("libonnxruntime.so.1.32.0", capi.join("libonnxruntime.so.1")).unwrap();
        std::os::unix::fs::symlink("libonnxruntime.so.1", capi.join("libonnxruntime.so")).unwrap();
        assert_eq!(name(library_in_package_for(Platform::Linux, &pkg)).as_deref(), Some("libonnxruntime.so.1.32.0"));
        // A symlink with a longer name than the real file still loses to the real file, and a
        // dangling one is never chosen.
        std::fs::rename(capi.join("libonnxruntime.so.1.32.0"), capi.join("libonnxruntime.so.1.32")).unwrap();
        std::os::unix::fs::symlink("libonnxruntime.so.1.32", capi.join("libonnxruntime.so.1.32.0")).unwrap();
        std::os::unix::fs::symlink("gone", capi.join("libonnxruntime.so.1.32.0.1")).unwrap();
        assert_eq!(name(library_in_package_for(Platform::Linux, &pkg)).as_deref(), Some("libonnxruntime.so.1.32"));
        // Neither macOS nor Windows takes a Linux library.
        assert_eq!(library_in_package_for(Platform::MacOs, &pkg), None);
        assert_eq!(library_in_package_for(Platform::Windows, &pkg), None);
    }

    #[test]
    fn macos_wheel_layout_simulated() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("venv/lib/python3.12/site-packages/onnxruntime");
        touch(
            &pkg.join("capi"),
            &[
                "libonnxruntime.1.32.0.dylib",
                "libonnxruntime_providers_shared.dylib",
                "onnxruntime_pybind11_state.so",
                "onnxruntime_validation.py",
            ],
        );
        let lib = library_in_package_for(Platform::MacOs, &pkg);
        assert_eq!(name(lib.clone()).as_deref(), Some("libonnxruntime.1.32.0.dylib"));
        assert!(lib.unwrap().starts_with(pkg.join("capi")));
        assert_eq!(library_in_package_for(Platform::Linux, &pkg), None, "a .dylib is not a Linux library");
        assert!(Platform::MacOs.is_ort_library("libonnxruntime.dylib"));
        assert!(!Platform::MacOs.is_ort_library("libonnxruntime_providers_coreml.dylib"));
        assert_eq!(Platform::MacOs.venv_python(Path::new("/v")), Path::new("/v/bin/python"));
    }

    #[test]
    fn windows_wheel_layout_simulated() {
        let dir = tempfile::tempdir().unwrap();
        // A Windows venv: Lib\site-packages\onnxruntime\capi, interpreter in Scripts\.
        let venv = dir.path().join("venv");
        let pkg = venv.join("Lib").join("site-packages").join("onnxruntime");
        touch(
            &pkg.join("capi"),
            &[
                "onnxruntime.dll",
                "onnxruntime_providers_shared.dll",
                "onnxruntime_providers_cuda.dll",
                "onnxruntime_providers_tensorrt.dll",
                "onnxruntime_pybind11_state.pyd",
                "DirectML.dll",
            ],
        );
        assert_eq!(name(library_in_package_for(Platform::Windows, &pkg)).as_deref(), Some("onnxruntime.dll"));
        assert_eq!(library_in_package_for(Platform::Linux, &pkg), None);
        assert_eq!(library_in_package_for(Platform::MacOs, &pkg), None);
        assert!(Platform::Windows.is_ort_library("OnnxRuntime.DLL"), "Windows names are case-insensitive");
        let env = |k: &str| (k == "VIRTUAL_ENV").then(|| venv.display().to_string());
        let c = python_candidates_for(Platform::Windows, &env);
        assert_eq!(c[0], venv.join("Scripts").join("python.exe").display().to_string());
        assert_eq!(&c[1..], ["python", "py"]);
    }

    #[test]
    fn python_candidates_per_platform() {
        let env = |k: &str| match k {
            "FACEPERF_PYTHON" => Some("/opt/py/bin/python3.12".to_string()),
            "VIRTUAL_ENV" => Some("/work/.venv".to_string()),
            _ => None,
        };
        assert_eq!(
            python_candidates_for(Platform::Linux, &env),
            ["/opt/py/bin/python3.12", "/work/.venv/bin/python", "python3", "python"]
        );
        assert_eq!(python_candidates_for(Platform::MacOs, &|_| None), ["python3", "python"]);
        assert_eq!(python_candidates_for(Platform::Windows, &|_| None), ["python", "py"]);
    }

    #[test]
    fn project_local_layouts_of_each_platform_simulated() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("Deep-Live-Cam");
        let site = proj.join(".ort").join("site").join("onnxruntime").join("capi");
        touch(&site, &["onnxruntime.dll", "onnxruntime_providers_shared.dll"]);
        let starts = [proj.join("src").join("deep")];
        let roots = project_local_roots_from(None, &starts);
        assert_eq!(roots[0], proj.join("src/deep/.ort"));
        assert!(roots.contains(&proj.join(".ort")));
        let win = project_local_library(Platform::Windows, &roots);
        assert_eq!(win, Some(site.join("onnxruntime.dll")));
        assert_eq!(project_local_library(Platform::Linux, &roots), None);

        touch(&site, &["libonnxruntime.1.32.0.dylib", "libonnxruntime.so.1.32.0"]);
        assert_eq!(
            name(project_local_library(Platform::MacOs, &roots)).as_deref(),
            Some("libonnxruntime.1.32.0.dylib")
        );
        assert_eq!(name(project_local_library(Platform::Linux, &roots)).as_deref(), Some("libonnxruntime.so.1.32.0"));

        // FACEPERF_ORT_DIR is searched first.
        let other = dir.path().join("ort-elsewhere");
        touch(&other.join("site/onnxruntime/capi"), &["libonnxruntime.so.1.31.0"]);
        let roots = project_local_roots_from(Some(other.clone()), &starts);
        assert_eq!(roots[0], other);
        assert_eq!(name(project_local_library(Platform::Linux, &roots)).as_deref(), Some("libonnxruntime.so.1.31.0"));
    }

    /// The Linux path run for real: the library this machine's discovery chooses (pip wheel or
    /// `.ort/` from `ci/setup-ort.sh`) is what the Linux rules pick in its own `capi/` folder.
    #[cfg(target_os = "linux")]
    #[test]
    fn linux_discovery_on_this_machine_chooses_the_wheels_library() {
        let d = discover(None);
        let Some((lib, step)) = d.chosen else {
            eprintln!("SKIPPED linux_discovery_on_this_machine: no ONNX Runtime here ({INSTALL_HINT})");
            return;
        };
        let file = lib.file_name().unwrap().to_string_lossy().into_owned();
        assert!(Platform::Linux.is_ort_library(&file), "{step} chose {}", lib.display());
        let capi = lib.parent().unwrap();
        if capi.ends_with("capi") {
            let again = library_in_package_for(Platform::Linux, capi.parent().unwrap()).unwrap();
            assert_eq!(again.parent(), Some(capi));
            assert!(!again.symlink_metadata().unwrap().file_type().is_symlink(), "{}", again.display());
        }
    }

    #[test]
    fn explicit_missing_path_is_reported_not_chosen() {
        let d = discover(Some(Path::new("/nonexistent/libonnxruntime.so")));
        assert_eq!(d.steps[0].source, "--ort-lib");
        assert!(d.steps[0].note.contains("does not exist"));
        assert!(d.chosen.as_ref().map(|c| c.1 != "--ort-lib").unwrap_or(true));
    }
}
