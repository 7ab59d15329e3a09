//! `faceperf live` under faults, end to end through the binary with tiny replicas and the real
//! SCRFD detector: a source that ends early, fails mid-run or is a truncated video stops cleanly
//! with the measure CSV and summary written; frames with no face, 20 faces, a face cut by the
//! image border and models whose outputs are NaN or Inf never crash the run and are counted in the
//! summary.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::proto::NodeProto;
use faceperf::onnx::{DataLayout, Model, Tensor};
use faceperf::pipeline::source::{Synthetic, SyntheticConfig};
use support::scrfd;

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `faceperf --json live --csv DIR/run.csv …` on the models in `models` (the replica detector
/// unless `args` name another); returns the output and the CSV path.
fn live(dir: &Path, models: &Path, args: &[&str]) -> (Output, PathBuf) {
    let csv = dir.join("run.csv");
    let o = Command::new(BIN)
        .args(["--json", "live", "--models", &s(models), "--csv", &s(&csv)])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs");
    (o, csv)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run that succeeded: its JSON summary, after checking the CSV has one row per frame.
fn summary(o: &Output, csv: &Path) -> serde_json::Value {
    let e = stderr(o);
    assert!(o.status.success(), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON summary");
    assert_csv_rows(csv, v["frames"].as_u64().unwrap());
    v
}

fn assert_csv_rows(csv: &Path, frames: u64) {
    let text = std::fs::read_to_string(csv).expect("the measure CSV is written");
    assert!(text.starts_with("frame,source_index,"), "{text}");
    assert_eq!(text.lines().count() as u64, frames + 1, "one row per frame");
}

/// The tiny replicas copied into `dir/models` with their stamp (a private copy to poison; the
/// stamp still vouches for the files left as they are, so the detector is known to be a replica).
fn models(dir: &Path) -> PathBuf {
    let m = dir.join("models");
    std::fs::create_dir_all(&m).unwrap();
    for role in Role::ALL {
        std::fs::copy(synth::replica_path(role, Scale::Tiny).unwrap(), m.join(role.default_file())).unwrap();
    }
    let stamp = synth::default_dir(Scale::Tiny).join(synth::STAMP_FILE);
    std::fs::copy(stamp, m.join(synth::STAMP_FILE)).unwrap();
    m
}

/// Rewrites `path` so that graph outputs `which` are multiplied by `value` (NaN or ±Inf).
fn poison(path: &Path, which: &[usize], value: f32) {
    let mut m = Model::load(path).unwrap();
    let g = m.graph_mut();
    // First, not last: the swapper's emap is its last initializer.
    g.initializer.insert(0, Tensor::f32(&[1], vec![value]).to_proto("poison_value"));
    for &i in which {
        let name = g.output[i].name.clone();
        let clean = format!("{name}__clean");
        for n in g.node.iter_mut() {
            for o in n.output.iter_mut().filter(|o| **o == name) {
                *o = clean.clone();
            }
        }
        g.node.push(NodeProto {
            name: format!("poison_{i}"),
            op_type: "Mul".into(),
            input: vec![clean, "poison_value".into()],
            output: vec![name],
            ..Default::default()
        });
    }
    m.save(path, DataLayout::Inline).unwrap();
}

/// Writes `n` frames of the synthetic scene (`faces` faces, `w × h`) as PNGs into `dir`.
fn frames(dir: &Path, n: u64, faces: usize, w: u32, h: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let src = Synthetic::new(SyntheticConfig { width: w, height: h, faces, ..SyntheticConfig::default() }).unwrap();
    for i in 0..n {
        src.render(i).to_rgb_image().save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

// ---- the source ends or fails ----

#[test]
fn an_image_sequence_shorter_than_the_run_ends_it_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let seq = tmp.path().join("seq");
    frames(&seq, 4, 1, 320, 240);
    let (o, csv) = live(tmp.path(), &m, &["--source", &format!("images:{}", s(&seq)), "--frames", "50"]);
    let v = summary(&o, &csv);
    assert_eq!(v["frames"], 4);
    assert!(v["stopped_by"].is_null());
}

#[test]
fn a_source_failing_mid_run_stops_with_the_measurements_written() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let seq = tmp.path().join("seq");
    frames(&seq, 6, 1, 320, 240);
    // Frame 3 is cut short (a camera unplugged mid-frame, a file half-written).
    let bad = seq.join("003.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let (o, csv) = live(tmp.path(), &m, &["--source", &format!("images:{}", s(&seq))]);
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("panicked"), "{e}");
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{e}");
    assert!(
        errors[0].starts_with(&format!("error: the source failed after 3 frames: {}: cannot decode: ", s(&bad))),
        "{e}"
    );
    // The summary of the frames before the failure is still printed, and the CSV written.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON summary");
    assert_eq!(v["frames"], 3);
    assert!(v["stopped_by"].as_str().unwrap().contains("cannot decode"));
    assert_csv_rows(&csv, 3);
}

#[test]
fn a_truncated_video_ends_the_run_cleanly() {
    if !faceperf::pipeline::source::have_tool("ffmpeg") {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let seq = tmp.path().join("seq");
    frames(&seq, 24, 1, 320, 240);
    let video = tmp.path().join("clip.ts");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-framerate", "24", "-i", &format!("{}/%03d.png", s(&seq))])
        .args(["-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts", &s(&video)])
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&video).unwrap();
    std::fs::write(&video, &bytes[..bytes.len() / 2]).unwrap();
    let (o, csv) = live(tmp.path(), &m, &["--source", &format!("video:{}", s(&video)), "--frames", "100"]);
    let v = summary(&o, &csv);
    let n = v["frames"].as_u64().unwrap();
    assert!(n > 0 && n < 24, "a truncated clip gives some but not all frames: {n}");
}

// ---- what is in the frames ----

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_frames_without_a_face_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let seq = tmp.path().join("empty");
    std::fs::create_dir_all(&seq).unwrap();
    let bg = faceperf::util::assets::coffee().unwrap();
    for i in 0..3 {
        bg.save(seq.join(format!("{i:03}.png"))).unwrap();
    }
    let det = s(&scrfd());
    let (o, csv) = live(tmp.path(), &m, &["--detector", &det, "--source", &format!("images:{}", s(&seq))]);
    let v = summary(&o, &csv);
    assert_eq!(v["frames"], 3);
    assert_eq!(v["frames_without_face"], 3);
    assert_eq!(v["most_faces"], 0);
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_twenty_faces_in_a_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    // A 5 × 4 grid of the astronaut's head, 256 px cells.
    let photo = faceperf::util::assets::astronaut().unwrap();
    let (fx, fy, fs) = faceperf::bench::inputs::ASTRONAUT_FACE;
    let head = image::imageops::crop_imm(&photo, fx - fs / 3, fy.saturating_sub(fs / 3), fs * 5 / 3, fs * 5 / 3);
    let head = image::imageops::resize(&head.to_image(), 240, 240, image::imageops::FilterType::Triangle);
    let mut grid = image::RgbImage::from_pixel(1280, 1024, image::Rgb([90, 110, 130]));
    for i in 0..20 {
        image::imageops::replace(&mut grid, &head, (i % 5) * 256 + 8, (i / 5) * 256 + 8);
    }
    let seq = tmp.path().join("crowd");
    std::fs::create_dir_all(&seq).unwrap();
    for i in 0..2 {
        grid.save(seq.join(format!("{i:03}.png"))).unwrap();
    }
    let source = format!("images:{}", s(&seq));
    let det = s(&scrfd());
    // Largest face only: every face is found and counted, one is swapped.
    let (o, csv) = live(tmp.path(), &m, &["--detector", &det, "--source", &source]);
    let v = summary(&o, &csv);
    assert_eq!(v["frames"], 2);
    let most = v["most_faces"].as_u64().unwrap();
    assert!(most >= 18, "the detector finds (nearly) all 20 faces: {most}");
    assert_eq!(csv_column(&csv, "faces"), [1, 1]);
    assert_eq!(csv_column(&csv, "found").iter().max().copied(), Some(most as usize));
    // Many faces: the detector keeps the 8 best (--many-faces' cap) and all 8 are swapped.
    let (o, csv) = live(tmp.path(), &m, &["--detector", &det, "--source", &source, "--many-faces"]);
    let v = summary(&o, &csv);
    assert_eq!(v["most_faces"], 8);
    assert_eq!(csv_column(&csv, "faces"), [8, 8]);
}

/// The integer column `name` of a measure CSV.
fn csv_column(csv: &Path, name: &str) -> Vec<usize> {
    let text = std::fs::read_to_string(csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == name).unwrap();
    text.lines().skip(1).map(|row| row.split(',').nth(col).unwrap().parse().unwrap()).collect()
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_a_face_cut_by_the_image_border() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let seq = tmp.path().join("border");
    std::fs::create_dir_all(&seq).unwrap();
    let photo = faceperf::util::assets::astronaut().unwrap();
    let (fx, fy, fs) = faceperf::bench::inputs::ASTRONAUT_FACE;
    // Crops whose edge runs through the face: left, top, right and bottom (a third of it outside).
    let cut = fs / 3;
    let crops = [
        (fx + cut, 0, 512 - fx - cut, 512),
        (0, fy + cut, 512, 512 - fy - cut),
        (0, 0, fx + fs - cut, 512),
        (0, 0, 512, fy + fs - cut),
    ];
    for (i, (x, y, w, h)) in crops.into_iter().enumerate() {
        image::imageops::crop_imm(&photo, x, y, w, h).to_image().save(seq.join(format!("{i:03}.png"))).unwrap();
    }
    let det = s(&scrfd());
    let source = format!("images:{}", s(&seq));
    let (o, csv) = live(tmp.path(), &m, &["--detector", &det, "--source", &source, "--enhance", "--mouth-mask"]);
    let v = summary(&o, &csv);
    assert_eq!(v["frames"], 4);
    assert!(v["most_faces"].as_u64().unwrap() >= 1, "the cut faces are still found");
}

// ---- models that output NaN or Inf ----

#[test]
fn a_swapper_that_outputs_nan_is_counted_not_pasted() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    poison(&m.join(Role::Swapper.default_file()), &[0], f32::NAN);
    let (o, csv) = live(tmp.path(), &m, &["--frames", "4", "--size", "320x240"]);
    let v = summary(&o, &csv);
    assert_eq!(v["frames"], 4);
    assert_eq!(v["rejected_outputs"], 4, "one NaN swap per frame, each rejected");
}

#[test]
fn an_enhancer_that_outputs_inf_is_counted_not_pasted() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    poison(&m.join(Role::Enhancer.default_file()), &[0], f32::INFINITY);
    let (o, csv) = live(tmp.path(), &m, &["--frames", "3", "--size", "320x240", "--enhance"]);
    let v = summary(&o, &csv);
    assert_eq!(v["frames"], 3);
    assert_eq!(v["rejected_outputs"], 3, "one Inf enhancement per frame, each rejected (and never cached)");
}

#[test]
fn landmarks_that_are_nan_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    poison(&m.join(Role::Landmarks.default_file()), &[0], f32::NAN);
    let (o, csv) = live(tmp.path(), &m, &["--frames", "3", "--size", "320x240", "--mouth-mask"]);
    let v = summary(&o, &csv);
    assert_eq!(v["rejected_outputs"], 3);
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_a_detector_whose_boxes_are_nan_finds_no_face_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let det = tmp.path().join("scrfd_nan.onnx");
    std::fs::copy(scrfd(), &det).unwrap();
    poison(&det, &[3, 4, 5], f32::NAN);
    let seq = tmp.path().join("seq");
    frames(&seq, 3, 1, 320, 240);
    let csv = tmp.path().join("run.csv");
    // The identity photo goes through the same detector: no face there is a clear startup error.
    let o = Command::new(BIN)
        .args(["live", "--models", &s(&m), "--detector", &s(&det), "--csv", &s(&csv)])
        .args(["--source", &format!("images:{}", s(&seq))])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("panicked"), "{e}");
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{e}");
    assert!(errors[0].contains("no face found in the identity photo"), "{e}");
    assert!(errors[0].contains("detections with NaN or infinite values were discarded"), "{e}");
}

#[test]
fn a_recogniser_that_outputs_nan_is_refused_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models(tmp.path());
    let rec = m.join(Role::Recognizer.default_file());
    poison(&rec, &[0], f32::NAN);
    let (o, _) = live(tmp.path(), &m, &["--frames", "2", "--size", "320x240"]);
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("panicked"), "{e}");
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("using ")).collect();
    assert_eq!(lines, [format!("error: {}: the identity embedding has NaN or infinite values", s(&rec))]);
}
