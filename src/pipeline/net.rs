//! One model session as the stages use it: f32 tensors in by value (no copy on the way in), outputs
//! in model order, the time spent inside ONNX Runtime measured on every run.
//!
//! A role whose profile asks for `io_binding` runs through [`BoundSession`] (fixed buffers, what CUDA
//! graphs need); otherwise a plain session run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ort::value::TensorElementType;

use crate::onnx::{Tensor, TensorData};
use crate::runtime::binding::{BindDevice, BoundSession};
use crate::runtime::session::{from_value, ModelSource};
use crate::runtime::{EpConfig, Runtime, SessionConfig, SessionRunner};

enum Backend {
    Plain(SessionRunner),
    Bound(Box<BoundSession>),
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
        let runner = SessionRunner::new(rt, ModelSource::File(path), cfg)?;
        let inputs = runner.input_specs();
        let outputs = runner.output_names.clone();
        let create_time = runner.create_time;
        let backend = if io_binding {
            let device = cfg
                .providers
                .iter()
                .find_map(|p| match p {
                    EpConfig::Cuda { device_id, .. } => Some(BindDevice::Cuda(*device_id)),
                    _ => None,
                })
                .unwrap_or(BindDevice::Cpu);
            drop(runner);
            let (bound, note) = BoundSession::create(rt, ModelSource::File(path), cfg, device, shapes)
                .with_context(|| format!("{}: binding inputs and outputs", path.display()))?;
            if let Some(note) = note {
                eprintln!("note: {}: {note}", path.display());
            }
            Backend::Bound(Box::new(bound))
        } else {
            Backend::Plain(runner)
        };
        Ok(Net { backend, path: path.to_path_buf(), inputs, outputs, create_time })
    }

    /// Declared shape of input `i` (−1 = dynamic).
    pub fn input_shape(&self, i: usize) -> &[i64] {
        &self.inputs[i].2
    }

    /// Runs on f32 inputs given in model order as (shape, values); an fp16 input gets its values
    /// converted. Returns the outputs in model order and the time spent inside ONNX Runtime.
    pub fn run(&mut self, inputs: Vec<(Vec<usize>, Vec<f32>)>) -> Result<(Vec<Tensor>, Duration)> {
        if inputs.len() != self.inputs.len() {
            bail!("{} takes {} inputs, got {}", self.path.display(), self.inputs.len(), inputs.len());
        }
        match &mut self.backend {
            Backend::Plain(runner) => {
                let mut values = Vec::with_capacity(inputs.len());
                for ((name, ty, _), (dims, data)) in self.inputs.iter().zip(inputs) {
                    let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
                    let v = match ty {
                        TensorElementType::Float32 => {
                            ort::value::Tensor::from_array((shape, data)).map(|t| t.into_dyn())
                        }
                        TensorElementType::Float16 => {
                            let h: Vec<half::f16> = data.into_iter().map(half::f16::from_f32).collect();
                            ort::value::Tensor::from_array((shape, h)).map(|t| t.into_dyn())
                        }
                        other => bail!("{}: input '{name}' is {other:?}, not a float", self.path.display()),
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
                for ((name, ty, _), (dims, data)) in self.inputs.iter().zip(inputs) {
                    let data = match ty {
                        TensorElementType::Float16 => {
                            TensorData::F16(data.into_iter().map(half::f16::from_f32).collect())
                        }
                        _ => TensorData::F32(data),
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
