//! `faceperf optimize` as a user runs it: variants beside the model, `--check` naming what is
//! missing or stale with a non-zero exit, `--json`, two processes racing for one variant, and a
//! malformed recipe reported with its file and line.

mod optimize_support;

use std::process::{Command, Output};

use faceperf::models::Role;
use optimize_support::tiny;

fn faceperf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faceperf")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn optimize_then_check_then_stale() {
    let (dir, src) = tiny(Role::Swapper);
    let m = src.to_str().unwrap();
    let o = faceperf(&["--json", "optimize", "--target", "coreml", "--threads", "1", m]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["result"], "created");
    assert_eq!(rows[0]["sidecar"]["equivalence"]["passed"], true);
    assert!(dir.path().join("inswapper_128_coreml.onnx").is_file());
    assert!(dir.path().join("inswapper_128_coreml.json").is_file());

    // coreml is fresh, fp16 missing: non-zero exit naming the missing one only.
    let o = faceperf(&["optimize", "--check", "--target", "coreml,fp16", "--threads", "1", m]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("missing: ") && t.contains("inswapper_128_fp16.onnx"), "{t}");
    assert!(!t.contains("stale"), "{t}");
    assert!(faceperf(&["optimize", "--check", "--quick", "--target", "coreml", m]).status.success());

    // Another tool version: stale, and says why.
    let o = faceperf(&["optimize", "--check", "--target", "coreml", "--tool-version", "9.9.9", m]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("stale: ") && t.contains("tool version changed"), "{t}");
}

#[test]
fn two_processes_racing_for_one_variant_both_succeed() {
    let (dir, src) = tiny(Role::Recognizer);
    let m = src.to_str().unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_faceperf"))
            .args(["--json", "optimize", "--target", "fp16", "--threads", "1", m])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let results: Vec<String> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", text(&o));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v[0]["result"].as_str().unwrap().to_string()
        })
        .collect();
    let mut sorted = results.clone();
    sorted.sort();
    assert_eq!(sorted, ["created", "reused"], "{results:?}");
    let o = faceperf(&["optimize", "--check", "--target", "fp16", "--threads", "1", m]);
    assert!(o.status.success(), "{}", text(&o));
    // No temporary files left behind.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn malformed_recipe_is_reported_with_file_and_line() {
    let (dir, src) = tiny(Role::Landmarks);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "target = \"x\"\nsuffix = \"_x\"\n[[pass]]\nname = \"cleanup\"\nfrobnicate = 1\n").unwrap();
    let o = faceperf(&["optimize", "--recipe", bad.to_str().unwrap(), src.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success());
    assert!(t.contains("bad.toml:5:") && t.contains("frobnicate"), "{t}");
}

#[test]
fn verify_on_runs_the_check_with_a_profiles_providers() {
    let (_dir, src) = tiny(Role::Recognizer);
    let m = src.to_str().unwrap();
    // The cpu profile's providers: the check runs and says where.
    let o = faceperf(&["--json", "optimize", "--target", "fp16", "--threads", "1", "--verify-on", "cpu", m]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = rows[0]["sidecar"]["equivalence"]["notes"].to_string();
    assert!(notes.contains("checked on CPUExecutionProvider"), "{notes}");
    // A profile whose providers this ORT lacks is refused in one line before any work.
    let o = faceperf(&["optimize", "--check", "--target", "fp16", "--verify-on", "h100", m]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("--verify-on h100") && t.contains("CUDAExecutionProvider"), "{t}");
    assert_eq!(t.trim().lines().count(), 1, "{t}");
}
