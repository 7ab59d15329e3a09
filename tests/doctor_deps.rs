//! `doctor` names the libraries a provider cannot load, routes no role to it, and `bench` fails with one
//! short line: checked against the CUDA build of ONNX Runtime in `../shared/ort-gpu` (unpacked once into
//! `target/ort-gpu-unpacked/`), whose CUDA provider needs CUDA libraries this machine may lack. What
//! counts as missing is decided by the loader itself (`dlopen` of each name from this process).

use std::path::{Path, PathBuf};
use std::process::Command;

use faceperf::runtime::deps;

/// The unpacked CUDA ORT from the project's test assets (`../shared/ort-gpu`); the tests that use it
/// are `needs_shared_*`, run by `ci/test.sh` when the assets are there.
fn cuda_ort() -> PathBuf {
    let src = faceperf::util::assets::shared_file("ort-gpu").expect("the test assets hold ort-gpu/");
    assert!(src.join("unpack.sh").is_file(), "{} has no unpack.sh", src.display());
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ort-gpu-unpacked");
    let lib = dest.join("libonnxruntime.so.1.31.1");
    let provider = dest.join("libonnxruntime_providers_cuda.so");
    if !(lib.is_file() && provider.is_file()) {
        let st = Command::new("bash").arg(src.join("unpack.sh")).arg(&dest).output().unwrap();
        assert!(st.status.success(), "unpack.sh failed: {}", String::from_utf8_lossy(&st.stderr));
    }
    lib
}

/// The CPU ONNX Runtime the tests run on: `ORT_DYLIB_PATH`, else what faceperf's own discovery finds
/// (ci/test.sh installs it first, so there always is one).
fn ort_lib() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => PathBuf::from(p),
        None => faceperf::runtime::discover::discover(None).chosen.expect("an ONNX Runtime (run ci/setup-ort.sh)").0,
    }
}

fn faceperf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faceperf"))
        .args(args)
        .env_remove("ORT_DYLIB_PATH")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// True when the loader finds `name` from this process (no RUNPATH of ours: the CUDA provider's
/// RUNPATH is `$ORIGIN`, which only holds ORT's own files).
fn loader_finds(name: &str) -> bool {
    // SAFETY: loading a CUDA library runs its initialisers only; it is dropped right away.
    unsafe { libloading::Library::new(name) }.is_ok()
}

#[test]
#[ignore = "needs the CUDA build of ORT from ../shared/ort-gpu; ci/test.sh runs it when the test assets are there"]
fn needs_shared_doctor_names_missing_cuda_libraries_and_routes_nothing_to_cuda() {
    let lib = cuda_ort();
    let out = faceperf(&["doctor", "--json", "--ort-lib", lib.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["provider_libraries"].as_array().unwrap();
    let cuda = checks.iter().find(|c| c["provider"] == "CUDAExecutionProvider").expect("the CUDA provider is checked");
    assert_eq!(cuda["listed"], true);
    let missing: Vec<&str> = cuda["missing"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    let linked = ["libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudart.so.13", "libcuda.so.1"];
    for name in linked {
        assert_eq!(
            missing.contains(&name),
            !loader_finds(name),
            "{name}: doctor and the loader disagree ({missing:?})"
        );
    }
    let usable = missing.is_empty();
    // Every missing one is named with what provides it, from the facts of an ORT release.
    for m in cuda["missing"].as_array().unwrap() {
        assert!(m["provides"]["what"].is_string(), "{m}");
        assert!(m["provides"]["ort_release"].is_string(), "{m}");
    }
    if let Some(m) = cuda["missing"].as_array().unwrap().iter().find(|m| m["name"] == "libcudart.so.13") {
        assert_eq!(m["provides"]["what"], "CUDA 13 runtime");
    }
    // No role of any profile routes to CUDA while it cannot load.
    for p in v["routes"].as_array().unwrap() {
        for r in p["routes"].as_array().unwrap() {
            if !usable {
                assert_ne!(r["runs_on"], "CUDAExecutionProvider", "{}: {r}", p["profile"]);
            }
        }
    }
    if !usable {
        let h100 = v["routes"].as_array().unwrap().iter().find(|p| p["profile"] == "h100").unwrap();
        assert!(h100["routes"][0]["problem"].as_str().unwrap().contains("CUDAExecutionProvider cannot load"));
    }
}

#[test]
#[ignore = "needs the CUDA build of ORT from ../shared/ort-gpu; ci/test.sh runs it when the test assets are there"]
fn needs_shared_bench_on_a_provider_that_cannot_load_fails_with_one_short_line() {
    let lib = cuda_ort();
    if loader_finds("libcublasLt.so.13") {
        eprintln!("SKIPPED: this machine has libcublasLt.so.13, so the CUDA provider may load");
        return;
    }
    let out =
        faceperf(&["bench", "--profile", "cuda", "--no-save", "--scale", "tiny", "--ort-lib", lib.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let line = lines[0];
    assert!(line.len() < 250, "{} characters: {line}", line.len());
    assert_eq!(line.matches("libcublasLt.so.13").count(), 1, "{line}");
    assert!(line.contains("faceperf doctor"), "{line}");
}

#[test]
fn the_loaded_cpu_build_has_no_unloadable_provider() {
    // The CPU wheel ships only ORT's own `_shared` helper: nothing to check, nothing unusable.
    let p = ort_lib();
    let listed = vec!["CPUExecutionProvider".to_string()];
    let checks = deps::check_ort_folder(&p, &listed, &deps::SearchPaths::from_env(), deps::Facts::builtin());
    assert!(deps::unusable_providers(&checks).is_empty(), "{checks:?}");
}

#[test]
fn elf_dependencies_of_ort_itself_are_read_and_resolved() {
    let p = ort_lib();
    let d = deps::read_deps(&p).unwrap();
    assert_eq!(d.format, "elf");
    assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", d.needed);
    let paths = deps::SearchPaths::from_env();
    for n in &d.needed {
        // ORT loads in this process, so the loader found every library it links.
        let r = deps::resolve(n, &p, &d, &paths);
        assert!(matches!(r, deps::Resolution::Found { .. }), "{n}: {r:?}");
    }
}
