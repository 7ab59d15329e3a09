//! Replicas: ORT runs every tiny replica with the real I/O signatures, generation is deterministic,
//! and the op patterns the rewrites target are present at both scales.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use faceperf::models::synth::{self, ensure_replicas, synth_model, synth_skeleton, write_replicas, DEFAULT_SEED};
use faceperf::models::{Role, Scale};
use faceperf::onnx::proto::{tensor_shape_proto::dimension::Value as DimValue, type_proto, ValueInfoProto};
use faceperf::onnx::summary::summarize;
use faceperf::onnx::{GraphIndex, Model, NodeExt, Tensor};
use faceperf::runtime::{self, session::ModelSource, SessionConfig, SessionRunner};
use support::{count, is_reflect_pad, rand};

/// Declared dims of a value: numbers, or the symbol's name.
fn dims(v: &ValueInfoProto) -> Vec<String> {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t
            .shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| match d.value.as_ref().unwrap() {
                DimValue::DimValue(v) => v.to_string(),
                DimValue::DimParam(p) => format!("sym:{p}"),
            })
            .collect(),
        _ => panic!("{} is not a tensor", v.name),
    }
}

/// Inputs for a run, and the output shapes they must produce (in output order).
fn io_for(role: Role) -> (Vec<(String, Tensor)>, Vec<Vec<usize>>) {
    match role {
        Role::Swapper => (
            vec![("target".into(), rand(&[1, 3, 128, 128], 1)), ("source".into(), rand(&[1, 512], 2))],
            vec![vec![1, 3, 128, 128]],
        ),
        Role::Detector => {
            // Non-square on purpose: H and W are symbolic and independent.
            let (h, w) = (96, 160);
            let n = |s: usize| 2 * (h / s) * (w / s);
            let mut outs = vec![];
            for k in [1, 4, 10] {
                for s in [8, 16, 32] {
                    outs.push(vec![n(s), k]);
                }
            }
            (vec![("input.1".into(), rand(&[1, 3, h, w], 3))], outs)
        }
        Role::Recognizer => (vec![("input.1".into(), rand(&[1, 3, 112, 112], 4))], vec![vec![1, 512]]),
        Role::Landmarks => (vec![("data".into(), rand(&[1, 3, 192, 192], 5))], vec![vec![1, 212]]),
        Role::Enhancer => (vec![("input".into(), rand(&[1, 3, 512, 512], 6))], vec![vec![1, 3, 512, 512]]),
    }
}

#[test]
fn ort_runs_every_tiny_replica_with_the_declared_shapes() {
    let dir = ensure_replicas(Scale::Tiny).unwrap();
    let rt = runtime::init(None).expect("ORT available (run ci/setup-ort.sh)");
    for role in Role::ALL {
        let path = dir.join(role.default_file());
        let mut s = SessionRunner::new(rt, ModelSource::File(&path), &SessionConfig::cpu(1)).unwrap();
        let (inputs, want) = io_for(role);
        let outs = s.run(&inputs).unwrap_or_else(|e| panic!("{}: {e:#}", role.name()));
        let got: Vec<Vec<usize>> = outs.iter().map(|(_, t)| t.dims.clone()).collect();
        assert_eq!(got, want, "{} output shapes", role.name());
        for (name, t) in &outs {
            assert!(t.to_f32s().iter().all(|v| v.is_finite()), "{} output {name} has non-finite values", role.name());
        }
        let m = Model::load(&path).unwrap();
        let declared: Vec<String> = m.graph().output.iter().map(|o| o.name.clone()).collect();
        let run: Vec<String> = outs.into_iter().map(|(n, _)| n).collect();
        assert_eq!(declared, run);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for role in Role::ALL {
        let a = synth_model(role, Scale::Tiny, 7).unwrap().to_bytes();
        let b = synth_model(role, Scale::Tiny, 7).unwrap().to_bytes();
        let c = synth_model(role, Scale::Tiny, 8).unwrap().to_bytes();
        assert!(a == b, "{}: same seed, different bytes", role.name());
        assert!(a != c, "{}: different seeds, same bytes", role.name());
        assert_eq!(a.len(), c.len(), "{}: the seed changes weights, not structure", role.name());
    }
}

#[test]
fn written_replicas_are_byte_identical_and_stamped() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let w1 = write_replicas(d1.path(), Scale::Tiny, 11, true).unwrap();
    let w2 = write_replicas(d2.path(), Scale::Tiny, 11, true).unwrap();
    assert_eq!(w1.iter().map(|(r, _)| *r).collect::<Vec<_>>(), Role::ALL.to_vec());
    for ((role, p1), (_, p2)) in w1.iter().zip(&w2) {
        assert_eq!(p1.file_name().unwrap(), role.default_file());
        assert!(std::fs::read(p1).unwrap() == std::fs::read(p2).unwrap(), "{}", role.name());
        assert!(std::fs::read(p1).unwrap() == synth_model(*role, Scale::Tiny, 11).unwrap().to_bytes());
    }
    let stamp: synth::Stamp =
        serde_json::from_slice(&std::fs::read(d1.path().join(synth::STAMP_FILE)).unwrap()).unwrap();
    assert_eq!(stamp.seed, 11);
    assert_eq!(stamp.files.len(), 5);
    assert_eq!(stamp.files["det_10g.onnx"], faceperf::util::hash::sha256_file(&w1[0].1).unwrap());
}

#[test]
fn ensure_replicas_is_safe_concurrently_and_matches_synth_model() {
    // Several threads at once: each must come back with a complete, stamped folder.
    let dirs: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| ensure_replicas(Scale::Tiny).unwrap()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(dirs.windows(2).all(|w| w[0] == w[1]));
    let dir = &dirs[0];
    for role in Role::ALL {
        let want = synth_model(role, Scale::Tiny, DEFAULT_SEED).unwrap().to_bytes();
        assert!(std::fs::read(dir.join(role.default_file())).unwrap() == want, "{}", role.name());
    }
}

#[test]
fn ensure_logic_regenerates_stale_content_not_by_time() {
    // The same staleness rules as ensure_replicas, on a private folder.
    let d = tempfile::tempdir().unwrap();
    let written = write_replicas(d.path(), Scale::Tiny, DEFAULT_SEED, true).unwrap();
    let det = &written[0].1;
    let good = std::fs::read(det).unwrap();
    // Same length, one byte changed: only a content check notices.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(det, &bad).unwrap();
    std::fs::remove_file(&written[4].1).unwrap();
    synth::ensure_dir(d.path(), Scale::Tiny, DEFAULT_SEED).unwrap();
    assert!(std::fs::read(det).unwrap() == good);
    assert!(written[4].1.is_file());
}

/// Gathers whose index is a rank-0 initializer.
fn scalar_gathers(m: &Model) -> usize {
    let idx = GraphIndex::new(m.graph()).unwrap();
    count(m, |n| n.op_type == "Gather" && idx.initializer(m.graph(), &n.input[1]).is_some_and(|t| t.dims.is_empty()))
}

#[test]
fn swapper_has_emap_last_and_reflect_pads() {
    let m = synth_model(Role::Swapper, Scale::Tiny, DEFAULT_SEED).unwrap();
    let last = m.graph().initializer.last().unwrap();
    assert_eq!(last.name, "emap");
    assert_eq!(last.dims, vec![512, 512]);
    let consumers = GraphIndex::new(m.graph()).unwrap();
    assert!(consumers.consumers_of("emap").is_empty(), "insightface applies emap outside the graph");
    let pads = count(&m, is_reflect_pad);
    assert_eq!(pads, 14);
    let idx = GraphIndex::new(m.graph()).unwrap();
    for n in m.graph().node.iter().filter(|n| is_reflect_pad(n)) {
        // opset ≥ 11 form: pads is a constant input; every reflect Pad feeds a 3×3 or 7×7 conv.
        assert!(idx.initializer(m.graph(), &n.input[1]).is_some());
        let c = &m.graph().node[idx.consumers_of(&n.output[0])[0]];
        assert_eq!(c.op_type, "Conv");
        let k = idx.initializer(m.graph(), &c.input[1]).unwrap().dims[2];
        assert!(k == 3 || k == 7, "kernel {k}");
    }
    for op in ["InstanceNormalization", "Gemm", "Resize", "Tanh"] {
        assert!(count(&m, |n| n.op_type == op) > 0, "{op}");
    }
    // The style Gemms read the source latent directly.
    assert_eq!(count(&m, |n| n.op_type == "Gemm" && n.input[0] == "source"), 2 * synth::SWAPPER_STYLE_BLOCKS);
    let names: Vec<String> = m.graph().input.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, ["target", "source"]);
    assert_eq!(dims(&m.graph().input[0]), ["1", "3", "128", "128"]);
    assert_eq!(dims(&m.graph().input[1]), ["1", "512"]);
}

#[test]
fn detector_has_nine_outputs_in_order_symbolic_input_and_shape_chains() {
    let m = synth_model(Role::Detector, Scale::Tiny, DEFAULT_SEED).unwrap();
    let g = m.graph();
    assert_eq!(g.input[0].name, "input.1");
    assert_eq!(dims(&g.input[0]), ["1", "3", "sym:h", "sym:w"]);
    let outs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, synth::DETECTOR_OUTPUTS);
    assert!(outs.iter().all(|o| o.parse::<u32>().is_ok()), "numeric names like the exporter's");
    let widths: Vec<String> = g.output.iter().map(|o| dims(o)[1].clone()).collect();
    assert_eq!(widths, ["1", "1", "1", "4", "4", "4", "10", "10", "10"]);
    assert!(g.output.iter().all(|o| dims(o).len() == 2 && dims(o)[0].starts_with("sym:")));
    // Shape → Gather → Unsqueeze → Concat → (Reshape | Resize) chains.
    let idx = GraphIndex::new(g).unwrap();
    let mut chains = BTreeMap::<String, usize>::new();
    for n in g.node.iter().filter(|n| n.op_type == "Shape") {
        let gather = &g.node[idx.consumers_of(&n.output[0])[0]];
        assert_eq!(gather.op_type, "Gather");
        let unsq = &g.node[idx.consumers_of(&gather.output[0])[0]];
        assert_eq!(unsq.op_type, "Unsqueeze");
        let concat = &g.node[idx.consumers_of(&unsq.output[0])[0]];
        assert_eq!(concat.op_type, "Concat");
        let user = &g.node[idx.consumers_of(&concat.output[0])[0]];
        *chains.entry(user.op_type.clone()).or_default() += 1;
    }
    assert_eq!(chains.get("Reshape"), Some(&9), "one per head output");
    assert_eq!(chains.get("Resize"), Some(&8), "4 dims for each of 2 top-down resizes");
    // With the input fixed at 640×640 everything resolves to the real output shapes.
    let shapes = HashMap::from([("input.1".to_string(), vec![1, 3, 640, 640])]);
    let info = faceperf::onnx::shape::infer(&m, &shapes).unwrap();
    let rows: Vec<i64> = outs.iter().map(|o| info.shape(o).unwrap()[0]).collect();
    assert_eq!(rows, [12800, 3200, 800, 12800, 3200, 800, 12800, 3200, 800]);
}

#[test]
fn enhancer_has_split_axis1_and_scalar_gathers() {
    let m = synth_model(Role::Enhancer, Scale::Tiny, DEFAULT_SEED).unwrap();
    let splits = count(&m, |n| n.op_type == "Split" && n.attr_i("axis", 0) == 1 && n.output.len() == 2);
    assert_eq!(splits, 7, "one SFT split per decoder level 8..512");
    assert_eq!(scalar_gathers(&m), synth::ENHANCER_STYLE_CODES);
    assert_eq!(m.opset(""), Some(11));
    assert_eq!(m.graph().input[0].name, "input");
    assert_eq!(dims(&m.graph().input[0]), ["1", "3", "512", "512"]);
}

/// Op types, pattern counts, (name, rank) of inputs and of outputs.
type Fingerprint = (BTreeSet<String>, [usize; 5], Vec<(String, usize)>, Vec<(String, usize)>);

/// Structural fingerprint: op types and the counts of the patterns the rewrites act on.
fn patterns(m: &Model) -> Fingerprint {
    let ops = m.graph().node.iter().map(|n| n.op_type.clone()).collect();
    let counts = [
        count(m, is_reflect_pad),
        count(m, |n| n.op_type == "Split"),
        scalar_gathers(m),
        count(m, |n| n.op_type == "Shape"),
        count(m, |n| n.op_type == "Resize"),
    ];
    let io = |v: &[ValueInfoProto]| v.iter().map(|v| (v.name.clone(), dims(v).len())).collect();
    (ops, counts, io(&m.graph().input), io(&m.graph().output))
}

#[test]
fn tiny_and_full_share_patterns_and_io() {
    for role in Role::ALL {
        let tiny = synth_model(role, Scale::Tiny, DEFAULT_SEED).unwrap();
        let full = synth_skeleton(role, Scale::Full).unwrap();
        assert_eq!(patterns(&tiny), patterns(&full), "{}", role.name());
        assert_eq!(
            tiny.graph().input.iter().map(dims).collect::<Vec<_>>(),
            full.graph().input.iter().map(dims).collect::<Vec<_>>()
        );
        // The skeleton differs from the tiny graph only in widths and depth, not in declared I/O.
        assert_eq!(
            tiny.graph().output.iter().map(dims).collect::<Vec<_>>(),
            full.graph().output.iter().map(dims).collect::<Vec<_>>()
        );
    }
}

#[test]
fn full_scale_counts_are_within_25_percent_of_published() {
    // (role, input shapes, published params, published figure, MACs per published unit)
    type Case = (Role, Vec<(&'static str, Vec<i64>)>, f64, Option<f64>, f64);
    let cases: [Case; 4] = [
        // inswapper: 174.7 GFLOPs, read as 2×MACs.
        (Role::Swapper, vec![], 138.3e6, Some(174.7e9), 0.5),
        // SCRFD-10G-KPS: 10 GFLOPs at VGA from mmcv's counter, which counts MACs.
        (Role::Detector, vec![("input.1", vec![1, 3, 480, 640])], 4.23e6, Some(10e9), 1.0),
        // arcface_torch r50: 6.3 GFLOPs, MACs (OMZ's 12.6 GFLOPs for the same net is 2×MACs).
        (Role::Recognizer, vec![], 43.6e6, Some(6.3e9), 1.0),
        (Role::Landmarks, vec![], 1.2e6, None, 1.0),
    ];
    let within = |got: f64, want: f64| (got / want - 1.0).abs() <= 0.25;
    for (role, shapes, params, figure, macs_per_unit) in cases {
        let m = synth_skeleton(role, Scale::Full).unwrap();
        let shapes: HashMap<String, Vec<i64>> = shapes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let s = summarize(&m, &shapes).unwrap();
        assert_eq!(s.flops_unknown_nodes, 0, "{}", role.name());
        assert!(within(s.parameters as f64, params), "{}: {} params vs {params}", role.name(), s.parameters);
        if let Some(f) = figure {
            let want_macs = f * macs_per_unit;
            assert!(within(s.macs as f64, want_macs), "{}: {} MACs vs {want_macs}", role.name(), s.macs);
        }
    }
    // GFPGANv1.4: no published count; ~85M derived from the 340 MB file.
    let s = summarize(&synth_skeleton(Role::Enhancer, Scale::Full).unwrap(), &HashMap::new()).unwrap();
    assert!(within(s.parameters as f64, 85.0e6), "enhancer: {} params", s.parameters);
}
