//! faceperf: make live face-swap pipelines fast, and prove it.
//!
//! Data flows one way: manifest → model → rewrite → verify → cache → session → bench → results →
//! report. Each stage is a module; the `faceperf` binary (see [`cli`]) only parses arguments and
//! calls into them.

pub mod bench;
pub mod cli;
pub mod fuzzing;
pub mod models;
pub mod onnx;
pub mod optimize;
pub mod partition;
pub mod pipeline;
pub mod profile;
pub mod report;
pub mod rewrite;
pub mod runtime;
pub mod util;
pub mod verify;
