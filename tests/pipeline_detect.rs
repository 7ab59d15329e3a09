//! SCRFD decoding with the real scrfd_500m_bnkps detector on real photos, in both output forms
//! (3-D with a batch axis, and det_10g's 2-D without).

use std::collections::HashMap;
use std::path::PathBuf;

use faceperf::onnx::Tensor;
use faceperf::pipeline::detect::{decode, letterbox_nchw, scale_back, DetectParams, Detector, Face, Letterbox};
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::pipeline::net::{Feed, Net};
use faceperf::runtime::{self, SessionConfig};
use faceperf::util::assets::shared_file;

/// Where the face of `astronaut.png` is, read off a 4× crop with the detections drawn on it
/// (`FACEPERF_DEBUG_DIR=/tmp/x cargo test --test pipeline_detect` writes it): the box from the hairline
/// to the chin, the points on the pupils, the nose tip and the mouth corners. The library records it
/// as the built-in photo's face (the synthetic source's ground truth); checked here against the real
/// weights.
const BOX: [f32; 4] = faceperf::util::assets::ASTRONAUT_FACE_BOX;
const KPS: [[f32; 2]; 5] = faceperf::util::assets::ASTRONAUT_FACE_KPS;

fn model_path() -> PathBuf {
    shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap()
}

fn detector() -> Detector {
    let rt = runtime::init(None).unwrap();
    Detector::load(rt, &model_path(), &SessionConfig::cpu(1), false, None).unwrap()
}

fn photo(name: &str) -> Frame {
    Frame::from_rgb_image(match name {
        "astronaut.png" => faceperf::util::assets::astronaut().unwrap(),
        "coffee.png" => faceperf::util::assets::coffee().unwrap(),
        _ => panic!("no built-in photo {name}"),
    })
}

fn assert_face_at(f: &Face, dx: f32, dy: f32) {
    for (got, want) in f.bbox.iter().zip([BOX[0] + dx, BOX[1] + dy, BOX[2] + dx, BOX[3] + dy]) {
        assert!((got - want).abs() <= 6.0, "box {:?} vs {BOX:?} shifted by ({dx}, {dy})", f.bbox);
    }
    for (got, want) in f.kps.iter().zip(KPS) {
        let d = ((got[0] - want[0] - dx).powi(2) + (got[1] - want[1] - dy).powi(2)).sqrt();
        assert!(d <= 4.0, "keypoint {got:?} is {d:.1} px from {want:?} shifted by ({dx}, {dy})");
    }
    // The geometry a face must have: eyes above the nose above the mouth, left left of right.
    let [le, re, nose, lm, rm] = f.kps;
    assert!(le[0] < nose[0] && nose[0] < re[0] && lm[0] < rm[0]);
    assert!(le[1] < nose[1] && re[1] < nose[1] && nose[1] < lm[1] && nose[1] < rm[1]);
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_astronaut_has_one_face_on_eyes_nose_and_mouth() {
    let mut det = detector();
    let img = photo("astronaut.png");
    let faces = det.detect(&img).unwrap().faces;
    if let Ok(dir) = std::env::var("FACEPERF_DEBUG_DIR") {
        let mut rgb = img.to_rgb_image();
        for f in &faces {
            mark(&mut rgb, f);
        }
        let crop = image::imageops::crop_imm(&rgb, 170, 50, 110, 140).to_image();
        image::imageops::resize(&crop, 440, 560, image::imageops::FilterType::Nearest)
            .save(format!("{dir}/astronaut_face_crop.png"))
            .unwrap();
    }
    assert_eq!(faces.len(), 1, "{faces:?}");
    assert!(faces[0].score > 0.6, "{faces:?}");
    assert_face_at(&faces[0], 0.0, 0.0);
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_coffee_has_no_face() {
    let mut det = detector();
    let faces = det.detect(&photo("coffee.png")).unwrap().faces;
    assert!(faces.is_empty(), "{faces:?}");
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_letterbox_scales_back_in_a_wide_bgr_frame() {
    // The photo pasted at (700, 150) into a 1280×720 grey BGR frame: a wide frame is letterboxed with
    // padding at the bottom, and the faces must come back in frame pixels.
    let src = photo("astronaut.png");
    let mut frame = Frame::from_raw(1280, 720, PixelFormat::Rgb, vec![90; 1280 * 720 * 3]).unwrap();
    for y in 0..512usize {
        let d = ((150 + y) * 1280 + 700) * 3;
        frame.data[d..d + 512 * 3].copy_from_slice(&src.data[y * 512 * 3..(y + 1) * 512 * 3]);
    }
    frame.convert(PixelFormat::Bgr);
    let faces = detector().detect(&frame).unwrap().faces;
    assert_eq!(faces.len(), 1, "{faces:?}");
    assert_face_at(&faces[0], 700.0, 150.0);
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_decoder_reads_det_10g_two_dimensional_outputs() {
    // The real outputs are 1×N×k; det_10g's are N×k. Dropping the batch axis must decode the same faces.
    let rt = runtime::init(None).unwrap();
    let mut net = Net::load(rt, &model_path(), &SessionConfig::cpu(1), false, &HashMap::new()).unwrap();
    let img = photo("astronaut.png");
    let lb = Letterbox::fit(img.width, img.height, 640, 640);
    let input = letterbox_nchw(&img, &lb, 127.5, 128.0);
    let (outputs, _) = net.run(vec![Feed::F32(vec![1, 3, 640, 640], input)]).unwrap();
    assert!(outputs.iter().all(|t| t.dims.len() == 3 && t.dims[0] == 1));
    let squeezed: Vec<Tensor> =
        outputs.iter().map(|t| Tensor { dims: t.dims[1..].to_vec(), data: t.data.clone() }).collect();
    let p = DetectParams::default();
    let mut a = decode(&outputs, 640, 640, &p).unwrap();
    let mut b = decode(&squeezed, 640, 640, &p).unwrap();
    assert_eq!(a, b);
    scale_back(&mut a, &lb);
    scale_back(&mut b, &lb);
    assert_eq!(b.len(), 1);
    assert_face_at(&b[0], 0.0, 0.0);

    // Wrong forms are clear errors.
    let e = decode(&squeezed[..6], 640, 640, &p).unwrap_err().to_string();
    assert!(e.contains("9 outputs"), "{e}");
    let e = decode(&squeezed, 608, 640, &p).unwrap_err().to_string();
    assert!(e.contains("feature map"), "{e}");
}

#[test]
fn anchor_centres_boxes_and_keypoints() {
    // A 64×48 input: stride 8 has an 8×6 map with 2 anchors per location. Fire anchor 1 of location
    // (x=3, y=2): centre (24, 16); box distances (1, 2, 3, 4) strides; keypoint i at (+i, −i) strides.
    let (w, h) = (64usize, 48usize);
    let mut outs = Vec::new();
    for k in [1usize, 4, 10] {
        for s in [8usize, 16, 32] {
            let n = w.div_ceil(s) * h.div_ceil(s) * 2;
            outs.push(Tensor::f32(&[n, k], vec![0.0; n * k]));
        }
    }
    let row = (2 * 8 + 3) * 2 + 1;
    let set = |t: &mut Tensor, i: usize, v: f32| {
        if let faceperf::onnx::TensorData::F32(d) = &mut t.data {
            d[i] = v;
        }
    };
    set(&mut outs[0], row, 0.9);
    for (j, v) in [1.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
        set(&mut outs[3], row * 4 + j, v);
    }
    for i in 0..5 {
        set(&mut outs[6], row * 10 + 2 * i, i as f32);
        set(&mut outs[6], row * 10 + 2 * i + 1, -(i as f32));
    }
    // A weaker overlapping candidate at the other anchor is suppressed by NMS.
    set(&mut outs[0], row - 1, 0.8);
    for j in 0..4 {
        set(&mut outs[3], (row - 1) * 4 + j, 2.0);
    }
    let faces = decode(&outs, w, h, &DetectParams::default()).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = faces[0];
    assert_eq!(f.score, 0.9);
    assert_eq!(f.bbox, [24.0 - 8.0, 16.0 - 16.0, 24.0 + 24.0, 16.0 + 32.0]);
    for i in 0..5 {
        assert_eq!(f.kps[i], [24.0 + 8.0 * i as f32, 16.0 - 8.0 * i as f32]);
    }
}

fn mark(img: &mut image::RgbImage, f: &Face) {
    let (w, h) = img.dimensions();
    let mut put = |x: f32, y: f32, c: [u8; 3]| {
        if x >= 0.0 && y >= 0.0 && (x as u32) < w && (y as u32) < h {
            img.put_pixel(x as u32, y as u32, image::Rgb(c));
        }
    };
    let [x1, y1, x2, y2] = f.bbox;
    for t in 0..=200 {
        let t = t as f32 / 200.0;
        put(x1 + (x2 - x1) * t, y1, [0, 255, 0]);
        put(x1 + (x2 - x1) * t, y2, [0, 255, 0]);
        put(x1, y1 + (y2 - y1) * t, [0, 255, 0]);
        put(x2, y1 + (y2 - y1) * t, [0, 255, 0]);
    }
    for k in &f.kps {
        for dx in -2..=2 {
            for dy in -2..=2 {
                put(k[0] + dx as f32, k[1] + dy as f32, [255, 0, 0]);
            }
        }
    }
}

#[test]
fn det_10g_replica_runs_through_the_same_decoder() {
    // The replica has det_10g's form: dynamic H×W, nine numbered 2-D outputs. Its weights are random,
    // so only the shapes are checked: decoding succeeds and faces come back inside the frame.
    let rt = runtime::init(None).unwrap();
    let dir = faceperf::models::synth::ensure_replicas(faceperf::models::Scale::Tiny).unwrap();
    let mut det = Detector::load(rt, &dir.join("det_10g.onnx"), &SessionConfig::cpu(1), false, Some(320)).unwrap();
    assert_eq!((det.input_w, det.input_h), (320, 320));
    det.params.max_faces = 4;
    let faces = det.detect(&photo("coffee.png")).unwrap().faces;
    assert!(faces.len() <= 4);
    for f in faces {
        assert!(f.bbox.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn the_8_bit_letterbox_is_the_float_one_rounded() {
    // Odd sizes, both channel orders, a frame narrower than tall: the fused-I/O letterbox must give
    // the float letterbox's pixels to within rounding, in the requested order, with black padding.
    let mut rng = faceperf::util::rng::Rng::new(9);
    for (w, h, fmt) in [(97u32, 61u32, PixelFormat::Rgb), (50, 83, PixelFormat::Bgr)] {
        let data: Vec<u8> = (0..w * h * 3).map(|_| (rng.next_u64() % 256) as u8).collect();
        let frame = Frame::from_raw(w, h, fmt, data).unwrap();
        let lb = Letterbox::fit(w, h, 64, 48);
        let float = letterbox_nchw(&frame, &lb, 0.0, 1.0);
        for order in [PixelFormat::Rgb, PixelFormat::Bgr] {
            let px = faceperf::pipeline::detect::letterbox_pixels(&frame, &lb, order);
            assert_eq!(px.len(), 64 * 48 * 3);
            let plane = 64 * 48;
            for i in 0..plane {
                for c in 0..3 {
                    // float planes are R, G, B; pixel channels follow `order`.
                    let fc = if order == PixelFormat::Rgb { c } else { 2 - c };
                    let (a, b) = (px[i * 3 + c] as f32, float[fc * plane + i]);
                    assert!((a - b).abs() <= 1.0, "{w}×{h} {fmt:?}→{order:?} pixel {i} channel {c}: {a} vs {b}");
                }
            }
            // Padding (right of / below the scaled frame) is black.
            let (x, y) = (lb.scaled_w.min(63), lb.scaled_h.min(47));
            if lb.scaled_w < 64 {
                assert_eq!(&px[(y / 2 * 64 + x) * 3..(y / 2 * 64 + x) * 3 + 3], &[0, 0, 0]);
            } else {
                assert_eq!(&px[(y * 64 + x / 2) * 3..(y * 64 + x / 2) * 3 + 3], &[0, 0, 0]);
            }
        }
    }
}
