//! Graph-editing helpers shared by the passes: fresh names, constant lookup, initializers added
//! without disturbing the swapper's trailing `emap`, node construction, pruning and re-sorting, and
//! [`NodeEdits`], the setup and teardown of the node-by-node replacement passes.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use crate::onnx::consteval;
use crate::onnx::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use crate::onnx::{GraphIndex, Model, Tensor};

use super::PassReport;

/// Name of the initializer insightface reads by position (`graph.initializer[-1]`) from the
/// swapper: no pass may drop or move it.
pub const EMAP: &str = "emap";

/// Hands out value and node names that do not clash with anything in the graph.
#[derive(Debug, Clone, Default)]
pub struct Names {
    used: HashSet<String>,
}

impl Names {
    /// Collects every name in use in `g` (values, nodes, initializers, inputs, outputs).
    pub fn of(g: &GraphProto) -> Names {
        let mut used = HashSet::new();
        for n in &g.node {
            used.insert(n.name.clone());
            used.extend(n.input.iter().cloned());
            used.extend(n.output.iter().cloned());
        }
        used.extend(g.initializer.iter().map(|t| t.name.clone()));
        used.extend(g.input.iter().map(|v| v.name.clone()));
        used.extend(g.output.iter().map(|v| v.name.clone()));
        used.extend(g.value_info.iter().map(|v| v.name.clone()));
        Names { used }
    }

    /// `hint` itself when free, else `hint_2`, `hint_3`, …; the name is reserved.
    pub fn fresh(&mut self, hint: &str) -> String {
        let mut name = hint.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            k += 1;
            name = format!("{hint}_{k}");
        }
        self.used.insert(name.clone());
        name
    }
}

/// A node with one attribute list, named `name`.
pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// The constant value of `name`: an initializer, or the output of a `Constant` node.
pub fn const_value(g: &GraphProto, idx: &GraphIndex, name: &str) -> Option<Tensor> {
    if let Some(t) = idx.initializer(g, name) {
        return Tensor::from_proto(t).ok();
    }
    let p = &g.node[*idx.producer.get(name)?];
    if p.op_type != "Constant" || !is_default_domain(p) {
        return None;
    }
    consteval::eval(p, &[], &[]).map(|mut v| v.remove(0))
}

/// True for nodes of the default ONNX domain.
pub fn is_default_domain(n: &NodeProto) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

/// Adds initializers, before a trailing `emap` so that it stays last.
pub fn add_initializers(g: &mut GraphProto, new: Vec<TensorProto>) {
    if new.is_empty() {
        return;
    }
    let at = match g.initializer.last() {
        Some(t) if t.name == EMAP => g.initializer.len() - 1,
        _ => g.initializer.len(),
    };
    g.initializer.splice(at..at, new);
}

/// Deduplicating factory of small int64 initializers (Slice starts/ends, Squeeze axes, …): equal
/// values share one initializer. Call [`ConstPool::flush`] to add them to the graph.
#[derive(Debug, Default)]
pub struct ConstPool {
    by_value: HashMap<(Vec<usize>, Vec<i64>), String>,
    pending: Vec<TensorProto>,
}

impl ConstPool {
    /// The name of an int64 initializer holding `t` (rank 1 of `values`), creating it if needed.
    pub fn i64s(&mut self, names: &mut Names, hint: &str, values: &[i64]) -> String {
        self.tensor(names, hint, &Tensor::i64_vec(values))
    }

    /// The name of an integer initializer equal to `t` (int64 or int32).
    pub fn tensor(&mut self, names: &mut Names, hint: &str, t: &Tensor) -> String {
        let key = (t.dims.clone(), t.as_i64s().unwrap_or_default());
        let is_i64 = matches!(t.data, crate::onnx::TensorData::I64(_));
        if is_i64 {
            if let Some(n) = self.by_value.get(&key) {
                return n.clone();
            }
        }
        let name = names.fresh(hint);
        self.pending.push(t.to_proto(&name));
        if is_i64 {
            self.by_value.insert(key, name.clone());
        }
        name
    }

    /// Adds the created initializers to `g` (before a trailing `emap`).
    pub fn flush(&mut self, g: &mut GraphProto) {
        add_initializers(g, std::mem::take(&mut self.pending));
        self.by_value.clear();
    }
}

/// Names read inside subgraphs (If/Loop/Scan bodies) of `g`'s nodes that the subgraphs do not
/// define: values captured from the outer scope.
pub fn captured_values(g: &GraphProto) -> HashSet<String> {
    fn walk(sub: &GraphProto, out: &mut HashSet<String>) {
        let mut defined: HashSet<&str> = sub.input.iter().map(|v| v.name.as_str()).collect();
        defined.extend(sub.initializer.iter().map(|t| t.name.as_str()));
        for n in &sub.node {
            defined.extend(n.output.iter().map(String::as_str));
        }
        for n in &sub.node {
            for i in n.input.iter().filter(|i| !i.is_empty() && !defined.contains(i.as_str())) {
                out.insert(i.clone());
            }
            for a in &n.attribute {
                for s in a.g.iter().chain(a.graphs.iter()) {
                    walk(s, out);
                }
            }
        }
    }
    let mut out = HashSet::new();
    for n in &g.node {
        for a in &n.attribute {
            for s in a.g.iter().chain(a.graphs.iter()) {
                walk(s, &mut out);
            }
        }
    }
    out
}

/// True when some node of `g` carries a subgraph.
pub fn has_subgraphs(g: &GraphProto) -> bool {
    g.node.iter().any(|n| n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty()))
}

/// Removes, among `candidates`, the initializers and `Constant` nodes nothing reads any more
/// (neither a node, a subgraph nor a graph output). `emap` is never removed. Returns the names
/// removed. Passes call this on the constants they detached, so they leave no litter behind.
pub fn drop_if_unused(g: &mut GraphProto, candidates: &[String]) -> Vec<String> {
    let mut read: HashSet<String> = g.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
    read.extend(g.output.iter().map(|v| v.name.clone()));
    read.extend(captured_values(g));
    let dead: HashSet<&String> = candidates.iter().filter(|c| !read.contains(*c) && *c != EMAP).collect();
    if dead.is_empty() {
        return vec![];
    }
    let mut removed = vec![];
    g.initializer.retain(|t| {
        let drop = dead.contains(&t.name);
        if drop {
            removed.push(t.name.clone());
        }
        !drop
    });
    g.node.retain(|n| {
        let drop = n.op_type == "Constant" && n.output.len() == 1 && dead.contains(&n.output[0]);
        if drop {
            removed.push(n.output[0].clone());
        }
        !drop
    });
    // Old exporters list initializers as graph inputs too.
    let gone: HashSet<&String> = removed.iter().collect();
    g.input.retain(|v| !gone.contains(&v.name));
    removed
}

/// Re-sorts the nodes topologically (stable). Returns true when the order changed.
pub fn topo_sort(g: &mut GraphProto) -> Result<bool> {
    let idx = GraphIndex::new(g)?;
    let order = idx.topological_order(g)?;
    if order.iter().enumerate().all(|(i, &j)| i == j) {
        return Ok(false);
    }
    let mut old: Vec<Option<NodeProto>> = std::mem::take(&mut g.node).into_iter().map(Some).collect();
    g.node = order.into_iter().map(|i| old[i].take().expect("each node once")).collect();
    Ok(true)
}

/// Drops `value_info` entries of values that no longer exist (removed nodes' outputs).
pub fn prune_value_info(g: &mut GraphProto) {
    let mut live: HashSet<&str> = g.node.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
    live.extend(g.initializer.iter().map(|t| t.name.as_str()));
    live.extend(g.input.iter().map(|v| v.name.as_str()));
    let live: HashSet<String> = live.into_iter().map(str::to_string).collect();
    g.value_info.retain(|v| live.contains(&v.name));
}

/// Replaces each node `i` listed in `replacements` by its replacement nodes, in place, keeping the
/// rest of the order (replacements read only values available where the original node stood).
pub fn splice_nodes(g: &mut GraphProto, mut replacements: HashMap<usize, Vec<NodeProto>>) {
    if replacements.is_empty() {
        return;
    }
    let old = std::mem::take(&mut g.node);
    for (i, n) in old.into_iter().enumerate() {
        match replacements.remove(&i) {
            Some(new) => g.node.extend(new),
            None => g.node.push(n),
        }
    }
}

/// The bookkeeping of a node-local rewrite: fresh names, pooled constants, the nodes that replace
/// original ones and the constants the originals read. Collect edits while walking the unchanged
/// graph, then [`NodeEdits::apply`] them in one go.
#[derive(Debug)]
pub struct NodeEdits {
    names: Names,
    pool: ConstPool,
    replacements: HashMap<usize, Vec<NodeProto>>,
    detached: Vec<String>,
}

impl NodeEdits {
    /// Starts with no edits; names are reserved against everything already in `model`'s graph.
    pub fn new(model: &Model) -> NodeEdits {
        NodeEdits {
            names: Names::of(model.graph()),
            pool: ConstPool::default(),
            replacements: HashMap::new(),
            detached: Vec::new(),
        }
    }

    /// A value or node name that clashes with nothing (see [`Names::fresh`]).
    pub fn fresh(&mut self, hint: &str) -> String {
        self.names.fresh(hint)
    }

    /// The name of a pooled int64 initializer holding `values` (see [`ConstPool::i64s`]).
    pub fn i64s(&mut self, hint: &str, values: &[i64]) -> String {
        self.pool.i64s(&mut self.names, hint, values)
    }

    /// The name of a pooled integer initializer equal to `t` (see [`ConstPool::tensor`]).
    pub fn tensor(&mut self, hint: &str, t: &Tensor) -> String {
        self.pool.tensor(&mut self.names, hint, t)
    }

    /// Replaces node `i` of the graph by `nodes`, in its place (see [`splice_nodes`]).
    pub fn replace(&mut self, i: usize, nodes: Vec<NodeProto>) {
        self.replacements.insert(i, nodes);
    }

    /// Values the replaced nodes read that may now be unused: removed by [`NodeEdits::apply`] when
    /// nothing reads them any more (see [`drop_if_unused`]).
    pub fn detach(&mut self, values: impl IntoIterator<Item = String>) {
        self.detached.extend(values);
    }

    /// Splices the replacements in, adds the pooled constants (before a trailing `emap`), drops
    /// the detached constants left unused, and finishes `report` (see [`finish`]).
    pub fn apply(mut self, model: &mut Model, report: PassReport) -> Result<PassReport> {
        let g = model.graph_mut();
        splice_nodes(g, self.replacements);
        self.pool.flush(g);
        drop_if_unused(g, &self.detached);
        finish(report, model)
    }
}

/// Starts a report for the pass `name` on `model`.
pub fn report(name: &str, model: &Model) -> PassReport {
    PassReport { pass: name.into(), nodes_before: model.graph().node.len(), ..Default::default() }
}

/// Finishes a report: node count after, and the graph checked for dangling values.
pub fn finish(mut r: PassReport, model: &Model) -> Result<PassReport> {
    let g = model.graph();
    GraphIndex::new(g)?.check_dangling(g)?;
    r.nodes_after = g.node.len();
    Ok(r)
}

/// The default-domain opset of `model` (ONNX's own default when none is declared).
pub fn opset(model: &Model) -> i64 {
    model.opset("").unwrap_or(13)
}
