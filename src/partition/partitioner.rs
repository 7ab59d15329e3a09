//! Groups the nodes an EP claims into partitions the way ONNX Runtime does, and finds the tensors
//! crossing between the EP and the CPU.
//!
//! ORT's grouping (`CreateSupportedPartitionNodeGroups` in `partitioning_utils.cc`) is a variant of
//! Kahn's topological sort that builds one group per "wave": it takes ready nodes in order, adds
//! claimed ones to the current group, runs unclaimed ones that do not depend on the group right away,
//! and defers unclaimed nodes that consume the group's outputs (its border) to after the group closes.
//! Two claimed nodes separated by an unclaimed one therefore never share a group, while independent
//! branches do. This module restates that algorithm over the prepassed graph.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use anyhow::Result;
use serde::Serialize;

use super::prepass::{constant_names, PrepassReport};
use super::rules::{NodeCtx, RuleTable, Verdict};
use super::{Format, OrtVersion, Plan};
use crate::onnx::graph::{node_label, GraphIndex};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::{infer, ShapeInfo};
use crate::onnx::summary::dtype_name;
use crate::onnx::tensor::elem_size;
use crate::onnx::Model;

/// Where one node runs and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeVerdict {
    /// Node name (or `Op(output)` when unnamed).
    pub name: String,
    pub op: String,
    /// `ep` or `cpu`.
    pub placement: String,
    /// 1-based partition index when on the EP.
    pub partition: Option<usize>,
    /// The rule that claimed or rejected the node.
    pub rule: String,
    /// Why the node is on the CPU.
    pub reason: Option<String>,
    /// Where it would be claimed instead.
    pub hint: Option<String>,
}

/// An unclaimed node on a partition's border when ORT closed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BorderNode {
    pub name: String,
    pub op: String,
    pub rule: String,
    pub reason: String,
}

/// One partition (a fused subgraph for compiling EPs, a region of EP nodes otherwise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partition {
    /// 1-based, in the order ORT creates them.
    pub index: usize,
    pub nodes: usize,
    /// Op type → count.
    pub ops: BTreeMap<String, usize>,
    /// First and last node in the group's order.
    pub first: String,
    pub last: String,
    pub node_names: Vec<String>,
    /// The unclaimed nodes that stopped the group from growing (ORT's "unsupported nodes on group
    /// border"), with the rule that rejected each.
    pub border: Vec<BorderNode>,
    /// Tensors entering and leaving the partition (non-constant).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Bytes in and out per inference, when every tensor's shape is static.
    pub input_bytes: Option<u64>,
    pub output_bytes: Option<u64>,
}

/// A tensor crossing the EP boundary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossing {
    pub tensor: String,
    /// `cpu→ep` or `ep→cpu`.
    pub direction: String,
    /// The partition it enters or leaves (1-based).
    pub partition: usize,
    /// The other side: `graph input`, `graph output`, `CPU node <name>`, `partition <n>`.
    pub peer: String,
    pub dtype: String,
    /// Dims, symbolic or unknown ones as `?`.
    pub shape: Vec<String>,
    pub bytes: Option<u64>,
}

fn tensor_bytes(info: &ShapeInfo, name: &str) -> Option<u64> {
    let f = info.get(name)?;
    let n = f.numel()?;
    let size = elem_size(DataType::try_from(f.dtype).ok()?)? as u64;
    Some(n.max(0) as u64 * size)
}

fn shape_strings(info: &ShapeInfo, name: &str) -> Vec<String> {
    match info.get(name).and_then(|f| f.shape.clone()) {
        Some(s) => s.iter().map(|d| d.map(|d| d.to_string()).unwrap_or_else(|| "?".into())).collect(),
        None => vec!["?".into()],
    }
}

/// Nodes that only compute values read from host memory (shape-like inputs): ORT keeps them on the
/// CPU for kernel EPs. Computed consumers-first so a chain `Shape → Gather → Unsqueeze → Concat`
/// feeding a Reshape's shape is taken whole.
fn cpu_shape_nodes(
    model: &Model,
    idx: &GraphIndex,
    order: &[usize],
    table: &RuleTable,
    info: &ShapeInfo,
) -> HashSet<usize> {
    let g = model.graph();
    let shape_slot =
        |op: &str, slot: usize| table.partitioning.shape_inputs.iter().any(|s| s.op == op && s.inputs.contains(&slot));
    let mut chosen: HashSet<usize> = HashSet::new();
    for &i in order.iter().rev() {
        let n = &g.node[i];
        let outs: Vec<&String> = n.output.iter().filter(|o| !o.is_empty()).collect();
        let small_int = outs.iter().all(|o| {
            info.get(o).is_some_and(|f| {
                matches!(DataType::try_from(f.dtype), Ok(DataType::Int64 | DataType::Int32))
                    && f.numel().is_none_or(|n| n <= 64)
            })
        });
        if outs.is_empty() || !small_int || outs.iter().any(|o| idx.is_graph_output(o)) {
            continue;
        }
        let mut used = false;
        let all_shape_uses = outs.iter().all(|o| {
            idx.consumers_of(o).iter().all(|&c| {
                used = true;
                let cn = &g.node[c];
                chosen.contains(&c)
                    || cn
                        .input
                        .iter()
                        .enumerate()
                        .filter(|(_, x)| x == o)
                        .all(|(slot, _)| shape_slot(&cn.op_type, slot))
            })
        });
        if used && all_shape_uses {
            chosen.insert(i);
        }
    }
    chosen
}

/// Plans the (already prepassed) `model`: verdicts, groups, crossings.
pub(crate) fn partition(
    model: &Model,
    model_nodes: usize,
    prepass: PrepassReport,
    table: &RuleTable,
    format: Option<Format>,
    ort: OrtVersion,
) -> Result<Plan> {
    let g = model.graph();
    let info = infer(model, &HashMap::new())?;
    let idx = GraphIndex::new(g)?;
    let order = idx.topological_order(g)?;
    let consts = constant_names(g);
    let opset = model.opset("").unwrap_or(13);

    let mut verdicts: Vec<Verdict> = g
        .node
        .iter()
        .map(|node| table.judge(&NodeCtx { node, info: &info, consts: &consts, opset }, format, ort))
        .collect();
    if table.partitioning.cpu_shape_nodes {
        for i in cpu_shape_nodes(model, &idx, &order, table, &info) {
            if verdicts[i].claimed() {
                verdicts[i] = Verdict::Rejected {
                    rule: format!("{}:cpu-preferred", table.ep),
                    reason: "computes a shape value read from host memory; ORT keeps it on the CPU".into(),
                    hint: None,
                };
            }
        }
    }
    let supported: Vec<bool> = verdicts.iter().map(Verdict::claimed).collect();

    // ORT's wave grouping.
    let n = g.node.len();
    let mut in_degree: Vec<usize> = g
        .node
        .iter()
        .map(|node| node.input.iter().filter(|x| !x.is_empty() && idx.producer.contains_key(*x)).count())
        .collect();
    let mut ready: VecDeque<usize> = order.iter().copied().filter(|&i| in_degree[i] == 0).collect();
    let mut deferred: VecDeque<usize> = VecDeque::new();
    let mut group: Vec<usize> = Vec::new();
    let mut border: HashSet<usize> = HashSet::new();
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut processed = 0usize;
    loop {
        let Some(i) = ready.pop_front() else {
            if deferred.is_empty() {
                break;
            }
            if !group.is_empty() {
                groups.push((std::mem::take(&mut group), deferred.iter().copied().collect()));
                border.clear();
            }
            std::mem::swap(&mut ready, &mut deferred);
            continue;
        };
        if !supported[i] && border.contains(&i) {
            deferred.push_back(i);
            continue;
        }
        if supported[i] {
            group.push(i);
            border.remove(&i);
        }
        for out in g.node[i].output.iter().filter(|o| !o.is_empty()) {
            for &c in idx.consumers_of(out) {
                if supported[i] {
                    border.insert(c);
                }
                in_degree[c] -= 1;
                if in_degree[c] == 0 {
                    ready.push_back(c);
                }
            }
        }
        processed += 1;
    }
    if !group.is_empty() {
        groups.push((group, Vec::new()));
    }
    debug_assert_eq!(processed, n, "every node is processed once");

    // Keep or discard each group.
    let mut part_of: Vec<Option<usize>> = vec![None; n];
    let mut kept: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut dropped: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (nodes, brd) in groups {
        if nodes.iter().all(|&i| table.is_trivial(&g.node[i].op_type, ort)) {
            dropped.push((nodes, brd));
        } else {
            for &i in &nodes {
                part_of[i] = Some(kept.len() + 1);
            }
            kept.push((nodes, brd));
        }
    }
    let discarded_nodes: HashSet<usize> = dropped.iter().flat_map(|(v, _)| v.iter().copied()).collect();

    let node_verdict = |i: usize| -> NodeVerdict {
        let node = &g.node[i];
        let (rule, reason, hint) = match &verdicts[i] {
            Verdict::Claimed { rule } if discarded_nodes.contains(&i) => (
                format!("{}:drop-trivial", table.ep),
                Some(format!("its partition holds only cheap ops, which ORT ≥ {} hands back to the CPU", ort)),
                None,
            ),
            Verdict::Claimed { rule } => (rule.clone(), None, None),
            Verdict::Rejected { rule, reason, hint } => (rule.clone(), Some(reason.clone()), hint.clone()),
        };
        NodeVerdict {
            name: node_label(node),
            op: node.op_type.clone(),
            placement: if part_of[i].is_some() { "ep" } else { "cpu" }.into(),
            partition: part_of[i],
            rule,
            reason,
            hint,
        }
    };
    let all_verdicts: Vec<NodeVerdict> = order.iter().map(|&i| node_verdict(i)).collect();
    let cpu_nodes: Vec<NodeVerdict> = all_verdicts.iter().filter(|v| v.placement == "cpu").cloned().collect();

    // Crossings.
    let mut crossings: Vec<Crossing> = Vec::new();
    let mut seen: HashSet<(String, &'static str, usize)> = HashSet::new();
    let peer_of_node = |i: usize| match part_of[i] {
        Some(p) => format!("partition {p}"),
        None => format!("CPU node {}", node_label(&g.node[i])),
    };
    let mut push =
        |crossings: &mut Vec<Crossing>, tensor: &str, dir: &'static str, p: usize, peer: String, metadata: bool| {
            if seen.insert((tensor.to_string(), dir, p)) {
                let dtype = info.get(tensor).map(|f| dtype_name(f.dtype)).unwrap_or_else(|| "?".into());
                let bytes = if metadata { Some(0) } else { tensor_bytes(&info, tensor) };
                crossings.push(Crossing {
                    tensor: tensor.to_string(),
                    direction: dir.into(),
                    partition: p,
                    peer,
                    dtype,
                    shape: shape_strings(&info, tensor),
                    bytes,
                });
            }
        };
    // Kernel EPs read shape-like inputs from host memory: no copy for them.
    let host_slot = |op: &str, slot: usize| {
        !table.fuses && table.partitioning.shape_inputs.iter().any(|s| s.op == op && s.inputs.contains(&slot))
    };
    for (k, (nodes, _)) in kept.iter().enumerate() {
        let p = k + 1;
        for &i in nodes {
            let node = &g.node[i];
            let inputs =
                node.input.iter().enumerate().filter(|(slot, v)| !host_slot(&node.op_type, *slot) && !v.is_empty());
            for v in inputs.map(|(_, v)| v).filter(|v| !consts.contains(*v)) {
                match idx.producer.get(v) {
                    Some(&q) if part_of[q] == Some(p) => {}
                    // Kernel EPs keep tensors on the device between regions.
                    Some(&q) if part_of[q].is_some() && !table.fuses => {}
                    Some(&q) => push(&mut crossings, v, "cpu→ep", p, peer_of_node(q), false),
                    None => push(&mut crossings, v, "cpu→ep", p, "graph input".into(), false),
                }
            }
            for v in g.node[i].output.iter().filter(|v| !v.is_empty()) {
                if idx.is_graph_output(v) {
                    push(&mut crossings, v, "ep→cpu", p, "graph output".into(), false);
                }
                for &c in idx.consumers_of(v) {
                    match part_of[c] {
                        Some(q) if q == p => {}
                        Some(_) if !table.fuses => {}
                        _ => {
                            // A kernel EP's tensor read only by a CPU Shape node is not copied.
                            let metadata = !table.fuses && g.node[c].op_type == "Shape";
                            push(&mut crossings, v, "ep→cpu", p, peer_of_node(c), metadata);
                        }
                    }
                }
            }
        }
    }

    let make_partition = |k: usize, nodes: &[usize], brd: &[usize], crossings: &[Crossing]| -> Partition {
        let p = k + 1;
        let mut ops = BTreeMap::new();
        for &i in nodes {
            *ops.entry(g.node[i].op_type.clone()).or_insert(0) += 1;
        }
        let mine = |dir: &str| -> Vec<&Crossing> {
            let mut seen = HashSet::new();
            crossings
                .iter()
                .filter(|c| c.partition == p && c.direction == dir && seen.insert(c.tensor.as_str()))
                .collect()
        };
        let names = |dir: &str| -> Vec<String> { mine(dir).iter().map(|c| c.tensor.clone()).collect() };
        let sum = |dir: &str| -> Option<u64> { mine(dir).iter().map(|c| c.bytes).sum() };
        Partition {
            index: p,
            nodes: nodes.len(),
            ops,
            first: node_label(&g.node[nodes[0]]),
            last: node_label(&g.node[*nodes.last().expect("groups are non-empty")]),
            node_names: nodes.iter().map(|&i| node_label(&g.node[i])).collect(),
            border: brd
                .iter()
                .map(|&i| {
                    let v = node_verdict(i);
                    BorderNode { name: v.name, op: v.op, rule: v.rule, reason: v.reason.unwrap_or_default() }
                })
                .collect(),
            inputs: names("cpu→ep"),
            outputs: names("ep→cpu"),
            input_bytes: sum("cpu→ep"),
            output_bytes: sum("ep→cpu"),
        }
    };
    let partitions: Vec<Partition> =
        kept.iter().enumerate().map(|(k, (nodes, brd))| make_partition(k, nodes, brd, &crossings)).collect();
    let discarded: Vec<Partition> =
        dropped.iter().enumerate().map(|(k, (nodes, brd))| make_partition(kept.len() + k, nodes, brd, &[])).collect();
    let crossing_unknown = crossings.iter().filter(|c| c.bytes.is_none()).count();
    let crossing_bytes = crossings.iter().map(|c| c.bytes).sum();

    Ok(Plan {
        ep: table.ep,
        provider: table.provider.clone(),
        format,
        ort_version: ort,
        fuses: table.fuses,
        model_nodes,
        nodes: n,
        prepass,
        claimed: partitions.iter().map(|p| p.nodes).sum(),
        partitions,
        discarded,
        cpu_nodes,
        crossings,
        crossing_bytes,
        crossing_unknown,
        verdicts: all_verdicts,
    })
}
