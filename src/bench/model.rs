//! Benchmark of one model file under one session configuration: session creation, first run,
//! warm-up, measured runs, and a separate profiled session for the per-op breakdown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use ort::value::{DynValue, TensorElementType};

use super::inputs::{make_input, Photo, INPUT_SEED};
use super::opprof::{self, OpProfile};
use super::results::{BindingInfo, InputInfo, ModelResult, OutputCheck, ProviderOptions, RoundResult};
use super::rounds::{self, MedianCi};
use super::stats::{self, Summary};
use crate::models::Role;
use crate::onnx::Tensor;
use crate::profile::{Variant, Warmup};
use crate::runtime::binding::{BindDevice, BoundSession};
use crate::runtime::session::{to_value, ModelSource};
use crate::runtime::{EpConfig, Runtime, SessionConfig, SessionRunner};
use crate::util::hash::sha256_file;
use crate::util::rng::Rng;

/// How long and how often to run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub warmup: Warmup,
    /// Most measured runs.
    pub runs: usize,
    /// Fewest measured runs, even past the budget.
    pub min_runs: usize,
    /// Time budget of the measured runs.
    pub time_budget: Duration,
    /// Profiled runs for the per-op breakdown (0 = none).
    pub op_profile_runs: usize,
    /// Entries kept in each per-op table.
    pub top_n: usize,
    /// Rounds the runs, warm-up and budget are divided over (1 = all at once).
    pub rounds: usize,
}

/// What to benchmark.
pub struct ModelJob<'a> {
    pub role: Role,
    pub variant: Variant,
    pub path: &'a Path,
    pub session: SessionConfig,
    pub io_binding: bool,
    /// True when the profile's providers were replaced by the CPU provider.
    pub fallback: bool,
}

impl ModelJob<'_> {
    /// Where bound buffers go when this job binds (IOBinding or CUDA graphs), else `None`: CUDA
    /// device memory under the CUDA or TensorRT provider, host memory otherwise.
    pub fn bind_device(&self) -> Option<BindDevice> {
        let graphs = self.session.providers.iter().any(EpConfig::uses_cuda_graph);
        if !self.io_binding && !graphs {
            return None;
        }
        Some(match self.session.providers.first() {
            Some(EpConfig::Cuda { device_id, .. }) | Some(EpConfig::Tensorrt { device_id, .. }) => {
                BindDevice::Cuda(*device_id)
            }
            _ => BindDevice::Cpu,
        })
    }
}

/// What one timed bound run covers (recorded with the results).
pub const BOUND_TIMED: &str = "run on inputs resident in the bound buffers (written once), wait for completion, \
                               copy outputs to host staging buffers";

/// How runs are issued.
enum Exec {
    /// `Session::run` with host values prepared once.
    Plain { runner: SessionRunner, values: Vec<(String, DynValue)> },
    /// IOBinding with fixed buffers (CUDA graphs when enabled).
    Bound { session: Box<BoundSession>, graph_fallback: Option<String> },
}

/// A session with its inputs prepared once, so a timed run does only the model's work.
pub struct Prepared {
    exec: Exec,
    /// The fixed inputs.
    pub inputs: Vec<(String, Tensor)>,
    /// Their description for the results.
    pub input_infos: Vec<InputInfo>,
    /// ORT session creation time.
    pub create_time: Duration,
    /// The first run's time, when creation already ran one (bound sessions probe output shapes).
    pub first_run: Option<Duration>,
}

/// Named input tensors in model order.
type Inputs = Vec<(String, Tensor)>;

fn make_inputs(
    job: &ModelJob<'_>,
    specs: &[(String, TensorElementType, Vec<i64>)],
    photo: &Photo,
) -> Result<(Inputs, Vec<InputInfo>)> {
    let mut rng = Rng::new(INPUT_SEED);
    let mut inputs = Vec::new();
    let mut infos = Vec::new();
    for (name, ty, shape) in specs {
        let t = make_input(job.role, photo, *ty, shape, &mut rng)
            .with_context(|| format!("{}: input '{name}'", job.path.display()))?;
        infos.push(InputInfo { name: name.clone(), dtype: format!("{ty:?}").to_lowercase(), dims: t.dims.clone() });
        inputs.push((name.clone(), t));
    }
    Ok((inputs, infos))
}

impl Prepared {
    /// Builds the session for `job` with `cfg` (bound when `bind` is given) and its fixed inputs.
    pub fn new(
        rt: &Runtime,
        job: &ModelJob<'_>,
        cfg: &SessionConfig,
        photo: &Photo,
        bind: Option<BindDevice>,
    ) -> Result<Prepared> {
        match bind {
            None => {
                let runner = SessionRunner::new(rt, ModelSource::File(job.path), cfg)?;
                let (inputs, input_infos) = make_inputs(job, &runner.input_specs(), photo)?;
                let values = inputs.iter().map(|(n, t)| Ok((n.clone(), to_value(t)?))).collect::<Result<_>>()?;
                let create_time = runner.create_time;
                Ok(Prepared { exec: Exec::Plain { runner, values }, inputs, input_infos, create_time, first_run: None })
            }
            Some(device) => {
                // The inputs are made once the session exists (their shapes come from its declared
                // inputs); the binding needs those shapes for dynamic dims.
                let made = std::cell::RefCell::new(None);
                let shapes = |r: &SessionRunner| -> Result<HashMap<String, Vec<i64>>> {
                    let (inputs, infos) = make_inputs(job, &r.input_specs(), photo)?;
                    let shapes =
                        inputs.iter().map(|(n, t)| (n.clone(), t.dims.iter().map(|&d| d as i64).collect())).collect();
                    *made.borrow_mut() = Some((inputs, infos));
                    Ok(shapes)
                };
                let (mut session, graph_fallback) =
                    BoundSession::create_with(rt, ModelSource::File(job.path), cfg, device, &shapes)?;
                let (inputs, input_infos) =
                    made.into_inner().ok_or_else(|| anyhow!("binding finished without its inputs"))?;
                session.write_inputs(&inputs)?;
                let create_time = session.runner().create_time;
                let first_run = Some(session.first_run_time);
                Ok(Prepared {
                    exec: Exec::Bound { session: Box::new(session), graph_fallback },
                    inputs,
                    input_infos,
                    create_time,
                    first_run,
                })
            }
        }
    }

    /// One run; returns its wall time.
    pub fn run_once(&mut self) -> Result<Duration> {
        let start = Instant::now();
        match &mut self.exec {
            Exec::Bound { session, .. } => {
                session.run_bound()?;
                session.fetch_outputs()?;
            }
            Exec::Plain { runner, values } => runner.run_values(values)?,
        }
        Ok(start.elapsed())
    }

    /// Runs once more and returns the outputs as host tensors, in model order.
    pub fn outputs(&mut self) -> Result<Vec<(String, Tensor)>> {
        match &mut self.exec {
            Exec::Bound { session, .. } => {
                session.run_bound()?;
                session.fetch_outputs()?;
                session.read_outputs()
            }
            Exec::Plain { runner, .. } => runner.run(&self.inputs),
        }
    }

    /// Ends ORT profiling (sessions built with a profile prefix) and returns the trace's path.
    fn end_profiling(&mut self) -> Result<PathBuf> {
        match &mut self.exec {
            Exec::Plain { runner, .. } => runner.end_profiling(),
            Exec::Bound { .. } => bail!("per-op profiles come from plain sessions"),
        }
    }

    /// The binding facts for the results (`None` for plain sessions).
    fn binding_info(&self, job: &ModelJob<'_>) -> Option<BindingInfo> {
        let Exec::Bound { session, graph_fallback } = &self.exec else { return None };
        let requested = job.session.providers.iter().any(EpConfig::uses_cuda_graph);
        Some(BindingInfo {
            device: match session.device() {
                BindDevice::Cpu => "cpu".into(),
                BindDevice::Cuda(id) => format!("cuda:{id}"),
            },
            cuda_graph_requested: requested,
            cuda_graph_active: requested && graph_fallback.is_none(),
            graph_fallback: graph_fallback.clone(),
            setup_ms: ms(session.setup_time),
            timed: BOUND_TIMED.into(),
            check: None,
        })
    }
}

/// Compares two output lists: (max |a − b| over all elements, bit-identical).
pub fn compare_outputs(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> Result<(f64, bool)> {
    if a.len() != b.len() {
        bail!("{} outputs against {}", a.len(), b.len());
    }
    let mut max = 0.0f64;
    let mut identical = true;
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        if na != nb || ta.dims != tb.dims {
            bail!("output '{na}' {:?} against '{nb}' {:?}", ta.dims, tb.dims);
        }
        identical &= ta == tb;
        for (x, y) in ta.to_f32s().iter().zip(tb.to_f32s()) {
            let d = (*x as f64 - y as f64).abs();
            max = if d.is_nan() { f64::INFINITY } else { max.max(d) };
        }
    }
    Ok((max, identical))
}

/// Runs the bound path's outputs against a plain, graph-free session on the same inputs.
fn check_against_plain(
    rt: &Runtime,
    job: &ModelJob<'_>,
    photo: &Photo,
    bound_outputs: &[(String, Tensor)],
) -> OutputCheck {
    let plain = Prepared::new(rt, job, &job.session.without_cuda_graphs(), photo, None).and_then(|mut p| p.outputs());
    match plain.and_then(|o| compare_outputs(bound_outputs, &o)) {
        Ok((max, identical)) if max.is_finite() => {
            OutputCheck { outputs: bound_outputs.len(), max_abs_diff: Some(max), identical, error: None }
        }
        Ok(_) => OutputCheck {
            outputs: bound_outputs.len(),
            max_abs_diff: None,
            identical: false,
            error: Some("outputs differ in non-finite values (NaN or infinity)".into()),
        },
        Err(e) => OutputCheck {
            outputs: bound_outputs.len(),
            max_abs_diff: None,
            identical: false,
            error: Some(format!("{e:#}")),
        },
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the warm-up; returns (runs, total ms).
fn warm_up(p: &mut Prepared, w: Warmup) -> Result<(usize, f64)> {
    let start = Instant::now();
    let mut n = 0;
    match w {
        Warmup::Runs(k) => {
            for _ in 0..k {
                p.run_once()?;
                n += 1;
            }
        }
        Warmup::Seconds(s) => {
            let budget = Duration::from_secs_f64(s);
            while n == 0 || start.elapsed() < budget {
                p.run_once()?;
                n += 1;
            }
        }
    }
    Ok((n, ms(start.elapsed())))
}

/// Measured runs: at least `min_runs`, then until `runs` or the time budget, whichever comes first.
fn measure(p: &mut Prepared, plan: &RunPlan, tick: &dyn Fn(usize)) -> Result<Vec<f64>> {
    let start = Instant::now();
    let mut samples = Vec::with_capacity(plan.runs.min(10_000));
    while samples.len() < plan.runs && (samples.len() < plan.min_runs || start.elapsed() < plan.time_budget) {
        samples.push(ms(p.run_once()?));
        tick(samples.len());
    }
    Ok(samples)
}

/// Per-op breakdown from a separate session with ORT profiling on (profiling slows runs, so the
/// measured session never has it). One unprofiled-in-effect warm-up run is skipped in the trace.
fn op_profile(rt: &Runtime, job: &ModelJob<'_>, photo: &Photo, plan: &RunPlan, dir: &Path) -> Result<OpProfile> {
    let stem = job.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    // Graph replays have no per-node events, so the breakdown comes from plain runs without graphs.
    let mut cfg = job.session.without_cuda_graphs();
    cfg.profile_prefix = Some(dir.join(format!("ort_{stem}")));
    let mut p = Prepared::new(rt, job, &cfg, photo, None)?;
    p.run_once()?;
    for _ in 0..plan.op_profile_runs {
        p.run_once()?;
    }
    let trace: PathBuf = p.end_profiling()?;
    let agg = opprof::aggregate_file(&trace, 1, plan.top_n);
    let _ = std::fs::remove_file(&trace);
    agg
}

impl RunPlan {
    /// The share of one round out of `self.rounds`: the time budget, the run limits and the warm-up
    /// divided by the rounds (at least one measured run per round).
    pub fn round_slice(&self) -> RunPlan {
        let k = self.rounds.max(1);
        RunPlan {
            warmup: match self.warmup {
                Warmup::Runs(n) => Warmup::Runs(n.div_ceil(k as u32)),
                Warmup::Seconds(s) => Warmup::Seconds(s / k as f64),
            },
            runs: self.runs.div_ceil(k).max(1),
            min_runs: self.min_runs.div_ceil(k).max(1),
            time_budget: self.time_budget / k as u32,
            rounds: 1,
            ..self.clone()
        }
    }
}

/// One round of one job: a fresh session, its first run (not measured), a warm-up and the measured
/// runs of the round's slice of the budget.
#[derive(Debug, Clone)]
pub struct RoundRun {
    pub samples: Vec<f64>,
    pub session_create_ms: f64,
    pub first_run_ms: f64,
    pub warmup_runs: usize,
    pub warmup_ms: f64,
    /// When the measured runs began.
    pub started: Instant,
    /// 1-minute load average when the round began.
    pub load_1m: Option<f64>,
    /// Binding facts and the bound-vs-plain output check (checked rounds of bound jobs only).
    pub binding: Option<BindingInfo>,
    pub inputs: Vec<InputInfo>,
}

/// Runs one round of `job` with `slice` (see [`RunPlan::round_slice`]). With `check`, a bound job's
/// outputs are then compared with a plain, graph-free session's (once per job is enough).
pub fn bench_round(
    rt: &Runtime,
    job: &ModelJob<'_>,
    photo: &Photo,
    slice: &RunPlan,
    check: bool,
    tick: &dyn Fn(usize),
) -> Result<RoundRun> {
    let load_1m = Some(sysinfo::System::load_average().one).filter(|l| *l > 0.0);
    let mut p = Prepared::new(rt, job, &job.session, photo, job.bind_device())?;
    let session_create_ms = ms(p.create_time);
    let first_run_ms = match p.first_run {
        Some(d) => ms(d),
        None => ms(p.run_once()?),
    };
    // The fresh session's first run warms it up too: a time-based warm-up only spends what is left of
    // its seconds (none when the first run took longer; heavy models on slow machines).
    let (warmup_runs, warmup_ms) = match slice.warmup {
        Warmup::Seconds(s) if first_run_ms >= 1000.0 * s => (0, 0.0),
        Warmup::Seconds(s) => warm_up(&mut p, Warmup::Seconds(s - first_run_ms / 1000.0))?,
        w => warm_up(&mut p, w)?,
    };
    let started = Instant::now();
    let samples = measure(&mut p, slice, tick)?;
    let inputs = p.input_infos.clone();
    let mut binding = if check { p.binding_info(job) } else { None };
    if let Some(b) = &mut binding {
        let bound_outputs = p.outputs();
        // Free the bound session before building the reference one (GPU memory).
        drop(p);
        b.check = Some(match bound_outputs {
            Ok(o) => check_against_plain(rt, job, photo, &o),
            Err(e) => OutputCheck { outputs: 0, max_abs_diff: None, identical: false, error: Some(format!("{e:#}")) },
        });
    }
    Ok(RoundRun { samples, session_create_ms, first_run_ms, warmup_runs, warmup_ms, started, load_1m, binding, inputs })
}

/// Warnings about a bound job's output check and graph fallback.
fn binding_warnings(b: &BindingInfo) -> Vec<String> {
    let mut warnings = Vec::new();
    match &b.check {
        Some(OutputCheck { error: Some(e), .. }) => {
            warnings.push(format!("bound outputs could not be checked against plain runs: {e}"))
        }
        Some(c) if !c.identical => warnings.push(format!(
            "bound outputs differ from plain runs by up to {:.3e} (GPU kernels may differ between bound and \
             plain runs; large values mean stale or overwritten buffers)",
            c.max_abs_diff.unwrap_or(f64::NAN)
        )),
        _ => {}
    }
    if let Some(f) = &b.graph_fallback {
        warnings.push(f.clone());
    }
    warnings
}

/// The round figures that go with the results ([`RoundResult`]), from a job's rounds in order as
/// (round number, position in the round, the round), with `t0` the first round's start.
pub fn round_results(rounds: &[(usize, usize, RoundRun)], t0: Instant) -> Vec<RoundResult> {
    rounds
        .iter()
        .map(|(round, position, r)| {
            let s = Summary::of(&r.samples);
            RoundResult {
                round: *round,
                position: *position,
                session_create_ms: r.session_create_ms,
                first_run_ms: r.first_run_ms,
                warmup_runs: r.warmup_runs,
                n: r.samples.len(),
                median: s.as_ref().map_or(f64::NAN, |s| s.median),
                min: s.as_ref().map_or(f64::NAN, |s| s.min),
                max: s.as_ref().map_or(f64::NAN, |s| s.max),
                started_s: r.started.saturating_duration_since(t0).as_secs_f64(),
                load_1m: r.load_1m,
            }
        })
        .collect()
}

/// The statistics that go with a job's rounds: the pooled summary with the hierarchical-bootstrap
/// interval in place of the samples-only one, the interval itself and the warnings.
pub fn round_statistics(rounds: &[Vec<f64>], path: &Path) -> Result<(Summary, Option<MedianCi>)> {
    let all: Vec<f64> = rounds.concat();
    let mut summary = Summary::of(&all).ok_or_else(|| anyhow!("{}: no valid timing samples", path.display()))?;
    let ci = rounds::median_ci(rounds, stats::BOOTSTRAP_RESAMPLES, stats::BOOTSTRAP_SEED);
    if let Some(c) = &ci {
        summary.median_ci95_lo = c.ci95_lo;
        summary.median_ci95_hi = c.ci95_hi;
    }
    Ok((summary, ci))
}

/// A job's result from its rounds (in round order, at least one): statistics over the rounds, the
/// per-op profile from a separate session, provenance. `rounds` pairs each round's number and the
/// job's place in it with the round itself.
pub fn finish_model(
    rt: &Runtime,
    job: &ModelJob<'_>,
    photo: &Photo,
    plan: &RunPlan,
    scratch: &Path,
    rounds: Vec<(usize, usize, RoundRun)>,
    t0: Instant,
) -> Result<ModelResult> {
    let first = &rounds.first().ok_or_else(|| anyhow!("{}: no rounds ran", job.path.display()))?.2;
    let samples: Vec<Vec<f64>> = rounds.iter().map(|(_, _, r)| r.samples.clone()).collect();
    let (summary, median_ci) = round_statistics(&samples, job.path)?;
    let mut warnings = stats::warnings(Some(first.first_run_ms), &summary);
    let binding = rounds.iter().find_map(|(_, _, r)| r.binding.clone());
    if let Some(b) = &binding {
        warnings.extend(binding_warnings(b));
    }
    let op_profile = if plan.op_profile_runs > 0 {
        match op_profile(rt, job, photo, plan, scratch) {
            Ok(o) => Some(o),
            Err(e) => {
                warnings.push(format!("per-op profile failed: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    Ok(ModelResult {
        model: job.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        role: job.role,
        variant: job.variant,
        variant_origin: None,
        config: None,
        file: job.path.to_path_buf(),
        sha256: sha256_file(job.path)?,
        bytes: std::fs::metadata(job.path).map(|m| m.len()).unwrap_or(0),
        providers: job.session.providers.clone(),
        intra_threads: job.session.intra_threads,
        optimization: job.session.optimization.clone(),
        io_binding: job.io_binding,
        ort_provider_options: provider_options(job),
        binding,
        fallback: job.fallback,
        inputs: first.inputs.clone(),
        session_create_ms: first.session_create_ms,
        first_run_ms: first.first_run_ms,
        warmup_runs: rounds.iter().map(|(_, _, r)| r.warmup_runs).sum(),
        warmup_ms: rounds.iter().map(|(_, _, r)| r.warmup_ms).sum(),
        run_ms: summary,
        samples_ms: samples.concat(),
        warnings,
        op_profile,
        rounds: round_results(&rounds, t0),
        median_ci,
        quality: None,
        planted_slowdown: None,
    })
}

fn provider_options(job: &ModelJob<'_>) -> Vec<ProviderOptions> {
    job.session
        .providers
        .iter()
        .map(|e| ProviderOptions {
            provider: e.provider_name().into(),
            options: e.ort_options().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
        .collect()
}
