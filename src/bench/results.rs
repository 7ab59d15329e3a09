//! The results schema: a JSON report with full provenance and a tidy CSV (one row per
//! model/variant/stage and statistic), written to `bench-results/<profile>/<UTC stamp>_<host>.{csv,json}`.
//!
//! The report generator reads these files: fields are only ever added, and any change that would
//! break a reader bumps [`SCHEMA_VERSION`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::machine::MachineState;
use super::opprof::OpProfile;
use super::rounds::{self, MedianCi, Pairing, Quality, RatioCi, Verdict};
use super::stats::Summary;
use crate::models::Role;
use crate::profile::{Fallback, Profile, Variant, Warmup};
use crate::runtime::EpConfig;
use crate::util::hw::Hardware;

/// Version of the CSV columns and the JSON layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 8] = ["profile", "model", "role", "variant", "stage", "statistic", "value", "unit"];

/// The tool that produced a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    /// `git rev-parse HEAD` of the source checkout, `+dirty` when it has uncommitted changes, else `unknown`.
    pub git_commit: String,
    /// The commit the binary was built from ([`crate::BUILD_COMMIT`]); differs from `git_commit`
    /// when a binary runs in another checkout (empty in results written before it was recorded).
    #[serde(default)]
    pub build_commit: String,
}

impl ToolInfo {
    /// The commit that produced the results: the binary's build commit when recorded, else the
    /// checkout's.
    pub fn source_commit(&self) -> &str {
        match self.build_commit.as_str() {
            "" | "unknown" => &self.git_commit,
            b => b,
        }
    }

    /// This binary, run in the checkout at `git_dir`.
    pub fn current(git_dir: &Path) -> ToolInfo {
        ToolInfo {
            name: "faceperf".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit(git_dir),
            build_commit: crate::BUILD_COMMIT.into(),
        }
    }
}

/// The ONNX Runtime that ran the models.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrtInfo {
    pub version: String,
    pub library: PathBuf,
    /// Discovery step that found the library.
    pub source: String,
    /// Providers the library offers.
    pub providers: Vec<String>,
}

impl OrtInfo {
    /// The runtime `rt` as loaded.
    pub fn of(rt: &crate::runtime::Runtime) -> OrtInfo {
        OrtInfo {
            version: rt.version.clone(),
            library: rt.library.clone(),
            source: rt.source.clone(),
            providers: rt.providers.clone(),
        }
    }
}

/// The profile as used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileInfo {
    pub name: String,
    /// `builtin:<name>` or a file path.
    pub source: String,
    /// The profile's TOML text, verbatim.
    pub content: String,
    /// The profile after `--fallback cpu` and command-line overrides.
    pub effective: Profile,
}

/// Benchmark settings in effect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub models_dir: PathBuf,
    pub warmup: Warmup,
    pub runs: usize,
    pub min_runs: usize,
    pub time_budget_s: f64,
    pub op_profile_runs: usize,
    pub top_n: usize,
    /// Seed of the generated inputs.
    pub input_seed: u64,
    /// Image the face crops come from, with the face box (x, y, side).
    pub input_image: PathBuf,
    pub input_face_box: (u32, u32, u32),
    /// Bootstrap resamples and seed of the median's confidence interval.
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    /// Rounds: each runs every job once with a fresh session for `1/rounds` of the budget (0 in
    /// results written before rounds).
    #[serde(default)]
    pub rounds: usize,
    /// The order of the jobs within the rounds, in words.
    #[serde(default)]
    pub round_order: String,
    /// Each round creates a fresh session per job (and why), in words.
    #[serde(default)]
    pub sessions: String,
    /// How medians' confidence intervals are computed, in words.
    #[serde(default)]
    pub ci_method: String,
    /// Intervals wider than ± this percent of the median are flagged.
    #[serde(default = "default_ci_width")]
    pub ci_width_limit_pct: f64,
    /// Ratios within ± this percent of 1 are "no difference beyond noise".
    #[serde(default = "default_noise")]
    pub noise_threshold_pct: f64,
}

fn default_ci_width() -> f64 {
    rounds::DEFAULT_CI_WIDTH_PCT
}

fn default_noise() -> f64 {
    rounds::DEFAULT_NOISE_PCT
}

/// One round of one job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoundResult {
    /// Round number, from 0.
    pub round: usize,
    /// This job's place in the round's order (0 = first).
    pub position: usize,
    /// The round's fresh session: creation, first run, warm-up runs.
    pub session_create_ms: f64,
    pub first_run_ms: f64,
    pub warmup_runs: usize,
    /// Measured runs of the round (the next `n` entries of `samples_ms`) and their statistics, ms.
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// When the round's measured runs began, seconds after the first round began.
    pub started_s: f64,
    /// 1-minute load average when the round began.
    pub load_1m: Option<f64>,
}

/// One model input as fed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputInfo {
    pub name: String,
    pub dtype: String,
    pub dims: Vec<usize>,
}

/// Measurements of one model variant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelResult {
    /// File stem, e.g. `inswapper_128` or `inswapper_128_fp16`.
    pub model: String,
    pub role: Role,
    pub variant: Variant,
    /// How a rewritten variant was obtained (absent for originals).
    #[serde(default)]
    pub variant_origin: Option<VariantOrigin>,
    /// A configuration that differs from the profile's, e.g. `no-cuda-graph` for the graph-free twin
    /// of a CUDA-graph model (its `model` name ends in `@no-cuda-graph`).
    #[serde(default)]
    pub config: Option<String>,
    pub file: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Execution providers and their options, in priority order.
    pub providers: Vec<EpConfig>,
    pub intra_threads: usize,
    pub optimization: String,
    pub io_binding: bool,
    /// The options each provider was handed, by ORT's option names (same order as `providers`).
    #[serde(default)]
    pub ort_provider_options: Vec<ProviderOptions>,
    /// How the IOBinding path ran (present when the role binds its inputs and outputs).
    #[serde(default)]
    pub binding: Option<BindingInfo>,
    /// True when the profile's providers were absent and the CPU provider ran instead.
    pub fallback: bool,
    pub inputs: Vec<InputInfo>,
    pub session_create_ms: f64,
    pub first_run_ms: f64,
    pub warmup_runs: usize,
    pub warmup_ms: f64,
    /// Statistics of the measured (warm) runs, ms.
    pub run_ms: Summary,
    /// Every measured run, ms, in order (round after round).
    pub samples_ms: Vec<f64>,
    pub warnings: Vec<String>,
    pub op_profile: Option<OpProfile>,
    /// Per-round figures, in round order (empty in results written before rounds).
    #[serde(default)]
    pub rounds: Vec<RoundResult>,
    /// The median over the rounds with its confidence and rerun intervals (`run_ms.median_ci95_*`
    /// hold the same interval).
    #[serde(default)]
    pub median_ci: Option<MedianCi>,
    /// Interval width against the stated width, rounds that disagree, and advice.
    #[serde(default)]
    pub quality: Option<Quality>,
    /// TEST ONLY (`--test-ab`): every sample of this job was multiplied by this factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_slowdown: Option<f64>,
}

impl ModelResult {
    /// The samples of each round (one round of everything for results written before rounds).
    pub fn round_samples(&self) -> Vec<Vec<f64>> {
        let sizes: Vec<usize> = self.rounds.iter().map(|r| r.n).collect();
        rounds::split_rounds(&self.samples_ms, &sizes)
    }
}

/// Where a variant file came from: `faceperf optimize`'s cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantOrigin {
    /// Made during this run, or reused from the cache.
    pub action: crate::optimize::Action,
    /// Recipe target (`coreml`, `fp16`).
    pub recipe: String,
    /// The recipe key recorded in the variant's sidecar.
    pub recipe_hash: String,
    /// The sidecar with the variant's equivalence report.
    pub sidecar: PathBuf,
    /// For variants checked against a quality bar (`int8`): the measured figures against the
    /// float32 model (PSNR, cosine, detector pixels), shown beside the speed. Absent for
    /// equivalent variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
}

/// One execution provider's options as handed to ORT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProviderOptions {
    /// ORT's provider name, e.g. `CUDAExecutionProvider`.
    pub provider: String,
    /// (ORT option name, value) pairs.
    pub options: Vec<(String, String)>,
}

/// How a bound (IOBinding) model ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BindingInfo {
    /// Where the bound buffers live: `cpu` or `cuda:<id>`.
    pub device: String,
    /// The profile asked for CUDA graphs.
    pub cuda_graph_requested: bool,
    /// CUDA graphs were captured and replayed (false after a capture failure).
    pub cuda_graph_active: bool,
    /// Why graph capture failed and the model ran without graphs, when it did.
    pub graph_fallback: Option<String>,
    /// Binding set-up after session creation: probe run, buffers, graph capture and replay check, ms.
    pub setup_ms: f64,
    /// What one timed run covers.
    pub timed: String,
    /// Outputs of the bound path against a plain (unbound, graph-free) session on the same inputs.
    pub check: Option<OutputCheck>,
}

/// Bound outputs compared with plain-run outputs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputCheck {
    /// Outputs compared.
    pub outputs: usize,
    /// Largest absolute element difference over all outputs (0 = identical); absent when the
    /// comparison failed or met non-finite values.
    pub max_abs_diff: Option<f64>,
    /// Every output has the same shape and bit-identical values.
    pub identical: bool,
    /// Set when the comparison itself could not run.
    pub error: Option<String>,
}

/// A speed-up between two measured models of one role from the same run: the baseline's median
/// over the candidate's (> 1 = the candidate is faster).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub role: Role,
    /// What differs: `variant` (original → rewritten variant) or `cuda_graph` (without → with).
    pub kind: String,
    /// Model names as in `models[].model`.
    pub baseline: String,
    pub candidate: String,
    /// baseline median / candidate median.
    pub speedup: f64,
    /// The time ratio (candidate / baseline) with its 95% interval from paired rounds, the verdict and
    /// the noise threshold (absent in results written before rounds).
    #[serde(default)]
    pub ci: Option<RatioCi>,
}

impl Comparison {
    /// The speed-up's 95% interval (the inverse of the time ratio's).
    pub fn speedup_ci95(&self) -> Option<(f64, f64)> {
        self.ci.as_ref().map(|c| (1.0 / c.ci95_hi, 1.0 / c.ci95_lo))
    }

    /// The verdict on the candidate, when an interval was computed.
    pub fn verdict(&self) -> Option<Verdict> {
        self.ci.as_ref().map(|c| c.verdict)
    }
}

/// A variant the run wanted but could not measure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MissingModel {
    pub role: Role,
    pub variant: Variant,
    pub path: PathBuf,
    pub reason: String,
}

/// The live pipeline in measure mode: per-stage timings on a fixed synthetic clip.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PipelineResult {
    /// The clip or source measured.
    pub source: String,
    pub frames: usize,
    /// Stage name and its statistics over the frames it ran in, ms.
    pub stages: Vec<(String, Summary)>,
    /// Each stage's busy time over the run's wall time, same order as `stages`.
    #[serde(default)]
    pub stage_share: Vec<f64>,
    /// Frames per second delivered to the sink.
    #[serde(default)]
    pub fps: f64,
    /// Capture-to-sink latency, ms.
    #[serde(default)]
    pub latency_ms: Option<Summary>,
    /// Wall time of the measured frames, s.
    #[serde(default)]
    pub wall_s: f64,
    /// Frames the source produced that were dropped.
    #[serde(default)]
    pub dropped: u64,
    /// Settings the run used.
    #[serde(default)]
    pub detection_interval: usize,
    #[serde(default)]
    pub enhancer_interval: usize,
    #[serde(default)]
    pub many_faces: bool,
    /// Model file per role, as the pipeline loaded them.
    #[serde(default)]
    pub models: Vec<(String, String)>,
    /// Share of the pipeline's own (non-inference) work in its processing time.
    #[serde(default)]
    pub non_inference_share: f64,
    /// Where the stages' faces came from: `detector`, or `source` (the synthetic source's placement,
    /// with a replica detector run for its cost); empty in results written before it was recorded.
    #[serde(default)]
    pub faces_from: String,
    /// Frames in which no face was found or given (`None` in older results).
    #[serde(default)]
    pub frames_without_face: Option<usize>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A whole benchmark run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    pub schema_version: u32,
    pub tool: ToolInfo,
    /// argv as given.
    pub command_line: Vec<String>,
    /// RFC 3339 UTC.
    pub started_utc: String,
    pub finished_utc: String,
    pub hardware: Hardware,
    pub ort: OrtInfo,
    pub profile: ProfileInfo,
    /// Roles moved to the CPU provider by `--fallback cpu`.
    pub fallbacks: Vec<Fallback>,
    pub settings: Settings,
    pub models: Vec<ModelResult>,
    pub missing: Vec<MissingModel>,
    /// Speed-ups of variants over originals and of CUDA graphs over none, per role.
    #[serde(default)]
    pub comparisons: Vec<Comparison>,
    pub pipeline: Option<PipelineResult>,
    /// Caveats that apply to the whole run (e.g. a loaded machine).
    pub notes: Vec<String>,
    /// 1-, 5- and 15-minute load averages when the run started and ended (absent where the OS has none).
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
    /// The machine's state before the first and after the last measured run.
    #[serde(default)]
    pub machine_start: Option<MachineState>,
    #[serde(default)]
    pub machine_end: Option<MachineState>,
    /// What changed between the two beyond the thresholds of [`super::machine::changes`]; empty when
    /// nothing did.
    #[serde(default)]
    pub machine_changes: Vec<String>,
    /// GPU readings and per-thread CPU busy time sampled every ~100 ms during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<crate::runtime::gpu_monitor::MonitorReport>,
}

/// Comparison kind of a test-only A/B twin (`--test-ab`).
pub const AB_TWIN: &str = "ab-twin";

/// Speed-ups within each role: every variant against the original, every CUDA-graph model against
/// its graph-free twin, every test-only A/B twin against its job; each with a 95% interval from the
/// rounds the two jobs shared (paired), a verdict and `noise_pct` as the noise threshold.
pub fn comparisons(models: &[ModelResult], noise_pct: f64) -> Vec<Comparison> {
    let mut out = Vec::new();
    let plain = |m: &ModelResult| m.config.is_none();
    for m in models {
        let pair = if plain(m) && m.variant != Variant::Original {
            models
                .iter()
                .find(|b| b.role == m.role && b.variant == Variant::Original && plain(b))
                .map(|b| ("variant", b, m))
        } else if m.config.as_deref() == Some("no-cuda-graph") {
            models.iter().find(|g| plain(g) && g.file == m.file && g.role == m.role).map(|g| ("cuda_graph", m, g))
        } else if m.config.as_deref() == Some(AB_TWIN) {
            models.iter().find(|a| plain(a) && a.file == m.file && a.role == m.role).map(|a| ("ab_twin", a, m))
        } else {
            None
        };
        let Some((kind, base, cand)) = pair else { continue };
        if cand.run_ms.median <= 0.0 {
            continue;
        }
        let ci = rounds::ratio_ci(
            &base.round_samples(),
            &cand.round_samples(),
            Pairing::Paired,
            super::stats::BOOTSTRAP_RESAMPLES,
            super::stats::BOOTSTRAP_SEED,
            noise_pct,
        );
        out.push(Comparison {
            role: m.role,
            kind: kind.into(),
            baseline: base.model.clone(),
            candidate: cand.model.clone(),
            speedup: base.run_ms.median / cand.run_ms.median,
            ci,
        });
    }
    out
}

/// One CSV row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CsvRow {
    pub profile: String,
    pub model: String,
    pub role: String,
    pub variant: String,
    /// `session_create`, `first_run`, `warmup`, `run`, `round:<i>`, `binding`, `op_type:<Op>`,
    /// `op_node:<node>`, `speedup_vs:<baseline model>`, or a pipeline stage `pipeline:<stage>`.
    pub stage: String,
    /// `value`, `n`, `min`, `median`, `mean`, `p90`, `p99`, `max`, `stddev`, `median_ci95_lo`,
    /// `median_ci95_hi`, `outliers`, `runs`, `total`, `ms_per_run`, `percent`, `fps`, `setup`,
    /// `cuda_graph_active`, `max_abs_diff_vs_plain`; for `run` also `rounds`, `ci_halfwidth`,
    /// `rerun95_lo`, `rerun95_hi`, `round_spread`, `ci_too_wide`, `rounds_disagree`; for
    /// `round:<i>` stages `median` and `n`; for `speedup_vs:<baseline model>` rows the kind of
    /// comparison (`variant`, `cuda_graph`, `ab_twin`), and `<kind>_ci95_lo`, `<kind>_ci95_hi`,
    /// `<kind>_verdict`.
    pub statistic: String,
    pub value: f64,
    /// `ms`, `count`, `percent`, `1/s`, `bool` (0/1), `abs` (absolute difference of output values),
    /// `x` (speed-up ratio), `verdict` (+1 faster, −1 slower, 0 no difference beyond noise).
    pub unit: String,
}

fn summary_rows(base: &CsvRow, stage: &str, s: &Summary, out: &mut Vec<CsvRow>) {
    for (stat, v) in s.pairs() {
        let unit = if matches!(stat, "n" | "outliers") { "count" } else { "ms" };
        out.push(CsvRow { stage: stage.into(), statistic: stat.into(), value: v, unit: unit.into(), ..base.clone() });
    }
}

impl BenchReport {
    /// The tidy rows of this report.
    pub fn csv_rows(&self) -> Vec<CsvRow> {
        let mut out = Vec::new();
        let profile = self.profile.name.clone();
        for m in &self.models {
            let base = CsvRow {
                profile: profile.clone(),
                model: m.model.clone(),
                role: m.role.name().into(),
                variant: m.variant.name().into(),
                stage: String::new(),
                statistic: String::new(),
                value: 0.0,
                unit: String::new(),
            };
            let row = |stage: &str, stat: &str, value: f64, unit: &str| CsvRow {
                stage: stage.into(),
                statistic: stat.into(),
                value,
                unit: unit.into(),
                ..base.clone()
            };
            out.push(row("session_create", "value", m.session_create_ms, "ms"));
            out.push(row("first_run", "value", m.first_run_ms, "ms"));
            out.push(row("warmup", "runs", m.warmup_runs as f64, "count"));
            out.push(row("warmup", "total", m.warmup_ms, "ms"));
            summary_rows(&base, "run", &m.run_ms, &mut out);
            if m.run_ms.median > 0.0 {
                out.push(row("run", "fps", 1000.0 / m.run_ms.median, "1/s"));
            }
            if let Some(c) = &m.median_ci {
                out.push(row("run", "rounds", c.rounds as f64, "count"));
                out.push(row("run", "ci_halfwidth", c.half_width_pct, "percent"));
                out.push(row("run", "rerun95_lo", c.rerun95_lo, "ms"));
                out.push(row("run", "rerun95_hi", c.rerun95_hi, "ms"));
                out.push(row("run", "round_spread", c.round_spread_pct, "percent"));
            }
            if let Some(q) = &m.quality {
                out.push(row("run", "ci_too_wide", f64::from(u8::from(q.ci_too_wide)), "bool"));
                out.push(row("run", "rounds_disagree", f64::from(u8::from(q.rounds_disagree)), "bool"));
            }
            for r in &m.rounds {
                let stage = format!("round:{}", r.round);
                out.push(row(&stage, "median", r.median, "ms"));
                out.push(row(&stage, "n", r.n as f64, "count"));
            }
            if let Some(b) = &m.binding {
                out.push(row("binding", "setup", b.setup_ms, "ms"));
                out.push(row("binding", "cuda_graph_active", f64::from(u8::from(b.cuda_graph_active)), "bool"));
                if let Some(d) = b.check.as_ref().and_then(|c| c.max_abs_diff) {
                    out.push(row("binding", "max_abs_diff_vs_plain", d, "abs"));
                }
            }
            if let Some(op) = &m.op_profile {
                for t in &op.by_op_type {
                    let stage = format!("op_type:{}", t.name);
                    out.push(row(&stage, "ms_per_run", t.ms_per_run, "ms"));
                    out.push(row(&stage, "percent", t.percent, "percent"));
                }
                for t in &op.by_node {
                    let stage = format!("op_node:{}", t.name);
                    out.push(row(&stage, "ms_per_run", t.ms_per_run, "ms"));
                    out.push(row(&stage, "percent", t.percent, "percent"));
                }
            }
        }
        for c in &self.comparisons {
            let row = |statistic: String, value: f64, unit: &str| CsvRow {
                profile: profile.clone(),
                model: c.candidate.clone(),
                role: c.role.name().into(),
                variant: self
                    .models
                    .iter()
                    .find(|m| m.model == c.candidate)
                    .map(|m| m.variant.name().to_string())
                    .unwrap_or_default(),
                stage: format!("speedup_vs:{}", c.baseline),
                statistic,
                value,
                unit: unit.into(),
            };
            out.push(row(c.kind.clone(), c.speedup, "x"));
            if let (Some((lo, hi)), Some(v)) = (c.speedup_ci95(), c.verdict()) {
                out.push(row(format!("{}_ci95_lo", c.kind), lo, "x"));
                out.push(row(format!("{}_ci95_hi", c.kind), hi, "x"));
                let sign = match v {
                    Verdict::Faster => 1.0,
                    Verdict::Slower => -1.0,
                    Verdict::NoDifference => 0.0,
                };
                out.push(row(format!("{}_verdict", c.kind), sign, "verdict"));
            }
        }
        if let Some(p) = &self.pipeline {
            let base = CsvRow {
                profile,
                model: "pipeline".into(),
                role: "pipeline".into(),
                variant: "profile".into(),
                stage: String::new(),
                statistic: String::new(),
                value: 0.0,
                unit: String::new(),
            };
            for (i, (stage, s)) in p.stages.iter().enumerate() {
                let stage = format!("pipeline:{stage}");
                summary_rows(&base, &stage, s, &mut out);
                if let Some(share) = p.stage_share.get(i) {
                    out.push(CsvRow {
                        stage,
                        statistic: "share".into(),
                        value: 100.0 * share,
                        unit: "percent".into(),
                        ..base.clone()
                    });
                }
            }
            if let Some(l) = &p.latency_ms {
                summary_rows(&base, "pipeline:latency", l, &mut out);
            }
            let row = |stat: &str, value: f64, unit: &str| CsvRow {
                stage: "pipeline:total".into(),
                statistic: stat.into(),
                value,
                unit: unit.into(),
                ..base.clone()
            };
            out.push(row("frames", p.frames as f64, "count"));
            out.push(row("fps", p.fps, "1/s"));
            out.push(row("wall", 1000.0 * p.wall_s, "ms"));
            out.push(row("dropped", p.dropped as f64, "count"));
            if let Some(n) = p.frames_without_face {
                out.push(row("frames_without_face", n as f64, "count"));
            }
        }
        out
    }

    /// The CSV text (header + rows).
    pub fn to_csv(&self) -> String {
        let mut s = CSV_HEADER.join(",");
        s.push('\n');
        for r in self.csv_rows() {
            let fields = [&r.profile, &r.model, &r.role, &r.variant, &r.stage, &r.statistic];
            for f in fields {
                s.push_str(&csv_field(f));
                s.push(',');
            }
            let _ = writeln!(s, "{},{}", r.value, csv_field(&r.unit));
        }
        s
    }

    /// Fails now, not after a long run, when `dir/<profile>` cannot take the result files
    /// (creates the folder, writes and removes a probe file).
    pub fn check_writable(dir: &Path, profile: &str) -> Result<()> {
        let folder = dir.join(profile);
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        let probe = crate::onnx::model::write_staged(&folder.join(".write-probe"), b"probe")
            .with_context(|| format!("results folder {} is not writable", folder.display()))?;
        drop(probe);
        Ok(())
    }

    /// Writes `<dir>/<profile>/<stamp>_<host>.csv` and `.json`; returns both paths.
    pub fn write(&self, dir: &Path, stamp: &str) -> Result<(PathBuf, PathBuf)> {
        let folder = dir.join(&self.profile.name);
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        let base = format!("{stamp}_{}", file_safe(&self.hardware.hostname));
        let csv = folder.join(format!("{base}.csv"));
        let json = folder.join(format!("{base}.json"));
        // Both files or neither: each is written atomically, and the CSV is removed if the JSON
        // cannot be written (disk full), so no half-written or orphaned result remains.
        let text = serde_json::to_string_pretty(self)? + "\n";
        crate::onnx::model::write_atomic(&csv, self.to_csv().as_bytes())?;
        if let Err(e) = crate::onnx::model::write_atomic(&json, text.as_bytes()) {
            let _ = std::fs::remove_file(&csv);
            return Err(e);
        }
        Ok((csv, json))
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Splits one CSV line into fields (RFC 4180 quoting, no embedded newlines).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Parses a results CSV written by [`BenchReport::to_csv`], checking the header.
pub fn read_csv(text: &str) -> Result<Vec<CsvRow>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    if split_csv_line(header) != CSV_HEADER {
        bail!("not a faceperf results CSV: header is '{header}', expected '{}'", CSV_HEADER.join(","));
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f = split_csv_line(line);
        if f.len() != CSV_HEADER.len() {
            bail!("line {}: {} fields, expected {}", i + 2, f.len(), CSV_HEADER.len());
        }
        let value = f[6].parse().with_context(|| format!("line {}: value '{}' is not a number", i + 2, f[6]))?;
        let [profile, model, role, variant, stage, statistic, _, unit]: [String; 8] =
            f.try_into().map_err(|_| anyhow::anyhow!("line {}: bad field count", i + 2))?;
        rows.push(CsvRow { profile, model, role, variant, stage, statistic, value, unit });
    }
    Ok(rows)
}

/// A host name usable in a file name.
pub fn file_safe(s: &str) -> String {
    let t: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    if t.is_empty() {
        "unknown".into()
    } else {
        t
    }
}

/// UTC (year, month, day, hour, minute, second) of a Unix time.
pub fn utc_parts(unix_secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil-from-days (proleptic Gregorian), era-based.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// Now as (RFC 3339 `2025-11-25T06:18:29Z`, file stamp `20251125T061829Z`).
pub fn utc_now() -> (String, String) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    stamps(secs)
}

/// RFC 3339 and file-stamp forms of a Unix time.
pub fn stamps(secs: u64) -> (String, String) {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    (format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"), format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"))
}

/// The source checkout's commit: `git rev-parse HEAD` in `dir`, `+dirty` if tracked files changed,
/// `unknown` without git or outside a checkout.
pub fn git_commit(dir: &Path) -> String {
    let git =
        |args: &[&str]| Command::new("git").arg("-C").arg(dir).args(args).output().ok().filter(|o| o.status.success());
    let Some(head) = git(&["rev-parse", "HEAD"]) else { return "unknown".into() };
    let mut c = String::from_utf8_lossy(&head.stdout).trim().to_string();
    if c.is_empty() {
        return "unknown".into();
    }
    if let Some(st) = git(&["status", "--porcelain", "--untracked-files=no"]) {
        if !st.stdout.is_empty() {
            c.push_str("+dirty");
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_commit_names_the_code_unless_unrecorded() {
        let old: ToolInfo =
            serde_json::from_str(r#"{"name":"faceperf","version":"0.1.0","git_commit":"abc+dirty"}"#).unwrap();
        assert_eq!(old.build_commit, "");
        assert_eq!(old.source_commit(), "abc+dirty");
        let away = ToolInfo { build_commit: "def".into(), ..old.clone() };
        assert_eq!(away.source_commit(), "def");
        let unknown = ToolInfo { build_commit: "unknown".into(), ..old };
        assert_eq!(unknown.source_commit(), "abc+dirty");
        let here = ToolInfo::current(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert_eq!(here.build_commit, crate::BUILD_COMMIT);
        assert!(!crate::BUILD_COMMIT.is_empty());
    }

    #[test]
    fn utc_conversion() {
        assert_eq!(stamps(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(stamps(951_782_400).0, "2000-02-29T00:00:00Z");
        assert_eq!(stamps(1_764_051_509), ("2025-11-25T06:18:29Z".into(), "20251125T061829Z".into()));
    }

    #[test]
    fn csv_quoting_round_trips() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(split_csv_line("x,\"a,\"\"b\"\"\",3"), vec!["x", "a,\"b\"", "3"]);
        assert!(read_csv("a,b\n").is_err());
        let text = format!("{}\ncpu,m,swapper,original,run,median,12.5,ms\n", CSV_HEADER.join(","));
        let rows = read_csv(&text).unwrap();
        assert_eq!(rows[0].value, 12.5);
        assert_eq!(rows[0].stage, "run");
        assert!(read_csv(&format!("{}\ncpu,m,swapper,original,run,median,abc,ms\n", CSV_HEADER.join(","))).is_err());
    }

    fn model(name: &str, role: Role, variant: Variant, config: Option<&str>, median: f64) -> ModelResult {
        let file = name.trim_end_matches("@no-cuda-graph");
        ModelResult {
            model: name.into(),
            role,
            variant,
            variant_origin: None,
            config: config.map(String::from),
            file: PathBuf::from(format!("{file}.onnx")),
            sha256: String::new(),
            bytes: 0,
            providers: vec![],
            intra_threads: 0,
            optimization: "all".into(),
            io_binding: true,
            ort_provider_options: vec![],
            binding: None,
            fallback: false,
            inputs: vec![],
            session_create_ms: 1.0,
            first_run_ms: 1.0,
            warmup_runs: 1,
            warmup_ms: 1.0,
            run_ms: Summary::of(&[median]).unwrap(),
            samples_ms: vec![median],
            warnings: vec![],
            op_profile: None,
            rounds: vec![],
            median_ci: None,
            quality: None,
            planted_slowdown: None,
        }
    }

    #[test]
    fn comparisons_of_variants_and_graphs() {
        let models = vec![
            model("inswapper_128", Role::Swapper, Variant::Original, None, 10.0),
            model("inswapper_128@no-cuda-graph", Role::Swapper, Variant::Original, Some("no-cuda-graph"), 12.0),
            model("inswapper_128_fp16", Role::Swapper, Variant::Fp16, None, 4.0),
            model("inswapper_128_fp16@no-cuda-graph", Role::Swapper, Variant::Fp16, Some("no-cuda-graph"), 6.0),
            model("det_10g_fp16", Role::Detector, Variant::Fp16, None, 3.0),
        ];
        let c = comparisons(&models, 2.0);
        let find = |kind: &str, cand: &str| c.iter().find(|x| x.kind == kind && x.candidate == cand).unwrap();
        assert_eq!(c.len(), 3, "{c:?}");
        let v = find("variant", "inswapper_128_fp16");
        assert_eq!((v.baseline.as_str(), v.speedup), ("inswapper_128", 2.5));
        assert_eq!(find("cuda_graph", "inswapper_128").speedup, 1.2);
        let g = find("cuda_graph", "inswapper_128_fp16");
        assert_eq!((g.baseline.as_str(), g.speedup), ("inswapper_128_fp16@no-cuda-graph", 1.5));
    }

    /// A model measured in `rounds` (synthetic samples), with the round figures the bench records.
    fn measured(name: &str, config: Option<&str>, rounds: Vec<Vec<f64>>) -> ModelResult {
        let mut m = model(name, Role::Detector, Variant::Original, config, 1.0);
        m.file = PathBuf::from("det_10g.onnx");
        m.samples_ms = rounds.concat();
        m.run_ms = Summary::of(&m.samples_ms).unwrap();
        m.rounds = rounds
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let s = Summary::of(r).unwrap();
                RoundResult {
                    round: i,
                    position: 0,
                    session_create_ms: 1.0,
                    first_run_ms: 1.0,
                    warmup_runs: 1,
                    n: r.len(),
                    median: s.median,
                    min: s.min,
                    max: s.max,
                    started_s: i as f64,
                    load_1m: None,
                }
            })
            .collect();
        m
    }

    #[test]
    fn a_planted_slowdown_is_slower_from_paired_rounds_and_a_twin_is_not() {
        // The comparison wiring on synthetic rounds: the same rounds the bench records, split back from
        // samples_ms by each round's n, paired round by round.
        let base = crate::bench::rounds::tests::synthetic(12.0, 10, 15, 0.02, 0.02, 21);
        let twin: Vec<Vec<f64>> = crate::bench::rounds::tests::synthetic(1.0, 10, 15, 0.0, 0.02, 77)
            .iter()
            .zip(&base)
            .map(|(j, b)| b.iter().zip(j).map(|(x, y)| x * y).collect())
            .collect();
        let slow: Vec<Vec<f64>> = twin.iter().map(|r| rounds::plant(r, 1.10)).collect();
        for (planted, expected) in [(&twin, Verdict::NoDifference), (&slow, Verdict::Slower)] {
            let models = vec![
                measured("det_10g", None, base.clone()),
                measured("det_10g@ab-twin", Some(AB_TWIN), planted.clone()),
            ];
            assert_eq!(models[1].round_samples(), *planted);
            let c = comparisons(&models, 2.0);
            assert_eq!(c.len(), 1);
            assert_eq!((c[0].kind.as_str(), c[0].baseline.as_str()), ("ab_twin", "det_10g"));
            assert_eq!(c[0].verdict(), Some(expected), "{:?}", c[0].ci);
            let (lo, hi) = c[0].speedup_ci95().unwrap();
            match expected {
                // Slower: the speed-up's interval (baseline / candidate) lies wholly below 1.
                Verdict::Slower => assert!(hi < 1.0 && (c[0].speedup - 1.0 / 1.1).abs() < 0.02, "{lo} {hi}"),
                _ => assert!(lo < 1.0 && 1.0 < hi, "{lo} {hi}"),
            }
            assert_eq!(c[0].ci.as_ref().unwrap().round_ratios.len(), 10);
        }
    }

    #[test]
    fn file_safe_names() {
        assert_eq!(file_safe("my host/1"), "my_host_1");
        assert_eq!(file_safe(""), "unknown");
    }
}
