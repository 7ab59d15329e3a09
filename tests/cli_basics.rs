//! The `faceperf` binary end to end: `doctor` and `inspect`, their exit codes and one-line errors.

use std::path::Path;
use std::process::{Command, Output};

use faceperf::onnx::graph::attr;
use faceperf::onnx::{DataLayout, GraphBuilder, Model, Tensor};
use faceperf::util::rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

fn run(bin: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new(bin).args(args).current_dir(cwd).env_remove("ORT_DYLIB_PATH").output().expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failing command: exit code ≠ 0, exactly one `error:` line, no panic.
fn assert_clean_failure(o: &Output) -> String {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {e}");
    assert!(!e.contains("panicked"), "{e}");
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one-line error expected: {e}");
    assert!(lines[0].starts_with("error: "), "{e}");
    lines[0].to_string()
}

fn model_with_emap() -> Model {
    let mut rng = Rng::new(5);
    let mut b = GraphBuilder::new("emap_style");
    let x = b.input_f32("x", &[1, 3, 8, 8]);
    let w = b.init("w", &Tensor::f32(&[8, 3, 3, 3], rng.vec(216, -0.5, 0.5)));
    let c = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 1, 1, 1])]);
    b.node("Relu", &[&c], &["y"], &[]);
    b.output_f32("y", &[1, 8, 8, 8]);
    b.init_named("emap", &Tensor::f32(&[16, 16], rng.vec(256, -1.0, 1.0)));
    b.build(13)
}

#[test]
fn doctor_reports_the_loaded_runtime_and_cpu_provider() {
    let o = run(Path::new(BIN), &["doctor"], Path::new(env!("CARGO_MANIFEST_DIR")));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("onnxruntime: 1."), "{out}");
    assert!(out.contains("CPUExecutionProvider"), "{out}");
    assert!(out.contains("model routes per built-in profile"), "{out}");

    let o = run(Path::new(BIN), &["--json", "doctor"], Path::new(env!("CARGO_MANIFEST_DIR")));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("doctor --json is JSON");
    assert!(v["ort"]["version"].as_str().unwrap().starts_with("1."));
    assert!(v["ort"]["providers"].as_array().unwrap().iter().any(|p| p == "CPUExecutionProvider"));
    assert!(v["routes"].as_array().unwrap().iter().any(|p| p["profile"] == "cpu"));
}

#[test]
fn doctor_without_a_reachable_runtime_fails_with_one_line() {
    // A copy of the binary in an empty folder, with no Python on PATH: nothing can be found.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("faceperf");
    std::fs::copy(BIN, &bin).unwrap();
    let o = Command::new(&bin)
        .arg("doctor")
        .current_dir(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let line = assert_clean_failure(&o);
    assert!(line.contains("ONNX Runtime library not found"), "{line}");
    assert!(line.contains("ci/setup-ort.sh"), "the fix is named: {line}");
}

#[test]
fn an_explicit_library_that_does_not_exist_is_refused() {
    let o = run(Path::new(BIN), &["--ort-lib", "/nonexistent/libonnxruntime.so", "doctor"], Path::new("."));
    let line = assert_clean_failure(&o);
    assert!(line.contains("--ort-lib /nonexistent/libonnxruntime.so does not exist"), "{line}");
}

#[test]
fn inspect_reads_external_data_and_names_the_last_initializer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ext.onnx");
    model_with_emap().save(&p, DataLayout::External).unwrap();
    assert!(dir.path().join("ext.onnx.data").exists());
    let o = run(Path::new(BIN), &["--json", "inspect", p.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["last_initializer"], "emap");
    assert_eq!(v["parameters"], 216 + 256);
    let o = run(Path::new(BIN), &["inspect", p.to_str().unwrap()], dir.path());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("emap"), "{text}");
}

#[test]
fn inspect_of_a_corrupt_or_truncated_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = model_with_emap().to_bytes();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("empty.onnx", vec![], "file is empty"),
        ("trunc.onnx", bytes[..bytes.len() / 2].to_vec(), "not a valid ONNX model"),
        (
            "junk.onnx",
            (0..2048u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect(),
            "not a valid ONNX model",
        ),
    ];
    for (name, content, reason) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let o = run(Path::new(BIN), &["inspect", p.to_str().unwrap()], dir.path());
        let line = assert_clean_failure(&o);
        assert!(line.contains(name) && line.contains(reason), "{line}");
    }
    let o = run(Path::new(BIN), &["inspect", "/nonexistent/model.onnx"], dir.path());
    let line = assert_clean_failure(&o);
    assert!(line.contains("/nonexistent/model.onnx"), "{line}");
}

/// `--version` and `doctor` name the commit the binary was built from.
#[test]
fn version_names_the_build_commit() {
    let o = run(Path::new(BIN), &["--version"], Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(faceperf::BUILD_COMMIT), "{out}");
    assert!(out.starts_with(&format!("faceperf {} (", env!("CARGO_PKG_VERSION"))), "{out}");
}

/// Output piped into a reader that stops early (`faceperf doctor | head -1`) ends the process
/// quietly, not with a "failed printing to stdout" panic.
#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .args(["doctor"])
        .env_remove("ORT_DYLIB_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    drop(child.stdout.take()); // the reader goes away before the first line is written
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.success() || status.signal() == Some(libc::SIGPIPE), "{status:?}: {err}");
}
