//! Summary statistics of timing samples, a bootstrap confidence interval of the median, and outlier
//! warnings in the spirit of hyperfine's.

use serde::{Deserialize, Serialize};

use crate::util::rng::Rng;

/// Bootstrap resamples for the median's confidence interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Seed of the bootstrap, fixed so a results file can be recomputed exactly from its samples.
pub const BOOTSTRAP_SEED: u64 = 0x5EED_BE4C;

/// Statistics of a set of samples (all in the samples' unit, milliseconds for timings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    /// Sample standard deviation (n − 1); 0 for one sample.
    pub stddev: f64,
    /// 95% bootstrap (percentile) confidence interval of the median.
    pub median_ci95_lo: f64,
    pub median_ci95_hi: f64,
    /// Samples outside [Q1 − 1.5·IQR, Q3 + 1.5·IQR].
    pub outliers: usize,
    /// Samples outside [Q1 − 3·IQR, Q3 + 3·IQR].
    pub severe_outliers: usize,
}

impl Summary {
    /// Statistics of `samples`; `None` when empty or any sample is not finite.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let mean = s.iter().sum::<f64>() / n as f64;
        let stddev =
            if n > 1 { (s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        let (q1, q3) = (quantile(&s, 0.25), quantile(&s, 0.75));
        let iqr = q3 - q1;
        let count_outside = |k: f64| s.iter().filter(|&&x| x < q1 - k * iqr || x > q3 + k * iqr).count();
        let (lo, hi) = bootstrap_median_ci(&s, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        Some(Summary {
            n,
            min: s[0],
            max: s[n - 1],
            mean,
            median: quantile(&s, 0.5),
            p90: quantile(&s, 0.90),
            p99: quantile(&s, 0.99),
            stddev,
            median_ci95_lo: lo,
            median_ci95_hi: hi,
            outliers: count_outside(1.5),
            severe_outliers: count_outside(3.0),
        })
    }

    /// The statistics as (name, value) pairs, in a fixed order (the CSV's `statistic` column).
    pub fn pairs(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("n", self.n as f64),
            ("min", self.min),
            ("median", self.median),
            ("mean", self.mean),
            ("p90", self.p90),
            ("p99", self.p99),
            ("max", self.max),
            ("stddev", self.stddev),
            ("median_ci95_lo", self.median_ci95_lo),
            ("median_ci95_hi", self.median_ci95_hi),
            ("outliers", self.outliers as f64),
        ]
    }
}

/// Linear-interpolated quantile of sorted data (`q` in [0, 1]).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}

/// 95% percentile-bootstrap interval of the median: resample with replacement, take each resample's
/// median, report the 2.5% and 97.5% quantiles. Deterministic for a seed.
pub fn bootstrap_median_ci(sorted: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let n = sorted.len();
    if n < 2 {
        let v = sorted.first().copied().unwrap_or(f64::NAN);
        return (v, v);
    }
    let mut rng = Rng::new(seed);
    let mut buf = vec![0.0; n];
    let mut medians = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for b in buf.iter_mut() {
            *b = sorted[(rng.next_u64() % n as u64) as usize];
        }
        buf.sort_by(f64::total_cmp);
        medians.push(quantile(&buf, 0.5));
    }
    medians.sort_by(f64::total_cmp);
    (quantile(&medians, 0.025), quantile(&medians, 0.975))
}

/// Warnings about a measurement, like hyperfine's: a slow first run, many outliers, a noisy spread.
pub fn warnings(first_run_ms: Option<f64>, s: &Summary) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(first) = first_run_ms {
        if s.median > 0.0 && first > 5.0 * s.median {
            w.push(format!(
                "the first run took {first:.1} ms, {:.0}x the median: one-time initialisation (allocation, \
                 kernel selection, caches); it is excluded from the statistics",
                first / s.median
            ));
        }
    }
    if s.n >= 5 && s.outliers as f64 > 0.1 * s.n as f64 {
        w.push(format!(
            "{} of {} runs are outliers by the 1.5×IQR rule: other processes or frequency scaling likely \
             interfered; rerun on a quiet machine",
            s.outliers, s.n
        ));
    } else if s.severe_outliers > 0 {
        w.push(format!("{} severe outlier(s) (beyond 3×IQR) among {} runs", s.severe_outliers, s.n));
    }
    if s.n >= 5 && s.mean > 0.0 && s.stddev / s.mean > 0.10 {
        w.push(format!("high variation: stddev is {:.0}% of the mean", 100.0 * s.stddev / s.mean));
    }
    if s.n < 5 {
        w.push(format!("only {} measured run(s): raise the time budget for a meaningful median", s.n));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.n, s.min, s.max, s.median, s.mean), (5, 1.0, 5.0, 3.0, 3.0));
        assert!((s.stddev - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.p90 - 4.6).abs() < 1e-12);
        assert!(s.median_ci95_lo <= s.median && s.median <= s.median_ci95_hi);
        assert_eq!(s.outliers, 0);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn outliers_and_warnings() {
        let mut v = vec![10.0; 40];
        for (i, x) in v.iter_mut().enumerate() {
            *x += (i % 5) as f64 * 0.1;
        }
        v.extend([30.0, 31.0, 32.0, 33.0, 34.0, 35.0]);
        let s = Summary::of(&v).unwrap();
        assert_eq!(s.outliers, 6);
        assert_eq!(s.severe_outliers, 6);
        let w = warnings(Some(200.0), &s);
        assert!(w.iter().any(|m| m.contains("first run")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("outliers")), "{w:?}");
        let quiet = Summary::of(&[10.0, 10.1, 10.2, 10.0, 10.1, 10.2]).unwrap();
        assert!(warnings(Some(11.0), &quiet).is_empty());
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_median() {
        let mut rng = Rng::new(3);
        let mut v: Vec<f64> = (0..101).map(|_| 50.0 + rng.normal() as f64).collect();
        v.sort_by(f64::total_cmp);
        let a = bootstrap_median_ci(&v, 500, 9);
        assert_eq!(a, bootstrap_median_ci(&v, 500, 9));
        let m = quantile(&v, 0.5);
        assert!(a.0 < m && m < a.1 && a.1 - a.0 < 1.0, "{a:?} {m}");
    }
}
