//! The binary run from an empty folder with no checkout around it: it needs nothing beside itself
//! (photos built in, replicas generated into the per-user cache), its live JSON names the machine and
//! the models, and a missing model is one `error:` line saying how to get it, with nothing written.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

/// `faceperf ARGS` in `dir` with a private user cache and no model/asset overrides.
fn run_in(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("FACEPERF_MODELS")
        .env_remove("FACEPERF_SHARED")
        .output()
        .unwrap()
}

#[test]
fn live_from_an_empty_folder_uses_the_user_cache_and_records_provenance() {
    let t = tempfile::tempdir().unwrap();
    let (work, cache) = (t.path().join("work"), t.path().join("cache"));
    std::fs::create_dir_all(&work).unwrap();
    let o = run_in(&work, &cache, &["--json", "live", "--frames", "4", "--size", "320x240", "--detect-every", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Faces in every frame: the replica detector ran, the source's faces were used.
    assert_eq!(v["faces_from"], "source");
    assert_eq!(v["frames"], 4);
    assert_eq!(v["frames_without_face"], 0);
    let p = &v["provenance"];
    assert_eq!(p["tool"]["build_commit"], faceperf::BUILD_COMMIT);
    assert!(p["hardware"]["cpu_model"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(p["ort"]["version"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(p["command_line"].as_array().is_some_and(|a| a.iter().any(|x| x == "live")));
    let models = p["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    for m in models {
        assert_eq!(m["sha256"].as_str().unwrap().len(), 64, "{m}");
        assert!(m["path"].as_str().unwrap().starts_with(cache.to_str().unwrap()), "replicas in the user cache: {m}");
    }
    assert!(p["sessions"].as_array().unwrap().iter().all(|s| s["session"]["providers"].is_array()));
    // Nothing was written into the empty folder.
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn a_missing_model_is_one_error_line_that_says_how_to_get_it() {
    let t = tempfile::tempdir().unwrap();
    let models = t.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let csv = t.path().join("out/run.csv");
    let o = run_in(
        t.path(),
        &t.path().join("cache"),
        &["live", "--models", models.to_str().unwrap(), "--frames", "2", "--csv", csv.to_str().unwrap()],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: the detector model ") && lines[0].contains("det_10g.onnx is missing"),
        "{err}"
    );
    assert!(lines[0].contains("faceperf models fetch"), "{err}");
    assert!(!csv.exists() && !t.path().join("out").exists(), "nothing half-written");
}
