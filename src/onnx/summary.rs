//! What `faceperf inspect` reports about a model: I/O, opset, op histogram, parameters, FLOPs.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use serde::Serialize;

use super::graph::NodeExt;
use super::model::Model;
use super::proto::tensor_proto::DataType;
use super::shape::{declared, infer, ShapeInfo};
use super::tensor::{proto_bytes, proto_numel};

/// A graph input or output as declared.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IoInfo {
    pub name: String,
    /// Element type name, e.g. `float32`.
    pub dtype: String,
    /// Declared dims; symbolic or unknown dims as strings.
    pub shape: Vec<String>,
}

/// Summary of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub path: Option<String>,
    pub producer: String,
    pub producer_version: String,
    pub ir_version: i64,
    /// `domain → version` (`""` is the default ONNX domain).
    pub opsets: BTreeMap<String, i64>,
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub nodes: usize,
    /// `op type → count`.
    pub op_histogram: BTreeMap<String, usize>,
    pub initializers: usize,
    /// Number of scalar parameters in initializers.
    pub parameters: u64,
    pub initializer_bytes: u64,
    /// Name of the last initializer (insightface reads the swapper's `emap` from there).
    pub last_initializer: Option<String>,
    /// Multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul, for the inferred shapes.
    pub macs: u64,
    /// 2 × MACs.
    pub flops: u64,
    /// Nodes whose MACs could not be counted because a shape stayed unknown.
    pub flops_unknown_nodes: usize,
}

/// Human name of an ONNX element type.
pub fn dtype_name(dtype: i32) -> String {
    match DataType::try_from(dtype) {
        Ok(DataType::Float) => "float32".into(),
        Ok(DataType::Float16) => "float16".into(),
        Ok(DataType::Double) => "float64".into(),
        Ok(DataType::Int64) => "int64".into(),
        Ok(DataType::Int32) => "int32".into(),
        Ok(DataType::Uint8) => "uint8".into(),
        Ok(DataType::Int8) => "int8".into(),
        Ok(DataType::Bool) => "bool".into(),
        Ok(other) => format!("{other:?}").to_lowercase(),
        Err(_) => format!("type{dtype}"),
    }
}

fn io_info(v: &super::proto::ValueInfoProto) -> IoInfo {
    use super::proto::{tensor_shape_proto::dimension::Value as D, type_proto};
    let (dtype, _) = declared(v);
    let shape = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(D::DimValue(v)) => v.to_string(),
                        Some(D::DimParam(p)) if !p.is_empty() => p.clone(),
                        _ => "?".into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![],
    };
    IoInfo { name: v.name.clone(), dtype: dtype_name(dtype), shape }
}

/// MACs of compute-heavy nodes given inferred shapes; returns (macs, nodes not countable).
pub fn count_macs(model: &Model, info: &ShapeInfo) -> (u64, usize) {
    let mut macs = 0u64;
    let mut unknown = 0;
    for node in &model.graph().node {
        let shape = |i: usize| node.input.get(i).and_then(|n| info.shape(n));
        let out = node.output.first().and_then(|n| info.shape(n));
        let m = match node.op_type.as_str() {
            "Conv" => match (shape(1), out) {
                (Some(w), Some(o)) => prod(&o).zip(w.get(1..).and_then(prod)).and_then(|(a, b)| a.checked_mul(b)),
                _ => None,
            },
            "ConvTranspose" => match (shape(0), shape(1)) {
                // Each input element scatters into kernel × out-channels-per-group outputs.
                (Some(x), Some(w)) => prod(&x).zip(w.get(1..).and_then(prod)).and_then(|(a, b)| a.checked_mul(b)),
                _ => None,
            },
            "Gemm" => match (shape(0), out) {
                (Some(a), Some(o)) => {
                    let k = if node.attr_i("transA", 0) != 0 { a.first() } else { a.get(1) };
                    k.and_then(|&k| prod(&o)?.checked_mul(u64::try_from(k).ok()?))
                }
                _ => None,
            },
            "MatMul" => match (shape(0), out) {
                (Some(a), Some(o)) => {
                    prod(&o).and_then(|p| p.checked_mul(u64::try_from(*a.last().unwrap_or(&1)).ok()?))
                }
                _ => None,
            },
            _ => Some(0),
        };
        match m {
            Some(m) => macs = macs.saturating_add(m),
            None => unknown += 1,
        }
    }
    (macs, unknown)
}

/// Product of non-negative sizes as u64; `None` for negative sizes or overflow.
fn prod(dims: &[i64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

/// Summarises `model`, inferring shapes with `input_shapes` fixing symbolic inputs.
pub fn summarize(model: &Model, input_shapes: &HashMap<String, Vec<i64>>) -> Result<ModelSummary> {
    let g = model.graph();
    let info = infer(model, input_shapes)?;
    let (macs, flops_unknown_nodes) = count_macs(model, &info);
    let mut op_histogram = BTreeMap::new();
    for n in &g.node {
        *op_histogram
            .entry(if n.domain.is_empty() { n.op_type.clone() } else { format!("{}:{}", n.domain, n.op_type) })
            .or_insert(0) += 1;
    }
    let init_names: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    Ok(ModelSummary {
        path: model.path.as_ref().map(|p| p.display().to_string()),
        producer: model.proto.producer_name.clone(),
        producer_version: model.proto.producer_version.clone(),
        ir_version: model.proto.ir_version,
        opsets: model.proto.opset_import.iter().map(|o| (o.domain.clone(), o.version)).collect(),
        inputs: g.input.iter().filter(|v| !init_names.contains(v.name.as_str())).map(io_info).collect(),
        outputs: g.output.iter().map(io_info).collect(),
        nodes: g.node.len(),
        op_histogram,
        initializers: g.initializer.len(),
        parameters: g.initializer.iter().map(proto_numel).fold(0u64, u64::saturating_add),
        initializer_bytes: g.initializer.iter().map(proto_bytes).fold(0u64, u64::saturating_add),
        last_initializer: g.initializer.last().map(|t| t.name.clone()),
        macs,
        flops: macs.saturating_mul(2),
        flops_unknown_nodes,
    })
}

/// Formats a count with SI suffixes (`1.23 G`).
pub fn si(v: f64) -> String {
    let (div, suffix) = match v.abs() {
        x if x >= 1e12 => (1e12, " T"),
        x if x >= 1e9 => (1e9, " G"),
        x if x >= 1e6 => (1e6, " M"),
        x if x >= 1e3 => (1e3, " k"),
        _ => (1.0, " "),
    };
    format!("{:.2}{}", v / div, suffix)
}

impl ModelSummary {
    /// Human-readable multi-line rendering.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if let Some(p) = &self.path {
            let _ = writeln!(s, "model:        {p}");
        }
        let _ = writeln!(s, "producer:     {} {}", self.producer, self.producer_version);
        let opsets: Vec<String> =
            self.opsets.iter().map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d })).collect();
        let _ = writeln!(s, "IR version:   {}   opsets: {}", self.ir_version, opsets.join(", "));
        for (label, list) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            let _ = writeln!(s, "{label}:");
            for io in list.iter() {
                let _ = writeln!(s, "  {:<24} {:<8} [{}]", io.name, io.dtype, io.shape.join(", "));
            }
        }
        let _ = writeln!(s, "nodes:        {}", self.nodes);
        let _ = writeln!(
            s,
            "parameters:   {} ({} initializers, {}B)",
            si(self.parameters as f64),
            self.initializers,
            si(self.initializer_bytes as f64)
        );
        if let Some(last) = &self.last_initializer {
            let _ = writeln!(s, "last init:    {last}");
        }
        let unknown = if self.flops_unknown_nodes > 0 {
            format!(" ({} nodes with unknown shapes not counted)", self.flops_unknown_nodes)
        } else {
            String::new()
        };
        let _ = writeln!(s, "FLOPs:        {}FLOP{unknown}", si(self.flops as f64));
        let _ = writeln!(s, "ops:");
        let mut ops: Vec<(&String, &usize)> = self.op_histogram.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (op, n) in ops {
            let _ = writeln!(s, "  {op:<24} {n}");
        }
        s
    }
}
