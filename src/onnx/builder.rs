//! A small graph builder for tests, replicas and rewrites: fresh deterministic names, typed inputs
//! and outputs, initializers in insertion order.

use super::model::Model;
use super::proto::{
    tensor_proto::DataType, tensor_shape_proto::dimension::Value as DimValue, tensor_shape_proto::Dimension,
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use super::tensor::Tensor;

/// The IR version written by the builder (ONNX 1.10+; ORT 1.16+ reads it).
pub const IR_VERSION: i64 = 8;

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size (as exporters write for dynamic axes).
    Sym(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Dim {
        Dim::Sym(v.to_string())
    }
}

/// A `ValueInfoProto` for a tensor of `dtype` and `dims` (`None`: rank unknown).
pub fn value_info(name: &str, dtype: DataType, dims: Option<&[Dim]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(v) => DimValue::DimValue(*v),
                    Dim::Sym(s) => DimValue::DimParam(s.clone()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: dtype as i32, shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a graph node by node.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    graph: GraphProto,
    counter: usize,
}

impl GraphBuilder {
    /// An empty graph named `name`.
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder { graph: GraphProto { name: name.into(), ..Default::default() }, counter: 0 }
    }

    /// A fresh value name derived from `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, dtype: DataType, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, dtype, Some(dims)));
        name.to_string()
    }

    /// Declares a float32 graph input with fixed dims.
    pub fn input_f32(&mut self, name: &str, dims: &[i64]) -> String {
        let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Fixed(d)).collect();
        self.input(name, DataType::Float, &dims)
    }

    /// Declares a graph output.
    pub fn output(&mut self, name: &str, dtype: DataType, dims: Option<&[Dim]>) {
        self.graph.output.push(value_info(name, dtype, dims));
    }

    /// Declares a float32 graph output with fixed dims.
    pub fn output_f32(&mut self, name: &str, dims: &[i64]) {
        let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Fixed(d)).collect();
        self.output(name, DataType::Float, Some(&dims));
    }

    /// Adds an initializer named after `hint` (made unique) and returns its name.
    pub fn init(&mut self, hint: &str, t: &Tensor) -> String {
        let name = self.fresh(hint);
        self.graph.initializer.push(t.to_proto(&name));
        name
    }

    /// Adds an initializer with exactly this name.
    pub fn init_named(&mut self, name: &str, t: &Tensor) -> String {
        self.graph.initializer.push(t.to_proto(name));
        name.to_string()
    }

    /// Adds a node with the given output names.
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[AttributeProto]) -> Vec<String> {
        self.counter += 1;
        self.graph.node.push(NodeProto {
            name: format!("{op}_{}", self.counter),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs.to_vec(),
            ..Default::default()
        });
        outputs.iter().map(|s| s.to_string()).collect()
    }

    /// Adds a node with one fresh output and returns that output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: &[AttributeProto]) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node(op, inputs, &[&out], attrs);
        out
    }

    /// Adds a node with `n` fresh outputs.
    pub fn op_n(&mut self, op: &str, inputs: &[&str], n: usize, attrs: &[AttributeProto]) -> Vec<String> {
        let outs: Vec<String> = (0..n).map(|_| self.fresh(&op.to_lowercase())).collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.node(op, inputs, &refs, attrs)
    }

    /// Read access to the graph so far.
    pub fn graph(&self) -> &GraphProto {
        &self.graph
    }

    /// Finishes the model with the default-domain opset `opset`.
    pub fn build(self, opset: i64) -> Model {
        Model::new(ModelProto {
            ir_version: IR_VERSION,
            producer_name: "faceperf".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
            graph: Some(self.graph),
            ..Default::default()
        })
    }
}
