//! The numbers a report shows, derived from loaded runs: stage latencies with their confidence
//! intervals, headline frame rates (measured, estimated from model latencies, or published bounds),
//! camera modes and per-model variant comparisons. Tables and plots both read these, so a figure and
//! its table never disagree.

use serde::Serialize;

use super::load::Run;
use crate::models::Role;

/// How a number was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Measured here: a median with its 95% bootstrap confidence interval.
    Measured,
    /// Derived here from measured numbers (e.g. FPS from summed model latencies).
    Estimated,
    /// A single number published elsewhere.
    Published,
    /// Published as "more than" this value.
    AtLeast,
    /// Published as "less than" this value.
    AtMost,
}

/// A number with its interval and origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Value {
    pub value: f64,
    /// Lower end of the 95% confidence interval, when known.
    pub lo: Option<f64>,
    /// Upper end of the 95% confidence interval, when known.
    pub hi: Option<f64>,
    pub kind: Kind,
}

impl Value {
    /// A value without an interval.
    pub fn plain(value: f64, kind: Kind) -> Value {
        Value { value, lo: None, hi: None, kind }
    }

    /// True for numbers from elsewhere (published values and bounds).
    pub fn is_published(&self) -> bool {
        matches!(self.kind, Kind::Published | Kind::AtLeast | Kind::AtMost)
    }
}

/// The `run` latency of one model row set (`median` + CI, else a single `value`), ms.
pub fn latency(run: &Run, model: &str, variant: &str, stage: &str) -> Option<Value> {
    let get = |stat: &str| run.value(model, variant, stage, stat);
    if let Some(m) = get("median") {
        let kind = if run.published.is_some() { Kind::Published } else { Kind::Measured };
        return Some(Value { value: m, lo: get("median_ci95_lo"), hi: get("median_ci95_hi"), kind });
    }
    let kind = if run.published.is_some() { Kind::Published } else { Kind::Measured };
    get("value").map(|v| Value::plain(v, kind))
}

/// The variant a run's profile gives `role` (what the pipeline would run).
pub fn role_variant(run: &Run, role: Role) -> String {
    run.report.profile.effective.roles.get(role).variant.name().to_string()
}

/// The model row name (file stem) of `role` in `variant`, if the run has it.
pub fn model_of(run: &Run, role: Role, variant: &str) -> Option<String> {
    run.rows.iter().find(|r| r.role == role.name() && r.variant == variant && r.stage == "run").map(|r| r.model.clone())
}

/// Latency of `role` as the run's profile configures it (its own variant), ms.
pub fn stage_latency(run: &Run, role: Role) -> Option<(String, Value)> {
    let variant = role_variant(run, role);
    let model = model_of(run, role, &variant)?;
    latency(run, &model, &variant, "run").map(|v| (model, v))
}

/// True when the run's own check found the bound outputs of `model` in `variant` (the profile's
/// configuration) different from a plain run on the same inputs: its time is of a computation
/// that was not verified (CUDA-graph replay on the H100, bench-results/h100/README.md).
pub fn unverified(run: &Run, model: &str, variant: &str) -> bool {
    run.report.models.iter().any(|m| {
        m.model == model
            && m.variant.name() == variant
            && m.config.is_none()
            && m.binding.as_ref().and_then(|b| b.check.as_ref()).is_some_and(|c| !c.identical)
    })
}

/// [`stage_latency`] and whether it is [`unverified`].
pub fn stage_latency_checked(run: &Run, role: Role) -> Option<(String, Value, bool)> {
    let (model, v) = stage_latency(run, role)?;
    let bad = unverified(run, &model, &role_variant(run, role));
    Some((model, v, bad))
}

/// Roles one frame runs with the swapper only, in pipeline order.
pub const SWAP_ROLES: [Role; 4] = [Role::Detector, Role::Landmarks, Role::Recognizer, Role::Swapper];

/// The two headline pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pipeline {
    /// Face swap only.
    Swap,
    /// Face swap plus the GFPGAN enhancer.
    SwapEnhance,
}

impl Pipeline {
    /// Stage name in the CSV (`pipeline:swap`, `pipeline:swap_enhance`).
    pub fn stage(self) -> &'static str {
        match self {
            Pipeline::Swap => "pipeline:swap",
            Pipeline::SwapEnhance => "pipeline:swap_enhance",
        }
    }

    /// Column title.
    pub fn title(self) -> &'static str {
        match self {
            Pipeline::Swap => "swap only",
            Pipeline::SwapEnhance => "swap + enhance",
        }
    }

    fn roles(self) -> Vec<Role> {
        match self {
            Pipeline::Swap => SWAP_ROLES.to_vec(),
            Pipeline::SwapEnhance => SWAP_ROLES.iter().copied().chain([Role::Enhancer]).collect(),
        }
    }
}

/// Frames per second of one pipeline under one configuration of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fps {
    pub value: Value,
    /// How it was obtained, in words (shown as a table note).
    pub basis: String,
}

/// A camera mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraMode {
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
    pub format: Option<String>,
    /// `configured` (from the profile), `published`, or `measured`.
    pub source: String,
}

impl CameraMode {
    /// `960×540 MJPEG @ 60 FPS`.
    pub fn text(&self) -> String {
        let mut s = format!("{}×{}", self.width, self.height);
        if let Some(f) = &self.format {
            s.push(' ');
            s.push_str(&f.to_uppercase());
        }
        if let Some(fps) = self.fps {
            s.push_str(&format!(" @ {} FPS", super::tables::num(fps)));
        }
        s
    }
}

/// One headline row: a run under one configuration (variant set).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// Index of the run in the report's run list.
    pub run: usize,
    /// Configuration, e.g. `profile variants` or `before PR` (published).
    pub config: String,
    pub variant: String,
    pub swap: Option<Fps>,
    pub swap_enhance: Option<Fps>,
    pub camera: Option<CameraMode>,
}

/// FPS of a pipeline stage given in the CSV (`fps`, `fps_lower_bound`, `fps_upper_bound`), or from the
/// median frame time of a measured pipeline stage.
fn fps_from_rows(run: &Run, variant: &str, p: Pipeline) -> Option<Fps> {
    let stage = p.stage();
    let get = |stat: &str| run.rows.iter().find(|r| r.variant == variant && r.stage == stage && r.statistic == stat);
    let published = run.published.is_some();
    if let Some(r) = get("fps_lower_bound") {
        return Some(Fps { value: Value::plain(r.value, Kind::AtLeast), basis: "published lower bound".into() });
    }
    if let Some(r) = get("fps_upper_bound") {
        return Some(Fps { value: Value::plain(r.value, Kind::AtMost), basis: "published upper bound".into() });
    }
    if let Some(r) = get("fps") {
        let kind = if published { Kind::Published } else { Kind::Measured };
        let basis = if published { "published" } else { "measured pipeline" };
        return Some(Fps { value: Value::plain(r.value, kind), basis: basis.into() });
    }
    let median = get("median")?.value;
    if median <= 0.0 {
        return None;
    }
    let lo = get("median_ci95_hi").map(|r| 1000.0 / r.value);
    let hi = get("median_ci95_lo").filter(|r| r.value > 0.0).map(|r| 1000.0 / r.value);
    let kind = if published { Kind::Published } else { Kind::Measured };
    Some(Fps { value: Value { value: 1000.0 / median, lo, hi, kind }, basis: "1000 / median frame time".into() })
}

/// FPS estimated from model latencies: one frame runs every model of the pipeline once, one after
/// another; the interval sums the models' CI bounds (conservative). Pre/post-processing, capture
/// and display are not included, so this is an upper bound on a serial pipeline's rate.
pub fn estimated_fps(run: &Run, p: Pipeline) -> std::result::Result<Fps, String> {
    let (mut sum, mut lo, mut hi) = (0.0, 0.0, 0.0);
    let mut with_ci = true;
    for role in p.roles() {
        let (_, v) = stage_latency(run, role).ok_or_else(|| format!("{} not measured", role.name()))?;
        sum += v.value;
        match (v.lo, v.hi) {
            (Some(l), Some(h)) => {
                lo += l;
                hi += h;
            }
            _ => with_ci = false,
        }
    }
    if sum <= 0.0 {
        return Err("zero frame time".into());
    }
    let (flo, fhi) = if with_ci && lo > 0.0 { (Some(1000.0 / hi), Some(1000.0 / lo)) } else { (None, None) };
    Ok(Fps {
        value: Value { value: 1000.0 / sum, lo: flo, hi: fhi, kind: Kind::Estimated },
        basis: "estimated from model medians".into(),
    })
}

/// The camera mode of a configuration: CSV `camera` rows (published), else the profile's setting.
fn camera(run: &Run, variant: &str) -> Option<CameraMode> {
    let rows: Vec<_> = run.rows.iter().filter(|r| r.stage == "camera" && r.variant == variant).collect();
    if !rows.is_empty() {
        let get = |s: &str| rows.iter().find(|r| r.statistic == s).map(|r| r.value);
        let format = rows.first().map(|r| r.model.clone()).filter(|m| m != "camera" && m != "unspecified");
        return Some(CameraMode {
            width: get("width")? as u32,
            height: get("height")? as u32,
            fps: get("fps"),
            format,
            source: if run.published.is_some() { "published".into() } else { "measured".into() },
        });
    }
    let c = &run.report.profile.effective.camera;
    Some(CameraMode {
        width: c.width,
        height: c.height,
        fps: Some(c.fps as f64),
        format: Some(c.format.clone()),
        source: "configured".into(),
    })
}

/// Headline rows of one run: one per configuration that has pipeline FPS rows in the CSV, else one
/// for the profile's own configuration with FPS estimated from model latencies.
pub fn headlines(runs: &[Run]) -> Vec<Headline> {
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut variants: Vec<String> = Vec::new();
        for r in &run.rows {
            let is_fps = r.stage == Pipeline::Swap.stage() || r.stage == Pipeline::SwapEnhance.stage();
            if is_fps && !variants.contains(&r.variant) {
                variants.push(r.variant.clone());
            }
        }
        if variants.is_empty() {
            let mut vs: Vec<String> = Role::ALL.iter().map(|&r| role_variant(run, r)).collect();
            vs.sort();
            vs.dedup();
            let variant = vs.join("/");
            out.push(Headline {
                run: i,
                config: format!("profile's variants ({variant})"),
                variant: variant.clone(),
                swap: estimated_fps(run, Pipeline::Swap).ok(),
                swap_enhance: estimated_fps(run, Pipeline::SwapEnhance).ok(),
                camera: camera(run, "profile").or_else(|| camera(run, &variant)),
            });
            continue;
        }
        for v in variants {
            out.push(Headline {
                run: i,
                config: config_name(run, &v),
                variant: v.clone(),
                swap: fps_from_rows(run, &v, Pipeline::Swap),
                swap_enhance: fps_from_rows(run, &v, Pipeline::SwapEnhance),
                camera: camera(run, &v),
            });
        }
    }
    out
}

/// A configuration's name: published runs compare the models before and after their rewrites.
pub fn config_name(run: &Run, variant: &str) -> String {
    match (run.published.is_some(), variant) {
        (true, "original") => "before (original models)".into(),
        (true, "coreml") => "after (`_coreml` rewrites)".into(),
        (_, "profile") => "profile's configuration".into(),
        (_, v) => format!("{v} models"),
    }
}

/// One model variant's row in the before/after comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantRow {
    pub run: usize,
    /// The original model's stem (`inswapper_128`).
    pub base: String,
    /// File stem of this variant (`inswapper_128_fp16`).
    pub model: String,
    pub role: String,
    pub variant: String,
    pub latency: Option<Value>,
    /// Latency relative to the original in the same run (1.0 = same).
    pub vs_original: Option<f64>,
    /// Its 95% interval from the run's paired rounds (runs with rounds only).
    pub vs_original_ci: Option<(f64, f64)>,
    /// The run's verdict on the variant against the original (runs with rounds only).
    pub verdict: Option<crate::bench::rounds::Verdict>,
    /// Nodes ORT ran, by execution provider (from the per-op profile).
    pub nodes_by_ep: Vec<(String, usize)>,
    /// Nodes in the model file's graph (when the file is still on disk with the recorded sha256).
    pub graph_nodes: Option<usize>,
    /// CoreML partitions (estimated by the partition planner, or published).
    pub coreml_partitions: Option<Value>,
    pub sha256: Option<String>,
    /// Quality figures of an approximate variant (`int8`) against the float32 model.
    pub quality: Option<String>,
}

/// The original model's stem for a variant's file stem.
pub fn base_stem(model: &str) -> String {
    for suffix in ["_coreml", "_fp16", "_int8"] {
        if let Some(b) = model.strip_suffix(suffix) {
            return b.to_string();
        }
    }
    model.to_string()
}

/// Every model and variant of every run, grouped by run then by original model, originals first.
pub fn variant_rows(runs: &[Run]) -> Vec<VariantRow> {
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut keys: Vec<(usize, String, usize, String, String, String)> = Vec::new();
        for r in run.rows.iter().filter(|r| r.stage == "run" || r.stage == "coreml_partitions") {
            let role_rank = Role::ALL.iter().position(|x| x.name() == r.role).unwrap_or(usize::MAX);
            let var_rank = match r.variant.as_str() {
                "original" => 0,
                "coreml" => 2,
                "fp16" => 3,
                _ => 1,
            };
            let key = (role_rank, base_stem(&r.model), var_rank, r.variant.clone(), r.model.clone(), r.role.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.sort();
        for (_, base, _, variant, model, role) in keys {
            let latency = latency(run, &model, &variant, "run");
            let original = latency_of_original(run, &base);
            let vs_original = match (latency, original) {
                (Some(l), Some(o)) if variant != "original" && o.value > 0.0 => Some(l.value / o.value),
                _ => None,
            };
            let m = run.report.models.iter().find(|m| m.model == model && m.variant.name() == variant);
            let paired = run
                .report
                .comparisons
                .iter()
                .filter(|c| c.kind == "variant" && c.candidate == model && vs_original.is_some())
                .find_map(|c| c.ci.as_ref());
            let nodes_by_ep =
                m.and_then(|m| m.op_profile.as_ref()).map(|p| p.nodes_per_provider.clone()).unwrap_or_default();
            let parts = run
                .value(&model, &variant, "coreml_partitions", "value")
                .map(|v| Value::plain(v, if run.published.is_some() { Kind::Published } else { Kind::Estimated }));
            out.push(VariantRow {
                run: i,
                base,
                model: model.clone(),
                role,
                variant,
                latency,
                vs_original,
                vs_original_ci: paired.map(|c| (c.ci95_lo, c.ci95_hi)),
                verdict: paired.map(|c| c.verdict),
                nodes_by_ep,
                graph_nodes: m.and_then(|m| graph_nodes(&m.file, &m.sha256)),
                coreml_partitions: parts,
                sha256: m.map(|m| m.sha256.clone()),
                quality: m.and_then(|m| m.variant_origin.as_ref()).and_then(|o| o.quality.clone()),
            });
        }
    }
    out
}

fn latency_of_original(run: &Run, base: &str) -> Option<Value> {
    latency(run, base, "original", "run")
}

/// Nodes in a model file's main graph, if the file is on disk and still has the recorded content.
fn graph_nodes(path: &std::path::Path, sha256: &str) -> Option<usize> {
    if !path.is_file() || crate::util::hash::sha256_file(path).ok()? != sha256 {
        return None;
    }
    crate::onnx::model::Model::load(path).ok().map(|m| m.graph().node.len())
}

/// The larger half-width of a value's interval, percent of the value; `None` without an interval.
pub fn half_width_pct(v: &Value) -> Option<f64> {
    let (lo, hi) = (v.lo?, v.hi?);
    (v.value > 0.0).then(|| 100.0 * (v.value - lo).max(hi - v.value) / v.value)
}

/// The width above which a run's intervals are flagged: the report's own (`--max-ci-width`), else the
/// width the run stated (3% for runs written before they stated one).
pub fn width_limit(run: &Run, override_pct: Option<f64>) -> f64 {
    override_pct.unwrap_or(run.report.settings.ci_width_limit_pct)
}

/// True when `v`'s interval is wider than the run's width limit.
pub fn too_wide(run: &Run, v: &Value, override_pct: Option<f64>) -> bool {
    run.published.is_none() && half_width_pct(v).is_some_and(|w| w > width_limit(run, override_pct))
}

/// A measured median that is not good enough, with the advice that would fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    /// Index of the run in the report's run list.
    pub run: usize,
    pub model: String,
    pub variant: String,
    /// The interval's larger half-width and the width it was held to, percent of the median.
    pub half_width_pct: f64,
    pub limit_pct: f64,
    pub ci_too_wide: bool,
    /// The run's rounds disagree (their medians span more than twice the width); false for runs
    /// written before rounds.
    pub rounds_disagree: bool,
    /// One sentence per problem, with advice.
    pub advice: Vec<String>,
}

/// Every measured model median whose interval is wider than its run's width limit or whose rounds
/// disagree. Runs with rounds are judged by [`crate::bench::rounds::quality`]; older runs by their
/// CSV interval, with the note that it covers one session's samples only.
pub fn flags(runs: &[Run], override_pct: Option<f64>) -> Vec<Flag> {
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate().filter(|(_, r)| r.published.is_none()) {
        let limit = width_limit(run, override_pct);
        let load = run.report.load_average_start.zip(run.report.load_average_end).map(|(a, b)| a[0].max(b[0]));
        let per_core = load.map(|l| l / run.report.hardware.logical_cores.max(1) as f64);
        for m in &run.report.models {
            let flag = match &m.median_ci {
                Some(ci) => {
                    let q = crate::bench::rounds::quality(ci, limit, run.report.settings.time_budget_s, per_core);
                    Flag {
                        run: i,
                        model: m.model.clone(),
                        variant: m.variant.name().into(),
                        half_width_pct: q.ci_half_width_pct,
                        limit_pct: limit,
                        ci_too_wide: q.ci_too_wide,
                        rounds_disagree: q.rounds_disagree,
                        advice: q.flags,
                    }
                }
                None => {
                    let Some(v) = latency(run, &m.model, m.variant.name(), "run") else { continue };
                    let Some(w) = half_width_pct(&v) else { continue };
                    Flag {
                        run: i,
                        model: m.model.clone(),
                        variant: m.variant.name().into(),
                        half_width_pct: w,
                        limit_pct: limit,
                        ci_too_wide: w > limit,
                        rounds_disagree: false,
                        advice: vec![format!(
                            "95% CI ±{w:.1}% is wider than ±{limit}%: rerun with a longer --time on a quieter machine \
                             (this run predates rounds: its interval covers one session's samples, not a rerun)"
                        )],
                    }
                }
            };
            if flag.ci_too_wide || flag.rounds_disagree {
                out.push(flag);
            }
        }
    }
    out
}
