//! Benchmarks: every model role (and its variants side by side) under a hardware profile, with
//! statistics, per-op profiles and provenance, written as tidy CSV + JSON.
//!
//! - [`stats`]: summary statistics, bootstrap CI of the median, outlier warnings;
//! - [`rounds`]: interleaved rounds: the median's CI over rounds, paired ratios, verdicts, flags;
//! - [`machine`]: the machine's state (load, CPU clocks, thermal, power, GPU clocks) before and after;
//! - [`inputs`]: fixed, seeded, realistic inputs (face crops, letterboxed frames);
//! - [`model`]: one model's session creation, first run, warm-up and measured runs;
//! - [`opprof`]: ORT profiling traces aggregated by op type and node;
//! - [`results`]: the results schema and its writers.

pub mod inputs;
pub mod machine;
pub mod model;
pub mod opprof;
pub mod results;
pub mod rounds;
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
use machine::MachineState;
use model::{ModelJob, RunPlan};
use results::{
    BenchReport, MissingModel, ModelResult, OrtInfo, OutputCheck, PipelineResult, ProfileInfo, Settings, ToolInfo,
    VariantOrigin, SCHEMA_VERSION,
};

/// Appended to the model name of the graph-free twin of a CUDA-graph job (`bench.cuda_graph_ab`).
pub const NO_GRAPH_SUFFIX: &str = "@no-cuda-graph";

/// Appended to the model name of a test-only A/B twin (`--test-ab`).
pub const AB_TWIN_SUFFIX: &str = "@ab-twin";

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
    /// Photo with a face for the inputs and its face box; `None` = the built-in `astronaut.png`.
    pub image: Option<(PathBuf, (u32, u32, u32))>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// argv, for provenance.
    pub command_line: Vec<String>,
    /// Flag medians whose 95% interval is wider than ± this percent.
    pub ci_width_pct: f64,
    /// Ratios within ± this percent of 1 are "no difference beyond noise".
    pub noise_pct: f64,
    /// TEST ONLY: run an identical twin of every job, its samples multiplied by `1 + pct/100`
    /// (0 = an identical A/B pair), to check the comparison verdicts end to end.
    pub test_ab_slowdown_pct: Option<f64>,
}

impl BenchOptions {
    /// Options for `profile` with every other setting at its default (all roles, the profile's
    /// variants and rounds, the default CI width and noise threshold).
    pub fn new(profile: LoadedProfile) -> BenchOptions {
        BenchOptions {
            profile,
            fallback_cpu: false,
            models_dir: None,
            roles: vec![],
            variants: None,
            top_n: 10,
            image: None,
            quiet: true,
            command_line: vec![],
            ci_width_pct: rounds::DEFAULT_CI_WIDTH_PCT,
            noise_pct: rounds::DEFAULT_NOISE_PCT,
            test_ab_slowdown_pct: None,
        }
    }
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

/// One job of a run: a model file under one configuration.
#[derive(Debug, Clone)]
struct Job {
    role: Role,
    variant: Variant,
    path: PathBuf,
    origin: Option<VariantOrigin>,
    /// The graph-free twin of a CUDA-graph job.
    graphs_off: bool,
    /// TEST ONLY (`--test-ab`): an identical twin of a job, its samples multiplied by this factor.
    twin: Option<f64>,
}

impl Job {
    /// What `bench::model` runs for this job: the role's session (graphs off for the graph-free
    /// twin), binding and fallback as the profile says.
    fn model_job<'a>(&'a self, profile: &Profile, fallbacks: &[crate::profile::Fallback]) -> ModelJob<'a> {
        let session = profile.session_config(self.role);
        ModelJob {
            role: self.role,
            variant: self.variant,
            path: &self.path,
            session: if self.graphs_off { session.without_cuda_graphs() } else { session },
            io_binding: profile.roles.get(self.role).io_binding,
            fallback: fallbacks.iter().any(|f| f.role == self.role),
        }
    }

    fn label(&self) -> String {
        let config = match (self.graphs_off, self.twin) {
            (true, _) => " no-graph",
            (_, Some(_)) => " ab-twin",
            _ => "",
        };
        format!("{} {}{config}", self.role.name(), self.variant.name())
    }
}

/// The jobs of a run: each role's variants in a fixed order (missing ones listed with the reason),
/// each CUDA-graph job's graph-free twin with `cuda_graph_ab`, and the test-only A/B twins.
fn plan_jobs(
    rt: &Runtime,
    opts: &BenchOptions,
    profile: &Profile,
    dir: &Path,
    roles: &[Role],
) -> (Vec<Job>, Vec<MissingModel>) {
    let mut jobs = Vec::new();
    let mut missing = Vec::new();
    let wanted: Vec<(Role, Variant)> = roles
        .iter()
        .flat_map(|&role| variants_for(profile, role, opts.variants.as_deref()).into_iter().map(move |v| (role, v)))
        .collect();
    let making = wanted.iter().any(|(_, v)| *v != Variant::Original);
    let bar = progress::bar(wanted.len() as u64, "variants", opts.quiet || !making);
    for &(role, v) in &wanted {
        let original = dir.join(role.default_file());
        bar.set_message(format!("{} {}", role.name(), v.name()));
        match variant_file(rt, &original, role, v, making.then_some(&bar)) {
            Ok((path, origin)) => {
                let job = Job { role, variant: v, path, origin, graphs_off: false, twin: None };
                let graphs =
                    profile.session_config(role).providers.iter().any(crate::runtime::EpConfig::uses_cuda_graph);
                if profile.bench.cuda_graph_ab && graphs {
                    jobs.push(job.clone());
                    jobs.push(Job { graphs_off: true, ..job });
                } else if let Some(pct) = opts.test_ab_slowdown_pct {
                    jobs.push(job.clone());
                    jobs.push(Job { twin: Some(1.0 + pct / 100.0), ..job });
                } else {
                    jobs.push(job);
                }
            }
            Err(reason) => {
                let path = if v == Variant::Original { original } else { v.path_for(&original) };
                missing.push(MissingModel { role, variant: v, path, reason })
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    (jobs, missing)
}

/// The rounds of every job so far: (round, position in it, the round), or why the job failed.
type Rounds = Vec<std::result::Result<Vec<(usize, usize, model::RoundRun)>, String>>;

/// Runs the rounds: round `r` runs every job once, in [`rounds::round_order`] (A B, then B A, …), each
/// with a fresh session for its slice of the budget. A job that fails in any round is dropped.
fn run_rounds(
    rt: &Runtime,
    profile: &Profile,
    fallbacks: &[crate::profile::Fallback],
    jobs: &[Job],
    photo: &Photo,
    plan: &RunPlan,
    quiet: bool,
) -> Rounds {
    let slice = plan.round_slice();
    let k = plan.rounds.max(1);
    let bar = progress::bar((jobs.len() * k) as u64, "bench", quiet);
    let mut done: Rounds = jobs.iter().map(|_| Ok(Vec::new())).collect();
    for r in 0..k {
        for (pos, &j) in rounds::round_order(jobs.len(), r).iter().enumerate() {
            let job = &jobs[j];
            let Ok(so_far) = &mut done[j] else { continue };
            let mj = job.model_job(profile, fallbacks);
            let label = format!("{} round {}/{k}", job.label(), r + 1);
            bar.set_message(label.clone());
            let tick = |n: usize| bar.set_message(format!("{label} run {n}"));
            match model::bench_round(rt, &mj, photo, &slice, so_far.is_empty(), &tick) {
                Ok(mut round) => {
                    if let Some(f) = job.twin {
                        round.samples = rounds::plant(&round.samples, f);
                    }
                    so_far.push((r, pos, round));
                }
                Err(e) => done[j] = Err(format!("failed in round {}: {e:#}", r + 1)),
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    done
}

/// Measures the jobs in interleaved rounds; returns their results and the jobs that failed.
#[allow(clippy::too_many_arguments)]
fn measure_jobs(
    rt: &Runtime,
    opts: &BenchOptions,
    profile: &Profile,
    fallbacks: &[crate::profile::Fallback],
    jobs: &[Job],
    photo: &Photo,
    plan: &RunPlan,
    scratch: &Path,
) -> (Vec<ModelResult>, Vec<MissingModel>) {
    let t0 = std::time::Instant::now();
    let done = run_rounds(rt, profile, fallbacks, jobs, photo, plan, opts.quiet);
    let mut models = Vec::new();
    let mut missing = Vec::new();
    for (job, rounds) in jobs.iter().zip(done) {
        let mj = job.model_job(profile, fallbacks);
        // The per-op profile once per model file and configuration, not again for test twins.
        let plan = if job.twin.is_some() { RunPlan { op_profile_runs: 0, ..plan.clone() } } else { plan.clone() };
        match rounds.and_then(|r| {
            model::finish_model(rt, &mj, photo, &plan, scratch, r, t0).map_err(|e| format!("failed: {e:#}"))
        }) {
            Ok(mut r) => {
                r.variant_origin = job.origin.clone();
                if job.graphs_off {
                    r.model.push_str(NO_GRAPH_SUFFIX);
                    r.config = Some("no-cuda-graph".into());
                }
                if let Some(f) = job.twin {
                    r.model.push_str(AB_TWIN_SUFFIX);
                    r.config = Some(results::AB_TWIN.into());
                    r.planted_slowdown = Some(f);
                    r.warnings.push(format!(
                        "TEST ONLY (--test-ab): an identical twin of {}, every sample multiplied by {f}",
                        job.path.display()
                    ));
                }
                models.push(r)
            }
            Err(reason) => {
                missing.push(MissingModel { role: job.role, variant: job.variant, path: job.path.clone(), reason })
            }
        }
    }
    (models, missing)
}

/// Whether a profile's roles run on a GPU provider (GPU clocks are then recorded).
fn uses_gpu(profile: &Profile, roles: &[Role], fallbacks: &[crate::profile::Fallback]) -> bool {
    roles.iter().filter(|r| !fallbacks.iter().any(|f| f.role == **r)).any(|&r| {
        profile
            .session_config(r)
            .providers
            .iter()
            .any(|p| matches!(p, crate::runtime::EpConfig::Cuda { .. } | crate::runtime::EpConfig::Tensorrt { .. }))
    })
}

/// Flags each model's interval against the stated width and its rounds' agreement, adding the flags
/// to its warnings.
fn flag_quality(models: &mut [ModelResult], opts: &BenchOptions, budget_s: f64, load_per_core: Option<f64>) {
    for m in models {
        if let Some(ci) = &m.median_ci {
            let q = rounds::quality(ci, opts.ci_width_pct, budget_s, load_per_core);
            m.warnings.extend(q.flags.iter().cloned());
            m.quality = Some(q);
        }
    }
}

/// Runs the benchmark. Returns the report; writing it is [`BenchReport::write`]'s job.
pub fn run(rt: &Runtime, opts: &BenchOptions) -> Result<BenchReport> {
    let (started_utc, _) = results::utc_now();
    let mut profile = opts.profile.profile.clone();
    let fallbacks = profile.check_or_fallback(rt, opts.fallback_cpu)?;
    let roles: Vec<Role> = if opts.roles.is_empty() { Role::ALL.to_vec() } else { opts.roles.clone() };
    let dir = locate_models(opts, &roles)?;
    check_signatures(&dir, &roles)?;
    if profile.bench.rounds == 0 {
        bail!("bench: rounds must be at least 1");
    }
    let b = &profile.bench;
    let plan = RunPlan {
        warmup: b.warmup,
        runs: b.runs,
        min_runs: b.min_runs,
        time_budget: Duration::from_secs_f64(b.time_budget_s),
        op_profile_runs: b.op_profile_runs,
        top_n: opts.top_n,
        rounds: b.rounds,
    };
    let (image_path, photo) = match &opts.image {
        Some((p, face)) => (p.clone(), Photo::load(p, *face)?),
        None => (PathBuf::from(crate::util::assets::ASTRONAUT_NAME), Photo::astronaut()?),
    };
    let (jobs, mut missing) = plan_jobs(rt, opts, &profile, &dir, &roles);

    let gpu = uses_gpu(&profile, &roles, &fallbacks);
    let machine_start = MachineState::read(gpu);
    let scratch = std::env::temp_dir().join(format!("faceperf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let (mut models, failed) = measure_jobs(rt, opts, &profile, &fallbacks, &jobs, &photo, &plan, &scratch);
    missing.extend(failed);
    let _ = std::fs::remove_dir_all(&scratch);
    let machine_end = MachineState::read(gpu);
    let mut notes = Vec::new();
    let pipeline = match profile.bench.pipeline_frames {
        0 => None,
        _ => run_pipeline(rt, &profile, &dir).map_err(|e| notes.push(format!("the pipeline run failed: {e:#}"))).ok(),
    };
    if models.is_empty() && pipeline.is_none() {
        let why: Vec<String> = missing.iter().map(|m| format!("{}: {}", m.path.display(), m.reason)).collect();
        bail!("nothing was measured: {}", why.join("; "));
    }

    let hardware = hw::detect();
    let machine_changes = machine::changes(&machine_start, &machine_end, hardware.logical_cores);
    let worst = [&machine_start, &machine_end].iter().filter_map(|m| m.load_average).map(|l| l[0]).fold(0.0, f64::max);
    let cores = hardware.logical_cores.max(1) as f64;
    flag_quality(&mut models, opts, plan.time_budget.as_secs_f64(), (worst > 0.0).then_some(worst / cores));
    notes.extend(run_notes(opts, &machine_start, &machine_end, &machine_changes, hardware.logical_cores));
    let git_dir = crate::util::paths::checkout().unwrap_or(std::env::current_dir()?);
    let (finished_utc, _) = results::utc_now();
    Ok(BenchReport {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo::current(&git_dir),
        command_line: opts.command_line.clone(),
        started_utc,
        finished_utc,
        hardware,
        ort: OrtInfo::of(rt),
        profile: ProfileInfo {
            name: profile.name.clone(),
            source: opts.profile.source.clone(),
            content: opts.profile.content.clone(),
            effective: profile.clone(),
        },
        fallbacks,
        settings: settings(opts, &plan, dir, image_path),
        comparisons: results::comparisons(&models, opts.noise_pct),
        models,
        missing,
        pipeline,
        notes,
        load_average_start: machine_start.load_average,
        load_average_end: machine_end.load_average,
        machine_start: Some(machine_start),
        machine_end: Some(machine_end),
        machine_changes,
        monitor: None,
    })
}

/// Refuses a model under the wrong role's name (a detector saved as inswapper_128.onnx) before
/// anything is measured. Variants are checked by `faceperf optimize` instead: fuse-io changes their
/// I/O on purpose.
fn check_signatures(dir: &Path, roles: &[Role]) -> Result<()> {
    for &role in roles {
        let original = dir.join(role.default_file());
        if original.is_file() {
            let model = crate::onnx::Model::load(&original)?;
            crate::models::signature::check(&model, role, &original.display().to_string())?;
        }
    }
    Ok(())
}

/// The run's caveats: a loaded machine, a state that changed during the measurement, test-only twins.
fn run_notes(
    opts: &BenchOptions,
    start: &MachineState,
    end: &MachineState,
    changes: &[String],
    logical_cores: usize,
) -> Vec<String> {
    let mut notes = Vec::new();
    let busy = |s: &MachineState| s.load_average.map(|l| l[0]).unwrap_or(0.0);
    if busy(start).max(busy(end)) > 0.5 * logical_cores as f64 {
        notes.push(format!(
            "load average was {:.2} (start) / {:.2} (end) on {logical_cores} logical cores: other processes competed \
             for the CPU, so timings are noisier and slower than on a quiet machine",
            busy(start),
            busy(end),
        ));
    }
    if !changes.is_empty() {
        notes.push(format!("the machine's state changed during the measurement: {}", changes.join("; ")));
    }
    if opts.test_ab_slowdown_pct.is_some() {
        notes.push(
            "TEST ONLY: --test-ab added identical twins of every job (`@ab-twin`, with a planted slowdown when above \
             0 %); not a benchmark of the models"
                .into(),
        );
    }
    notes
}

/// The settings record of a run.
fn settings(opts: &BenchOptions, plan: &RunPlan, models_dir: PathBuf, input_image: PathBuf) -> Settings {
    Settings {
        models_dir,
        warmup: plan.warmup,
        runs: plan.runs,
        min_runs: plan.min_runs,
        time_budget_s: plan.time_budget.as_secs_f64(),
        op_profile_runs: plan.op_profile_runs,
        top_n: plan.top_n,
        input_seed: INPUT_SEED,
        input_image,
        input_face_box: opts.image.as_ref().map(|i| i.1).unwrap_or(ASTRONAUT_FACE),
        bootstrap_resamples: stats::BOOTSTRAP_RESAMPLES,
        bootstrap_seed: stats::BOOTSTRAP_SEED,
        rounds: plan.rounds,
        round_order: ROUND_ORDER.into(),
        sessions: SESSIONS.into(),
        ci_method: CI_METHOD.into(),
        ci_width_limit_pct: opts.ci_width_pct,
        noise_threshold_pct: opts.noise_pct,
    }
}

/// [`Settings::round_order`] of this version.
pub const ROUND_ORDER: &str =
    "interleaved: each round runs every job once, in job order in even rounds and reversed in \
                               odd ones (A B, B A, A B, …), for 1/rounds of the budget, the run limits and the warm-up";
/// [`Settings::sessions`] of this version.
pub const SESSIONS: &str = "a fresh session per job and round (creation and first run not measured): a rerun gets \
                            a new session, allocations and thread placement, and the spread between rounds should \
                            include what that changes";
/// [`Settings::ci_method`] of this version.
pub const CI_METHOD: &str =
    "median of all samples; 95% CI from a hierarchical bootstrap (rounds with replacement, then \
                             each drawn round's samples with replacement), expanded percentile interval for the \
                             number of rounds; ratios from paired rounds, in log space";

/// The live pipeline in measure mode on a synthetic clip at the profile's camera size, with the
/// profile's pipeline settings and each role's variant and providers. With a replica detector the
/// stages take the faces the synthetic source placed (the pipeline's notes say so).
fn run_pipeline(rt: &Runtime, profile: &Profile, dir: &Path) -> Result<PipelineResult> {
    let mut cfg = crate::pipeline::Config::new(profile.clone(), dir);
    cfg.variant_dir = Some(dir.to_path_buf());
    let mut notes = Vec::new();
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
        faces_from: serde_json::to_value(r.faces_from)?.as_str().unwrap_or_default().to_string(),
        frames_without_face: Some(r.frames_without_face),
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
    if r.settings.rounds > 0 {
        let _ = writeln!(
            s,
            "{} rounds, interleaved (A B B A …), a fresh session per job and round; 95% CI over the rounds \
             (hierarchical bootstrap); flagged when wider than ±{}%",
            r.settings.rounds, r.settings.ci_width_limit_pct
        );
    }
    render_models(r, &mut s);
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
        if let Some(n) = p.frames_without_face {
            let how = match p.faces_from.as_str() {
                "source" => "placed by the synthetic source (the detector is a replica; it ran for its cost)",
                _ => "detected",
            };
            let _ = writeln!(s, "  faces: {how}; {n} of {} frames without a face", p.frames);
        }
        for (i, (stage, st)) in p.stages.iter().enumerate() {
            let share = p.stage_share.get(i).map(|x| 100.0 * x).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "  {stage:<13} median {:>9.2}ms  p90 {:>9.2}ms  n {:>4}  {share:>5.1}% of wall",
                st.median, st.p90, st.n
            );
        }
    }
    render_comparisons(r, &mut s);
    for m in &r.missing {
        let _ = writeln!(s, "missing: {} {} ({}): {}", m.role.name(), m.variant.name(), m.path.display(), m.reason);
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// The per-model table of [`render`], with each model's rounds, binding, ops and warnings.
fn render_models(r: &BenchReport, s: &mut String) {
    let _ = writeln!(
        s,
        "{:<10} {:<8} {:<22} {:>9} {:>9} {:>10} {:>17} {:>6} {:>9} {:>4} {:>7}",
        "role", "variant", "model", "create", "first", "median", "95% CI", "±%", "p90", "n", "fps"
    );
    for m in &r.models {
        let st = &m.run_ms;
        let flag = if m.quality.as_ref().is_some_and(|q| !q.flags.is_empty()) { " !" } else { "" };
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<22} {:>7.1}ms {:>7.1}ms {:>8.3}ms {:>17} {:>6} {:>7.2}ms {:>4} {:>7.1}{flag}",
            m.role.name(),
            m.variant.name(),
            m.model,
            m.session_create_ms,
            m.first_run_ms,
            st.median,
            format!("{:.3}–{:.3}ms", st.median_ci95_lo, st.median_ci95_hi),
            m.median_ci.as_ref().map(|c| format!("{:.1}", c.half_width_pct)).unwrap_or_else(|| "—".into()),
            st.p90,
            st.n,
            if st.median > 0.0 { 1000.0 / st.median } else { 0.0 }
        );
        if let Some(c) = m.median_ci.as_ref().filter(|c| c.rounds > 1) {
            let meds: Vec<String> = c.round_medians.iter().map(|x| format!("{x:.3}")).collect();
            let _ = writeln!(
                s,
                "{:<10} rounds: {} (spread {:.1}%); a rerun's median is expected in {:.3}–{:.3}ms",
                "",
                meds.join(" "),
                c.round_spread_pct,
                c.rerun95_lo,
                c.rerun95_hi
            );
        }
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
}

/// The comparisons (with their paired intervals and verdicts) and the machine's state, for [`render`].
fn render_comparisons(r: &BenchReport, s: &mut String) {
    for c in &r.comparisons {
        let what = match c.kind.as_str() {
            "cuda_graph" => "CUDA graph",
            "ab_twin" => "TEST A/B twin",
            _ => "variant",
        };
        let ci = match (&c.ci, c.speedup_ci95()) {
            (Some(x), Some((lo, hi))) => format!(
                " [95% CI {lo:.3}–{hi:.3}x, {} paired rounds]: {} (noise threshold ±{}%)",
                x.rounds,
                x.verdict.text(),
                x.noise_threshold_pct
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "speed-up ({what}): {} is {:.3}x {}{ci} ({})",
            c.candidate,
            c.speedup,
            c.baseline,
            c.role.name()
        );
    }
    if let (Some(a), Some(b)) = (&r.machine_start, &r.machine_end) {
        let _ = writeln!(s, "machine: before: {}; after: {}", a.summary(), b.summary());
    }
}
