//! The IOBinding path (what CUDA graphs use) gives the same outputs as plain runs, run after run,
//! including when stages on several threads share one bound session through its lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use faceperf::onnx::graph::attr;
use faceperf::onnx::{Dim, GraphBuilder, Model, Tensor};
use faceperf::runtime::binding::{BindDevice, BoundSession};
use faceperf::runtime::{self, session::ModelSource, SessionConfig, SessionRunner};
use faceperf::util::rng::Rng;

/// Two inputs, two outputs; the first input has a symbolic batch dim to exercise shape overrides.
fn model() -> Model {
    let mut rng = Rng::new(11);
    let mut b = GraphBuilder::new("bind");
    let x =
        b.input("x", faceperf::onnx::DataType::Float, &[Dim::from("n"), Dim::Fixed(4), Dim::Fixed(8), Dim::Fixed(8)]);
    let s = b.input_f32("s", &[1, 4]);
    let w = b.init("w", &Tensor::f32(&[4, 4, 3, 3], rng.vec(144, -0.5, 0.5)));
    let c = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 1, 1, 1])]);
    let axes = b.init("axes", &Tensor::i64_vec(&[2, 3]));
    let su = b.op("Unsqueeze", &[&s, &axes], &[]);
    let m = b.op("Mul", &[&c, &su], &[]);
    b.node("Tanh", &[&m], &["img"], &[]);
    let pooled = b.op("GlobalAveragePool", &[&c], &[]);
    b.node("Flatten", &[&pooled], &["vec"], &[]);
    b.output("img", faceperf::onnx::DataType::Float, None);
    b.output("vec", faceperf::onnx::DataType::Float, None);
    b.build(13)
}

fn inputs(seed: u64) -> Vec<(String, Tensor)> {
    let mut r = Rng::new(seed);
    vec![
        ("x".into(), Tensor::f32(&[2, 4, 8, 8], r.vec(512, -1.0, 1.0))),
        ("s".into(), Tensor::f32(&[1, 4], r.vec(4, 0.5, 2.0))),
    ]
}

#[test]
fn bound_runs_match_plain_runs() {
    let rt = runtime::init(None).unwrap();
    let bytes = model().to_bytes();
    let mut plain = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(1)).unwrap();
    let shapes: HashMap<String, Vec<i64>> = [("x".to_string(), vec![2, 4, 8, 8])].into();
    let (mut bound, fallback) =
        BoundSession::create(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(1), BindDevice::Cpu, &shapes).unwrap();
    assert!(fallback.is_none());
    for seed in 0..4 {
        let ins = inputs(seed);
        let a = plain.run(&ins).unwrap();
        let b = bound.run(&ins).unwrap();
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(b[0].1.dims, vec![2, 4, 8, 8]);
    }
    assert_eq!(bound.runs, 4);
}

#[test]
fn shared_bound_session_serialises_concurrent_stages() {
    let rt = runtime::init(None).unwrap();
    let bytes = model().to_bytes();
    let shapes: HashMap<String, Vec<i64>> = [("x".to_string(), vec![2, 4, 8, 8])].into();
    let mut plain = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(1)).unwrap();
    let expected: Vec<_> = (0..8).map(|s| plain.run(&inputs(s)).unwrap()).collect();
    let (bound, _) =
        BoundSession::create(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(1), BindDevice::Cpu, &shapes).unwrap();
    let shared = Arc::new(Mutex::new(bound));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                (0..8u64)
                    .filter(|s| s % 4 == t)
                    .map(|s| (s, shared.lock().unwrap().run(&inputs(s)).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for (s, out) in h.join().unwrap() {
            assert_eq!(out, expected[s as usize], "seed {s} got another stage's buffers");
        }
    }
}

#[test]
fn dynamic_input_without_shape_is_a_clear_error() {
    let rt = runtime::init(None).unwrap();
    let bytes = model().to_bytes();
    let r = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(1)).unwrap();
    let e = BoundSession::new(r, BindDevice::Cpu, &HashMap::new()).err().unwrap().to_string();
    assert!(e.contains("input 'x' has dynamic dims"), "{e}");
}

/// Plain runs of a session that captures CUDA graphs must stay out of capture and replay: a plain
/// run that captured would record ORT's temporary copies of its feeds and fetches, and every later
/// bound run would replay those addresses instead of the bound buffers (wrong outputs on the H100).
#[test]
fn plain_runs_of_a_graph_session_skip_capture_and_replay() {
    use faceperf::runtime::session::{plain_run_options, CUDA_GRAPH_ANNOTATION_KEY, CUDA_GRAPH_SKIP};
    runtime::init(None).unwrap();
    let graphs: SessionConfig =
        toml::from_str(r#"providers = [{ kind = "cuda", device_id = 0, tf32 = true, cuda_graph = true }]"#).unwrap();
    assert!(graphs.uses_cuda_graph());
    let mut options = plain_run_options(&graphs).unwrap().expect("a graph session's plain runs need run options");
    assert_eq!(options.get(CUDA_GRAPH_ANNOTATION_KEY).as_deref(), Some(CUDA_GRAPH_SKIP));
    assert!(plain_run_options(&graphs.without_cuda_graphs()).unwrap().is_none());
    assert!(plain_run_options(&SessionConfig::cpu(1)).unwrap().is_none());

    // On the CPU no session captures, so plain runs take no options and behave as before.
    let bytes = model().to_bytes();
    let plain =
        SessionRunner::new(runtime::init(None).unwrap(), ModelSource::Bytes(&bytes), &SessionConfig::cpu(1)).unwrap();
    assert!(!plain.plain_runs_skip_graphs());
}
