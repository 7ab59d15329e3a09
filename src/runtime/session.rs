//! Sessions: creating one from a model with a provider configuration, and running it on
//! [`Tensor`]s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session};
use ort::value::{DynValue, TensorElementType, ValueType};
use serde::{Deserialize, Serialize};

use super::ep::EpConfig;
use super::Runtime;
use crate::onnx::{Tensor, TensorData};

/// How to build a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Providers in priority order; CPU is always the implicit last resort inside ORT.
    #[serde(default = "default_eps")]
    pub providers: Vec<EpConfig>,
    /// Intra-op threads (0 = ORT's default: one per physical core).
    #[serde(default)]
    pub intra_threads: usize,
    /// Graph optimisation level: `disable`, `basic`, `extended` or `all` (default).
    #[serde(default = "default_opt")]
    pub optimization: String,
    /// Write ORT's per-node profiling JSON with this path prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_prefix: Option<PathBuf>,
    /// No silent fallback: set ORT's `session.disable_cpu_ep_fallback`, and fail at load, naming the
    /// nodes, when the partition planner says the first provider leaves any to the CPU.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_ep: bool,
}

fn default_eps() -> Vec<EpConfig> {
    vec![EpConfig::default()]
}
fn default_opt() -> String {
    "all".into()
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            providers: default_eps(),
            intra_threads: 0,
            optimization: default_opt(),
            profile_prefix: None,
            strict_ep: false,
        }
    }
}

impl SessionConfig {
    /// CPU provider with `threads` intra-op threads.
    pub fn cpu(threads: usize) -> SessionConfig {
        SessionConfig { intra_threads: threads, ..Default::default() }
    }

    /// True when a provider captures CUDA graphs.
    pub fn uses_cuda_graph(&self) -> bool {
        self.providers.iter().any(EpConfig::uses_cuda_graph)
    }

    /// The same settings with CUDA graphs off: reference sessions for the replay checks, and
    /// fallbacks when capture fails.
    pub fn without_cuda_graphs(&self) -> SessionConfig {
        let mut c = self.clone();
        for p in &mut c.providers {
            if let EpConfig::Cuda { cuda_graph, .. } = p {
                *cuda_graph = false;
            }
        }
        c
    }

    fn opt_level(&self) -> Result<GraphOptimizationLevel> {
        Ok(match self.optimization.as_str() {
            "disable" => GraphOptimizationLevel::Disable,
            "basic" => GraphOptimizationLevel::Level1,
            "extended" => GraphOptimizationLevel::Level2,
            "all" => GraphOptimizationLevel::All,
            other => bail!("optimization level '{other}' is not one of disable, basic, extended, all"),
        })
    }
}

fn ort_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("{e}")
}

/// Where a model comes from when building a session.
pub enum ModelSource<'a> {
    /// A file (external data resolved by ORT relative to it).
    File(&'a Path),
    /// Serialized bytes.
    Bytes(&'a [u8]),
}

/// The run options a plain run needs under `cfg`: none, or, when `cfg` captures CUDA graphs, the
/// annotation that keeps the run out of capture and replay.
pub fn plain_run_options(cfg: &SessionConfig) -> Result<Option<RunOptions>> {
    if !cfg.uses_cuda_graph() {
        return Ok(None);
    }
    let mut o = RunOptions::new().map_err(ort_err)?;
    o.set(CUDA_GRAPH_ANNOTATION_KEY, CUDA_GRAPH_SKIP).map_err(ort_err)?;
    Ok(Some(o))
}

/// A session plus what was needed to build it.
pub struct SessionRunner {
    pub session: Session,
    /// Providers requested, by ORT name.
    pub providers: Vec<String>,
    /// Time spent creating the session.
    pub create_time: Duration,
    /// Input names in model order.
    pub input_names: Vec<String>,
    /// Output names in model order.
    pub output_names: Vec<String>,
    /// For a session that captures CUDA graphs: run options that keep a plain [`Self::run`] out of
    /// capture and replay. Without them the first plain run captures the graph on ORT's temporary
    /// copies of its feeds and fetches, and every later bound run replays those addresses instead
    /// of the bound buffers (the wrong-output bug of bench-results/h100/run-20261125b).
    plain_run_options: Option<RunOptions>,
    /// How many nodes the partition planner sends to the CPU provider (non-strict runs), if any.
    pub fallback_note: Option<String>,
}

/// The partition planner's verdict on the model for the first provider of `cfg` (none for the CPU
/// provider, for providers without planner rules, or for a model that does not parse).
fn plan_fallback(
    rt: &Runtime,
    model: &ModelSource<'_>,
    cfg: &SessionConfig,
) -> Option<crate::partition::fallback::FallbackReport> {
    let ep = cfg.providers.first()?;
    crate::partition::fallback::planner_ep(ep)?;
    let m = match model {
        ModelSource::File(p) => crate::onnx::Model::load(p).ok()?,
        ModelSource::Bytes(b) => crate::onnx::Model::from_bytes(b).ok()?,
    };
    crate::partition::fallback::check(&m, ep, &rt.version)
}

/// ORT's run-config key for the CUDA-graph annotation; `-1` disables capture and replay for a run.
pub const CUDA_GRAPH_ANNOTATION_KEY: &str = "gpu_graph_id";
/// The annotation value that keeps one run out of CUDA-graph capture and replay.
pub const CUDA_GRAPH_SKIP: &str = "-1";

impl SessionRunner {
    /// Builds a session. A requested provider that the library does not offer is an error naming it;
    /// with `strict_ep`, so is a model whose nodes the first provider does not all take (checked with
    /// the partition planner first, then by ORT itself). Otherwise the nodes that go to the CPU are
    /// counted in [`Self::fallback_note`] and said on stderr.
    pub fn new(rt: &Runtime, model: ModelSource<'_>, cfg: &SessionConfig) -> Result<SessionRunner> {
        let fallback = plan_fallback(rt, &model, cfg);
        let label = match &model {
            ModelSource::File(p) => p.display().to_string(),
            ModelSource::Bytes(_) => "the model".to_string(),
        };
        if let Some(f) = fallback.as_ref().filter(|f| cfg.strict_ep && !f.cpu_nodes.is_empty()) {
            bail!("{}", f.strict_error(&label));
        }
        let fallback_note = fallback.as_ref().and_then(|f| f.note(&label));
        if let Some(n) = &fallback_note {
            eprintln!("note: {n}");
        }
        for ep in &cfg.providers {
            if !rt.has_provider(ep.provider_name()) {
                bail!(
                    "execution provider {} is not available in ONNX Runtime {} at {} (available: {})",
                    ep.provider_name(),
                    rt.version,
                    rt.library.display(),
                    rt.providers.join(", ")
                );
            }
        }
        let start = Instant::now();
        let dispatch: Vec<_> = cfg.providers.iter().map(EpConfig::to_dispatch).collect::<Result<_>>()?;
        let mut b = Session::builder(rt.environment())
            .map_err(ort_err)?
            .with_optimization_level(cfg.opt_level()?)
            .map_err(ort_err)?
            .with_execution_providers(dispatch)
            .map_err(ort_err)?;
        if cfg.intra_threads > 0 {
            b = b.with_intra_threads(cfg.intra_threads).map_err(ort_err)?;
        }
        if let Some(p) = &cfg.profile_prefix {
            b = b.with_profiling(p).map_err(ort_err)?;
        }
        // ORT counts every node of a CPU-provider session as fallback, so strict only applies when
        // another provider comes first.
        let strict_here = cfg.strict_ep && !matches!(cfg.providers.first(), None | Some(EpConfig::Cpu { .. }));
        if strict_here {
            b = b.with_disable_cpu_fallback().map_err(ort_err)?;
        }
        let strict = if strict_here { " (--strict-ep: CPU fallback disabled)" } else { "" };
        let session = match model {
            ModelSource::File(p) => b
                .commit_from_file(p)
                .map_err(|e| anyhow!("{}: ONNX Runtime cannot load the model{strict}: {e}", p.display()))?,
            ModelSource::Bytes(bytes) => {
                b.commit_from_memory(bytes).map_err(|e| anyhow!("ONNX Runtime cannot load the model{strict}: {e}"))?
            }
        };
        let input_names = session.inputs().iter().map(|i| i.name().to_string()).collect();
        let output_names = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let plain_run_options = plain_run_options(cfg)?;
        Ok(SessionRunner {
            fallback_note,
            session,
            providers: cfg.providers.iter().map(|e| e.provider_name().to_string()).collect(),
            create_time: start.elapsed(),
            input_names,
            output_names,
            plain_run_options,
        })
    }

    /// True when plain runs of this session are kept out of CUDA-graph capture and replay (the
    /// session was built to capture graphs, which only bound runs may do).
    pub fn plain_runs_skip_graphs(&self) -> bool {
        self.plain_run_options.is_some()
    }

    /// Declared element type and shape of each input (`-1` for dynamic dims).
    pub fn input_specs(&self) -> Vec<(String, TensorElementType, Vec<i64>)> {
        self.session
            .inputs()
            .iter()
            .filter_map(|i| match i.dtype() {
                ValueType::Tensor { ty, shape, .. } => {
                    Some((i.name().to_string(), *ty, shape.iter().copied().collect()))
                }
                _ => None,
            })
            .collect()
    }

    /// Output element types in model order (`None` for a non-tensor output).
    pub fn output_types(&self) -> Vec<Option<TensorElementType>> {
        self.session
            .outputs()
            .iter()
            .map(|o| match o.dtype() {
                ValueType::Tensor { ty, .. } => Some(*ty),
                _ => None,
            })
            .collect()
    }

    /// Runs with named inputs and returns all outputs, in model order.
    pub fn run(&mut self, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>> {
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for (name, t) in inputs {
            values.push((name.clone(), to_value(t).with_context(|| format!("input '{name}'"))?));
        }
        let outputs = match &self.plain_run_options {
            Some(options) => self.session.run_with_options(values, options),
            None => self.session.run(values),
        }
        .map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, v) in outputs.iter() {
            result.push((name.to_string(), from_value(&v).with_context(|| format!("output '{name}'"))?));
        }
        Ok(result)
    }

    /// Runs on ORT values already made and drops the outputs: what a timing loop needs.
    pub fn run_values(&mut self, inputs: &[(String, DynValue)]) -> Result<()> {
        let inputs: Vec<(&str, &DynValue)> = inputs.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let outputs = match &self.plain_run_options {
            Some(options) => self.session.run_with_options(inputs, options),
            None => self.session.run(inputs),
        }
        .map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
        drop(outputs);
        Ok(())
    }

    /// Ends ORT profiling and returns the JSON file's path.
    pub fn end_profiling(&mut self) -> Result<PathBuf> {
        self.session.end_profiling().map(PathBuf::from).map_err(ort_err)
    }
}

/// Converts a [`Tensor`] into an ORT value (copying the data).
pub fn to_value(t: &Tensor) -> Result<DynValue> {
    let shape: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
    Ok(match &t.data {
        TensorData::F32(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::F16(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::F64(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::I64(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::I32(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::I8(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::U8(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
        TensorData::Bool(v) => ort::value::Tensor::from_array((shape, v.clone())).map_err(ort_err)?.into_dyn(),
    })
}

/// Copies an ORT tensor value out into a [`Tensor`].
pub fn from_value(v: &ort::value::ValueRef<'_>) -> Result<Tensor> {
    let ty = match v.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => bail!("not a tensor: {other:?}"),
    };
    macro_rules! take {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = v.try_extract_tensor::<$t>().map_err(ort_err)?;
            Tensor {
                dims: shape.iter().map(|&d| d.max(0) as usize).collect(),
                data: TensorData::$variant(data.to_vec()),
            }
        }};
    }
    Ok(match ty {
        TensorElementType::Float32 => take!(f32, F32),
        TensorElementType::Float16 => take!(half::f16, F16),
        TensorElementType::Float64 => take!(f64, F64),
        TensorElementType::Int64 => take!(i64, I64),
        TensorElementType::Int32 => take!(i32, I32),
        TensorElementType::Int8 => take!(i8, I8),
        TensorElementType::Uint8 => take!(u8, U8),
        TensorElementType::Bool => take!(bool, Bool),
        other => bail!("output element type {other:?} is not supported"),
    })
}
