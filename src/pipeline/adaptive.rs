//! Adaptive mode: from a few frames measured with detection and enhancement on every frame, pick the
//! detection and enhancer intervals that reach a target FPS.
//!
//! Model of a frame's time: `f · (rest + detect / n + enhance / k)` for detection every `n` frames
//! and enhancement every `k`, where the medians come from the probe and `f` calibrates the sum to
//! the frame interval the probe actually saw (below 1 when detection overlapped with the swap on
//! another core). Among the choices that reach the target, the one with the smallest `n + k` wins
//! (most detection and enhancement), ties going to the smaller `n` (boxes follow motion better).

use super::measure::{AdaptiveChoice, FrameRecord, Stage};
use crate::bench::stats::quantile;

/// Largest interval considered for either stage.
pub const MAX_INTERVAL: usize = 8;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Picks intervals for `target_fps` from probe `records` (measured with detection and, when
/// `enhancer` is true, enhancement on every frame).
pub fn choose(records: &[FrameRecord], target_fps: f64, enhancer: bool) -> AdaptiveChoice {
    let busy = |r: &FrameRecord, s: Stage| r.span(s).map(|x| x.busy_us).unwrap_or(0.0);
    let detect_ms = median(records.iter().filter(|r| r.detected).map(|r| busy(r, Stage::Detect)).collect()) / 1e3;
    let enhance_ms = if enhancer {
        median(records.iter().filter(|r| r.enhanced).map(|r| busy(r, Stage::Enhance)).collect()) / 1e3
    } else {
        0.0
    };
    let rest_ms =
        median(records.iter().map(|r| r.work_us() - busy(r, Stage::Detect) - busy(r, Stage::Enhance)).collect()) / 1e3;
    let observed_ms = median(records.windows(2).map(|w| w[1].done_us - w[0].done_us).collect()) / 1e3;
    let modelled_ms = rest_ms + detect_ms + enhance_ms;
    let f = if observed_ms > 0.0 && modelled_ms > 0.0 { (observed_ms / modelled_ms).clamp(0.25, 4.0) } else { 1.0 };
    let predict = |n: usize, k: usize| {
        let ms = f * (rest_ms + detect_ms / n as f64 + if k > 0 { enhance_ms / k as f64 } else { 0.0 });
        if ms > 0.0 {
            1000.0 / ms
        } else {
            f64::INFINITY
        }
    };
    let ks: Vec<usize> = if enhancer { (1..=MAX_INTERVAL).collect() } else { vec![0] };
    let mut best: Option<(usize, usize)> = None;
    for n in 1..=MAX_INTERVAL {
        for &k in &ks {
            if predict(n, k) >= target_fps {
                let better = match best {
                    None => true,
                    Some((bn, bk)) => n + k < bn + bk || (n + k == bn + bk && n < bn),
                };
                if better {
                    best = Some((n, k));
                }
            }
        }
    }
    let reaches_target = best.is_some();
    let (n, k) = best.unwrap_or((MAX_INTERVAL, if enhancer { MAX_INTERVAL } else { 0 }));
    AdaptiveChoice {
        target_fps,
        probe_frames: records.len(),
        detect_ms,
        enhance_ms,
        rest_ms,
        detection_interval: n,
        enhancer_interval: k,
        predicted_fps: predict(n, k),
        reaches_target,
    }
}
