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
    /// NVIDIA CUDA. Each option maps to one CUDA EP option of ORT (named in brackets); profiles may
    /// use either spelling.
    Cuda {
        /// GPU ordinal (`device_id`), 0 or more.
        #[serde(default)]
        device_id: i32,
        /// cuDNN convolution algorithm search (`cudnn_conv_algo_search`): `exhaustive` (benchmark
        /// every algorithm on the first run of each shape; slow first run, fastest after),
        /// `heuristic` (cuDNN's guess) or `default` (implicit-precomp GEMM, least workspace).
        #[serde(default = "exhaustive", alias = "cudnn_conv_algo_search")]
        conv_algo_search: String,
        /// TF32 tensor-core math for fp32 convolutions and GEMMs (`use_tf32`): faster on Ampere and
        /// newer, with a 10-bit mantissa in the products; no effect on fp16 models.
        #[serde(default = "yes", alias = "use_tf32")]
        tf32: bool,
        /// Prefer NHWC kernels (`prefer_nhwc`): tensor cores favour channels-last layouts.
        #[serde(default)]
        prefer_nhwc: bool,
        /// Capture the run in a CUDA graph and replay it (`enable_cuda_graph`); needs IOBinding with
        /// fixed buffers and static shapes.
        #[serde(default, alias = "enable_cuda_graph")]
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

/// The cuDNN search mode of a validated `conv_algo_search` value.
fn cuda_search(s: &str) -> ep::cuda::ConvAlgorithmSearch {
    match s {
        "heuristic" => ep::cuda::ConvAlgorithmSearch::Heuristic,
        "default" => ep::cuda::ConvAlgorithmSearch::Default,
        _ => ep::cuda::ConvAlgorithmSearch::Exhaustive,
    }
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
            EpConfig::Cuda { device_id, .. }
            | EpConfig::Tensorrt { device_id, .. }
            | EpConfig::Directml { device_id }
                if *device_id < 0 =>
            {
                bail!("{} device_id {device_id} must be 0 or more (a GPU ordinal)", self.short_name())
            }
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

    /// The options this configuration hands ORT, as ORT's own option names and values (for
    /// provenance: what a results file says ran is exactly what was asked of ORT).
    pub fn ort_options(&self) -> Vec<(&'static str, String)> {
        let b = |v: bool| if v { "1".to_string() } else { "0".to_string() };
        match self {
            EpConfig::Cpu { arena } => vec![("use_arena", b(*arena))],
            EpConfig::Cuda { device_id, conv_algo_search, tf32, prefer_nhwc, cuda_graph } => vec![
                ("device_id", device_id.to_string()),
                ("cudnn_conv_algo_search", cuda_search(conv_algo_search).to_string()),
                ("use_tf32", b(*tf32)),
                ("prefer_nhwc", b(*prefer_nhwc)),
                ("enable_cuda_graph", b(*cuda_graph)),
            ],
            EpConfig::Tensorrt { device_id, fp16, engine_cache_path } => {
                let mut v = vec![("device_id", device_id.to_string()), ("trt_fp16_enable", b(*fp16))];
                if let Some(p) = engine_cache_path {
                    v.push(("trt_engine_cache_enable", "1".into()));
                    v.push(("trt_engine_cache_path", p.clone()));
                }
                v
            }
            EpConfig::Coreml { format, compute_units, static_shapes, cache_dir } => {
                let mut v = vec![
                    ("ModelFormat", if format == "neuralnetwork" { "NeuralNetwork" } else { "MLProgram" }.into()),
                    (
                        "MLComputeUnits",
                        match compute_units.as_str() {
                            "cpu_and_gpu" => "CPUAndGPU",
                            "cpu_and_ne" => "CPUAndNeuralEngine",
                            "cpu_only" => "CPUOnly",
                            _ => "ALL",
                        }
                        .into(),
                    ),
                    ("RequireStaticInputShapes", b(*static_shapes)),
                ];
                if let Some(d) = cache_dir {
                    v.push(("ModelCacheDirectory", d.clone()));
                }
                v
            }
            EpConfig::Directml { device_id } => vec![("device_id", device_id.to_string())],
        }
    }

    /// The `ort` dispatch object; registration errors are returned, never silently dropped.
    pub fn to_dispatch(&self) -> Result<ExecutionProviderDispatch> {
        self.validate()?;
        Ok(match self {
            EpConfig::Cpu { arena } => ep::CPU::default().with_arena_allocator(*arena).build(),
            EpConfig::Cuda { device_id, conv_algo_search, tf32, prefer_nhwc, cuda_graph } => ep::CUDA::default()
                .with_device_id(*device_id)
                .with_conv_algorithm_search(cuda_search(conv_algo_search))
                .with_tf32(*tf32)
                .with_prefer_nhwc(*prefer_nhwc)
                .with_cuda_graph(*cuda_graph)
                .build(),
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
        let cuda = |search: &str, device_id: i32| EpConfig::Cuda {
            device_id,
            conv_algo_search: search.into(),
            tf32: true,
            prefer_nhwc: false,
            cuda_graph: false,
        };
        let e = cuda("exhaustiv", 0).validate().unwrap_err().to_string();
        assert!(e.contains("'exhaustiv'") && e.contains("exhaustive, heuristic, default"), "{e}");
        let e = cuda("heuristic", -1).validate().unwrap_err().to_string();
        assert!(e.contains("device_id -1"), "{e}");
        // Validation runs before anything reaches ORT.
        assert!(cuda("fast", 0).to_dispatch().is_err());
        for ok in ["exhaustive", "heuristic", "default"] {
            cuda(ok, 0).validate().unwrap();
        }
    }

    #[test]
    fn ort_option_names_are_accepted_and_mapped() {
        #[derive(Deserialize)]
        struct W {
            ep: EpConfig,
        }
        let toml = "ep = { kind = \"cuda\", device_id = 2, cudnn_conv_algo_search = \"heuristic\", use_tf32 = false, \
                    prefer_nhwc = true, enable_cuda_graph = true }";
        let w: W = toml::from_str(toml).unwrap();
        assert!(w.ep.uses_cuda_graph());
        let opts: Vec<(&str, String)> = w.ep.ort_options();
        let get = |k: &str| opts.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("device_id"), Some("2"));
        // ort's ConvAlgorithmSearch spells ORT's values (EXHAUSTIVE/HEURISTIC/DEFAULT).
        assert_eq!(get("cudnn_conv_algo_search"), Some("HEURISTIC"));
        assert_eq!(get("use_tf32"), Some("0"));
        assert_eq!(get("prefer_nhwc"), Some("1"));
        assert_eq!(get("enable_cuda_graph"), Some("1"));
        // Building the dispatch needs no GPU: registration happens when a session is created.
        w.ep.to_dispatch().unwrap();
    }
}
