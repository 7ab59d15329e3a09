//! Reports: `bench-results/` turned into a markdown report with figures.
//!
//! - [`load`]: reads and validates `<profile>/<stamp>_<host>.{csv,json}` (latest or chosen runs);
//! - [`metrics`]: the numbers shown (latencies with CIs, FPS, camera modes, variant comparisons);
//! - [`tables`]: markdown tables;
//! - [`plots`]: SVG + PNG figures;
//! - [`regress`]: stages against a `--baseline` run.

pub mod compare;
pub mod load;
pub mod metrics;
pub mod monitor_plot;
pub mod plots;
pub mod regress;
pub mod tables;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use load::{Run, Selection};
use metrics::{Headline, VariantRow};
use regress::Comparison;

/// What to report on and where to write it.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Results folder (`bench-results/`).
    pub results: PathBuf,
    /// Runs to include; empty = every profile's latest run.
    pub selections: Vec<Selection>,
    /// Run to compare the others with (added to the runs when not among them).
    pub baseline: Option<Selection>,
    /// Output folder (`reports/`): `<name>.md` and `figures/<name>-*.{svg,png}`.
    pub out: PathBuf,
    /// Report name.
    pub name: String,
    /// The command line that made the report (for the "how to reproduce" section).
    pub command_line: Vec<String>,
    /// Flag medians whose 95% interval is wider than ± this percent; `None` = each run's own stated
    /// width (3% for runs that stated none).
    pub ci_width_pct: Option<f64>,
}

/// A report as generated.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    pub markdown: PathBuf,
    pub figures: Vec<plots::Written>,
    /// Runs included: (profile, run id, csv path, published source).
    pub runs: Vec<(String, String, PathBuf, Option<String>)>,
    pub headline: Vec<Headline>,
    pub variants: Vec<VariantRow>,
    pub regressions: Vec<Comparison>,
    /// Stages the baseline comparison marks slower.
    pub slower: usize,
    /// Medians whose interval is over the width or whose rounds disagree, with advice.
    pub flags: Vec<metrics::Flag>,
}

/// Loads the selected runs, writes the markdown report and its figures.
pub fn generate(opts: &ReportOptions) -> Result<Generated> {
    if opts.name.trim().is_empty() || opts.name.contains(['/', '\\']) {
        bail!("report name '{}' must be non-empty and contain no path separators", opts.name);
    }
    let mut runs = load::load_runs(&opts.results, &opts.selections)?;
    let selected = runs.len();
    let baseline = match &opts.baseline {
        None => None,
        Some(sel) => {
            let b = load::load_selection(&opts.results, sel).context("--baseline")?;
            Some(match runs.iter().position(|r| r.csv_path == b.csv_path) {
                Some(i) => i,
                None => {
                    runs.push(b);
                    load::tag_duplicates(&mut runs);
                    runs.len() - 1
                }
            })
        }
    };
    let headline = metrics::headlines(&runs);
    let variants = metrics::variant_rows(&runs);
    let regressions = baseline.map(|b| regress::compare(&runs, b)).unwrap_or_default();
    let flags = metrics::flags(&runs, opts.ci_width_pct);

    let fig_dir = opts.out.join("figures");
    let stem = |what: &str| format!("{}-{what}", opts.name);
    let mut figures: Vec<(String, String, plots::Written)> = Vec::new();
    let mut add = |title: &str, caption: &str, w: plots::Written| figures.push((title.into(), caption.into(), w));
    add(
        "Headline frame rates",
        "FPS swap-only and swap + enhance per profile configuration.",
        plots::save(&plots::headline_chart(&runs, &headline), &fig_dir, &stem("headline-fps"))?,
    );
    add(
        "Latency per stage",
        "Median latency of each stage's model, grouped by stage, one bar per profile.",
        plots::save(&plots::stages_chart(&runs), &fig_dir, &stem("stages"))?,
    );
    add(
        "One frame's time",
        "Stacked model latencies of one frame, in ms and as shares.",
        plots::save(&plots::frame_stack(&runs), &fig_dir, &stem("frame-stacked"))?,
    );
    add(
        "Models before and after rewrites",
        "Original vs `_coreml` vs `_fp16` (and published configurations) per model.",
        plots::save(&plots::variants_chart(&runs, &variants), &fig_dir, &stem("rewrites"))?,
    );
    for run in &runs {
        if let Some(d) = plots::distributions(run) {
            let title = format!("Latency distributions: {}", run.label());
            add(
                &title,
                "Box plots of every measured run.",
                plots::save(&d, &fig_dir, &stem(&format!("dist-{}", run.name().replace(" @", "-"))))?,
            );
        }
    }
    for run in &runs {
        let title = format!("Device during the run: {}", run.label());
        if let Some(c) = run.report.monitor.as_ref().and_then(|m| monitor_plot::monitor_chart(&title, m)) {
            add(
                &title,
                "GPU utilisation (NVML) and CPU busy time of the busiest threads, sampled every ~100 ms.",
                plots::save(&c, &fig_dir, &stem(&format!("device-{}", run.name().replace(" @", "-"))))?,
            );
        }
    }
    if let Some(b) = baseline {
        if !regressions.is_empty() {
            add(
                "Against the baseline",
                "Ratio of each stage's median to the baseline's; colour = verdict.",
                plots::save(&plots::regress_chart(&runs, b, &regressions), &fig_dir, &stem("regress"))?,
            );
        }
    }

    let md = markdown(opts, &runs, selected, &headline, &variants, baseline, &regressions, &figures, &flags);
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
    let markdown = opts.out.join(format!("{}.md", opts.name));
    std::fs::write(&markdown, md).with_context(|| format!("cannot write {}", markdown.display()))?;
    Ok(Generated {
        markdown,
        figures: figures.into_iter().map(|(_, _, w)| w).collect(),
        runs: runs.iter().map(|r| (r.profile.clone(), r.id.clone(), r.csv_path.clone(), r.published.clone())).collect(),
        headline,
        variants,
        slower: regressions.iter().filter(|c| c.verdict == regress::Verdict::Slower).count(),
        regressions,
        flags,
    })
}

/// Path of `target` relative to the folder `from` (both as given), for markdown links.
fn relative(target: &Path, from: &Path) -> String {
    target.strip_prefix(from).unwrap_or(target).display().to_string()
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    opts: &ReportOptions,
    runs: &[Run],
    selected: usize,
    headline: &[Headline],
    variants: &[VariantRow],
    baseline: Option<usize>,
    regressions: &[Comparison],
    figures: &[(String, String, plots::Written)],
    flags: &[metrics::Flag],
) -> String {
    let width = opts.ci_width_pct;
    let mut doc = String::new();
    let _ = writeln!(doc, "# Performance report: {}\n", opts.name);
    let names: Vec<String> = runs.iter().map(|r| format!("**{}** (`{}`)", r.label(), r.id)).collect();
    let _ = writeln!(doc, "Runs: {}.\n", names.join(", "));
    let _ = writeln!(
        doc,
        "Generated by `faceperf report` from `{}`; every number below is read from the results CSV of its run, and \
         every column's provenance is listed under [Provenance](#provenance). Numbers marked {} were {} and are \
         shown for comparison only.",
        opts.results.display(),
        tables::PUBLISHED_MARK,
        load::PUBLISHED_LABEL
    );
    let replica = runs.iter().any(|r| r.report.models.iter().any(|m| m.file.to_string_lossy().contains("replica")));
    if replica {
        doc.push_str(
            "\n> Measured runs whose model files lie under `models/replica-*` ran faceperf's synthetic replicas \
             (same operators, parameter counts and FLOPs within 25% of the real models), not the published weights.\n",
        );
    }
    let fig = |doc: &mut String, title: &str| {
        for (t, caption, w) in figures.iter().filter(|(t, _, _)| t.starts_with(title)) {
            let _ = writeln!(
                doc,
                "\n![{t}]({})\n\n*{caption}* ([SVG]({}))\n",
                relative(&w.png, &opts.out),
                relative(&w.svg, &opts.out)
            );
        }
    };
    tables::section(&mut doc, "Headline", &tables::headline(runs, headline));
    fig(&mut doc, "Headline frame rates");
    tables::section(&mut doc, "Per-stage comparison", &tables::stages(runs, width));
    fig(&mut doc, "Latency per stage");
    tables::section(&mut doc, "One frame's time", &tables::frame_breakdown(runs));
    fig(&mut doc, "One frame's time");
    tables::section(&mut doc, "Models before and after rewrites", &tables::variants(runs, variants, width));
    fig(&mut doc, "Models before and after rewrites");
    tables::section(&mut doc, "Latency distributions", &tables::distributions(runs, width));
    fig(&mut doc, "Latency distributions");
    if runs.iter().any(|r| r.published.is_some()) {
        let _ = writeln!(doc, "Published runs keep no samples, so they have no distribution.");
    }
    if let Some(b) = baseline {
        tables::section(&mut doc, "Regressions against the baseline", &tables::regressions(runs, b, regressions));
        fig(&mut doc, "Against the baseline");
    }
    let warnings: Vec<String> =
        runs.iter()
            .flat_map(|r| {
                r.report.models.iter().flat_map(move |m| {
                    m.warnings.iter().map(move |w| format!("- {} `{}` ({}): {w}", r.profile, m.model, m.variant))
                })
            })
            .chain(runs.iter().flat_map(|r| {
                r.report.missing.iter().map(move |m| {
                    format!("- {}: not measured: {} {} — {}", r.profile, m.role.name(), m.variant, m.reason)
                })
            }))
            .collect();
    tables::section(&mut doc, "Measurement quality", &tables::quality(runs, flags));
    if !warnings.is_empty() {
        tables::section(&mut doc, "Measurement warnings", &(warnings.join("\n") + "\n"));
    }
    tables::section(&mut doc, "Provenance", &tables::provenance(runs));
    tables::section(&mut doc, "How to reproduce", &reproduce(opts, runs, selected, baseline));
    doc
}

/// The exact commands that recreate each measured run and this report.
fn reproduce(opts: &ReportOptions, runs: &[Run], selected: usize, baseline: Option<usize>) -> String {
    let mut s = String::new();
    for (i, run) in runs.iter().enumerate() {
        let _ = writeln!(s, "**P{}: {}**\n", i + 1, run.label());
        if let Some(src) = &run.published {
            let _ = writeln!(
                s,
                "Not reproducible with faceperf alone: these numbers are from {src} ({}). To compare your own \
                 machine of that kind with them:\n\n```sh\ncargo run --release -- bench --profile {}\n\
                 cargo run --release -- report --profiles {},{} --baseline {}\n```\n",
                load::PUBLISHED_LABEL,
                tables::nearest_profile(run),
                tables::nearest_profile(run),
                run.profile,
                run.profile
            );
            continue;
        }
        let source_commit = run.report.tool.source_commit();
        let commit = source_commit.trim_end_matches("+dirty");
        let args: Vec<String> = run.report.command_line.iter().skip(1).map(|a| shell_quote(a)).collect();
        let models = &run.report.settings.models_dir;
        let _ = writeln!(s, "```sh\ngit checkout {commit}");
        if source_commit.ends_with("+dirty") {
            let _ = writeln!(s, "# note: the run was made from a checkout with uncommitted changes");
        }
        if models.to_string_lossy().contains("replica-") {
            let scale = if models.to_string_lossy().contains("replica-tiny") { "tiny" } else { "full" };
            let _ = writeln!(s, "cargo run --release -- models synth --scale {scale}");
        }
        let _ = writeln!(s, "cargo run --release -- {}\n```\n", args.join(" "));
        let _ = writeln!(
            s,
            "on {} with ONNX Runtime {} ({} logical cores; results: `{}`).\n",
            run.report.hardware.cpu_model,
            run.report.ort.version,
            run.report.hardware.logical_cores,
            run.csv_path.display()
        );
    }
    let mut cmd = vec!["cargo run --release -- report".to_string()];
    let sel: Vec<String> = runs[..selected].iter().map(|r| format!("{}/{}", r.profile, r.id)).collect();
    cmd.push(format!("--profiles {}", sel.join(",")));
    if let Some(b) = baseline {
        cmd.push(format!("--baseline {}/{}", runs[b].profile, runs[b].id));
    }
    cmd.push(format!("--results {}", opts.results.display()));
    cmd.push(format!("--out {}", opts.out.display()));
    cmd.push(format!("--name {}", opts.name));
    let _ = writeln!(s, "**This report** (exact runs):\n\n```sh\n{}\n```", cmd.join(" "));
    s
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
