//! The CI recipe for users (`ci/examples/models.yml`, docs/ci.md), run here by
//! `ci/examples/run-locally.sh`: every step of the workflow but the hosted runner itself, against a
//! temporary project with tiny replica models. For speed the install step's `cargo install --path`
//! copies the binary this test run built (`--prebuilt`) instead of compiling it again; the script's
//! default runs the real `cargo install`. A first run misses the cache, makes the variants,
//! passes `optimize --check` and saves them under `faceperf optimize --cache-key`; a second run of a
//! fresh checkout restores them by that exact key and reuses them.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why this machine cannot run the workflow locally, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let yaml = Command::new("python3").args(["-c", "import yaml"]).output();
    if !yaml.is_ok_and(|o| o.status.success()) {
        return Some("python3 with PyYAML (pip install pyyaml)".into());
    }
    let beside_ort = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .and_then(|p| p.ancestors().nth(3).map(Path::to_path_buf))
        .into_iter()
        .chain([repo().join(".ort/site")])
        .chain(python_site());
    let has_wheel = beside_ort.into_iter().any(|site| {
        std::fs::read_dir(site)
            .is_ok_and(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("onnxruntime-")))
    });
    (!has_wheel).then(|| "an installed onnxruntime wheel to install offline (bash ci/setup-ort.sh)".into())
}

/// The site-packages folder of python3's onnxruntime, if it has one.
fn python_site() -> Option<PathBuf> {
    let script = "import importlib.util, os\ns = importlib.util.find_spec('onnxruntime')\nprint(os.path.dirname(os.path.dirname(s.origin)) if s and s.origin else '')";
    let out = Command::new("python3").args(["-c", script]).output().ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Runs the workflow once on `project` with the cache store `store`; returns the step log.
fn run_workflow(project: &Path, store: &Path, log: &Path) -> serde_json::Value {
    let out = Command::new("bash")
        .arg(repo().join("ci/examples/run-locally.sh"))
        .args(["--set", "FACEPERF_TARGETS=coreml", "--prebuilt", BIN, "--project"])
        .arg(project)
        .arg("--cache-store")
        .arg(store)
        .arg("--log")
        .arg(log)
        .env("FACEPERF", BIN)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the workflow failed:\n{text}");
    assert!(text.contains("every step passed"), "{text}");
    serde_json::from_str(&std::fs::read_to_string(log).unwrap()).unwrap()
}

/// The log record of the step named `name`.
fn step<'a>(log: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    log["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step {name}"))
}

fn cache_key(models: &Path) -> String {
    let out = Command::new(BIN).args(["optimize", "--cache-key", "--target", "coreml"]).arg(models).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_example_workflow_runs_here_and_its_cache_is_reused() {
    if let Some(what) = missing_prerequisite() {
        // Our CI has both prerequisites (.ci/run sets FACEPERF_REQUIRE_SHARED): there it must run.
        assert!(
            std::env::var("FACEPERF_REQUIRE_SHARED").as_deref() != Ok("1"),
            "the example workflow cannot run here: needs {what}"
        );
        eprintln!("SKIPPED the_example_workflow_runs_here_and_its_cache_is_reused: needs {what}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (project, store) = (d.path().join("project"), d.path().join("store"));

    // First run: a cache miss; the variants are made, checked and saved under the cache key.
    let log = run_workflow(&project, &store, &d.path().join("log1.json"));
    let steps = log["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10, "every step of the workflow is in the log");
    assert!(steps.iter().all(|s| s["outcome"] == "success"), "{steps:#?}");
    let key = format!("faceperf-variants-{}", cache_key(&project.join("models")));
    assert_eq!(step(&log, "Compute the variant cache key")["outputs"]["key"], key.as_str());
    assert!(step(&log, "Restore variants")["outputs"].get("cache-hit").is_none(), "a miss");
    let install = step(&log, "Install faceperf")["output"].as_str().unwrap();
    assert!(
        install.contains(&format!("stand-in for: cargo install --locked --path {}", repo().display())),
        "{install}"
    );
    assert!(install.contains("faceperf 0.1.0"), "`faceperf --version` ran: {install}");
    let doctor = step(&log, "Show what faceperf found")["output"].as_str().unwrap();
    assert!(doctor.contains("venv/lib/") && doctor.contains("(via python)"), "ORT from the pip step: {doctor}");
    let made = step(&log, "Make missing or stale variants")["output"].as_str().unwrap();
    assert_eq!(made.matches("created").count(), 2, "{made}");
    let saved = store.join(&key).join("content");
    for f in ["w600k_r50_coreml.onnx", "w600k_r50_coreml.json", "inswapper_128_coreml.onnx"] {
        assert!(saved.join(f).is_file(), "{f} saved in the cache");
    }

    // Second run on a fresh checkout (no variants): the exact key restores them, nothing is remade
    // and nothing is saved again.
    std::fs::remove_dir_all(project.join(".faceperf")).unwrap();
    let log = run_workflow(&project, &store, &d.path().join("log2.json"));
    let restore = &step(&log, "Restore variants")["outputs"];
    assert_eq!(
        (restore["cache-hit"].as_str(), restore["cache-matched-key"].as_str()),
        (Some("true"), Some(key.as_str()))
    );
    let made = step(&log, "Make missing or stale variants")["output"].as_str().unwrap();
    assert_eq!((made.matches("reused").count(), made.matches("created").count()), (2, 0), "{made}");
    assert_eq!(step(&log, "Check every variant")["outcome"], "success");
    assert_eq!(step(&log, "Save variants")["outcome"], "skipped");

    // A changed model changes the key, so the next run makes and saves a new entry.
    let synth = Command::new(BIN)
        .args(["models", "synth", "--scale", "tiny", "--seed", "7", "--roles", "recognizer", "--dir"])
        .arg(project.join("models"))
        .output()
        .unwrap();
    assert!(synth.status.success());
    assert_ne!(format!("faceperf-variants-{}", cache_key(&project.join("models"))), key);
}
