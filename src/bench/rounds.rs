//! Statistics over interleaved rounds: the median's confidence interval from a hierarchical
//! bootstrap over rounds and the samples within them, ratios between two jobs from paired rounds,
//! the faster / slower / no-difference verdict, and the quality flags (interval too wide, rounds
//! that disagree).
//!
//! Why rounds: the samples of one session, taken back to back, describe that session at that moment;
//! a rerun gets another session, other allocations and another machine state, and its median moves by
//! more than the samples' own spread suggests. Each round measures every job with a fresh session, so
//! the spread between rounds carries those effects, and resampling rounds (not only samples) puts them
//! into the interval.
//!
//! The interval is an *expanded percentile* bootstrap interval (Hesterberg, "What teachers should
//! know about the bootstrap", 2015): with few rounds a plain percentile interval is too narrow (it
//! uses the rounds' spread as if it were known), so each side is widened by
//! `sqrt(k / (k − 1)) · t(0.975, k − 1) / z(0.975)` for `k` rounds, which turns the normal quantile into
//! Student's and undoes the bootstrap's `1/k` variance.

use serde::{Deserialize, Serialize};

use super::stats::quantile;
use crate::util::rng::Rng;

/// z(0.975).
pub const Z975: f64 = 1.959_963_985;

/// Default width (± percent of the median) above which a median's 95% interval is flagged.
pub const DEFAULT_CI_WIDTH_PCT: f64 = 3.0;

/// Default noise threshold of a verdict: ratios within ± this percent of 1 are "no difference".
pub const DEFAULT_NOISE_PCT: f64 = 2.0;

/// Default number of rounds of `faceperf bench`.
pub const DEFAULT_ROUNDS: usize = 10;

/// Student's t quantile t(0.975, df) (two-sided 95%); a table to 30, then a series.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        // Cornish-Fisher expansion in 1/df (within 1e-4 of the exact value beyond 30).
        _ => {
            let (z, d) = (Z975, df as f64);
            z + (z.powi(3) + z) / (4.0 * d) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

/// Factor by which the percentile interval over `k` rounds is widened (1 for fewer than 2 rounds:
/// one round has no between-round spread to correct).
pub fn expansion(k: usize) -> f64 {
    if k < 2 {
        return 1.0;
    }
    (k as f64 / (k as f64 - 1.0)).sqrt() * t975(k - 1) / Z975
}

/// Median of unsorted data (reorders it).
fn median_of(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return hi;
    }
    let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo + hi) / 2.0
}

/// Median of all samples of all rounds together.
pub fn pooled_median(rounds: &[Vec<f64>]) -> f64 {
    let mut all: Vec<f64> = rounds.iter().flatten().copied().collect();
    median_of(&mut all)
}

/// One hierarchical resample's pooled median: the rounds `idx` (drawn with replacement), each one's
/// samples drawn with replacement.
fn resample_median(rounds: &[Vec<f64>], idx: &[usize], rng: &mut Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    for &i in idx {
        let r = &rounds[i];
        for _ in 0..r.len() {
            buf.push(r[rng.below(r.len())]);
        }
    }
    median_of(buf)
}

/// Rounds that hold at least one sample, and whether every sample is finite.
fn usable(rounds: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let kept: Vec<Vec<f64>> = rounds.iter().filter(|r| !r.is_empty()).cloned().collect();
    (!kept.is_empty() && kept.iter().flatten().all(|x| x.is_finite())).then_some(kept)
}

/// The median over rounds and its intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedianCi {
    /// How the interval was computed, in words.
    pub method: String,
    /// Rounds with samples.
    pub rounds: usize,
    /// Median of all samples of all rounds, ms.
    pub median: f64,
    /// 95% confidence interval of the median, ms.
    pub ci95_lo: f64,
    pub ci95_hi: f64,
    /// Where a rerun's median is expected (95%): the interval's half-widths times √2, since a rerun's
    /// median carries its own error as well as this run's, ms.
    pub rerun95_lo: f64,
    pub rerun95_hi: f64,
    /// The larger half-width of the confidence interval, percent of the median.
    pub half_width_pct: f64,
    /// Each round's median, ms, in round order.
    pub round_medians: Vec<f64>,
    /// (largest − smallest round median) / median, percent.
    pub round_spread_pct: f64,
}

/// Method text of [`median_ci`].
fn method_text(k: usize, resamples: usize) -> String {
    if k < 2 {
        format!("percentile bootstrap over the samples of one round ({resamples} resamples); no between-round spread")
    } else {
        format!(
            "hierarchical bootstrap over {k} rounds and the samples within each ({resamples} resamples), \
             expanded percentile interval (×{:.3} for {k} rounds)",
            expansion(k)
        )
    }
}

/// The pooled median of `rounds` (samples per round, ms) with its 95% interval from a hierarchical
/// bootstrap: `resamples` times, draw the rounds with replacement and each drawn round's samples with
/// replacement, and take the pooled median; the 2.5% and 97.5% quantiles, widened by
/// [`expansion`]. Deterministic for a seed. `None` without samples or with a non-finite one.
pub fn median_ci(rounds: &[Vec<f64>], resamples: usize, seed: u64) -> Option<MedianCi> {
    let rounds = usable(rounds)?;
    let k = rounds.len();
    let median = pooled_median(&rounds);
    let mut rng = Rng::new(seed);
    let mut buf = Vec::new();
    let mut idx = vec![0; k];
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples.max(1) {
        for i in idx.iter_mut() {
            *i = if k == 1 { 0 } else { rng.below(k) };
        }
        stats.push(resample_median(&rounds, &idx, &mut rng, &mut buf));
    }
    stats.sort_by(f64::total_cmp);
    let e = expansion(k);
    let (q_lo, q_hi) = (quantile(&stats, 0.025), quantile(&stats, 0.975));
    let (dlo, dhi) = (e * (median - q_lo).max(0.0), e * (q_hi - median).max(0.0));
    let round_medians: Vec<f64> = rounds.iter().map(|r| median_of(&mut r.clone())).collect();
    let (rmin, rmax) = round_medians.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let pct = |x: f64| if median > 0.0 { 100.0 * x / median } else { 0.0 };
    Some(MedianCi {
        method: method_text(k, resamples),
        rounds: k,
        median,
        ci95_lo: median - dlo,
        ci95_hi: median + dhi,
        rerun95_lo: median - std::f64::consts::SQRT_2 * dlo,
        rerun95_hi: median + std::f64::consts::SQRT_2 * dhi,
        half_width_pct: pct(dlo.max(dhi)),
        round_medians,
        round_spread_pct: pct(rmax - rmin),
    })
}

/// The outcome of a comparison, for the candidate against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The candidate takes less time: the ratio's interval lies below 1 and the ratio is beyond the
    /// noise threshold.
    Faster,
    /// The candidate takes more time: the interval lies above 1 and the ratio is beyond the threshold.
    Slower,
    /// No difference beyond noise: the interval includes 1, or the ratio is within the threshold.
    NoDifference,
}

impl Verdict {
    /// Words for the terminal and reports.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoDifference => "no difference beyond noise",
        }
    }
}

/// The verdict on a time ratio (candidate time / baseline time) with its 95% interval: slower when
/// the whole interval lies above 1 and the ratio exceeds `1 + noise_pct/100`; faster when the whole
/// interval lies below 1 and the ratio is under `1 / (1 + noise_pct/100)`; otherwise no difference.
pub fn verdict(time_ratio: f64, lo: f64, hi: f64, noise_pct: f64) -> Verdict {
    let t = 1.0 + noise_pct / 100.0;
    if lo > 1.0 && time_ratio > t {
        Verdict::Slower
    } else if hi < 1.0 && time_ratio < 1.0 / t {
        Verdict::Faster
    } else {
        Verdict::NoDifference
    }
}

/// A time ratio between two jobs with its interval and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioCi {
    /// How the interval was computed, in words.
    pub method: String,
    /// Rounds used (paired: rounds both jobs have).
    pub rounds: usize,
    /// Candidate median / baseline median (above 1: the candidate is slower).
    pub time_ratio: f64,
    /// 95% interval of the time ratio.
    pub ci95_lo: f64,
    pub ci95_hi: f64,
    /// Per round: candidate round median / baseline round median (paired comparisons only).
    pub round_ratios: Vec<f64>,
    pub noise_threshold_pct: f64,
    pub verdict: Verdict,
}

/// How the rounds of two jobs are resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Round `i` of both jobs was measured side by side: resample round indices once for both.
    Paired,
    /// Different invocations: resample each job's rounds on its own.
    Independent,
}

/// Time ratio candidate / baseline of the pooled medians with a 95% interval from a hierarchical
/// bootstrap over rounds (paired or independent), expanded in log space for the rounds used.
pub fn ratio_ci(
    baseline: &[Vec<f64>],
    candidate: &[Vec<f64>],
    pairing: Pairing,
    resamples: usize,
    seed: u64,
    noise_pct: f64,
) -> Option<RatioCi> {
    let (b, c) = match pairing {
        // Pairs need both rounds; a round one job lacks is dropped from both.
        Pairing::Paired => {
            let pairs: Vec<(Vec<f64>, Vec<f64>)> = baseline
                .iter()
                .zip(candidate)
                .filter(|(x, y)| !x.is_empty() && !y.is_empty())
                .map(|(x, y)| (x.clone(), y.clone()))
                .collect();
            let (b, c): (Vec<Vec<f64>>, Vec<Vec<f64>>) = pairs.into_iter().unzip();
            (usable(&b)?, usable(&c)?)
        }
        Pairing::Independent => (usable(baseline)?, usable(candidate)?),
    };
    let (mb, mc) = (pooled_median(&b), pooled_median(&c));
    if mb <= 0.0 || mc <= 0.0 {
        return None;
    }
    let ratio = mc / mb;
    let mut rng = Rng::new(seed);
    let mut buf = Vec::new();
    let mut logs = Vec::with_capacity(resamples);
    for _ in 0..resamples.max(1) {
        let ib: Vec<usize> = (0..b.len()).map(|_| rng.below(b.len())).collect();
        let ic: Vec<usize> = match pairing {
            Pairing::Paired => ib.clone(),
            Pairing::Independent => (0..c.len()).map(|_| rng.below(c.len())).collect(),
        };
        let (rb, rc) = (resample_median(&b, &ib, &mut rng, &mut buf), resample_median(&c, &ic, &mut rng, &mut buf));
        logs.push((rc / rb).ln());
    }
    logs.sort_by(f64::total_cmp);
    let k = b.len().min(c.len());
    let e = expansion(k);
    let l = ratio.ln();
    let lo = (l - e * (l - quantile(&logs, 0.025)).max(0.0)).exp();
    let hi = (l + e * (quantile(&logs, 0.975) - l).max(0.0)).exp();
    let round_ratios = match pairing {
        Pairing::Paired => {
            b.iter().zip(&c).map(|(x, y)| median_of(&mut y.clone()) / median_of(&mut x.clone())).collect()
        }
        Pairing::Independent => vec![],
    };
    let method = match pairing {
        Pairing::Paired => format!(
            "paired hierarchical bootstrap over {k} rounds measured side by side ({resamples} resamples), \
             expanded percentile interval in log space (×{e:.3})"
        ),
        Pairing::Independent => format!(
            "hierarchical bootstrap of each run's rounds on its own ({} and {} rounds, {resamples} resamples): \
             rounds of different invocations were not measured side by side, so they are not paired; \
             expanded percentile interval in log space (×{e:.3})",
            b.len(),
            c.len()
        ),
    };
    Some(RatioCi {
        method,
        rounds: k,
        time_ratio: ratio,
        ci95_lo: lo,
        ci95_hi: hi,
        round_ratios,
        noise_threshold_pct: noise_pct,
        verdict: verdict(ratio, lo, hi, noise_pct),
    })
}

/// Whether a median is good enough, and what to do when it is not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The interval's larger half-width, percent of the median.
    pub ci_half_width_pct: f64,
    /// The stated width: intervals wider than ± this percent are flagged.
    pub ci_width_limit_pct: f64,
    pub ci_too_wide: bool,
    /// Round medians span more than twice the stated width (conditions changed during the run).
    pub rounds_disagree: bool,
    /// One line per problem, with the advice that would fix it.
    pub flags: Vec<String>,
}

/// Flags a median whose interval is wider than ± `limit_pct` or whose rounds disagree (their medians
/// span more than `2 × limit_pct`, the whole allowed interval). `load` is the worst 1-minute load
/// average per logical core seen during the run, for the advice.
pub fn quality(ci: &MedianCi, limit_pct: f64, budget_s: f64, load_per_core: Option<f64>) -> Quality {
    let too_wide = ci.half_width_pct > limit_pct;
    let disagree = ci.rounds >= 3 && ci.round_spread_pct > 2.0 * limit_pct;
    let busy = load_per_core.filter(|l| *l > 0.5);
    let quieter = match busy {
        Some(l) => format!("run on a quieter machine (the load average reached {l:.2} per core)"),
        None => "run on a quieter machine (close other programs, plug in a laptop)".into(),
    };
    let mut flags = Vec::new();
    if too_wide {
        // The interval narrows roughly with the square root of the measured time.
        let factor = (ci.half_width_pct / limit_pct).powi(2).ceil().max(2.0);
        let what = format!("95% CI ±{:.1}% is wider than the stated ±{limit_pct}%", ci.half_width_pct);
        flags.push(if factor > 16.0 {
            // A budget that many times longer is no remedy: the noise itself has to go.
            format!("{what}: a longer budget alone would need about {factor:.0}× the {budget_s} s used; first {quieter}")
        } else {
            format!(
                "{what}: raise the budget (--time {:.0}, about {factor:.0}× the {budget_s} s used) or --rounds, or {quieter}",
                budget_s * factor
            )
        });
    }
    if disagree {
        flags.push(format!(
            "rounds disagree: their medians span {:.1}% ({:.3}–{:.3} ms), more than the ±{limit_pct}% allowed; \
             conditions changed during the run (other processes, frequency or thermal limits): {quieter}",
            ci.round_spread_pct,
            ci.round_medians.iter().copied().fold(f64::INFINITY, f64::min),
            ci.round_medians.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        ));
    }
    Quality {
        ci_half_width_pct: ci.half_width_pct,
        ci_width_limit_pct: limit_pct,
        ci_too_wide: too_wide,
        rounds_disagree: disagree,
        flags,
    }
}

/// Splits samples recorded one round after another into rounds of the given sizes; one round of
/// everything when the sizes do not add up (results written before rounds were recorded).
pub fn split_rounds(samples: &[f64], sizes: &[usize]) -> Vec<Vec<f64>> {
    if sizes.is_empty() || sizes.iter().sum::<usize>() != samples.len() {
        return vec![samples.to_vec()];
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &n in sizes {
        out.push(samples[at..at + n].to_vec());
        at += n;
    }
    out
}

/// The order of the jobs in round `round`: job order in even rounds, reversed in odd ones, so that
/// two jobs run A B B A A B … and neither always goes first.
pub fn round_order(jobs: usize, round: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..jobs).collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

/// Multiplies every sample by `factor`: the test-only planted slowdown (`--test-ab`).
pub fn plant(samples: &[f64], factor: f64) -> Vec<f64> {
    samples.iter().map(|x| x * factor).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `k` rounds of `n` samples: each round's level drifts by `round_sd` (relative), samples jitter
    /// by `sample_sd` around it; seeded.
    pub(crate) fn synthetic(
        center: f64,
        k: usize,
        n: usize,
        round_sd: f64,
        sample_sd: f64,
        seed: u64,
    ) -> Vec<Vec<f64>> {
        let mut rng = Rng::new(seed);
        (0..k)
            .map(|_| {
                let level = center * (1.0 + round_sd * rng.normal() as f64);
                (0..n).map(|_| level * (1.0 + sample_sd * rng.normal() as f64)).collect()
            })
            .collect()
    }

    #[test]
    fn t_quantiles_and_expansion() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(9), 2.262);
        assert!((t975(1000) - Z975).abs() < 0.01);
        assert!((t975(31) - 2.0395).abs() < 0.0005, "{}", t975(31));
        assert_eq!(expansion(1), 1.0);
        assert!((expansion(10) - (10f64 / 9.0).sqrt() * 2.262 / Z975).abs() < 1e-12);
        assert!(expansion(3) > expansion(10) && expansion(10) > expansion(100) && expansion(100) > 1.0);
    }

    #[test]
    fn median_helpers() {
        assert_eq!(median_of(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median_of(&mut []).is_nan());
        assert_eq!(pooled_median(&[vec![1.0, 2.0], vec![3.0]]), 2.0);
        assert_eq!(split_rounds(&[1.0, 2.0, 3.0], &[2, 1]), vec![vec![1.0, 2.0], vec![3.0]]);
        assert_eq!(split_rounds(&[1.0, 2.0, 3.0], &[2, 2]), vec![vec![1.0, 2.0, 3.0]]);
        assert_eq!(round_order(3, 0), vec![0, 1, 2]);
        assert_eq!(round_order(3, 1), vec![2, 1, 0]);
        // Two jobs over four rounds: A B B A A B B A.
        let seq: Vec<usize> = (0..4).flat_map(|r| round_order(2, r)).collect();
        assert_eq!(seq, vec![0, 1, 1, 0, 0, 1, 1, 0]);
    }

    #[test]
    fn the_interval_reflects_the_spread_between_rounds() {
        // Same samples' jitter; rounds that drift by 3% must give a wider interval than steady ones.
        let steady = synthetic(10.0, 10, 50, 0.0, 0.01, 1);
        let drifting = synthetic(10.0, 10, 50, 0.03, 0.01, 1);
        let a = median_ci(&steady, 2000, 5).unwrap();
        let b = median_ci(&drifting, 2000, 5).unwrap();
        for c in [&a, &b] {
            assert!(c.ci95_lo < c.median && c.median < c.ci95_hi, "{c:?}");
            assert!(c.rerun95_lo < c.ci95_lo && c.ci95_hi < c.rerun95_hi, "{c:?}");
            assert_eq!(c.rounds, 10);
            assert_eq!(c.round_medians.len(), 10);
        }
        assert!(b.half_width_pct > 3.0 * a.half_width_pct, "{} vs {}", b.half_width_pct, a.half_width_pct);
        assert!(a.half_width_pct < 1.0, "{a:?}");
        assert!(b.round_spread_pct > 4.0, "{b:?}");
        // Deterministic for a seed.
        assert_eq!(median_ci(&drifting, 2000, 5), Some(b));
        assert!(median_ci(&[vec![]], 100, 1).is_none());
        assert!(median_ci(&[vec![1.0, f64::NAN]], 100, 1).is_none());
        let one = median_ci(&[vec![1.0, 2.0, 3.0, 4.0, 5.0]], 500, 1).unwrap();
        assert_eq!(one.rounds, 1);
        assert!(one.method.contains("one round"));
    }

    #[test]
    fn intervals_are_calibrated_on_synthetic_invocations() {
        // 100 synthetic "invocations" of 10 rounds whose levels drift by 1.5% (what a rerun sees) with
        // 2% jitter within a round: the 95% interval holds the true median (4.5) in at least 90 of
        // them, and each one's rerun interval holds the next invocation's median in at least 90.
        let runs: Vec<MedianCi> =
            (0..101).map(|i| median_ci(&synthetic(4.5, 10, 12, 0.015, 0.02, 100 + i), 500, 7).unwrap()).collect();
        let truth = runs[..100].iter().filter(|r| r.ci95_lo <= 4.5 && 4.5 <= r.ci95_hi).count();
        let rerun =
            runs.windows(2).filter(|w| w[0].rerun95_lo <= w[1].median && w[1].median <= w[0].rerun95_hi).count();
        assert!(truth >= 90, "the CI held the true median in {truth} of 100");
        assert!(rerun >= 90, "the rerun interval held the next median in {rerun} of 100");
        // Without the rounds (all samples as one round) the interval is far too narrow for reruns.
        let flat: Vec<MedianCi> = (0..100)
            .map(|i| median_ci(&[synthetic(4.5, 10, 12, 0.015, 0.02, 100 + i).concat()], 500, 7).unwrap())
            .collect();
        let naive = flat.iter().filter(|r| r.ci95_lo <= 4.5 && 4.5 <= r.ci95_hi).count();
        assert!(naive < 80, "a samples-only interval held the true median in {naive} of 100");
    }

    #[test]
    fn a_planted_ten_percent_slowdown_is_slower_and_an_identical_pair_is_not() {
        let base = synthetic(4.5, 10, 20, 0.02, 0.02, 11);
        // Identical A/B pair: the same job measured again side by side (same round drift, own jitter).
        let twin: Vec<Vec<f64>> = base
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut rng = Rng::new(50 + i as u64);
                r.iter().map(|x| x * (1.0 + 0.02 * rng.normal() as f64)).collect()
            })
            .collect();
        let same = ratio_ci(&base, &twin, Pairing::Paired, 2000, 3, DEFAULT_NOISE_PCT).unwrap();
        assert_eq!(same.verdict, Verdict::NoDifference, "{same:?}");
        assert!(same.ci95_lo < 1.0 && same.ci95_hi > 1.0, "{same:?}");
        let slow: Vec<Vec<f64>> = twin.iter().map(|r| plant(r, 1.10)).collect();
        let s = ratio_ci(&base, &slow, Pairing::Paired, 2000, 3, DEFAULT_NOISE_PCT).unwrap();
        assert_eq!(s.verdict, Verdict::Slower, "{s:?}");
        assert!(s.ci95_lo > 1.0 && (s.time_ratio - 1.10).abs() < 0.02, "{s:?}");
        assert_eq!(s.round_ratios.len(), 10);
        let fast = ratio_ci(&slow, &base, Pairing::Paired, 2000, 3, DEFAULT_NOISE_PCT).unwrap();
        assert_eq!(fast.verdict, Verdict::Faster, "{fast:?}");
        assert!(fast.ci95_hi < 1.0);
        // Unpaired (two invocations): the same data give a wider interval, never a narrower one.
        let u = ratio_ci(&base, &slow, Pairing::Independent, 2000, 3, DEFAULT_NOISE_PCT).unwrap();
        assert!(u.ci95_hi - u.ci95_lo > s.ci95_hi - s.ci95_lo, "{u:?} vs {s:?}");
        assert!(u.round_ratios.is_empty());
    }

    #[test]
    fn verdict_needs_the_interval_and_the_threshold() {
        assert_eq!(verdict(1.10, 1.05, 1.15, 2.0), Verdict::Slower);
        assert_eq!(verdict(1.01, 1.005, 1.015, 2.0), Verdict::NoDifference);
        assert_eq!(verdict(1.10, 0.98, 1.2, 2.0), Verdict::NoDifference);
        assert_eq!(verdict(0.90, 0.85, 0.95, 2.0), Verdict::Faster);
        assert_eq!(verdict(0.99, 0.985, 0.995, 2.0), Verdict::NoDifference);
    }

    #[test]
    fn quality_flags_wide_intervals_and_disagreeing_rounds() {
        let ok = median_ci(&synthetic(10.0, 10, 50, 0.002, 0.01, 2), 1000, 1).unwrap();
        let q = quality(&ok, 3.0, 5.0, Some(0.1));
        assert!(!q.ci_too_wide && !q.rounds_disagree && q.flags.is_empty(), "{q:?}");
        let bad = median_ci(&synthetic(10.0, 10, 5, 0.08, 0.05, 2), 1000, 1).unwrap();
        let q = quality(&bad, 3.0, 5.0, Some(1.2));
        assert!(q.ci_too_wide && q.rounds_disagree, "{q:?}");
        assert!(
            q.flags[0].contains("wider than the stated ±3%") && q.flags[0].contains("quieter machine"),
            "{:?}",
            q.flags
        );
        assert!(q.flags[1].contains("rounds disagree") && q.flags[1].contains("1.20 per core"), "{:?}", q.flags);
        // Moderately wide: a longer budget is the advice, with the budget that would do.
        let q = quality(&MedianCi { half_width_pct: 4.5, ..bad.clone() }, 3.0, 5.0, Some(0.1));
        assert!(q.flags[0].contains("--time 15, about 3×"), "{:?}", q.flags);
    }
}
