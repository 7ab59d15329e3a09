//! Regression view (`--baseline`): each stage of a run against the same model, variant and stage of a
//! baseline run. A stage is slower (or faster) only when the 95% confidence intervals of the two
//! medians do not overlap; overlapping intervals are "within CI", however the medians differ.

use serde::Serialize;

use super::load::Run;
use super::metrics::{latency, Value};

/// The comparison's outcome for one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The run's interval lies entirely above the baseline's: a regression.
    Slower,
    /// The run's interval lies entirely below the baseline's.
    Faster,
    /// The intervals overlap: no difference can be claimed.
    WithinCi,
}

impl Verdict {
    /// Markdown cell text.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Slower => "**slower** ▲",
            Verdict::Faster => "faster ▼",
            Verdict::WithinCi => "within CI",
        }
    }
}

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
    pub verdict: Verdict,
}

/// The interval of a value: its CI, or the value itself when it has none (published numbers).
fn interval(v: &Value) -> (f64, f64) {
    (v.lo.unwrap_or(v.value), v.hi.unwrap_or(v.value))
}

/// Compares two latencies (ms): slower when the current interval starts above the baseline's end.
pub fn verdict(baseline: &Value, current: &Value) -> Verdict {
    let (blo, bhi) = interval(baseline);
    let (clo, chi) = interval(current);
    if clo > bhi {
        Verdict::Slower
    } else if chi < blo {
        Verdict::Faster
    } else {
        Verdict::WithinCi
    }
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
            out.push(Comparison {
                run: i,
                ratio: c.value / b.value,
                verdict: verdict(&b, &c),
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
        assert_eq!(verdict(&base, &v(10.9, 10.4, 11.4)), Verdict::WithinCi);
        assert_eq!(verdict(&base, &v(8.0, 7.5, 8.5)), Verdict::Faster);
        let published = Value::plain(10.0, Kind::Published);
        assert_eq!(verdict(&published, &v(10.2, 9.9, 10.6)), Verdict::WithinCi);
        assert_eq!(verdict(&published, &v(10.6, 10.1, 11.0)), Verdict::Slower);
    }
}
