//! Static shape inference agrees with what ONNX Runtime actually produces, op by op, for the ops
//! the face models use.

use std::collections::HashMap;

use faceperf::onnx::graph::attr;
use faceperf::onnx::proto::tensor_proto::DataType;
use faceperf::onnx::shape::infer;
use faceperf::onnx::{Dim, GraphBuilder, Model, Tensor};
use faceperf::runtime::{self, session::ModelSource, SessionConfig, SessionRunner};
use faceperf::util::rng::Rng;

/// One graph exercising every op family; every intermediate value is a graph output.
fn zoo_of_ops() -> Model {
    let mut rng = Rng::new(11);
    let mut b = GraphBuilder::new("ops");
    let x = b.input(
        "x",
        DataType::Float,
        &[Dim::Sym("n".into()), Dim::Fixed(4), Dim::Sym("h".into()), Dim::Sym("w".into())],
    );
    let w = b.init("w", &Tensor::f32(&[6, 4, 3, 3], rng.vec(216, -0.3, 0.3)));
    let conv = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 0, 1, 0]), attr::ints("strides", &[2, 1])]);
    let wt = b.init("wt", &Tensor::f32(&[6, 3, 4, 4], rng.vec(288, -0.3, 0.3)));
    let deconv =
        b.op("ConvTranspose", &[&conv, &wt], &[attr::ints("strides", &[2, 2]), attr::ints("pads", &[1, 1, 1, 1])]);
    let pads = b.init("pads", &Tensor::i64_vec(&[0, 0, 2, 1, 0, 0, 2, 1]));
    let pad = b.op("Pad", &[&x, &pads], &[attr::string("mode", "reflect")]);
    let scales = b.init("scales", &Tensor::f32(&[4], vec![1.0, 1.0, 2.0, 2.0]));
    let resize = b.op("Resize", &[&x, "", &scales], &[attr::string("mode", "nearest")]);
    let sizes = b.init("sizes", &Tensor::i64_vec(&[1, 4, 7, 9]));
    let resize2 = b.op("Resize", &[&x, "", "", &sizes], &[attr::string("mode", "linear")]);
    let shp = b.op("Shape", &[&x], &[]);
    let idx = b.init("idx", &Tensor::i64_scalar(2));
    let h = b.op("Gather", &[&shp, &idx], &[attr::int("axis", 0)]);
    let ax0 = b.init("ax0", &Tensor::i64_vec(&[0]));
    let h1 = b.op("Unsqueeze", &[&h, &ax0], &[]);
    let minus1 = b.init("m1", &Tensor::i64_vec(&[1, -1]));
    let target = b.op("Concat", &[&minus1, &h1], &[attr::int("axis", 0)]);
    let reshaped = b.op("Reshape", &[&x, &target], &[]);
    let flat = b.op("Flatten", &[&x], &[attr::int("axis", 2)]);
    let tr = b.op("Transpose", &[&x], &[attr::ints("perm", &[0, 2, 3, 1])]);
    let (st, en, axes, steps) = (
        b.init("st", &Tensor::i64_vec(&[-1, 1])),
        b.init("en", &Tensor::i64_vec(&[i64::MIN, 100])),
        b.init("axes", &Tensor::i64_vec(&[3, 2])),
        b.init("steps", &Tensor::i64_vec(&[-2, 3])),
    );
    let sl = b.op("Slice", &[&x, &st, &en, &axes, &steps], &[]);
    let split_sizes = b.init("split", &Tensor::i64_vec(&[1, 3]));
    let parts = b.op_n("Split", &[&x, &split_sizes], 2, &[attr::int("axis", 1)]);
    let cat = b.op("Concat", &[&parts[1], &parts[0], &x], &[attr::int("axis", 1)]);
    let sq_axes = b.init("sq", &Tensor::i64_vec(&[1]));
    let sq = b.op("Squeeze", &[&parts[0], &sq_axes], &[]);
    let gap = b.op("GlobalAveragePool", &[&x], &[]);
    let fl = b.op("Flatten", &[&gap], &[]);
    let gw = b.init("gw", &Tensor::f32(&[8, 4], rng.vec(32, -1.0, 1.0)));
    let gemm = b.op("Gemm", &[&fl, &gw], &[attr::int("transB", 1)]);
    let mw = b.init("mw", &Tensor::f32(&[4, 5], rng.vec(20, -1.0, 1.0)));
    let mm = b.op("MatMul", &[&tr, &mw], &[]);
    let bias = b.init("bias", &Tensor::f32(&[4, 1, 1], vec![0.1, 0.2, 0.3, 0.4]));
    let add = b.op("Add", &[&x, &bias], &[]);
    let red = b.op("ReduceMean", &[&x], &[attr::ints("axes", &[2, 3]), attr::int("keepdims", 0)]);
    let mp = b.op(
        "MaxPool",
        &[&x],
        &[attr::ints("kernel_shape", &[3, 3]), attr::ints("strides", &[2, 2]), attr::ints("pads", &[1, 1, 1, 1])],
    );
    let ap = b.op(
        "AveragePool",
        &[&x],
        &[attr::ints("kernel_shape", &[2, 2]), attr::ints("strides", &[2, 2]), attr::int("ceil_mode", 1)],
    );
    let (s4, b4) = (b.init("s4", &Tensor::f32(&[4], vec![1.0; 4])), b.init("b4", &Tensor::f32(&[4], vec![0.0; 4])));
    let inorm = b.op("InstanceNormalization", &[&x, &s4, &b4], &[]);
    let (m4, v4) = (b.init("m4", &Tensor::f32(&[4], vec![0.0; 4])), b.init("v4", &Tensor::f32(&[4], vec![1.0; 4])));
    let bn = b.op("BatchNormalization", &[&x, &s4, &b4, &m4, &v4], &[]);
    for v in [
        conv,
        deconv,
        pad,
        resize,
        resize2,
        reshaped,
        flat,
        tr,
        mm,
        sl,
        cat,
        sq,
        gemm,
        add,
        red,
        mp,
        ap,
        inorm,
        bn,
        parts[0].clone(),
        parts[1].clone(),
    ] {
        b.output(&v, DataType::Float, None);
    }
    b.build(13)
}

#[test]
fn inferred_shapes_match_onnx_runtime() {
    let m = zoo_of_ops();
    let shape = [1usize, 4, 10, 12];
    let overrides = HashMap::from([("x".to_string(), shape.iter().map(|&d| d as i64).collect::<Vec<_>>())]);
    let info = infer(&m, &overrides).unwrap();

    let rt = runtime::init(None).expect("ORT available (run ci/setup-ort.sh)");
    let mut s = SessionRunner::new(rt, ModelSource::Bytes(&m.to_bytes()), &SessionConfig::cpu(1)).unwrap();
    let x = Tensor::f32(&shape, Rng::new(2).vec(480, -1.0, 1.0));
    let outs = s.run(&[("x".into(), x)]).unwrap();
    assert_eq!(outs.len(), m.graph().output.len());
    for (name, t) in outs {
        let ours = info.shape(&name).unwrap_or_else(|| panic!("no static shape inferred for {name}"));
        let theirs: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
        let producer = m.graph().node.iter().find(|n| n.output.contains(&name)).unwrap();
        assert_eq!(ours, theirs, "{} ({name})", producer.op_type);
    }
}
