//! `fold-shapes`: with the input shapes fixed, every value computed only from shapes and constants
//! (exporters' `Shape → Gather → Unsqueeze → Concat → Reshape` chains, `ConstantOfShape`, `Range`,
//! shape arithmetic, …) is evaluated ahead of time and becomes an initializer.
//!
//! Why: execution providers compile static graphs. A `Shape` node makes the CoreML EP give up on
//! the partition (det_10g ran 5× faster on CoreML once its chains were folded), and TensorRT/CUDA
//! graphs need static shapes too. For the same reason the graph inputs named in the input shapes
//! get those shapes as declared dims: ORT then hands the EP a model whose every shape is static,
//! instead of symbolic dims it must treat as dynamic.
//!
//! Exact: the values come from [`crate::onnx::consteval`], which copies integers bit for bit and
//! does float arithmetic in `f32` as ORT does. Only values that depend on a `Shape`/`Size` or are
//! integers/booleans are folded: a float weight computed from other weights (e.g. `w · w`) is left
//! to the runtime, so the model does not grow. A folded value keeps its name (the initializer takes
//! it), so every reader, graph outputs and subgraphs included, sees it unchanged. Nodes that become
//! unused are removed. A `Shape` node stays when its input's shape is not static (not given, or
//! not inferable): its value is not known.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};

use super::edit;
use super::{Pass, PassContext, PassReport};
use crate::onnx::builder::value_info;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::{self, declared};
use crate::onnx::{node_label, Dim, GraphIndex, Model, Tensor, TensorData};

/// The `fold-shapes` pass.
#[derive(Debug, Clone, Default)]
pub struct FoldShapes;

fn is_int_or_bool(dtype: i32) -> bool {
    [
        DataType::Int64,
        DataType::Int32,
        DataType::Int16,
        DataType::Int8,
        DataType::Uint64,
        DataType::Uint32,
        DataType::Uint16,
        DataType::Uint8,
        DataType::Bool,
    ]
    .iter()
    .any(|&d| d as i32 == dtype)
}

/// A short rendering of a folded value for the report.
fn describe(t: &Tensor) -> String {
    let vals: Vec<String> = match &t.data {
        TensorData::F32(_) | TensorData::F16(_) | TensorData::F64(_) => {
            t.to_f32s().iter().take(8).map(|v| v.to_string()).collect()
        }
        _ => t.as_i64s().unwrap_or_default().iter().take(8).map(|v| v.to_string()).collect(),
    };
    let more = if t.len() > 8 { ", …" } else { "" };
    format!("{:?} {:?} [{}{more}]", t.data.data_type(), t.dims, vals.join(", "))
}

impl Pass for FoldShapes {
    fn name(&self) -> &'static str {
        "fold-shapes"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, model: &mut Model, ctx: &PassContext) -> Result<PassReport> {
        let mut report = edit::report(self.name(), model);
        let overrides: HashMap<String, Vec<i64>> = ctx.input_shapes.clone().into_iter().collect();
        let info = shape::infer(model, &overrides).context("fold-shapes needs shape inference")?;
        let g = model.graph();
        let idx = GraphIndex::new(g)?;
        let captured = edit::captured_values(g);
        let order = idx.topological_order(g)?;

        // Which nodes fold: their value is known, and it is shape-derived or integer-typed.
        let mut shape_dep = vec![false; g.node.len()];
        let mut folds = vec![false; g.node.len()];
        let mut constant = vec![false; g.node.len()];
        for &i in &order {
            let n = &g.node[i];
            if !edit::is_default_domain(n) || n.output.len() != 1 || n.attribute.iter().any(|a| a.g.is_some()) {
                continue;
            }
            let Some(facts) = info.get(&n.output[0]) else { continue };
            if facts.value.is_none() {
                continue;
            }
            if n.op_type == "Constant" {
                constant[i] = true;
                continue;
            }
            let from_folded_shape = n.input.iter().any(|v| idx.producer.get(v).is_some_and(|&p| shape_dep[p]));
            shape_dep[i] = matches!(n.op_type.as_str(), "Shape" | "Size") || from_folded_shape;
            folds[i] = shape_dep[i] || is_int_or_bool(facts.dtype);
        }
        let in_set = |i: usize| folds[i] || constant[i];

        // Folded values read by a node outside the set (or a graph output, or a subgraph) become
        // initializers of the same name; their producers go.
        let mut replaced: BTreeMap<usize, Tensor> = BTreeMap::new();
        for &i in &order {
            if !folds[i] {
                continue;
            }
            let v = &g.node[i].output[0];
            let outside = idx.consumers_of(v).iter().any(|&c| !in_set(c));
            if outside || idx.is_graph_output(v) || captured.contains(v) {
                let t = info.get(v).and_then(|f| f.value.clone()).expect("folded values are known");
                replaced.insert(i, t);
            }
        }
        let mut removed: HashSet<usize> = replaced.keys().copied().collect();
        // Then whatever in the set nothing reads any more, repeatedly (chains die back to front).
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            if !removed.contains(&i) {
                for v in n.input.iter().filter(|v| !v.is_empty()) {
                    *readers.entry(v.as_str()).or_default() += 1;
                }
            }
        }
        for &i in order.iter().rev() {
            if !in_set(i) || removed.contains(&i) {
                continue;
            }
            let v = g.node[i].output[0].as_str();
            if readers.get(v).copied().unwrap_or(0) == 0 && !idx.is_graph_output(v) && !captured.contains(v) {
                removed.insert(i);
                for u in g.node[i].input.iter().filter(|u| !u.is_empty()) {
                    if let Some(c) = readers.get_mut(u.as_str()) {
                        *c -= 1;
                    }
                }
            }
        }

        for (&i, t) in &replaced {
            let n = &g.node[i];
            report.details.push(format!("'{}' ← {} (was {})", n.output[0], describe(t), node_label(n)));
        }
        let mut by_op: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in &removed {
            *by_op.entry(g.node[i].op_type.as_str()).or_default() += 1;
        }
        if !removed.is_empty() {
            let ops: Vec<String> = by_op.iter().map(|(op, k)| format!("{op}×{k}")).collect();
            report.details.push(format!("removed {} nodes: {}", removed.len(), ops.join(", ")));
        }
        let kept_shapes =
            g.node.iter().enumerate().filter(|(i, n)| n.op_type == "Shape" && !removed.contains(i)).count();
        if kept_shapes > 0 {
            report.details.push(format!("{kept_shapes} Shape nodes kept: their input shapes are not static"));
        }
        report.rewritten = replaced.len();
        let initializers: Vec<_> = replaced.iter().map(|(&i, t)| t.to_proto(&g.node[i].output[0])).collect();
        // Constants only the removed nodes read (Gather indices, Unsqueeze axes…) go with them.
        let detached: Vec<String> =
            removed.iter().flat_map(|&i| g.node[i].input.iter().filter(|v| !v.is_empty()).cloned()).collect();

        let g = model.graph_mut();
        let mut k = 0;
        g.node.retain(|_| {
            k += 1;
            !removed.contains(&(k - 1))
        });
        edit::add_initializers(g, initializers);
        edit::drop_if_unused(g, &detached);
        // Static declared input shapes (see the module docs for why).
        for v in g.input.iter_mut() {
            let Some(dims) = overrides.get(&v.name) else { continue };
            let (dtype, old) = declared(v);
            let fixed: Vec<Dim> = dims.iter().map(|&d| Dim::Fixed(d)).collect();
            if old.as_ref().map(|o| o.iter().all(Option::is_some)) != Some(true) {
                report.details.push(format!("input '{}' declared {dims:?}", v.name));
                report.rewritten += 1;
            }
            let doc = std::mem::take(&mut v.doc_string);
            *v = value_info(&v.name, DataType::try_from(dtype).unwrap_or(DataType::Float), Some(&fixed));
            v.doc_string = doc;
        }
        edit::prune_value_info(g);
        edit::finish(report, model)
    }
}
