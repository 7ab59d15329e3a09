//! Runs through IOBinding with fixed buffers: what CUDA graphs need, and what keeps data on the GPU.
//!
//! A CUDA graph replays kernels on the device addresses captured in the first run, so inputs and
//! outputs must live at fixed device buffers, updated in place before each run (a plain `run()` with
//! CUDA graphs enabled fails in ort). Only bound runs may capture: the probe run that learns the
//! output shapes is a plain run, which [`SessionRunner`] keeps out of capture and replay (had it
//! captured, every replay would read and write ORT's temporary copies instead of these buffers).
//! [`BoundSession`] owns one set of buffers per session; its
//! `run` takes `&mut self`, so sharing one across pipeline stages requires a lock around
//! update→run→read ([`SharedBoundSession`]), which is exactly the race the reference had.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::IoBinding;
use ort::value::{DynTensor, TensorElementType};
use serde::Serialize;

use super::session::{from_value, ModelSource, SessionRunner};
use super::{Runtime, SessionConfig};
use crate::onnx::{Tensor, TensorData};

/// Where bound buffers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BindDevice {
    /// Host memory (CPU provider; used to test the binding path without a GPU).
    Cpu,
    /// CUDA device memory on device `id`.
    Cuda(i32),
}

/// A session run through IOBinding with fixed input and output buffers.
pub struct BoundSession {
    runner: SessionRunner,
    binding: IoBinding,
    device: BindDevice,
    inputs: Vec<(String, DynTensor)>,
    outputs: Vec<(String, DynTensor)>,
    host_outputs: Vec<DynTensor>,
    /// Completed runs.
    pub runs: u64,
    /// Wall time of the session's first run (the probe that learns output shapes).
    pub first_run_time: Duration,
    /// Wall time from the session existing to the binding being ready: the probe run, buffer
    /// allocation and, in [`BoundSession::create`], the CUDA-graph capture and replay check.
    pub setup_time: Duration,
}

/// Works out the shapes of a session's dynamic inputs once the session exists.
pub type ShapesFor<'a> = dyn Fn(&SessionRunner) -> Result<HashMap<String, Vec<i64>>> + 'a;

/// A bound session shared between threads: lock it around each `run`.
pub type SharedBoundSession = Arc<Mutex<BoundSession>>;

fn ort_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("{e}")
}

fn memory_info(device: BindDevice) -> Result<MemoryInfo<'static>> {
    match device {
        BindDevice::Cpu => MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default),
        BindDevice::Cuda(id) => MemoryInfo::new(AllocationDevice::CUDA, id, AllocatorType::Device, MemoryType::Default),
    }
    .map_err(ort_err)
}

/// A buffer on `device`, shaped and typed like `t`, from the session's allocator (uninitialised).
fn device_buffer(t: &Tensor, alloc: &Allocator) -> Result<DynTensor> {
    let shape: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
    DynTensor::new(alloc, element_type(t)?, shape).map_err(ort_err)
}

fn element_type(t: &Tensor) -> Result<TensorElementType> {
    Ok(match t.data {
        TensorData::F32(_) => TensorElementType::Float32,
        TensorData::F16(_) => TensorElementType::Float16,
        TensorData::I64(_) => TensorElementType::Int64,
        TensorData::I32(_) => TensorElementType::Int32,
        TensorData::U8(_) => TensorElementType::Uint8,
        _ => bail!("IOBinding supports f32, f16, i64, i32 and u8 tensors"),
    })
}

/// Writes `t` into a host tensor of the same type and element count.
fn write_host(dst: &mut DynTensor, t: &Tensor) -> Result<()> {
    macro_rules! put {
        ($ty:ty, $v:expr) => {{
            let (_, buf) = dst.try_extract_tensor_mut::<$ty>().map_err(ort_err)?;
            if buf.len() != $v.len() {
                bail!("input has {} elements, the bound buffer {}", $v.len(), buf.len());
            }
            buf.copy_from_slice($v);
        }};
    }
    match &t.data {
        TensorData::F32(v) => put!(f32, v),
        TensorData::F16(v) => put!(half::f16, v),
        TensorData::I64(v) => put!(i64, v),
        TensorData::I32(v) => put!(i32, v),
        TensorData::U8(v) => put!(u8, v),
        _ => bail!("unsupported input type for IOBinding"),
    }
    Ok(())
}

impl BoundSession {
    /// Binds `runner`'s inputs and outputs to fixed buffers on `device`. Inputs with dynamic dims need
    /// their shape in `shapes`. A first, plain run on zero inputs learns the output shapes (and warms
    /// up); it never captures a CUDA graph, so the first bound run is the one that does.
    pub fn new(runner: SessionRunner, device: BindDevice, shapes: &HashMap<String, Vec<i64>>) -> Result<BoundSession> {
        let mut runner = runner;
        let specs = runner.input_specs();
        let mut zero_inputs = Vec::new();
        for (name, ty, declared) in &specs {
            let shape: Vec<i64> = match shapes.get(name) {
                Some(s) => s.clone(),
                None if declared.iter().all(|&d| d > 0) => declared.clone(),
                None => bail!("input '{name}' has dynamic dims {declared:?}; give its shape for binding"),
            };
            let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            let n: usize = dims.iter().product();
            let data = match ty {
                TensorElementType::Float32 => TensorData::F32(vec![0.0; n]),
                TensorElementType::Float16 => TensorData::F16(vec![half::f16::ZERO; n]),
                TensorElementType::Int64 => TensorData::I64(vec![0; n]),
                TensorElementType::Int32 => TensorData::I32(vec![0; n]),
                TensorElementType::Uint8 => TensorData::U8(vec![0; n]),
                other => bail!("input '{name}': element type {other:?} cannot be bound"),
            };
            zero_inputs.push((name.clone(), Tensor { dims, data }));
        }
        let start = Instant::now();
        let probe = runner.run(&zero_inputs).context("first run to learn output shapes")?;
        let first_run_time = start.elapsed();

        let info = memory_info(device)?;
        let device_alloc = Allocator::new(&runner.session, info).map_err(ort_err)?;
        let host_alloc = Allocator::default();
        let mut binding = runner.session.create_binding().map_err(ort_err)?;
        let mut inputs = Vec::new();
        for (name, t) in &zero_inputs {
            let buf = device_buffer(t, &device_alloc)?;
            binding.bind_input(name.as_str(), &buf).map_err(ort_err)?;
            inputs.push((name.clone(), buf));
        }
        let mut outputs = Vec::new();
        let mut host_outputs = Vec::new();
        for (name, t) in &probe {
            let shape: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
            let ty = element_type(t)?;
            let mut buf = device_buffer(t, &device_alloc)?;
            binding.bind_output(name.as_str(), buf.view_mut()).map_err(ort_err)?;
            outputs.push((name.clone(), buf));
            host_outputs.push(DynTensor::new(&host_alloc, ty, shape).map_err(ort_err)?);
        }
        Ok(BoundSession {
            runner,
            binding,
            device,
            inputs,
            outputs,
            host_outputs,
            runs: 0,
            first_run_time,
            setup_time: start.elapsed(),
        })
    }

    /// Builds a session from `source` with `cfg` and binds it. When the config asks for CUDA graphs and
    /// the capture fails, it falls back to plain CUDA runs through the same binding; the reason is
    /// returned so callers can report it.
    pub fn create(
        rt: &Runtime,
        source: ModelSource<'_>,
        cfg: &SessionConfig,
        device: BindDevice,
        shapes: &HashMap<String, Vec<i64>>,
    ) -> Result<(BoundSession, Option<String>)> {
        BoundSession::create_with(rt, source, cfg, device, &|_| Ok(shapes.clone()))
    }

    /// Like [`BoundSession::create`], with the shapes of dynamic inputs worked out from the session
    /// (its declared inputs) once it exists.
    pub fn create_with(
        rt: &Runtime,
        source: ModelSource<'_>,
        cfg: &SessionConfig,
        device: BindDevice,
        shapes: &ShapesFor<'_>,
    ) -> Result<(BoundSession, Option<String>)> {
        let source_copy = match &source {
            ModelSource::File(p) => ModelSource::File(p),
            ModelSource::Bytes(b) => ModelSource::Bytes(b),
        };
        let bind = |r: SessionRunner, graph_check: bool| -> Result<BoundSession> {
            let start = Instant::now();
            let shapes = shapes(&r)?;
            let mut b = BoundSession::new(r, device, &shapes)?;
            if graph_check {
                // The graph is captured on the first bound run; a second proves replay works.
                b.run_zeroed()?;
                b.run_zeroed()?;
            }
            b.setup_time = start.elapsed();
            Ok(b)
        };
        let attempt = SessionRunner::new(rt, source, cfg).and_then(|r| bind(r, true));
        match attempt {
            Ok(b) => Ok((b, None)),
            Err(e) if cfg.uses_cuda_graph() => {
                let b = bind(SessionRunner::new(rt, source_copy, &cfg.without_cuda_graphs())?, false)?;
                Ok((b, Some(format!("CUDA graph capture failed, running without graphs: {e:#}"))))
            }
            Err(e) => Err(e),
        }
    }

    fn run_zeroed(&mut self) -> Result<()> {
        self.runner.session.run_binding(&self.binding).map_err(|e| anyhow!("bound run failed: {e}"))?;
        self.binding.synchronize_outputs().map_err(ort_err)?;
        Ok(())
    }

    /// Name, element type and shape of each bound input, in model order.
    pub fn input_layout(&self) -> Vec<(String, TensorElementType, Vec<usize>)> {
        self.inputs
            .iter()
            .map(|(n, t)| (n.clone(), *t.data_type(), t.shape().iter().map(|&d| d.max(0) as usize).collect()))
            .collect()
    }

    /// The device buffers live on.
    pub fn device(&self) -> BindDevice {
        self.device
    }

    /// The underlying runner (names, creation time).
    pub fn runner(&self) -> &SessionRunner {
        &self.runner
    }

    /// Copies `inputs` into the bound buffers, runs, and copies the outputs back to the host.
    pub fn run(&mut self, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>> {
        self.write_inputs(inputs)?;
        self.run_bound()?;
        self.fetch_outputs()?;
        self.read_outputs()
    }

    /// Copies `inputs` into the bound input buffers (each must match its buffer's element count).
    /// Inputs not named keep their previous contents.
    pub fn write_inputs(&mut self, inputs: &[(String, Tensor)]) -> Result<()> {
        for (name, t) in inputs {
            let slot =
                self.inputs.iter_mut().find(|(n, _)| n == name).ok_or_else(|| anyhow!("no bound input '{name}'"))?;
            match self.device {
                BindDevice::Cpu => write_host(&mut slot.1, t).with_context(|| format!("input '{name}'"))?,
                BindDevice::Cuda(_) => {
                    let host = super::session::to_value(t)?;
                    let host: DynTensor = host.downcast().map_err(ort_err)?;
                    host.copy_into(slot.1.view_mut())
                        .map_err(|e| anyhow!("input '{name}': host→device copy failed: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Runs on the current contents of the bound input buffers and waits until the outputs are
    /// complete in their (device) buffers. Benchmarks time this with inputs written once.
    pub fn run_bound(&mut self) -> Result<()> {
        if self.device != BindDevice::Cpu {
            // Input copies ran on another stream; make them visible to the session's stream.
            self.binding.synchronize_inputs().map_err(ort_err)?;
        }
        self.runner.session.run_binding(&self.binding).map_err(|e| anyhow!("bound run failed: {e}"))?;
        if self.device != BindDevice::Cpu {
            // A replayed CUDA graph is only launched by `run`; wait for it before reading outputs.
            self.binding.synchronize_outputs().map_err(ort_err)?;
        }
        self.runs += 1;
        Ok(())
    }

    /// Copies the device output buffers into the host staging buffers (nothing to do on the CPU).
    pub fn fetch_outputs(&mut self) -> Result<()> {
        if let BindDevice::Cuda(_) = self.device {
            for ((name, buf), host) in self.outputs.iter().zip(self.host_outputs.iter_mut()) {
                buf.copy_into(host.view_mut()).map_err(|e| anyhow!("output '{name}': device→host copy failed: {e}"))?;
            }
        }
        Ok(())
    }

    /// The outputs of the last run as host tensors, in model order (after [`Self::fetch_outputs`]).
    pub fn read_outputs(&self) -> Result<Vec<(String, Tensor)>> {
        let mut result = Vec::with_capacity(self.outputs.len());
        for ((name, buf), host) in self.outputs.iter().zip(self.host_outputs.iter()) {
            let value = match self.device {
                BindDevice::Cpu => from_value(&buf.view().into_dyn())?,
                BindDevice::Cuda(_) => from_value(&host.view().into_dyn())?,
            };
            result.push((name.clone(), value));
        }
        Ok(result)
    }
}
