//! `split-to-slice`: `Split` → one `Slice` per output.
//!
//! Why: the CoreML EP before ORT 1.27 has no `Split`, so each one (GFPGAN has one per SFT layer)
//! cuts the graph into another partition. A `Slice` of the same range copies the same elements:
//! bit-identical.
//!
//! Every form is handled: sizes from the `split` attribute (opset < 13) or input (opset ≥ 13),
//! `num_outputs` (opset ≥ 18: chunks of ⌈d/n⌉, the last one smaller), or an equal split by
//! output count (needs the axis size, from declared shapes or the recipe's input shapes), on any
//! axis including negative ones. Unused outputs (empty names) get no Slice.

use std::collections::HashMap;

use anyhow::Result;

use super::edit::{self, NodeEdits};
use super::{Pass, PassContext, PassReport};
use crate::onnx::consteval::norm_axis;
use crate::onnx::graph::attr;
use crate::onnx::shape::{self, split_equal};
use crate::onnx::{node_label, GraphIndex, Model, NodeExt};

/// The `split-to-slice` pass.
#[derive(Debug, Clone, Default)]
pub struct SplitToSlice;

impl Pass for SplitToSlice {
    fn name(&self) -> &'static str {
        "split-to-slice"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, model: &mut Model, ctx: &PassContext) -> Result<PassReport> {
        let mut report = edit::report(self.name(), model);
        let opset = edit::opset(model);
        let overrides: HashMap<String, Vec<i64>> = ctx.input_shapes.clone().into_iter().collect();
        let info = shape::infer(model, &overrides).ok();
        let g = model.graph();
        let idx = GraphIndex::new(g)?;
        let mut edits = NodeEdits::new(model);
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type != "Split" || !edit::is_default_domain(n) {
                continue;
            }
            let label = node_label(n);
            let in_shape = info.as_ref().and_then(|s| s.get(&n.input[0])).and_then(|f| f.shape.clone());
            let axis = n.attr_i("axis", 0);
            let axis = match in_shape.as_ref() {
                Some(s) => match norm_axis(axis, s.len() as i64) {
                    Some(a) => a as i64,
                    None => {
                        report.details.push(format!("{label}: skipped, axis {axis} out of range for rank {}", s.len()));
                        continue;
                    }
                },
                None if axis < 0 && opset < 11 => {
                    report.details.push(format!("{label}: skipped, negative axis with unknown rank before opset 11"));
                    continue;
                }
                None => axis,
            };
            let dim = in_shape.as_ref().and_then(|s| s.get(axis as usize).copied().flatten());
            let n_out = n.output.len();
            // Sizes: attribute before 13 (opset 1 also took them as an input), input from 13.
            let split_input = n.input.get(1).filter(|s| !s.is_empty());
            let given = if opset < 13 {
                match n.attr_ints("split") {
                    Some(s) => Some(s.to_vec()),
                    None => split_input.and_then(|s| edit::const_value(g, &idx, s)?.as_i64s()),
                }
            } else {
                match split_input {
                    Some(s) => match edit::const_value(g, &idx, s).and_then(|t| t.as_i64s()) {
                        Some(v) => Some(v),
                        None => {
                            report.details.push(format!("{label}: skipped, split sizes are not constant"));
                            continue;
                        }
                    },
                    None => None,
                }
            };
            let sizes = match (given, dim) {
                (Some(s), _) => s,
                (None, Some(d)) => {
                    if n.attr("num_outputs").is_some() || d % n_out as i64 == 0 {
                        split_equal(d, n_out)
                    } else {
                        report.details.push(format!("{label}: skipped, axis size {d} not divisible by {n_out}"));
                        continue;
                    }
                }
                (None, None) => {
                    report.details.push(format!(
                        "{label}: skipped, equal split of an axis of unknown size (give the input shapes)"
                    ));
                    continue;
                }
            };
            if sizes.len() != n_out || sizes.iter().any(|&s| s < 0) {
                report.details.push(format!("{label}: skipped, sizes {sizes:?} for {n_out} outputs"));
                continue;
            }
            let base = if n.name.is_empty() { format!("{}_split", n.output[0]) } else { n.name.clone() };
            let mut new_nodes = Vec::new();
            let mut start = 0i64;
            for (k, (out, &size)) in n.output.iter().zip(&sizes).enumerate() {
                let end = start + size;
                if !out.is_empty() {
                    let node_name = edits.fresh(&format!("{base}_slice{k}"));
                    if opset < 10 {
                        let attrs = vec![
                            attr::ints("starts", &[start]),
                            attr::ints("ends", &[end]),
                            attr::ints("axes", &[axis]),
                        ];
                        new_nodes.push(edit::node(&node_name, "Slice", &[&n.input[0]], &[out], attrs));
                    } else {
                        let s = edits.i64s("split_start", &[start]);
                        let e = edits.i64s("split_end", &[end]);
                        let a = edits.i64s("split_axis", &[axis]);
                        new_nodes.push(edit::node(&node_name, "Slice", &[&n.input[0], &s, &e, &a], &[out], vec![]));
                    }
                }
                start = end;
            }
            edits.detach(split_input.cloned());
            report.details.push(format!("{label} → {} Slice (axis {axis}, sizes {sizes:?})", new_nodes.len()));
            report.rewritten += 1;
            edits.replace(i, new_nodes);
        }
        edits.apply(model, report)
    }
}
