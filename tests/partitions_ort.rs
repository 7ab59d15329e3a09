//! The planner's simulation of ORT's pre-partition optimisations, checked against ONNX Runtime
//! itself: ORT's basic (level-1) optimisations run on the CPU and save the optimised graph; its ops
//! must be those of the graph the planner partitions.

use std::collections::BTreeMap;
use std::path::Path;

use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::Model;
use faceperf::partition::{self, Ep, PlanOptions};
use faceperf::runtime;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

fn histogram(m: &Model) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for n in &m.graph().node {
        *h.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    h
}

/// Op histogram of the graph ORT's level-1 optimisations leave, optionally with symbolic dims fixed.
fn ort_basic_nodes(model: &Model, dims: &[(&str, i64)], dir: &Path) -> BTreeMap<String, usize> {
    let rt = runtime::init(None).expect("ORT available (run ci/setup-ort.sh)");
    let out = dir.join("optimised.onnx");
    let mut b = Session::builder(rt.environment())
        .unwrap()
        .with_optimization_level(GraphOptimizationLevel::Level1)
        .unwrap()
        .with_optimized_model_path(&out)
        .unwrap();
    for (name, size) in dims {
        b = b.with_dimension_override(name, *size).unwrap();
    }
    let _session = b.commit_from_memory(&model.to_bytes()).unwrap();
    histogram(&Model::load(&out).unwrap())
}

/// Op histogram of the graph the planner partitions (and a check that the plan covers it).
fn planned_nodes(model: &Model, shapes: &[(&str, Vec<i64>)]) -> BTreeMap<String, usize> {
    let mut opts = PlanOptions::new(Ep::Coreml, "1.22".parse().unwrap());
    opts.input_shapes = shapes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let (optimised, _) = partition::prepass::run(model, &opts.input_shapes).unwrap();
    assert_eq!(partition::plan(model, &opts).unwrap().nodes, optimised.graph().node.len());
    histogram(&optimised)
}

#[test]
fn prepass_node_counts_match_ort_basic_optimisations() {
    let dir = tempfile::tempdir().unwrap();
    for role in Role::ALL {
        let m = synth::synth_model(role, Scale::Tiny, synth::DEFAULT_SEED).unwrap();
        assert_eq!(planned_nodes(&m, &[]), ort_basic_nodes(&m, &[], dir.path()), "{}", role.name());
    }
    // The detector with its symbolic H and W fixed by the session: ORT folds the shape chains.
    let m = synth::synth_model(Role::Detector, Scale::Tiny, synth::DEFAULT_SEED).unwrap();
    assert_eq!(
        planned_nodes(&m, &[("input.1", vec![1, 3, 640, 640])]),
        ort_basic_nodes(&m, &[("h", 640), ("w", 640)], dir.path())
    );
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_real_scrfd_prepass_node_counts_match_ort_basic_optimisations() {
    let dir = tempfile::tempdir().unwrap();
    let real = faceperf::util::assets::shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap();
    let m = Model::load(&real).unwrap();
    assert_eq!(planned_nodes(&m, &[]), ort_basic_nodes(&m, &[], dir.path()), "scrfd_500m");
}
