//! Measurement: per frame and per stage start/end timestamps, end-to-end latency, FPS, dropped
//! frames; a CSV with one row per frame and a summary table (median, p90, p99, share per stage).
//!
//! Timestamps are microseconds since the run started. A stage that runs several times in a frame
//! (one swap per face) keeps its first start, its last end and the sum of its durations (`busy`).
//! Detection runs on its own thread, overlapped with the previous frame's swap; its span is recorded
//! on the frame it detected, so the shares of the stages can add up to more than 100 %.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::bench::stats::Summary;

/// A timed part of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The pipeline waiting for the next frame from the capture thread.
    CaptureWait,
    /// The source producing a frame: camera/JPEG/video decode or synthetic rendering (capture thread).
    Decode,
    /// Letterbox, detector run, decoding (detector thread).
    Detect,
    /// Extrapolating the last detections' boxes, on frames without detection.
    Track,
    /// 106-point landmarks (only when a feature needs them).
    Landmarks,
    /// Similarity estimate and warp of the aligned crop(s).
    Align,
    /// Swapper run (and its tensor conversions).
    Swap,
    /// GFPGAN on the 512 crop, or the cached result on frames between enhancer runs.
    Enhance,
    /// Inverse warp and blend into the frame.
    Paste,
    /// Pixel-format conversion for the sink.
    Convert,
    /// Handing the frame to the sink (display, file, or nothing).
    Sink,
}

impl Stage {
    /// Number of stages.
    pub const COUNT: usize = 11;
    /// All stages in pipeline order.
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::CaptureWait,
        Stage::Decode,
        Stage::Detect,
        Stage::Track,
        Stage::Landmarks,
        Stage::Align,
        Stage::Swap,
        Stage::Enhance,
        Stage::Paste,
        Stage::Convert,
        Stage::Sink,
    ];

    /// snake_case name (CSV columns, tables, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Stage::CaptureWait => "capture_wait",
            Stage::Decode => "decode",
            Stage::Detect => "detect",
            Stage::Track => "track",
            Stage::Landmarks => "landmarks",
            Stage::Align => "align",
            Stage::Swap => "swap",
            Stage::Enhance => "enhance",
            Stage::Paste => "paste",
            Stage::Convert => "convert",
            Stage::Sink => "sink",
        }
    }
}

/// When a stage ran within a frame, µs since the run started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub start_us: f64,
    pub end_us: f64,
    /// Sum of the stage's durations in this frame (≤ end − start when it ran several times).
    pub busy_us: f64,
}

/// One face found in a frame (detected or tracked), as the per-frame CSV records it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceObs {
    /// The tracker's id: the same face keeps it from frame to frame.
    pub id: u64,
    /// Box `[x1, y1, x2, y2]` in frame pixels.
    pub bbox: [f32; 4],
    /// Detection score in 0..1 (of the last detection, for a tracked face).
    pub score: f32,
    /// True when the detector found it in this frame; false when the tracker extrapolated it.
    pub detected: bool,
    /// True when it was swapped (not left out by the largest-face or max-faces choice).
    pub swapped: bool,
}

impl FaceObs {
    /// `id x1 y1 x2 y2 score detected|tracked swapped|skipped`: one CSV cell part, no commas.
    pub fn csv_cell(&self) -> String {
        let b = self.bbox;
        format!(
            "{} {:.1} {:.1} {:.1} {:.1} {:.3} {} {}",
            self.id,
            b[0],
            b[1],
            b[2],
            b[3],
            self.score,
            if self.detected { "detected" } else { "tracked" },
            if self.swapped { "swapped" } else { "skipped" }
        )
    }
}

/// Everything measured about one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameRecord {
    /// Position in the output (0, 1, …).
    pub frame: u64,
    /// The source's frame number (gaps are frames dropped before processing).
    pub source_index: u64,
    /// When the source finished producing the frame.
    pub captured_us: f64,
    /// When the sink finished with it.
    pub done_us: f64,
    /// Faces swapped.
    pub faces: usize,
    /// Faces found (detected or tracked) before choosing which to swap.
    pub found: usize,
    /// Model outputs of this frame discarded for NaN or infinite values (a detection with such
    /// candidates, a swap, an enhancement, a set of landmarks): counted, never pasted.
    pub rejected: usize,
    /// True when the detector ran on this frame (false: boxes tracked from earlier detections).
    pub detected: bool,
    /// True when the enhancer ran (false: off, or its cached result was pasted).
    pub enhanced: bool,
    /// Time inside ONNX Runtime across all models for this frame, µs.
    pub infer_us: f64,
    /// Per stage, in [`Stage::ALL`] order; `None` when the stage did not run.
    pub spans: [Option<Span>; Stage::COUNT],
    /// Every face found (detected or tracked), with its box and score.
    pub face_boxes: Vec<FaceObs>,
}

impl FrameRecord {
    /// An empty record.
    pub fn new(frame: u64, source_index: u64) -> FrameRecord {
        FrameRecord {
            frame,
            source_index,
            captured_us: 0.0,
            done_us: 0.0,
            faces: 0,
            found: 0,
            rejected: 0,
            detected: false,
            enhanced: false,
            infer_us: 0.0,
            spans: [None; Stage::COUNT],
            face_boxes: Vec::new(),
        }
    }

    /// End-to-end latency, capture to sink, µs.
    pub fn latency_us(&self) -> f64 {
        self.done_us - self.captured_us
    }

    /// The span of `stage`.
    pub fn span(&self, stage: Stage) -> Option<Span> {
        self.spans[stage as usize]
    }

    /// Busy time of every stage except waiting for capture (the frame's processing cost), µs.
    pub fn work_us(&self) -> f64 {
        Stage::ALL.iter().filter(|&&s| s != Stage::CaptureWait).filter_map(|&s| self.span(s)).map(|s| s.busy_us).sum()
    }
}

/// Turns `Instant`s into µs since the run started and adds spans to records.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    t0: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock { t0: Instant::now() }
    }

    /// µs since the start (0 for instants before it).
    pub fn us(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64() * 1e6
    }

    /// Adds a run of `stage` from `start` to `end` to `rec`.
    pub fn add(&self, rec: &mut FrameRecord, stage: Stage, start: Instant, end: Instant) {
        let (s, e) = (self.us(start), self.us(end));
        let slot = &mut rec.spans[stage as usize];
        *slot = Some(match *slot {
            None => Span { start_us: s, end_us: e, busy_us: e - s },
            Some(p) => Span { start_us: p.start_us.min(s), end_us: p.end_us.max(e), busy_us: p.busy_us + (e - s) },
        });
    }

    /// Times `f` as a run of `stage`.
    pub fn time<T>(&self, rec: &mut FrameRecord, stage: Stage, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add(rec, stage, start, Instant::now());
        out
    }
}

/// CPU time this process has used so far (user + system, all threads), s: Linux `/proc/self/stat`.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, 12 and 13 after the name; in clock
    // ticks, which are 100 per second on every Linux ABI faceperf runs on.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Load averages, where the OS has them.
pub fn load_average() -> Option<[f64; 3]> {
    let l = sysinfo::System::load_average();
    (l.one > 0.0 || l.five > 0.0 || l.fifteen > 0.0).then_some([l.one, l.five, l.fifteen])
}

/// Adds a duration to a record's inference total.
pub fn add_infer(rec: &mut FrameRecord, d: Duration) {
    rec.infer_us += d.as_secs_f64() * 1e6;
}

/// Statistics of one stage over the frames it ran in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSummary {
    pub stage: Stage,
    /// Frames in which it ran.
    pub frames: usize,
    /// Busy time per frame it ran in, ms.
    pub ms: Summary,
    /// Its total busy time over the wall time of the run.
    pub share: f64,
}

/// What adaptive mode chose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdaptiveChoice {
    /// The FPS asked for.
    pub target_fps: f64,
    /// Frames measured before choosing.
    pub probe_frames: usize,
    /// Median per-run times measured, ms: detection, enhancement, and the rest of a frame.
    pub detect_ms: f64,
    pub enhance_ms: f64,
    pub rest_ms: f64,
    /// Intervals chosen (enhancer 0 = off).
    pub detection_interval: usize,
    pub enhancer_interval: usize,
    /// FPS the choice is predicted to reach.
    pub predicted_fps: f64,
    /// False when even the largest intervals miss the target.
    pub reaches_target: bool,
}

/// Where the faces the stages worked on came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FacesFrom {
    /// The detector's detections (tracked between detections).
    #[default]
    Detector,
    /// The synthetic source's own placement (ground truth), because the detector is a replica with
    /// random weights; the detector still ran for its cost.
    Source,
}

/// The result of a measured run: settings, totals, per-stage statistics and the frame records.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureReport {
    /// What produced it: tool and build, hardware, ORT, each role's providers, model files with
    /// sha256, command line (`None` only for reports built outside [`crate::pipeline::run`]).
    pub provenance: Option<crate::provenance::Provenance>,
    /// Where the faces came from (detections, or the source's ground truth with a replica detector).
    pub faces_from: FacesFrom,
    /// The commit the binary was built from ([`crate::BUILD_COMMIT`]).
    pub build_commit: String,
    /// Source description.
    pub source: String,
    /// Detector, recogniser, swapper, enhancer and landmark model files (when used).
    pub models: Vec<(String, String)>,
    /// Settings the run used.
    pub detection_interval: usize,
    pub enhancer_interval: usize,
    pub many_faces: bool,
    /// Frames processed and measured.
    pub frames: usize,
    /// Wall time from the first to the last measured frame's end, s.
    pub wall_s: f64,
    /// Frames per second delivered to the sink.
    pub fps: f64,
    /// Frames the source produced that were dropped (queue full, oldest first).
    pub dropped: u64,
    /// Frames in which no face was found.
    pub frames_without_face: usize,
    /// The most faces found in one frame.
    pub most_faces: usize,
    /// Model outputs discarded for NaN or infinite values (see [`FrameRecord::rejected`]).
    pub rejected_outputs: usize,
    /// Why the run stopped before its end (the source or a stage failed, or the user closed the
    /// preview window); the frames before are measured. `None`: it ran to its end.
    pub stopped_by: Option<String>,
    /// True when `stopped_by` is the user's request (the preview window was closed), not a failure.
    pub stopped_by_user: bool,
    /// End-to-end latency, capture to sink, ms.
    pub latency_ms: Option<Summary>,
    /// Time between consecutive frames reaching the sink, ms.
    pub frame_interval_ms: Option<Summary>,
    pub stages: Vec<StageSummary>,
    /// Total time inside ONNX Runtime, ms.
    pub inference_ms: f64,
    /// Total busy time of all stages except capture wait, ms.
    pub work_ms: f64,
    /// `1 − inference / work`: the share of the pipeline's own work (pre/post-processing, warps,
    /// paste-back, conversion, sink) in its processing time.
    pub non_inference_share: f64,
    /// Adaptive mode's choice, when it ran.
    pub adaptive: Option<AdaptiveChoice>,
    /// CPU time the whole process used during the run (all threads), s; Linux only.
    pub cpu_s: Option<f64>,
    /// 1-, 5- and 15-minute load averages when the run started (a busy machine slows every stage).
    pub load_average: Option<[f64; 3]>,
    /// Notes (e.g. what the source negotiated).
    pub notes: Vec<String>,
    /// GPU readings and per-thread CPU busy time sampled every ~100 ms during the run.
    pub monitor: Option<crate::runtime::gpu_monitor::MonitorReport>,
    /// What limits the FPS, from this run's numbers ([`super::bottleneck`]).
    pub verdict: Option<super::bottleneck::Verdict>,
    /// One record per measured frame.
    #[serde(skip)]
    pub records: Vec<FrameRecord>,
}

impl MeasureReport {
    /// Builds the summary from frame records.
    pub fn from_records(records: Vec<FrameRecord>, dropped: u64) -> MeasureReport {
        let frames = records.len();
        let first = records.iter().map(|r| r.captured_us).fold(f64::INFINITY, f64::min);
        let last = records.iter().map(|r| r.done_us).fold(0.0, f64::max);
        let wall_us = if frames > 0 { (last - first).max(1.0) } else { 0.0 };
        let wall_s = wall_us / 1e6;
        // FPS over the intervals between sink ends (n frames give n − 1 intervals).
        let fps = if frames > 1 {
            let start = records.first().map(|r| r.done_us).unwrap_or(0.0);
            (frames - 1) as f64 / ((last - start).max(1.0) / 1e6)
        } else if frames == 1 {
            1.0 / wall_s
        } else {
            0.0
        };
        let ms = |v: Vec<f64>| Summary::of(&v.into_iter().map(|x| x / 1000.0).collect::<Vec<_>>());
        let latency_ms = ms(records.iter().map(FrameRecord::latency_us).collect());
        let frame_interval_ms = ms(records.windows(2).map(|w| w[1].done_us - w[0].done_us).collect());
        let stages = Stage::ALL
            .iter()
            .filter_map(|&stage| {
                let busy: Vec<f64> = records.iter().filter_map(|r| r.span(stage)).map(|s| s.busy_us).collect();
                let total: f64 = busy.iter().sum();
                let n = busy.len();
                ms(busy).map(|s| StageSummary {
                    stage,
                    frames: n,
                    ms: s,
                    share: if wall_us > 0.0 { total / wall_us } else { 0.0 },
                })
            })
            .collect();
        let inference_ms = records.iter().map(|r| r.infer_us).sum::<f64>() / 1000.0;
        let frames_without_face = records.iter().filter(|r| r.found == 0).count();
        let most_faces = records.iter().map(|r| r.found).max().unwrap_or(0);
        let rejected_outputs = records.iter().map(|r| r.rejected).sum();
        let work_ms = records.iter().map(FrameRecord::work_us).sum::<f64>() / 1000.0;
        MeasureReport {
            provenance: None,
            faces_from: FacesFrom::Detector,
            build_commit: crate::BUILD_COMMIT.into(),
            source: String::new(),
            models: vec![],
            detection_interval: 1,
            enhancer_interval: 0,
            many_faces: false,
            frames,
            wall_s,
            fps,
            dropped,
            frames_without_face,
            most_faces,
            rejected_outputs,
            stopped_by: None,
            stopped_by_user: false,
            latency_ms,
            frame_interval_ms,
            stages,
            inference_ms,
            work_ms,
            non_inference_share: if work_ms > 0.0 { (1.0 - inference_ms / work_ms).max(0.0) } else { 0.0 },
            adaptive: None,
            cpu_s: None,
            load_average: None,
            notes: vec![],
            monitor: None,
            verdict: None,
            records,
        }
    }

    /// Per-stage statistics as (stage name, ms summary): what `bench` records.
    pub fn stage_summaries(&self) -> Vec<(String, Summary)> {
        self.stages.iter().map(|s| (s.stage.name().to_string(), s.ms.clone())).collect()
    }

    /// The summary as a text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "source:   {}", self.source);
        for (role, path) in &self.models {
            let _ = writeln!(out, "{role:<9} {path}");
        }
        let enh =
            if self.enhancer_interval == 0 { "off".to_string() } else { format!("every {}", self.enhancer_interval) };
        let _ = writeln!(
            out,
            "settings: detection every {} frame(s), enhancer {enh}, {}",
            self.detection_interval,
            if self.many_faces { "many faces" } else { "largest face" }
        );
        if let Some(a) = &self.adaptive {
            let _ = writeln!(
                out,
                "adaptive: target {:.1} FPS → detection every {}, enhancer {} (predicted {:.1} FPS{}; measured detect {:.1} ms, enhance {:.1} ms, rest {:.1} ms over {} frames)",
                a.target_fps,
                a.detection_interval,
                if a.enhancer_interval == 0 { "off".to_string() } else { format!("every {}", a.enhancer_interval) },
                a.predicted_fps,
                if a.reaches_target { "" } else { ", target out of reach" },
                a.detect_ms,
                a.enhance_ms,
                a.rest_ms,
                a.probe_frames
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note:     {n}");
        }
        let _ = writeln!(
            out,
            "\n{} frames in {:.2} s: {:.1} FPS, {} dropped",
            self.frames, self.wall_s, self.fps, self.dropped
        );
        let _ = writeln!(
            out,
            "faces ({}): {} frame(s) without a face, at most {} in a frame; {} model output(s) with NaN/Inf discarded",
            match self.faces_from {
                FacesFrom::Detector => "detected",
                FacesFrom::Source => "placed by the source; the replica detector ran for its cost",
            },
            self.frames_without_face,
            self.most_faces,
            self.rejected_outputs
        );
        if let Some(why) = &self.stopped_by {
            let _ = writeln!(out, "stopped early: {why}");
        }
        if let Some(cpu) = self.cpu_s {
            let load = self.load_average.map(|l| format!(", load average {:.1} at start", l[0])).unwrap_or_default();
            let _ =
                writeln!(out, "CPU time {cpu:.2} s ({:.2} cores busy on average{load})", cpu / self.wall_s.max(1e-9));
        }
        if let Some(l) = &self.latency_ms {
            let _ = writeln!(
                out,
                "latency capture→sink: median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
                l.median, l.p90, l.p99
            );
        }
        let _ = writeln!(
            out,
            "inference {:.1} % of processing time; non-inference {:.2} %\n",
            100.0 * (1.0 - self.non_inference_share),
            100.0 * self.non_inference_share
        );
        let _ = writeln!(
            out,
            "{:<13} {:>7} {:>10} {:>10} {:>10} {:>8}",
            "stage", "frames", "median ms", "p90 ms", "p99 ms", "share"
        );
        for s in &self.stages {
            let _ = writeln!(
                out,
                "{:<13} {:>7} {:>10.3} {:>10.3} {:>10.3} {:>7.1}%",
                s.stage.name(),
                s.frames,
                s.ms.median,
                s.ms.p90,
                s.ms.p99,
                100.0 * s.share
            );
        }
        self.monitor_lines(&mut out);
        if let Some(v) = &self.verdict {
            let _ = writeln!(out, "\n{}", v.text);
        }
        out
    }

    /// The monitor's summary: GPU readings (or why there are none) and the busiest threads.
    fn monitor_lines(&self, out: &mut String) {
        let Some(m) = &self.monitor else { return };
        let _ = writeln!(out);
        match (&m.gpu_device, m.gpu_util_median()) {
            (Some(dev), Some(u)) => {
                let mem = m.gpu.iter().map(|g| g.mem_used_mib).fold(0.0, f64::max);
                let power = m.gpu.iter().map(|g| g.power_w).filter(|p| p.is_finite()).fold(0.0, f64::max);
                let _ = writeln!(
                    out,
                    "gpu:      {dev}: utilisation median {:.0} % over {} samples, memory up to {mem:.0} MiB, power up to {power:.0} W",
                    100.0 * u,
                    m.gpu.len()
                );
            }
            _ => {
                let _ = writeln!(out, "gpu:      {}", m.gpu_note.as_deref().unwrap_or("no GPU samples"));
            }
        }
        for t in m.threads.iter().take(4) {
            let _ = writeln!(out, "thread:   {:<16} {:>5.1} % busy ({:.2} s CPU)", t.name, 100.0 * t.busy, t.cpu_s);
        }
    }

    /// One CSV row per frame: frame facts, then start, end and busy µs of every stage (empty when it
    /// did not run), then `face_boxes`: every face found, `;`-separated, each as
    /// [`FaceObs::csv_cell`] (`id x1 y1 x2 y2 score detected|tracked swapped|skipped`).
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "frame,source_index,captured_us,done_us,latency_us,faces,found,rejected,detected,enhanced,infer_us",
        );
        for s in Stage::ALL {
            let n = s.name();
            let _ = write!(out, ",{n}_start_us,{n}_end_us,{n}_busy_us");
        }
        out.push_str(",face_boxes\n");
        for r in &self.records {
            let _ = write!(
                out,
                "{},{},{:.1},{:.1},{:.1},{},{},{},{},{},{:.1}",
                r.frame,
                r.source_index,
                r.captured_us,
                r.done_us,
                r.latency_us(),
                r.faces,
                r.found,
                r.rejected,
                r.detected as u8,
                r.enhanced as u8,
                r.infer_us
            );
            for sp in &r.spans {
                match sp {
                    Some(s) => {
                        let _ = write!(out, ",{:.1},{:.1},{:.1}", s.start_us, s.end_us, s.busy_us);
                    }
                    None => out.push_str(",,,"),
                }
            }
            let faces: Vec<String> = r.face_boxes.iter().map(FaceObs::csv_cell).collect();
            let _ = writeln!(out, ",{}", faces.join(";"));
        }
        out
    }

    /// Writes [`MeasureReport::csv`] to `path`.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        crate::onnx::model::write_atomic(path, self.csv().as_bytes())
    }
}
