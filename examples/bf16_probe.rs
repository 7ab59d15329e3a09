//! Does ONNX Runtime's CPU provider run bfloat16 faster than float32 here? The swapper's work is
//! 3×3 convolutions over 1024 channels at 32×32 and its style layers are 512 → 1024 matrix
//! products; this probe builds exactly those ops in float32 and in bfloat16 (weights stored in
//! bf16, the float32 input cast to bf16 and the output back, so only the op's own type differs),
//! loads each on the CPU provider and times them. Not a test: timings depend on the machine.
//!
//! ```text
//! cargo run --release --example bf16_probe [-- --runs N]
//! ```
//!
//! Writes `bench-results/bf16/<UTC stamp>_<host>.json` with the machine, the ORT version and
//! path, the build commit, and per op and type either the median run time or ORT's error.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use faceperf::bench::results::{file_safe, utc_now};
use faceperf::onnx::builder::GraphBuilder;
use faceperf::onnx::graph::attr;
use faceperf::onnx::model::write_atomic;
use faceperf::onnx::proto::tensor_proto::DataType;
use faceperf::onnx::proto::TensorProto;
use faceperf::onnx::{Model, Tensor};
use faceperf::runtime::session::ModelSource;
use faceperf::runtime::{SessionConfig, SessionRunner};
use faceperf::util::rng::Rng;
use serde::Serialize;

#[derive(Serialize)]
struct Probe {
    op: String,
    dtype: String,
    /// Median of the runs (ms), when ORT loaded and ran the model.
    median_ms: Option<f64>,
    runs: usize,
    /// ORT's error, when it did not.
    error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    started_utc: String,
    hardware: faceperf::util::hw::Hardware,
    cpu_flags: Vec<String>,
    ort_version: String,
    ort_library: String,
    git_commit: String,
    load_average: String,
    probes: Vec<Probe>,
    conclusion: String,
}

/// The op `op` with random weights, in `dtype` between Casts from and to float32.
fn model(op: &str, bf16: bool) -> (Model, Vec<usize>) {
    let mut rng = Rng::new(18);
    let mut b = GraphBuilder::new(op);
    let (in_dims, w_dims, out_dims): (Vec<i64>, Vec<usize>, Vec<i64>) = match op {
        "Conv" => (vec![1, 1024, 32, 32], vec![1024, 1024, 3, 3], vec![1, 1024, 32, 32]),
        _ => (vec![1, 512], vec![512, 1024], vec![1, 1024]),
    };
    let x = b.input_f32("x", &in_dims);
    let n: usize = w_dims.iter().product();
    let w = Tensor::f32(&w_dims, rng.vec(n, -0.02, 0.02));
    let w_name = b.init_named("w", &w);
    let cast_to = |b: &mut GraphBuilder, v: &str, to: DataType| b.op("Cast", &[v], &[attr::int("to", to as i64)]);
    let xin = if bf16 { cast_to(&mut b, &x, DataType::Bfloat16) } else { x };
    let y = match op {
        "Conv" => b.op("Conv", &[&xin, &w_name], &[attr::ints("pads", &[1, 1, 1, 1])]),
        _ => b.op("MatMul", &[&xin, &w_name], &[]),
    };
    let y = if bf16 { cast_to(&mut b, &y, DataType::Float) } else { y };
    b.output_f32(&y, &out_dims);
    let mut m = b.build(17);
    if bf16 {
        // The weight stored as bfloat16: the upper 16 bits of each float32.
        let raw: Vec<u8> = w.to_f32s().iter().flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes()).collect();
        let t = m.graph_mut().initializer.iter_mut().find(|t| t.name == w_name).expect("weight");
        *t = TensorProto {
            name: w_name.clone(),
            dims: w_dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Bfloat16 as i32,
            raw_data: raw.into(),
            ..Default::default()
        };
    }
    (m, in_dims.iter().map(|&d| d as usize).collect())
}

fn probe(rt: &faceperf::runtime::Runtime, op: &str, bf16: bool, runs: usize) -> Probe {
    let (m, dims) = model(op, bf16);
    let bytes = m.to_bytes();
    let dtype = if bf16 { "bfloat16" } else { "float32" }.to_string();
    let run = || -> Result<f64> {
        let mut s = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &SessionConfig::cpu(0))?;
        let n: usize = dims.iter().product();
        let feeds = vec![("x".to_string(), Tensor::f32(&dims, Rng::new(1).vec(n, -1.0, 1.0)))];
        s.run(&feeds)?;
        let mut t = Vec::new();
        for _ in 0..runs {
            let c = Instant::now();
            s.run(&feeds)?;
            t.push(c.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    };
    match run() {
        Ok(ms) => Probe { op: op.into(), dtype, median_ms: Some(ms), runs, error: None },
        Err(e) => Probe { op: op.into(), dtype, median_ms: None, runs: 0, error: Some(format!("{e:#}")) },
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs = args.iter().position(|a| a == "--runs").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(15);
    let rt = faceperf::runtime::init(None)?;
    let (started_utc, stamp) = utc_now();
    let mut probes = Vec::new();
    // Interleaved, so machine load affects both types alike.
    for op in ["Conv", "MatMul"] {
        for bf16 in [false, true] {
            let p = probe(rt, op, bf16, runs);
            println!("{op:<7} {:<9} {:?} {}", p.dtype, p.median_ms, p.error.as_deref().unwrap_or(""));
            probes.push(p);
        }
    }
    let faster: Vec<&str> = ["Conv", "MatMul"]
        .into_iter()
        .filter(|op| {
            let t = |d: &str| probes.iter().find(|p| p.op == *op && p.dtype == d).and_then(|p| p.median_ms);
            matches!((t("float32"), t("bfloat16")), (Some(f), Some(b)) if b < f)
        })
        .collect();
    let conclusion = if faster.is_empty() {
        "bf16 is not faster than float32 on this CPU with this ORT for the swapper's ops: not offered".to_string()
    } else {
        format!("bf16 faster than float32 for: {}", faster.join(", "))
    };
    println!("{conclusion}");
    let flags = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| {
            l.split_whitespace()
                .filter(|f| f.contains("bf16") || f.contains("vnni") || f.starts_with("amx"))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let report = Report {
        started_utc,
        hardware: faceperf::util::hw::detect(),
        cpu_flags: flags,
        ort_version: rt.version.clone(),
        ort_library: std::env::var("ORT_DYLIB_PATH").unwrap_or_default(),
        git_commit: faceperf::bench::results::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        load_average: std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string(),
        probes,
        conclusion,
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-results/bf16");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{stamp}_{}.json", file_safe(&report.hardware.hostname)));
    write_atomic(&path, &serde_json::to_vec_pretty(&report)?)?;
    println!("wrote {}", path.display());
    Ok(())
}
