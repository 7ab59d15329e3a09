//! det_10g (SCRFD-10G-KPS) replica: ResNet-style backbone, PAFPN neck, per-stride heads with 2
//! anchors per location, and the nine 2-D outputs in the real order (scores, boxes, keypoints, each
//! for strides 8, 16, 32).
//!
//! The input is `input.1` 1×3×H×W with H and W symbolic, as in the original export. Every
//! data-dependent shape goes through the exporter's `Shape → Gather → Unsqueeze → Concat` chains
//! (head reshapes, and the neck's resize-to-size); with H and W fixed these fold to constants, which
//! is what `fold-shapes` does and what made det_10g 5× faster on CoreML.

use super::net::Net;
use super::Scale;
use crate::onnx::builder::Dim;
use crate::onnx::graph::attr;
use crate::onnx::{DataType, Model, Tensor};

/// Opset of the replica (Unsqueeze/Squeeze take `axes` as an input from 13).
pub const OPSET: i64 = 13;
/// Anchors per feature-map location.
pub const ANCHORS: usize = 2;
/// Feature strides, in output order.
pub const STRIDES: [usize; 3] = [8, 16, 32];
/// Output names: numeric, like the exporter's, in the real order (scores 8/16/32, boxes, keypoints).
pub const OUTPUTS: [&str; 9] = ["448", "471", "494", "451", "474", "497", "454", "477", "500"];

struct Widths {
    stem: usize,
    /// (blocks, channels) for strides 4, 8, 16, 32.
    stages: [(usize, usize); 4],
    neck: usize,
    head: usize,
    head_convs: usize,
}

fn widths(scale: Scale) -> Widths {
    match scale {
        Scale::Tiny => Widths { stem: 8, stages: [(1, 8), (1, 16), (1, 16), (1, 32)], neck: 8, head: 8, head_convs: 1 },
        Scale::Full => {
            Widths { stem: 28, stages: [(3, 56), (4, 88), (2, 88), (3, 224)], neck: 56, head: 80, head_convs: 3 }
        }
    }
}

fn basic_block(n: &mut Net, x: &str, cin: usize, cout: usize, stride: usize) -> String {
    let h = n.conv_same(x, cin, cout, 3, stride);
    let h = n.relu(&h);
    let h = n.conv(&h, cout, cout, 3, 1, 1, 1, 0.5);
    let skip = if stride != 1 || cin != cout {
        let pooled = if stride != 1 {
            let k = stride as i64;
            n.b.op(
                "AveragePool",
                &[x],
                &[attr::ints("kernel_shape", &[k, k]), attr::ints("strides", &[k, k]), attr::int("ceil_mode", 1)],
            )
        } else {
            x.to_string()
        };
        n.conv(&pooled, cin, cout, 1, 1, 0, 1, 1.0)
    } else {
        x.to_string()
    };
    let s = n.bin("Add", &h, &skip);
    n.relu(&s)
}

/// `dim` of `x` as a 1-element vector: `Shape → Gather(scalar index) → Unsqueeze`.
fn dim_of(n: &mut Net, x: &str, dim: i64) -> String {
    let shape = n.b.op("Shape", &[x], &[]);
    let idx = n.b.init("idx", &Tensor::i64_scalar(dim));
    let d = n.b.op("Gather", &[&shape, &idx], &[attr::int("axis", 0)]);
    let axes = n.i64s("axes", &[0]);
    n.b.op("Unsqueeze", &[&d, &axes], &[])
}

/// Resizes `x` (nearest) to the spatial size of `like`, as `F.interpolate(x, size=like.shape[2:])`
/// exports: the target size is built at run time from `like`'s shape.
fn resize_like(n: &mut Net, x: &str, like: &str) -> String {
    let nb = dim_of(n, x, 0);
    let nc = dim_of(n, x, 1);
    let h = dim_of(n, like, 2);
    let w = dim_of(n, like, 3);
    let sizes = n.b.op("Concat", &[&nb, &nc, &h, &w], &[attr::int("axis", 0)]);
    let roi = n.f32s("roi", &[0], vec![]);
    let scales = n.f32s("scales", &[0], vec![]);
    n.b.op(
        "Resize",
        &[x, &roi, &scales, &sizes],
        &[
            attr::string("mode", "nearest"),
            attr::string("coordinate_transformation_mode", "asymmetric"),
            attr::string("nearest_mode", "floor"),
        ],
    )
}

/// A head output: `Transpose` to NHWC, `Reshape` to (batch, -1, k) through a shape chain, then the
/// batch axis dropped, giving the exporter's 2-D `N×k`.
fn flatten_head(n: &mut Net, x: &str, k: i64, out: &str) {
    let t = n.b.op("Transpose", &[x], &[attr::ints("perm", &[0, 2, 3, 1])]);
    let batch = dim_of(n, &t, 0);
    let rest = n.i64s("shape", &[-1, k]);
    let target = n.b.op("Concat", &[&batch, &rest], &[attr::int("axis", 0)]);
    let r = n.b.op("Reshape", &[&t, &target], &[]);
    let axes = n.i64s("axes", &[0]);
    n.b.node("Squeeze", &[&r, &axes], &[out], &[]);
}

/// Builds the detector replica.
pub fn build(scale: Scale, seed: u64, skeleton: bool) -> Model {
    let w = widths(scale);
    let mut n = Net::new("det_10g_replica", seed).skeleton(skeleton);
    let x = n.b.input("input.1", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(3), "h".into(), "w".into()]);

    // Stem: stride 4.
    let mut x = n.conv_same(&x, 3, w.stem, 3, 2);
    x = n.relu(&x);
    x = n.conv_same(&x, w.stem, w.stem, 3, 1);
    x = n.relu(&x);
    x = n.conv_same(&x, w.stem, 2 * w.stem, 3, 1);
    x = n.relu(&x);
    x = n.b.op(
        "MaxPool",
        &[&x],
        &[attr::ints("kernel_shape", &[3, 3]), attr::ints("strides", &[2, 2]), attr::ints("pads", &[1, 1, 1, 1])],
    );
    let mut c = 2 * w.stem;
    let mut feats = Vec::new();
    for (i, &(blocks, cout)) in w.stages.iter().enumerate() {
        for j in 0..blocks {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            x = basic_block(&mut n, &x, c, cout, stride);
            c = cout;
        }
        if i > 0 {
            feats.push((x.clone(), c));
        }
    }

    // PAFPN: laterals, top-down with resize-to-size, fpn convs, bottom-up.
    let lat: Vec<String> = feats.iter().map(|(f, c)| n.conv(f, *c, w.neck, 1, 1, 0, 1, 1.0)).collect();
    let mut td = vec![String::new(); 3];
    td[2] = lat[2].clone();
    for i in (0..2).rev() {
        let up = resize_like(&mut n, &td[i + 1], &lat[i]);
        td[i] = n.bin("Add", &lat[i], &up);
    }
    let mut outs: Vec<String> = td.iter().map(|t| n.conv(t, w.neck, w.neck, 3, 1, 1, 1, 1.0)).collect();
    for i in 1..3 {
        let down = n.conv(&outs[i - 1], w.neck, w.neck, 3, 2, 1, 1, 1.0);
        outs[i] = n.bin("Add", &outs[i], &down);
        outs[i] = n.conv(&outs[i], w.neck, w.neck, 3, 1, 1, 1, 1.0);
    }

    // Heads: stacked convs, then score / box / keypoint convs per level.
    let mut heads = Vec::new();
    for feat in &outs {
        let mut h = feat.clone();
        let mut hc = w.neck;
        for _ in 0..w.head_convs {
            h = n.conv_same(&h, hc, w.head, 3, 1);
            h = n.relu(&h);
            hc = w.head;
        }
        let cls = n.conv(&h, hc, ANCHORS, 3, 1, 1, 1, 1.0);
        let cls = n.b.op("Sigmoid", &[&cls], &[]);
        let bbox = n.conv(&h, hc, ANCHORS * 4, 3, 1, 1, 1, 1.0);
        let bbox_scale = n.range_init("scale", &[1], 0.9, 1.1);
        let bbox = n.bin("Mul", &bbox, &bbox_scale);
        let kps = n.conv(&h, hc, ANCHORS * 10, 3, 1, 1, 1, 1.0);
        heads.push((cls, bbox, kps));
    }
    for (kind, k) in [(0, 1i64), (1, 4), (2, 10)] {
        for (level, (cls, bbox, kps)) in heads.iter().enumerate() {
            let src = [cls, bbox, kps][kind].clone();
            let name = OUTPUTS[kind * 3 + level];
            flatten_head(&mut n, &src, k, name);
            let rows = format!("n{}", STRIDES[level]);
            n.b.output(name, DataType::Float, Some(&[Dim::Sym(rows), Dim::Fixed(k)]));
        }
    }
    n.build(OPSET)
}
