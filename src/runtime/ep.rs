//! Execution-provider configuration as data (profiles are TOML), and its translation to `ort`.

use anyhow::{bail, Result};
use ort::ep::{self, ExecutionProviderDispatch};
use serde::{Deserialize, Serialize};

/// One execution provider with its options, as written in a profile:
/// `ep = { kind = "cuda", device_id = 0, conv_algo_search = "exhaustive" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum EpConfig {
    /// ORT's default CPU provider.
    Cpu {
        /// Use ORT's arena allocator (default true).
        #[serde(default = "yes")]
        arena: bool,
    },
    /// NVIDIA CUDA.
    Cuda {
        #[serde(default)]
        device_id: i32,
        /// cuDNN convolution algorithm search: `exhaustive`, `heuristic` or `default`.
        #[serde(default = "exhaustive")]
        conv_algo_search: String,
        /// TF32 math for fp32 convolutions and GEMMs.
        #[serde(default = "yes")]
        tf32: bool,
        /// Prefer NHWC kernels.
        #[serde(default)]
        prefer_nhwc: bool,
        /// Capture the run in a CUDA graph (needs IOBinding with fixed buffers).
        #[serde(default)]
        cuda_graph: bool,
    },
    /// NVIDIA TensorRT.
    Tensorrt {
        #[serde(default)]
        device_id: i32,
        #[serde(default)]
        fp16: bool,
        #[serde(default)]
        engine_cache_path: Option<String>,
    },
    /// Apple CoreML.
    Coreml {
        /// `mlprogram` (default) or `neuralnetwork`.
        #[serde(default = "mlprogram")]
        format: String,
        /// `all`, `cpu_and_gpu`, `cpu_and_ne` or `cpu_only`.
        #[serde(default = "all")]
        compute_units: String,
        /// Only claim nodes whose input shapes are static.
        #[serde(default = "yes")]
        static_shapes: bool,
        #[serde(default)]
        cache_dir: Option<String>,
    },
    /// Windows DirectML.
    Directml {
        #[serde(default)]
        device_id: i32,
    },
}

fn yes() -> bool {
    true
}
fn exhaustive() -> String {
    "exhaustive".into()
}
fn mlprogram() -> String {
    "mlprogram".into()
}
fn all() -> String {
    "all".into()
}

impl Default for EpConfig {
    fn default() -> Self {
        EpConfig::Cpu { arena: true }
    }
}

impl EpConfig {
    /// ORT's name of the provider, as listed by `GetAvailableProviders`.
    pub fn provider_name(&self) -> &'static str {
        match self {
            EpConfig::Cpu { .. } => "CPUExecutionProvider",
            EpConfig::Cuda { .. } => "CUDAExecutionProvider",
            EpConfig::Tensorrt { .. } => "TensorrtExecutionProvider",
            EpConfig::Coreml { .. } => "CoreMLExecutionProvider",
            EpConfig::Directml { .. } => "DmlExecutionProvider",
        }
    }

    /// Short lowercase name (`cpu`, `cuda`, …).
    pub fn short_name(&self) -> &'static str {
        match self {
            EpConfig::Cpu { .. } => "cpu",
            EpConfig::Cuda { .. } => "cuda",
            EpConfig::Tensorrt { .. } => "tensorrt",
            EpConfig::Coreml { .. } => "coreml",
            EpConfig::Directml { .. } => "directml",
        }
    }

    /// True when this provider captures CUDA graphs (runs must go through IOBinding).
    pub fn uses_cuda_graph(&self) -> bool {
        matches!(self, EpConfig::Cuda { cuda_graph: true, .. })
    }

    /// Checks option values, so a typo in a profile fails when it is read, not mid-benchmark.
    pub fn validate(&self) -> Result<()> {
        match self {
            EpConfig::Cuda { conv_algo_search, .. }
                if !["exhaustive", "heuristic", "default"].contains(&conv_algo_search.as_str()) =>
            {
                bail!("cuda conv_algo_search '{conv_algo_search}' is not one of exhaustive, heuristic, default")
            }
            EpConfig::Coreml { format, .. } if !["mlprogram", "neuralnetwork"].contains(&format.as_str()) => {
                bail!("coreml format '{format}' is not one of mlprogram, neuralnetwork")
            }
            EpConfig::Coreml { compute_units, .. }
                if !["all", "cpu_and_gpu", "cpu_and_ne", "cpu_only"].contains(&compute_units.as_str()) =>
            {
                bail!("coreml compute_units '{compute_units}' is not one of all, cpu_and_gpu, cpu_and_ne, cpu_only")
            }
            _ => Ok(()),
        }
    }

    /// The `ort` dispatch object; registration errors are returned, never silently dropped.
    pub fn to_dispatch(&self) -> Result<ExecutionProviderDispatch> {
        self.validate()?;
        Ok(match self {
            EpConfig::Cpu { arena } => ep::CPU::default().with_arena_allocator(*arena).build(),
            EpConfig::Cuda { device_id, conv_algo_search, tf32, prefer_nhwc, cuda_graph } => {
                let search = match conv_algo_search.as_str() {
                    "heuristic" => ep::cuda::ConvAlgorithmSearch::Heuristic,
                    "default" => ep::cuda::ConvAlgorithmSearch::Default,
                    _ => ep::cuda::ConvAlgorithmSearch::Exhaustive,
                };
                ep::CUDA::default()
                    .with_device_id(*device_id)
                    .with_conv_algorithm_search(search)
                    .with_tf32(*tf32)
                    .with_prefer_nhwc(*prefer_nhwc)
                    .with_cuda_graph(*cuda_graph)
                    .build()
            }
            EpConfig::Tensorrt { device_id, fp16, engine_cache_path } => {
                let mut t = ep::TensorRT::default().with_device_id(*device_id).with_fp16(*fp16);
                if let Some(p) = engine_cache_path {
                    t = t.with_engine_cache(true).with_engine_cache_path(p);
                }
                t.build()
            }
            EpConfig::Coreml { format, compute_units, static_shapes, cache_dir } => {
                let fmt = if format == "neuralnetwork" {
                    ep::coreml::ModelFormat::NeuralNetwork
                } else {
                    ep::coreml::ModelFormat::MLProgram
                };
                let units = match compute_units.as_str() {
                    "cpu_and_gpu" => ep::coreml::ComputeUnits::CPUAndGPU,
                    "cpu_and_ne" => ep::coreml::ComputeUnits::CPUAndNeuralEngine,
                    "cpu_only" => ep::coreml::ComputeUnits::CPUOnly,
                    _ => ep::coreml::ComputeUnits::All,
                };
                let mut c = ep::CoreML::default()
                    .with_model_format(fmt)
                    .with_compute_units(units)
                    .with_static_input_shapes(*static_shapes);
                if let Some(d) = cache_dir {
                    c = c.with_model_cache_dir(d);
                }
                c.build()
            }
            EpConfig::Directml { device_id } => ep::DirectML::default().with_device_id(*device_id).build(),
        }
        .error_on_failure())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profile_snippets_with_defaults() {
        #[derive(Deserialize)]
        struct W {
            ep: EpConfig,
        }
        let w: W = toml::from_str("ep = { kind = \"cuda\", device_id = 1 }").unwrap();
        assert_eq!(
            w.ep,
            EpConfig::Cuda {
                device_id: 1,
                conv_algo_search: "exhaustive".into(),
                tf32: true,
                prefer_nhwc: false,
                cuda_graph: false
            }
        );
        assert_eq!(w.ep.provider_name(), "CUDAExecutionProvider");
        let w: W = toml::from_str("ep = { kind = \"coreml\", compute_units = \"cpu_and_gpu\" }").unwrap();
        assert_eq!(w.ep.short_name(), "coreml");
        w.ep.validate().unwrap();
    }

    #[test]
    fn typos_are_rejected() {
        #[derive(Deserialize, Debug)]
        struct W {
            #[allow(dead_code)]
            ep: EpConfig,
        }
        let e = toml::from_str::<W>("ep = { kind = \"cuda\", devise_id = 1 }").unwrap_err().to_string();
        assert!(e.contains("devise_id"), "{e}");
        let bad = EpConfig::Coreml {
            format: "mlprogam".into(),
            compute_units: "all".into(),
            static_shapes: true,
            cache_dir: None,
        };
        assert!(bad.validate().unwrap_err().to_string().contains("mlprogam"));
    }
}
