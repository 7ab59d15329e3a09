//! Rewrite passes: each one on small graphs covering its forms, and on the tiny replicas; exact
//! passes are checked bit for bit against the original with ORT CPU, fp16 against a PSNR bound,
//! and every pass is idempotent (a second run rewrites nothing).

mod support;

use std::collections::BTreeMap;

use faceperf::models::synth::{synth_model, DEFAULT_SEED};
use faceperf::models::{Role, Scale};
use faceperf::onnx::builder::Dim;
use faceperf::onnx::graph::attr;
use faceperf::onnx::proto::{tensor_proto::DataType, type_proto};
use faceperf::onnx::shape::declared;
use faceperf::onnx::{GraphBuilder, GraphIndex, Model, NodeExt, Tensor, TensorData};
use faceperf::rewrite::{pass_by_name, run_passes, PassContext, PassReport, PASS_NAMES};
use faceperf::runtime::{self, session::ModelSource, SessionConfig, SessionRunner};
use faceperf::util::rng::Rng;
use support::{count, is_reflect_pad, rand};

type Outputs = Vec<(String, Tensor)>;

fn run(m: &Model, inputs: &[(String, Tensor)]) -> Outputs {
    run_at(m, inputs, "all")
}

/// Runs `m` with ORT CPU (one thread) at graph optimisation level `opt`.
fn run_at(m: &Model, inputs: &[(String, Tensor)], opt: &str) -> Outputs {
    let rt = runtime::init(None).expect("ORT available (run ci/setup-ort.sh)");
    let cfg = SessionConfig { optimization: opt.into(), ..SessionConfig::cpu(1) };
    let mut s =
        SessionRunner::new(rt, ModelSource::Bytes(&m.to_bytes()), &cfg).unwrap_or_else(|e| panic!("session: {e:#}"));
    s.run(inputs).unwrap_or_else(|e| panic!("run: {e:#}"))
}

/// Largest absolute difference over all outputs.
fn max_abs_diff(a: &Outputs, b: &Outputs) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|((_, x), (_, y))| x.to_f32s().into_iter().zip(y.to_f32s()).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// Asserts equal names, shapes and bits (f32 compared through `to_bits`, so -0 ≠ 0 and NaN = NaN).
fn assert_bit_identical(a: &Outputs, b: &Outputs, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: output count");
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb, "{what}: output names");
        assert_eq!(ta.dims, tb.dims, "{what}: '{na}' dims");
        match (&ta.data, &tb.data) {
            (TensorData::F32(x), TensorData::F32(y)) => {
                let bx: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
                let by: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                assert!(
                    bx == by,
                    "{what}: '{na}' differs in {} of {} values",
                    bx.iter().zip(&by).filter(|(p, q)| p != q).count(),
                    bx.len()
                );
            }
            _ => assert_eq!(ta.data, tb.data, "{what}: '{na}'"),
        }
    }
}

fn ctx() -> PassContext {
    PassContext::default()
}

fn ctx_shapes(name: &str, dims: &[i64]) -> PassContext {
    let mut c = PassContext::default();
    c.input_shapes.insert(name.to_string(), dims.to_vec());
    c
}

/// Applies the pass `name`, checks the graph, and checks that a second run rewrites nothing.
fn apply(name: &str, m: &Model, c: &PassContext) -> (Model, PassReport) {
    let pass = pass_by_name(name).unwrap();
    let mut out = m.clone();
    let r = pass.run(&mut out, c).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let g = out.graph();
    let idx = GraphIndex::new(g).unwrap();
    idx.check_dangling(g).unwrap();
    idx.topological_order(g).unwrap();
    assert_eq!(r.nodes_before, m.graph().node.len());
    assert_eq!(r.nodes_after, g.node.len());
    let mut again = out.clone();
    let r2 = pass.run(&mut again, c).unwrap();
    assert_eq!(r2.rewritten, 0, "{name} is not idempotent: second run {r2:?}");
    (out, r)
}

/// Runs both models on each input set and asserts bit identity with ORT's graph optimisations up
/// to `extended`, and differences ≤ 1e-6 at `all`.
///
/// Why two levels: at `all`, ORT's layout transformation (NCHWc) picks other Conv kernels when a
/// model's shapes become static, which is what `fold-shapes` is for; measured on the tiny detector
/// at 640×640: up to 7.2e-7 apart, 0 at `extended`. The rewritten graph computes the same values;
/// ORT then runs a different kernel.
fn assert_equivalent(a: &Model, b: &Model, inputs: &[Vec<(String, Tensor)>], what: &str) {
    for (k, inp) in inputs.iter().enumerate() {
        let what = format!("{what} input #{k}");
        assert_bit_identical(&run_at(a, inp, "extended"), &run_at(b, inp, "extended"), &what);
        let d = max_abs_diff(&run(a, inp), &run(b, inp));
        assert!(d <= 1e-6, "{what}: at optimisation level all, outputs differ by {d:e}");
    }
}

fn ops(m: &Model, op: &str) -> usize {
    count(m, |n| n.op_type == op)
}

fn rank0_gathers(m: &Model) -> usize {
    let g = m.graph();
    let idx = GraphIndex::new(g).unwrap();
    count(m, |n| {
        n.op_type == "Gather"
            && idx.initializer(g, &n.input[1]).map(|t| t.dims.is_empty()).unwrap_or_else(|| {
                g.node.iter().any(|c| {
                    c.op_type == "Constant"
                        && c.output[0] == n.input[1]
                        && c.attr("value").and_then(|a| a.t.as_ref()).is_some_and(|t| t.dims.is_empty())
                })
            })
    })
}

// ---------------------------------------------------------------- registry

#[test]
fn every_listed_pass_is_built_by_name_and_unknown_names_are_refused() {
    for name in PASS_NAMES {
        assert_eq!(pass_by_name(name).unwrap().name(), *name);
    }
    let e = pass_by_name("nope").err().unwrap().to_string();
    assert!(e.contains("unknown rewrite pass `nope`") && e.contains("reflect-pad"), "{e}");
    assert!(!pass_by_name("fp16").unwrap().exact());
    assert!(pass_by_name("fold-shapes").unwrap().exact());
}

// ---------------------------------------------------------------- reflect-pad

fn pad_model(opset: i64, x_dims: &[i64], pads: &[i64], axes: Option<&[i64]>) -> Model {
    let mut b = GraphBuilder::new("pad");
    let x = b.input_f32("x", x_dims);
    let y = if opset < 11 {
        b.op("Pad", &[&x], &[attr::string("mode", "reflect"), attr::ints("pads", pads)])
    } else {
        let p = b.init("pads", &Tensor::i64_vec(pads));
        match axes {
            Some(a) => {
                let a = b.init("axes", &Tensor::i64_vec(a));
                b.op("Pad", &[&x, &p, "", &a], &[attr::string("mode", "reflect")])
            }
            None => b.op("Pad", &[&x, &p], &[attr::string("mode", "reflect")]),
        }
    };
    // A consumer after the Pad, so the rewritten output also feeds a node.
    let z = b.op("Relu", &[&y], &[]);
    b.node("Identity", &[&z], &["y"], &[]);
    b.output("y", DataType::Float, None);
    b.init_named("emap", &Tensor::f32(&[2], vec![1.0, 2.0]));
    b.build(opset)
}

type PadCase = (i64, &'static [i64], &'static [i64], Option<&'static [i64]>);

#[test]
fn reflect_pad_all_forms_are_bit_identical() {
    // (opset, input dims, pads, axes)
    let cases: &[PadCase] = &[
        // opset 13, input form, asymmetric pads on H and W.
        (13, &[1, 2, 5, 6], &[0, 0, 2, 1, 0, 0, 1, 3], None),
        // The largest legal pads: size − 1 on both sides.
        (13, &[1, 2, 5, 6], &[0, 0, 4, 5, 0, 0, 4, 5], None),
        // opset 10: pads attribute.
        (10, &[1, 3, 4, 4], &[0, 0, 1, 1, 0, 0, 1, 1], None),
        // opset 18: axes input, negative, in an unusual order; also a padded channel axis.
        (18, &[2, 3, 4, 5], &[1, 2, 0, 1, 1, 2], Some(&[-1, 1, -2])),
        // Only one side padded, rank 3.
        (13, &[3, 7, 2], &[0, 3, 0, 0, 0, 1], None),
    ];
    for (k, &(opset, dims, pads, axes)) in cases.iter().enumerate() {
        let m = pad_model(opset, dims, pads, axes);
        let (r, rep) = apply("reflect-pad", &m, &ctx());
        assert_eq!(rep.rewritten, 1, "case {k}: {rep:?}");
        assert_eq!(count(&r, is_reflect_pad), 0, "case {k}");
        assert!(ops(&r, "Slice") > 0 && ops(&r, "Concat") > 0, "case {k}");
        assert_eq!(r.graph().initializer.last().unwrap().name, "emap");
        assert!(!r.graph().initializer.iter().any(|t| t.name.starts_with("pads")), "case {k}: pads left behind");
        let ud: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        let inputs: Vec<_> = (0..3).map(|s| vec![("x".to_string(), rand(&ud, 100 + s))]).collect();
        assert_equivalent(&m, &r, &inputs, &format!("reflect-pad case {k}"));
    }
}

#[test]
fn reflect_pad_skips_non_constant_pads_and_other_modes() {
    let mut b = GraphBuilder::new("pad");
    let x = b.input_f32("x", &[1, 1, 4, 4]);
    let p = b.input("p", DataType::Int64, &[Dim::Fixed(8)]);
    let y = b.op("Pad", &[&x, &p], &[attr::string("mode", "reflect")]);
    let c = b.init("pads", &Tensor::i64_vec(&[0, 0, 1, 1, 0, 0, 1, 1]));
    let z = b.op("Pad", &[&y, &c], &[attr::string("mode", "constant")]);
    b.output_f32(&z, &[1, 1, 8, 8]);
    let m = b.build(13);
    let (r, rep) = apply("reflect-pad", &m, &ctx());
    assert_eq!(rep.rewritten, 0);
    assert_eq!(r, m);
    assert_eq!(rep.details.len(), 1, "{rep:?}");
    assert!(rep.details[0].contains("not constant"), "{rep:?}");
}

// ---------------------------------------------------------------- split-to-slice

fn split_model(opset: i64, dims: &[i64], axis: i64, n_out: usize, sizes: Option<&[i64]>, num_outputs: bool) -> Model {
    let mut b = GraphBuilder::new("split");
    let x = b.input_f32("x", dims);
    let mut attrs = vec![attr::int("axis", axis)];
    let mut inputs = vec![x.clone()];
    match sizes {
        Some(s) if opset < 13 => attrs.push(attr::ints("split", s)),
        Some(s) => inputs.push(b.init("sizes", &Tensor::i64_vec(s))),
        None => {}
    }
    if num_outputs {
        attrs.push(attr::int("num_outputs", n_out as i64));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let parts = b.op_n("Split", &refs, n_out, &attrs);
    for (k, p) in parts.iter().enumerate() {
        let out = format!("y{k}");
        b.node("Neg", &[p], &[&out], &[]);
        b.output(&out, DataType::Float, None);
    }
    b.build(opset)
}

type SplitCase = (i64, &'static [i64], i64, usize, Option<&'static [i64]>, bool);

#[test]
fn split_to_slice_all_forms_are_bit_identical() {
    // (opset, input dims, axis, outputs, sizes, num_outputs attribute)
    let cases: &[SplitCase] = &[
        (11, &[1, 6, 3, 3], 1, 2, Some(&[2, 4]), false),
        (11, &[2, 4, 6], -1, 3, None, false),
        (13, &[1, 8, 2, 2], 1, 3, Some(&[1, 3, 4]), false),
        (13, &[4, 6], 0, 2, None, false),
        (13, &[3, 4, 10], -2, 2, Some(&[1, 3]), false),
        (18, &[2, 7], 1, 3, None, true),
        (9, &[2, 6], 1, 2, Some(&[4, 2]), false),
    ];
    for (k, &(opset, dims, axis, n, sizes, num_outputs)) in cases.iter().enumerate() {
        let m = split_model(opset, dims, axis, n, sizes, num_outputs);
        let (r, rep) = apply("split-to-slice", &m, &ctx());
        assert_eq!(rep.rewritten, 1, "case {k}: {rep:?}");
        assert_eq!(ops(&r, "Split"), 0, "case {k}");
        assert_eq!(ops(&r, "Slice"), n, "case {k}");
        assert!(r.graph().initializer.iter().all(|t| !t.name.starts_with("sizes")), "case {k}: sizes left behind");
        let ud: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        let inputs: Vec<_> = (0..2).map(|s| vec![("x".to_string(), rand(&ud, 200 + s))]).collect();
        assert_equivalent(&m, &r, &inputs, &format!("split-to-slice case {k}"));
    }
}

#[test]
fn split_equal_of_unknown_size_is_skipped_until_the_shape_is_given() {
    let mut b = GraphBuilder::new("split");
    let x = b.input("x", DataType::Float, &[Dim::Fixed(1), Dim::from("c")]);
    let parts = b.op_n("Split", &[&x], 2, &[attr::int("axis", 1)]);
    b.output(&parts[0], DataType::Float, None);
    b.output(&parts[1], DataType::Float, None);
    let m = b.build(13);
    let (_, rep) = apply("split-to-slice", &m, &ctx());
    assert_eq!(rep.rewritten, 0);
    assert!(rep.details[0].contains("unknown size"), "{rep:?}");
    let (r, rep) = apply("split-to-slice", &m, &ctx_shapes("x", &[1, 8]));
    assert_eq!(rep.rewritten, 1);
    let inputs = vec![vec![("x".to_string(), rand(&[1, 8], 7))]];
    assert_equivalent(&m, &r, &inputs, "split with given shape");
}

// ---------------------------------------------------------------- widen-scalar-gather

#[test]
fn widen_scalar_gather_is_bit_identical_for_every_axis_and_opset() {
    for (opset, axis, index, int32) in
        [(11, 1, 2i64, false), (13, 1, 0, false), (13, -1, -1, false), (13, 0, 1, true), (11, -2, 1, false)]
    {
        let mut b = GraphBuilder::new("gather");
        let x = b.input_f32("x", &[2, 3, 4]);
        let i = if int32 {
            b.init("idx", &Tensor { dims: vec![], data: TensorData::I32(vec![index as i32]) })
        } else {
            b.init("idx", &Tensor::i64_scalar(index))
        };
        let g = b.op("Gather", &[&x, &i], &[attr::int("axis", axis)]);
        // A rank-1 index Gather stays as it is.
        let j = b.init("idx1", &Tensor::i64_vec(&[0]));
        let g1 = b.op("Gather", &[&g, &j], &[attr::int("axis", 0)]);
        b.node("Neg", &[&g1], &["y"], &[]);
        b.output("y", DataType::Float, None);
        let m = b.build(opset);
        let what = format!("opset {opset} axis {axis} index {index} int32 {int32}");
        assert_eq!(rank0_gathers(&m), 1);
        let (r, rep) = apply("widen-scalar-gather", &m, &ctx());
        assert_eq!(rep.rewritten, 1, "{what}: {rep:?}");
        assert_eq!(rank0_gathers(&r), 0, "{what}");
        assert_eq!(ops(&r, "Squeeze"), 1, "{what}");
        assert_eq!(ops(&r, "Gather"), 2, "{what}");
        assert!(r.graph().initializer.iter().all(|t| t.name != "idx_1"), "{what}: scalar index left behind");
        let inputs: Vec<_> = (0..2).map(|s| vec![("x".to_string(), rand(&[2, 3, 4], 300 + s))]).collect();
        assert_equivalent(&m, &r, &inputs, &what);
    }
}

#[test]
fn constant_nodes_count_as_constants_and_are_removed_when_unused() {
    let mut b = GraphBuilder::new("consts");
    let x = b.input_f32("x", &[1, 4, 5, 5]);
    let pads = b.op("Constant", &[], &[attr::tensor("value", Tensor::i64_vec(&[0, 0, 1, 2, 0, 0, 2, 1]).to_proto(""))]);
    let p = b.op("Pad", &[&x, &pads], &[attr::string("mode", "reflect")]);
    let sizes = b.op("Constant", &[], &[attr::tensor("value", Tensor::i64_vec(&[1, 3]).to_proto(""))]);
    let parts = b.op_n("Split", &[&p, &sizes], 2, &[attr::int("axis", 1)]);
    let idx = b.op("Constant", &[], &[attr::tensor("value", Tensor::i64_scalar(2).to_proto(""))]);
    let g = b.op("Gather", &[&parts[1], &idx], &[attr::int("axis", 1)]);
    b.node("Relu", &[&g], &["y"], &[]);
    b.output("y", DataType::Float, None);
    b.node("Neg", &[&parts[0]], &["z"], &[]);
    b.output("z", DataType::Float, None);
    let m = b.build(13);
    let mut r = m.clone();
    for name in ["reflect-pad", "split-to-slice", "widen-scalar-gather"] {
        let (next, rep) = apply(name, &r, &ctx());
        assert_eq!(rep.rewritten, 1, "{name}: {rep:?}");
        r = next;
    }
    assert_eq!(ops(&r, "Constant"), 0, "detached Constants are removed");
    assert_eq!(count(&r, is_reflect_pad) + ops(&r, "Split") + rank0_gathers(&r), 0);
    let inputs: Vec<_> = (0..2).map(|s| vec![("x".to_string(), rand(&[1, 4, 5, 5], 600 + s))]).collect();
    assert_equivalent(&m, &r, &inputs, "constant-node forms");
}

// ---------------------------------------------------------------- fold-shapes

/// Symbolic H and W; the exporter's shape chains, a ConstantOfShape, a Range and a Shape read
/// directly by Expand.
fn shape_chain_model() -> Model {
    let mut b = GraphBuilder::new("chains");
    let x = b.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(4), Dim::from("h"), Dim::from("w")]);
    let s = b.op("Shape", &[&x], &[]);
    let i2 = b.init("i2", &Tensor::i64_scalar(2));
    let i3 = b.init("i3", &Tensor::i64_scalar(3));
    let h = b.op("Gather", &[&s, &i2], &[attr::int("axis", 0)]);
    let w = b.op("Gather", &[&s, &i3], &[attr::int("axis", 0)]);
    let hw = b.op("Mul", &[&h, &w], &[]);
    let ax0 = b.init("ax0", &Tensor::i64_vec(&[0]));
    let hwu = b.op("Unsqueeze", &[&hw, &ax0], &[]);
    let head = b.init("head", &Tensor::i64_vec(&[1, 4]));
    let target = b.op("Concat", &[&head, &hwu], &[attr::int("axis", 0)]);
    let flat = b.op("Reshape", &[&x, &target], &[]);
    b.node("Relu", &[&flat], &["flat"], &[]);
    b.output("flat", DataType::Float, None);
    // ConstantOfShape of the spatial size, added to x.
    let st = b.init("st", &Tensor::i64_vec(&[2]));
    let en = b.init("en", &Tensor::i64_vec(&[4]));
    let hw2 = b.op("Slice", &[&s, &st, &en], &[]);
    let ones = b.op("ConstantOfShape", &[&hw2], &[attr::tensor("value", Tensor::f32(&[1], vec![0.5]).to_proto(""))]);
    let added = b.op("Add", &[&x, &ones], &[]);
    // Range over H, as float, scaled: a row ramp added to x.
    let zero = b.init("zero", &Tensor::i64_scalar(0));
    let one = b.init("one", &Tensor::i64_scalar(1));
    let r = b.op("Range", &[&zero, &h, &one], &[]);
    let rf = b.op("Cast", &[&r], &[attr::int("to", DataType::Float as i64)]);
    let half = b.init("half", &Tensor::f32(&[], vec![0.25]));
    let rs = b.op("Mul", &[&rf, &half], &[]);
    let col = b.init("col", &Tensor::i64_vec(&[1]));
    let rcol = b.op("Unsqueeze", &[&rs, &col], &[]);
    let ramp = b.op("Add", &[&added, &rcol], &[]);
    // Shape read directly by a node that does not fold.
    let s2 = b.op("Shape", &[&ramp], &[]);
    let k = b.init("k", &Tensor::f32(&[1], vec![2.0]));
    let e = b.op("Expand", &[&k, &s2], &[]);
    let out = b.op("Mul", &[&ramp, &e], &[]);
    b.node("Identity", &[&out], &["ramp"], &[]);
    b.output("ramp", DataType::Float, None);
    b.build(13)
}

#[test]
fn fold_shapes_folds_chains_and_fixes_the_input_shape() {
    let m = shape_chain_model();
    // Without shapes, nothing depends on known shapes only: the Shape nodes stay.
    let (r0, rep0) = apply("fold-shapes", &m, &ctx());
    assert_eq!(ops(&r0, "Shape"), 2, "{rep0:?}");
    let (r, rep) = apply("fold-shapes", &m, &ctx_shapes("x", &[1, 4, 6, 8]));
    assert_eq!(ops(&r, "Shape"), 0, "{rep:?}");
    for op in ["Gather", "Unsqueeze", "Concat", "ConstantOfShape", "Range", "Cast", "Expand"] {
        if op == "Expand" {
            assert_eq!(ops(&r, op), 1, "Expand reads live data and stays");
        } else {
            assert_eq!(ops(&r, op), 0, "{op} should be folded: {rep:?}");
        }
    }
    assert_eq!(ops(&r, "Reshape"), 1);
    let (_, dims) = declared(&r.graph().input[0]);
    assert_eq!(dims, Some(vec![Some(1), Some(4), Some(6), Some(8)]));
    // The folded values are exactly what ORT computes: outputs bit-identical.
    let inputs: Vec<_> = (0..3).map(|s| vec![("x".to_string(), rand(&[1, 4, 6, 8], 400 + s))]).collect();
    assert_equivalent(&m, &r, &inputs, "fold-shapes");
    // Unknown input names are a clear error.
    let e = pass_by_name("fold-shapes").unwrap().run(&mut m.clone(), &ctx_shapes("nope", &[1])).unwrap_err();
    assert!(format!("{e:#}").contains("inputs are: x"), "{e:#}");
}

#[test]
fn fold_shapes_keeps_large_and_float_weight_math() {
    // w · w from weights alone is not shape math: left to the runtime (the model does not grow).
    let mut b = GraphBuilder::new("w");
    let x = b.input_f32("x", &[1, 4]);
    let w = b.init("w", &Tensor::f32(&[1, 4], vec![1.0, 2.0, 3.0, 4.0]));
    let w2 = b.op("Mul", &[&w, &w], &[]);
    let y = b.op("Add", &[&x, &w2], &[]);
    b.output_f32(&y, &[1, 4]);
    let m = b.build(13);
    let (r, rep) = apply("fold-shapes", &m, &ctx());
    assert_eq!(rep.rewritten, 0);
    assert_eq!(r.graph().node, m.graph().node);
}

// ---------------------------------------------------------------- cleanup

#[test]
fn cleanup_removes_identities_dead_nodes_and_unused_initializers_but_keeps_emap_last() {
    let mut b = GraphBuilder::new("c");
    let x = b.input_f32("x", &[1, 4]);
    let unused = b.init("unused", &Tensor::f32(&[4], vec![0.0; 4]));
    let _ = unused;
    let i1 = b.op("Identity", &[&x], &[]);
    let r = b.op("Relu", &[&i1], &[]);
    let i2 = b.op("Identity", &[&r], &[]);
    let s = b.op("Sigmoid", &[&i2], &[]);
    b.node("Identity", &[&s], &["y"], &[]);
    b.output_f32("y", &[1, 4]);
    // An output that is directly an input passes through an Identity that must stay.
    b.node("Identity", &[&x], &["x_copy"], &[]);
    b.output_f32("x_copy", &[1, 4]);
    let _dead = b.op("Neg", &[&r], &[]);
    b.init_named("emap", &Tensor::f32(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]));
    let mut m = b.build(13);
    m.graph_mut().node.reverse();
    let (c, rep) = apply("cleanup", &m, &ctx());
    let g = c.graph();
    assert_eq!(ops(&c, "Identity"), 1, "{rep:?}");
    assert_eq!(ops(&c, "Neg"), 0);
    assert_eq!(g.initializer.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["emap"]);
    assert_eq!(g.output.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), vec!["y", "x_copy"]);
    assert!(rep.details.iter().any(|d| d.contains("re-sorted")), "{rep:?}");
    let inputs = vec![vec![("x".to_string(), rand(&[1, 4], 5))]];
    assert_equivalent(&m, &c, &inputs, "cleanup");
}

// ---------------------------------------------------------------- fuse-io

#[test]
fn fuse_io_takes_its_spec_from_the_options() {
    let mut b = GraphBuilder::new("img");
    let x = b.input_f32("x", &[1, 3, 8, 8]);
    let t = b.op("Tanh", &[&x], &[]);
    b.node("Identity", &[&t], &["y"], &[]);
    b.output_f32("y", &[1, 3, 8, 8]);
    b.init_named("emap", &Tensor::f32(&[1], vec![1.0]));
    let m = b.build(13);
    let mut c = ctx();
    c.options = toml::from_str(
        r#"
        [[inputs]]
        name = "x"
        mean = [127.5, 127.5, 127.5]
        std = [127.5, 127.5, 127.5]
        swap_channels = true
        [[outputs]]
        name = "y"
        scale = 127.5
        offset = 127.5
        "#,
    )
    .unwrap();
    let (r, rep) = apply("fuse-io", &m, &c);
    assert_eq!(rep.rewritten, 2, "{rep:?}");
    assert_eq!(declared(&r.graph().input[0]).0, DataType::Uint8 as i32);
    assert_eq!(r.graph().initializer.last().unwrap().name, "emap");
    let mut bad = ctx();
    bad.options = toml::from_str("inputs = 3").unwrap();
    assert!(pass_by_name("fuse-io").unwrap().run(&mut m.clone(), &bad).is_err());
}

// ---------------------------------------------------------------- fp16

/// Peak signal-to-noise ratio of `b` against the reference `a`, the peak being `a`'s value range.
fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let (x, y) = (a.to_f32s(), b.to_f32s());
    let mse: f64 = x.iter().zip(&y).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>() / x.len() as f64;
    let lo = x.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * ((hi - lo).powi(2) / mse).log10()
}

fn elem_type(v: &faceperf::onnx::proto::ValueInfoProto) -> i32 {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t.elem_type,
        _ => 0,
    }
}

/// No Cast reads the output of another Cast.
fn assert_no_cast_pairs(m: &Model) {
    let g = m.graph();
    let idx = GraphIndex::new(g).unwrap();
    for n in g.node.iter().filter(|n| n.op_type == "Cast") {
        if let Some(&p) = idx.producer.get(&n.input[0]) {
            assert_ne!(g.node[p].op_type, "Cast", "back-to-back Casts: {} → {}", g.node[p].name, n.name);
        }
    }
}

fn conv_net() -> Model {
    let mut rng = Rng::new(11);
    let mut b = GraphBuilder::new("conv");
    let x = b.input_f32("x", &[1, 3, 16, 16]);
    let w = b.init("w", &Tensor::f32(&[8, 3, 3, 3], rng.vec(216, -0.4, 0.4)));
    let c = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 1, 1, 1])]);
    let s = b.init("s", &Tensor::f32(&[8], vec![1.0; 8]));
    let z = b.init("z", &Tensor::f32(&[8], vec![0.0; 8]));
    let n = b.op("InstanceNormalization", &[&c, &s, &z], &[attr::float("epsilon", 1e-5)]);
    let r = b.op("Relu", &[&n], &[]);
    let roi = b.init("roi", &Tensor::f32(&[0], vec![]));
    let sc = b.init("scales", &Tensor::f32(&[4], vec![1.0, 1.0, 2.0, 2.0]));
    let u = b.op("Resize", &[&r, &roi, &sc], &[attr::string("mode", "linear")]);
    let w2 = b.init("w2", &Tensor::f32(&[3, 8, 3, 3], rng.vec(216, -0.2, 0.2)));
    let c2 = b.op("Conv", &[&u, &w2], &[attr::ints("pads", &[1, 1, 1, 1])]);
    // A Constant read by a Mul and by an Add (the block-list test keeps Add in float32).
    let k = b.op("Constant", &[], &[attr::tensor("value", Tensor::f32(&[1], vec![0.7]).to_proto(""))]);
    let scaled = b.op("Mul", &[&c2, &k], &[]);
    let shifted = b.op("Add", &[&scaled, &k], &[]);
    // A second graph output that a float16 node also reads.
    b.node("Tanh", &[&shifted], &["y"], &[]);
    b.output_f32("y", &[1, 3, 32, 32]);
    b.node("Sigmoid", &[&scaled], &["z"], &[]);
    b.output_f32("z", &[1, 3, 32, 32]);
    let zz = b.op("Neg", &["z"], &[]);
    b.node("Abs", &[&zz], &["w"], &[]);
    b.output_f32("w", &[1, 3, 32, 32]);
    b.init_named("emap", &Tensor::f32(&[4, 4], rng.vec(16, -1.0, 1.0)));
    b.build(13)
}

#[test]
fn fp16_keeps_the_signature_and_emap_converts_weights_and_leaves_no_cast_pairs() {
    let m = conv_net();
    let (h, rep) = apply("fp16", &m, &ctx());
    let g = h.graph();
    assert!(rep.rewritten > 0, "{rep:?}");
    assert_eq!(elem_type(&g.input[0]), DataType::Float as i32);
    assert!(g.output.iter().all(|o| elem_type(o) == DataType::Float as i32));
    assert_eq!(g.output.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["y", "z", "w"]);
    let emap = g.initializer.last().unwrap();
    assert_eq!((emap.name.as_str(), emap.data_type), ("emap", DataType::Float as i32));
    let dtype = |prefix: &str| g.initializer.iter().find(|t| t.name.starts_with(prefix)).unwrap().data_type;
    assert_eq!(dtype("w_"), DataType::Float16 as i32);
    // Resize's scales are float32 by definition.
    assert_eq!(dtype("scales_"), DataType::Float as i32);
    assert_no_cast_pairs(&h);
    let inputs: Vec<_> = (0..3).map(|s| vec![("x".to_string(), rand(&[1, 3, 16, 16], 500 + s))]).collect();
    for inp in &inputs {
        let (a, b) = (run(&m, inp), run(&h, inp));
        for ((n, x), (_, y)) in a.iter().zip(&b) {
            assert_eq!(y.data.data_type(), DataType::Float);
            let p = psnr(x, y);
            assert!(p > 45.0, "'{n}': PSNR {p:.1} dB");
        }
    }
    // A block list from the options keeps those ops in float32 with Casts around them.
    let mut c = ctx();
    c.options = toml::from_str(r#"block = ["InstanceNormalization", "Conv", "Add"]"#).unwrap();
    let (hb, repb) = apply("fp16", &m, &c);
    assert!(repb.details.iter().any(|d| d.contains("Conv×2 kept in float32")), "{repb:?}");
    let gb = hb.graph();
    assert_eq!(gb.initializer.iter().find(|t| t.name.starts_with("w_")).unwrap().data_type, DataType::Float as i32);
    assert_no_cast_pairs(&hb);
    assert!(ops(&hb, "Cast") >= 3, "{repb:?}");
    assert_eq!(ops(&hb, "Constant"), 2, "the Constant exists in both types");
    for inp in &inputs {
        for ((n, x), (_, y)) in run(&m, inp).iter().zip(&run(&hb, inp)) {
            let p = psnr(x, y);
            assert!(p > 45.0, "blocked, '{n}': PSNR {p:.1} dB");
        }
    }
    let mut bad = ctx();
    bad.options = toml::from_str("block = \"Conv\"").unwrap();
    assert!(pass_by_name("fp16").unwrap().run(&mut m.clone(), &bad).is_err());
}

// ---------------------------------------------------------------- tiny replicas

fn replica(role: Role) -> Model {
    synth_model(role, Scale::Tiny, DEFAULT_SEED).unwrap()
}

fn replica_inputs(role: Role, seeds: std::ops::Range<u64>) -> Vec<Vec<(String, Tensor)>> {
    seeds
        .map(|s| match role {
            Role::Swapper => vec![
                ("target".to_string(), rand(&[1, 3, 128, 128], s)),
                ("source".to_string(), rand(&[1, 512], 1000 + s)),
            ],
            Role::Detector => vec![("input.1".to_string(), rand(&[1, 3, 640, 640], s))],
            Role::Enhancer => vec![("input".to_string(), rand(&[1, 3, 512, 512], s))],
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn swapper_reflect_pads_are_gone_bit_identically_with_emap_last() {
    let m = replica(Role::Swapper);
    assert_eq!(count(&m, is_reflect_pad), 14);
    let (r, rep) = apply("reflect-pad", &m, &ctx());
    assert_eq!(rep.rewritten, 14);
    assert_eq!(count(&r, is_reflect_pad), 0);
    assert_eq!(r.graph().initializer.last().unwrap().name, "emap");
    assert_equivalent(&m, &r, &replica_inputs(Role::Swapper, 0..3), "swapper reflect-pad");
}

#[test]
fn detector_has_no_shape_nodes_after_fold_shapes_at_640() {
    let m = replica(Role::Detector);
    assert!(ops(&m, "Shape") > 0);
    let (r, rep) = apply("fold-shapes", &m, &ctx_shapes("input.1", &[1, 3, 640, 640]));
    assert_eq!(ops(&r, "Shape"), 0, "{rep:?}");
    assert_eq!(ops(&r, "Gather") + ops(&r, "Unsqueeze") + ops(&r, "Concat"), 0, "{:#?}", rep.details);
    assert_equivalent(&m, &r, &replica_inputs(Role::Detector, 0..2), "detector fold-shapes");
}

#[test]
fn enhancer_has_no_split_nor_rank0_gather_after_the_two_passes() {
    let m = replica(Role::Enhancer);
    assert!(ops(&m, "Split") > 0 && rank0_gathers(&m) > 0);
    let (a, rep_a) = apply("split-to-slice", &m, &ctx());
    let (b, rep_b) = apply("widen-scalar-gather", &a, &ctx());
    assert_eq!(rep_a.rewritten, ops(&m, "Split"));
    assert_eq!(rep_b.rewritten, rank0_gathers(&m));
    assert_eq!(ops(&b, "Split"), 0);
    assert_eq!(rank0_gathers(&b), 0);
    assert_equivalent(&m, &b, &replica_inputs(Role::Enhancer, 0..2), "enhancer split + gather");
}

#[test]
fn all_exact_passes_then_cleanup_on_each_replica_are_bit_identical() {
    let names = ["fold-shapes", "reflect-pad", "split-to-slice", "widen-scalar-gather", "cleanup"];
    let passes: Vec<_> = names.iter().map(|n| pass_by_name(n).unwrap()).collect();
    for (role, shapes) in [
        (Role::Swapper, BTreeMap::new()),
        (Role::Detector, BTreeMap::from([("input.1".to_string(), vec![1, 3, 640, 640])])),
        (Role::Enhancer, BTreeMap::new()),
    ] {
        let m = replica(role);
        let mut r = m.clone();
        let c = PassContext { input_shapes: shapes, ..Default::default() };
        let reports = run_passes(&mut r, &passes, &c).unwrap();
        assert_eq!(reports.iter().map(|r| r.pass.as_str()).collect::<Vec<_>>(), names);
        if role == Role::Swapper {
            assert_eq!(r.graph().initializer.last().unwrap().name, "emap");
        }
        let again = run_passes(&mut r.clone(), &passes, &c).unwrap();
        assert!(again.iter().all(|r| r.rewritten == 0), "{role:?}: {again:#?}");
        assert_equivalent(&m, &r, &replica_inputs(role, 10..11), role.name());
    }
}

#[test]
fn fp16_replicas_meet_40db_and_halve_the_file() {
    for role in [Role::Swapper, Role::Enhancer] {
        let m = replica(role);
        let (h, rep) = apply("fp16", &m, &ctx());
        assert_no_cast_pairs(&h);
        let ratio = h.to_bytes().len() as f64 / m.to_bytes().len() as f64;
        let mut worst = f64::INFINITY;
        for inp in replica_inputs(role, 20..23) {
            let (a, b) = (run(&m, &inp), run(&h, &inp));
            assert_eq!(b[0].1.data.data_type(), DataType::Float);
            worst = worst.min(psnr(&a[0].1, &b[0].1));
        }
        eprintln!("{}: fp16 PSNR ≥ {worst:.1} dB, size ratio {ratio:.3}; {:?}", role.name(), rep.details);
        assert!(worst >= 40.0, "{}: PSNR {worst:.1} dB", role.name());
        if role == Role::Swapper {
            let emap = h.graph().initializer.last().unwrap();
            assert_eq!((emap.name.as_str(), emap.data_type), ("emap", DataType::Float as i32));
            // emap (512×512 float32, 1 MiB) stays float32: the rest halves.
            let emap_bytes = 512.0 * 512.0 * 4.0;
            let rest = (h.to_bytes().len() as f64 - emap_bytes) / (m.to_bytes().len() as f64 - emap_bytes);
            assert!((0.45..0.56).contains(&rest), "{}: size ratio without emap {rest:.3}", role.name());
        } else {
            assert!((0.45..0.56).contains(&ratio), "{}: size ratio {ratio:.3}", role.name());
        }
    }
}

// ---------------------------------------------------------------- fp16 block-list measurement

/// Evidence for `fp16::DEFAULT_BLOCK` (run by hand, prints a table; not a check):
/// `cargo test --release --test rewrite_passes fp16_block_list_measurement -- --ignored --nocapture`.
///
/// Per replica: PSNR of everything-in-float16 against float32; per op type, the largest magnitude
/// its outputs reach in float32 (float16 overflows above 65504) and, for reductions and
/// normalisations, the largest naive sum of squares over what they reduce (what a float16
/// accumulator would have to hold); and the PSNR when only that op type is kept in float32.
#[test]
#[ignore]
fn fp16_block_list_measurement() {
    use std::collections::HashMap;
    let roles = [Role::Swapper, Role::Enhancer, Role::Detector, Role::Recognizer, Role::Landmarks];
    for role in roles {
        let m = replica(role);
        let inputs: Vec<Vec<(String, Tensor)>> = match role {
            Role::Recognizer => (0..2).map(|s| vec![("input.1".into(), rand(&[1, 3, 112, 112], s))]).collect(),
            Role::Landmarks => (0..2).map(|s| vec![("data".into(), rand(&[1, 3, 192, 192], s))]).collect(),
            _ => replica_inputs(role, 0..2),
        };
        // Expose every float value as an output.
        let mut wide = m.clone();
        let info = faceperf::onnx::shape::infer(&m, &HashMap::new()).unwrap();
        let mut op_of: HashMap<String, (String, Vec<String>)> = HashMap::new();
        let outputs: Vec<String> = wide.graph().output.iter().map(|o| o.name.clone()).collect();
        for n in m.graph().node.iter() {
            for o in &n.output {
                if info.get(o).map(|f| f.dtype) == Some(DataType::Float as i32) {
                    op_of.insert(o.clone(), (n.op_type.clone(), n.input.clone()));
                    if !outputs.contains(o) {
                        wide.graph_mut().output.push(faceperf::onnx::builder::value_info(o, DataType::Float, None));
                    }
                }
            }
        }
        let mut max_abs: BTreeMap<String, f32> = BTreeMap::new();
        let mut acc: BTreeMap<String, f64> = BTreeMap::new();
        for inp in &inputs {
            let outs = run(&wide, inp);
            let values: HashMap<&str, &Tensor> = outs.iter().map(|(n, t)| (n.as_str(), t)).collect();
            for (name, t) in &outs {
                let Some((op, ins)) = op_of.get(name) else { continue };
                let v = t.to_f32s();
                let mx = v.iter().fold(0f32, |a, x| a.max(x.abs()));
                let e = max_abs.entry(op.clone()).or_default();
                *e = e.max(mx);
                let reduces = op.starts_with("Reduce")
                    || matches!(op.as_str(), "InstanceNormalization" | "LayerNormalization" | "GlobalAveragePool");
                let input = ins.first().and_then(|i| values.get(i.as_str()));
                if let (true, Some(x)) = (reduces, input) {
                    // Sum of squares per (N, C) plane: the accumulator of a naive variance/mean.
                    let xs = x.to_f32s();
                    let plane: usize = x.dims.iter().skip(2).product::<usize>().max(1);
                    let worst = xs
                        .chunks(plane)
                        .map(|c| c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>())
                        .fold(0.0, f64::max);
                    let e = acc.entry(op.clone()).or_default();
                    *e = e.max(worst);
                }
            }
        }
        let min_psnr = |h: &Model| -> f64 {
            let mut worst = f64::INFINITY;
            for inp in &inputs {
                for ((_, a), (_, b)) in run(&m, inp).iter().zip(run(h, inp).iter()) {
                    worst = worst.min(psnr(a, b));
                }
            }
            worst
        };
        let with_block = |ops: &[&str]| -> Model {
            let mut c = ctx();
            let list: Vec<toml::Value> = ops.iter().map(|s| toml::Value::String(s.to_string())).collect();
            c.options.insert("block".into(), toml::Value::Array(list));
            let mut h = m.clone();
            pass_by_name("fp16").unwrap().run(&mut h, &c).unwrap();
            h
        };
        let base = min_psnr(&with_block(&[]));
        eprintln!("\n== {} (tiny): all in float16: min PSNR {base:.1} dB", role.name());
        eprintln!("{:<24} {:>12} {:>14} {:>18}", "op", "max |out|", "max Σx² plane", "PSNR if kept f32");
        for (op, mx) in &max_abs {
            let blocked = min_psnr(&with_block(&[op.as_str()]));
            let a = acc.get(op).map(|v| format!("{v:.3e}")).unwrap_or_else(|| "-".into());
            eprintln!("{op:<24} {mx:>12.3e} {a:>14} {blocked:>15.1} dB");
        }
    }
}

/// The same check at full scale (run by hand, slow: ~550 MB swapper, 512×512 GFPGAN-sized
/// enhancer): `cargo test --release --test rewrite_passes fp16_full_replicas -- --ignored --nocapture`.
#[test]
#[ignore]
fn fp16_full_replicas_psnr_and_size() {
    for role in [Role::Swapper, Role::Enhancer] {
        let t0 = std::time::Instant::now();
        let m = synth_model(role, Scale::Full, DEFAULT_SEED).unwrap();
        let mut h = m.clone();
        let rep = pass_by_name("fp16").unwrap().run(&mut h, &ctx()).unwrap();
        let (a_len, h_len) = (m.to_bytes().len(), h.to_bytes().len());
        let convert = t0.elapsed();
        for inp in replica_inputs(role, 30..31) {
            let (a, b) = (run(&m, &inp), run(&h, &inp));
            let p = psnr(&a[0].1, &b[0].1);
            let d = max_abs_diff(&a, &b);
            eprintln!(
                "{} (full): fp16 PSNR {p:.1} dB, max abs {d:.2e}, size {a_len} → {h_len} ({:.3}), build+convert {convert:.1?}; {:?}",
                role.name(),
                h_len as f64 / a_len as f64,
                rep.details
            );
        }
    }
}

/// Time of each pass on the full swapper against a plain encode of the same model (run by hand:
/// `cargo test --release --test rewrite_passes pass_times_on_the_full_swapper -- --ignored --nocapture`).
#[test]
#[ignore]
fn pass_times_on_the_full_swapper() {
    let mut m = synth_model(Role::Swapper, Scale::Full, DEFAULT_SEED).unwrap();
    let t = std::time::Instant::now();
    let bytes = m.to_bytes();
    let encode = t.elapsed();
    let t = std::time::Instant::now();
    let _ = Model::from_bytes(&bytes).unwrap();
    let decode = t.elapsed();
    eprintln!("full swapper: {} bytes; encode {encode:.2?}, decode {decode:.2?}", bytes.len());
    for name in ["fold-shapes", "reflect-pad", "split-to-slice", "widen-scalar-gather", "cleanup", "fp16"] {
        let t = std::time::Instant::now();
        let r = pass_by_name(name).unwrap().run(&mut m, &ctx()).unwrap();
        eprintln!("  {name}: {:.2?} ({} sites)", t.elapsed(), r.rewritten);
    }
}

#[test]
fn every_pass_gives_the_same_bytes_on_every_run() {
    // A variant's bytes are its cache identity: a pass whose output depends on hash-map order
    // (fp16 once did) makes a different file from one run to the next.
    for role in Role::ALL {
        let m = synth_model(role, Scale::Tiny, DEFAULT_SEED).unwrap();
        for name in PASS_NAMES {
            let pass = pass_by_name(name).unwrap();
            let (mut a, mut b) = (m.clone(), m.clone());
            if pass.run(&mut a, &ctx()).is_err() {
                continue;
            }
            pass.run(&mut b, &ctx()).unwrap();
            assert!(a.to_bytes() == b.to_bytes(), "{name} on the {} replica differs between two runs", role.name());
        }
    }
}
