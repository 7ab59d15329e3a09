//! Benchmarks: every model role (and its variants side by side) under a hardware profile, with
//! statistics, per-op profiles and provenance, written as tidy CSV + JSON.
//!
//! - [`stats`]: summary statistics, bootstrap CI of the median, outlier warnings;
//! - [`inputs`]: fixed, seeded, realistic inputs (face crops, letterboxed frames);
//! - [`model`]: one model's session creation, first run, warm-up and measured runs;
//! - [`opprof`]: ORT profiling traces aggregated by op type and node;
//! - [`results`]: the results schema and its writers.

pub mod inputs;
pub mod model;
pub mod opprof;
pub mod results;
pub mod stats;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::models::Role;
use crate::profile::{LoadedProfile, Profile, Variant};
use crate::runtime::Runtime;
use crate::util::{hw, progress};
use inputs::{Photo, ASTRONAUT_FACE, INPUT_SEED};
use model::{bench_model, ModelJob, RunPlan};
use results::{
    BenchReport, MissingModel, OrtInfo, OutputCheck, PipelineResult, ProfileInfo, Settings, ToolInfo, VariantOrigin,
    SCHEMA_VERSION,
};

/// Appended to the model name of the graph-free twin of a CUDA-graph job (`bench.cuda_graph_ab`).
pub const NO_GRAPH_SUFFIX: &str = "@no-cuda-graph";

/// What to run, beyond the profile.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The profile, with command-line overrides of its `[bench]` settings already applied.
    pub profile: LoadedProfile,
    /// Run roles whose providers are absent on the CPU provider instead of failing.
    pub fallback_cpu: bool,
    /// Folder with the models (`det_10g.onnx`, …); `None` = the profile scale's replica folder.
    pub models_dir: Option<PathBuf>,
    /// Roles to run; empty = all.
    pub roles: Vec<Role>,
    /// Variants side by side; `None` = the profile's `bench.variants` plus each role's own variant.
    pub variants: Option<Vec<Variant>>,
    /// Entries kept per per-op table.
    pub top_n: usize,
    /// Photo with a face for the inputs and its face box; `None` = the shared `astronaut.png`.
    pub image: Option<(PathBuf, (u32, u32, u32))>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// argv, for provenance.
    pub command_line: Vec<String>,
}

/// The models folder a run uses when none is given: the profile scale's replica folder.
pub fn default_models_dir(opts: &BenchOptions) -> PathBuf {
    opts.models_dir.clone().unwrap_or_else(|| crate::models::synth::default_dir(opts.profile.profile.bench.scale))
}

/// Makes sure the models folder has the roles' original models. Without a models folder the
/// profile scale's replicas are generated when missing (or stale); a user-given folder is used as is.
fn locate_models(opts: &BenchOptions, roles: &[Role]) -> Result<PathBuf> {
    let dir = match &opts.models_dir {
        Some(d) => d.clone(),
        None => crate::models::synth::ensure_replicas(opts.profile.profile.bench.scale)
            .context("generating the replica models")?,
    };
    let missing: Vec<&str> = roles.iter().map(|r| r.default_file()).filter(|f| !dir.join(f).is_file()).collect();
    if missing.len() == roles.len() {
        bail!(
            "{} has none of the models ({}); generate replicas with `faceperf models synth --scale {}` or pass --models DIR",
            dir.display(),
            missing.join(", "),
            opts.profile.profile.bench.scale.name()
        );
    }
    Ok(dir)
}

/// The file of `variant` for the model `original`, or why there is none. This is the one place a
/// missing variant is made: `faceperf optimize`'s [`crate::optimize::ensure_variant`] with the built-in recipe of
/// the variant's name reuses a cached variant whose keys match, else rewrites the model, proves it
/// equivalent on ORT CPU and writes `<stem>_<variant>.onnx` beside it.
pub fn variant_file(
    rt: &Runtime,
    original: &Path,
    role: Role,
    variant: Variant,
    progress: Option<&indicatif::ProgressBar>,
) -> std::result::Result<(PathBuf, Option<VariantOrigin>), String> {
    if !original.is_file() {
        return Err("model file not found (variants are made from it)".into());
    }
    match crate::optimize::variant_of(rt, original, role, variant, None, progress) {
        Ok(None) => Ok((original.to_path_buf(), None)),
        Ok(Some(o)) => Ok((
            o.variant,
            Some(VariantOrigin {
                action: o.action,
                recipe: variant.name().to_string(),
                recipe_hash: o.sidecar.recipe.hash.clone(),
                sidecar: o.sidecar_path,
                quality: o.sidecar.equivalence.quality.then(|| o.sidecar.equivalence.quality_figures()),
            }),
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The variants measured for `role`: `--variants` when given, else the profile's `bench.variants`
/// plus the role's own variant; sorted so variants sit side by side in a fixed order.
pub fn variants_for(profile: &Profile, role: Role, requested: Option<&[Variant]>) -> Vec<Variant> {
    let mut v: Vec<Variant> = match requested {
        Some(r) => r.to_vec(),
        None => {
            let mut v = profile.bench.variants.clone();
            v.push(profile.roles.get(role).variant);
            v
        }
    };
    v.sort();
    v.dedup();
    v
}

fn load_average() -> Option<[f64; 3]> {
    let l = sysinfo::System::load_average();
    (l.one > 0.0 || l.five > 0.0 || l.fifteen > 0.0).then_some([l.one, l.five, l.fifteen])
}

/// Runs the benchmark. Returns the report; writing it is [`BenchReport::write`]'s job.
pub fn run(rt: &Runtime, opts: &BenchOptions) -> Result<BenchReport> {
    let (started_utc, _) = results::utc_now();
    let mut profile = opts.profile.profile.clone();
    let fallbacks = profile.check_or_fallback(rt, opts.fallback_cpu)?;
    let roles: Vec<Role> = if opts.roles.is_empty() { Role::ALL.to_vec() } else { opts.roles.clone() };
    let dir = locate_models(opts, &roles)?;
    // A model under the wrong role's name (a detector saved as inswapper_128.onnx) is refused
    // before anything is measured. Variants are checked by `faceperf optimize` instead: fuse-io
    // changes their I/O on purpose.
    for &role in &roles {
        let original = dir.join(role.default_file());
        if original.is_file() {
            let model = crate::onnx::Model::load(&original)?;
            crate::models::signature::check(&model, role, &original.display().to_string())?;
        }
    }
    let b = &profile.bench;
    let plan = RunPlan {
        warmup: b.warmup,
        runs: b.runs,
        min_runs: b.min_runs,
        time_budget: Duration::from_secs_f64(b.time_budget_s),
        op_profile_runs: b.op_profile_runs,
        top_n: opts.top_n,
    };
    let (image_path, photo) = match &opts.image {
        Some((p, face)) => (p.clone(), Photo::load(p, *face)?),
        None => (crate::util::assets::shared_file("media/astronaut.png")?, Photo::astronaut()?),
    };

    // Jobs: each role's variants, in a fixed order so variants sit side by side.
    let mut jobs = Vec::new();
    let mut missing = Vec::new();
    let wanted: Vec<(Role, Variant)> = roles
        .iter()
        .flat_map(|&role| variants_for(&profile, role, opts.variants.as_deref()).into_iter().map(move |v| (role, v)))
        .collect();
    if wanted.iter().any(|(_, v)| *v != Variant::Original) {
        let bar = progress::bar(wanted.len() as u64, "variants", opts.quiet);
        for &(role, v) in &wanted {
            let original = dir.join(role.default_file());
            bar.set_message(format!("{} {}", role.name(), v.name()));
            match variant_file(rt, &original, role, v, Some(&bar)) {
                Ok((path, origin)) => jobs.push((role, v, path, origin)),
                Err(reason) => missing.push(MissingModel { role, variant: v, path: v.path_for(&original), reason }),
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    } else {
        for &(role, v) in &wanted {
            let original = dir.join(role.default_file());
            match variant_file(rt, &original, role, v, None) {
                Ok((path, origin)) => jobs.push((role, v, path, origin)),
                Err(reason) => missing.push(MissingModel { role, variant: v, path: original, reason }),
            }
        }
    }

    // With `cuda_graph_ab`, every job whose role captures CUDA graphs also runs without them (still
    // bound), right after, so graph speed-ups are ratios from one run.
    let ab = profile.bench.cuda_graph_ab;
    let jobs: Vec<(Role, Variant, PathBuf, Option<VariantOrigin>, bool)> = jobs
        .into_iter()
        .flat_map(|(role, v, path, origin)| {
            let graphs = profile.session_config(role).providers.iter().any(crate::runtime::EpConfig::uses_cuda_graph);
            let mut out = vec![(role, v, path.clone(), origin.clone(), false)];
            if ab && graphs {
                out.push((role, v, path, origin, true));
            }
            out
        })
        .collect();

    let load_start = load_average();
    let scratch = std::env::temp_dir().join(format!("faceperf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let bar = progress::bar(jobs.len() as u64, "bench", opts.quiet);
    let mut models = Vec::new();
    for (role, variant, path, origin, graphs_off) in &jobs {
        let rc = profile.roles.get(*role);
        let session = profile.session_config(*role);
        let job = ModelJob {
            role: *role,
            variant: *variant,
            path,
            session: if *graphs_off { session.without_cuda_graphs() } else { session },
            io_binding: rc.io_binding,
            fallback: fallbacks.iter().any(|f| f.role == *role),
        };
        let label = format!("{} {}{}", role.name(), variant.name(), if *graphs_off { " no-graph" } else { "" });
        bar.set_message(label.clone());
        let tick = |n: usize| bar.set_message(format!("{label} run {n}"));
        match bench_model(rt, &job, &photo, &plan, &scratch, &tick) {
            Ok(mut r) => {
                r.variant_origin = origin.clone();
                if *graphs_off {
                    r.model.push_str(NO_GRAPH_SUFFIX);
                    r.config = Some("no-cuda-graph".into());
                }
                models.push(r)
            }
            Err(e) => missing.push(MissingModel {
                role: *role,
                variant: *variant,
                path: path.clone(),
                reason: format!("failed: {e:#}"),
            }),
        }
        bar.inc(1);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let mut notes = Vec::new();
    let pipeline = if profile.bench.pipeline_frames > 0 {
        bar.set_message("pipeline");
        match run_pipeline(rt, &profile, &dir, opts.models_dir.is_none()) {
            Ok(p) => Some(p),
            Err(e) => {
                notes.push(format!("the pipeline run failed: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    bar.finish_and_clear();
    if models.is_empty() && pipeline.is_none() {
        let why: Vec<String> = missing.iter().map(|m| format!("{}: {}", m.path.display(), m.reason)).collect();
        bail!("nothing was measured: {}", why.join("; "));
    }

    let hardware = hw::detect();
    let load_end = load_average();
    let busy = |l: Option<[f64; 3]>| l.map(|l| l[0]).unwrap_or(0.0);
    let worst = busy(load_start).max(busy(load_end));
    if worst > 0.5 * hardware.logical_cores as f64 {
        notes.push(format!(
            "load average was {:.2} (start) / {:.2} (end) on {} logical cores: other processes competed for the CPU, \
             so timings are noisier and slower than on a quiet machine",
            busy(load_start),
            busy(load_end),
            hardware.logical_cores
        ));
    }
    let source_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git_dir = if source_dir.is_dir() { source_dir.to_path_buf() } else { std::env::current_dir()? };
    let (finished_utc, _) = results::utc_now();
    Ok(BenchReport {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo::current(&git_dir),
        command_line: opts.command_line.clone(),
        started_utc,
        finished_utc,
        hardware,
        ort: OrtInfo {
            version: rt.version.clone(),
            library: rt.library.clone(),
            source: rt.source.clone(),
            providers: rt.providers.clone(),
        },
        profile: ProfileInfo {
            name: profile.name.clone(),
            source: opts.profile.source.clone(),
            content: opts.profile.content.clone(),
            effective: profile.clone(),
        },
        fallbacks,
        settings: Settings {
            models_dir: dir,
            warmup: plan.warmup,
            runs: plan.runs,
            min_runs: plan.min_runs,
            time_budget_s: plan.time_budget.as_secs_f64(),
            op_profile_runs: plan.op_profile_runs,
            top_n: plan.top_n,
            input_seed: INPUT_SEED,
            input_image: image_path,
            input_face_box: opts.image.as_ref().map(|i| i.1).unwrap_or(ASTRONAUT_FACE),
            bootstrap_resamples: stats::BOOTSTRAP_RESAMPLES,
            bootstrap_seed: stats::BOOTSTRAP_SEED,
        },
        comparisons: results::comparisons(&models),
        models,
        missing,
        pipeline,
        notes,
        load_average_start: load_start,
        load_average_end: load_end,
    })
}

/// The live pipeline in measure mode on a synthetic clip at the profile's camera size, with the
/// profile's pipeline settings and each role's variant and providers.
/// With replicas, the detector is the real SCRFD-500M from the shared assets when present: a
/// replica's random weights find random faces (or none, and the identity photo then has no face).
fn run_pipeline(rt: &Runtime, profile: &Profile, dir: &Path, replicas: bool) -> Result<PipelineResult> {
    let mut cfg = crate::pipeline::Config::new(profile.clone(), dir);
    cfg.variant_dir = Some(dir.to_path_buf());
    let mut notes = Vec::new();
    if replicas {
        if let Ok(real) = crate::util::assets::shared_file("models/real/scrfd_500m_bnkps.onnx") {
            notes.push(format!("detector: the real SCRFD-500M ({}) instead of the replica", real.display()));
            cfg.models.detector = real;
        }
    }
    if let crate::pipeline::SourceSpec::Synthetic(s) = &mut cfg.source {
        s.faces = profile.bench.pipeline_faces.max(1);
    }
    cfg.frames = Some(profile.bench.pipeline_frames);
    let r = crate::pipeline::run(rt, &cfg)?;
    // A run cut short measures a different workload: not a result.
    if let Some(why) = &r.stopped_by {
        bail!("the pipeline run {why}");
    }
    if r.rejected_outputs > 0 {
        notes.push(format!("{} model outputs had NaN or infinite values and were not pasted", r.rejected_outputs));
    }
    Ok(PipelineResult {
        source: r.source.clone(),
        frames: r.frames,
        stages: r.stages.iter().map(|s| (s.stage.name().to_string(), s.ms.clone())).collect(),
        stage_share: r.stages.iter().map(|s| s.share).collect(),
        fps: r.fps,
        latency_ms: r.latency_ms.clone(),
        wall_s: r.wall_s,
        dropped: r.dropped,
        detection_interval: r.detection_interval,
        enhancer_interval: r.enhancer_interval,
        many_faces: r.many_faces,
        models: r.models.clone(),
        non_inference_share: r.non_inference_share,
        notes: notes.into_iter().chain(r.notes.iter().cloned()).collect(),
    })
}

/// The human-readable summary printed by `faceperf bench`.
pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "profile {} ({}), ONNX Runtime {} [{}], {} ({} cores)",
        r.profile.name,
        r.profile.source,
        r.ort.version,
        r.ort.providers.join(", "),
        r.hardware.cpu_model,
        r.hardware.logical_cores
    );
    for f in &r.fallbacks {
        let _ = writeln!(
            s,
            "fallback: {} asked for {} (missing {}); ran on {}",
            f.role.name(),
            f.requested.join(", "),
            f.missing.join(", "),
            f.used
        );
    }
    let _ = writeln!(
        s,
        "{:<10} {:<8} {:<22} {:>9} {:>9} {:>10} {:>17} {:>9} {:>9} {:>4} {:>7}",
        "role", "variant", "model", "create", "first", "median", "95% CI", "p90", "stddev", "n", "fps"
    );
    for m in &r.models {
        let st = &m.run_ms;
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<22} {:>7.1}ms {:>7.1}ms {:>8.2}ms {:>17} {:>7.2}ms {:>7.2}ms {:>4} {:>7.1}",
            m.role.name(),
            m.variant.name(),
            m.model,
            m.session_create_ms,
            m.first_run_ms,
            st.median,
            format!("{:.2}–{:.2}ms", st.median_ci95_lo, st.median_ci95_hi),
            st.p90,
            st.stddev,
            st.n,
            if st.median > 0.0 { 1000.0 / st.median } else { 0.0 }
        );
        if let Some(q) = m.variant_origin.as_ref().and_then(|o| o.quality.as_deref()) {
            let _ = writeln!(s, "{:<10} approximate ({} quality bar vs float32): {q}", "", m.variant);
        }
        if let Some(b) = &m.binding {
            let graphs = match (b.cuda_graph_requested, b.cuda_graph_active) {
                (true, true) => ", CUDA graph",
                (true, false) => ", CUDA graph FAILED (plain bound runs)",
                _ => "",
            };
            let check = match &b.check {
                Some(c) if c.identical => "outputs identical to plain runs".to_string(),
                Some(OutputCheck { max_abs_diff: Some(d), .. }) => {
                    format!("outputs differ from plain runs by ≤ {d:.2e}")
                }
                Some(_) => "output check failed".to_string(),
                None => "outputs not checked".to_string(),
            };
            let _ = writeln!(s, "{:<10} IOBinding on {}{graphs}; {check}", "", b.device);
        }
        if let Some(op) = &m.op_profile {
            let top: Vec<String> =
                op.by_op_type.iter().take(4).map(|t| format!("{} {:.0}%", t.name, t.percent)).collect();
            let _ = writeln!(s, "{:<10} ops: {}", "", top.join(", "));
        }
        for w in &m.warnings {
            let _ = writeln!(s, "{:<10} warning: {w}", "");
        }
    }
    if let Some(p) = &r.pipeline {
        let _ = writeln!(
            s,
            "pipeline: {} frames of {} at {:.2} fps (detect every {}, enhance every {}){}",
            p.frames,
            p.source,
            p.fps,
            p.detection_interval,
            p.enhancer_interval,
            p.latency_ms.as_ref().map(|l| format!(", latency median {:.1} ms", l.median)).unwrap_or_default()
        );
        for (i, (stage, st)) in p.stages.iter().enumerate() {
            let share = p.stage_share.get(i).map(|x| 100.0 * x).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "  {stage:<13} median {:>9.2}ms  p90 {:>9.2}ms  n {:>4}  {share:>5.1}% of wall",
                st.median, st.p90, st.n
            );
        }
    }
    for c in &r.comparisons {
        let what = if c.kind == "cuda_graph" { "CUDA graph" } else { "variant" };
        let _ =
            writeln!(s, "speed-up ({what}): {} is {:.2}x {} ({})", c.candidate, c.speedup, c.baseline, c.role.name());
    }
    for m in &r.missing {
        let _ = writeln!(s, "missing: {} {} ({}): {}", m.role.name(), m.variant.name(), m.path.display(), m.reason);
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}
