//! The model zoo: the Deep-Live-Cam model set's manifest, verified downloads, and deterministic
//! structural replicas for offline work.

pub mod fetch;
pub mod fetched;
pub mod import;
pub mod list;
pub mod local;
pub mod manifest;
pub mod signature;
pub mod synth;

pub use manifest::Manifest;

use serde::{Deserialize, Serialize};

/// What a model does in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Face detector (SCRFD, det_10g): boxes + 5 keypoints.
    Detector,
    /// Face recogniser (ArcFace, w600k_r50): 512-d embedding.
    Recognizer,
    /// Face swapper (inswapper_128).
    Swapper,
    /// Face enhancer (GFPGAN).
    Enhancer,
    /// 106-point landmarks (2d106det).
    Landmarks,
}

impl Role {
    /// All roles in pipeline order.
    pub const ALL: [Role; 5] = [Role::Detector, Role::Landmarks, Role::Recognizer, Role::Swapper, Role::Enhancer];

    /// Lowercase name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Role::Detector => "detector",
            Role::Recognizer => "recognizer",
            Role::Swapper => "swapper",
            Role::Enhancer => "enhancer",
            Role::Landmarks => "landmarks",
        }
    }

    /// File name of the model the Deep-Live-Cam set uses for this role.
    pub fn default_file(self) -> &'static str {
        match self {
            Role::Detector => "det_10g.onnx",
            Role::Recognizer => "w600k_r50.onnx",
            Role::Swapper => "inswapper_128.onnx",
            Role::Enhancer => "GFPGANv1.4.onnx",
            Role::Landmarks => "2d106det.onnx",
        }
    }
}

/// Size of a generated replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Every op pattern of the real model, tiny widths: each runs in < 50 ms on one core (tests).
    Tiny,
    /// Parameter count and FLOPs within 25% of the real model (benchmarks).
    Full,
}

impl Scale {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::Full => "full",
        }
    }

    /// Default folder for replicas of this scale: `models/replica-<scale>`.
    pub fn default_dir(self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("models/replica-{}", self.name()))
    }
}
