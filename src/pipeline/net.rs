//! One model session as the stages use it: f32 or u8 tensors in by value (no copy on the way in),
//! outputs in model order, the time spent inside ONNX Runtime measured on every run.
//!
//! [`Net::image_input`] tells how a model wants its image: float NCHW normalised on the CPU (the
//! original models), or 8-bit NHWC pixels in a given channel order (a `fuse-io` variant such as
//! `_cuda`, whose pre/post-processing runs inside the model on the execution provider).
//!
//! A role whose profile asks for `io_binding` runs through [`BoundSession`] (fixed buffers, what CUDA
//! graphs need); otherwise a plain session run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ort::value::TensorElementType;

use super::frame::PixelFormat;
use crate::onnx::{Tensor, TensorData};
use crate::rewrite::fuse_io::{FuseIoSpec, METADATA_KEY};
use crate::runtime::binding::{BindDevice, BoundSession};
use crate::runtime::session::{from_value, ModelSource};
use crate::runtime::{EpConfig, Runtime, SessionConfig, SessionRunner};

enum Backend {
    Plain(SessionRunner),
    Bound(Box<BoundSession>),
}

/// One input tensor given to [`Net::run`]: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// Float values (converted to fp16 when the model's input is fp16).
    F32(Vec<usize>, Vec<f32>),
    /// 8-bit pixels for a fused-I/O input.
    U8(Vec<usize>, Vec<u8>),
}

/// How a model takes (or returns) an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLayout {
    /// `N×3×S×S` float, normalised on the CPU by the stage.
    FloatNchw,
    /// `N×S×S×3` uint8 pixels in this channel order; normalisation happens inside the model.
    Pixels(PixelFormat),
}

/// A loaded model with its input names and types.
pub struct Net {
    backend: Backend,
    /// The model file.
    pub path: PathBuf,
    /// Input names, element types and declared shapes (−1 = dynamic), in model order.
    pub inputs: Vec<(String, TensorElementType, Vec<i64>)>,
    /// Output names in model order.
    pub outputs: Vec<String>,
    /// Time spent creating the session.
    pub create_time: Duration,
    /// What `fuse-io` recorded in the model's metadata, if it was applied.
    pub fused: Option<FuseIoSpec>,
    /// Output element types in model order.
    output_types: Vec<Option<TensorElementType>>,
    /// What loading found worth reporting (a CUDA-graph fallback and why).
    pub notes: Vec<String>,
}

impl Net {
    /// Loads `path` with `cfg`. With `io_binding`, inputs with dynamic dims get their shape from
    /// `shapes`.
    pub fn load(
        rt: &Runtime,
        path: &Path,
        cfg: &SessionConfig,
        io_binding: bool,
        shapes: &HashMap<String, Vec<i64>>,
    ) -> Result<Net> {
        if !path.is_file() {
            bail!("model {} does not exist", path.display());
        }
        // Graph-free: this session reads the model's I/O, serves plain runs, and is the reference a
        // captured CUDA graph is checked against.
        let runner = SessionRunner::new(rt, ModelSource::File(path), &cfg.without_cuda_graphs())?;
        let inputs = runner.input_specs();
        let outputs = runner.output_names.clone();
        let output_types = runner.output_types();
        let create_time = runner.create_time;
        let fused = match runner.session.metadata().ok().and_then(|m| m.custom(METADATA_KEY)) {
            Some(json) => Some(
                serde_json::from_str::<FuseIoSpec>(&json)
                    .with_context(|| format!("{}: unreadable '{METADATA_KEY}' metadata", path.display()))?,
            ),
            None => None,
        };
        let mut notes = Vec::new();
        let backend = if io_binding {
            let device = cfg
                .providers
                .iter()
                .find_map(|p| match p {
                    EpConfig::Cuda { device_id, .. } => Some(BindDevice::Cuda(*device_id)),
                    _ => None,
                })
                .unwrap_or(BindDevice::Cpu);
            // Kept only as the graph check's reference: without graphs, freed before binding.
            let reference = cfg.uses_cuda_graph().then_some(runner);
            let bind = |cfg: &SessionConfig| {
                BoundSession::create(rt, ModelSource::File(path), cfg, device, shapes)
                    .with_context(|| format!("{}: binding inputs and outputs", path.display()))
            };
            let (mut bound, note) = bind(cfg)?;
            notes.extend(note);
            // A captured CUDA graph must compute what a plain run computes. It once did not: the
            // binding's first plain run captured the graph on ORT's temporary buffers, and every
            // replay wrote there instead of the bound outputs (bench-results/h100/README.md).
            // Two seeded random inputs, bound+graph vs the plain graph-free session; on a mismatch
            // the model runs bound without graphs; the run's notes say which happened.
            if let Some(mut reference) = reference.filter(|_| notes.is_empty()) {
                let mismatch = replay_mismatch(&mut reference, &mut bound)?;
                drop(reference);
                match mismatch {
                    Some(why) => {
                        drop(bound);
                        let note = format!(
                            "CUDA graph replay disagreed with a plain run ({why}); running without CUDA graphs"
                        );
                        bound = bind(&cfg.without_cuda_graphs())?.0;
                        notes.push(note);
                    }
                    None => notes.push(format!(
                        "CUDA graph captured; its replay agreed with a plain run on {REPLAY_CHECK_INPUTS} random inputs"
                    )),
                }
            }
            for n in &notes {
                eprintln!("note: {}: {n}", path.display());
            }
            Backend::Bound(Box::new(bound))
        } else {
            Backend::Plain(runner)
        };
        Ok(Net { backend, path: path.to_path_buf(), inputs, outputs, create_time, fused, output_types, notes })
    }

    /// Declared shape of input `i` (−1 = dynamic).
    pub fn input_shape(&self, i: usize) -> &[i64] {
        &self.inputs[i].2
    }

    /// How input `i` takes an image of side `side`: float `N×3×S×S` or uint8 `N×S×S×3` (fused I/O),
    /// checked against the declared shape. `model_order` is the channel order the model computes
    /// in (RGB for every model the pipeline runs); a fused input whose channels were swapped takes
    /// the other order.
    pub fn image_input(&self, i: usize, model_order: PixelFormat) -> Result<(ImageLayout, u32)> {
        let (name, ty, shape) = &self.inputs[i];
        let side = |h: i64, w: i64| (h == w && h > 0).then_some(h as u32);
        match (ty, shape.as_slice()) {
            (TensorElementType::Float32 | TensorElementType::Float16, [_, 3, h, w]) if side(*h, *w).is_some() => {
                Ok((ImageLayout::FloatNchw, *h as u32))
            }
            (TensorElementType::Uint8, [_, h, w, 3]) if side(*h, *w).is_some() => {
                Ok((ImageLayout::Pixels(self.pixel_order(i, model_order)), *h as u32))
            }
            _ => bail!(
                "{}: input '{name}' is {ty:?} {shape:?}; expected a square float N×3×S×S image or a uint8 N×S×S×3 one \
                 (fused I/O)",
                self.path.display()
            ),
        }
    }

    /// The channel order fused input `i` takes pixels in, for a model computing in `model_order`.
    pub fn pixel_order(&self, i: usize, model_order: PixelFormat) -> PixelFormat {
        if self.swapped(&self.inputs[i].0, true) {
            other(model_order)
        } else {
            model_order
        }
    }

    /// How output `i` returns an image: float NCHW, or uint8 NHWC pixels in a channel order (see
    /// [`Net::image_input`]).
    pub fn image_output(&self, i: usize, model_order: PixelFormat) -> ImageLayout {
        match self.output_types.get(i).copied().flatten() {
            Some(TensorElementType::Uint8) => {
                let swapped = self.outputs.get(i).is_some_and(|n| self.swapped(n, false));
                ImageLayout::Pixels(if swapped { other(model_order) } else { model_order })
            }
            _ => ImageLayout::FloatNchw,
        }
    }

    /// Whether fuse-io reversed the channels of input (or output) `name`. A uint8 image without
    /// the metadata (a variant made by an older faceperf) follows the recipes' convention: OpenCV
    /// BGR frames into RGB models, so reversed.
    fn swapped(&self, name: &str, input: bool) -> bool {
        match &self.fused {
            Some(f) if input => f.inputs.iter().find(|s| s.name == name).is_none_or(|s| s.swap_channels),
            Some(f) => f.outputs.iter().find(|s| s.name == name).is_none_or(|s| s.swap_channels),
            None => true,
        }
    }

    /// Runs on inputs given in model order; f32 values for an fp16 input are converted, and a feed
    /// whose type does not match the input is an error. Returns the outputs in model order and the
    /// time spent inside ONNX Runtime.
    pub fn run(&mut self, inputs: Vec<Feed>) -> Result<(Vec<Tensor>, Duration)> {
        if inputs.len() != self.inputs.len() {
            bail!("{} takes {} inputs, got {}", self.path.display(), self.inputs.len(), inputs.len());
        }
        match &mut self.backend {
            Backend::Plain(runner) => {
                let mut values = Vec::with_capacity(inputs.len());
                for ((name, ty, _), feed) in self.inputs.iter().zip(inputs) {
                    let v = match (ty, feed) {
                        (TensorElementType::Float32, Feed::F32(dims, data)) => {
                            ort::value::Tensor::from_array((shape_of(&dims), data)).map(|t| t.into_dyn())
                        }
                        (TensorElementType::Float16, Feed::F32(dims, data)) => {
                            let h: Vec<half::f16> = data.into_iter().map(half::f16::from_f32).collect();
                            ort::value::Tensor::from_array((shape_of(&dims), h)).map(|t| t.into_dyn())
                        }
                        (TensorElementType::Uint8, Feed::U8(dims, data)) => {
                            ort::value::Tensor::from_array((shape_of(&dims), data)).map(|t| t.into_dyn())
                        }
                        (other, feed) => bail!("{}: {}", self.path.display(), mismatch(name, *other, &feed)),
                    }
                    .map_err(|e| anyhow!("input '{name}': {e}"))?;
                    values.push((name.clone(), v));
                }
                let start = Instant::now();
                let outputs = runner
                    .session
                    .run(values)
                    .map_err(|e| anyhow!("{}: ONNX Runtime run failed: {e}", self.path.display()))?;
                let took = start.elapsed();
                let mut result = Vec::with_capacity(outputs.len());
                for (name, v) in outputs.iter() {
                    result.push(from_value(&v).with_context(|| format!("output '{name}'"))?);
                }
                Ok((result, took))
            }
            Backend::Bound(bound) => {
                let mut named = Vec::with_capacity(inputs.len());
                for ((name, ty, _), feed) in self.inputs.iter().zip(inputs) {
                    let (dims, data) = match (ty, feed) {
                        (TensorElementType::Float32, Feed::F32(dims, data)) => (dims, TensorData::F32(data)),
                        (TensorElementType::Float16, Feed::F32(dims, data)) => {
                            (dims, TensorData::F16(data.into_iter().map(half::f16::from_f32).collect()))
                        }
                        (TensorElementType::Uint8, Feed::U8(dims, data)) => (dims, TensorData::U8(data)),
                        (other, feed) => bail!("{}: {}", self.path.display(), mismatch(name, *other, &feed)),
                    };
                    named.push((name.clone(), Tensor { dims, data }));
                }
                let start = Instant::now();
                let out = bound.run(&named)?;
                Ok((out.into_iter().map(|(_, t)| t).collect(), start.elapsed()))
            }
        }
    }
}

fn shape_of(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

fn other(order: PixelFormat) -> PixelFormat {
    match order {
        PixelFormat::Rgb => PixelFormat::Bgr,
        PixelFormat::Bgr => PixelFormat::Rgb,
    }
}

fn mismatch(name: &str, ty: TensorElementType, feed: &Feed) -> String {
    let given = match feed {
        Feed::F32(..) => "float values",
        Feed::U8(..) => "8-bit pixels",
    };
    format!("input '{name}' is {ty:?} but the stage gave {given} (a fused-I/O variant where an original was expected?)")
}

/// Seeded random values for every bound input: floats in −1..1, bytes 0..=255.
fn random_inputs(bound: &BoundSession, seed: u64) -> Result<Vec<(String, Tensor)>> {
    let mut rng = crate::util::rng::Rng::new(seed);
    bound
        .input_layout()
        .into_iter()
        .map(|(name, ty, dims)| {
            let n: usize = dims.iter().product();
            let data = match ty {
                TensorElementType::Float32 => TensorData::F32(rng.vec(n, -1.0, 1.0)),
                TensorElementType::Float16 => {
                    TensorData::F16(rng.vec(n, -1.0, 1.0).into_iter().map(half::f16::from_f32).collect())
                }
                TensorElementType::Uint8 => TensorData::U8((0..n).map(|_| rng.below(256) as u8).collect()),
                other => bail!("input '{name}': cannot make random {other:?} values"),
            };
            Ok((name, Tensor { dims, data }))
        })
        .collect()
}

/// Why `a` (graph replay) and `b` (plain run) disagree, if they do: NaN or infinity where the
/// other is finite, or a relative L2 error above 1e-2 on any output. Tolerant of the small
/// differences two sessions' kernel choices make; a replay computing on stale data is far off.
pub fn outputs_disagree(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} outputs vs {}", a.len(), b.len()));
    }
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let (x, y) = (x.to_f32s(), y.to_f32s());
        if x.len() != y.len() {
            return Some(format!("output '{name}': {} values vs {}", x.len(), y.len()));
        }
        let bad = x.iter().zip(&y).filter(|(p, q)| p.is_finite() != q.is_finite()).count();
        if bad > 0 {
            return Some(format!("output '{name}': {bad} values non-finite in one run only"));
        }
        let (mut err, mut norm) = (0f64, 0f64);
        for (p, q) in x.iter().zip(&y).filter(|(p, _)| p.is_finite()) {
            err += (*p as f64 - *q as f64).powi(2);
            norm += (*q as f64).powi(2);
        }
        let rel = (err / norm.max(1e-12)).sqrt();
        if rel > 1e-2 {
            return Some(format!("output '{name}': relative L2 error {rel:.3}"));
        }
    }
    None
}

/// Seeded random input sets a captured graph's replay is checked on at load.
const REPLAY_CHECK_INPUTS: usize = 2;

/// Runs [`REPLAY_CHECK_INPUTS`] random input sets through `bound` and through the graph-free `reference`.
fn replay_mismatch(reference: &mut SessionRunner, bound: &mut BoundSession) -> Result<Option<String>> {
    for seed in 1..=REPLAY_CHECK_INPUTS as u64 {
        let inputs = random_inputs(bound, seed)?;
        let replay = bound.run(&inputs)?;
        let direct = reference.run(&inputs)?;
        if let Some(why) = outputs_disagree(&replay, &direct) {
            return Ok(Some(why));
        }
    }
    Ok(None)
}
