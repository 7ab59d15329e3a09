//! `faceperf compare` on the committed results: the H100 run against the 2-core CPU run names the
//! execution provider of every role and the model that dominates the gap; the H100 live run against
//! the CPU bench's pipeline names the dominant stage.

use std::path::Path;
use std::process::Command;

use faceperf::report::compare::{compare, RunView};

const H100: &str = "bench-results/h100/20261125T130800Z_vm-combined.json";
const CPU: &str = "bench-results/cpu/20261125T090350Z_vm.json";
const H100_LIVE: &str = "bench-results/h100/run-20261125c/live-swap-1f-h100.json";

fn view(rel: &str) -> RunView {
    RunView::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn h100_against_cpu_explains_the_ep_and_the_dominant_model() {
    let (run, reference) = (view(H100), view(CPU));
    assert_eq!(run.models.len(), 5);
    let c = compare(&run, &reference);
    for m in &run.models {
        let o = reference.models.iter().find(|o| o.role == m.role).unwrap();
        assert_ne!(m.provider, o.provider);
        let want = format!("{}: another execution provider, {} here vs {}", m.role, m.provider, o.provider);
        assert!(c.explanations.iter().any(|e| e.kind == "ep" && e.text.starts_with(&want)), "{want}");
    }
    // The dominant model is the role with the largest difference of medians in the two files.
    let diff = |role: &str| {
        let a = run.models.iter().find(|m| m.role == role).unwrap().ms.unwrap().median;
        let b = reference.models.iter().find(|m| m.role == role).unwrap().ms.unwrap().median;
        (a - b).abs()
    };
    let top = run.models.iter().map(|m| m.role.as_str()).max_by(|a, b| diff(a).total_cmp(&diff(b))).unwrap();
    let dom = c.explanations.iter().find(|e| e.kind == "dominant_model").expect("a dominant model");
    assert!(dom.text.starts_with(&format!("{top} (")), "{top}: {}", dom.text);
    assert!(c.explanations.iter().any(|e| e.kind == "hardware" && e.text.contains("H100")));
}

#[test]
fn h100_live_against_the_cpu_pipeline_names_the_dominant_stage() {
    let (run, reference) = (view(H100_LIVE), view(CPU));
    let c = compare(&run, &reference);
    let per_frame = |v: &RunView, name: &str| {
        let s = v.stages.iter().find(|s| s.0 == name).unwrap();
        s.2 * 1000.0 / v.fps.unwrap()
    };
    let shared: Vec<&str> = run
        .stages
        .iter()
        .map(|s| s.0.as_str())
        .filter(|n| *n != "capture_wait" && reference.stages.iter().any(|o| o.0 == *n))
        .collect();
    let gap = |n: &str| (per_frame(&run, n) - per_frame(&reference, n)).abs();
    let top = shared.iter().max_by(|a, b| gap(a).total_cmp(&gap(b))).unwrap();
    let dom = c.explanations.iter().find(|e| e.kind == "dominant_stage").unwrap();
    assert!(dom.text.starts_with(&format!("stage {top} dominates")), "{}", dom.text);
    assert!(c.explanations.iter().any(|e| e.kind == "fps" && e.text.contains("higher")));
}

#[test]
fn the_command_prints_json_and_refuses_other_files_with_one_line() {
    let bin = env!("CARGO_BIN_EXE_faceperf");
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(bin).current_dir(dir).args(["compare", "--json", H100, CPU, H100_LIVE]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "one comparison per reference");
    assert!(v[0]["explanations"].as_array().unwrap().iter().any(|e| e["kind"] == "ep"));
    let out = Command::new(bin).current_dir(dir).args(["compare", "Cargo.toml", CPU]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: Cargo.toml is not JSON"), "{err}");
}
