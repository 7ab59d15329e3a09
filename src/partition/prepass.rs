//! What ONNX Runtime does to a graph before it asks execution providers for their nodes.
//!
//! ORT applies its basic ("level 1") optimisations to the whole graph first, whatever the EP, and only
//! then partitions. Predicting partitions from the raw file would therefore miscount: a `Shape →
//! Gather → Unsqueeze → Concat` chain on a static shape is folded to a constant before any EP sees
//! it, so an EP that cannot run it loses nothing. This module applies, to a copy of the model, the
//! level-1 passes that change what an EP is offered:
//!
//! - free-dimension overrides: the input shapes the session fixes, if any;
//! - `Constant` nodes become initializers (done when ORT loads a graph);
//! - constant folding: nodes whose inputs are all constant, and `Shape` of a statically shaped
//!   tensor, become initializers (values computed when small, shape-only placeholders otherwise);
//! - identity elimination;
//! - common subexpression elimination (an exporter's `Shape(x)` repeated per dimension becomes one);
//! - reshape fusion: a Reshape target built from the Reshape input's own dims and constants becomes a
//!   constant (`0` copies a dim), even with symbolic dims; a chain of Reshape/Squeeze/Unsqueeze with
//!   a static result becomes one Reshape;
//! - Conv + BatchNormalization / Add / Mul fusion with constant operands;
//! - removal of nodes left without consumers.
//!
//! Other level-1 rewrites (Slice/Unsqueeze/Expand/Cast no-op removal, Gemm/Div-Mul fusions) only
//! remove nodes no EP rule in this project treats differently, so they are not simulated.
//! `tests/partitions_ort.rs` checks the result against ORT's own level-1 output (op by op) on every
//! replica and on a real SCRFD export.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::onnx::graph::{GraphIndex, NodeExt};
use crate::onnx::proto::{
    tensor_shape_proto::dimension::Value as DimValue, tensor_shape_proto::Dimension, type_proto, GraphProto,
    TensorProto, TensorShapeProto,
};
use crate::onnx::shape::{declared, infer, ShapeInfo};
use crate::onnx::{Model, Tensor};

/// Ops ORT never folds: their outputs differ between runs, or they carry subgraphs.
const NEVER_FOLD: &[&str] = &[
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "If",
    "Loop",
    "Scan",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// What the simulated optimisations changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PrepassReport {
    /// Graph inputs whose shape the session fixes.
    pub inputs_fixed: Vec<String>,
    /// `Constant` nodes turned into initializers.
    pub constants: usize,
    /// Nodes replaced by constants (constant folding), of which `Shape` nodes:
    pub folded: usize,
    pub shapes_folded: usize,
    pub identities_removed: usize,
    /// Nodes merged with an identical node on the same inputs (common subexpression elimination).
    pub duplicates_merged: usize,
    /// Reshape targets fused into constants.
    pub reshape_fusions: usize,
    /// Reshape/Squeeze/Unsqueeze chains with a static result merged into one Reshape.
    pub reshape_chains: usize,
    /// BatchNormalization / Add / Mul folded into a preceding Conv.
    pub conv_fusions: usize,
    /// Nodes removed because nothing used their outputs any more.
    pub dead_removed: usize,
}

impl PrepassReport {
    /// Nodes the prepass removed in total.
    pub fn removed(&self) -> usize {
        self.constants
            + self.folded
            + self.identities_removed
            + self.duplicates_merged
            + self.reshape_chains
            + self.conv_fusions
            + self.dead_removed
    }
}

/// Applies ORT's pre-partitioning optimisations to a copy of `model`.
pub fn run(model: &Model, input_shapes: &BTreeMap<String, Vec<i64>>) -> Result<(Model, PrepassReport)> {
    let mut m = model.clone();
    let mut report = PrepassReport::default();
    fix_inputs(m.graph_mut(), input_shapes, &mut report)?;
    constants_to_initializers(m.graph_mut(), &mut report);
    // Each pass can expose work for another (a fused Reshape target leaves a dead chain; a folded
    // chain leaves an Identity); a few rounds reach the fixed point on real graphs.
    for _ in 0..8 {
        let before = report.clone();
        fold_constants(&mut m, &mut report)?;
        eliminate_identities(m.graph_mut(), &mut report);
        eliminate_common_subexpressions(m.graph_mut(), &mut report)?;
        fuse_reshape_targets(&mut m, &mut report)?;
        fuse_reshape_chains(&mut m, &mut report)?;
        fuse_into_conv(m.graph_mut(), &mut report);
        remove_dead(m.graph_mut(), &mut report)?;
        if report == before {
            break;
        }
    }
    let idx = GraphIndex::new(m.graph())?;
    let order = idx.topological_order(m.graph())?;
    let g = m.graph_mut();
    let nodes = std::mem::take(&mut g.node);
    let mut slots: Vec<Option<_>> = nodes.into_iter().map(Some).collect();
    g.node = order.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok((m, report))
}

/// Names of initializers that are constant (not overridable graph inputs).
pub fn constant_names(g: &GraphProto) -> HashSet<String> {
    let inputs: HashSet<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
    g.initializer.iter().map(|t| t.name.clone()).filter(|n| !inputs.contains(n.as_str())).collect()
}

fn fix_inputs(g: &mut GraphProto, shapes: &BTreeMap<String, Vec<i64>>, report: &mut PrepassReport) -> Result<()> {
    for (name, dims) in shapes {
        let Some(v) = g.input.iter_mut().find(|v| &v.name == name) else {
            let names: Vec<&str> = g.input.iter().map(|v| v.name.as_str()).collect();
            bail!("--input-shape names '{name}', but the model's inputs are: {}", names.join(", "));
        };
        let (_, decl) = declared(v);
        if let Some(decl) = &decl {
            if decl.len() != dims.len() {
                bail!("input '{name}' has rank {}, but the given shape {dims:?} has rank {}", decl.len(), dims.len());
            }
            if decl.iter().zip(dims).any(|(d, g)| d.is_some_and(|d| d != *g)) {
                bail!("input '{name}' is declared {decl:?}; the given shape {dims:?} contradicts it");
            }
        }
        if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.shape = Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension { value: Some(DimValue::DimValue(d)), ..Default::default() })
                    .collect(),
            });
        }
        report.inputs_fixed.push(name.clone());
    }
    Ok(())
}

fn constants_to_initializers(g: &mut GraphProto, report: &mut PrepassReport) {
    let mut kept = Vec::with_capacity(g.node.len());
    for n in std::mem::take(&mut g.node) {
        let value = (n.op_type == "Constant" && n.output.len() == 1)
            .then(|| crate::onnx::consteval::eval(&n, &[], &[]))
            .flatten();
        match value {
            Some(mut v) => {
                g.initializer.push(v.remove(0).to_proto(&n.output[0]));
                report.constants += 1;
            }
            None => kept.push(n),
        }
    }
    g.node = kept;
}

/// A constant standing for a folded value: the computed tensor, or a payload-less placeholder with
/// the inferred dims and type (enough for every rule, which never reads large float payloads).
fn folded_tensor(name: &str, info: &ShapeInfo) -> Option<TensorProto> {
    let f = info.get(name)?;
    if let Some(v) = &f.value {
        return Some(v.to_proto(name));
    }
    let dims = f.static_shape()?;
    (f.dtype != 0).then(|| TensorProto { name: name.into(), dims, data_type: f.dtype, ..Default::default() })
}

fn fold_constants(m: &mut Model, report: &mut PrepassReport) -> Result<()> {
    let info = infer(m, &HashMap::new())?;
    let g = m.graph();
    let idx = GraphIndex::new(g)?;
    let mut constant = constant_names(g);
    let mut folded: Vec<usize> = Vec::new();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    for i in idx.topological_order(g)? {
        let n = &g.node[i];
        if NEVER_FOLD.contains(&n.op_type.as_str()) || !n.domain.is_empty() && n.domain != "ai.onnx" {
            continue;
        }
        if n.output.iter().any(|o| idx.is_graph_output(o)) || n.attribute.iter().any(|a| a.g.is_some()) {
            continue;
        }
        let inputs_const = n.input.iter().all(|x| x.is_empty() || constant.contains(x));
        let static_shape = n.op_type == "Shape"
            && n.input.first().and_then(|x| info.get(x)).is_some_and(|f| f.static_shape().is_some());
        if !(inputs_const && !n.input.is_empty() || static_shape) {
            continue;
        }
        let tensors: Option<Vec<TensorProto>> =
            n.output.iter().filter(|o| !o.is_empty()).map(|o| folded_tensor(o, &info)).collect();
        let Some(tensors) = tensors else { continue };
        for t in &tensors {
            constant.insert(t.name.clone());
        }
        new_inits.extend(tensors);
        folded.push(i);
        report.folded += 1;
        if n.op_type == "Shape" {
            report.shapes_folded += 1;
        }
    }
    if folded.is_empty() {
        return Ok(());
    }
    let drop: HashSet<usize> = folded.into_iter().collect();
    let g = m.graph_mut();
    g.node = std::mem::take(&mut g.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, n)| n)
        .collect();
    g.initializer.extend(new_inits);
    Ok(())
}

fn rename_uses(g: &mut GraphProto, from: &str, to: &str) {
    for n in &mut g.node {
        for i in n.input.iter_mut().filter(|i| *i == from) {
            *i = to.to_string();
        }
    }
}

fn eliminate_identities(g: &mut GraphProto, report: &mut PrepassReport) {
    loop {
        let outputs: HashSet<String> = g.output.iter().map(|v| v.name.clone()).collect();
        let producers: HashMap<String, usize> =
            g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
        let uses = |name: &str| g.node.iter().flat_map(|n| n.input.iter()).filter(|x| *x == name).count();
        let mut done = None;
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type != "Identity" || n.input.len() != 1 || n.output.len() != 1 {
                continue;
            }
            let (src, dst) = (n.input[0].clone(), n.output[0].clone());
            if !outputs.contains(&dst) {
                done = Some((i, src, dst, false));
                break;
            }
            // Feeding a graph output: the producer can write the output directly when nothing else
            // reads its value and the value is not itself a graph input or output.
            if let Some(&p) = producers.get(&src) {
                if uses(&src) == 1 && !outputs.contains(&src) && p != i {
                    done = Some((i, src, dst, true));
                    break;
                }
            }
        }
        let Some((i, src, dst, rename_producer)) = done else { return };
        g.node.remove(i);
        if rename_producer {
            for n in &mut g.node {
                for o in n.output.iter_mut().filter(|o| **o == src) {
                    *o = dst.clone();
                }
            }
        } else {
            rename_uses(g, &dst, &src);
        }
        report.identities_removed += 1;
    }
}

/// Merges nodes that compute the same thing: same op, same attributes, same inputs, where a
/// single-element constant counts by value (ORT shares such constants first). Typical case: an
/// exporter's `Shape(x)` repeated once per dimension it reads.
fn eliminate_common_subexpressions(g: &mut GraphProto, report: &mut PrepassReport) -> Result<()> {
    use prost::Message;
    let idx = GraphIndex::new(g)?;
    let order = idx.topological_order(g)?;
    let consts = constant_names(g);
    let small: HashMap<&str, Vec<u8>> = g
        .initializer
        .iter()
        .filter(|t| consts.contains(&t.name) && crate::onnx::tensor::proto_numel(t) <= 1 && t.dims.len() <= 1)
        .filter_map(|t| {
            let v = Tensor::from_proto(t).ok()?;
            let value = match v.as_i64s() {
                Some(i) => format!("{i:?}"),
                None => format!("{:?}", v.to_f32s()),
            };
            Some((t.name.as_str(), format!("{}:{:?}:{value}", t.data_type, t.dims).into_bytes()))
        })
        .collect();
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut drop: HashSet<usize> = HashSet::new();
    for &i in &order {
        let n = &g.node[i];
        if NEVER_FOLD.contains(&n.op_type.as_str()) || n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            continue;
        }
        if n.output.iter().any(|o| idx.is_graph_output(o)) {
            continue;
        }
        let mut key = format!("{}|{}|{}", n.domain, n.op_type, n.output.len()).into_bytes();
        for x in &n.input {
            let x = rename.get(x).unwrap_or(x);
            key.push(0);
            match small.get(x.as_str()) {
                Some(v) => key.extend_from_slice(v),
                None => key.extend_from_slice(x.as_bytes()),
            }
        }
        let mut attrs = n.attribute.clone();
        attrs.sort_by(|a, b| a.name.cmp(&b.name));
        for a in &attrs {
            key.push(1);
            key.extend_from_slice(&a.encode_to_vec());
        }
        match seen.get(&key) {
            Some(&first) => {
                for (o, keep) in n.output.iter().zip(&g.node[first].output) {
                    rename.insert(o.clone(), keep.clone());
                }
                drop.insert(i);
            }
            None => {
                seen.insert(key, i);
            }
        }
    }
    if drop.is_empty() {
        return Ok(());
    }
    report.duplicates_merged += drop.len();
    g.node = std::mem::take(&mut g.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, n)| n)
        .collect();
    for n in &mut g.node {
        for x in n.input.iter_mut() {
            if let Some(r) = rename.get(x) {
                *x = r.clone();
            }
        }
    }
    Ok(())
}

/// For a Reshape target built as `Concat(axis 0)` of constants and `Unsqueeze(Gather(Shape(x), k))`
/// where `x` is the Reshape's own input and `k` the position in the target, the target is the
/// constant with `0` ("keep this dim") at those positions.
fn fuse_reshape_targets(m: &mut Model, report: &mut PrepassReport) -> Result<()> {
    // Shape inference is the costly part: skip it when no Reshape takes a computed Concat target.
    let concats: HashSet<&str> = m
        .graph()
        .node
        .iter()
        .filter(|n| n.op_type == "Concat")
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    if !m
        .graph()
        .node
        .iter()
        .any(|n| n.op_type == "Reshape" && n.input.get(1).is_some_and(|t| concats.contains(t.as_str())))
    {
        return Ok(());
    }
    let info = infer(m, &HashMap::new())?;
    let g = m.graph();
    let idx = GraphIndex::new(g)?;
    let consts = constant_names(g);
    let node_of = |v: &str| idx.producer.get(v).map(|&i| &g.node[i]);
    let const_ints = |v: &str| -> Option<Vec<i64>> {
        if !consts.contains(v) {
            return None;
        }
        info.get(v)?.value.as_ref()?.as_i64s()
    };
    let mut fusions: Vec<(usize, Vec<i64>)> = Vec::new();
    for (ri, r) in g.node.iter().enumerate() {
        if r.op_type != "Reshape" || r.input.len() < 2 || consts.contains(&r.input[1]) {
            continue;
        }
        let Some(concat) = node_of(&r.input[1]) else { continue };
        if concat.op_type != "Concat" || concat.attr_i("axis", 0) != 0 {
            continue;
        }
        let mut target: Vec<i64> = Vec::new();
        let mut ok = true;
        for part in &concat.input {
            if let Some(v) = const_ints(part) {
                target.extend(v);
                continue;
            }
            // Unsqueeze(axes=[0]) of Gather(Shape(reshape input), scalar k), with k == position.
            let pos = target.len() as i64;
            let matched = (|| {
                let u = node_of(part)?;
                if u.op_type != "Unsqueeze" {
                    return None;
                }
                let axes =
                    u.attr_ints("axes").map(<[i64]>::to_vec).or_else(|| u.input.get(1).and_then(|a| const_ints(a)))?;
                if axes != [0] {
                    return None;
                }
                let gather = node_of(u.input.first()?)?;
                if gather.op_type != "Gather" || gather.attr_i("axis", 0) != 0 {
                    return None;
                }
                let index = gather.input.get(1)?;
                let k = const_ints(index)?;
                let scalar = info.get(index)?.value.as_ref()?.dims.is_empty();
                let shape = node_of(gather.input.first()?)?;
                if shape.op_type != "Shape" || shape.attr("start").is_some() || shape.input.first()? != &r.input[0] {
                    return None;
                }
                (scalar && k == [pos]).then_some(())
            })();
            if matched.is_some() {
                target.push(0);
            } else {
                ok = false;
                break;
            }
        }
        if ok && target.iter().filter(|&&d| d == -1).count() <= 1 {
            fusions.push((ri, target));
        }
    }
    if fusions.is_empty() {
        return Ok(());
    }
    let g = m.graph_mut();
    for (ri, target) in fusions {
        let name = format!("{}_fused_shape", g.node[ri].output[0]);
        g.initializer.push(Tensor::i64_vec(&target).to_proto(&name));
        g.node[ri].input[1] = name;
        report.reshape_fusions += 1;
    }
    Ok(())
}

/// A chain of Reshape/Squeeze/Unsqueeze whose final shape is static becomes one Reshape to that
/// shape (ORT's reshape fusion merges contiguous reshapes). Intermediate values must feed only the
/// next node of the chain.
fn fuse_reshape_chains(m: &mut Model, report: &mut PrepassReport) -> Result<()> {
    const RESHAPES: &[&str] = &["Reshape", "Squeeze", "Unsqueeze"];
    let g = m.graph();
    let chainable = |i: usize| RESHAPES.contains(&g.node[i].op_type.as_str());
    let idx = GraphIndex::new(g)?;
    // Cheap test before shape inference: some reshape-like node fed by another.
    let any = (0..g.node.len()).any(|i| {
        chainable(i) && g.node[i].input.first().and_then(|x| idx.producer.get(x)).is_some_and(|&p| chainable(p))
    });
    if !any {
        return Ok(());
    }
    let info = infer(m, &HashMap::new())?;
    let mut chains: Vec<(Vec<usize>, Vec<i64>)> = Vec::new();
    let mut used: HashSet<usize> = HashSet::new();
    for i in idx.topological_order(g)? {
        if !chainable(i) || used.contains(&i) {
            continue;
        }
        // Start only where the input does not come from a chainable single-use producer.
        let n = &g.node[i];
        let from_chain = n
            .input
            .first()
            .and_then(|x| idx.producer.get(x).map(|&p| (x, p)))
            .is_some_and(|(x, p)| chainable(p) && idx.consumers_of(x).len() == 1 && !idx.is_graph_output(x));
        if from_chain {
            continue;
        }
        let mut chain = vec![i];
        loop {
            let last = &g.node[*chain.last().expect("non-empty")];
            let Some(out) = last.output.first() else { break };
            let next = idx.consumers_of(out);
            if next.len() != 1
                || idx.is_graph_output(out)
                || !chainable(next[0])
                || g.node[next[0]].input.first() != Some(out)
            {
                break;
            }
            chain.push(next[0]);
        }
        if chain.len() < 2 {
            continue;
        }
        let last = &g.node[*chain.last().expect("non-empty")];
        if let Some(shape) = last.output.first().and_then(|o| info.shape(o)) {
            used.extend(chain.iter().copied());
            chains.push((chain, shape));
        }
    }
    if chains.is_empty() {
        return Ok(());
    }
    let g = m.graph_mut();
    let mut drop: HashSet<usize> = HashSet::new();
    for (chain, shape) in chains {
        let first = chain[0];
        let last = *chain.last().expect("non-empty");
        let name = format!("{}_fused_shape", g.node[last].output[0]);
        g.initializer.push(Tensor::i64_vec(&shape).to_proto(&name));
        let data = g.node[first].input[0].clone();
        let out = g.node[last].output[0].clone();
        let node = &mut g.node[first];
        node.op_type = "Reshape".into();
        node.input = vec![data, name];
        node.output = vec![out];
        node.attribute.clear();
        drop.extend(chain[1..].iter().copied());
        report.reshape_chains += chain.len() - 1;
    }
    g.node = std::mem::take(&mut g.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, n)| n)
        .collect();
    Ok(())
}

/// Folds a BatchNormalization, or an Add/Mul by a per-channel constant, into the Conv before it.
fn fuse_into_conv(g: &mut GraphProto, report: &mut PrepassReport) {
    loop {
        let consts = constant_names(g);
        let outputs: HashSet<&str> = g.output.iter().map(|v| v.name.as_str()).collect();
        let shape_of: HashMap<&str, &Vec<i64>> = g.initializer.iter().map(|t| (t.name.as_str(), &t.dims)).collect();
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for n in &g.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                *uses.entry(i.as_str()).or_default() += 1;
            }
        }
        let producers: HashMap<&str, usize> =
            g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
        let mut hit = None;
        for (j, n) in g.node.iter().enumerate() {
            let Some(src) = n.input.first() else { continue };
            let Some(&ci) = producers.get(src.as_str()) else { continue };
            let conv = &g.node[ci];
            if conv.op_type != "Conv"
                || uses.get(src.as_str()) != Some(&1)
                || outputs.contains(src.as_str())
                || !conv.input.get(1).is_some_and(|w| consts.contains(w))
                || conv.input.get(2).is_some_and(|b| !b.is_empty() && !consts.contains(b))
            {
                continue;
            }
            let channels = conv.input.get(1).and_then(|w| shape_of.get(w.as_str())).and_then(|d| d.first().copied());
            // ORT's ConvAddFusion / ConvMulFusion take a per-channel constant ([C,1,1] or [1,C,1,1]);
            // checked against ORT 1.22: a [1]-shaped Mul operand is not fused.
            let operand_fits = |name: &str| -> bool {
                match (consts.contains(name), shape_of.get(name), channels) {
                    (true, Some(d), Some(c)) => d.as_slice() == [c, 1, 1] || d.as_slice() == [1, c, 1, 1],
                    _ => false,
                }
            };
            let fusable = match n.op_type.as_str() {
                "BatchNormalization" => {
                    n.output.iter().filter(|o| !o.is_empty()).count() == 1
                        && n.input[1..].iter().all(|x| consts.contains(x))
                }
                "Add" | "Mul" => n.input.len() == 2 && operand_fits(&n.input[1]),
                _ => false,
            };
            if fusable {
                hit = Some((ci, j));
                break;
            }
        }
        let Some((ci, j)) = hit else { return };
        let out = g.node[j].output[0].clone();
        g.node[ci].output[0] = out;
        g.node.remove(j);
        report.conv_fusions += 1;
    }
}

fn remove_dead(g: &mut GraphProto, report: &mut PrepassReport) -> Result<()> {
    let idx = GraphIndex::new(g)?;
    let dead = idx.dead_nodes(g);
    if dead.is_empty() {
        return Ok(());
    }
    report.dead_removed += dead.len();
    let dead: HashSet<usize> = dead.into_iter().collect();
    g.node = std::mem::take(&mut g.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dead.contains(i))
        .map(|(_, n)| n)
        .collect();
    Ok(())
}
