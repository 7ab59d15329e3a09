//! Criterion benchmarks of faceperf's own CPU kernels: benchmark input preparation (letterbox, face
//! crop, HWC→CHW normalisation), the CPU references of the fused pre/post-processing, the statistics
//! (bootstrap CI of the median), and ONNX model decode/encode/save/load.
//!
//! `cargo bench --bench kernels` (add `-- --quick` for a short run). Model latencies are measured by
//! `faceperf bench`, not here.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use faceperf::bench::inputs::{to_nchw, Photo};
use faceperf::bench::rounds::median_ci;
use faceperf::bench::stats::{bootstrap_median_ci, Summary, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use faceperf::models::synth::{synth_model, DEFAULT_SEED};
use faceperf::models::{Role, Scale};
use faceperf::onnx::model::DataLayout;
use faceperf::onnx::{Model, Tensor};
use faceperf::rewrite::fuse_io::{postprocess_reference, preprocess_reference, InputSpec, OutputSpec};
use faceperf::util::rng::Rng;

fn inputs(c: &mut Criterion) {
    let photo = Photo::astronaut().expect("shared media/astronaut.png");
    let mut g = c.benchmark_group("inputs");
    g.throughput(Throughput::Elements(640 * 640));
    g.bench_function("letterbox_640", |b| b.iter(|| black_box(photo.letterbox(640, 640))));
    g.throughput(Throughput::Elements(128 * 128));
    g.bench_function("face_crop_128", |b| b.iter(|| black_box(photo.face_crop(128, 128))));
    for side in [128u32, 640] {
        let img = photo.letterbox(side, side);
        g.throughput(Throughput::Elements(u64::from(side * side)));
        g.bench_with_input(BenchmarkId::new("to_nchw", side), &img, |b, img| {
            b.iter(|| black_box(to_nchw(black_box(img), 127.5, 128.0)))
        });
    }
    g.finish();
}

fn fuse_io_references(c: &mut Criterion) {
    let mut g = c.benchmark_group("fuse_io");
    let input = InputSpec { name: "x".into(), mean: [127.5; 3], std: [128.0; 3], swap_channels: true };
    let output = OutputSpec { name: "y".into(), scale: 255.0, offset: 0.0, swap_channels: true };
    for side in [128usize, 512] {
        let mut rng = Rng::new(7);
        let pixels: Vec<u8> = (0..side * side * 3).map(|_| (rng.next_u64() % 256) as u8).collect();
        g.throughput(Throughput::Elements((side * side) as u64));
        g.bench_with_input(BenchmarkId::new("preprocess", side), &pixels, |b, px| {
            b.iter(|| black_box(preprocess_reference(black_box(px), 1, side, side, &input)))
        });
        let t = Tensor::f32(&[1, 3, side, side], rng.vec(3 * side * side, 0.0, 1.0));
        g.bench_with_input(BenchmarkId::new("postprocess", side), &t, |b, t| {
            b.iter(|| black_box(postprocess_reference(black_box(t), &output).expect("4-D float")))
        });
    }
    g.finish();
}

fn stats(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    for n in [30usize, 500] {
        let mut rng = Rng::new(3);
        let mut v: Vec<f64> = (0..n).map(|_| 20.0 + f64::from(rng.normal()).abs()).collect();
        g.bench_with_input(BenchmarkId::new("summary", n), &v, |b, v| b.iter(|| black_box(Summary::of(black_box(v)))));
        v.sort_by(f64::total_cmp);
        g.bench_with_input(BenchmarkId::new("bootstrap_median_ci", n), &v, |b, v| {
            b.iter(|| black_box(bootstrap_median_ci(black_box(v), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)))
        });
        // The same samples as 10 rounds: the hierarchical bootstrap `faceperf bench` reports.
        let rounds: Vec<Vec<f64>> = v.chunks(n.div_ceil(10)).map(<[f64]>::to_vec).collect();
        g.bench_with_input(BenchmarkId::new("hierarchical_median_ci_10_rounds", n), &rounds, |b, r| {
            b.iter(|| black_box(median_ci(black_box(r), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)))
        });
    }
    g.finish();
}

fn onnx_io(c: &mut Criterion) {
    let mut g = c.benchmark_group("onnx");
    g.sample_size(20);
    let dir = tempfile::tempdir().expect("temp dir");
    // The full-scale detector replica (det_10g-sized weights) and the tiny swapper (graph-heavy).
    for (role, scale) in [(Role::Detector, Scale::Full), (Role::Swapper, Scale::Tiny)] {
        let model = synth_model(role, scale, DEFAULT_SEED).expect("replica");
        let bytes = model.to_bytes();
        let label = format!("{}_{}", role.name(), scale.name());
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::new("decode", &label), &bytes, |b, bytes| {
            b.iter(|| black_box(Model::from_bytes(black_box(bytes)).expect("valid model")))
        });
        g.bench_function(BenchmarkId::new("encode", &label), |b| b.iter(|| black_box(model.to_bytes())));
        let path = dir.path().join(format!("{label}.onnx"));
        g.bench_function(BenchmarkId::new("save_load", &label), |b| {
            b.iter(|| {
                model.save(&path, DataLayout::Inline).expect("save");
                black_box(Model::load(&path).expect("load"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, inputs, fuse_io_references, stats, onnx_io);
criterion_main!(benches);
