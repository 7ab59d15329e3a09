//! Writes the seed corpus for `cargo fuzz run model_parse`: small graphs with each pattern the rewrites
//! target, and payload-free skeletons of the tiny replicas.
//!
//! `cargo run --example fuzz_seeds -- fuzz/corpus/model_parse`

use anyhow::Result;
use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::graph::attr;
use faceperf::onnx::{GraphBuilder, Tensor};
use faceperf::util::rng::Rng;

fn main() -> Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus/model_parse".into()));
    std::fs::create_dir_all(&dir)?;
    let mut rng = Rng::new(1);
    let mut seeds = Vec::new();
    for role in Role::ALL {
        seeds.push((format!("skeleton_{}", role.name()), synth::synth_skeleton(role, Scale::Tiny)?));
    }
    // Reflect pad → conv, split on channels, scalar gather, shape chain feeding a reshape.
    let mut b = GraphBuilder::new("patterns");
    let x = b.input_f32("x", &[1, 4, 6, 6]);
    let pads = b.init("pads", &Tensor::i64_vec(&[0, 0, 1, 1, 0, 0, 1, 1]));
    let p = b.op("Pad", &[&x, &pads], &[attr::string("mode", "reflect")]);
    let w = b.init("w", &Tensor::f32(&[4, 4, 3, 3], rng.vec(144, -0.5, 0.5)));
    let c = b.op("Conv", &[&p, &w], &[]);
    let parts = b.op_n("Split", &[&c], 2, &[attr::int("axis", 1)]);
    let i0 = b.init("i0", &Tensor::i64_scalar(0));
    let g = b.op("Gather", &[&parts[0], &i0], &[attr::int("axis", 1)]);
    let shp = b.op("Shape", &[&parts[1]], &[]);
    let r = b.op("Reshape", &[&g, &shp], &[]);
    b.node("Add", &[&r, &parts[1]], &["y"], &[]);
    b.output_f32("y", &[1, 2, 6, 6]);
    seeds.push(("patterns".into(), b.build(13)));
    for (name, m) in seeds {
        std::fs::write(dir.join(format!("{name}.onnx")), m.to_bytes())?;
    }
    println!("seeds written to {}", dir.display());
    Ok(())
}
