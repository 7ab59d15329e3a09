//! The scheduler: a capture thread feeding a bounded queue, a detector thread working on the next
//! frame while the pipeline thread swaps the current one, tracking between detections, and the
//! per-frame measurement.
//!
//! Frame `t + 1` is handed to the detector thread by value (the detector owns it while it works, so
//! nothing else can write into it: sharing one buffer between detection and paste-back was a race in
//! the reference), the pipeline thread swaps and pastes into frame `t` meanwhile, then takes frame
//! `t + 1` back with its faces. On frames between detections the tracker extrapolates the boxes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::adaptive;
use super::detect::{Detection, Detector, Face};
use super::frame::Frame;
use super::measure::{add_infer, Clock, FaceObs, FrameRecord, MeasureReport, Stage};
use super::paste::{paste_back, MouthPatch, PasteMask};
use super::queue::{BoundedQueue, WhenFull};
use super::sink::Sink;
use super::source::Source;
use super::stages::{Enhancer, Landmarker, Swapper, MOUTH_106};
use super::track::{Tracked, Tracker};

/// The loaded models after detection, and the source identity's latent.
pub struct Stages {
    pub swapper: Swapper,
    pub enhancer: Option<Enhancer>,
    /// Loaded only when a feature needs landmarks (the mouth mask).
    pub landmarker: Option<Landmarker>,
    pub latent: Vec<f32>,
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Detect every n-th frame (≥ 1); track in between.
    pub detection_interval: usize,
    /// Enhance every k-th frame (0 = off); the cached result is pasted in between.
    pub enhancer_interval: usize,
    /// Swap every face (up to `max_faces`) instead of the largest.
    pub many_faces: bool,
    pub max_faces: usize,
    /// Keep the real mouth (needs the landmark model).
    pub mouth_mask: bool,
    /// Stop after this many measured frames.
    pub frames: Option<u64>,
    /// Stop after this many seconds of measurement.
    pub seconds: Option<f64>,
    /// Capture queue capacity.
    pub queue_depth: usize,
    /// Pace an offline source at its nominal FPS and drop frames like a camera.
    pub realtime: bool,
    /// Adaptive mode: the target FPS and the frames to probe before choosing.
    pub adaptive: Option<(f64, usize)>,
    /// Use the faces the source placed (ground truth) instead of the detector's, which still runs
    /// for its cost: for replica detectors, whose random weights find no real face.
    pub source_faces: bool,
}

/// A frame taken from the capture queue.
struct Captured {
    frame: Frame,
    index: u64,
    decode: (Instant, Instant),
    /// Where the source placed the faces, when it knows.
    truth: Option<Vec<Face>>,
}

/// A frame with its faces, waiting to be swapped.
struct Ready {
    frame: Frame,
    rec: FrameRecord,
    faces: Vec<Tracked>,
}

type DetectReply = (Frame, Result<Detection>, Instant, Instant);

/// What the loop decided, for the report.
#[derive(Default)]
struct Outcome {
    det_every: usize,
    enh_every: usize,
    choice: Option<super::measure::AdaptiveChoice>,
    /// The sink asked to stop (the preview window was closed), and why.
    sink_stop: Option<String>,
}

/// Runs the capture → detect → swap → enhance → paste → sink loop until the source ends or the
/// limits are reached, and returns the measurements.
pub fn run(
    detector: &mut Detector,
    stages: &mut Stages,
    source: Box<dyn Source>,
    sink: &mut dyn Sink,
    settings: &Settings,
) -> Result<MeasureReport> {
    let live = source.is_live();
    let pace = (!live && settings.realtime).then(|| source.nominal_fps()).flatten();
    let policy = if live || settings.realtime { WhenFull::DropOldest } else { WhenFull::Block };
    let queue: BoundedQueue<Captured> = BoundedQueue::new(settings.queue_depth, policy);
    let stop = AtomicBool::new(false);
    let clock = Clock::start();
    let load_average = super::measure::load_average();

    std::thread::scope(|scope| -> Result<MeasureReport> {
        // Named threads, so the monitor's per-thread CPU times say which is which.
        let capture = std::thread::Builder::new()
            .name("fp-capture".into())
            .spawn_scoped(scope, || capture_loop(source, &queue, &stop, pace))?;
        let (to_det, det_in) = mpsc::sync_channel::<Frame>(1);
        let (det_out, from_det) = mpsc::sync_channel::<DetectReply>(1);
        let detect = std::thread::Builder::new().name("fp-detect".into()).spawn_scoped(scope, move || {
            for frame in det_in {
                let t0 = Instant::now();
                let r = detector.detect(&frame);
                if det_out.send((frame, r, t0, Instant::now())).is_err() {
                    break;
                }
            }
        })?;
        let mut report = Loop { stages, sink, settings, clock, queue: &queue, to_det, from_det, cpu_start: None }.run();
        stop.store(true, Ordering::SeqCst);
        queue.close();
        let captured = capture.join().map_err(|_| anyhow!("the capture thread panicked"))?;
        detect.join().map_err(|_| anyhow!("the detector thread panicked"))?;
        // A source that fails mid-run (a camera unplugged, a corrupt file) ends the run like the end
        // of the stream: the frames before it are measured, and the report says why it stopped.
        let source_dropped = match captured {
            Ok(n) => n,
            Err(e) => {
                if report.stopped_by.is_none() {
                    report.stopped_by = Some(format!("the source failed after {} frames: {e:#}", report.frames));
                }
                0
            }
        };
        report.dropped = queue.dropped() + source_dropped;
        report.load_average = load_average;
        Ok(report)
    })
}

/// Reads frames from `source` into `queue` until it ends, the queue closes or `stop` is set;
/// returns the frames the source itself dropped.
fn capture_loop(
    mut source: Box<dyn Source>,
    queue: &BoundedQueue<Captured>,
    stop: &AtomicBool,
    pace: Option<f64>,
) -> Result<u64> {
    let start = Instant::now();
    let mut index = 0u64;
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        if let Some(fps) = pace {
            let due = start + Duration::from_secs_f64(index as f64 / fps);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let t0 = Instant::now();
        match source.next_frame() {
            Ok(Some(frame)) => {
                let decoded = Instant::now();
                let truth = source.last_frame_faces();
                if !queue.push(Captured { frame, index, decode: (t0, decoded), truth }) {
                    break Ok(());
                }
                index += 1;
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    queue.close();
    result.map(|()| source.dropped())
}

struct Loop<'a> {
    stages: &'a mut Stages,
    sink: &'a mut dyn Sink,
    settings: &'a Settings,
    clock: Clock,
    queue: &'a BoundedQueue<Captured>,
    to_det: mpsc::SyncSender<Frame>,
    from_det: mpsc::Receiver<DetectReply>,
    /// Process CPU time when the measured phase started.
    cpu_start: Option<f64>,
}

impl Loop<'_> {
    /// Runs until the source ends, a limit is reached or a stage fails; a failure is recorded in
    /// the report's `stopped_by` with the frames before it measured.
    fn run(mut self) -> MeasureReport {
        // One allocation when the length is known: growing by reallocation leaves the old blocks
        // resident in the heap (RSS steps in long runs).
        let expected = self.settings.frames.unwrap_or(0).min(1 << 20) as usize;
        let mut records: Vec<FrameRecord> = Vec::with_capacity(expected);
        let mut out = Outcome::default();
        let failed = self.run_into(&mut records, &mut out).err();
        let finished = self.sink.finish();
        let mut report = MeasureReport::from_records(records, 0);
        report.detection_interval = out.det_every;
        report.enhancer_interval = out.enh_every;
        report.many_faces = self.settings.many_faces;
        report.adaptive = out.choice;
        report.cpu_s = self.cpu_start.zip(super::measure::process_cpu_seconds()).map(|(a, b)| b - a);
        (report.stopped_by, report.stopped_by_user) = match (failed, finished) {
            (Some(e), _) => (Some(format!("stopped after {} frames: {e:#}", report.frames)), false),
            (None, Err(e)) => (Some(format!("the sink failed: {e:#}")), false),
            (None, Ok(())) => {
                let asked = out.sink_stop.take();
                let by_user = asked.is_some();
                (asked, by_user)
            }
        };
        report
    }

    fn run_into(&mut self, records: &mut Vec<FrameRecord>, out: &mut Outcome) -> Result<()> {
        let s = self.settings;
        let enhancer = self.stages.enhancer.is_some() && (s.enhancer_interval > 0 || s.adaptive.is_some());
        // Adaptive mode probes with detection and enhancement on every frame first.
        let (mut det_every, mut enh_every) = match s.adaptive {
            Some(_) => (1, usize::from(enhancer)),
            None => (s.detection_interval.max(1), if enhancer { s.enhancer_interval } else { 0 }),
        };
        let mut probing = s.adaptive.map(|(_, n)| n.max(2));
        out.det_every = det_every;
        out.enh_every = enh_every;
        let mut tracker = Tracker::new();
        let mut current: Option<Ready> = None;
        let mut out_index = 0u64; // frames fetched in this phase
        let mut frame_no = 0u64; // frames processed overall (drives the intervals)
        let mut since_detect = usize::MAX;
        let mut measure_start: Option<Instant> = None;

        loop {
            // The sink's user ended the run (closed the preview window): the frame in flight is
            // dropped, nobody would see it.
            if let Some(why) = self.sink.stop_requested() {
                out.sink_stop = Some(why);
                break;
            }
            let limit_reached = probing.is_none()
                && (s.frames.is_some_and(|n| out_index >= n)
                    || s.seconds.zip(measure_start).is_some_and(|(sec, t)| t.elapsed().as_secs_f64() >= sec));
            let next = if limit_reached {
                None
            } else {
                let w0 = Instant::now();
                self.queue.pop().map(|c| (c, w0, Instant::now()))
            };
            let Some((cap, w0, w1)) = next else {
                if let Some(cur) = current.take() {
                    records.push(self.process(cur, frame_no, enh_every)?);
                }
                break;
            };
            if measure_start.is_none() {
                measure_start = Some(w0);
                self.cpu_start = super::measure::process_cpu_seconds();
            }
            let mut rec = FrameRecord::new(out_index, cap.index);
            out_index += 1;
            self.clock.add(&mut rec, Stage::CaptureWait, w0, w1);
            self.clock.add(&mut rec, Stage::Decode, cap.decode.0, cap.decode.1);
            rec.captured_us = self.clock.us(cap.decode.1);
            let detect_now = tracker.is_empty() || since_detect.saturating_add(1) >= det_every;
            let mut held = None;
            if detect_now {
                self.to_det.send(cap.frame).map_err(|_| anyhow!("the detector thread stopped"))?;
            } else {
                held = Some(cap.frame);
            }
            // Swap the current frame while the detector works on the next.
            if let Some(cur) = current.take() {
                records.push(self.process(cur, frame_no, enh_every)?);
                frame_no += 1;
            }
            let (frame, faces) = if detect_now {
                let (frame, det, t0, t1) = self.from_det.recv().map_err(|_| anyhow!("the detector thread stopped"))?;
                let det = det?;
                rec.rejected += usize::from(det.rejected > 0);
                self.clock.add(&mut rec, Stage::Detect, t0, t1);
                add_infer(&mut rec, det.infer);
                rec.detected = true;
                since_detect = 0;
                let found = match (&cap.truth, s.source_faces) {
                    (Some(truth), true) => truth.as_slice(),
                    _ => det.faces.as_slice(),
                };
                (frame, tracker.update(cap.index, found))
            } else {
                let t0 = Instant::now();
                let faces = tracker.predict(cap.index);
                self.clock.add(&mut rec, Stage::Track, t0, Instant::now());
                since_detect += 1;
                (held.take().expect("held when not detecting"), faces)
            };
            rec.face_boxes = faces
                .iter()
                .map(|f| FaceObs {
                    id: f.id,
                    bbox: f.face.bbox,
                    score: f.face.score,
                    detected: rec.detected,
                    swapped: false,
                })
                .collect();
            current = Some(Ready { frame, rec, faces });

            if let (Some(n), Some((target, _))) = (probing, s.adaptive) {
                if records.len() >= n {
                    let c = adaptive::choose(records, target, enhancer);
                    det_every = c.detection_interval;
                    enh_every = c.enhancer_interval;
                    (out.det_every, out.enh_every) = (det_every, enh_every);
                    out.choice = Some(c);
                    probing = None;
                    records.clear();
                    // The frame in flight belongs to the measured phase.
                    if let Some(cur) = current.as_mut() {
                        cur.rec.frame = 0;
                    }
                    out_index = 1;
                    measure_start = Some(Instant::now());
                    self.cpu_start = super::measure::process_cpu_seconds();
                }
            }
        }
        Ok(())
    }

    /// Swaps, enhances and pastes the faces of one frame and hands it to the sink.
    fn process(&mut self, cur: Ready, frame_no: u64, enh_every: usize) -> Result<FrameRecord> {
        let Ready { mut frame, mut rec, mut faces } = cur;
        let clock = self.clock;
        let st = &mut *self.stages;
        rec.found = faces.len();
        if self.settings.many_faces {
            faces.truncate(self.settings.max_faces.max(1));
        } else if let Some(big) = faces.iter().max_by(|a, b| a.face.area().total_cmp(&b.face.area())).copied() {
            faces = vec![big];
        }
        rec.faces = faces.len();
        for o in &mut rec.face_boxes {
            o.swapped = faces.iter().any(|f| f.id == o.id);
        }

        let mut mouths = Vec::new();
        if self.settings.mouth_mask {
            if let Some(lm) = st.landmarker.as_mut() {
                for f in &faces {
                    let t0 = Instant::now();
                    let (pts, infer) = lm.landmarks(&frame, &f.face)?;
                    let finite = pts.iter().flatten().all(|v| v.is_finite());
                    let patch = finite.then(|| MouthPatch::save(&frame, pts.get(MOUTH_106).unwrap_or(&[]))).flatten();
                    clock.add(&mut rec, Stage::Landmarks, t0, Instant::now());
                    add_infer(&mut rec, infer);
                    rec.rejected += usize::from(!finite);
                    mouths.extend(patch);
                }
            }
        }

        let mask = PasteMask::for_side(st.swapper.side());
        for f in &faces {
            let t0 = Instant::now();
            let sw = st.swapper.swap(&frame, &f.face, &st.latent)?;
            clock.add(&mut rec, Stage::Align, t0, t0 + sw.align);
            clock.add(&mut rec, Stage::Swap, t0 + sw.align, t0 + sw.align + sw.swap);
            add_infer(&mut rec, sw.infer);
            if sw.rejected {
                rec.rejected += 1;
                continue;
            }
            let t1 = Instant::now();
            paste_back(&mut frame, &sw.crop, &sw.m, &mask);
            clock.add(&mut rec, Stage::Paste, t1, Instant::now());
        }

        if let (Some(enh), true) = (st.enhancer.as_mut(), enh_every > 0) {
            let run = frame_no.is_multiple_of(enh_every as u64);
            let mask = PasteMask::for_side(enh.side());
            for f in &faces {
                let t0 = Instant::now();
                let e = enh.enhance(&frame, &f.face, f.id, run)?;
                clock.add(&mut rec, Stage::Enhance, t0, Instant::now());
                add_infer(&mut rec, e.infer);
                rec.enhanced |= e.ran;
                if e.rejected {
                    rec.rejected += 1;
                    continue;
                }
                let t1 = Instant::now();
                paste_back(&mut frame, &e.crop, &e.m, &mask);
                clock.add(&mut rec, Stage::Paste, t1, Instant::now());
            }
            let ids: Vec<u64> = faces.iter().map(|f| f.id).collect();
            enh.retain(&ids);
        }

        for m in &mouths {
            let t0 = Instant::now();
            m.restore(&mut frame);
            clock.add(&mut rec, Stage::Paste, t0, Instant::now());
        }

        if let Some(fmt) = self.sink.format().filter(|&f| f != frame.format) {
            let t0 = Instant::now();
            frame.convert(fmt);
            clock.add(&mut rec, Stage::Convert, t0, Instant::now());
        }
        let t0 = Instant::now();
        self.sink.write(&frame, rec.frame)?;
        let t1 = Instant::now();
        clock.add(&mut rec, Stage::Sink, t0, t1);
        rec.done_us = clock.us(t1);
        Ok(rec)
    }
}
