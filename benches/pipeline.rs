//! Pipeline kernels on one core: paste-back of one face into a 1920×1080 frame (goal ≤ 1 ms), plus
//! the alignment warps and the detector letterbox that run beside it on every frame, the synthetic
//! source's render, and the window preview's conversion to 0RGB with its downscale
//! (`cargo bench --bench pipeline -- preview`).
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: on a shared
//! machine wall time counts the time other processes held the core, CPU time is what one core spends.
//! `cargo bench --bench pipeline`; results are recorded in `bench-results/kernels/`.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faceperf::pipeline::align::{arcface_template, umeyama, warp_affine, Affine};
use faceperf::pipeline::detect::{letterbox_nchw, letterbox_pixels, Letterbox};
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::pipeline::paste::{paste_back, PasteMask};
use faceperf::pipeline::preview::{PreviewBuffer, MAX_SIZE};
use faceperf::pipeline::source::{Synthetic, SyntheticConfig};
use faceperf::util::rng::Rng;

/// CPU time of the calling thread, ns.
#[cfg(unix)]
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Wall time since the first call, ns (no thread CPU clock here).
#[cfg(not(unix))]
fn thread_cpu_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

/// Criterion measurement: thread CPU time.
struct ThreadCpu;

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns (cpu)")
        } else if typical < 1e6 {
            (1e3, "µs (cpu)")
        } else {
            (1e6, "ms (cpu)")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, _t: &Throughput, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v = 1e9 / *v);
        "runs/s (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn noise(w: u32, h: u32, seed: u64) -> Frame {
    let mut rng = Rng::new(seed);
    let data = (0..w * h * 3).map(|_| (rng.next_u64() & 0xff) as u8).collect();
    Frame::from_raw(w, h, PixelFormat::Rgb, data).unwrap()
}

/// A face as a webcam at arm's length sees it in 1080p: eyes ~105 px apart (3× the 128 template),
/// tilted 10°, centred.
fn face_alignment(side: u32) -> Affine {
    let template = arcface_template(side);
    let s = 3.0 * 128.0 / side as f32;
    let (sin, cos) = 10f32.to_radians().sin_cos();
    let crop_to_frame = Affine([s * cos, -s * sin, 960.0 - 64.0 * 3.0, s * sin, s * cos, 540.0 - 64.0 * 3.0]);
    let kps: Vec<[f32; 2]> = template.iter().map(|&p| crop_to_frame.apply(p)).collect();
    umeyama(&kps, &template).unwrap()
}

fn kernels(c: &mut Criterion<ThreadCpu>) {
    let frame = noise(1920, 1080, 1);
    for side in [128u32, 512] {
        let m = face_alignment(side);
        let face = noise(side, side, 2);
        let mask = PasteMask::for_side(side);
        let mut work = frame.clone();
        let rect = paste_back(&mut work, &face, &m, &mask).unwrap();
        eprintln!("paste_back {side}: face box {}×{} px", rect.x1 - rect.x0, rect.y1 - rect.y0);
        c.bench_function(&format!("paste_back_1080p_one_face_{side}"), |b| {
            b.iter(|| paste_back(black_box(&mut work), black_box(&face), &m, &mask))
        });
        c.bench_function(&format!("warp_affine_1080p_to_{side}"), |b| {
            b.iter(|| warp_affine(black_box(&frame), &m, side).unwrap())
        });
    }
    let lb = Letterbox::fit(1920, 1080, 640, 640);
    c.bench_function("letterbox_1080p_to_640", |b| b.iter(|| letterbox_nchw(black_box(&frame), &lb, 127.5, 128.0)));
    // What a fused-I/O detector takes instead: 8-bit NHWC pixels.
    c.bench_function("letterbox_pixels_1080p_to_640", |b| {
        b.iter(|| letterbox_pixels(black_box(&frame), &lb, PixelFormat::Bgr))
    });
    // The synthetic source's own cost per frame (the `decode` stage of a synthetic run).
    for faces in [1usize, 4] {
        let src = Synthetic::new(SyntheticConfig { width: 1920, height: 1080, faces, ..SyntheticConfig::default() })
            .expect("synthetic source");
        let mut i = 0u64;
        c.bench_function(&format!("synthetic_render_1080p_{faces}_faces"), |b| {
            b.iter(|| {
                i += 1;
                src.render(black_box(i))
            })
        });
    }
}

/// The preview sink's own work per frame (the window system's copy comes on top).
fn preview(c: &mut Criterion<ThreadCpu>) {
    for (w, h, format) in
        [(1920, 1080, PixelFormat::Rgb), (1920, 1080, PixelFormat::Bgr), (1280, 720, PixelFormat::Rgb)]
    {
        let mut frame = noise(w, h, 3);
        frame.convert(format);
        let mut view = PreviewBuffer::new(w, h, MAX_SIZE);
        let (pw, ph) = view.size();
        let name = format!("preview_{w}x{h}_{format:?}_to_{pw}x{ph}").to_lowercase();
        c.bench_function(&name, |b| b.iter(|| view.render(black_box(&frame)).len()));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = kernels, preview
}
criterion_main!(benches);
