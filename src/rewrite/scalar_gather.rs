//! `widen-scalar-gather`: `Gather` with a constant rank-0 index → `Gather` with the same index as a
//! 1-element vector, then `Squeeze` of that axis.
//!
//! Why: some execution providers (CoreML before ORT 1.27 among them) reject rank-0 indices, and
//! GFPGAN takes each of its 16 style codes that way. Gathering `[i]` keeps the axis with size 1;
//! squeezing it gives exactly the rank-0 result, bit for bit.
//!
//! `Squeeze` takes `axes` as an attribute before opset 13 and as an input from 13. A negative
//! `Gather` axis stays valid for the `Squeeze`: the widened result has the data's rank.

use anyhow::Result;

use super::edit::{self, NodeEdits};
use super::{Pass, PassContext, PassReport};
use crate::onnx::graph::attr;
use crate::onnx::{node_label, GraphIndex, Model, NodeExt, Tensor};

/// The `widen-scalar-gather` pass.
#[derive(Debug, Clone, Default)]
pub struct WidenScalarGather;

impl Pass for WidenScalarGather {
    fn name(&self) -> &'static str {
        "widen-scalar-gather"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, model: &mut Model, _ctx: &PassContext) -> Result<PassReport> {
        let mut report = edit::report(self.name(), model);
        let opset = edit::opset(model);
        let g = model.graph();
        let idx = GraphIndex::new(g)?;
        let mut edits = NodeEdits::new(model);
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type != "Gather" || !edit::is_default_domain(n) || n.input.len() < 2 || n.output.is_empty() {
                continue;
            }
            let Some(index) = edit::const_value(g, &idx, &n.input[1]) else {
                // A computed index: its rank is not ours to change.
                continue;
            };
            if !index.dims.is_empty() {
                continue;
            }
            let label = node_label(n);
            let axis = n.attr_i("axis", 0);
            if axis < 0 && opset < 11 {
                report.details.push(format!("{label}: skipped, negative axis before opset 11"));
                continue;
            }
            let wide = Tensor { dims: vec![1], data: index.data.clone() };
            let base = if n.name.is_empty() { format!("{}_gather", n.output[0]) } else { n.name.clone() };
            let wide_name = edits.tensor(&format!("{}_wide", n.input[1]), &wide);
            let gathered = edits.fresh(&format!("{}_wide", n.output[0]));
            let mut gather = n.clone();
            gather.input[1] = wide_name;
            gather.output = vec![gathered.clone()];
            let squeeze = if opset < 13 {
                edit::node(
                    &edits.fresh(&format!("{base}_squeeze")),
                    "Squeeze",
                    &[&gathered],
                    &[&n.output[0]],
                    vec![attr::ints("axes", &[axis])],
                )
            } else {
                let axes = edits.i64s("squeeze_axis", &[axis]);
                edit::node(
                    &edits.fresh(&format!("{base}_squeeze")),
                    "Squeeze",
                    &[&gathered, &axes],
                    &[&n.output[0]],
                    vec![],
                )
            };
            edits.detach([n.input[1].clone()]);
            let iv = index.as_i64s().and_then(|v| v.first().copied()).unwrap_or(0);
            report.details.push(format!("{label}: index {iv} → [{iv}] + Squeeze(axis {axis})"));
            report.rewritten += 1;
            edits.replace(i, vec![gather, squeeze]);
        }
        edits.apply(model, report)
    }
}
