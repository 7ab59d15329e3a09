//! inswapper_128 replica: a 128×128 encoder, AdaIN residual style blocks driven by the 512-d source
//! latent, an upsampling decoder and `Tanh`.
//!
//! The op patterns that matter downstream:
//! - `Pad(mode=reflect)` before every 7×7 conv and every style-block 3×3 conv: 1 + 2·6 + 1 = 14, the
//!   count of the real file, which CoreML (ORT < 1.26) cuts into 14 partitions;
//! - the 512×512 `emap` is the graph's last initializer and no node reads it: insightface multiplies
//!   the ArcFace embedding by it in Python, so a pass that drops "unused" initializers breaks callers.
//!
//! Full scale: bottleneck 1024 channels at 16×16 with 6 style blocks gives the published ~138M
//! parameters; the decoder is widened at high resolution to reach the published FLOPs.

use super::net::Net;
use super::Scale;
use crate::onnx::graph::attr;
use crate::onnx::Model;

/// Opset of the replica (Pad's `pads` is an input from 11, Slice's from 10).
pub const OPSET: i64 = 13;
/// Number of style blocks (each has two reflect-padded 3×3 convs).
pub const STYLE_BLOCKS: usize = 6;

struct Widths {
    enc: [usize; 4],
    bottleneck: usize,
    /// Decoder convs after each ×2 upsample (16→32→64→128), then one more at 128.
    dec: [usize; 4],
}

fn widths(scale: Scale) -> Widths {
    match scale {
        Scale::Tiny => Widths { enc: [8, 16, 32, 32], bottleneck: 32, dec: [16, 16, 8, 8] },
        Scale::Full => Widths { enc: [128, 256, 512, 1024], bottleneck: 1024, dec: [512, 512, 256, 256] },
    }
}

/// InstanceNormalization (no affine), then `x·(γ + 1) + β` with γ, β from one `Gemm` of the latent.
fn adain(n: &mut Net, x: &str, latent: &str, c: usize) -> String {
    let ones = n.f32s("in_scale", &[c], vec![1.0; c]);
    let zeros = n.f32s("in_bias", &[c], vec![0.0; c]);
    let normed = n.b.op("InstanceNormalization", &[x, &ones, &zeros], &[attr::float("epsilon", 1e-5)]);
    // One Gemm gives [γ | β]; γ's bias is centred on 1 so the block starts near identity.
    let style = n.linear(latent, 512, 2 * c, 0.3);
    let style = n.reshape(&style, &[1, 2 * c as i64, 1, 1]);
    let axes = n.i64s("axes", &[1]);
    let (s0, s1, s2) = (n.i64s("starts", &[0]), n.i64s("ends", &[c as i64]), n.i64s("ends", &[2 * c as i64]));
    let gamma = n.b.op("Slice", &[&style, &s0, &s1, &axes], &[]);
    // SimSwap-style `x · (γ + 1) + β`: the block starts near identity.
    let one = n.f32s("one", &[], vec![1.0]);
    let gamma = n.bin("Add", &gamma, &one);
    let beta = n.b.op("Slice", &[&style, &s1, &s2, &axes], &[]);
    let scaled = n.bin("Mul", &normed, &gamma);
    n.bin("Add", &scaled, &beta)
}

fn style_block(n: &mut Net, x: &str, latent: &str, c: usize) -> String {
    let p = n.reflect_pad(x, 1);
    let h = n.conv(&p, c, c, 3, 1, 0, 1, 1.0);
    let h = adain(n, &h, latent, c);
    let h = n.relu(&h);
    let p = n.reflect_pad(&h, 1);
    let h = n.conv(&p, c, c, 3, 1, 0, 1, 1.0);
    let h = adain(n, &h, latent, c);
    n.bin("Add", x, &h)
}

/// Builds the swapper replica.
pub fn build(scale: Scale, seed: u64, skeleton: bool) -> Model {
    let w = widths(scale);
    let mut n = Net::new("inswapper_128_replica", seed).skeleton(skeleton);
    let target = n.b.input_f32("target", &[1, 3, 128, 128]);
    let latent = n.b.input_f32("source", &[1, 512]);

    let p = n.reflect_pad(&target, 3);
    let mut x = n.conv(&p, 3, w.enc[0], 7, 1, 0, 1, 1.4);
    x = n.leaky(&x, 0.2);
    let mut c = w.enc[0];
    for &cout in &w.enc[1..] {
        x = n.conv_same(&x, c, cout, 3, 2);
        x = n.leaky(&x, 0.2);
        c = cout;
    }
    debug_assert_eq!(c, w.bottleneck);
    for _ in 0..STYLE_BLOCKS {
        x = style_block(&mut n, &x, &latent, c);
    }
    for (i, &cout) in w.dec.iter().enumerate() {
        if i < 3 {
            x = n.upsample(&x, 2.0, "linear");
        }
        x = n.conv_same(&x, c, cout, 3, 1);
        x = n.leaky(&x, 0.2);
        c = cout;
    }
    let p = n.reflect_pad(&x, 3);
    let y = n.conv(&p, c, 3, 7, 1, 0, 1, 1.0);
    n.b.node("Tanh", &[&y], &["output"], &[]);
    n.b.output_f32("output", &[1, 3, 128, 128]);
    // Last initializer, read by position: insightface takes `graph.initializer[-1]` as emap.
    n.rand_named("emap", &[512, 512], (3.0f32 / 512.0).sqrt());
    n.build(OPSET)
}
