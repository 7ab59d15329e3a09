//! The bottleneck verdict at the end of `live --measure`: which resource limits the FPS, which stage
//! is on the critical path, and what the FPS would be without that stage — all from this run's
//! measured stage times (and, when sampled, GPU utilisation and per-thread CPU time).
//!
//! The pipeline runs on three threads: the capture thread (the `decode` stage), the detector thread
//! (`detect`, overlapped with the previous frame's swap) and the pipeline thread (every other stage;
//! `capture_wait` is its idle time waiting for a frame). In steady state a frame leaves every
//! `max(per-frame busy time of each thread)`, so the thread with the most busy time per frame sets the
//! pace; its largest stage is the critical one. Removing that stage shortens its thread's time per
//! frame; the new pace is the maximum again, and the FPS scales by the ratio of the two paces.

use serde::Serialize;

use super::measure::{MeasureReport, Stage};

/// A pipeline thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Thread {
    /// Reads or renders frames (`decode`).
    Capture,
    /// Runs the detector (`detect`).
    Detector,
    /// Tracks, aligns, swaps, enhances, pastes, converts and hands frames to the sink.
    Pipeline,
}

impl Thread {
    /// The thread a stage runs on (`None` for `capture_wait`, the pipeline thread's idle time).
    pub fn of(stage: Stage) -> Option<Thread> {
        match stage {
            Stage::CaptureWait => None,
            Stage::Decode => Some(Thread::Capture),
            Stage::Detect => Some(Thread::Detector),
            _ => Some(Thread::Pipeline),
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Thread::Capture => "capture thread",
            Thread::Detector => "detector thread",
            Thread::Pipeline => "pipeline thread",
        }
    }

    const ALL: [Thread; 3] = [Thread::Capture, Thread::Detector, Thread::Pipeline];
}

/// How busy one resource was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Busy {
    /// `capture thread`, `detector thread`, `pipeline thread`, `GPU` or `source`.
    pub resource: String,
    /// Busy fraction of the run's wall time (0..1).
    pub busy: f64,
    /// Busy time per delivered frame, ms (threads only).
    pub ms_per_frame: Option<f64>,
    /// Where the number comes from: `stage times`, `NVML samples`, `capture wait`.
    pub from: String,
}

/// What limits the FPS of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Every resource, busiest first.
    pub resources: Vec<Busy>,
    /// The busiest one.
    pub busiest: String,
    /// The thread that sets the pace (most busy time per frame).
    pub critical_thread: String,
    /// Its largest stage.
    pub critical_stage: String,
    /// That stage's busy time per delivered frame, ms.
    pub critical_stage_ms: f64,
    /// That stage's share of its thread's busy time (0..1).
    pub critical_stage_share: f64,
    /// The measured FPS.
    pub fps: f64,
    /// The FPS if the critical stage cost nothing, from the measured stage times.
    pub fps_without_critical: f64,
    /// True when the pipeline thread spent most of the run waiting for frames: the source caps the FPS.
    pub source_capped: bool,
    /// The paragraph printed at the end of `live --measure`.
    pub text: String,
}

/// Busy time per delivered frame of each stage, ms.
fn stage_ms_per_frame(report: &MeasureReport) -> Vec<(Stage, f64)> {
    let n = report.frames.max(1) as f64;
    Stage::ALL
        .iter()
        .map(|&s| {
            let total: f64 = report.records.iter().filter_map(|r| r.span(s)).map(|sp| sp.busy_us).sum();
            (s, total / n / 1000.0)
        })
        .collect()
}

/// The verdict for a measured run; `gpu_busy` is the median GPU utilisation (0..1) when sampled.
/// `None` for a run without frames.
pub fn verdict(report: &MeasureReport, gpu_busy: Option<f64>) -> Option<Verdict> {
    if report.frames == 0 || report.wall_s <= 0.0 {
        return None;
    }
    let per_stage = stage_ms_per_frame(report);
    let interval_ms = 1000.0 / report.fps.max(1e-9);
    let thread_ms =
        |t: Thread| -> f64 { per_stage.iter().filter(|(s, _)| Thread::of(*s) == Some(t)).map(|(_, ms)| ms).sum() };
    // Busy fractions are the stage table's shares (total busy over the run's wall time), summed per thread.
    let share =
        |t: Thread| -> f64 { report.stages.iter().filter(|s| Thread::of(s.stage) == Some(t)).map(|s| s.share).sum() };
    let mut resources: Vec<Busy> = Thread::ALL
        .iter()
        .map(|&t| Busy {
            resource: t.name().into(),
            busy: share(t),
            ms_per_frame: Some(thread_ms(t)),
            from: "stage times".into(),
        })
        .collect();
    let wait_ms = per_stage.iter().find(|(s, _)| *s == Stage::CaptureWait).map(|p| p.1).unwrap_or(0.0);
    let source_capped = wait_ms > 0.5 * interval_ms;
    if source_capped {
        resources.push(Busy {
            resource: "source".into(),
            busy: report.stages.iter().find(|s| s.stage == Stage::CaptureWait).map(|s| s.share).unwrap_or(0.0),
            ms_per_frame: None,
            from: "capture wait".into(),
        });
    }
    if let Some(g) = gpu_busy {
        resources.push(Busy { resource: "GPU".into(), busy: g, ms_per_frame: None, from: "NVML samples".into() });
    }
    resources.sort_by(|a, b| b.busy.total_cmp(&a.busy));
    let critical = *Thread::ALL.iter().max_by(|a, b| thread_ms(**a).total_cmp(&thread_ms(**b)))?;
    let (stage, stage_ms) = per_stage
        .iter()
        .filter(|(s, _)| Thread::of(*s) == Some(critical))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .copied()?;
    let pace = thread_ms(critical);
    let pace_without = Thread::ALL
        .iter()
        .map(|&t| if t == critical { thread_ms(t) - stage_ms } else { thread_ms(t) })
        .fold(0.0, f64::max)
        .max(1e-6);
    let fps_without = if source_capped { report.fps } else { report.fps * pace / pace_without };
    let mut v = Verdict {
        busiest: resources[0].resource.clone(),
        resources,
        critical_thread: critical.name().into(),
        critical_stage: stage.name().into(),
        critical_stage_ms: stage_ms,
        critical_stage_share: if pace > 0.0 { stage_ms / pace } else { 0.0 },
        fps: report.fps,
        fps_without_critical: fps_without,
        source_capped,
        text: String::new(),
    };
    v.text = paragraph(&v, gpu_busy);
    Some(v)
}

fn paragraph(v: &Verdict, gpu_busy: Option<f64>) -> String {
    let gpu = match gpu_busy {
        Some(g) => format!("GPU busy {:.0} %; ", 100.0 * g),
        None => "no GPU samples; ".into(),
    };
    let thread = v.resources.iter().find(|r| r.resource == v.critical_thread);
    let busy = thread.map(|t| t.busy).unwrap_or(0.0);
    if v.source_capped {
        let wait = v.resources.iter().find(|r| r.resource == "source").map(|r| r.busy).unwrap_or(0.0);
        return format!(
            "bottleneck: the source. {gpu}the pipeline thread waits for frames {:.0} % of the time, so the source caps \
             the run at {:.1} FPS; the busiest thread is the {} ({:.0} % busy, {:.0} % of it in {}).",
            100.0 * wait,
            v.fps,
            v.critical_thread,
            100.0 * busy,
            100.0 * v.critical_stage_share,
            v.critical_stage
        );
    }
    format!(
        "bottleneck: {}. {gpu}the {} is busy {:.0} %, {:.0} % of it in {} ({:.1} ms per frame); \
         without it: ≈ {:.1} FPS (now {:.1}).",
        v.busiest,
        v.critical_thread,
        100.0 * busy,
        100.0 * v.critical_stage_share,
        v.critical_stage,
        v.critical_stage_ms,
        v.fps_without_critical,
        v.fps
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::measure::{FrameRecord, Span};

    /// Frames `interval` µs apart, each with the given stage busy times (µs).
    fn run(frames: u64, interval: f64, stages: &[(Stage, f64)]) -> MeasureReport {
        let records = (0..frames)
            .map(|i| {
                let mut r = FrameRecord::new(i, i);
                r.captured_us = i as f64 * interval;
                r.done_us = r.captured_us + interval;
                for &(s, busy) in stages {
                    r.spans[s as usize] =
                        Some(Span { start_us: r.captured_us, end_us: r.captured_us + busy, busy_us: busy });
                }
                r
            })
            .collect();
        MeasureReport::from_records(records, 0)
    }

    #[test]
    fn a_cpu_bound_pipeline_thread_names_its_largest_stage() {
        // 20 ms per frame on the pipeline thread (paste 8 ms), detector 5 ms, decode 1 ms.
        let r = run(
            50,
            20_000.0,
            &[
                (Stage::Decode, 1000.0),
                (Stage::Detect, 5000.0),
                (Stage::Swap, 7000.0),
                (Stage::Paste, 8000.0),
                (Stage::Align, 5000.0),
            ],
        );
        let v = verdict(&r, None).unwrap();
        assert_eq!(v.critical_thread, "pipeline thread");
        assert_eq!(v.busiest, "pipeline thread");
        assert_eq!(v.critical_stage, "paste");
        assert!((v.critical_stage_ms - 8.0).abs() < 1e-9);
        assert!((v.critical_stage_share - 0.4).abs() < 1e-9);
        // Without paste the pipeline thread needs 12 ms, still above the detector's 5: 50 → 83.3 FPS.
        assert!((v.fps - 50.0).abs() < 1e-6, "{}", v.fps);
        assert!((v.fps_without_critical - 50.0 * 20.0 / 12.0).abs() < 1e-6, "{}", v.fps_without_critical);
        assert!(v.text.contains("paste") && v.text.contains("83.3 FPS"), "{}", v.text);
    }

    #[test]
    fn a_slow_detector_sets_the_pace_and_the_gpu_can_be_busiest() {
        let r = run(40, 30_000.0, &[(Stage::Detect, 30_000.0), (Stage::Swap, 10_000.0), (Stage::Paste, 2000.0)]);
        let v = verdict(&r, Some(0.46)).unwrap();
        assert_eq!(v.critical_thread, "detector thread");
        assert_eq!(v.critical_stage, "detect");
        // Without detection the pipeline thread's 12 ms sets the pace.
        assert!((v.fps_without_critical - r.fps * 30.0 / 12.0).abs() < 1e-6);
        assert!(v.resources.iter().any(|b| b.resource == "GPU" && b.busy == 0.46));
        assert!(v.text.starts_with("bottleneck: detector thread. GPU busy 46 %"), "{}", v.text);
    }

    #[test]
    fn a_waiting_pipeline_is_capped_by_its_source() {
        let r = run(30, 33_333.0, &[(Stage::CaptureWait, 25_000.0), (Stage::Swap, 6000.0), (Stage::Decode, 500.0)]);
        let v = verdict(&r, None).unwrap();
        assert!(v.source_capped);
        assert_eq!(v.busiest, "source");
        assert_eq!(v.fps_without_critical, v.fps);
        assert!(v.text.starts_with("bottleneck: the source."), "{}", v.text);
    }
}
