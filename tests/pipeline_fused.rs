//! The pipeline stages on fused-I/O variants (`fuse-io`: 8-bit NHWC BGR pixels in and out, the
//! normalisation inside the model): each stage must give what it gives on the original model with
//! the CPU doing the pre/post-processing, and a live run must load the profile's `_cuda` variants.
//! All on ORT's CPU provider with tiny replicas and the real SCRFD-500M.

use std::path::{Path, PathBuf};

use faceperf::models::{synth::ensure_replicas, Role, Scale};
use faceperf::optimize::{ensure_variant, OptimizeOptions};
use faceperf::pipeline::detect::{Detector, Face};
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::pipeline::net::{Feed, ImageLayout, Net};
use faceperf::pipeline::stages::{Enhancer, Landmarker, Recogniser, Swapper};
use faceperf::pipeline::{self, Config, SourceSpec, SyntheticConfig};
use faceperf::profile::Variant;
use faceperf::rewrite::recipe::Recipe;
use faceperf::runtime::{self, Runtime, SessionConfig};
use faceperf::util::assets::shared_file;

fn scrfd() -> PathBuf {
    shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap()
}

/// The built-in `cuda` recipe without its fp16 pass: only the I/O fusion, so stage outputs can be
/// compared with the originals' exactly (up to rounding ties).
fn fuse_only_recipe() -> Recipe {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rewrites/cuda.toml")).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for block in text.split("\n\n") {
        skipping |= block.contains("name = \"fp16\"");
        if !skipping {
            out.push_str(block);
            out.push_str("\n\n");
        }
        skipping = false;
    }
    let out = out
        .replace("suffix = \"_cuda\"", "suffix = \"_fused\"")
        .replace("target = \"cuda\"", "target = \"fused\"")
        .replace("skip_passes = [\"fp16\"]", "")
        .replace("[models.recognizer.options.fp16]\nblock = [\"BatchNormalization\"]\n", "");
    assert!(!out.contains("name = \"fp16\""), "the fp16 pass is still in:\n{out}");
    Recipe::parse(&out, "test: cuda.toml without fp16").unwrap()
}

fn fused(rt: &Runtime, original: &Path, role: Role, dir: &Path) -> PathBuf {
    let opts = OptimizeOptions { out_dir: Some(dir.to_path_buf()), role: Some(role), ..Default::default() };
    ensure_variant(rt, original, &fuse_only_recipe(), &opts).unwrap().variant
}

fn astronaut() -> Frame {
    let img = faceperf::util::assets::astronaut().unwrap();
    Frame::from_rgb_image(img)
}

/// Largest difference between two crops of the same size, compared in RGB, and the share of
/// bytes that differ at all.
fn crop_diff(a: &Frame, b: &Frame) -> (u8, f64) {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let (mut a, mut b) = (a.clone(), b.clone());
    a.convert(PixelFormat::Rgb);
    b.convert(PixelFormat::Rgb);
    let diffs: Vec<u8> = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y)).collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let share = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
    (max, share)
}

fn one_face(det: &mut Detector, frame: &Frame) -> Face {
    let faces = det.detect(frame).unwrap().faces;
    assert_eq!(faces.len(), 1, "{faces:?}");
    faces[0]
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_every_stage_on_a_fused_variant_matches_the_cpu_pre_and_post_processing() {
    let rt = runtime::init(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let replicas = ensure_replicas(Scale::Tiny).unwrap();
    let cpu = SessionConfig::cpu(1);
    let frame = astronaut();

    // Detector: same single face; boxes and keypoints within a pixel (the 8-bit letterbox rounds
    // where the float one does not).
    let mut det = Detector::load(rt, &scrfd(), &cpu, false, None).unwrap();
    let mut det_fused =
        Detector::load(rt, &fused(rt, &scrfd(), Role::Detector, dir.path()), &cpu, false, None).unwrap();
    assert_eq!(det.layout(), ImageLayout::FloatNchw);
    assert_eq!(det_fused.layout(), ImageLayout::Pixels(PixelFormat::Bgr));
    let face = one_face(&mut det, &frame);
    let face_fused = one_face(&mut det_fused, &frame);
    for (a, b) in face.bbox.iter().zip(&face_fused.bbox) {
        assert!((a - b).abs() < 1.0, "box {:?} vs {:?}", face.bbox, face_fused.bbox);
    }
    for (a, b) in face.kps.iter().flatten().zip(face_fused.kps.iter().flatten()) {
        assert!((a - b).abs() < 1.0, "keypoints {:?} vs {:?}", face.kps, face_fused.kps);
    }

    // Recogniser: the same crop bytes, the same float ops: the same embedding.
    let rec_path = replicas.join(Role::Recognizer.default_file());
    let mut rec = Recogniser::load(rt, &rec_path, &cpu, false).unwrap();
    let mut rec_fused = Recogniser::load(rt, &fused(rt, &rec_path, Role::Recognizer, dir.path()), &cpu, false).unwrap();
    let e = rec.embed(&frame, &face).unwrap();
    let e_fused = rec_fused.embed(&frame, &face).unwrap();
    let cosine: f32 = e.iter().zip(&e_fused).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.99999, "cosine {cosine}");

    // Swapper: 8-bit BGR out; equal to the CPU conversion but for Round's ties (ONNX rounds half
    // to even, the CPU path half away from zero).
    let swap_path = replicas.join(Role::Swapper.default_file());
    let mut swap = Swapper::load(rt, &swap_path, &cpu, false).unwrap();
    let mut swap_fused = Swapper::load(rt, &fused(rt, &swap_path, Role::Swapper, dir.path()), &cpu, false).unwrap();
    assert_eq!(swap.io().input, ImageLayout::FloatNchw);
    assert_eq!(swap_fused.io().input, ImageLayout::Pixels(PixelFormat::Bgr));
    assert_eq!(swap_fused.io().output, ImageLayout::Pixels(PixelFormat::Bgr));
    let latent = swap.latent(&e).unwrap();
    let a = swap.swap(&frame, &face, &latent).unwrap();
    let b = swap_fused.swap(&frame, &face, &latent).unwrap();
    assert_eq!((a.crop.format, b.crop.format), (PixelFormat::Rgb, PixelFormat::Bgr));
    assert_eq!(a.m, b.m);
    let (max, share) = crop_diff(&a.crop, &b.crop);
    assert!(max <= 1 && share < 0.01, "swap crops differ: max {max}, {:.3}% of bytes", share * 100.0);
    assert!(!a.rejected && !b.rejected);

    // Enhancer: the same, on its 512 (tiny: smaller) FFHQ crop.
    let enh_path = replicas.join(Role::Enhancer.default_file());
    let mut enh = Enhancer::load(rt, &enh_path, &cpu, false).unwrap();
    let mut enh_fused = Enhancer::load(rt, &fused(rt, &enh_path, Role::Enhancer, dir.path()), &cpu, false).unwrap();
    let a = enh.enhance(&frame, &face, 0, true).unwrap();
    let b = enh_fused.enhance(&frame, &face, 0, true).unwrap();
    let (max, share) = crop_diff(&a.crop, &b.crop);
    assert!(max <= 1 && share < 0.01, "enhanced crops differ: max {max}, {:.3}% of bytes", share * 100.0);

    // Landmarks: same points.
    let lmk_path = replicas.join(Role::Landmarks.default_file());
    let mut lmk = Landmarker::load(rt, &lmk_path, &cpu, false).unwrap();
    let mut lmk_fused = Landmarker::load(rt, &fused(rt, &lmk_path, Role::Landmarks, dir.path()), &cpu, false).unwrap();
    let (p, _) = lmk.landmarks(&frame, &face).unwrap();
    let (q, _) = lmk_fused.landmarks(&frame, &face).unwrap();
    assert_eq!(p.len(), q.len());
    for (a, b) in p.iter().zip(&q) {
        assert!((a[0] - b[0]).abs() < 0.01 && (a[1] - b[1]).abs() < 0.01, "{a:?} vs {b:?}");
    }
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_a_feed_of_the_wrong_type_is_a_clear_error() {
    let rt = runtime::init(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = fused(rt, &scrfd(), Role::Detector, dir.path());
    let mut net = Net::load(rt, &path, &SessionConfig::cpu(1), false, &Default::default()).unwrap();
    assert!(net.fused.as_ref().is_some_and(|f| f.inputs.len() == 1 && f.inputs[0].swap_channels));
    let e = net.run(vec![Feed::F32(vec![1, 3, 640, 640], vec![0.0; 3 * 640 * 640])]).unwrap_err().to_string();
    assert!(e.contains("Uint8") && e.contains("float values") && e.contains("fused-I/O"), "{e}");
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_a_live_run_loads_the_profiles_cuda_variants_and_swaps_every_frame() {
    let rt = runtime::init(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut profile = pipeline::cpu_profile(1);
    for role in [Role::Detector, Role::Swapper, Role::Enhancer] {
        profile.roles.get_mut(role).variant = Variant::Cuda;
    }
    let mut cfg = Config::new(profile, &ensure_replicas(Scale::Tiny).unwrap());
    cfg.models.detector = scrfd();
    cfg.variant_dir = Some(dir.path().to_path_buf());
    cfg.source = SourceSpec::Synthetic(SyntheticConfig { width: 320, height: 240, faces: 1, ..Default::default() });
    cfg.frames = Some(4);
    cfg.enhancer_interval = 1;
    let report = pipeline::run(rt, &cfg).unwrap();
    assert_eq!(report.stopped_by, None);
    assert_eq!(report.frames, 4);
    assert_eq!(report.rejected_outputs, 0);
    for r in &report.records {
        assert_eq!(r.faces, 1, "frame {}", r.frame);
    }
    for role in ["detector", "swapper", "enhancer"] {
        let (_, file) = report.models.iter().find(|(r, _)| r == role).unwrap();
        assert!(file.ends_with("_cuda.onnx") && file.starts_with(&*dir.path().to_string_lossy()), "{role}: {file}");
        assert!(report.notes.iter().any(|n| n.starts_with(role) && n.contains("cuda variant")), "{:?}", report.notes);
    }
    let (_, rec) = report.models.iter().find(|(r, _)| r == "recognizer").unwrap();
    assert!(rec.ends_with("w600k_r50.onnx"), "the recogniser stays original: {rec}");
}

#[test]
fn graph_replay_check_tells_stale_or_nan_outputs_from_kernel_noise() {
    use faceperf::onnx::Tensor;
    use faceperf::pipeline::net::outputs_disagree;
    let out = |v: Vec<f32>| vec![("y".to_string(), Tensor::f32(&[v.len()], v))];
    let reference = out(vec![0.5, -1.0, 2.0, 0.25]);
    // Two sessions' kernel choices: tiny differences pass.
    assert_eq!(outputs_disagree(&out(vec![0.5001, -1.0, 2.0002, 0.25]), &reference), None);
    // A replay on stale data is far off; NaN where the plain run is finite is named.
    let far = outputs_disagree(&out(vec![0.0, 0.0, 0.0, 0.0]), &reference).unwrap();
    assert!(far.contains("relative L2 error"), "{far}");
    let nan = outputs_disagree(&out(vec![f32::NAN, -1.0, 2.0, 0.25]), &reference).unwrap();
    assert!(nan.contains("1 values non-finite"), "{nan}");
    assert!(outputs_disagree(&out(vec![1.0]), &reference).is_some());
}
