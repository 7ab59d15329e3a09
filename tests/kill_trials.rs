//! Atomicity under `kill -9`, and locking between concurrent writers.
//!
//! The two `#[ignore]`d trials kill `faceperf models fetch` (against a slowed loopback server) and
//! `faceperf optimize` at seeded random moments, many times, and check after every kill that the
//! models folder and the variant cache hold only complete, verified files: a model file whose sha256
//! is the published one, a variant whose sidecar vouches for its content. Left-overs are allowed
//! only where documented: a `<file>.part` (the resumable download; it must hold a prefix of the
//! file and is never taken for the file itself), empty lock files, and an optimize temporary file
//! (`.<name>.tmp-<pid>`, removed by the next optimize of that variant). Run them with
//! `cargo test --test kill_trials -- --ignored --nocapture`; they print their counts.
//!
//! The other tests run by default: a full-size `.part` with wrong bytes is never placed, a second
//! optimize of the same variant waits for the lock (or refuses after `--lock-timeout`), and two
//! concurrent optimizes make the variant once.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use faceperf::models::{synth, Role, Scale};
use faceperf::optimize::{Sidecar, VariantLock};
use faceperf::util::hash::{sha256_file, sha256_hex};
use faceperf::util::rng::Rng;
use support::http::{Route, Server};

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

// ---------------------------------------------------------------------------------------------

fn payload(n: usize) -> Vec<u8> {
    let mut rng = Rng::new(2024);
    (0..n).map(|_| (rng.next_u64() >> 40) as u8).collect()
}

/// Serves `body` as `/m.onnx`, pausing `pause` after each 16 KiB chunk.
fn slow_server(body: &[u8], pause: Duration) -> Server {
    Server::start_with(vec![("/m.onnx", Route { body: body.to_vec(), pause, ..Default::default() })])
}

/// A manifest with one model `m` served by `srv`.
fn write_manifest(dir: &Path, srv: &Server, body: &[u8]) -> PathBuf {
    let text = format!(
        "version = 1\n\n[[models]]\nname = \"m\"\nfile = \"m.onnx\"\nrole = \"swapper\"\nurls = [\"{}/m.onnx\"]\nsize = {}\nsha256 = \"{}\"\n",
        srv.base,
        body.len(),
        sha256_hex(body)
    );
    let p = dir.join("manifest.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn fetch_cmd(manifest: &Path, dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--json", "models", "fetch", "m", "--retries", "0", "--manifest"])
        .arg(manifest)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Kills `child` with SIGKILL after `after` unless it exits first; true when it was killed.
fn kill_after(mut child: Child, after: Duration) -> (bool, Output) {
    let deadline = Instant::now() + after;
    loop {
        if child.try_wait().unwrap().is_some() {
            return (false, child.wait_with_output().unwrap());
        }
        if Instant::now() >= deadline {
            child.kill().unwrap(); // SIGKILL on Unix
            return (true, child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills `child` with SIGKILL as soon as `seen()` holds (polled every 100 µs), unless it exits
/// first; true when it was killed. Lands kills inside windows of a few milliseconds.
fn kill_when(mut child: Child, seen: impl Fn() -> bool) -> (bool, Output) {
    loop {
        if child.try_wait().unwrap().is_some() {
            return (false, child.wait_with_output().unwrap());
        }
        if seen() {
            child.kill().unwrap();
            return (true, child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// What a models folder holds after a trial.
#[derive(Debug, Default, PartialEq)]
struct FetchState {
    complete: bool,
    part_bytes: Option<usize>,
}

/// Checks the models folder: `m.onnx` verified, `m.onnx.part` a prefix of the file, lock files
/// empty, nothing else.
fn check_models_dir(dir: &Path, body: &[u8]) -> FetchState {
    let mut st = FetchState::default();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        match name.as_str() {
            "m.onnx" => {
                assert_eq!(sha256_file(&p).unwrap(), sha256_hex(body), "a placed file must be the verified file");
                st.complete = true;
            }
            "m.onnx.part" => {
                let got = std::fs::read(&p).unwrap();
                assert!(got.len() <= body.len() && got[..] == body[..got.len()], "the part file holds a prefix");
                st.part_bytes = Some(got.len());
            }
            ".m.onnx.lock" => assert_eq!(std::fs::metadata(&p).unwrap().len(), 0),
            other => panic!("unexpected file in the models folder: {other}"),
        }
    }
    st
}

#[test]
#[ignore = "kill -9 trials (about a minute); run with --ignored --nocapture"]
fn kill_trials_models_fetch() {
    const TRIALS: usize = 40;
    let body = payload(2 << 20);
    // 128 chunks of 16 KiB × 8 ms ≈ 1 s per full transfer, so that a kill lands mid-transfer.
    let srv = slow_server(&body, Duration::from_millis(8));
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write_manifest(tmp.path(), &srv, &body);
    let dir = tmp.path().join("models");
    let mut rng = Rng::new(7);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut resumed = 0;
    for _ in 0..TRIALS {
        let before = check_models_dir_or_empty(&dir, &body);
        let delay = Duration::from_millis(rng.below(700) as u64);
        let (killed, out) = kill_after(fetch_cmd(&manifest, &dir).spawn().unwrap(), delay);
        let after = check_models_dir(&dir, &body);
        let outcome = match (killed, &after) {
            (false, _) => {
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                assert!(after.complete && after.part_bytes.is_none());
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                if v[0]["resumed_from"].as_u64().unwrap_or(0) > 0 {
                    resumed += 1;
                }
                "completed"
            }
            (true, FetchState { complete: true, .. }) => "killed after placing the verified file",
            (true, FetchState { part_bytes: Some(n), .. }) if Some(*n) > before.part_bytes => {
                "killed mid-transfer (part grew)"
            }
            (true, FetchState { part_bytes: Some(_), .. }) => "killed before receiving more",
            (true, _) => "killed before the transfer began",
        };
        *counts.entry(outcome).or_default() += 1;
        if after.complete {
            // Start over so the next trial downloads again.
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    // Whatever the trials left, one more fetch completes it.
    let out = fetch_cmd(&manifest, &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(check_models_dir(&dir, &body), FetchState { complete: true, part_bytes: None });
    eprintln!("models fetch: {TRIALS} kill trials, {} bytes over a slowed loopback server", body.len());
    for (k, v) in &counts {
        eprintln!("  {v:>3}  {k}");
    }
    eprintln!("  {resumed:>3}  completed runs that resumed a part file");
    eprintln!("  violations: 0 (every state checked after every trial)");
    assert!(counts.keys().any(|k| k.contains("mid-transfer")), "some kills must land mid-transfer: {counts:?}");
}

fn check_models_dir_or_empty(dir: &Path, body: &[u8]) -> FetchState {
    if dir.is_dir() {
        check_models_dir(dir, body)
    } else {
        FetchState::default()
    }
}

#[test]
fn a_part_file_with_the_wrong_bytes_is_never_taken_for_the_file() {
    let body = payload(256 * 1024);
    let srv = slow_server(&body, Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write_manifest(tmp.path(), &srv, &body);
    let dir = tmp.path().join("models");
    std::fs::create_dir_all(&dir).unwrap();
    // Full size but wrong content: nothing to download, and the hash must refuse it.
    let mut wrong = body.clone();
    wrong[1000] ^= 0xff;
    std::fs::write(dir.join("m.onnx.part"), &wrong).unwrap();
    let out = fetch_cmd(&manifest, &dir).output().unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = v[0]["error"].as_str().unwrap();
    assert!(err.starts_with("sha256 mismatch for m.onnx from "), "{err}");
    assert!(err.ends_with("; the download was deleted"), "{err}");
    assert!(!dir.join("m.onnx").exists() && !dir.join("m.onnx.part").exists());
    // The next fetch downloads the real file.
    let out = fetch_cmd(&manifest, &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(check_models_dir(&dir, &body), FetchState { complete: true, part_bytes: None });
}

// ---------------------------------------------------------------------------------------------
// optimize

const VARIANT: &str = "inswapper_128_coreml.onnx";
const SIDECAR: &str = "inswapper_128_coreml.json";
const LOCK: &str = ".inswapper_128_coreml.onnx.lock";

/// The tiny swapper replica in `tmp/in`, and `tmp/out` for the variants.
fn optimize_setup(tmp: &Path) -> (PathBuf, PathBuf) {
    let src = tmp.join("in").join("inswapper_128.onnx");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    std::fs::copy(synth::replica_path(Role::Swapper, Scale::Tiny).unwrap(), &src).unwrap();
    (src, tmp.join("out"))
}

fn optimize_cmd(src: &Path, out: &Path, tool_version: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--json", "optimize"])
        .arg(src)
        .args(["--target", "coreml", "--inputs", "2", "--threads", "1", "--tool-version", tool_version, "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// What the cache folder holds after a trial.
#[derive(Debug, Default)]
struct CacheState {
    variant: bool,
    sidecar: bool,
    temps: usize,
}

/// Checks the cache folder: a variant only with a sidecar vouching for its bytes, sidecars that
/// parse, empty locks, optimize's own temporary files, nothing else.
fn check_cache(out: &Path) -> CacheState {
    let mut st = CacheState::default();
    let Ok(rd) = std::fs::read_dir(out) else { return st };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if name == VARIANT {
            let s = Sidecar::read(&out.join(SIDECAR)).expect("a variant on disk has a readable sidecar");
            assert_eq!(sha256_file(&p).unwrap(), s.variant.sha256, "the sidecar vouches for the variant's bytes");
            assert!(s.equivalence.passed);
            faceperf::onnx::Model::load(&p).expect("the variant loads");
            st.variant = true;
        } else if name == SIDECAR {
            Sidecar::read(&p).expect("sidecars are written whole");
            st.sidecar = true;
        } else if name == LOCK {
            assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        } else if name.starts_with(&format!(".{VARIANT}.tmp-")) || name.starts_with(&format!(".{SIDECAR}.tmp-")) {
            st.temps += 1;
        } else {
            panic!("unexpected file in the cache: {name}");
        }
    }
    st
}

#[test]
#[ignore = "kill -9 trials (a few minutes); run with --ignored --nocapture"]
fn kill_trials_optimize() {
    // Kills at random times, then kills timed to the few-millisecond windows of the write.
    const TRIALS: usize = 30;
    const TARGETED: usize = 10;
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = optimize_setup(tmp.path());
    // One uninterrupted run sets the time scale of the kills.
    let t0 = Instant::now();
    let o = optimize_cmd(&src, &out, "trial-base", &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t0.elapsed();
    let mut rng = Rng::new(11);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut max_temps = 0;
    let staged = |out: &Path| {
        std::fs::read_dir(out).is_ok_and(|rd| {
            rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&format!(".{VARIANT}.tmp-")))
        })
    };
    let sidecar_of = |out: &Path, version: &str| {
        std::fs::read_to_string(out.join(SIDECAR)).is_ok_and(|t| t.contains(&format!("\"{version}\"")))
    };
    for trial in 0..TRIALS + 2 * TARGETED {
        // A new tool version each trial makes every run rewrite (and replace) the variant.
        let version = format!("trial-{trial}");
        let child = optimize_cmd(&src, &out, &version, &[]).spawn().unwrap();
        let (killed, o) = if trial < TRIALS {
            kill_after(child, full.mul_f64(rng.below(1300) as f64 / 1000.0))
        } else if trial < TRIALS + TARGETED {
            // The moment the new variant's temporary file appears.
            kill_when(child, || staged(&out))
        } else {
            // The moment the new sidecar is in place (the variant is renamed next).
            kill_when(child, || sidecar_of(&out, &version))
        };
        let st = check_cache(&out);
        max_temps = max_temps.max(st.temps);
        let outcome = if !killed {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(st.variant && st.sidecar && st.temps == 0);
            "completed".to_string()
        } else {
            let s = Sidecar::read(&out.join(SIDECAR));
            let mine = s.as_ref().is_some_and(|s| s.tool_version == version);
            match (st.variant, mine) {
                (true, true) => "killed after the new variant was in place",
                (false, true) => "killed between sidecar and variant (no variant: remade next time)",
                (true, false) => "killed before writing (previous variant intact)",
                (false, false) => "killed after removing the previous variant, before the sidecar",
            }
            .to_string()
                + if st.temps > 0 { " [temp file left]" } else { "" }
        };
        *counts.entry(outcome).or_default() += 1;
    }
    // The next run cleans up and leaves a vouched variant; --check agrees.
    let o = optimize_cmd(&src, &out, "final", &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = check_cache(&out);
    assert!(st.variant && st.sidecar && st.temps == 0, "{st:?}");
    let o = optimize_cmd(&src, &out, "final", &["--check", "--quick"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!(
        "optimize: {} kill trials: {TRIALS} at random over 0..1.3 × {:.2} s (one uninterrupted run), {TARGETED} when \
         the staged variant appears, {TARGETED} when the new sidecar appears",
        TRIALS + 2 * TARGETED,
        full.as_secs_f64()
    );
    for (k, v) in &counts {
        eprintln!("  {v:>3}  {k}");
    }
    eprintln!("  most temp files seen at once: {max_temps}; all removed by the next run");
    eprintln!("  violations: 0 (every state checked after every trial)");
}

#[test]
fn a_second_optimize_waits_for_the_lock_or_refuses_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = optimize_setup(tmp.path());
    std::fs::create_dir_all(&out).unwrap();
    // This test holds the variant's lock, as a running optimize would.
    let lock_path = out.join(LOCK);
    let held = VariantLock::acquire(&lock_path, &out.join(VARIANT), Duration::from_secs(1), &|| {}).unwrap();

    // With a short timeout: one clean error line, nothing written.
    let o = optimize_cmd(&src, &out, "v", &["--lock-timeout", "1"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [format!(
            "error: {}: another `faceperf optimize` is still writing this variant after 1 s (lock {} held); wait for \
             it to finish or raise --lock-timeout",
            out.join(VARIANT).display(),
            lock_path.display()
        )]
    );
    let st = check_cache(&out);
    assert!(!st.variant && !st.sidecar && st.temps == 0);

    // With the default timeout it waits: nothing can be written while the lock is held.
    let waiting = optimize_cmd(&src, &out, "v", &[]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let st = check_cache(&out);
    assert!(!st.variant && !st.sidecar, "written while another process held the lock");
    drop(held);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["result"], "created");
    let st = check_cache(&out);
    assert!(st.variant && st.sidecar && st.temps == 0);
}

#[test]
fn two_concurrent_optimizes_make_the_variant_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = optimize_setup(tmp.path());
    let a = optimize_cmd(&src, &out, "v", &[]).spawn().unwrap();
    let b = optimize_cmd(&src, &out, "v", &[]).spawn().unwrap();
    let mut results = Vec::new();
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        results.push(rows[0]["result"].as_str().unwrap().to_string());
    }
    results.sort();
    // Whichever took the lock first made it; the other waited (or came later) and reused it.
    assert_eq!(results, ["created", "reused"]);
    let st = check_cache(&out);
    assert!(st.variant && st.sidecar && st.temps == 0);
}
