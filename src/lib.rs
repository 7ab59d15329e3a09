//! faceperf: make live face-swap pipelines fast, and prove it.
//!
//! Data flows one way: manifest → model → rewrite → verify → cache → session → bench → results →
//! report. Each stage is a module; the `faceperf` binary (see [`cli`]) only parses arguments and
//! calls into them.

/// The commit this binary was built from (`git rev-parse HEAD` at build time, `+dirty` when tracked
/// files differed from it, `unknown` without git): results record it beside the checkout they run in.
pub const BUILD_COMMIT: &str = env!("FACEPERF_BUILD_COMMIT");

pub mod bench;
pub mod cli;
pub mod fuzzing;
pub mod models;
pub mod onnx;
pub mod optimize;
pub mod partition;
pub mod pipeline;
pub mod profile;
pub mod provenance;
pub mod report;
pub mod rewrite;
pub mod runtime;
pub mod util;
pub mod verify;
