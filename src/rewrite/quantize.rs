//! `quantize`: static QDQ int8 quantization of Conv, Gemm and MatMul.
//!
//! Each quantized node reads its activation through a `QuantizeLinear` → `DequantizeLinear` pair
//! (per tensor, 8-bit, scale and zero point from the calibrated range), its weight as an int8
//! initializer through a `DequantizeLinear` (per output channel, symmetric: zero point 0, scale =
//! max |w| / 127), its bias as int32 (scale = activation scale × weight scale, as QLinearConv
//! wants), and its output through another Q → DQ pair. ORT's QDQ transformer fuses
//! `DQ → Conv → Q` into `QLinearConv` (and `MatMul` into `QLinearMatMul` / `MatMulIntegerToFloat`,
//! `Gemm` into `QGemm`), which run u8×s8 (VNNI `vpdpbusd` on AVX-512 VNNI CPUs); every other op
//! stays float32 between a DQ and a Q.
//!
//! Options (`[passes.options]` of the recipe, per role):
//! - `ranges = { value = [lo, hi], … }`: activation ranges, filled in by calibration
//!   (`optimize::calibrate`); a node whose input or output has no range stays float.
//! - `ops = ["Conv", "Gemm", "MatMul"]`: the op types quantized (this is the default).
//! - `block = ["Gemm"]`: op types kept float; `block_nodes = ["Conv_12"]`: node names kept float.
//! - `activations = "uint8" | "int8"`: activation type (default `uint8`: ORT's x86 kernels are
//!   u8 activations × s8 weights).
//!
//! Initializers no node reads (the swapper's `emap`) are left as they are, and stay last. Below
//! opset 13 (no per-axis `QuantizeLinear`), the Q/DQ nodes come from the `com.microsoft` domain,
//! which ORT fuses the same way.
//!
//! Not exact: quality is measured against the float model (`verify`, the recipe's quality bar).

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::edit::{self, add_initializers, drop_if_unused, Names};
use super::{Pass, PassContext, PassReport};
use crate::onnx::graph::attr;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{GraphProto, NodeProto, TensorProto};
use crate::onnx::{GraphIndex, Model, NodeExt, Tensor};

/// The `quantize` pass.
#[derive(Debug, Clone, Default)]
pub struct Quantize;

/// The pass's options (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizeOptions {
    /// Value name → calibrated `[lo, hi]`.
    #[serde(default)]
    pub ranges: BTreeMap<String, [f32; 2]>,
    /// Op types quantized.
    #[serde(default = "default_ops")]
    pub ops: Vec<String>,
    /// Op types kept float.
    #[serde(default)]
    pub block: Vec<String>,
    /// Node names kept float.
    #[serde(default)]
    pub block_nodes: Vec<String>,
    /// `uint8` or `int8` activations.
    #[serde(default = "default_activations")]
    pub activations: String,
    /// Quantize each node's output too (Q → DQ after it), which ORT needs to fuse `QLinearConv`.
    /// `false`: outputs stay float (measurement aid: how much the output grid costs).
    #[serde(default = "yes")]
    pub quantize_outputs: bool,
    /// `qdq` (default): Q/DQ pairs around each node, fused by ORT into `QLinearConv` etc.
    /// `integer`: each Conv becomes `QuantizeLinear` → `ConvInteger` (int32 accumulators) →
    /// `Cast` → `Mul` (input scale × weight scale per channel) → `Add` (bias): the output stays
    /// float, so only inputs and weights are rounded; Gemm/MatMul stay float.
    #[serde(default = "default_form")]
    pub form: String,
    /// How calibration takes each value's range (`{ method = "percentile", percentile = 99.99 }`
    /// or `{ method = "minmax" }`); read by `optimize::calibrate`, not by the pass.
    #[serde(default)]
    pub calibration: Method,
}

/// How a value's range is taken from its activations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub enum Method {
    /// Per case the lowest and highest value.
    Minmax,
    /// Per case the `100 − p` and `p` percentiles (e.g. 99.99).
    Percentile { percentile: f64 },
}

impl Default for Method {
    fn default() -> Self {
        Method::Percentile { percentile: 99.99 }
    }
}

fn default_ops() -> Vec<String> {
    ["Conv", "Gemm", "MatMul"].map(String::from).to_vec()
}

fn default_form() -> String {
    "qdq".into()
}

fn yes() -> bool {
    true
}

fn default_activations() -> String {
    "uint8".into()
}

impl QuantizeOptions {
    /// Parses the pass options.
    pub fn from_table(t: &toml::Table) -> Result<QuantizeOptions> {
        let o: QuantizeOptions = toml::Value::Table(t.clone()).try_into().context("quantize options")?;
        if o.form != "qdq" && o.form != "integer" {
            bail!("quantize: `form` is '{}', must be \"qdq\" or \"integer\"", o.form);
        }
        if o.activations != "uint8" && o.activations != "int8" {
            bail!("quantize: `activations` is '{}', must be \"uint8\" or \"int8\"", o.activations);
        }
        for (v, [lo, hi]) in &o.ranges {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                bail!("quantize: range of '{v}' [{lo}, {hi}] is not a finite interval");
            }
        }
        Ok(o)
    }
}

/// Per-tensor scale and zero point of an 8-bit activation over `[lo, hi]` (widened to hold 0, so
/// that zero padding is exact). `signed`: int8 (zero point in −128..127), else uint8.
pub fn activation_params(lo: f32, hi: f32, signed: bool) -> (f32, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let qmin = if signed { -128.0 } else { 0.0 };
    let zp = (qmin - lo / scale).round().clamp(qmin, qmin + 255.0);
    (scale, zp as i32)
}

/// Symmetric per-channel int8 weights along `axis` of `dims`: (values in −127..127, one scale per
/// channel). An all-zero channel gets scale 1.
pub fn quantize_weights(w: &[f32], dims: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let channels = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let ch = |i: usize| (i / inner.max(1)) % channels;
    let mut amax = vec![0f32; channels];
    for (i, x) in w.iter().enumerate() {
        amax[ch(i)] = amax[ch(i)].max(x.abs());
    }
    let scales: Vec<f32> = amax.iter().map(|&a| if a > 0.0 { a / 127.0 } else { 1.0 }).collect();
    let q = w.iter().enumerate().map(|(i, x)| (x / scales[ch(i)]).round().clamp(-127.0, 127.0) as i8).collect();
    (q, scales)
}

/// A node to quantize: its position, the weight's channel axis, and whether it reads a bias.
struct Target {
    node: usize,
    axis: usize,
    bias: Option<String>,
}

/// The nodes `opts` quantizes: default-domain op of `opts.ops`, not blocked, a float32 weight
/// initializer of the right rank, calibrated ranges on input 0 and output 0.
fn targets(g: &GraphProto, opts: &QuantizeOptions) -> Vec<Target> {
    let inits: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let f32_init = |n: &str| inits.get(n).filter(|t| t.data_type == DataType::Float as i32).copied();
    let mut out = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        if !edit::is_default_domain(n)
            || !opts.ops.contains(&n.op_type)
            || opts.block.contains(&n.op_type)
            || opts.block_nodes.contains(&n.name)
        {
            continue;
        }
        let (Some(x), Some(w), Some(y)) = (n.input.first(), n.input.get(1), n.output.first()) else { continue };
        if !opts.ranges.contains_key(x) || !opts.ranges.contains_key(y) || inits.contains_key(x.as_str()) {
            continue;
        }
        let Some(wt) = f32_init(w) else { continue };
        let axis = match (n.op_type.as_str(), wt.dims.len()) {
            ("Conv", r) if r >= 3 => 0,
            ("Gemm", 2) if n.attr_i("transA", 0) == 0 => {
                if n.attr_i("transB", 0) == 1 {
                    0
                } else {
                    1
                }
            }
            ("MatMul", 2) => 1,
            _ => continue,
        };
        let channels = wt.dims[axis];
        let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
            None => None,
            Some(b) => match f32_init(b) {
                Some(bt) if bt.dims.len() == 1 && bt.dims[0] == channels => Some(b.clone()),
                // A bias the int32 form cannot take (broadcast Gemm C, computed values): keep float.
                _ => continue,
            },
        };
        out.push(Target { node: i, axis, bias });
    }
    out
}

fn f32_proto(name: &str, dims: &[usize], v: Vec<f32>) -> TensorProto {
    Tensor::f32(dims, v).to_proto(name)
}

fn raw_proto(name: &str, dims: &[usize], dt: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dt as i32,
        raw_data: raw.into(),
        ..Default::default()
    }
}

/// Builds Q/DQ nodes and initializers; `domain` is "" or `com.microsoft`.
struct Builder {
    names: Names,
    domain: String,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

impl Builder {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str, axis: Option<usize>) {
        let name = self.names.fresh(&format!("{op}_{output}"));
        let attrs = axis.map(|a| vec![attr::int("axis", a as i64)]).unwrap_or_default();
        let mut n = edit::node(&name, op, inputs, &[output], attrs);
        n.domain = self.domain.clone();
        self.nodes.push(n);
    }

    fn init(&mut self, hint: &str, make: impl FnOnce(&str) -> TensorProto) -> String {
        let name = self.names.fresh(hint);
        self.inits.push(make(&name));
        name
    }
}

/// Q → DQ of activation `v` with range `[lo, hi]`; returns (DQ output, scale).
fn qdq_activation(b: &mut Builder, v: &str, lo: f32, hi: f32, signed: bool) -> (String, f32) {
    let (scale, zp) = activation_params(lo, hi, signed);
    let s = b.init(&format!("{v}_scale"), |n| f32_proto(n, &[], vec![scale]));
    let (dt, byte) = if signed { (DataType::Int8, zp as i8 as u8) } else { (DataType::Uint8, zp as u8) };
    let z = b.init(&format!("{v}_zero_point"), |n| raw_proto(n, &[], dt, vec![byte]));
    let q = b.names.fresh(&format!("{v}_quantized"));
    let dq = b.names.fresh(&format!("{v}_dequantized"));
    b.node("QuantizeLinear", &[v, &s, &z], &q, None);
    b.node("DequantizeLinear", &[&q, &s, &z], &dq, None);
    (dq, scale)
}

/// Per-channel int8 weight `w` behind a DQ; returns (DQ output, per-channel scales).
fn dq_weight(b: &mut Builder, wt: &TensorProto, axis: usize) -> Result<(String, Vec<f32>)> {
    let t = Tensor::from_proto(wt)?;
    let (q, scales) = quantize_weights(&t.to_f32s(), &t.dims, axis);
    let c = scales.len();
    let wq = b.init(&format!("{}_quantized", wt.name), |n| {
        raw_proto(n, &t.dims, DataType::Int8, q.iter().map(|&x| x as u8).collect())
    });
    let s = b.init(&format!("{}_scale", wt.name), |n| f32_proto(n, &[c], scales.clone()));
    let z = b.init(&format!("{}_zero_point", wt.name), |n| raw_proto(n, &[c], DataType::Int8, vec![0; c]));
    let dq = b.names.fresh(&format!("{}_dequantized", wt.name));
    b.node("DequantizeLinear", &[&wq, &s, &z], &dq, Some(axis));
    Ok((dq, scales))
}

/// int32 bias behind a DQ with scale `x_scale × w_scale[c]`; returns the DQ output.
fn dq_bias(b: &mut Builder, bt: &TensorProto, x_scale: f32, w_scales: &[f32]) -> Result<String> {
    let bias = Tensor::from_proto(bt)?.to_f32s();
    let scales: Vec<f32> = w_scales.iter().map(|w| (w * x_scale).max(f32::MIN_POSITIVE)).collect();
    let q: Vec<u8> = bias
        .iter()
        .zip(&scales)
        .flat_map(|(x, s)| ((x / s).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32).to_le_bytes())
        .collect();
    let c = scales.len();
    let bq = b.init(&format!("{}_quantized", bt.name), |n| raw_proto(n, &[c], DataType::Int32, q));
    let s = b.init(&format!("{}_scale", bt.name), |n| f32_proto(n, &[c], scales.clone()));
    let z = b.init(&format!("{}_zero_point", bt.name), |n| raw_proto(n, &[c], DataType::Int32, vec![0; 4 * c]));
    let dq = b.names.fresh(&format!("{}_dequantized", bt.name));
    b.node("DequantizeLinear", &[&bq, &s, &z], &dq, Some(0));
    Ok(dq)
}

/// `QuantizeLinear` of activation `v` (no DQ); returns (quantized value, scale, zero point name).
fn q_activation(b: &mut Builder, v: &str, lo: f32, hi: f32) -> (String, f32, String) {
    let (scale, zp) = activation_params(lo, hi, false);
    let s = b.init(&format!("{v}_scale"), |n| f32_proto(n, &[], vec![scale]));
    let z = b.init(&format!("{v}_zero_point"), |n| raw_proto(n, &[], DataType::Uint8, vec![zp as u8]));
    let q = b.names.fresh(&format!("{v}_quantized"));
    b.node("QuantizeLinear", &[v, &s, &z], &q, None);
    (q, scale, z)
}

/// The nodes replacing Conv `n` in the `integer` form, reading the quantized input `xq` (scale
/// `x_scale`, zero point `xz`): `ConvInteger` → `Cast` → `Mul` → (`Add` bias) → `n`'s output.
fn integer_conv(
    b: &mut Builder,
    g: &GraphProto,
    n: &NodeProto,
    t: &Target,
    (xq, x_scale, xz): (&str, f32, &str),
) -> Result<Vec<NodeProto>> {
    let wt = g.initializer.iter().find(|i| i.name == n.input[1]).context("weight initializer")?;
    let w = Tensor::from_proto(wt)?;
    let (q, w_scales) = quantize_weights(&w.to_f32s(), &w.dims, 0);
    let c = w_scales.len();
    let wq = b.init(&format!("{}_quantized", wt.name), |nm| {
        raw_proto(nm, &w.dims, DataType::Int8, q.iter().map(|&x| x as u8).collect())
    });
    let wz = b.init(&format!("{}_zero_point", wt.name), |nm| raw_proto(nm, &[], DataType::Int8, vec![0]));
    let bshape: Vec<usize> = std::iter::once(c).chain(std::iter::repeat_n(1, w.dims.len() - 2)).collect();
    let scales: Vec<f32> = w_scales.iter().map(|s| s * x_scale).collect();
    let sc = b.init(&format!("{}_output_scale", n.name), |nm| f32_proto(nm, &bshape, scales));
    let acc = b.names.fresh(&format!("{}_int32", n.output[0]));
    let mut conv = edit::node(
        &b.names.fresh(&format!("{}_integer", n.name)),
        "ConvInteger",
        &[xq, &wq, xz, &wz],
        &[&acc],
        n.attribute.clone(),
    );
    conv.domain = String::new();
    let f = b.names.fresh(&format!("{}_float", n.output[0]));
    let cast = edit::node(
        &b.names.fresh(&format!("{}_cast", n.name)),
        "Cast",
        &[&acc],
        &[&f],
        vec![attr::int("to", DataType::Float as i64)],
    );
    let mut out = vec![conv, cast];
    match &t.bias {
        None => out.push(edit::node(
            &b.names.fresh(&format!("{}_scale", n.name)),
            "Mul",
            &[&f, &sc],
            &[&n.output[0]],
            vec![],
        )),
        Some(bias) => {
            let bt = g.initializer.iter().find(|i| &i.name == bias).context("bias initializer")?;
            let bv = Tensor::from_proto(bt)?.to_f32s();
            let bn = b.init(&format!("{bias}_broadcast"), |nm| f32_proto(nm, &bshape, bv));
            let m = b.names.fresh(&format!("{}_scaled", n.output[0]));
            out.push(edit::node(&b.names.fresh(&format!("{}_scale", n.name)), "Mul", &[&f, &sc], &[&m], vec![]));
            out.push(edit::node(
                &b.names.fresh(&format!("{}_bias", n.name)),
                "Add",
                &[&m, &bn],
                &[&n.output[0]],
                vec![],
            ));
        }
    }
    Ok(out)
}

/// The `integer` form (see [`QuantizeOptions::form`]): Convs only, outputs float.
fn run_integer(model: &mut Model, opts: &QuantizeOptions, mut report: PassReport) -> Result<PassReport> {
    let g = model.graph_mut();
    let mut only_conv = opts.clone();
    only_conv.ops.retain(|o| o == "Conv");
    let targets = targets(g, &only_conv);
    let mut b = Builder { names: Names::of(g), domain: String::new(), nodes: Vec::new(), inits: Vec::new() };
    let producer: HashMap<String, usize> =
        g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
    let mut after: BTreeMap<Option<usize>, Vec<NodeProto>> = BTreeMap::new();
    let mut quantized: HashMap<String, (String, f32, String)> = HashMap::new();
    let mut replaced: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut detached = Vec::new();
    for t in &targets {
        let n = g.node[t.node].clone();
        let x = n.input[0].clone();
        if !quantized.contains_key(&x) {
            let [lo, hi] = opts.ranges[&x];
            let q = q_activation(&mut b, &x, lo, hi);
            after.entry(producer.get(&x).copied()).or_default().append(&mut b.nodes);
            quantized.insert(x.clone(), q);
        }
        let (xq, xs, xz) = &quantized[&x];
        replaced.insert(t.node, integer_conv(&mut b, g, &n, t, (xq, *xs, xz))?);
        detached.extend(n.input[1..].iter().cloned());
        report
            .details
            .push(format!("{} (Conv): ConvInteger, int8 weights per channel, uint8 input, float output", n.name));
    }
    let old = std::mem::take(&mut g.node);
    let mut nodes = after.remove(&None).unwrap_or_default();
    for (i, n) in old.into_iter().enumerate() {
        match replaced.remove(&i) {
            Some(r) => nodes.extend(r),
            None => nodes.push(n),
        }
        nodes.extend(after.remove(&Some(i)).unwrap_or_default());
    }
    g.node = nodes;
    add_initializers(g, std::mem::take(&mut b.inits));
    drop_if_unused(g, &detached);
    report.rewritten = targets.len();
    edit::finish(report, model)
}

impl Pass for Quantize {
    fn name(&self) -> &'static str {
        "quantize"
    }

    fn exact(&self) -> bool {
        false
    }

    fn run(&self, model: &mut Model, ctx: &PassContext) -> Result<PassReport> {
        let opts = QuantizeOptions::from_table(&ctx.options)?;
        let mut report = edit::report(self.name(), model);
        if opts.ranges.is_empty() {
            bail!("quantize: no calibrated activation ranges (the pass runs under `faceperf optimize --target int8`, which calibrates first)");
        }
        if opts.form == "integer" {
            return run_integer(model, &opts, report);
        }
        let signed = opts.activations == "int8";
        let opset = edit::opset(model);
        let domain = if opset >= 13 { String::new() } else { "com.microsoft".to_string() };
        if !domain.is_empty() && model.opset("com.microsoft").is_none() {
            model.set_opset("com.microsoft", 1);
        }
        let g = model.graph_mut();
        GraphIndex::new(g)?;
        let targets = targets(g, &opts);
        let mut b = Builder { names: Names::of(g), domain, nodes: Vec::new(), inits: Vec::new() };
        // Activations: one Q → DQ pair per value, placed right after its producer (or first, for
        // graph inputs); every reader of the value reads the DQ instead.
        let mut acts: Vec<&str> = Vec::new();
        for t in &targets {
            let n = &g.node[t.node];
            acts.push(n.input[0].as_str());
            if opts.quantize_outputs {
                acts.push(n.output[0].as_str());
            }
        }
        let acts: HashSet<String> = acts.into_iter().map(String::from).collect();
        let producer: HashMap<&str, usize> =
            g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
        let mut after: BTreeMap<Option<usize>, Vec<NodeProto>> = BTreeMap::new();
        let mut renamed: HashMap<String, (String, f32)> = HashMap::new();
        let mut ordered: Vec<&String> = acts.iter().collect();
        ordered.sort();
        for v in ordered {
            let [lo, hi] = opts.ranges[v];
            let (dq, scale) = qdq_activation(&mut b, v, lo, hi, signed);
            after.entry(producer.get(v.as_str()).copied()).or_default().append(&mut b.nodes);
            renamed.insert(v.clone(), (dq, scale));
        }
        // Weights and biases, each DQ placed before its node (initializers are ready anytime).
        let mut before: HashMap<usize, Vec<NodeProto>> = HashMap::new();
        let mut rewires: Vec<(usize, usize, String)> = Vec::new();
        let mut detached = Vec::new();
        for t in &targets {
            let n = &g.node[t.node];
            let wt = g.initializer.iter().find(|i| i.name == n.input[1]).context("weight initializer")?;
            let (wdq, w_scales) = dq_weight(&mut b, wt, t.axis)?;
            rewires.push((t.node, 1, wdq));
            detached.push(n.input[1].clone());
            if let Some(bias) = &t.bias {
                let bt = g.initializer.iter().find(|i| &i.name == bias).context("bias initializer")?;
                let x_scale = renamed[&n.input[0]].1;
                rewires.push((t.node, 2, dq_bias(&mut b, bt, x_scale, &w_scales)?));
                detached.push(bias.clone());
            }
            before.insert(t.node, std::mem::take(&mut b.nodes));
            report.details.push(format!(
                "{} ({}): int8 weights per channel (axis {}), 8-bit activations",
                n.name, n.op_type, t.axis
            ));
        }
        for (node, pos, v) in rewires {
            g.node[node].input[pos] = v;
        }
        for n in g.node.iter_mut() {
            for i in n.input.iter_mut() {
                if let Some((dq, _)) = renamed.get(i.as_str()) {
                    *i = dq.clone();
                }
            }
        }
        let old = std::mem::take(&mut g.node);
        let mut nodes = after.remove(&None).unwrap_or_default();
        for (i, n) in old.into_iter().enumerate() {
            nodes.extend(before.remove(&i).unwrap_or_default());
            nodes.push(n);
            nodes.extend(after.remove(&Some(i)).unwrap_or_default());
        }
        g.node = nodes;
        add_initializers(g, std::mem::take(&mut b.inits));
        drop_if_unused(g, &detached);
        report.rewritten = targets.len();
        edit::finish(report, model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_params_hold_zero_and_the_range() {
        let (s, z) = activation_params(-1.0, 3.0, false);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64);
        // Zero maps exactly to the zero point; the ends to 0 and 255.
        assert!(((-1.0f32 / s).round() + z as f32) == 0.0);
        assert!(((3.0f32 / s).round() + z as f32) == 255.0);
        let (_, z) = activation_params(0.5, 2.0, false);
        assert_eq!(z, 0, "a positive range is widened to hold 0");
        // int8: −128 − (−2 / s) = −0.5, which rounds away from zero.
        let (s, z) = activation_params(-2.0, 2.0, true);
        assert_eq!(z, -1);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        let (s, _) = activation_params(0.0, 0.0, false);
        assert!(s > 0.0, "an all-zero value still gets a positive scale");
    }

    #[test]
    fn weights_are_symmetric_per_channel() {
        // 2 output channels × 3: channel 1 is 10× larger and gets its own scale.
        let w = [0.1, -0.2, 0.05, 1.0, -2.0, 0.5];
        let (q, s) = quantize_weights(&w, &[2, 3], 0);
        assert_eq!(s.len(), 2);
        assert!((s[0] - 0.2 / 127.0).abs() < 1e-9 && (s[1] - 2.0 / 127.0).abs() < 1e-8);
        assert_eq!(q, vec![64, -127, 32, 64, -127, 32]);
        // Axis 1 of a [K, N] MatMul weight: columns.
        let (q, s) = quantize_weights(&[1.0, 0.0, -1.0, 0.0], &[2, 2], 1);
        assert_eq!(s, vec![1.0 / 127.0, 1.0]);
        assert_eq!(q, vec![127, 0, -127, 0]);
    }
}
