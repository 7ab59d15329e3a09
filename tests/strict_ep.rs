//! No silent fallback: `--strict-ep` / `strict_ep = true` fail at load when the requested execution
//! provider leaves nodes to the CPU, naming them, the partition planner's verdict and the fixing
//! rewrite. ORT cannot run CoreML here, so the planner's partitioning stands in for ORT's (the CPU-EP
//! fallback is simulated by its rules), on the swapper replica with its 14 reflect Pads.

use faceperf::models::{synth, Role, Scale};
use faceperf::partition::fallback;
use faceperf::profile::Profile;
use faceperf::runtime::session::ModelSource;
use faceperf::runtime::{self, EpConfig, SessionConfig, SessionRunner};

fn coreml(format: &str) -> EpConfig {
    EpConfig::Coreml { format: format.into(), compute_units: "all".into(), static_shapes: true, cache_dir: None }
}

fn swapper() -> faceperf::onnx::Model {
    synth::synth_model(Role::Swapper, Scale::Tiny, synth::DEFAULT_SEED).unwrap()
}

#[test]
fn reflect_pads_under_coreml_before_1_26_are_named_with_the_fixing_rewrite() {
    let m = swapper();
    let f = fallback::check(&m, &coreml("mlprogram"), "1.22.0").expect("CoreML has planner rules");
    assert_eq!(f.cpu_nodes.len(), 14);
    assert!(f.cpu_nodes.iter().all(|n| n.op == "Pad"));
    let line = f.strict_error("inswapper_128.onnx");
    assert!(!line.contains('\n'));
    assert!(line.starts_with("inswapper_128.onnx: --strict-ep: CoreMLExecutionProvider does not take 14 of"), "{line}");
    // The first nodes by name, with the rule's reason.
    assert!(line.contains(&f.cpu_nodes[0].name) && line.contains(&f.cpu_nodes[1].name), "{line}");
    assert!(line.contains("constant-mode"), "{line}");
    assert!(line.contains("11 more"), "{line}");
    assert!(line.contains("partition planner (ORT 1.22, mlprogram): 14 partition(s)"), "{line}");
    assert!(line.contains("fix: `faceperf optimize --target coreml` (pass reflect-pad: 14 → 0 CPU node(s))"), "{line}");
    let note = f.note("inswapper_128.onnx").unwrap();
    assert!(note.starts_with("inswapper_128.onnx: 14 of") && note.contains("go to the CPU provider"), "{note}");

    // From ORT 1.26 ML Program builds reflect Pad: nothing falls back, nothing to say.
    let f = fallback::check(&m, &coreml("mlprogram"), "1.26.0").unwrap();
    assert!(f.cpu_nodes.is_empty() && f.note("x").is_none() && f.fix.is_none());
    // The CPU provider has no fallback to check.
    assert!(fallback::check(&m, &EpConfig::default(), "1.22.0").is_none());
}

#[test]
fn a_strict_session_fails_at_load_with_one_line_naming_the_nodes() {
    let rt = runtime::init(None).unwrap();
    let bytes = swapper().to_bytes();
    // NeuralNetwork never builds reflect Pad, whatever the ORT version (the loaded one is the
    // planner's), so the session path refuses before ORT is asked for a provider it lacks here.
    let cfg = SessionConfig { providers: vec![coreml("neuralnetwork")], strict_ep: true, ..SessionConfig::cpu(1) };
    let e = match SessionRunner::new(rt, ModelSource::Bytes(&bytes), &cfg) {
        Ok(_) => panic!("a strict CoreML session must not load here"),
        Err(e) => format!("{e:#}"),
    };
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("--strict-ep: CoreMLExecutionProvider does not take"), "{e}");
    assert!(e.contains("Pad") && e.contains("NeuralNetwork"), "{e}");
    assert!(e.contains(", neuralnetwork)"), "{e}");

    // Strict on the CPU provider: nothing can fall back (ORT would count every node as fallback), the
    // session loads.
    let det = synth::synth_model(Role::Detector, Scale::Tiny, synth::DEFAULT_SEED).unwrap().to_bytes();
    let cfg = SessionConfig { strict_ep: true, ..SessionConfig::cpu(1) };
    let s = SessionRunner::new(rt, ModelSource::Bytes(&det), &cfg).unwrap();
    assert!(s.fallback_note.is_none());
}

#[test]
fn the_profile_setting_reaches_every_session() {
    let p = Profile::parse("name = \"strict\"\nstrict_ep = true\n", "test").unwrap();
    for role in Role::ALL {
        assert!(p.session_config(role).strict_ep, "{role:?}");
    }
    let p = Profile::parse("name = \"lax\"\n", "test").unwrap();
    assert!(!p.session_config(Role::Swapper).strict_ep);
}
