//! ONNX model I/O, graph index, tensors, shape inference and model summaries.
//!
//! The message layer is `prost` over code generated from ONNX's own `onnx.proto` (see
//! `tools/gen-proto` and the README's "Why prost").

pub mod builder;
pub mod consteval;
pub mod graph;
pub mod model;
#[allow(missing_docs, clippy::all)]
pub mod proto;
pub mod shape;
pub mod summary;
pub mod tensor;

pub use builder::{Dim, GraphBuilder};
pub use graph::{node_label, GraphIndex, NodeExt};
pub use model::{DataLayout, Model};
pub use proto::tensor_proto::DataType;
pub use tensor::{Tensor, TensorData};
