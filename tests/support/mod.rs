//! Helpers shared by several test files (each includes this with `mod support;`): a loopback HTTP
//! server, seeded random tensors, node counting, a similarity transform, and the real SCRFD path.
// Each test file uses only some of these.
#![allow(dead_code)]

pub mod http;

use std::path::PathBuf;

use faceperf::onnx::proto::NodeProto;
use faceperf::onnx::{Model, NodeExt, Tensor};
use faceperf::pipeline::align::Affine;
use faceperf::util::assets::shared_file;
use faceperf::util::rng::Rng;

/// A float32 tensor of shape `dims`, uniform in [-1, 1), from `seed`.
pub fn rand(dims: &[usize], seed: u64) -> Tensor {
    Tensor::f32(dims, Rng::new(seed).vec(dims.iter().product(), -1.0, 1.0))
}

/// How many nodes of `m` satisfy `f`.
pub fn count(m: &Model, f: impl Fn(&NodeProto) -> bool) -> usize {
    m.graph().node.iter().filter(|n| f(n)).count()
}

/// True for `Pad` nodes in reflect mode.
pub fn is_reflect_pad(n: &NodeProto) -> bool {
    n.op_type == "Pad" && n.attr_s("mode").as_deref() == Some("reflect")
}

/// A similarity: rotation `deg`, scale `s`, then translation.
pub fn similarity(deg: f32, s: f32, tx: f32, ty: f32) -> Affine {
    let (sin, cos) = deg.to_radians().sin_cos();
    Affine([s * cos, -s * sin, tx, s * sin, s * cos, ty])
}

/// The real SCRFD-500M detector from the shared test assets.
pub fn scrfd() -> PathBuf {
    shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap()
}
