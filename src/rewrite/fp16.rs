//! `fp16`: float32 weights and compute → float16, with float32 graph inputs and outputs.
//!
//! Every float32 initializer and `Constant` a converted node reads is stored as float16 (values
//! beyond ±65504 are clamped to it, non-zero values below float16's smallest subnormal to it, so
//! an `eps` never becomes 0); every node runs in float16 except the op types of the block list,
//! which keep float32 with `Cast`s around them. Graph inputs and outputs keep float32 with one
//! `Cast` each at the boundary, so callers see the same signature. A weight read by both kinds of
//! node exists in both types (no run-time Cast of weights). `Cast`s left back to back between float
//! types are merged; `value_info` types follow. Initializers no node reads (the swapper's `emap`,
//! which insightface reads as float32) are left untouched, in place.
//!
//! Options (`[passes.options]` of the recipe): `block = ["Op", …]` replaces the default block list
//! [`DEFAULT_BLOCK`].
//!
//! Not exact: float16 keeps 11 significant bits. `verify` checks the recipe's tolerance (PSNR
//! ≥ 40 dB on images by default).

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use half::f16;

use super::edit::{self, Names};
use super::{Pass, PassContext, PassReport};
use crate::onnx::graph::attr;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{type_proto, GraphProto, NodeProto, TensorProto};
use crate::onnx::shape::{self, declared};
use crate::onnx::{node_label, GraphIndex, Model, NodeExt, Tensor, TensorData};

/// Op types kept in float32 unless the recipe says otherwise: none.
///
/// Chosen from measurement (`cargo test --release --test rewrite_passes fp16_block_list_measurement
/// -- --ignored --nocapture`; ORT 1.32 CPU, the five tiny replicas, 2 seeded inputs each; table in
/// `docs/passes.md`). Everything in float16 gives PSNR ≥ 63.5 dB on every replica (swapper 68.4,
/// enhancer 83.3); no op type's output comes near float16's 65504 (largest: 24.5, a swapper Conv);
/// the largest per-plane Σx² a normalisation accumulates is 2045 (swapper InstanceNormalization,
/// 32× headroom); keeping a single op type in float32 gains at most 17 dB (Conv) and, Conv aside,
/// 5.2 dB (recognizer BatchNormalization). Full-scale swapper and enhancer: 67.0 and 76.4 dB. So
/// nothing needs blocking by default; a recipe lists op types where `verify` finds a need.
pub const DEFAULT_BLOCK: &[&str] = &[];

/// The `fp16` pass.
#[derive(Debug, Clone, Default)]
pub struct Fp16;

const F32: i32 = DataType::Float as i32;
const F16: i32 = DataType::Float16 as i32;

/// Ops whose inputs may be of any type: reading a float16 value needs no Cast.
fn type_agnostic_input(op: &str, pos: usize) -> bool {
    matches!((op, pos), ("Shape", 0) | ("Size", 0) | ("Cast", 0))
}

/// Inputs that the ONNX type constraints fix to float32 whatever the data type (Resize's `roi` and
/// `scales`, Upsample's `scales`).
fn fixed_f32_input(op: &str, pos: usize, opset: i64) -> bool {
    match op {
        "Resize" if opset >= 11 => pos == 1 || pos == 2,
        "Resize" | "Upsample" => pos == 1,
        _ => false,
    }
}

/// Outputs fixed to float32 (LayerNormalization's mean and inverse std-dev).
fn fixed_f32_output(op: &str, pos: usize) -> bool {
    op == "LayerNormalization" && pos > 0
}

/// Ops that have no float16 form in ONNX or whose float16 use makes no sense.
fn never_f16(op: &str) -> bool {
    op.contains("Quantize") || matches!(op, "NonMaxSuppression" | "RoiAlign" | "Loop" | "If" | "Scan")
}

/// float32 → float16, clamping to the finite range and keeping tiny non-zero values non-zero.
pub fn to_f16(x: f32) -> f16 {
    let min_sub = f16::from_bits(1); // 2^-24
    if x.is_nan() {
        return f16::NAN;
    }
    let h = f16::from_f32(x.clamp(-65504.0, 65504.0));
    if h.to_f32() == 0.0 && x != 0.0 {
        if x > 0.0 {
            min_sub
        } else {
            -min_sub
        }
    } else {
        h
    }
}

/// A float32 tensor proto converted to float16 (same name and dims).
fn proto_to_f16(t: &TensorProto, name: &str) -> Result<TensorProto> {
    use half::slice::HalfFloatSliceExt;
    if t.data_type != F32 {
        bail!("tensor '{}' is not float32", t.name);
    }
    // Weights are most of a model's bytes: convert from raw_data in blocks with half's vectorised
    // slice conversion, then apply `to_f16`'s clamping to the few values that need it.
    let owned: Vec<u8>;
    let src: &[u8] = if t.raw_data.is_empty() {
        // Typed `float_data` (rare for weights): a copy is fine.
        let v = Tensor::from_proto(t)?;
        let TensorData::F32(d) = &v.data else { bail!("tensor '{}' is not float32", t.name) };
        owned = d.iter().flat_map(|x| x.to_le_bytes()).collect();
        &owned
    } else {
        &t.raw_data
    };
    if !src.len().is_multiple_of(4) {
        bail!("tensor '{}': raw_data is not a whole number of float32 values", t.name);
    }
    let mut out = Vec::with_capacity(src.len() / 2);
    let (mut xs, mut hs) = (vec![0f32; 4096], vec![f16::ZERO; 4096]);
    for block in src.chunks(4 * 4096) {
        let n = block.len() / 4;
        for (x, c) in xs.iter_mut().zip(block.chunks_exact(4)) {
            *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        hs[..n].convert_from_f32_slice(&xs[..n]);
        for (h, &x) in hs[..n].iter_mut().zip(&xs[..n]) {
            if h.is_infinite() || (h.to_bits() & 0x7fff == 0 && x != 0.0) {
                *h = to_f16(x);
            }
            out.extend_from_slice(&h.to_le_bytes());
        }
    }
    Ok(TensorProto {
        name: name.to_string(),
        dims: t.dims.clone(),
        data_type: F16,
        raw_data: out.into(),
        doc_string: t.doc_string.clone(),
        ..Default::default()
    })
}

fn block_list(ctx: &PassContext) -> Result<HashSet<String>> {
    match ctx.options.get("block") {
        None => Ok(DEFAULT_BLOCK.iter().map(|s| s.to_string()).collect()),
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).context("fp16 option `block` must list op types as strings"))
            .collect(),
        Some(other) => bail!("fp16 option `block` must be an array of op types, got {other}"),
    }
}

/// What a reader needs of a float32 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Need {
    Any,
    F16,
    F32,
}

impl Pass for Fp16 {
    fn name(&self) -> &'static str {
        "fp16"
    }
    fn exact(&self) -> bool {
        false
    }
    fn run(&self, model: &mut Model, ctx: &PassContext) -> Result<PassReport> {
        let mut report = edit::report(self.name(), model);
        let block = block_list(ctx)?;
        if edit::has_subgraphs(model.graph()) {
            bail!("fp16: models with control flow (If/Loop/Scan) are not supported");
        }
        let opset = edit::opset(model);
        let overrides: HashMap<String, Vec<i64>> = ctx.input_shapes.clone().into_iter().collect();
        let info = shape::infer(model, &overrides).context("fp16 needs the element type of every value")?;
        let g = model.graph();
        let idx = GraphIndex::new(g)?;

        // Element type of every value as the model stands.
        let mut dtype: HashMap<String, i32> = info.values.iter().map(|(k, v)| (k.clone(), v.dtype)).collect();
        for v in g.input.iter().chain(g.output.iter()).chain(g.value_info.iter()) {
            let (t, _) = declared(v);
            if t != 0 && dtype.get(&v.name).copied().unwrap_or(0) == 0 {
                dtype.insert(v.name.clone(), t);
            }
        }
        for n in g.node.iter().filter(|n| n.op_type == "Constant") {
            if let Some(t) = n.attr("value").and_then(|a| a.t.as_ref()) {
                dtype.insert(n.output[0].clone(), t.data_type);
            } else if n.attr("value_float").is_some() || n.attr("value_floats").is_some() {
                dtype.insert(n.output[0].clone(), F32);
            }
        }
        let dt = |v: &str| dtype.get(v).copied().unwrap_or(0);

        // Which nodes run in float16.
        let order = idx.topological_order(g)?;
        let mut converted = vec![false; g.node.len()];
        let mut blocked_ops: HashMap<String, usize> = HashMap::new();
        for &i in &order {
            let n = &g.node[i];
            // Float32 data in a position the node's type parameter governs (not Resize's scales,
            // Shape's input, LayerNormalization's statistics…).
            let f32_in = n.input.iter().enumerate().any(|(p, v)| {
                !v.is_empty()
                    && dt(v) == F32
                    && !type_agnostic_input(&n.op_type, p)
                    && !fixed_f32_input(&n.op_type, p, opset)
            });
            let f32_out = n
                .output
                .iter()
                .enumerate()
                .any(|(p, v)| !v.is_empty() && dt(v) == F32 && !fixed_f32_output(&n.op_type, p));
            let touches_f32 = f32_in || f32_out || creates_float(n, &dt);
            if !touches_f32 || n.op_type == "Constant" || (n.op_type == "Cast" && !creates_float(n, &dt)) {
                continue;
            }
            let unknown = n.input.iter().chain(n.output.iter()).any(|v| !v.is_empty() && dt(v) == 0);
            if !edit::is_default_domain(n) || block.contains(&n.op_type) || never_f16(&n.op_type) || unknown {
                *blocked_ops.entry(n.op_type.clone()).or_default() += 1;
                continue;
            }
            converted[i] = true;
        }

        let mut names = Names::of(g);
        let is_output: HashSet<String> = g.output.iter().map(|v| v.name.clone()).collect();
        let initializers: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
        let constant_node: HashMap<String, usize> = g
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.op_type == "Constant" && n.output.len() == 1)
            .map(|(i, n)| (n.output[0].clone(), i))
            .collect();

        // What each reader needs of each float32 value.
        let mut needs: HashMap<String, HashSet<Need>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for (p, v) in n.input.iter().enumerate() {
                if v.is_empty() || dt(v) != F32 {
                    continue;
                }
                let need = if type_agnostic_input(&n.op_type, p) {
                    Need::Any
                } else if fixed_f32_input(&n.op_type, p, opset) || !converted[i] {
                    Need::F32
                } else {
                    Need::F16
                };
                needs.entry(v.clone()).or_default().insert(need);
            }
        }
        for o in &is_output {
            if dt(o) == F32 {
                needs.entry(o.clone()).or_default().insert(Need::F32);
            }
        }

        // Where each float32 value is available as float16 / float32 after the rewrite.
        let mut plan = Plan::default();
        let mut new_inits: Vec<TensorProto> = Vec::new();
        let mut in_place_inits: HashMap<String, TensorProto> = HashMap::new();
        let mut new_nodes: Vec<NodeProto> = Vec::new();
        let mut const_rewrites: HashMap<usize, NodeProto> = HashMap::new();
        let mut converted_consts = 0usize;
        // Sorted: names made fresh below and the order of added nodes must not depend on hashing,
        // or one model gives different bytes (and cache hashes) from run to run.
        let mut by_name: Vec<(&String, &HashSet<Need>)> = needs.iter().collect();
        by_name.sort_by(|a, b| a.0.cmp(b.0));
        for (v, ns) in by_name {
            let want16 = ns.contains(&Need::F16);
            let want32 = ns.contains(&Need::F32) || is_output.contains(v);
            if initializers.contains(v) || constant_node.contains_key(v) {
                // Constants: materialise each type needed, no run-time Cast.
                if !want16 {
                    plan.f32.insert(v.clone(), v.clone());
                    continue;
                }
                converted_consts += 1;
                let name16 = if want32 { names.fresh(&format!("{v}_fp16")) } else { v.clone() };
                if let Some(t) = idx.initializer(g, v) {
                    let p = proto_to_f16(t, &name16)?;
                    if want32 {
                        new_inits.push(p);
                    } else {
                        in_place_inits.insert(v.clone(), p);
                    }
                } else {
                    let ci = constant_node[v];
                    let c = &g.node[ci];
                    let value = edit::const_value(g, &idx, v)
                        .with_context(|| format!("Constant '{}' cannot be read", node_label(c)))?;
                    let TensorData::F32(data) = &value.data else { continue };
                    let h = Tensor {
                        dims: value.dims.clone(),
                        data: TensorData::F16(data.iter().map(|&x| to_f16(x)).collect()),
                    };
                    let mut c16 =
                        edit::node(&names.fresh(&format!("{}_fp16", c.name)), "Constant", &[], &[&name16], vec![]);
                    c16.attribute = vec![attr::tensor("value", h.to_proto(""))];
                    if want32 {
                        new_nodes.push(c16);
                    } else {
                        c16.name = c.name.clone();
                        const_rewrites.insert(ci, c16);
                    }
                }
                plan.f16.insert(v.clone(), name16);
                if want32 {
                    plan.f32.insert(v.clone(), v.clone());
                }
                continue;
            }
            let produced16 = idx.producer.get(v).is_some_and(|&p| {
                let n = &g.node[p];
                converted[p] && !fixed_f32_output(&n.op_type, n.output.iter().position(|o| o == v).unwrap_or(0))
            });
            if produced16 {
                let name16 = if is_output.contains(v) { names.fresh(&format!("{v}_fp16")) } else { v.clone() };
                plan.f16.insert(v.clone(), name16.clone());
                plan.renamed_outputs.insert(v.clone(), name16.clone());
                if want32 {
                    // Graph outputs keep their name on the float32 side.
                    let name32 = if is_output.contains(v) { v.clone() } else { names.fresh(&format!("{v}_fp32")) };
                    new_nodes.push(cast(&mut names, &name16, &name32, F32));
                    plan.f32.insert(v.clone(), name32);
                }
            } else {
                plan.f32.insert(v.clone(), v.clone());
                if want16 {
                    let name16 = names.fresh(&format!("{v}_fp16"));
                    new_nodes.push(cast(&mut names, v, &name16, F16));
                    plan.f16.insert(v.clone(), name16);
                }
            }
        }

        // Rewrite the nodes.
        let mut nodes = Vec::with_capacity(g.node.len() + new_nodes.len());
        let mut n_converted = 0usize;
        for (i, n) in g.node.iter().enumerate() {
            if let Some(c) = const_rewrites.remove(&i) {
                nodes.push(c);
                continue;
            }
            let mut m = n.clone();
            for (p, v) in m.input.iter_mut().enumerate() {
                if v.is_empty() || dt(v) != F32 {
                    continue;
                }
                let found = if type_agnostic_input(&n.op_type, p) {
                    // Either side will do; prefer the unchanged one.
                    plan.f32.get(v.as_str()).or_else(|| plan.f16.get(v.as_str()))
                } else if fixed_f32_input(&n.op_type, p, opset) || !converted[i] {
                    plan.f32.get(v.as_str())
                } else {
                    plan.f16.get(v.as_str())
                };
                *v = found.cloned().with_context(|| format!("fp16: no plan for value '{v}'"))?;
            }
            if converted[i] {
                n_converted += 1;
                for o in m.output.iter_mut() {
                    if let Some(r) = plan.renamed_outputs.get(o.as_str()) {
                        *o = r.clone();
                    }
                }
                retype_float_attrs(&mut m);
            }
            nodes.push(m);
        }
        nodes.extend(new_nodes);

        // New float16 value names and types, for value_info and the Cast clean-up.
        let mut types: HashMap<String, i32> = dtype.clone();
        for (i, n) in g.node.iter().enumerate() {
            if !converted[i] {
                continue;
            }
            for (p, o) in n.output.iter().enumerate() {
                if (dt(o) == F32 || creates_float(n, &dt)) && !fixed_f32_output(&n.op_type, p) {
                    let name = plan.renamed_outputs.get(o).cloned().unwrap_or_else(|| o.clone());
                    types.insert(name, F16);
                }
            }
        }
        for (v, n16) in &plan.f16 {
            types.insert(n16.clone(), F16);
            if let Some(n32) = plan.f32.get(v) {
                types.insert(n32.clone(), F32);
            }
        }

        let g = model.graph_mut();
        g.node = nodes;
        for t in g.initializer.iter_mut() {
            if let Some(p) = in_place_inits.remove(&t.name) {
                *t = p;
            }
        }
        edit::add_initializers(g, new_inits);
        let merged = merge_casts(g, &types, &is_output);
        for v in g.value_info.iter_mut() {
            if let Some(&t) = types.get(&v.name) {
                if let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                    if tt.elem_type == F32 || tt.elem_type == F16 {
                        tt.elem_type = t;
                    }
                }
            }
        }
        edit::topo_sort(g)?;
        edit::prune_value_info(g);

        let casts = g.node.iter().filter(|n| n.op_type == "Cast").count();
        report.rewritten = n_converted + converted_consts;
        report
            .details
            .push(format!("{n_converted} nodes run in float16, {converted_consts} constants stored as float16"));
        let mut blocked: Vec<_> = blocked_ops.into_iter().collect();
        blocked.sort();
        for (op, k) in blocked {
            report.details.push(format!("{op}×{k} kept in float32"));
        }
        report.details.push(format!("{casts} Cast nodes in the result ({merged} back-to-back Casts merged)"));
        if n_converted == 0 && converted_consts == 0 {
            report.details.clear();
        }
        edit::finish(report, model)
    }
}

/// Names of each float32 value on either side after the rewrite.
#[derive(Debug, Default)]
struct Plan {
    /// Original value → name of its float16 version.
    f16: HashMap<String, String>,
    /// Original value → name of its float32 version.
    f32: HashMap<String, String>,
    /// Outputs of converted nodes that are renamed (graph outputs keep their name for the float32
    /// Cast).
    renamed_outputs: HashMap<String, String>,
}

/// True when the node makes floats from non-float inputs through a type attribute.
fn creates_float(n: &NodeProto, dtype_of: &dyn Fn(&str) -> i32) -> bool {
    match n.op_type.as_str() {
        // Only int → float Casts: a float → float32 Cast is a boundary the pass itself may have
        // written, and stays as it is (so that a second run changes nothing).
        "Cast" => n.attr_i("to", 0) == F32 as i64 && !n.input.first().is_some_and(|v| is_float(dtype_of(v))),
        "ConstantOfShape" => n.attr("value").and_then(|a| a.t.as_ref()).map(|t| t.data_type == F32).unwrap_or(true),
        "EyeLike" | "RandomNormal" | "RandomUniform" | "RandomNormalLike" | "RandomUniformLike" => {
            n.attr("dtype").map(|a| a.i == F32 as i64).unwrap_or(true)
        }
        _ => false,
    }
}

/// Switches a converted node's float32 type attributes to float16.
fn retype_float_attrs(n: &mut NodeProto) {
    match n.op_type.as_str() {
        "Cast" => {
            for a in n.attribute.iter_mut().filter(|a| a.name == "to" && a.i == F32 as i64) {
                a.i = F16 as i64;
            }
        }
        "ConstantOfShape" => {
            let pos = n.attribute.iter().position(|a| a.name == "value");
            let value = pos.and_then(|p| n.attribute[p].t.clone());
            let h = match value {
                Some(t) if t.data_type == F32 => proto_to_f16(&t, &t.name).ok(),
                Some(_) => None,
                None => Some(Tensor { dims: vec![1], data: TensorData::F16(vec![f16::ZERO]) }.to_proto("")),
            };
            if let Some(h) = h {
                if let Some(p) = pos {
                    n.attribute.remove(p);
                }
                n.attribute.push(attr::tensor("value", h));
            }
        }
        "EyeLike" | "RandomNormal" | "RandomUniform" | "RandomNormalLike" | "RandomUniformLike" => {
            match n.attribute.iter_mut().find(|a| a.name == "dtype") {
                Some(a) if a.i == F32 as i64 => a.i = F16 as i64,
                Some(_) => {}
                None => n.attribute.push(attr::int("dtype", F16 as i64)),
            }
        }
        _ => {}
    }
}

fn cast(names: &mut Names, from: &str, to: &str, dtype: i32) -> NodeProto {
    edit::node(&names.fresh(&format!("{to}_cast")), "Cast", &[from], &[to], vec![attr::int("to", dtype as i64)])
}

fn is_float(t: i32) -> bool {
    [DataType::Float, DataType::Float16, DataType::Double, DataType::Bfloat16].iter().any(|&d| d as i32 == t)
}

/// Merges `Cast → Cast` between float types (the second reads the first's input directly) and
/// removes Casts to the type their input already has. Returns how many Casts were removed.
fn merge_casts(g: &mut GraphProto, types: &HashMap<String, i32>, outputs: &HashSet<String>) -> usize {
    let ty = |v: &str| types.get(v).copied().unwrap_or(0);
    let mut removed = 0;
    loop {
        let producer: HashMap<String, usize> =
            g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
        let mut changed = false;
        // Cast(Cast(x)) → Cast(x), among float types.
        for i in 0..g.node.len() {
            if g.node[i].op_type != "Cast" {
                continue;
            }
            let Some(&p) = producer.get(&g.node[i].input[0]) else { continue };
            let first = &g.node[p];
            if first.op_type != "Cast" {
                continue;
            }
            let x = first.input[0].clone();
            let mid = first.attr_i("to", 0) as i32;
            let end = g.node[i].attr_i("to", 0) as i32;
            if is_float(ty(&x)) && is_float(mid) && is_float(end) {
                g.node[i].input[0] = x;
                changed = true;
            }
        }
        // Cast to the input's own type → readers read the input.
        let mut rename: HashMap<String, String> = HashMap::new();
        g.node.retain(|n| {
            let identity = n.op_type == "Cast"
                && ty(&n.input[0]) != 0
                && ty(&n.input[0]) as i64 == n.attr_i("to", 0)
                && !outputs.contains(&n.output[0]);
            if identity {
                rename.insert(n.output[0].clone(), n.input[0].clone());
                removed += 1;
            }
            !identity
        });
        if !rename.is_empty() {
            changed = true;
            for n in g.node.iter_mut() {
                for v in n.input.iter_mut() {
                    while let Some(r) = rename.get(v.as_str()) {
                        *v = r.clone();
                    }
                }
            }
        }
        // Casts nothing reads any more.
        let read: HashSet<String> = g.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
        let before = g.node.len();
        g.node.retain(|n| n.op_type != "Cast" || read.contains(&n.output[0]) || outputs.contains(&n.output[0]));
        if g.node.len() != before {
            removed += before - g.node.len();
            changed = true;
        }
        if !changed {
            return removed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_clamps_and_keeps_tiny_values_non_zero() {
        let xs = vec![0.0f32, -0.0, 1.0, 1e-8, -1e-8, 1e6, -1e6, 0.333_333, 65504.0, 70000.0];
        let mut t = Tensor::f32(&[xs.len()], xs.clone()).to_proto("w");
        t.doc_string = "doc".into();
        let h = proto_to_f16(&t, "w16").unwrap();
        assert_eq!((h.name.as_str(), h.doc_string.as_str(), h.dims.clone()), ("w16", "doc", vec![xs.len() as i64]));
        let TensorData::F16(v) = Tensor::from_proto(&h).unwrap().data else { panic!("not f16") };
        let expect: Vec<f16> = xs.iter().map(|&x| to_f16(x)).collect();
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expect.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(v[3], f16::from_bits(1));
        assert_eq!(v[4], -f16::from_bits(1));
        assert_eq!(v[5], f16::MAX);
        assert_eq!(v[6], f16::MIN);
        assert_eq!(v[1].to_bits(), 0x8000, "-0 stays -0");
        // Typed float_data converts the same way, and large tensors cross block boundaries.
        let big: Vec<f32> = (0..10_000).map(|i| i as f32 * 0.01 - 50.0).collect();
        let typed = TensorProto {
            name: "b".into(),
            dims: vec![10_000],
            data_type: F32,
            float_data: big.clone(),
            ..Default::default()
        };
        let TensorData::F16(v) = Tensor::from_proto(&proto_to_f16(&typed, "b").unwrap()).unwrap().data else {
            panic!()
        };
        assert!(v.iter().zip(&big).all(|(h, &x)| h.to_bits() == to_f16(x).to_bits()));
    }
}
