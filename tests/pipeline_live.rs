//! The live pipeline end to end with tiny replicas on the synthetic source (the replica detector
//! runs for its cost; the stages take the faces the source placed), plus its parts: synthetic scene
//! and its ground truth (checked against the real SCRFD when the test assets are there), queue,
//! tracker, adaptive choice, sources and sinks.

mod support;

use faceperf::models::{synth::ensure_replicas, Scale};
use faceperf::pipeline::detect::{Detector, Face};
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::pipeline::measure::{FrameRecord, Span, Stage};
use faceperf::pipeline::queue::{BoundedQueue, WhenFull};
use faceperf::pipeline::sink::{self, SinkSpec};
use faceperf::pipeline::source::{self, SourceSpec, Synthetic, SyntheticConfig};
use faceperf::pipeline::track::Tracker;
use faceperf::pipeline::{self, adaptive, Config};
use faceperf::runtime::{self, SessionConfig};
use support::scrfd;

fn synthetic(w: u32, h: u32, faces: usize) -> SyntheticConfig {
    SyntheticConfig { width: w, height: h, faces, ..SyntheticConfig::default() }
}

fn config(w: u32, h: u32, faces: usize, frames: u64) -> Config {
    let mut cfg = Config::new(pipeline::cpu_profile(1), &ensure_replicas(Scale::Tiny).unwrap());
    cfg.source = SourceSpec::Synthetic(synthetic(w, h, faces));
    cfg.frames = Some(frames);
    cfg.detection_interval = 3;
    cfg.enhancer_interval = 0;
    cfg
}

#[test]
fn the_synthetic_sources_ground_truth_is_where_it_draws_the_face() {
    // A face photo with a coloured marker at each keypoint the source assumes for a box-only photo:
    // wherever the source says a keypoint is, the frame must show that keypoint's marker.
    const COLOURS: [[u8; 3]; 5] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255]];
    let dir = tempfile::tempdir().unwrap();
    let (bx, by, side) = (100u32, 100u32, 200u32);
    let probe = Synthetic::new(SyntheticConfig {
        face_image: Some((faceperf::util::assets::ASTRONAUT_NAME.into(), (bx, by, side))),
        ..synthetic(64, 64, 1)
    });
    assert!(probe.is_err(), "a face photo that is not a file is an error");
    let mut photo = image::RgbImage::from_pixel(400, 400, image::Rgb([128, 128, 128]));
    let template = Synthetic::template_keypoints((bx, by, side));
    for (k, [x, y]) in template.into_iter().enumerate() {
        for dy in -8i32..=8 {
            for dx in -8i32..=8 {
                photo.put_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32, image::Rgb(COLOURS[k]));
            }
        }
    }
    let path = dir.path().join("marked.png");
    photo.save(&path).unwrap();
    let cfg = SyntheticConfig { face_image: Some((path, (bx, by, side))), ..synthetic(640, 360, 2) };
    let src = Synthetic::new(cfg).unwrap();
    for i in [0u64, 17, 60] {
        let frame = src.render(i).to_rgb_image();
        let faces = src.faces(i);
        assert_eq!(faces.len(), 2);
        for (j, f) in faces.iter().enumerate() {
            let (x, y, side) = src.placement(i, j);
            let [x1, y1, x2, y2] = f.bbox;
            assert!(x1 > x && y1 > y && x2 < x + side && y2 < y + side, "face {j} of frame {i} inside its patch");
            assert_eq!(f.score, 1.0);
            for (k, [px, py]) in f.kps.into_iter().enumerate() {
                let got = frame.get_pixel(px.round() as u32, py.round() as u32).0;
                let diff = COLOURS[k].iter().zip(got).map(|(a, b)| (*a as i32 - b as i32).abs()).max().unwrap();
                assert!(diff <= 40, "face {j} keypoint {k} of frame {i}: {got:?}, want {:?}", COLOURS[k]);
            }
        }
    }
    // The built-in photo's faces come from its measured keypoints, moved with the patch.
    let builtin = Synthetic::new(synthetic(640, 360, 1)).unwrap();
    let f = builtin.faces(5)[0];
    let [le, re, nose, lm, rm] = f.kps;
    assert!(le[0] < re[0] && lm[0] < rm[0] && le[1] < nose[1] && nose[1] < lm[1], "{f:?}");
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_synthetic_scene_is_deterministic_and_the_detector_finds_each_face() {
    let rt = runtime::init(None).unwrap();
    let mut det = Detector::load(rt, &scrfd(), &SessionConfig::cpu(1), false, None).unwrap();
    for faces in [1usize, 2] {
        let src = Synthetic::new(synthetic(480, 270, faces)).unwrap();
        let again = Synthetic::new(synthetic(480, 270, faces)).unwrap();
        for i in [0u64, 40, 95] {
            let f = src.render(i);
            assert!(f == again.render(i), "frame {i} differs between two sources");
            if let Ok(dir) = std::env::var("FACEPERF_DEBUG_DIR") {
                f.to_rgb_image().save(format!("{dir}/synthetic_{faces}_{i}.png")).unwrap();
            }
            let found = det.detect(&f).unwrap().faces;
            assert_eq!(found.len(), faces, "{faces} faces, frame {i}: {found:?}");
            for j in 0..faces {
                // Each placed head has one detection whose centre lies in its patch.
                let (x, y, side) = src.placement(i, j);
                let hit = found.iter().filter(|d| {
                    let c = d.centre();
                    c[0] > x && c[0] < x + side && c[1] > y && c[1] < y + side
                });
                assert_eq!(hit.count(), 1, "face {j} of frame {i}");
                // The source's ground truth agrees with the real detector.
                let truth = src.faces(i)[j];
                let best =
                    found.iter().map(|d| faceperf::pipeline::detect::iou(&d.bbox, &truth.bbox)).fold(0.0, f32::max);
                assert!(best > 0.7, "face {j} of frame {i}: IoU {best} with the detection");
            }
        }
        assert!(src.render(0) != src.render(10), "the scene moves");
    }
}

#[test]
fn live_pipeline_end_to_end_with_tiny_replicas() {
    let rt = runtime::init(None).unwrap();
    let cfg = config(320, 240, 1, 7);
    let report = pipeline::run(rt, &cfg).unwrap();
    assert_eq!(report.frames, 7);
    // The replica detector ran for its cost; the faces are the source's, in every frame.
    assert_eq!(report.faces_from, pipeline::FacesFrom::Source);
    assert_eq!(report.frames_without_face, 0);
    assert!(report.notes.iter().any(|n| n.contains("is a replica")), "{:?}", report.notes);
    let prov = report.provenance.as_ref().expect("a live result carries its provenance");
    assert_eq!(prov.models.len(), 3);
    assert!(prov.models.iter().all(|m| m.sha256.len() == 64 && m.replica && m.bytes > 0), "{:?}", prov.models);
    assert_eq!(prov.tool.build_commit, faceperf::BUILD_COMMIT);
    assert!(!prov.ort.version.is_empty() && !prov.hardware.cpu_model.is_empty());
    assert_eq!(prov.sessions.len(), 3);
    assert!(report.fps > 0.0 && report.wall_s > 0.0);
    assert_eq!(report.dropped, 0, "offline sources block instead of dropping");
    for r in &report.records {
        assert_eq!(r.faces, 1, "frame {}", r.frame);
        // Detection every third frame, tracking in between.
        assert_eq!(r.detected, r.frame % 3 == 0, "frame {}", r.frame);
        assert!(r.done_us >= r.captured_us && r.infer_us > 0.0);
        let (find, not) = if r.detected { (Stage::Detect, Stage::Track) } else { (Stage::Track, Stage::Detect) };
        assert!(r.span(not).is_none(), "frame {}", r.frame);
        for s in [Stage::CaptureWait, Stage::Decode, find, Stage::Align, Stage::Swap, Stage::Paste, Stage::Sink] {
            let sp = r.span(s).unwrap_or_else(|| panic!("frame {}: no {} span", r.frame, s.name()));
            assert!(sp.end_us >= sp.start_us && sp.busy_us >= 0.0);
        }
        assert!(r.span(Stage::Enhance).is_none() && r.span(Stage::Landmarks).is_none());
        // Order within a frame: swap before paste before the sink.
        assert!(r.span(Stage::Swap).unwrap().end_us <= r.span(Stage::Paste).unwrap().start_us);
        assert!(r.span(Stage::Paste).unwrap().end_us <= r.span(Stage::Sink).unwrap().start_us);
    }
    let names: Vec<&str> = report.stages.iter().map(|s| s.stage.name()).collect();
    for want in ["capture_wait", "decode", "detect", "track", "align", "swap", "paste", "sink"] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(report.non_inference_share > 0.0 && report.non_inference_share < 1.0);
    let table = report.table();
    assert!(table.contains("median ms") && table.contains("swap") && table.contains("FPS"), "{table}");
    let csv = report.csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0].split(',').count(), 12 + 3 * Stage::COUNT);
    assert!(lines[0].contains("swap_start_us,swap_end_us,swap_busy_us"));
    // Each face's box, score and detected-vs-tracked, in the last column.
    assert!(lines[0].ends_with(",face_boxes"));
    for (r, line) in report.records.iter().zip(&lines[1..]) {
        assert_eq!(r.face_boxes.len(), r.found, "frame {}", r.frame);
        let cell = line.rsplit(',').next().unwrap();
        let f = &r.face_boxes[0];
        assert!(f.bbox[2] > f.bbox[0] && f.bbox[3] > f.bbox[1] && f.score > 0.0 && f.swapped, "{f:?}");
        let words: Vec<&str> = cell.split(' ').collect();
        assert_eq!(words.len(), 8, "{cell}");
        assert_eq!(words[6], if r.detected { "detected" } else { "tracked" }, "frame {}: {cell}", r.frame);
        assert_eq!(words[1], format!("{:.1}", f.bbox[0]), "{cell}");
    }
    // Tracked frames keep the detected face's id.
    assert!(report.records.windows(2).all(|w| w[0].face_boxes[0].id == w[1].face_boxes[0].id));
    assert_eq!(report.stage_summaries().len(), report.stages.len());
}

#[test]
fn the_verdict_of_a_cpu_run_agrees_with_the_stage_table_and_gpu_readings_reach_the_json() {
    use faceperf::pipeline::bottleneck::Thread;
    use faceperf::runtime::gpu_monitor::GpuSample;
    let rt = runtime::init(None).unwrap();
    let mut cfg = config(320, 240, 1, 9);
    // Fixed readings stand in for NVML here: the same code path as on a GPU machine.
    let g = GpuSample { t_ms: 0.0, util_pct: 12.0, mem_used_mib: 900.0, sm_clock_mhz: 1755.0, power_w: 120.0 };
    cfg.gpu = pipeline::GpuChoice::Fixed(g);
    let report = pipeline::run(rt, &cfg).unwrap();
    let v = report.verdict.clone().expect("a verdict");
    // The critical thread is the one with the most busy time; its busy fraction is the sum of its
    // stages' shares in the table, and the critical stage is its largest there.
    let thread_share = |name: &str| -> f64 {
        report.stages.iter().filter(|s| Thread::of(s.stage).map(|t| t.name()) == Some(name)).map(|s| s.share).sum()
    };
    let crit = v.resources.iter().find(|r| r.resource == v.critical_thread).unwrap();
    assert!((crit.busy - thread_share(&v.critical_thread)).abs() < 1e-9);
    let largest = report
        .stages
        .iter()
        .filter(|s| Thread::of(s.stage).map(|t| t.name()) == Some(v.critical_thread.as_str()))
        .max_by(|a, b| a.share.total_cmp(&b.share))
        .unwrap();
    assert_eq!(v.critical_stage, largest.stage.name(), "{}", report.table());
    for t in ["capture thread", "detector thread", "pipeline thread"] {
        let ms = v.resources.iter().find(|r| r.resource == t).unwrap().ms_per_frame.unwrap();
        assert!(ms <= crit.ms_per_frame.unwrap() + 1e-9, "{t} is busier per frame than the critical thread");
    }
    // A CPU-only run (GPU readings fixed at 12 %): a CPU thread or the source limits it, never the GPU.
    assert_ne!(v.busiest, "GPU");
    assert!(v.fps_without_critical >= v.fps);
    assert!(report.table().contains(&v.text));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"]["critical_stage"], v.critical_stage);
    let samples = json["monitor"]["gpu"].as_array().unwrap();
    assert!(!samples.is_empty(), "the monitor samples at least once");
    assert_eq!(samples[0]["util_pct"], 12.0);
    assert_eq!(json["monitor"]["gpu_device"], "fixed readings (no GPU sampled)");
}

#[test]
fn many_faces_enhancer_cache_and_mouth_mask() {
    let rt = runtime::init(None).unwrap();
    let mut cfg = config(400, 200, 2, 5);
    cfg.many_faces = true;
    cfg.enhancer_interval = 2;
    cfg.mouth_mask = true;
    let dir = tempfile::tempdir().unwrap();
    cfg.sink = SinkSpec::Images { dir: dir.path().to_path_buf(), ppm: true };
    let report = pipeline::run(rt, &cfg).unwrap();
    assert_eq!(report.frames, 5);
    for r in &report.records {
        assert_eq!(r.faces, 2, "frame {}", r.frame);
        // The enhancer runs on every second frame; in between its cached crops are pasted.
        assert_eq!(r.enhanced, r.frame % 2 == 0, "frame {}", r.frame);
        assert!(r.span(Stage::Enhance).is_some() && r.span(Stage::Landmarks).is_some());
    }
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 5);
    let first = std::fs::read(dir.path().join("frame_000000.ppm")).unwrap();
    assert!(first.starts_with(b"P6\n400 200\n255\n") && first.len() == 15 + 400 * 200 * 3);
}

fn record(frame: u64, detected: bool, enhanced: bool, detect: f64, enhance: f64, rest: f64, done: f64) -> FrameRecord {
    let mut r = FrameRecord::new(frame, frame);
    let span = |busy: f64| Some(Span { start_us: 0.0, end_us: busy, busy_us: busy });
    r.detected = detected;
    r.enhanced = enhanced;
    r.spans[Stage::Detect as usize] = span(detect);
    r.spans[Stage::Enhance as usize] = span(enhance);
    r.spans[Stage::Swap as usize] = span(rest);
    r.done_us = done;
    r
}

#[test]
fn adaptive_picks_the_smallest_intervals_that_reach_the_target() {
    // detect 30 ms, enhance 60 ms, rest 10 ms; frames observed 100 ms apart (no overlap).
    let recs: Vec<FrameRecord> =
        (0..20).map(|i| record(i, true, true, 30_000.0, 60_000.0, 10_000.0, i as f64 * 100_000.0)).collect();
    let c = adaptive::choose(&recs, 5.0, true);
    assert!((c.detect_ms - 30.0).abs() < 1e-9 && (c.enhance_ms - 60.0).abs() < 1e-9 && (c.rest_ms - 10.0).abs() < 1e-9);
    assert_eq!((c.detection_interval, c.enhancer_interval), (1, 1));
    assert!(c.reaches_target);
    // 20 FPS = 50 ms: 10 + 30/n + 60/k ≤ 50 → smallest n + k is n = 2, k = 3 (10 + 15 + 20 = 45).
    let c = adaptive::choose(&recs, 20.0, true);
    assert_eq!((c.detection_interval, c.enhancer_interval), (2, 3), "{c:?}");
    assert!(c.predicted_fps >= 20.0);
    // Out of reach: the largest intervals, flagged.
    let c = adaptive::choose(&recs, 500.0, true);
    assert!(!c.reaches_target && c.detection_interval == adaptive::MAX_INTERVAL);
    // Without the enhancer, only detection is chosen.
    let c = adaptive::choose(&recs, 20.0, false);
    assert_eq!(c.enhancer_interval, 0);
}

#[test]
fn adaptive_mode_runs_and_reports_its_choice() {
    let rt = runtime::init(None).unwrap();
    let mut cfg = config(320, 240, 1, 4);
    cfg.adaptive_target_fps = Some(1e6);
    cfg.probe_frames = 3;
    let report = pipeline::run(rt, &cfg).unwrap();
    let c = report.adaptive.clone().expect("a choice");
    assert!(!c.reaches_target);
    assert_eq!(report.detection_interval, adaptive::MAX_INTERVAL);
    assert_eq!(report.frames, 4, "probe frames are not part of the measurement");
    assert!(report.table().contains("adaptive: target"));
}

#[test]
fn realtime_pacing_drops_frames_the_pipeline_cannot_take() {
    // A synthetic source paced at 2000 fps outruns any pipeline: the queue keeps the newest frames.
    let rt = runtime::init(None).unwrap();
    let mut cfg = config(160, 120, 1, 4);
    if let SourceSpec::Synthetic(s) = &mut cfg.source {
        s.fps = 2000.0;
    }
    cfg.realtime = true;
    let report = pipeline::run(rt, &cfg).unwrap();
    assert_eq!(report.frames, 4);
    assert!(report.dropped > 0);
    let idx: Vec<u64> = report.records.iter().map(|r| r.source_index).collect();
    assert!(idx.windows(2).all(|w| w[1] > w[0]) && idx[3] > 3, "{idx:?}");
}

#[test]
fn queue_drops_the_oldest_or_blocks() {
    let q = BoundedQueue::new(2, WhenFull::DropOldest);
    for i in 0..5 {
        assert!(q.push(i));
    }
    assert_eq!(q.dropped(), 3);
    assert_eq!((q.pop(), q.pop()), (Some(3), Some(4)));
    q.close();
    assert_eq!(q.pop(), None);
    assert!(!q.push(9));

    let q = std::sync::Arc::new(BoundedQueue::new(1, WhenFull::Block));
    q.push(1);
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.push(2));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(q.len(), 1, "the second push waits for room");
    assert_eq!(q.pop(), Some(1));
    assert!(t.join().unwrap());
    assert_eq!(q.pop(), Some(2));
    assert_eq!(q.dropped(), 0);
}

fn face_at(x: f32, y: f32) -> Face {
    Face { bbox: [x, y, x + 100.0, y + 120.0], score: 0.9, kps: [[x + 30.0, y + 40.0]; 5] }
}

#[test]
fn tracker_keeps_ids_and_extrapolates() {
    let mut t = Tracker::new();
    let a = t.update(0, &[face_at(100.0, 100.0), face_at(400.0, 100.0)]);
    let b = t.update(3, &[face_at(430.0, 100.0), face_at(109.0, 103.0)]);
    assert_eq!(b[0].id, a[1].id);
    assert_eq!(b[1].id, a[0].id);
    // 9 px right and 3 px down over 3 frames: 2 frames later, 6 and 2 more.
    let p = t.predict(5);
    let moved = p.iter().find(|f| f.id == a[0].id).unwrap();
    assert!((moved.face.bbox[0] - 115.0).abs() < 1e-3 && (moved.face.bbox[1] - 105.0).abs() < 1e-3);
    assert!((moved.face.kps[0][0] - 145.0).abs() < 1e-3);
    // A face that appears far away starts a new track.
    let c = t.update(6, &[face_at(800.0, 300.0)]);
    assert!(c[0].id != a[0].id && c[0].id != a[1].id);
}

#[test]
fn sources_and_sinks() {
    assert!(matches!(SourceSpec::parse("camera:2").unwrap(), SourceSpec::Camera(2)));
    assert!(matches!(SourceSpec::parse("images:/x").unwrap(), SourceSpec::Images(_)));
    assert!(SourceSpec::parse("webcam").is_err());
    assert!(SinkSpec::parse("video:").is_err());

    // An image sequence written by the image sink reads back frame for frame, in order.
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink::open(&SinkSpec::Images { dir: dir.path().into(), ppm: false }, 16, 8, 30.0).unwrap();
    for i in 0..3u8 {
        let f = Frame::from_raw(16, 8, PixelFormat::Rgb, vec![i * 40; 16 * 8 * 3]).unwrap();
        sink.write(&f, i as u64).unwrap();
    }
    sink.finish().unwrap();
    let mut src = source::open(&SourceSpec::Images(dir.path().into()), &Default::default()).unwrap();
    for i in 0..3u8 {
        let f = src.next_frame().unwrap().unwrap();
        assert_eq!((f.width, f.height, f.pixel(3, 3)), (16, 8, [i * 40; 3]));
    }
    assert!(src.next_frame().unwrap().is_none());
    let empty = tempfile::tempdir().unwrap();
    let e = source::open(&SourceSpec::Images(empty.path().into()), &Default::default()).err().unwrap().to_string();
    assert!(e.contains("no .png"), "{e}");

    // Without ffmpeg a video is a clear error that names the alternatives; with it, frames written
    // by the video sink read back in order (lossless codec, exact pixels).
    let clip = dir.path().join("clip.mkv");
    if source::have_tool("ffmpeg") && source::have_tool("ffprobe") {
        let mut sink = sink::open(&SinkSpec::Video(clip.clone()), 32, 16, 25.0).unwrap();
        for i in 0..4u8 {
            let f = Frame::from_raw(32, 16, PixelFormat::Rgb, vec![i * 50 + 20; 32 * 16 * 3]).unwrap();
            sink.write(&f, i as u64).unwrap();
        }
        sink.finish().unwrap();
        let mut src = source::open(&SourceSpec::Video(clip.clone()), &Default::default()).unwrap();
        assert!(src.describe().contains("32×16") && src.nominal_fps() == Some(25.0), "{}", src.describe());
        for i in 0..4u8 {
            let f = src.next_frame().unwrap().unwrap();
            let p = f.pixel(5, 5);
            assert!(p.iter().all(|&c| (c as i32 - (i * 50 + 20) as i32).abs() <= 3), "frame {i}: {p:?}");
        }
        assert!(src.next_frame().unwrap().is_none());
    } else {
        std::fs::write(&clip, b"not a video").unwrap();
        let e = source::open(&SourceSpec::Video(clip), &Default::default()).err().unwrap().to_string();
        assert!(e.contains("ffmpeg") && e.contains("images:DIR"), "{e}");
    }
    // A camera that cannot be opened says which other sources exist.
    #[cfg(not(feature = "camera"))]
    {
        let e = source::open(&SourceSpec::Camera(0), &Default::default()).err().unwrap().to_string();
        assert!(e.contains("--features camera") && e.contains("synthetic"), "{e}");
    }
}

#[cfg(feature = "camera")]
#[test]
fn camera_buffers_decode() {
    use faceperf::pipeline::camera::decode;
    use nokhwa::utils::FrameFormat;
    // Mid-grey in YUYV (Y 126, U = V = 128) and NV12, and an RGB buffer passed through.
    let yuyv = [126u8, 128, 126, 128].repeat(4 * 2 / 2);
    let f = decode(&yuyv, 4, 2, FrameFormat::YUYV).unwrap();
    assert!(f.data.iter().all(|&v| (127..=129).contains(&v)), "{:?}", f.data);
    let mut nv12 = vec![126u8; 8];
    nv12.extend([128u8; 4]);
    let f = decode(&nv12, 4, 2, FrameFormat::NV12).unwrap();
    assert!(f.data.iter().all(|&v| (127..=129).contains(&v)));
    let f = decode(&[1, 2, 3, 4, 5, 6], 2, 1, FrameFormat::RAWBGR).unwrap();
    assert_eq!((f.format, f.pixel(1, 0)), (PixelFormat::Bgr, [4, 5, 6]));
    assert!(decode(&[0u8; 3], 4, 2, FrameFormat::YUYV).is_err());
    assert!(decode(b"not a jpeg", 4, 2, FrameFormat::MJPEG).is_err());
}
