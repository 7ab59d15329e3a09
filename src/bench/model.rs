//! Benchmark of one model file under one session configuration: session creation, first run,
//! warm-up, measured runs, and a separate profiled session for the per-op breakdown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::DynValue;

use super::inputs::{make_input, Photo, INPUT_SEED};
use super::opprof::{self, OpProfile};
use super::results::{InputInfo, ModelResult};
use super::stats::{self, Summary};
use crate::models::Role;
use crate::profile::{Variant, Warmup};
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

/// A session with its inputs prepared once, so a timed run does only the model's work.
struct Prepared {
    runner: SessionRunner,
    values: Vec<(String, DynValue)>,
    binding: Option<ort::session::IoBinding>,
}

fn output_memory(providers: &[EpConfig]) -> Result<MemoryInfo<'static>> {
    let (device, id) = match providers.first() {
        Some(EpConfig::Cuda { device_id, .. }) | Some(EpConfig::Tensorrt { device_id, .. }) => {
            (AllocationDevice::CUDA, *device_id)
        }
        Some(EpConfig::Directml { device_id }) => (AllocationDevice::DIRECTML, *device_id),
        _ => (AllocationDevice::CPU, 0),
    };
    MemoryInfo::new(device, id, AllocatorType::Device, MemoryType::Default).map_err(|e| anyhow!("{e}"))
}

impl Prepared {
    fn new(rt: &Runtime, job: &ModelJob<'_>, cfg: &SessionConfig, photo: &Photo) -> Result<(Prepared, Vec<InputInfo>)> {
        let runner = SessionRunner::new(rt, ModelSource::File(job.path), cfg)?;
        let mut rng = Rng::new(INPUT_SEED);
        let mut values = Vec::new();
        let mut infos = Vec::new();
        for (name, ty, shape) in runner.input_specs() {
            let t = make_input(job.role, photo, ty, &shape, &mut rng)
                .with_context(|| format!("{}: input '{name}'", job.path.display()))?;
            infos.push(InputInfo { name: name.clone(), dtype: format!("{ty:?}").to_lowercase(), dims: t.dims.clone() });
            values.push((name, to_value(&t)?));
        }
        let binding = if job.io_binding {
            let mut b = runner.session.create_binding().map_err(|e| anyhow!("cannot create an IOBinding: {e}"))?;
            for (name, v) in &values {
                b.bind_input(name.as_str(), v).map_err(|e| anyhow!("binding input '{name}': {e}"))?;
            }
            let mem = output_memory(&cfg.providers)?;
            for name in &runner.output_names {
                b.bind_output_to_device(name.as_str(), &mem).map_err(|e| anyhow!("binding output '{name}': {e}"))?;
            }
            Some(b)
        } else {
            None
        };
        Ok((Prepared { runner, values, binding }, infos))
    }

    /// One run; returns its wall time.
    fn run_once(&mut self) -> Result<Duration> {
        let session: &mut Session = &mut self.runner.session;
        let start = Instant::now();
        match &self.binding {
            Some(b) => {
                let out = session.run_binding(b).map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
                drop(out);
            }
            None => {
                let inputs: Vec<(&str, &DynValue)> = self.values.iter().map(|(n, v)| (n.as_str(), v)).collect();
                let out = session.run(inputs).map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
                drop(out);
            }
        }
        Ok(start.elapsed())
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
    let mut cfg = job.session.clone();
    cfg.profile_prefix = Some(dir.join(format!("ort_{stem}")));
    let (mut p, _) = Prepared::new(rt, job, &cfg, photo)?;
    p.run_once()?;
    for _ in 0..plan.op_profile_runs {
        p.run_once()?;
    }
    let trace: PathBuf = p.runner.end_profiling()?;
    let agg = opprof::aggregate_file(&trace, 1, plan.top_n);
    let _ = std::fs::remove_file(&trace);
    agg
}

/// Benchmarks one model. `tick` is called after each measured run with the count so far.
pub fn bench_model(
    rt: &Runtime,
    job: &ModelJob<'_>,
    photo: &Photo,
    plan: &RunPlan,
    scratch: &Path,
    tick: &dyn Fn(usize),
) -> Result<ModelResult> {
    let sha256 = sha256_file(job.path)?;
    let bytes = std::fs::metadata(job.path).map(|m| m.len()).unwrap_or(0);
    let (mut p, inputs) = Prepared::new(rt, job, &job.session, photo)?;
    let session_create_ms = ms(p.runner.create_time);
    let first_run_ms = ms(p.run_once()?);
    let (warmup_runs, warmup_ms) = warm_up(&mut p, plan.warmup)?;
    let samples = measure(&mut p, plan, tick)?;
    let summary = Summary::of(&samples).ok_or_else(|| anyhow!("{}: no valid timing samples", job.path.display()))?;
    let mut warnings = stats::warnings(Some(first_run_ms), &summary);
    drop(p);
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
        file: job.path.to_path_buf(),
        sha256,
        bytes,
        providers: job.session.providers.clone(),
        intra_threads: job.session.intra_threads,
        optimization: job.session.optimization.clone(),
        io_binding: job.io_binding,
        fallback: job.fallback,
        inputs,
        session_create_ms,
        first_run_ms,
        warmup_runs,
        warmup_ms,
        run_ms: summary,
        samples_ms: samples,
        warnings,
        op_profile,
    })
}
