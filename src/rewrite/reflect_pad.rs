//! `reflect-pad`: `Pad(mode=reflect)` with constant pads → per padded axis, `Slice`s with step −1
//! for the borders and one `Concat`.
//!
//! Why: the CoreML EP has no reflect padding before ORT 1.26, so every reflect `Pad` cuts the graph
//! into another partition (14 in inswapper). Reflection is pure data movement, so the rewrite is
//! bit-identical: along an axis of size `d`, padding `b` before and `e` after gives
//! `x[b], …, x[1] | x | x[d−2], …, x[d−1−e]`, i.e. `Slice(starts=b, ends=0, step=−1)`, the input,
//! and `Slice(starts=−2, ends=−2−e, step=−1)` (negative indices, so the axis size need not be
//! known). Padding several axes one after the other is the same as padding them together, corners
//! included, since reflection is separable.
//!
//! Pads come from the `pads` attribute (opset < 11) or the `pads` input (opset ≥ 11) with the
//! optional `axes` input (opset ≥ 18); they must be constant (initializer or `Constant`), else the
//! site is skipped with a detail line. Needs `Slice` with steps (opset ≥ 10).

use std::collections::HashMap;

use anyhow::Result;

use super::edit::{self, NodeEdits};
use super::{Pass, PassContext, PassReport};
use crate::onnx::consteval::norm_axis;
use crate::onnx::graph::attr;
use crate::onnx::shape;
use crate::onnx::{node_label, GraphIndex, Model, NodeExt};

/// The `reflect-pad` pass.
#[derive(Debug, Clone, Default)]
pub struct ReflectPad;

impl Pass for ReflectPad {
    fn name(&self) -> &'static str {
        "reflect-pad"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, model: &mut Model, ctx: &PassContext) -> Result<PassReport> {
        let mut report = edit::report(self.name(), model);
        let opset = edit::opset(model);
        let overrides: HashMap<String, Vec<i64>> = ctx.input_shapes.clone().into_iter().collect();
        // Shapes only sharpen the checks (rank for negative axes, pad ≤ size − 1); not required.
        let info = shape::infer(model, &overrides).ok();
        let g = model.graph();
        let idx = GraphIndex::new(g)?;
        let mut edits = NodeEdits::new(model);
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type != "Pad"
                || !edit::is_default_domain(n)
                || n.attr_s("mode").as_deref() != Some("reflect")
                || n.output.is_empty()
            {
                continue;
            }
            let label = node_label(n);
            if opset < 10 {
                report.details.push(format!("{label}: skipped, Slice has no steps before opset 10 (model: {opset})"));
                continue;
            }
            let pads = if opset < 11 {
                n.attr_ints("pads").map(<[i64]>::to_vec)
            } else {
                n.input.get(1).filter(|p| !p.is_empty()).and_then(|p| edit::const_value(g, &idx, p)?.as_i64s())
            };
            let Some(pads) = pads else {
                report.details.push(format!("{label}: skipped, pads are not constant"));
                continue;
            };
            let in_shape = info.as_ref().and_then(|s| s.get(&n.input[0])).and_then(|f| f.shape.clone());
            let rank = in_shape.as_ref().map(|s| s.len() as i64);
            let axes: Vec<i64> = match n.input.get(3).filter(|a| !a.is_empty() && opset >= 18) {
                Some(a) => match edit::const_value(g, &idx, a).and_then(|t| t.as_i64s()) {
                    Some(v) => v,
                    None => {
                        report.details.push(format!("{label}: skipped, axes are not constant"));
                        continue;
                    }
                },
                None => (0..pads.len() as i64 / 2).collect(),
            };
            if pads.len() != 2 * axes.len() {
                report.details.push(format!("{label}: skipped, {} pads for {} axes", pads.len(), axes.len()));
                continue;
            }
            if pads.iter().any(|&p| p < 0) {
                report.details.push(format!("{label}: skipped, negative pads (cropping) {pads:?}"));
                continue;
            }
            // Normalise axes when the rank is known (Slice/Concat take negative axes from opset 11,
            // and `axes` only exists from 18).
            let axes: Vec<i64> = match rank {
                Some(r) => match axes.iter().map(|&a| norm_axis(a, r).map(|a| a as i64)).collect::<Option<Vec<_>>>() {
                    Some(a) => a,
                    None => {
                        report.details.push(format!("{label}: skipped, axes {axes:?} out of range for rank {r}"));
                        continue;
                    }
                },
                None => axes,
            };
            let too_big = axes.iter().enumerate().find_map(|(k, &a)| {
                let d = in_shape.as_ref()?.get(a as usize).copied().flatten()?;
                let (b, e) = (pads[k], pads[k + axes.len()]);
                (b > d - 1 || e > d - 1).then_some((a, d, b, e))
            });
            if let Some((a, d, b, e)) = too_big {
                report.details.push(format!("{label}: skipped, pads {b}/{e} on axis {a} of size {d} exceed size − 1"));
                continue;
            }
            let out = &n.output[0];
            let padded: Vec<(i64, i64, i64)> = axes
                .iter()
                .enumerate()
                .map(|(k, &a)| (a, pads[k], pads[k + axes.len()]))
                .filter(|&(_, b, e)| b > 0 || e > 0)
                .collect();
            let base = if n.name.is_empty() { format!("{out}_pad") } else { n.name.clone() };
            let mut new_nodes = Vec::new();
            let mut cur = n.input[0].clone();
            let (mut slices, mut concats) = (0, 0);
            for (k, &(axis, b, e)) in padded.iter().enumerate() {
                let ax = edits.i64s("reflect_axis", &[axis]);
                let step = edits.i64s("reflect_step", &[-1]);
                // The mirrored border of one side: a reversed Slice (step −1) next to the edge.
                let mut mirror = |edits: &mut NodeEdits, start: i64, end: i64, side: &str| {
                    let starts = edits.i64s("reflect_start", &[start]);
                    let ends = edits.i64s("reflect_end", &[end]);
                    let v = edits.fresh(&format!("{base}_ax{axis}_{side}"));
                    new_nodes.push(edit::node(
                        &edits.fresh(&format!("{base}_slice_ax{axis}_{side}")),
                        "Slice",
                        &[&cur, &starts, &ends, &ax, &step],
                        &[&v],
                        vec![],
                    ));
                    v
                };
                let mut parts = Vec::new();
                if b > 0 {
                    parts.push(mirror(&mut edits, b, 0, "begin"));
                    slices += 1;
                }
                parts.push(cur.clone());
                if e > 0 {
                    parts.push(mirror(&mut edits, -2, -2 - e, "end"));
                    slices += 1;
                }
                let last = k + 1 == padded.len();
                let v = if last { out.clone() } else { edits.fresh(&format!("{base}_ax{axis}")) };
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                new_nodes.push(edit::node(
                    &edits.fresh(&format!("{base}_concat_ax{axis}")),
                    "Concat",
                    &refs,
                    &[&v],
                    vec![attr::int("axis", axis)],
                ));
                concats += 1;
                cur = v;
            }
            if new_nodes.is_empty() {
                new_nodes.push(edit::node(&edits.fresh(&base), "Identity", &[&n.input[0]], &[out], vec![]));
            }
            edits.detach(n.input.iter().skip(1).filter(|s| !s.is_empty()).cloned());
            report.details.push(format!("{label} → {slices} Slice + {concats} Concat (pads {pads:?})"));
            report.rewritten += 1;
            edits.replace(i, new_nodes);
        }
        edits.apply(model, report)
    }
}
