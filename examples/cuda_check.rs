//! Diagnostic for a CUDA machine: runs a 12-layer 3×3 conv net on CPU, CUDA (plain run), CUDA via
//! IOBinding, and CUDA via IOBinding with CUDA graphs; checks every output against CPU and prints
//! median latencies as JSON. `cargo run --release --example cuda_check`.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use faceperf::onnx::graph::attr;
use faceperf::onnx::{GraphBuilder, Tensor};
use faceperf::runtime::binding::{BindDevice, BoundSession};
use faceperf::runtime::{self, session::ModelSource, EpConfig, SessionConfig, SessionRunner};
use faceperf::util::rng::Rng;

fn model_bytes() -> Vec<u8> {
    let mut rng = Rng::new(5);
    let mut b = GraphBuilder::new("conv12");
    let mut x = b.input_f32("x", &[1, 128, 64, 64]);
    for i in 0..12 {
        let w = b.init(&format!("w{i}"), &Tensor::f32(&[128, 128, 3, 3], rng.vec(128 * 128 * 9, -0.03, 0.03)));
        let c = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 1, 1, 1])]);
        x = b.op("Relu", &[&c], &[]);
    }
    b.node("Identity", &[&x], &["y"], &[]);
    b.output_f32("y", &[1, 128, 64, 64]);
    b.build(13).to_bytes()
}

fn median_ms(mut f: impl FnMut() -> Result<()>, n: usize) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[n / 2])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.to_f32s().iter().zip(b.to_f32s()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn main() -> Result<()> {
    let rt = runtime::init(None)?;
    println!("ort {} from {}; providers {:?}", rt.version, rt.library.display(), rt.providers);
    let bytes = model_bytes();
    let input = vec![("x".to_string(), Tensor::f32(&[1, 128, 64, 64], Rng::new(1).vec(128 * 64 * 64, 0.0, 1.0)))];
    let mut cpu = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(0))?;
    let reference = cpu.run(&input)?;
    let cpu_ms = median_ms(|| cpu.run(&input).map(drop), 10)?;
    let cuda = |graph: bool| SessionConfig {
        providers: vec![EpConfig::Cuda {
            device_id: 0,
            conv_algo_search: "exhaustive".into(),
            tf32: false,
            prefer_nhwc: false,
            cuda_graph: graph,
        }],
        ..Default::default()
    };
    let mut plain = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &cuda(false))?;
    let plain_diff = max_diff(&plain.run(&input)?[0].1, &reference[0].1);
    let plain_ms = median_ms(|| plain.run(&input).map(drop), 50)?;
    let shapes = HashMap::new();
    let (mut bound, _) =
        BoundSession::create(rt, ModelSource::Bytes(&bytes), &cuda(false), BindDevice::Cuda(0), &shapes)?;
    let bound_diff = max_diff(&bound.run(&input)?[0].1, &reference[0].1);
    let bound_ms = median_ms(|| bound.run(&input).map(drop), 50)?;
    let (mut graph, fallback) =
        BoundSession::create(rt, ModelSource::Bytes(&bytes), &cuda(true), BindDevice::Cuda(0), &shapes)?;
    let graph_diff = max_diff(&graph.run(&input)?[0].1, &reference[0].1);
    // A second, different input proves the bound buffers are really updated between replays.
    let input2 = vec![("x".to_string(), Tensor::f32(&[1, 128, 64, 64], Rng::new(2).vec(128 * 64 * 64, 0.0, 1.0)))];
    let reference2 = cpu.run(&input2)?;
    let second_input_diff = serde_json::json!({
        "bound": max_diff(&bound.run(&input2)?[0].1, &reference2[0].1),
        "graph": max_diff(&graph.run(&input2)?[0].1, &reference2[0].1),
    });
    let graph_ms = median_ms(|| graph.run(&input).map(drop), 50)?;
    let report = serde_json::json!({
        "cpu_ms": cpu_ms, "cuda_plain_ms": plain_ms, "cuda_bound_ms": bound_ms, "cuda_graph_ms": graph_ms,
        "max_abs_diff_vs_cpu": {"plain": plain_diff, "bound": bound_diff, "graph": graph_diff},
        "graph_fallback": fallback,
        "second_input_max_abs_diff_vs_cpu": second_input_diff,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
