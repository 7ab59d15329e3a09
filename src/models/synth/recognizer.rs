//! w600k_r50 (ArcFace IResNet-50) replica: `input.1` 1×3×112×112 → 1×512 embedding.
//!
//! IResNet blocks are BN → conv → BN → PReLU → conv(stride) → BN plus a shortcut; the
//! BatchNormalization nodes stay in the graph because a BN that precedes a conv cannot be folded
//! into it, as in the real export. Full scale uses the r50 stage depths [3, 4, 14, 3].

use super::net::Net;
use super::Scale;
use crate::onnx::Model;

/// Opset of the replica.
pub const OPSET: i64 = 13;
/// Output name (the real file's output name is not published; read outputs by position).
pub const OUTPUT: &str = "683";

fn stages(scale: Scale) -> (usize, [(usize, usize); 4]) {
    match scale {
        Scale::Tiny => (8, [(1, 8), (1, 16), (1, 16), (1, 32)]),
        Scale::Full => (64, [(3, 64), (4, 128), (14, 256), (3, 512)]),
    }
}

fn block(n: &mut Net, x: &str, cin: usize, cout: usize, stride: usize) -> String {
    let h = n.batchnorm(x, cin);
    let h = n.conv(&h, cin, cout, 3, 1, 1, 1, 1.0);
    let h = n.batchnorm(&h, cout);
    let h = n.prelu(&h, cout);
    let h = n.conv(&h, cout, cout, 3, stride, 1, 1, 0.3);
    let h = n.batchnorm(&h, cout);
    let skip = if stride != 1 || cin != cout {
        let s = n.conv(x, cin, cout, 1, stride, 0, 1, 1.0);
        n.batchnorm(&s, cout)
    } else {
        x.to_string()
    };
    n.bin("Add", &h, &skip)
}

/// Builds the recogniser replica.
pub fn build(scale: Scale, seed: u64, skeleton: bool) -> Model {
    let (stem, stages) = stages(scale);
    let mut n = Net::new("w600k_r50_replica", seed).skeleton(skeleton);
    let x = n.b.input_f32("input.1", &[1, 3, 112, 112]);
    let mut x = n.conv(&x, 3, stem, 3, 1, 1, 1, 1.0);
    x = n.batchnorm(&x, stem);
    x = n.prelu(&x, stem);
    let mut c = stem;
    for &(blocks, cout) in &stages {
        for j in 0..blocks {
            x = block(&mut n, &x, c, cout, if j == 0 { 2 } else { 1 });
            c = cout;
        }
    }
    x = n.batchnorm(&x, c);
    let flat = n.b.op("Flatten", &[&x], &[crate::onnx::graph::attr::int("axis", 1)]);
    let fc = n.linear(&flat, c * 7 * 7, 512, 1.0);
    let scale_ = n.range_init("bn_scale", &[512], 0.8, 1.2);
    let bias = n.rand_init("bn_bias", &[512], 0.05);
    let mean = n.rand_init("bn_mean", &[512], 0.05);
    let var = n.range_init("bn_var", &[512], 0.9, 1.1);
    n.b.node(
        "BatchNormalization",
        &[&fc, &scale_, &bias, &mean, &var],
        &[OUTPUT],
        &[crate::onnx::graph::attr::float("epsilon", 1e-5)],
    );
    n.b.output_f32(OUTPUT, &[1, 512]);
    n.build(OPSET)
}
