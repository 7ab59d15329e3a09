//! Partition planner: one test per support rule on small graphs, the grouping algorithm, ORT's
//! pre-partition optimisations, log verification, and the must-show numbers on the replicas.

use std::collections::BTreeMap;

use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::graph::attr;
use faceperf::onnx::{DataType, Dim, GraphBuilder, Model, Tensor};
use faceperf::partition::{self, verify, Ep, Format, OrtVersion, Plan, PlanOptions};
use faceperf::rewrite::{pass_by_name, PassContext};

fn v(s: &str) -> OrtVersion {
    s.parse().unwrap()
}

fn coreml(ort: &str) -> PlanOptions {
    PlanOptions::new(Ep::Coreml, v(ort))
}

fn plan(m: &Model, opts: &PlanOptions) -> Plan {
    partition::plan(m, opts).unwrap()
}

/// The verdict for the first node of type `op`: (on the EP?, rule, reason, hint).
fn verdict(p: &Plan, op: &str) -> (bool, String, String, Option<String>) {
    let n = p.verdicts.iter().find(|n| n.op == op).unwrap_or_else(|| panic!("no {op} in the plan"));
    (n.placement == "ep", n.rule.clone(), n.reason.clone().unwrap_or_default(), n.hint.clone())
}

/// x → Relu → OP(...) → Relu → y: the op under test sits between two claimed nodes.
fn sandwich(opset: i64, x_dims: &[Dim], build: impl FnOnce(&mut GraphBuilder, &str) -> String) -> Model {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DataType::Float, x_dims);
    let r = b.op("Relu", &[&x], &[]);
    let y = build(&mut b, &r);
    let out = b.op("Relu", &[&y], &[]);
    b.output(&out, DataType::Float, None);
    b.build(opset)
}

fn fixed(d: &[i64]) -> Vec<Dim> {
    d.iter().map(|&x| Dim::Fixed(x)).collect()
}

fn pad_model(mode: &str, pads: &[i64], dims: &[i64]) -> Model {
    sandwich(13, &fixed(dims), |b, x| {
        let p = b.init("pads", &Tensor::i64_vec(pads));
        b.op("Pad", &[x, &p], &[attr::string("mode", mode)])
    })
}

// ------------------------------------------------------------------ Pad

#[test]
fn reflect_pad_falls_back_before_ort_1_26_and_is_claimed_from_1_26() {
    let m = pad_model("reflect", &[0, 0, 1, 1, 0, 0, 1, 1], &[1, 4, 8, 8]);
    let p = plan(&m, &coreml("1.22"));
    let (on_ep, rule, reason, hint) = verdict(&p, "Pad");
    assert!(!on_ep);
    assert!(rule.starts_with("Pad@1.20-1.26"), "{rule}");
    assert!(reason.contains("constant-mode"), "{reason}");
    assert!(hint.unwrap().contains("ORT 1.26"));
    assert_eq!(p.partitions.len(), 2, "Relu | Pad on CPU | Relu");
    assert_eq!(p.partitions[0].border[0].op, "Pad");

    let p = plan(&m, &coreml("1.26"));
    assert!(verdict(&p, "Pad").0);
    assert_eq!(p.partitions.len(), 1);

    // NeuralNetwork never builds reflect Pad.
    let p = plan(&m, &coreml("1.27").with_format(Format::Neuralnetwork));
    let (on_ep, _, reason, hint) = verdict(&p, "Pad");
    assert!(!on_ep && reason.contains("NeuralNetwork"), "{reason}");
    assert_eq!(hint.as_deref(), Some("claimed with --format mlprogram"));
}

#[test]
fn reflect_pad_geometry_limits_from_1_26() {
    // Padding the channel axis in reflect mode is not built.
    let m = pad_model("reflect", &[0, 1, 1, 1, 0, 1, 1, 1], &[1, 4, 8, 8]);
    let (on_ep, _, reason, _) = verdict(&plan(&m, &coreml("1.26")), "Pad");
    assert!(!on_ep && reason.contains("last two axes"), "{reason}");
    // A reflect pad as large as the dim is not built.
    let m = pad_model("reflect", &[0, 0, 8, 0, 0, 0, 0, 0], &[1, 4, 8, 8]);
    let (on_ep, _, reason, _) = verdict(&plan(&m, &coreml("1.26")), "Pad");
    assert!(!on_ep && reason.contains("larger than the pads"), "{reason}");
    // Edge mode stays on the CPU even in 1.27.
    let m = pad_model("edge", &[0, 0, 1, 1, 0, 0, 1, 1], &[1, 4, 8, 8]);
    assert!(!verdict(&plan(&m, &coreml("1.27")), "Pad").0);
}

#[test]
fn constant_pad_is_claimed_in_every_release() {
    let m = pad_model("constant", &[0, 0, 1, 1, 0, 0, 1, 1], &[1, 4, 8, 8]);
    for ort in ["1.20", "1.22", "1.26", "1.27"] {
        assert!(verdict(&plan(&m, &coreml(ort)), "Pad").0, "ORT {ort}");
    }
    // NeuralNetwork needs an explicit constant_value.
    let (on_ep, _, reason, _) = verdict(&plan(&m, &coreml("1.22").with_format(Format::Neuralnetwork)), "Pad");
    assert!(!on_ep && reason.contains("constant_value"), "{reason}");
}

// ------------------------------------------------------------------ Split

fn split_model(opset: i64, with_sizes_attr: bool) -> Model {
    sandwich(opset, &fixed(&[1, 8, 4, 4]), |b, x| {
        let mut attrs = vec![attr::int("axis", 1)];
        if with_sizes_attr {
            attrs.push(attr::ints("split", &[4, 4]));
        }
        let parts = b.op_n("Split", &[x], 2, &attrs);
        b.op("Add", &[&parts[0], &parts[1]], &[])
    })
}

#[test]
fn split_attribute_form_is_claimed_from_1_27() {
    let m = split_model(11, true);
    let p = plan(&m, &coreml("1.22"));
    let (on_ep, rule, reason, hint) = verdict(&p, "Split");
    assert!(!on_ep, "{rule}");
    assert!(reason.contains("opset ≥ 13") && reason.contains("opset 11"), "{reason}");
    assert!(hint.unwrap().contains("1.27"));
    assert!(verdict(&plan(&m, &coreml("1.27")), "Split").0);
}

#[test]
fn split_input_form_is_claimed_in_1_22_and_sizes_are_checked() {
    let m = split_model(13, false);
    assert!(verdict(&plan(&m, &coreml("1.22")), "Split").0, "even split of 8 in 2");
    let bad = sandwich(13, &fixed(&[1, 8, 4, 4]), |b, x| {
        let sizes = b.init("sizes", &Tensor::i64_vec(&[3, 4]));
        let parts = b.op_n("Split", &[x, &sizes], 2, &[attr::int("axis", 1)]);
        b.op("Concat", &[&parts[0], &parts[1]], &[attr::int("axis", 1)])
    });
    let (on_ep, _, reason, _) = verdict(&plan(&bad, &coreml("1.27")), "Split");
    assert!(!on_ep && reason.contains("valid sizes"), "{reason}");
}

// ------------------------------------------------------------------ Gather

fn gather_model(index: Tensor, data_dims: &[Dim]) -> Model {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DataType::Float, data_dims);
    let r = b.op("Relu", &[&x], &[]);
    let i = b.init("idx", &index);
    let g = b.op("Gather", &[&r, &i], &[attr::int("axis", 1)]);
    let y = b.op("Relu", &[&g], &[]);
    b.output(&y, DataType::Float, None);
    b.build(13)
}

#[test]
fn scalar_gather_is_claimed_from_1_27_with_static_data() {
    let m = gather_model(Tensor::i64_scalar(2), &fixed(&[1, 16, 512]));
    let p = plan(&m, &coreml("1.22"));
    let (on_ep, _, reason, hint) = verdict(&p, "Gather");
    assert!(!on_ep && reason.contains("rank-0"), "{reason}");
    assert!(hint.unwrap().contains("1.27"));
    assert_eq!(p.partitions.len(), 2);
    assert_eq!(plan(&m, &coreml("1.27")).partitions.len(), 1);

    // A rank-1 index was always fine.
    let m1 = gather_model(Tensor::i64_vec(&[2]), &fixed(&[1, 16, 512]));
    assert!(verdict(&plan(&m1, &coreml("1.22")), "Gather").0);

    // 1.27 still needs static data for a scalar index.
    let dynamic = gather_model(Tensor::i64_scalar(2), &[Dim::from("n"), Dim::Fixed(16), Dim::Fixed(512)]);
    let (on_ep, _, reason, _) = verdict(&plan(&dynamic, &coreml("1.27")), "Gather");
    assert!(!on_ep && reason.contains("static data"), "{reason}");
}

// ------------------------------------------------------------------ Resize, dynamic shapes, dtypes

fn resize_model(coord: &str, scales: &[f32]) -> Model {
    sandwich(13, &fixed(&[1, 4, 8, 8]), |b, x| {
        let roi = b.init("roi", &Tensor::f32(&[0], vec![]));
        let sc = b.init("scales", &Tensor::f32(&[4], scales.to_vec()));
        b.op(
            "Resize",
            &[x, &roi, &sc],
            &[attr::string("mode", "linear"), attr::string("coordinate_transformation_mode", coord)],
        )
    })
}

#[test]
fn resize_rules_differ_by_format() {
    let half_pixel = resize_model("half_pixel", &[1.0, 1.0, 2.0, 2.0]);
    assert!(verdict(&plan(&half_pixel, &coreml("1.22")), "Resize").0, "ML Program builds half_pixel linear");
    let (on_ep, _, reason, _) =
        verdict(&plan(&half_pixel, &coreml("1.22").with_format(Format::Neuralnetwork)), "Resize");
    assert!(!on_ep && reason.contains("asymmetric"), "{reason}");
    // Downsampling: ML Program yes, NeuralNetwork's upsample layer no.
    let down = resize_model("asymmetric", &[1.0, 1.0, 0.5, 0.5]);
    assert!(verdict(&plan(&down, &coreml("1.22")), "Resize").0);
    let (on_ep, _, reason, _) = verdict(&plan(&down, &coreml("1.22").with_format(Format::Neuralnetwork)), "Resize");
    assert!(!on_ep && reason.contains("whole factors"), "{reason}");
    // Resizing the channel axis is never built.
    let channels = resize_model("asymmetric", &[1.0, 2.0, 1.0, 1.0]);
    assert!(!verdict(&plan(&channels, &coreml("1.27")), "Resize").0);
}

#[test]
fn runtime_resize_sizes_fall_back_and_fixed_shapes_fold_them() {
    // sizes = Concat(Shape(x)[:2], [16, 16]) computed at run time, x with symbolic H and W.
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(4), Dim::from("h"), Dim::from("w")]);
    let r = b.op("Relu", &[&x], &[]);
    let s = b.op("Shape", &[&r], &[attr::int("end", 2)]);
    let hw = b.init("hw", &Tensor::i64_vec(&[16, 16]));
    let sizes = b.op("Concat", &[&s, &hw], &[attr::int("axis", 0)]);
    let roi = b.init("roi", &Tensor::f32(&[0], vec![]));
    let scales = b.init("scales", &Tensor::f32(&[0], vec![]));
    let y = b.op("Resize", &[&r, &roi, &scales, &sizes], &[attr::string("mode", "nearest")]);
    let out = b.op("Relu", &[&y], &[]);
    b.output(&out, DataType::Float, None);
    let m = b.build(13);

    let p = plan(&m, &coreml("1.27"));
    let (on_ep, _, reason, _) = verdict(&p, "Resize");
    assert!(!on_ep && reason.contains("constant initializer"), "{reason}");
    assert!(p.crossing_bytes.is_none() && p.crossing_unknown > 0, "symbolic dims: unknown bytes");

    // With the session fixing the input shape, ORT folds the chain before partitioning.
    let mut opts = coreml("1.27");
    opts.input_shapes = BTreeMap::from([("x".to_string(), vec![1, 4, 8, 8])]);
    let p = plan(&m, &opts);
    assert_eq!(p.prepass.shapes_folded, 1);
    assert!(verdict(&p, "Resize").0);
    assert_eq!(p.partitions.len(), 1);
    assert!(p.crossing_bytes.is_some());
}

#[test]
fn float16_needs_ml_program() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DataType::Float16, &fixed(&[1, 4]));
    let y = b.op("Relu", &[&x], &[]);
    b.output(&y, DataType::Float16, None);
    let m = b.build(13);
    assert!(verdict(&plan(&m, &coreml("1.22")), "Relu").0);
    let (on_ep, rule, reason, hint) = verdict(&plan(&m, &coreml("1.22").with_format(Format::Neuralnetwork)), "Relu");
    assert!(!on_ep && rule == "coreml:general:dtype" && reason.contains("float16"), "{rule}: {reason}");
    assert_eq!(hint.as_deref(), Some("claimed with --format mlprogram"));
}

#[test]
fn general_input_limits() {
    // A dimension above 16384 is refused whatever the op.
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 20000]);
    let y = b.op("Relu", &[&x], &[]);
    b.output_f32(&y, &[1, 20000]);
    let (on_ep, rule, _, _) = verdict(&plan(&b.build(13), &coreml("1.27")), "Relu");
    assert!(!on_ep && rule == "coreml:general:max-dim");
    // Rank 6 is refused.
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 1, 1, 1, 1, 2]);
    let y = b.op("Relu", &[&x], &[]);
    b.output_f32(&y, &[1, 1, 1, 1, 1, 2]);
    let (on_ep, rule, _, _) = verdict(&plan(&b.build(13), &coreml("1.27")), "Relu");
    assert!(!on_ep && rule == "coreml:general:max-rank");
    // Unknown ops have no builder.
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 4]);
    let y = b.op("Hardmax", &[&x], &[]);
    b.output_f32(&y, &[1, 4]);
    let (on_ep, rule, reason, _) = verdict(&plan(&b.build(13), &coreml("1.27")), "Hardmax");
    assert!(!on_ep && rule == "coreml:no-builder" && reason.contains("Hardmax"));
}

#[test]
fn flatten_has_no_ml_program_builder_and_conv_weights_must_be_constant_for_neuralnetwork() {
    let m = sandwich(13, &fixed(&[1, 4, 2, 2]), |b, x| b.op("Flatten", &[x], &[attr::int("axis", 1)]));
    let (on_ep, rule, _, hint) = verdict(&plan(&m, &coreml("1.27")), "Flatten");
    assert!(!on_ep && rule == "coreml:Flatten:no-format-builder", "{rule}");
    assert_eq!(hint.as_deref(), Some("claimed with --format neuralnetwork"));
    assert!(verdict(&plan(&m, &coreml("1.27").with_format(Format::Neuralnetwork)), "Flatten").0);

    // Weights computed at run time: NeuralNetwork refuses, ML Program builds.
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 2, 4, 4]);
    let w = b.input_f32("w", &[3, 2, 1, 1]);
    let y = b.op("Conv", &[&x, &w], &[]);
    b.output_f32(&y, &[1, 3, 4, 4]);
    let m = b.build(13);
    let (on_ep, _, reason, _) = verdict(&plan(&m, &coreml("1.22").with_format(Format::Neuralnetwork)), "Conv");
    assert!(!on_ep && reason.contains("weights"), "{reason}");
    assert!(verdict(&plan(&m, &coreml("1.22")), "Conv").0);
}

// ------------------------------------------------------------------ grouping

#[test]
fn grouping_follows_ort_waves() {
    // x → Relu → Pad(reflect, CPU) → Relu → y1; x → Sigmoid → y2 (independent of the Pad).
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 2, 4, 4]);
    let r = b.op("Relu", &[&x], &[]);
    let pads = b.init("pads", &Tensor::i64_vec(&[0, 0, 1, 1, 0, 0, 1, 1]));
    let p = b.op("Pad", &[&r, &pads], &[attr::string("mode", "reflect")]);
    let r2 = b.op("Relu", &[&p], &[]);
    let s = b.op("Sigmoid", &[&x], &[]);
    b.output_f32(&r2, &[1, 2, 6, 6]);
    b.output_f32(&s, &[1, 2, 4, 4]);
    let m = b.build(13);
    let p = plan(&m, &coreml("1.22"));
    // The independent Sigmoid joins the first wave's group; the Relu after the Pad starts a second.
    assert_eq!(p.partitions.len(), 2);
    assert_eq!(p.partitions[0].ops.get("Sigmoid"), Some(&1));
    assert_eq!(p.partitions[0].nodes, 2);
    assert_eq!(p.partitions[1].nodes, 1);
    assert_eq!(p.claimed, 3);
    // Crossings: x in (32 floats), Relu out to the Pad, Sigmoid out; Pad out into #2, #2 out.
    let bytes: Vec<(String, &str, usize, Option<u64>)> =
        p.crossings.iter().map(|c| (c.tensor.clone(), c.direction.as_str(), c.partition, c.bytes)).collect();
    assert!(bytes.contains(&("x".into(), "cpu→ep", 1, Some(128))), "{bytes:?}");
    assert!(bytes.contains(&(p.partitions[1].inputs[0].clone(), "cpu→ep", 2, Some(288))), "{bytes:?}");
    assert_eq!(p.crossing_bytes, Some(128 + 128 + 128 + 288 + 288));
}

#[test]
fn trivial_only_partitions_are_dropped_from_1_27() {
    // Pad(CPU) → Reshape → Pad(CPU): the lone Reshape would be its own partition.
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 2, 4, 4]);
    let pads = b.init("pads", &Tensor::i64_vec(&[0, 0, 1, 1, 0, 0, 1, 1]));
    let p1 = b.op("Pad", &[&x, &pads], &[attr::string("mode", "edge")]);
    let shape = b.init("shape", &Tensor::i64_vec(&[1, 2, 36]));
    let r = b.op("Reshape", &[&p1, &shape], &[]);
    let shape2 = b.init("shape", &Tensor::i64_vec(&[1, 2, 6, 6]));
    let r2 = b.op("Reshape", &[&r, &shape2], &[]);
    let p2 = b.op("Pad", &[&r2, &pads], &[attr::string("mode", "edge")]);
    b.output_f32(&p2, &[1, 2, 8, 8]);
    let m = b.build(13);
    let p = plan(&m, &coreml("1.26"));
    assert_eq!((p.partitions.len(), p.discarded.len()), (1, 0));
    let p = plan(&m, &coreml("1.27"));
    assert_eq!((p.partitions.len(), p.discarded.len()), (0, 1));
    let (on_ep, rule, _, _) = verdict(&p, "Reshape");
    assert!(!on_ep && rule == "coreml:drop-trivial");
}

// ------------------------------------------------------------------ ORT's pre-partition passes

#[test]
fn prepass_fuses_reshape_targets_even_with_symbolic_dims() {
    // Reshape(t, Concat(Unsqueeze(Gather(Shape(t), 0)), [-1, 4])) with a symbolic batch.
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DataType::Float, &[Dim::from("n"), Dim::Fixed(8), Dim::Fixed(2), Dim::Fixed(2)]);
    let t = b.op("Relu", &[&x], &[]);
    let s = b.op("Shape", &[&t], &[]);
    let i0 = b.init("i0", &Tensor::i64_scalar(0));
    let g = b.op("Gather", &[&s, &i0], &[attr::int("axis", 0)]);
    let ax = b.init("ax", &Tensor::i64_vec(&[0]));
    let u = b.op("Unsqueeze", &[&g, &ax], &[]);
    let rest = b.init("rest", &Tensor::i64_vec(&[-1, 4]));
    let target = b.op("Concat", &[&u, &rest], &[attr::int("axis", 0)]);
    let y = b.op("Reshape", &[&t, &target], &[]);
    b.output(&y, DataType::Float, None);
    let m = b.build(13);
    let p = plan(&m, &coreml("1.22"));
    assert_eq!(p.prepass.reshape_fusions, 1);
    assert_eq!(p.prepass.dead_removed, 4, "Shape, Gather, Unsqueeze, Concat");
    assert_eq!(p.nodes, 2);
    assert_eq!(p.partitions.len(), 1);
    assert!(p.cpu_nodes.is_empty());
}

#[test]
fn prepass_folds_constants_identities_and_conv_bn() {
    let mut b = GraphBuilder::new("t");
    let x = b.input_f32("x", &[1, 2, 4, 4]);
    let w = b.init("w", &Tensor::f32(&[3, 2, 1, 1], vec![0.5; 6]));
    // w² computed in the graph from constants: folded.
    let w2 = b.op("Mul", &[&w, &w], &[]);
    let c = b.op("Conv", &[&x, &w2], &[]);
    let bn: Vec<String> = ["s", "b", "m", "v"].iter().map(|n| b.init(n, &Tensor::f32(&[3], vec![1.0; 3]))).collect();
    let y = b.op("BatchNormalization", &[&c, &bn[0], &bn[1], &bn[2], &bn[3]], &[]);
    let id = b.op("Identity", &[&y], &[]);
    let out = b.op("Relu", &[&id], &[]);
    b.output_f32(&out, &[1, 3, 4, 4]);
    let m = b.build(13);
    let p = plan(&m, &coreml("1.22"));
    assert_eq!((p.prepass.folded, p.prepass.conv_fusions, p.prepass.identities_removed), (1, 1, 1));
    assert_eq!(p.model_nodes, 5);
    assert_eq!(p.nodes, 2, "Conv (with BN) and Relu");
}

#[test]
fn cuda_keeps_shape_computations_on_the_cpu() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DataType::Float, &[Dim::from("n"), Dim::Fixed(8)]);
    let t = b.op("Relu", &[&x], &[]);
    let s = b.op("Shape", &[&t], &[]);
    let i = b.init("i", &Tensor::i64_vec(&[1]));
    let g = b.op("Gather", &[&s, &i], &[attr::int("axis", 0)]);
    let two = b.init("two", &Tensor::i64_vec(&[2]));
    let d = b.op("Div", &[&g, &two], &[]);
    let m1 = b.init("m1", &Tensor::i64_vec(&[-1]));
    let target = b.op("Concat", &[&m1, &d], &[attr::int("axis", 0)]);
    let y = b.op("Reshape", &[&t, &target], &[]);
    let z = b.op("Sigmoid", &[&y], &[]);
    b.output(&z, DataType::Float, None);
    let m = b.build(13);
    let p = plan(&m, &PlanOptions::new(Ep::Cuda, v("1.22")));
    let cpu: Vec<&str> = p.cpu_nodes.iter().map(|n| n.op.as_str()).collect();
    assert_eq!(cpu, vec!["Shape", "Gather", "Div", "Concat"]);
    assert!(p.cpu_nodes.iter().all(|n| n.rule == "cuda:cpu-preferred"));
    // Reshape's shape is read from host memory: no copy; the Shape reads only metadata.
    assert!(p.crossings.iter().all(|c| c.tensor != target));
    let to_shape = p.crossings.iter().find(|c| c.direction == "ep→cpu" && c.peer.contains("Shape")).unwrap();
    assert_eq!(to_shape.bytes, Some(0));
    // The same model under CoreML: the shape chain is judged by the CoreML rules instead.
    let p = plan(&m, &coreml("1.22"));
    assert!(p.cpu_nodes.iter().all(|n| n.rule != "cuda:cpu-preferred"));
}

// ------------------------------------------------------------------ verification

#[test]
fn verify_compares_counts_and_node_verdicts() {
    let m = pad_model("reflect", &[0, 0, 1, 1, 0, 0, 1, 1], &[1, 4, 8, 8]);
    let p = plan(&m, &coreml("1.22"));
    let pad = &p.cpu_nodes[0].name;
    let good = format!(
        "[V:onnxruntime:, helper.cc:1 GetSupportedNodes] Operator type: [Pad] index: [1] name: [{pad}] supported: [0]\n\
         [W:onnxruntime:, coreml_execution_provider.cc:113 GetCapability] CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 2 number of nodes in the graph: 3 number of nodes supported by CoreML: 2\n\
         [V:onnxruntime:, session_state.cc:1 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CoreMLExecutionProvider]. Number of nodes: 2\n\
         [V:onnxruntime:, session_state.cc:1 VerifyEachNodeIsAssignedToAnEp]   CoreMLExecutionProvider_CoreML_1_0\n\
         [V:onnxruntime:, session_state.cc:1 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1\n\
         [V:onnxruntime:, session_state.cc:1 VerifyEachNodeIsAssignedToAnEp]   Pad ({pad})\n"
    );
    let r = verify::verify(&p, &good).unwrap();
    assert!(r.ok, "{}", r.text());
    assert_eq!(r.rows.len(), 5);

    // The same log checked against the 1.26 prediction (Pad claimed): differences named.
    let p26 = plan(&m, &coreml("1.26"));
    let r = verify::verify(&p26, &good).unwrap();
    assert!(!r.ok);
    let text = r.text();
    assert!(text.contains("DIFF partitions"), "{text}");
    assert!(r.node_mismatches.iter().any(|m| m.contains(pad.as_str()) && m.contains("log says unsupported")), "{text}");

    assert!(verify::verify(&p, "nothing useful here\n").is_err());
}

// ------------------------------------------------------------------ must-show on the replicas

fn run_passes(m: &Model, names: &[&str], shapes: &[(&str, Vec<i64>)]) -> Model {
    let ctx = PassContext {
        input_shapes: shapes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        ..Default::default()
    };
    let passes: Vec<_> = names.iter().map(|n| pass_by_name(n).unwrap()).collect();
    let mut out = m.clone();
    faceperf::rewrite::run_passes(&mut out, &passes, &ctx).unwrap();
    out
}

fn count_op(m: &Model, op: &str) -> usize {
    m.graph().node.iter().filter(|n| n.op_type == op).count()
}

#[test]
fn swapper_14_partitions_under_1_22_then_1_after_reflect_pad_and_unnecessary_from_1_26() {
    // The full-scale structure (weights left out: planning reads shapes, not payloads) and the tiny
    // replica have the same 14 reflect Pads.
    for m in [
        synth::synth_skeleton(Role::Swapper, Scale::Full).unwrap(),
        synth::synth_model(Role::Swapper, Scale::Tiny, synth::DEFAULT_SEED).unwrap(),
    ] {
        assert_eq!(count_op(&m, "Pad"), 14);
        let before = plan(&m, &coreml("1.22"));
        assert_eq!(before.partitions.len(), 14);
        assert_eq!(before.cpu_nodes.len(), 14);
        assert!(before.cpu_nodes.iter().all(|n| n.op == "Pad"));

        let pass = pass_by_name("reflect-pad").unwrap();
        let ctx = PassContext::default();
        let mut rewritten = m.clone();
        let impact = partition::pass_impact(&mut rewritten, pass.as_ref(), &ctx, &coreml("1.22")).unwrap();
        assert_eq!(impact.verdict, "needed", "{}", impact.note);
        assert_eq!((impact.comparison.before.partitions, impact.comparison.after.partitions), (14, 1));
        let after = plan(&rewritten, &coreml("1.22"));
        assert_eq!(after.partitions.len(), 1);
        assert!(after.cpu_nodes.is_empty());

        for ort in ["1.26", "1.27"] {
            let mut again = m.clone();
            let impact = partition::pass_impact(&mut again, pass.as_ref(), &ctx, &coreml(ort)).unwrap();
            assert_eq!(impact.verdict, "unnecessary", "ORT {ort}: {}", impact.note);
            assert_eq!(impact.comparison.before.partitions, 1);
        }
    }
}

#[test]
fn detector_partitions_drop_after_fold_shapes() {
    let m = synth::synth_model(Role::Detector, Scale::Tiny, synth::DEFAULT_SEED).unwrap();
    let before = plan(&m, &coreml("1.22"));
    assert!(before.partitions.len() >= 3, "{}", before.partitions.len());
    assert!(before.cpu_nodes.iter().any(|n| n.op == "Resize"), "runtime-sized Resize falls back");
    let folded = run_passes(&m, &["fold-shapes", "cleanup"], &[("input.1", vec![1, 3, 640, 640])]);
    assert_eq!(count_op(&folded, "Shape"), 0);
    for ort in ["1.22", "1.27"] {
        let after = plan(&folded, &coreml(ort));
        assert_eq!(after.partitions.len(), 1, "ORT {ort}");
        assert!(after.cpu_nodes.is_empty());
    }
}

#[test]
fn enhancer_partitions_drop_after_split_to_slice_and_widen_scalar_gather() {
    let m = synth::synth_model(Role::Enhancer, Scale::Tiny, synth::DEFAULT_SEED).unwrap();
    let passes: Vec<_> = ["split-to-slice", "widen-scalar-gather"].iter().map(|n| pass_by_name(n).unwrap()).collect();
    let r = partition::recipe_impact(&m, &passes, &PassContext::default(), &coreml("1.22")).unwrap();
    assert!(r.steps.iter().all(|s| s.verdict == "needed"), "{:?}", r.steps.iter().map(|s| &s.note).collect::<Vec<_>>());
    let (b, a) = (&r.overall.before, &r.overall.after);
    assert_eq!(b.cpu_ops.get("Split"), Some(&7));
    assert_eq!(b.cpu_ops.get("Gather"), Some(&16));
    assert!(b.partitions >= 8, "{}", b.partitions);
    // Only Flatten (no ML Program builder) is left on the CPU.
    assert_eq!(a.cpu_ops, BTreeMap::from([("Flatten".to_string(), 1)]));
    assert_eq!(a.partitions, 2);
    // From 1.27 both rewrites are unnecessary.
    let r = partition::recipe_impact(&m, &passes, &PassContext::default(), &coreml("1.27")).unwrap();
    assert!(r.steps.iter().all(|s| s.verdict == "unnecessary"));
}

// ------------------------------------------------------------------ coverage and CLI

#[test]
fn every_op_of_the_model_set_and_its_rewrites_has_rules() {
    let mut ops = std::collections::BTreeSet::new();
    for role in Role::ALL {
        let m = synth::synth_model(role, Scale::Tiny, synth::DEFAULT_SEED).unwrap();
        let shapes: Vec<(&str, Vec<i64>)> =
            if role == Role::Detector { vec![("input.1", vec![1, 3, 640, 640])] } else { vec![] };
        let coreml = run_passes(
            &m,
            &["fold-shapes", "reflect-pad", "split-to-slice", "widen-scalar-gather", "cleanup"],
            &shapes,
        );
        let fp16 = run_passes(&m, &["fp16"], &[]);
        for g in [&m, &coreml, &fp16] {
            ops.extend(g.graph().node.iter().map(|n| n.op_type.clone()));
        }
    }
    for ep in [Ep::Coreml, Ep::Cuda, Ep::Directml] {
        let known = partition::table(ep).unwrap().ops();
        let missing: Vec<&String> = ops.iter().filter(|o| !known.contains(&o.as_str())).collect();
        assert!(missing.is_empty(), "{ep} has no rule for {missing:?}");
    }
}

#[test]
fn old_releases_and_foreign_formats_are_refused() {
    let m = pad_model("constant", &[0, 0, 1, 1, 0, 0, 1, 1], &[1, 4, 8, 8]);
    let e = partition::plan(&m, &coreml("1.10")).unwrap_err().to_string();
    assert!(e.contains("1.16"), "{e}");
    let e = partition::plan(&m, &PlanOptions::new(Ep::Cuda, v("1.22")).with_format(Format::Mlprogram))
        .unwrap_err()
        .to_string();
    assert!(e.contains("only apply to coreml"), "{e}");
}

#[test]
fn cli_prints_json_and_fails_verification_on_a_differing_log() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("inswapper_128.onnx");
    synth::synth_model(Role::Swapper, Scale::Tiny, synth::DEFAULT_SEED)
        .unwrap()
        .save(&model, Default::default())
        .unwrap();
    let exe = env!("CARGO_BIN_EXE_faceperf");
    let out = std::process::Command::new(exe)
        .args(["--json", "partitions"])
        .arg(&model)
        .args(["--ep", "coreml", "--ort", "1.22,1.26", "--passes", "reflect-pad"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["plans"][0]["partitions"].as_array().unwrap().len(), 14);
    assert_eq!(j["plans"][1]["partitions"].as_array().unwrap().len(), 1);
    assert_eq!(j["rewrites"][0]["steps"][0]["verdict"], "needed");
    assert_eq!(j["rewrites"][1]["steps"][0]["verdict"], "unnecessary");

    // A log that says one partition contradicts the 1.22 prediction: exit code 1, the row named.
    let log = dir.path().join("ort.log");
    std::fs::write(
        &log,
        "CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 1 number of nodes in the graph: 155 number of nodes supported by CoreML: 155\n",
    )
    .unwrap();
    let out = std::process::Command::new(exe)
        .arg("partitions")
        .arg(&model)
        .args(["--ep", "coreml", "--verify"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DIFF partitions") && text.contains("predicted 14"), "{text}");
}

#[test]
fn pass_needs_names_the_releases_a_rewrite_is_needed_in() {
    let m = pad_model("reflect", &[0, 0, 1, 1, 0, 0, 1, 1], &[1, 4, 8, 8]);
    let passes = vec![pass_by_name("reflect-pad").unwrap()];
    let table = partition::table(Ep::Coreml).unwrap();
    let impacts: Vec<_> = table
        .releases()
        .into_iter()
        .filter(|r| *r >= v("1.20"))
        .map(|r| (r, partition::recipe_impact(&m, &passes, &PassContext::default(), &coreml(&r.to_string())).unwrap()))
        .collect();
    let needs = partition::pass_needs(&impacts);
    assert_eq!(needs[0].needed_in.first(), Some(&v("1.20")));
    assert_eq!(needs[0].needed_in.last(), Some(&v("1.25")));
    assert_eq!(needs[0].summary, "needed in ORT 1.20–1.25 (of 1.20–1.27)");
    assert_eq!(partition::ranges(&[v("1.20"), v("1.21"), v("1.23")]), "1.20–1.21, 1.23");
}
