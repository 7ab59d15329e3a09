//! GFPGANv1.4 (GFPGANv1Clean) replica: `input` 1×3×512×512 in [-1, 1] → `output` 1×3×512×512.
//!
//! Structure: a U-Net encoder down to 4×4, a linear layer producing 16 style codes (1×16×512), a
//! U-Net up path producing SFT conditions (scale, shift) per resolution, and a StyleGAN2 decoder of
//! modulated convolutions. The op patterns that matter downstream:
//! - every SFT layer splits its features in two with `Split(axis=1)` (CoreML EP before ORT 1.27 has
//!   no Split; the rewrite turns it into two `Slice`s);
//! - each style code is taken with a rank-0 (scalar) index `Gather` on axis 1 of the code tensor.
//!
//! Exported at opset 11 like the common GFPGAN ONNX export: Split's sizes and ReduceSum's axes are
//! attributes there.

use super::net::Net;
use super::Scale;
use crate::onnx::graph::attr;
use crate::onnx::{Model, Tensor};

/// Opset of the replica.
pub const OPSET: i64 = 11;
/// Style codes: 2·log2(512) − 2.
pub const NUM_LATENT: usize = 16;
/// Width of one style code.
pub const STYLE_DIM: usize = 512;
/// Input and output names.
pub const INPUT: &str = "input";
/// Output name (the common export's; the hacksider file's names are not published).
pub const OUTPUT: &str = "output";

/// (U-Net channels, decoder channels) per resolution 512, 256, …, 4.
fn channels(scale: Scale) -> ([usize; 8], [usize; 8]) {
    match scale {
        Scale::Tiny => ([2, 4, 4, 8, 8, 8, 8, 8], [4, 4, 8, 8, 8, 8, 8, 8]),
        // GFPGANv1Clean, channel_multiplier 2: decoder 512 up to 64×64, U-Net at half width.
        Scale::Full => ([32, 64, 128, 256, 256, 256, 256, 256], [64, 128, 256, 512, 512, 512, 512, 512]),
    }
}

fn resblock(n: &mut Net, x: &str, cin: usize, cout: usize, factor: f32) -> String {
    let h = n.conv_same(x, cin, cin, 3, 1);
    let h = n.leaky(&h, 0.2);
    let h = n.upsample(&h, factor, "linear");
    let h = n.conv(&h, cin, cout, 3, 1, 1, 1, 0.7);
    let h = n.leaky(&h, 0.2);
    let s = n.upsample(x, factor, "linear");
    let s = n.conv(&s, cin, cout, 1, 1, 0, 1, 0.7);
    n.bin("Add", &h, &s)
}

/// Modulated conv with weight demodulation, in the input-scaling form: `conv(x · s) · d` with
/// `d = 1 / sqrt(Σ_k (W² summed over space) · s² + ε)`, which is what modulating the weights computes.
fn modconv(n: &mut Net, x: &str, style: &str, cin: usize, cout: usize, k: usize, demod: bool) -> String {
    let s = n.linear_bias_range(style, STYLE_DIM, cin, 0.3, 0.9, 1.1);
    let s4 = n.reshape(&s, &[1, cin as i64, 1, 1]);
    let xm = n.bin("Mul", x, &s4);
    let w = n.weight(&[cout, cin, k, k], cin * k * k, 1.0);
    let y = n.b.op("Conv", &[&xm, &w], &[attr::ints("pads", &[(k / 2) as i64; 4])]);
    if !demod {
        return y;
    }
    let w2 = n.bin("Mul", &w, &w);
    let wsum = n.b.op("ReduceSum", &[&w2], &[attr::ints("axes", &[2, 3]), attr::int("keepdims", 0)]);
    let wt = n.b.op("Transpose", &[&wsum], &[attr::ints("perm", &[1, 0])]);
    let s2 = n.bin("Mul", &s, &s);
    let energy = n.b.op("MatMul", &[&s2, &wt], &[]);
    let eps = n.f32s("eps", &[1], vec![1e-8]);
    let energy = n.bin("Add", &energy, &eps);
    let norm = n.b.op("Sqrt", &[&energy], &[]);
    let d = n.b.op("Reciprocal", &[&norm], &[]);
    let d4 = n.reshape(&d, &[1, cout as i64, 1, 1]);
    n.bin("Mul", &y, &d4)
}

/// Modulated conv + bias + leaky ReLU (StyleGAN2's StyleConv without noise).
fn styleconv(n: &mut Net, x: &str, style: &str, cin: usize, cout: usize) -> String {
    let y = modconv(n, x, style, cin, cout, 3, true);
    let b = n.rand_init("bias", &[1, cout, 1, 1], 0.05);
    let y = n.bin("Add", &y, &b);
    n.leaky(&y, 0.2)
}

/// Builds the enhancer replica.
pub fn build(scale: Scale, seed: u64, skeleton: bool) -> Model {
    let (uc, dc) = channels(scale);
    let mut n = Net::new("GFPGANv1.4_replica", seed).skeleton(skeleton);
    let x = n.b.input_f32(INPUT, &[1, 3, 512, 512]);

    // U-Net encoder 512 → 4, keeping each level's output as a skip.
    let mut f = n.conv(&x, 3, uc[0], 1, 1, 0, 1, 1.0);
    f = n.leaky(&f, 0.2);
    let mut skips = vec![];
    for i in 0..7 {
        f = resblock(&mut n, &f, uc[i], uc[i + 1], 0.5);
        skips.push(f.clone());
    }
    f = n.conv_same(&f, uc[7], uc[7], 3, 1);
    f = n.leaky(&f, 0.2);

    // Style codes: 1×(16·512), viewed as 1×16×512.
    let flat = n.b.op("Flatten", &[&f], &[attr::int("axis", 1)]);
    let codes = n.linear(&flat, uc[7] * 16, NUM_LATENT * STYLE_DIM, 1.0);
    let codes = n.reshape(&codes, &[1, NUM_LATENT as i64, STYLE_DIM as i64]);
    let styles: Vec<String> = (0..NUM_LATENT)
        .map(|i| {
            let idx = n.b.init("latent_index", &Tensor::i64_scalar(i as i64));
            n.b.op("Gather", &[&codes, &idx], &[attr::int("axis", 1)])
        })
        .collect();

    // U-Net up path 4 → 512 with an SFT (scale, shift) pair per level from 8 up.
    let mut conditions = vec![];
    for i in (0..7).rev() {
        f = n.bin("Add", &f, &skips[i]);
        f = resblock(&mut n, &f, uc[i + 1], uc[i], 2.0);
        let half = dc[i] / 2;
        let mut pair = vec![];
        for _ in 0..2 {
            let h = n.conv_same(&f, uc[i], uc[i], 3, 1);
            let h = n.leaky(&h, 0.2);
            pair.push(n.conv(&h, uc[i], half, 3, 1, 1, 1, 0.5));
        }
        conditions.push(pair);
    }

    // StyleGAN2 decoder with SFT on the second half of the channels.
    let const_in = n.rand_init("const_input", &[1, dc[7], 4, 4], 1.0);
    let mut out = styleconv(&mut n, &const_in, &styles[0], dc[7], dc[7]);
    let mut rgb = modconv(&mut n, &out, &styles[1], dc[7], 3, 1, false);
    let mut latent = 1;
    for (level, i) in (0..7).rev().enumerate() {
        let up = n.upsample(&out, 2.0, "linear");
        out = styleconv(&mut n, &up, &styles[latent], dc[i + 1], dc[i]);
        let half = dc[i] / 2;
        let parts = n.b.op_n("Split", &[&out], 2, &[attr::int("axis", 1), attr::ints("split", &[half as i64; 2])]);
        let [scale_c, shift_c] = [&conditions[level][0], &conditions[level][1]];
        let sft = n.bin("Mul", &parts[1], scale_c);
        let sft = n.bin("Add", &sft, shift_c);
        out = n.b.op("Concat", &[&parts[0], &sft], &[attr::int("axis", 1)]);
        out = styleconv(&mut n, &out, &styles[latent + 1], dc[i], dc[i]);
        let skip_rgb = n.upsample(&rgb, 2.0, "linear");
        let new_rgb = modconv(&mut n, &out, &styles[latent + 2], dc[i], 3, 1, false);
        rgb = n.bin("Add", &new_rgb, &skip_rgb);
        latent += 2;
    }
    debug_assert_eq!(latent + 1, NUM_LATENT);
    n.b.node("Identity", &[&rgb], &[OUTPUT], &[]);
    n.b.output_f32(OUTPUT, &[1, 3, 512, 512]);
    n.build(OPSET)
}
