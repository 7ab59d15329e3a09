//! Finding where two graphs part ways: expose the intermediate values both graphs compute (same
//! name, same shape) as extra outputs, run both on the failing input, and walk the original's
//! topological order to the first node whose output differs beyond tolerance.
//!
//! Values are exposed in batches of bounded size, so a full-size model does not have to hold every
//! activation at once; the walk stops at the first batch with a divergence.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::metrics::{diff, Diff};
use crate::onnx::builder::value_info;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::{infer, ShapeInfo};
use crate::onnx::{node_label, GraphIndex, Model, Tensor};
use crate::rewrite::recipe::EXACT_MAX_ABS;
use crate::runtime::session::ModelSource;
use crate::runtime::{Runtime, SessionConfig, SessionRunner};

/// Bytes of intermediate values exposed per run (both graphs together).
const BATCH_BYTES: u64 = 256 << 20;
/// Size assumed for a value whose shape is unknown.
const UNKNOWN_BYTES: u64 = 4 << 20;
/// Suspects listed at most.
const MAX_SUSPECTS: usize = 12;

/// The first node of the original graph whose output the rewritten graph does not reproduce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Node name (or `Op(output)` when unnamed).
    pub node: String,
    pub op_type: String,
    /// The diverging value.
    pub value: String,
    /// The input case it was found on.
    pub case: String,
    pub max_abs: f64,
    pub rel_l2: f64,
    /// Original nodes feeding the diverging node whose outputs the rewritten graph does not have
    /// (the region a pass rewrote): the likely culprits when the node itself is untouched.
    pub rewritten_upstream: Vec<String>,
    /// Shared values compared before the divergence was found.
    pub values_compared: usize,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "first diverging node: '{}' ({}) output '{}' on {}: max abs {:.3e}, rel {:.3e}",
            self.node, self.op_type, self.value, self.case, self.max_abs, self.rel_l2
        )?;
        if !self.rewritten_upstream.is_empty() {
            write!(f, "; rewritten just before it: {}", self.rewritten_upstream.join(", "))?;
        }
        Ok(())
    }
}

/// When an intermediate value counts as diverged: exact rewrites allow [`EXACT_MAX_ABS`] relative
/// to the value's magnitude, approximate ones a relative L2 error of `approx_rel`.
pub fn diverged(d: &Diff, exact: bool, approx_rel: f64) -> bool {
    if exact {
        !(d.bit_identical || d.max_abs <= EXACT_MAX_ABS * d.ref_max_abs.max(1.0))
    } else {
        // NaN counts as diverged.
        d.rel_l2.is_nan() || d.rel_l2 > approx_rel
    }
}

fn facts(model: &Model, feeds: &[(String, Tensor)]) -> ShapeInfo {
    let shapes: HashMap<String, Vec<i64>> =
        feeds.iter().map(|(n, t)| (n.clone(), t.dims.iter().map(|&d| d as i64).collect())).collect();
    // Unknown ops only leave values unknown; a model shape inference cannot follow at all still
    // gets compared where ORT can type the outputs itself.
    infer(model, &shapes).unwrap_or_default()
}

fn bytes_of(info: &ShapeInfo, name: &str) -> u64 {
    let f = info.get(name);
    let elem = f.and_then(|f| DataType::try_from(f.dtype).ok()).and_then(crate::onnx::tensor::elem_size).unwrap_or(4);
    f.and_then(|f| f.numel()).map(|n| n.max(0) as u64 * elem as u64).unwrap_or(UNKNOWN_BYTES)
}

/// `model` with `values` added as graph outputs (typed where inference knows them).
fn with_outputs(model: &Model, info: &ShapeInfo, values: &[&str]) -> Model {
    let mut m = model.clone();
    let g = m.graph_mut();
    let existing: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
    for &v in values.iter().filter(|v| !existing.contains(**v)) {
        let dtype = info.get(v).and_then(|f| DataType::try_from(f.dtype).ok()).unwrap_or(DataType::Float);
        g.output.push(value_info(v, dtype, None));
    }
    m
}

fn run_all(
    rt: &Runtime,
    m: &Model,
    feeds: &[(String, Tensor)],
    cfg: &SessionConfig,
) -> Result<HashMap<String, Tensor>> {
    let bytes = m.to_bytes();
    let mut s = SessionRunner::new(rt, ModelSource::Bytes(&bytes), cfg)?;
    Ok(s.run(feeds)?.into_iter().collect())
}

/// Walks `original`'s nodes in topological order and returns the first whose (shared) output
/// `rewritten` does not reproduce on this input. `skip` names values not to compare (outputs the
/// rewrite changed on purpose, e.g. fused 8-bit outputs). `None`: every shared value agrees.
#[allow(clippy::too_many_arguments)]
pub fn localize(
    rt: &Runtime,
    original: &Model,
    rewritten: &Model,
    feeds_original: &[(String, Tensor)],
    feeds_rewritten: &[(String, Tensor)],
    case: &str,
    exact: bool,
    approx_rel: f64,
    skip: &HashSet<String>,
    cfg: &SessionConfig,
) -> Result<Option<Divergence>> {
    let (go, gr) = (original.graph(), rewritten.graph());
    let io = GraphIndex::new(go)?;
    let ir = GraphIndex::new(gr)?;
    let fo = facts(original, feeds_original);
    let fr = facts(rewritten, feeds_rewritten);
    let shape_ok = |v: &str| match (fo.shape(v), fr.shape(v)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let shared: HashSet<&str> = io
        .producer
        .keys()
        .map(String::as_str)
        .filter(|v| ir.producer.contains_key(*v) && !skip.contains(*v) && shape_ok(v))
        .collect();
    // (node, value) in the original's topological order.
    let order = io.topological_order(go)?;
    let walk: Vec<(usize, &str)> = order
        .iter()
        .flat_map(|&i| go.node[i].output.iter().filter(|o| shared.contains(o.as_str())).map(move |o| (i, o.as_str())))
        .collect();
    let mut compared = 0usize;
    let mut start = 0usize;
    while start < walk.len() {
        let mut end = start;
        let mut budget = 0u64;
        while end < walk.len() && (end == start || budget < BATCH_BYTES) {
            budget += bytes_of(&fo, walk[end].1) + bytes_of(&fr, walk[end].1);
            end += 1;
        }
        let batch: Vec<&str> = walk[start..end].iter().map(|(_, v)| *v).collect();
        let a = run_all(rt, &with_outputs(original, &fo, &batch), feeds_original, cfg)
            .context("running the original with intermediate outputs")?;
        let b = run_all(rt, &with_outputs(rewritten, &fr, &batch), feeds_rewritten, cfg)
            .context("running the rewritten model with intermediate outputs")?;
        for &(node, value) in &walk[start..end] {
            let (Some(x), Some(y)) = (a.get(value), b.get(value)) else { continue };
            let Ok(d) = diff(x, y) else { continue };
            compared += 1;
            if diverged(&d, exact, approx_rel) {
                let n = &go.node[node];
                return Ok(Some(Divergence {
                    node: node_label(n),
                    op_type: n.op_type.clone(),
                    value: value.to_string(),
                    case: case.to_string(),
                    max_abs: d.max_abs,
                    rel_l2: d.rel_l2,
                    rewritten_upstream: rewritten_upstream(go, &io, node, &shared),
                    values_compared: compared,
                }));
            }
        }
        start = end;
    }
    Ok(None)
}

/// Original nodes upstream of `node` reached only through values the rewritten graph lacks.
fn rewritten_upstream(
    g: &crate::onnx::proto::GraphProto,
    idx: &GraphIndex,
    node: usize,
    shared: &HashSet<&str>,
) -> Vec<String> {
    let mut seen = BTreeMap::new();
    let mut stack: Vec<&str> = g.node[node].input.iter().map(String::as_str).collect();
    let mut visited: HashSet<&str> = HashSet::new();
    while let Some(v) = stack.pop() {
        if v.is_empty() || shared.contains(v) || !visited.insert(v) {
            continue;
        }
        if let Some(&p) = idx.producer.get(v) {
            seen.insert(p, node_label(&g.node[p]));
            stack.extend(g.node[p].input.iter().map(String::as_str));
        }
        if seen.len() >= MAX_SUSPECTS {
            break;
        }
    }
    seen.into_values().collect()
}
