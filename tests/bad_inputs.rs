//! The bad-input matrix: every way a user can hand faceperf a broken model, profile, recipe or
//! output folder, run through the binary. Each case must end with exactly one `error:` line (the
//! message asserted in full), a non-zero exit code, no panic, and nothing half-written in the
//! output folder (empty `.lock` files, which serialise writers, are all that may remain).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::graph::attr;
use faceperf::onnx::model::{OPSET_MAX, OPSET_MIN};
use faceperf::onnx::{DataLayout, GraphBuilder, Model, Tensor};
use faceperf::util::rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(cwd).output().expect("binary runs")
}

/// A failing command: exit code ≠ 0, exactly one `error:` line, no panic. Returns the message.
fn clean_failure(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "expected failure, got success: {e}");
    assert!(!e.contains("panicked") && !e.contains("RUST_BACKTRACE"), "{e}");
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one-line error expected: {e}");
    lines[0].strip_prefix("error: ").unwrap_or_else(|| panic!("no `error: ` prefix: {e}")).to_string()
}

/// Every file under `dir` (recursively) except empty lock files.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(leftovers(&p));
        } else {
            let lock = p.extension().is_some_and(|x| x == "lock");
            if !(lock && std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(false)) {
                out.push(p);
            }
        }
    }
    out
}

fn assert_nothing_written(dir: &Path) {
    let left = leftovers(dir);
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

/// A workspace: `in/` for inputs, `out/` for outputs.
struct Ws {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Ws {
    fn new() -> Ws {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("in")).unwrap();
        std::fs::create_dir_all(root.join("out")).unwrap();
        Ws { _tmp: tmp, root }
    }
    fn input(&self, name: &str) -> PathBuf {
        self.root.join("in").join(name)
    }
    fn out(&self) -> PathBuf {
        self.root.join("out")
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.input(name);
        std::fs::write(&p, bytes).unwrap();
        s(&p)
    }
    /// `faceperf optimize MODEL --target coreml --out out/` plus `extra`, which must fail cleanly.
    fn optimize_fails(&self, model: &str, extra: &[&str]) -> String {
        let out = s(&self.out());
        let mut args = vec!["optimize", model, "--target", "coreml", "--out", &out, "--inputs", "2", "--threads", "1"];
        args.extend_from_slice(extra);
        let line = clean_failure(&run(&args, &self.root));
        assert_nothing_written(&self.out());
        line
    }
    fn inspect_fails(&self, model: &str, extra: &[&str]) -> String {
        let mut args = vec!["inspect", model];
        args.extend_from_slice(extra);
        clean_failure(&run(&args, &self.root))
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// x [1,3,8,8] → Conv → Relu → y [1,8,8,8], at `opset`.
fn conv_relu(opset: i64) -> Model {
    let mut rng = Rng::new(11);
    let mut b = GraphBuilder::new("conv_relu");
    let x = b.input_f32("x", &[1, 3, 8, 8]);
    let w = b.init("w", &Tensor::f32(&[8, 3, 3, 3], rng.vec(216, -0.5, 0.5)));
    let c = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 1, 1, 1])]);
    b.node("Relu", &[&c], &["y"], &[]);
    b.output_f32("y", &[1, 8, 8, 8]);
    b.build(opset)
}

fn save(ws: &Ws, name: &str, m: &Model) -> String {
    let p = ws.input(name);
    m.save(&p, DataLayout::Inline).unwrap();
    s(&p)
}

// ---- unreadable model files ----

#[test]
fn empty_file() {
    let ws = Ws::new();
    let p = ws.write("empty.onnx", b"");
    let want = format!("{p}: file is empty (0 bytes), not an ONNX model");
    assert_eq!(ws.inspect_fails(&p, &[]), want);
    assert_eq!(ws.optimize_fails(&p, &[]), want);
}

#[test]
fn truncated_onnx() {
    let ws = Ws::new();
    let bytes = conv_relu(13).to_bytes();
    let p = ws.write("truncated.onnx", &bytes[..bytes.len() / 2]);
    let want = format!(
        "{p}: not a valid ONNX model: protobuf decoding failed (failed to decode Protobuf message: \
         ModelProto.graph: buffer underflow); the file is truncated or not ONNX"
    );
    assert_eq!(ws.inspect_fails(&p, &[]), want);
    assert_eq!(ws.optimize_fails(&p, &[]), want);
}

#[test]
fn random_bytes() {
    let ws = Ws::new();
    let mut rng = Rng::new(99);
    let junk: Vec<u8> = (0..4096).map(|_| (rng.next_u64() >> 56) as u8).collect();
    let p = ws.write("random.onnx", &junk);
    let line = ws.inspect_fails(&p, &[]);
    let prefix = format!("{p}: not a valid ONNX model: ");
    assert!(line.starts_with(&prefix), "{line}");
    assert_eq!(ws.optimize_fails(&p, &[]), line);
}

#[test]
fn missing_file() {
    let ws = Ws::new();
    let p = s(&ws.input("absent.onnx"));
    assert_eq!(
        ws.optimize_fails(&p, &[]),
        format!(
            "model '{p}' is neither a file, a folder nor a known name (roles: {}; files: {})",
            Role::ALL.map(|r| r.name()).join(", "),
            Role::ALL.map(|r| r.default_file().trim_end_matches(".onnx")).join(", ")
        )
    );
    assert_eq!(ws.inspect_fails(&p, &[]), format!("{p}: cannot open model: No such file or directory (os error 2)"));
}

// ---- valid ONNX, wrong for the job ----

const DETECTOR_AS_SWAPPER: &str = "is not a swapper model: expected inputs [1,3,128,128] (target) and [1,512] \
    (source) -> output [1,3,128,128], found inputs input.1 [1,3,?,?] -> outputs ";

#[test]
fn detector_given_as_swapper() {
    let ws = Ws::new();
    let det = synth::replica_path(Role::Detector, Scale::Tiny).unwrap();
    // Through --role, and under the swapper's file name.
    let p = ws.input("det_10g.onnx");
    std::fs::copy(&det, &p).unwrap();
    let line = ws.optimize_fails(&s(&p), &["--role", "swapper"]);
    assert!(line.starts_with(&format!("{} {DETECTOR_AS_SWAPPER}", s(&p))), "{line}");
    assert!(line.ends_with("; it looks like a detector model"), "{line}");

    let models = ws.root.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let named = models.join("inswapper_128.onnx");
    std::fs::copy(&det, &named).unwrap();
    let line2 = ws.optimize_fails(&s(&named), &[]);
    assert!(line2.starts_with(&format!("{} {DETECTOR_AS_SWAPPER}", s(&named))), "{line2}");

    // bench refuses it before measuring anything.
    let out = s(&ws.out());
    let o = run(
        &["bench", "--models", &s(&models), "--role", "swapper", "--variants", "original", "--out", &out],
        &ws.root,
    );
    assert_eq!(clean_failure(&o), line2);
    assert_nothing_written(&ws.out());

    // live refuses it before building any session.
    let csv = s(&ws.out().join("run.csv"));
    let o = run(&["live", "--models", &s(&models), "--detector", &s(&det), "--frames", "2", "--csv", &csv], &ws.root);
    assert_eq!(clean_failure(&o), line2);
    assert_nothing_written(&ws.out());
}

#[test]
fn input_shape_with_an_unknown_name_or_a_contradicting_shape() {
    let ws = Ws::new();
    let p = save(&ws, "m.onnx", &conv_relu(13));
    assert_eq!(
        ws.inspect_fails(&p, &["--input-shape", "image=1x3x8x8"]),
        "--input-shape names 'image', but the model's inputs are: x"
    );
    assert_eq!(
        ws.inspect_fails(&p, &["--input-shape", "x=1x3x16x16"]),
        "input 'x' is declared [Some(1), Some(3), Some(8), Some(8)], the given shape [1, 3, 16, 16] contradicts it"
    );
    assert_eq!(
        ws.inspect_fails(&p, &["--input-shape", "x=1x3x8"]),
        "input 'x' has rank 4, but the given shape [1, 3, 8] has rank 3"
    );
    for (arg, bad) in [("x=1x3xfoox8", "foo"), ("x=1x3x0x8", "0"), ("x=1x3x-8x8", "-8")] {
        let dims = arg.trim_start_matches("x=");
        let want = format!("bad dimension '{bad}' in shape '{dims}' (expected e.g. 1x3x640x640)");
        assert_eq!(ws.inspect_fails(&p, &["--input-shape", arg]), want);
        assert_eq!(ws.optimize_fails(&p, &["--input-shape", arg]), want);
    }
    assert_eq!(
        ws.optimize_fails(&p, &["--input-shape", "image=1x3x8x8"]),
        format!("{p}: --input-shape names 'image', but the model's inputs are: x")
    );
    assert_eq!(
        ws.optimize_fails(&p, &["--input-shape", "x=1x3x16x16"]),
        format!(
            "{p}: --input-shape: input 'x' is declared [Some(1), Some(3), Some(8), Some(8)], the given shape \
             [1, 3, 16, 16] contradicts it"
        )
    );
}

#[test]
fn unsupported_opsets() {
    let ws = Ws::new();
    for v in [3, 30] {
        let p = save(&ws, &format!("opset{v}.onnx"), &conv_relu(v));
        let why = if v < OPSET_MIN {
            "ONNX Runtime runs none older; convert it with onnx.version_converter".to_string()
        } else {
            format!("ONNX Runtime officially supports none newer; export it with opset {OPSET_MAX} or older")
        };
        let want = format!(
            "{p}: unsupported opset: the model imports ai.onnx opset {v}; faceperf supports opsets {OPSET_MIN} to \
             {OPSET_MAX} ({why})"
        );
        assert_eq!(ws.inspect_fails(&p, &[]), want);
        assert_eq!(ws.optimize_fails(&p, &[]), want);
    }
}

#[test]
fn the_opset_range_is_what_the_runtime_runs() {
    // Both ends of the accepted range load and run on the ONNX Runtime in use.
    let rt = faceperf::runtime::init(None).unwrap();
    let x = Tensor::f32(&[1, 3, 8, 8], (0..192).map(|i| i as f32 / 192.0 - 0.5).collect());
    for v in [OPSET_MIN, OPSET_MAX] {
        let ws = Ws::new();
        let p = save(&ws, "m.onnx", &conv_relu(v));
        let m = Model::load(&p).unwrap();
        let out = faceperf::verify::run_once(rt, &m, &[("x".into(), x.clone())], 1)
            .unwrap_or_else(|e| panic!("opset {v}: {e:#}"));
        assert_eq!(out[0].1.dims, vec![1, 8, 8, 8]);
    }
}

#[test]
fn external_data_file_missing() {
    let ws = Ws::new();
    let p = ws.input("ext.onnx");
    let mut rng = Rng::new(3);
    let mut m = conv_relu(13);
    m.graph_mut().initializer.push(Tensor::f32(&[32, 32], rng.vec(1024, -1.0, 1.0)).to_proto("big"));
    m.save(&p, DataLayout::External).unwrap();
    std::fs::remove_file(ws.input("ext.onnx.data")).unwrap();
    let p = s(&p);
    let want = format!(
        "{p}: external data: tensor 'big': external data file {} is missing: No such file or directory (os error 2)",
        s(&ws.input("ext.onnx.data"))
    );
    assert_eq!(ws.inspect_fails(&p, &[]), want);
    assert_eq!(ws.optimize_fails(&p, &[]), want);
}

#[test]
fn graph_with_a_cycle() {
    let ws = Ws::new();
    let mut b = GraphBuilder::new("cycle");
    let x = b.input_f32("x", &[1, 4]);
    b.node("Add", &[&x, "b"], &["a"], &[]);
    b.node("Relu", &["a"], &["b"], &[]);
    b.node("Identity", &["b"], &["y"], &[]);
    b.output_f32("y", &[1, 4]);
    let p = save(&ws, "cycle.onnx", &b.build(13));
    let want = format!("{p}: invalid graph: the graph has a cycle through node 'Add_1'");
    assert_eq!(ws.inspect_fails(&p, &[]), want);
    assert_eq!(ws.optimize_fails(&p, &[]), want);
}

#[test]
fn graph_with_a_dangling_input() {
    let ws = Ws::new();
    let mut b = GraphBuilder::new("dangling");
    let x = b.input_f32("x", &[1, 4]);
    b.node("Add", &[&x, "ghost"], &["y"], &[]);
    b.output_f32("y", &[1, 4]);
    let p = save(&ws, "dangling.onnx", &b.build(13));
    let want =
        format!("{p}: invalid graph: node 'Add_1' reads 'ghost', which no node, initializer or graph input provides");
    assert_eq!(ws.inspect_fails(&p, &[]), want);
    assert_eq!(ws.optimize_fails(&p, &[]), want);
}

// ---- profiles and recipes ----

#[test]
fn profile_naming_a_missing_execution_provider() {
    let ws = Ws::new();
    let doctor = run(&["--json", "doctor"], &ws.root);
    let v: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let providers: Vec<&str> = v["ort"]["providers"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(!providers.contains(&"CUDAExecutionProvider"), "this test needs a runtime without CUDA");
    let out = s(&ws.out());
    let o = run(&["bench", "--profile", "cuda", "--role", "swapper", "--out", &out], &ws.root);
    let roles = Role::ALL.map(|r| format!("CUDAExecutionProvider for {}", r.name())).join(", ");
    let want = format!(
        "profile 'cuda' needs {roles}, which ONNX Runtime {} at {} does not offer (it has: {}); install the matching \
         onnxruntime package, pass --ort-lib, or use --fallback cpu",
        v["ort"]["version"].as_str().unwrap(),
        v["ort"]["library"].as_str().unwrap(),
        providers.join(", ")
    );
    assert_eq!(clean_failure(&o), want);
    assert_nothing_written(&ws.out());
}

#[test]
fn malformed_profile_toml() {
    let ws = Ws::new();
    let p = ws.write("bad.toml", b"name = \"mine\"\n[threads]\nintra = \"four\n");
    let out = s(&ws.out());
    let o = run(&["bench", "--profile", &p, "--out", &out], &ws.root);
    assert_eq!(clean_failure(&o), format!("profile {p}:3:14: invalid basic string, expected `\"`"));
    assert_nothing_written(&ws.out());

    let p = ws.write("typo.toml", b"name = \"mine\"\n\n[bench]\nrunz = 5\n");
    let o = run(&["bench", "--profile", &p, "--out", &out], &ws.root);
    let line = clean_failure(&o);
    assert!(line.starts_with(&format!("profile {p}:4:1: unknown field `runz`, expected one of")), "{line}");
    assert_nothing_written(&ws.out());
}

#[test]
fn malformed_recipe_toml() {
    let ws = Ws::new();
    let m = save(&ws, "m.onnx", &conv_relu(13));
    let r = ws.write("bad.toml", b"target = \"mine\"\nsuffix = \"_mine\"\n[[pass]]\nname = reflect-pad\n");
    assert_eq!(
        ws.optimize_fails(&m, &["--recipe", &r]),
        format!("{r}:4:8: string values must be quoted, expected literal string")
    );
    let r = ws.write("nopass.toml", b"target = \"mine\"\nsuffix = \"_mine\"\n");
    assert_eq!(ws.optimize_fails(&m, &["--recipe", &r]), format!("{r}:1:1: missing field `pass`"));
}

// ---- output folders ----

#[test]
fn unwritable_output_folder() {
    let ws = Ws::new();
    let m = save(&ws, "m.onnx", &conv_relu(13));
    // A path below a regular file can never be created, whoever runs the test (root included).
    let file = ws.write("plain-file", b"x");
    let below = format!("{file}/sub");
    let o = run(&["optimize", &m, "--target", "coreml", "--out", &below, "--inputs", "2"], &ws.root);
    assert_eq!(clean_failure(&o), format!("{below}: cannot create folder: Not a directory (os error 20)"));
    let o = run(&["bench", "--role", "swapper", "--out", &below], &ws.root);
    assert_eq!(clean_failure(&o), format!("cannot create {below}/cpu: Not a directory (os error 20)"));

    // A read-only folder, where permissions apply (not for root).
    let ro = ws.root.join("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_ok() {
        eprintln!("running as root: the permission case is covered by the path-below-a-file case only");
        return;
    }
    let o = run(&["optimize", &m, "--target", "coreml", "--out", &s(&ro), "--inputs", "2"], &ws.root);
    assert_eq!(
        clean_failure(&o),
        format!("{}/.m_coreml.onnx.lock: cannot open lock file: Permission denied (os error 13)", s(&ro))
    );
}

/// A 64 KiB tmpfs (needs root), unmounted on drop.
struct SmallFs(PathBuf);
impl SmallFs {
    fn mount(at: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &s(at)])
            .status()
            .is_ok_and(|st| st.success());
        ok.then(|| SmallFs(at.to_path_buf()))
    }
}
impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full() {
    let ws = Ws::new();
    let full = ws.root.join("full");
    let Some(_fs) = SmallFs::mount(&full, "64k") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    // The variant of the tiny swapper replica is larger than the whole file system.
    let swapper = ws.input("inswapper_128.onnx");
    std::fs::copy(synth::replica_path(Role::Swapper, Scale::Tiny).unwrap(), &swapper).unwrap();
    assert!(std::fs::metadata(&swapper).unwrap().len() > 64 * 1024);
    let o = run(
        &["optimize", &s(&swapper), "--target", "coreml", "--out", &s(&full), "--inputs", "2", "--threads", "1"],
        &ws.root,
    );
    assert_eq!(
        clean_failure(&o),
        format!("{}/inswapper_128_coreml.onnx: cannot write: No space left on device (os error 28)", s(&full))
    );
    assert_nothing_written(&full);

    // Bench results: the folder fills up before the run, so the probe refuses it up front.
    let filler = full.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);
    let o = run(&["bench", "--role", "swapper", "--out", &s(&full)], &ws.root);
    assert_eq!(
        clean_failure(&o),
        format!(
            "results folder {}/cpu is not writable: {}/cpu/.write-probe: cannot write: No space left on device (os error 28)",
            s(&full),
            s(&full)
        )
    );
    std::fs::remove_file(&filler).unwrap();
    assert_nothing_written(&full);
}
