//! Regression view (`--baseline`): each stage of a run against the same model, variant and stage of a
//! baseline run, as a time ratio (run / baseline) with a 95% interval and a verdict.
//!
//! Model stages of runs that kept their samples get the interval from a hierarchical bootstrap over
//! each run's rounds ([`crate::bench::rounds::ratio_ci`]). Rounds of two invocations were not measured
//! side by side, so they are resampled independently, not paired. The verdict is slower (or faster)
//! when the interval excludes 1 and the ratio is beyond the baseline run's noise threshold; otherwise
//! no difference beyond noise. Stages without samples (pipeline stages, published numbers) fall back to
//! the medians' own intervals: slower only when they do not overlap.

use serde::Serialize;

use super::load::Run;
use super::metrics::{latency, Value};
use crate::bench::results::ModelResult;
use crate::bench::rounds::{self, Pairing};
use crate::bench::stats::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};

pub use crate::bench::rounds::Verdict;

/// One stage compared with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Index of the run in the report's run list.
    pub run: usize,
    pub model: String,
    pub variant: String,
    pub stage: String,
    pub baseline: Value,
    pub current: Value,
    /// current / baseline medians.
    pub ratio: f64,
    /// 95% interval of the ratio (absent where a side kept no samples).
    pub ratio_ci95: Option<(f64, f64)>,
    /// Ratios within ± this percent of 1 are "no difference beyond noise".
    pub noise_threshold_pct: f64,
    /// How the verdict was reached, in words.
    pub method: String,
    pub verdict: Verdict,
}

/// The interval of a value: its CI, or the value itself when it has none (published numbers).
fn interval(v: &Value) -> (f64, f64) {
    (v.lo.unwrap_or(v.value), v.hi.unwrap_or(v.value))
}

/// Compares two latencies (ms) without samples: slower when the current interval starts above the
/// baseline's end, faster when it ends below the baseline's start.
pub fn verdict(baseline: &Value, current: &Value) -> Verdict {
    let (blo, bhi) = interval(baseline);
    let (clo, chi) = interval(current);
    if clo > bhi {
        Verdict::Slower
    } else if chi < blo {
        Verdict::Faster
    } else {
        Verdict::NoDifference
    }
}

/// The measured model of a run behind a `run` stage row (with its samples).
fn measured<'a>(run: &'a Run, model: &str, variant: &str) -> Option<&'a ModelResult> {
    run.report.models.iter().find(|m| m.model == model && m.variant.name() == variant && !m.samples_ms.is_empty())
}

/// Stages of a run that carry a latency (`run` and pipeline stages), as (model, variant, stage).
fn stages(run: &Run) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for r in &run.rows {
        let timed = r.stage == "run" || r.stage.starts_with("pipeline:");
        if timed && matches!(r.statistic.as_str(), "median" | "value") && r.unit == "ms" {
            let key = (r.model.clone(), r.variant.clone(), r.stage.clone());
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}

/// Every timed stage of every run except the baseline, against the baseline's same stage.
pub fn compare(runs: &[Run], baseline: usize) -> Vec<Comparison> {
    let base = &runs[baseline];
    let noise = base.report.settings.noise_threshold_pct;
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate().filter(|(i, _)| *i != baseline) {
        for (model, variant, stage) in stages(run) {
            let (Some(b), Some(c)) = (latency(base, &model, &variant, &stage), latency(run, &model, &variant, &stage))
            else {
                continue;
            };
            if b.value <= 0.0 {
                continue;
            }
            let samples = (stage == "run")
                .then(|| measured(base, &model, &variant).zip(measured(run, &model, &variant)))
                .flatten();
            let ci = samples.and_then(|(bm, cm)| {
                let (bs, cs) = (bm.round_samples(), cm.round_samples());
                rounds::ratio_ci(&bs, &cs, Pairing::Independent, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, noise)
            });
            let (ratio, ratio_ci95, method, verdict) = match ci {
                Some(r) => (r.time_ratio, Some((r.ci95_lo, r.ci95_hi)), r.method, r.verdict),
                None => (
                    c.value / b.value,
                    None,
                    "no samples on one side: slower or faster only when the medians' intervals do not overlap".into(),
                    verdict(&b, &c),
                ),
            };
            out.push(Comparison {
                run: i,
                ratio,
                ratio_ci95,
                noise_threshold_pct: noise,
                method,
                verdict,
                model,
                variant,
                stage,
                baseline: b,
                current: c,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::metrics::Kind;

    fn v(value: f64, lo: f64, hi: f64) -> Value {
        Value { value, lo: Some(lo), hi: Some(hi), kind: Kind::Measured }
    }

    #[test]
    fn verdict_needs_disjoint_intervals() {
        let base = v(10.0, 9.5, 10.5);
        assert_eq!(verdict(&base, &v(12.0, 11.0, 13.0)), Verdict::Slower);
        assert_eq!(verdict(&base, &v(10.9, 10.4, 11.4)), Verdict::NoDifference);
        assert_eq!(verdict(&base, &v(8.0, 7.5, 8.5)), Verdict::Faster);
        let published = Value::plain(10.0, Kind::Published);
        assert_eq!(verdict(&published, &v(10.2, 9.9, 10.6)), Verdict::NoDifference);
        assert_eq!(verdict(&published, &v(10.6, 10.1, 11.0)), Verdict::Slower);
    }
}
