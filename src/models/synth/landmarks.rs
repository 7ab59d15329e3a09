//! 2d106det replica: MobileNet-0.5-style depthwise-separable network, `data` 1×3×192×192 → 1×212
//! (106 points × (x, y) in [-1, 1]).

use super::net::Net;
use super::Scale;
use crate::onnx::graph::attr;
use crate::onnx::Model;

/// Opset of the replica.
pub const OPSET: i64 = 13;
/// Input name (insightface's landmark loader reads the name from the graph).
pub const INPUT: &str = "data";
/// Output name.
pub const OUTPUT: &str = "fc1";

/// (output channels, stride) of each depthwise-separable block, after a stride-2 stem.
fn plan(scale: Scale) -> (usize, Vec<(usize, usize)>, usize) {
    match scale {
        Scale::Tiny => (8, vec![(16, 1), (16, 2), (32, 2), (32, 1), (64, 2), (64, 2)], 8),
        Scale::Full => {
            let mut v = vec![(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)];
            v.extend(std::iter::repeat_n((256, 1), 5));
            v.extend([(512, 2), (512, 1)]);
            (16, v, 64)
        }
    }
}

/// Builds the landmark replica.
pub fn build(scale: Scale, seed: u64, skeleton: bool) -> Model {
    let (stem, blocks, squeeze) = plan(scale);
    let mut n = Net::new("2d106det_replica", seed).skeleton(skeleton);
    let x = n.b.input_f32(INPUT, &[1, 3, 192, 192]);
    let mut x = n.conv_same(&x, 3, stem, 3, 2);
    x = n.relu(&x);
    let mut c = stem;
    for (cout, stride) in blocks {
        x = n.conv(&x, c, c, 3, stride, 1, c, 1.4);
        x = n.relu(&x);
        x = n.conv(&x, c, cout, 1, 1, 0, 1, 1.4);
        x = n.relu(&x);
        c = cout;
    }
    // 192 / 32 = 6: a 1×1 squeeze, flatten the 6×6 map, regress the 212 coordinates.
    x = n.conv(&x, c, squeeze, 1, 1, 0, 1, 1.4);
    x = n.relu(&x);
    let flat = n.b.op("Flatten", &[&x], &[attr::int("axis", 1)]);
    let y = n.linear(&flat, squeeze * 36, 212, 0.5);
    n.b.node("Tanh", &[&y], &[OUTPUT], &[]);
    n.b.output_f32(OUTPUT, &[1, 212]);
    n.build(OPSET)
}
