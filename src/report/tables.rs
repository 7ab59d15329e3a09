//! Markdown tables of a report. Every number printed here comes straight from the results CSV (or
//! from [`super::metrics`], which derives it from the CSV), formatted by [`num`].

use std::fmt::Write as _;

use super::load::{Run, PUBLISHED_LABEL};
use super::metrics::{self, Headline, Kind, Value, VariantRow};
use super::regress::Comparison;
use crate::models::Role;

/// Marker put after every number published elsewhere; explained under each table.
pub const PUBLISHED_MARK: &str = "†";
/// Marks a latency whose bound outputs differed from a plain run (see [`metrics::unverified`]).
pub const UNVERIFIED_MARK: &str = "‡";
/// Marks a median whose 95% interval is wider than its run's width limit (see [`metrics::too_wide`]).
pub const WIDE_MARK: &str = "⚠";

fn wide_note(any: bool) -> String {
    if any {
        format!(
            "{WIDE_MARK} The 95% interval is wider than the run's stated width (± percent of the median): see \
             [Measurement quality](#measurement-quality) for what would narrow it.\n"
        )
    } else {
        String::new()
    }
}

/// `value(v)` with [`WIDE_MARK`] when its interval is over the run's width limit; sets `any`.
fn value_checked(run: &Run, v: &Value, width: Option<f64>, any: &mut bool) -> String {
    if metrics::too_wide(run, v, width) {
        *any = true;
        format!("{} {WIDE_MARK}", value(v))
    } else {
        value(v)
    }
}

fn unverified_note(any: bool) -> &'static str {
    if any {
        "‡ The run's own check found these bound outputs different from a plain run on the same inputs \
         (`binding.check` in the JSON): the time is of a computation that was not verified.\n"
    } else {
        ""
    }
}

/// A number for a table: integers as such, otherwise 1 decimal from 100, 2 from 1, else 3.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    if x == x.round() && x.abs() < 1e9 {
        return format!("{}", x as i64);
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A value with its interval and origin: `12.34 [12.10, 12.60]`, `≈ 2.45 [2.30, 2.61]`, `> 20 †`.
pub fn value(v: &Value) -> String {
    let ci = match (v.lo, v.hi) {
        (Some(lo), Some(hi)) => format!(" [{}, {}]", num(lo), num(hi)),
        _ => String::new(),
    };
    match v.kind {
        Kind::Measured => format!("{}{ci}", num(v.value)),
        Kind::Estimated => format!("≈ {}{ci}", num(v.value)),
        Kind::Published => format!("{}{ci} {PUBLISHED_MARK}", num(v.value)),
        Kind::AtLeast => format!("> {} {PUBLISHED_MARK}", num(v.value)),
        Kind::AtMost => format!("< {} {PUBLISHED_MARK}", num(v.value)),
    }
}

fn opt(v: Option<&Value>) -> String {
    v.map(value).unwrap_or_else(|| "—".into())
}

/// The note under a table that holds published numbers.
pub fn published_note(runs: &[Run]) -> String {
    let sources: Vec<String> =
        runs.iter().filter_map(|r| r.published.as_ref().map(|s| format!("{} ({s})", r.profile))).collect();
    if sources.is_empty() {
        return String::new();
    }
    format!("{PUBLISHED_MARK} {PUBLISHED_LABEL}: {}.\n", sources.join("; "))
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn header(cells: &[&str]) -> String {
    let mut s = row(&cells.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    s.push_str(&row(&cells.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
    s
}

/// Anchor of a run's provenance column.
pub fn prov_link(_runs: &[Run], i: usize) -> String {
    format!("[P{}](#provenance)", i + 1)
}

/// Headline: FPS swap-only and swap + enhance, and the camera mode, per profile and configuration.
pub fn headline(runs: &[Run], rows: &[Headline]) -> String {
    let mut s = header(&[
        "Profile",
        "Configuration",
        "Swap only (FPS)",
        "Swap + enhance (FPS)",
        "Camera mode",
        "Basis",
        "Provenance",
    ]);
    for h in rows {
        let run = &runs[h.run];
        let fps = |f: &Option<metrics::Fps>| f.as_ref().map(|f| value(&f.value)).unwrap_or_else(|| "—".into());
        let mut basis: Vec<String> = Vec::new();
        for f in [&h.swap, &h.swap_enhance].into_iter().flatten() {
            if !basis.contains(&f.basis) {
                basis.push(f.basis.clone());
            }
        }
        let camera = h.camera.as_ref().map(|c| format!("{} ({})", c.text(), c.source)).unwrap_or_else(|| "—".into());
        s.push_str(&row(&[
            run.label(),
            h.config.clone(),
            fps(&h.swap),
            fps(&h.swap_enhance),
            camera,
            basis.join("; "),
            prov_link(runs, h.run),
        ]));
    }
    s.push('\n');
    s.push_str(
        "FPS in frames per second; `[lo, hi]` is the 95% interval (for estimates, the conservative interval from \
         summing the models' median CIs). `≈` marks an estimate from model latencies, 1000 / (sum of the medians of one \
         frame's models, run one after another): detector + landmarks + recognizer + swapper for swap only, plus the \
         enhancer for swap + enhance. It leaves out capture, pre/post-processing and paste-back, so a real pipeline \
         is slower; a measured pipeline FPS replaces it once the results have `pipeline:swap` rows.\n",
    );
    s.push_str(&published_note(runs));
    s
}

/// Per-stage latency (each role's model in the variant its profile runs), one column per run; medians
/// whose interval is wider than `width` (else the run's own width) carry [`WIDE_MARK`].
pub fn stages(runs: &[Run], width: Option<f64>) -> String {
    let mut cols: Vec<String> = vec!["Stage (model, variant)".into()];
    cols.extend(runs.iter().enumerate().map(|(i, r)| format!("{} {}", r.label(), prov_link(runs, i))));
    let mut s = row(&cols);
    s.push_str(&row(&cols.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
    let mut any_unverified = false;
    let mut any_wide = false;
    for role in Role::ALL {
        let cells: Vec<Option<(String, Value, bool)>> =
            runs.iter().map(|r| metrics::stage_latency_checked(r, role)).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let mut line = vec![role.name().to_string()];
        for (run, c) in runs.iter().zip(&cells) {
            line.push(match c {
                Some((model, v, bad)) => {
                    any_unverified |= bad;
                    let mark = if *bad { format!(" {UNVERIFIED_MARK}") } else { String::new() };
                    let shown = value_checked(run, v, width, &mut any_wide);
                    format!("{shown}{mark} ({model}, {})", metrics::role_variant(run, role))
                }
                None => "—".into(),
            });
        }
        s.push_str(&row(&line));
    }
    s.push_str(
        "\nMedian latency per run in ms, `[lo, hi]` = 95% confidence interval of the median (runs with rounds: \
         hierarchical bootstrap over the rounds; older runs: bootstrap over one session's samples).\n",
    );
    s.push_str(unverified_note(any_unverified));
    s.push_str(&wide_note(any_wide));
    s.push_str(&published_note(runs));
    s
}

/// One frame's time split by stage (the stacked bar's numbers).
pub fn frame_breakdown(runs: &[Run]) -> String {
    let mut s = header(&["Run", "Stage", "ms", "Share of frame"]);
    let mut any_unverified = false;
    for (i, run) in runs.iter().enumerate() {
        let parts: Vec<(Role, Value, bool)> = Role::ALL
            .iter()
            .filter_map(|&r| metrics::stage_latency_checked(run, r).map(|(_, v, bad)| (r, v, bad)))
            .collect();
        let total: f64 = parts.iter().map(|(_, v, _)| v.value).sum();
        if total <= 0.0 {
            continue;
        }
        for (role, v, bad) in &parts {
            any_unverified |= bad;
            s.push_str(&row(&[
                format!("{} {}", run.label(), prov_link(runs, i)),
                role.name().into(),
                if *bad { format!("{} {UNVERIFIED_MARK}", value(v)) } else { value(v) },
                format!("{:.1}%", 100.0 * v.value / total),
            ]));
        }
        let missing: Vec<&str> =
            Role::ALL.iter().filter(|r| !parts.iter().any(|(p, _, _)| p == *r)).map(|r| r.name()).collect();
        let note = if missing.is_empty() { String::new() } else { format!(" (without {})", missing.join(", ")) };
        s.push_str(&row(&[run.label(), format!("**frame{note}**"), format!("**{}**", num(total)), "100%".into()]));
    }
    s.push('\n');
    s.push_str(unverified_note(any_unverified));
    s.push_str(&published_note(runs));
    s
}

/// `vs original` cell: the ratio, and with the run's paired-round comparison its interval and verdict.
fn vs_original(r: &VariantRow) -> String {
    let Some(x) = r.vs_original else { return "—".into() };
    match (&r.vs_original_ci, r.verdict) {
        (Some((lo, hi)), Some(v)) => format!("{x:.3}× [{lo:.3}, {hi:.3}] {}", v.text()),
        _ => format!("{x:.2}×"),
    }
}

/// Per-model variants before and after rewrites: latency, node counts, CoreML partitions, hashes.
pub fn variants(runs: &[Run], rows: &[VariantRow], width: Option<f64>) -> String {
    let mut s = header(&[
        "Run",
        "Model",
        "Variant",
        "Latency (ms)",
        "vs original",
        "Graph nodes",
        "Nodes run, by EP",
        "CoreML partitions",
        "sha256",
    ]);
    let mut any_wide = false;
    for r in rows {
        let run = &runs[r.run];
        let nodes = if r.nodes_by_ep.is_empty() {
            "—".into()
        } else {
            r.nodes_by_ep
                .iter()
                .map(|(ep, n)| format!("{}: {n}", ep.trim_end_matches("ExecutionProvider")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&row(&[
            format!("{} {}", run.label(), prov_link(runs, r.run)),
            format!("`{}`", r.model),
            match &r.quality {
                Some(q) => format!("{} (approximate: {q})", r.variant),
                None => r.variant.clone(),
            },
            r.latency.as_ref().map(|v| value_checked(run, v, width, &mut any_wide)).unwrap_or_else(|| "—".into()),
            vs_original(r),
            r.graph_nodes.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
            nodes,
            opt(r.coreml_partitions.as_ref()),
            r.sha256.as_deref().map(|h| format!("`{}`", &h[..h.len().min(12)])).unwrap_or_else(|| "—".into()),
        ]));
    }
    s.push_str(
        "\n`vs original` = this variant's median / the original's median in the same run (below 1 is faster); \
         runs with rounds add its 95% interval from paired rounds and the verdict (faster / slower only when the \
         interval excludes 1 and the ratio is beyond the run's noise threshold). Graph nodes are counted in the model file when it is still on disk with the recorded sha256; nodes run \
         come from ORT's profile of the run. CoreML partitions are published figures or the partition planner's \
         estimate; `—` where neither exists.\n",
    );
    s.push_str(&wide_note(any_wide));
    s.push_str(&published_note(runs));
    s
}

/// Distribution statistics of every measured model (the box plots' numbers), with the median's
/// interval, its half-width (marked when over the width) and the rounds.
pub fn distributions(runs: &[Run], width: Option<f64>) -> String {
    let mut s = header(&[
        "Run",
        "Model",
        "Variant",
        "n",
        "min",
        "median",
        "mean",
        "p90",
        "p99",
        "max",
        "stddev",
        "outliers",
        "95% CI of median",
        "CI ±",
        "rounds",
    ]);
    let mut any_wide = false;
    for (i, run) in runs.iter().enumerate().filter(|(_, r)| r.published.is_none()) {
        let mut seen: Vec<(String, String)> = Vec::new();
        for r in run.rows.iter().filter(|r| r.stage == "run" && r.statistic == "n") {
            let key = (r.model.clone(), r.variant.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let get = |st: &str| run.value(&r.model, &r.variant, "run", st).map(num).unwrap_or_else(|| "—".into());
            let mut cells =
                vec![format!("{} {}", run.label(), prov_link(runs, i)), format!("`{}`", r.model), r.variant.clone()];
            for st in ["n", "min", "median", "mean", "p90", "p99", "max", "stddev", "outliers"] {
                cells.push(get(st));
            }
            let lat = metrics::latency(run, &r.model, &r.variant, "run");
            cells.push(match lat.and_then(|v| v.lo.zip(v.hi)) {
                Some((lo, hi)) => format!("[{}, {}]", num(lo), num(hi)),
                None => "—".into(),
            });
            cells.push(match lat.as_ref().and_then(|v| metrics::half_width_pct(v).map(|w| (v, w))) {
                Some((v, w)) if metrics::too_wide(run, v, width) => {
                    any_wide = true;
                    format!("{w:.1}% {WIDE_MARK}")
                }
                Some((_, w)) => format!("{w:.1}%"),
                None => "—".into(),
            });
            cells.push(get("rounds"));
            s.push_str(&row(&cells));
        }
    }
    s.push_str(
        "\nLatencies in ms over the measured (warm) runs; outliers by the 1.5×IQR rule. `CI ±` is the interval's \
         larger half-width in percent of the median; `rounds` is `—` for runs written before rounds.\n",
    );
    s.push_str(&wide_note(any_wide));
    s
}

/// The regression table: stages against the baseline run.
pub fn regressions(runs: &[Run], baseline: usize, cmp: &[Comparison]) -> String {
    let mut s = format!("Baseline: **{}** ({}).\n\n", runs[baseline].label(), runs[baseline].id);
    if cmp.is_empty() {
        s.push_str("No stage of the other runs matches a baseline stage (same model, variant and stage).\n");
        return s;
    }
    s.push_str(&header(&["Run", "Model", "Variant", "Stage", "Baseline (ms)", "Run (ms)", "Ratio", "Verdict"]));
    for c in cmp {
        s.push_str(&row(&[
            runs[c.run].label(),
            format!("`{}`", c.model),
            c.variant.clone(),
            c.stage.clone(),
            value(&c.baseline),
            value(&c.current),
            match c.ratio_ci95 {
                Some((lo, hi)) => format!("{:.3}× [{lo:.3}, {hi:.3}]", c.ratio),
                None => format!("{:.2}×", c.ratio),
            },
            match c.verdict {
                crate::report::regress::Verdict::Slower => "**slower** ▲".into(),
                crate::report::regress::Verdict::Faster => "faster ▼".into(),
                v => v.text().to_string(),
            },
        ]));
    }
    let noise = runs[baseline].report.settings.noise_threshold_pct;
    let _ = writeln!(
        s,
        "\nRatio = run median / baseline median with its 95% interval from a hierarchical bootstrap over each run's \
         rounds (two invocations' rounds were not measured side by side, so they are resampled independently, not \
         paired). **slower** ▲ / faster ▼: the interval excludes 1 and the ratio is beyond the noise threshold of \
         ±{noise}%; otherwise no difference beyond noise. Stages without samples (pipeline stages, published \
         numbers, which count as their own interval) show no ratio interval and are slower only when the medians' \
         intervals do not overlap."
    );
    let loads: Vec<String> = std::iter::once(baseline)
        .chain(
            runs.iter().enumerate().filter(|(i, _)| *i != baseline && cmp.iter().any(|c| c.run == *i)).map(|(i, _)| i),
        )
        .filter_map(|i| {
            let r = &runs[i].report;
            let (a, b) = (r.load_average_start?, r.load_average_end?);
            Some(format!("{} {:.2} → {:.2} on {} logical cores", runs[i].name(), a[0], b[0], r.hardware.logical_cores))
        })
        .collect();
    if !loads.is_empty() {
        let _ = writeln!(
            s,
            "Machine load (1-minute load average, start → end of each run): {}. A verdict says the two medians \
             differ beyond their intervals, not why: on a loaded machine, other processes can account for it.",
            loads.join("; ")
        );
    }
    s.push_str(&published_note(runs));
    s
}

/// The measurement-quality section: every flagged median with its advice, machine state changes,
/// and runs whose intervals predate rounds.
pub fn quality(runs: &[Run], flags: &[metrics::Flag]) -> String {
    let mut s = String::new();
    if flags.is_empty() {
        s.push_str(
            "No measured median has an interval wider than its run's stated width, and no run's rounds disagree.\n",
        );
    } else {
        s.push_str(&header(&["Run", "Model", "Variant", "CI ±", "Width limit", "Problem and advice"]));
        for f in flags {
            s.push_str(&row(&[
                format!("{} {}", runs[f.run].label(), prov_link(runs, f.run)),
                format!("`{}`", f.model),
                f.variant.clone(),
                if f.ci_too_wide {
                    format!("{:.1}% {WIDE_MARK}", f.half_width_pct)
                } else {
                    format!("{:.1}%", f.half_width_pct)
                },
                format!("±{}%", f.limit_pct),
                cell(&f.advice.join("; ")),
            ]));
        }
    }
    for r in runs.iter().filter(|r| r.published.is_none()) {
        if !r.report.machine_changes.is_empty() {
            let _ = writeln!(
                s,
                "\n- {}: the machine's state changed during the run: {}.",
                r.label(),
                r.report.machine_changes.join("; ")
            );
        }
        if r.report.settings.rounds == 0 {
            let _ = writeln!(
                s,
                "\n- {}: written before rounds: its intervals cover one session's samples, so a rerun's median can fall \
                 outside them; rerun `faceperf bench` for intervals over rounds.",
                r.label()
            );
        }
    }
    s
}

/// Provenance of every run (one column each).
pub fn provenance(runs: &[Run]) -> String {
    let mut cols: Vec<String> = vec!["".into()];
    cols.extend(runs.iter().enumerate().map(|(i, r)| format!("P{}: {}", i + 1, r.label())));
    let mut s = row(&cols);
    s.push_str(&row(&cols.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
    let field = |name: &str, f: &dyn Fn(&Run) -> String| {
        let mut cells = vec![format!("**{name}**")];
        cells.extend(runs.iter().map(|r| cell(&f(r))));
        row(&cells)
    };
    let unknown = |s: &str| if s.trim().is_empty() { "not recorded".to_string() } else { s.to_string() };
    s.push_str(&field("source", &|r| match &r.published {
        Some(src) => format!("{src} — {PUBLISHED_LABEL}"),
        None => "measured with faceperf".into(),
    }));
    s.push_str(&field("results files", &|r| format!("`{}` + `.json`", r.csv_path.display())));
    s.push_str(&field("run", &|r| format!("{} → {}", unknown(&r.report.started_utc), unknown(&r.report.finished_utc))));
    s.push_str(&field("hardware", &|r| {
        let h = &r.report.hardware;
        let mut parts = vec![unknown(&h.cpu_model)];
        if h.logical_cores > 0 {
            parts.push(format!(
                "{} logical / {} physical cores",
                h.logical_cores,
                h.physical_cores.map(|c| c.to_string()).unwrap_or("?".into())
            ));
        }
        if h.memory_bytes > 0 {
            parts.push(format!("{:.1} GiB", h.memory_bytes as f64 / (1u64 << 30) as f64));
        }
        parts.extend(h.gpus.iter().cloned());
        parts.join("; ")
    }));
    s.push_str(&field("OS", &|r| {
        let h = &r.report.hardware;
        let parts = [h.os.as_str(), h.os_version.as_str(), h.kernel.as_str()];
        let os: Vec<&str> = parts.into_iter().filter(|p| !p.trim().is_empty()).collect();
        format!("{} ({}), host {}", os.join(" "), h.arch, unknown(&h.hostname))
    }));
    s.push_str(&field("ONNX Runtime", &|r| {
        let o = &r.report.ort;
        if r.published.is_some() {
            return format!("{}; providers {}", unknown(&o.version), o.providers.join(", "));
        }
        format!(
            "{} from `{}` ({}); providers {}",
            unknown(&o.version),
            o.library.display(),
            unknown(&o.source),
            o.providers.join(", ")
        )
    }));
    s.push_str(&field("EPs and options", &|r| match r.published {
        Some(_) => format!(
            "not restated (see the source); nearest faceperf profile `{}`: {}",
            nearest_profile(r),
            ep_summary(r)
        ),
        None => ep_summary(r),
    }));
    s.push_str(&field("model sha256", &|r| {
        if r.report.models.is_empty() {
            return "not published".into();
        }
        r.report
            .models
            .iter()
            .map(|m| format!("{}: `{}`", m.model, &m.sha256[..m.sha256.len().min(16)]))
            .collect::<Vec<_>>()
            .join("<br>")
    }));
    s.push_str(&field("tool", &|r| {
        let t = &r.report.tool;
        match t.source_commit() {
            c if c == t.git_commit => format!("{} {} @ `{}`", t.name, t.version, c),
            c => format!("{} {} built from `{}` (run in a checkout at `{}`)", t.name, t.version, c, t.git_commit),
        }
    }));
    s.push_str(&field("profile", &|r| format!("{} ({})", r.report.profile.name, r.report.profile.source)));
    s.push_str(&field("settings", &|r| {
        let st = &r.report.settings;
        if r.published.is_some() {
            return "not published".into();
        }
        format!(
            "warm-up {:?}, ≤{} runs (≥{}) in {} s, bootstrap {}×, inputs seed {:#x}",
            st.warmup,
            st.runs,
            st.min_runs,
            num(st.time_budget_s),
            st.bootstrap_resamples,
            st.input_seed
        )
    }));
    s.push_str(&field("rounds and intervals", &|r| {
        let st = &r.report.settings;
        match (r.published.is_some(), st.rounds) {
            (true, _) => "not published".into(),
            (false, 0) => "one session per model (before rounds); bootstrap over its samples".into(),
            (false, k) => format!(
                "{k} rounds; {}; {}; CI width flagged above ±{}%, noise threshold ±{}%",
                st.round_order, st.ci_method, st.ci_width_limit_pct, st.noise_threshold_pct
            ),
        }
    }));
    s.push_str(&field("machine state (before → after)", &|r| match (&r.report.machine_start, &r.report.machine_end) {
        (Some(a), Some(b)) => format!("{} → {}", a.summary(), b.summary()),
        _ => "not recorded".into(),
    }));
    s.push_str(&field("load average (start → end)", &|r| {
        let f = |l: Option<[f64; 3]>| l.map(|l| format!("{:.2}", l[0])).unwrap_or("?".into());
        if r.published.is_some() {
            return "not published".into();
        }
        format!("{} → {}", f(r.report.load_average_start), f(r.report.load_average_end))
    }));
    s.push_str(&field("notes", &|r| {
        if r.report.notes.is_empty() {
            "—".into()
        } else {
            r.report.notes.join("<br>")
        }
    }));
    s
}

/// The faceperf profile a published run corresponds to (`m3max-published` → `m3max`).
pub fn nearest_profile(run: &Run) -> &str {
    run.profile.strip_suffix("-published").unwrap_or(&run.profile)
}

/// A markdown table cell: no pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

/// EPs per role with their options, compacted (roles with the same setting are merged).
pub fn ep_summary(run: &Run) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for role in Role::ALL {
        let rc = run.report.profile.effective.roles.get(role);
        let eps = serde_json::to_string(&rc.providers).unwrap_or_default();
        let threads = rc.intra_threads.map(|t| format!(", {t} threads")).unwrap_or_default();
        let desc = format!(
            "{eps} ({} variant, opt {}{}{threads})",
            rc.variant,
            rc.optimization,
            if rc.io_binding { ", IOBinding" } else { "" }
        );
        match groups.iter_mut().find(|(d, _)| *d == desc) {
            Some((_, roles)) => roles.push(role.name()),
            None => groups.push((desc, vec![role.name()])),
        }
    }
    let mut out: Vec<String> = groups.into_iter().map(|(d, roles)| format!("{}: `{d}`", roles.join(", "))).collect();
    for f in &run.report.fallbacks {
        out.push(format!("{}: fell back to {} ({} missing)", f.role.name(), f.used, f.missing.join(", ")));
    }
    out.join("<br>")
}

/// Appends a section (`## title`, text).
pub fn section(doc: &mut String, title: &str, body: &str) {
    let _ = write!(doc, "\n## {title}\n\n{body}");
    if !body.ends_with('\n') {
        doc.push('\n');
    }
}
