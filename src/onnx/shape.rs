//! Static shape inference for the ops face models use, with given input shapes.
//!
//! Walks the graph in topological order, tracking per value its element type, its shape (unknown
//! dims as `None`), and, for small tensors, its constant value (see [`consteval`](super::consteval)).
//! Unknown ops leave their outputs unknown instead of failing, so a partly understood model still
//! reports what can be known.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::consteval::{self, broadcast, norm_axis, reshape_dims, slice_indices, MAX_CONST_ELEMS};
use super::graph::{node_label, GraphIndex, NodeExt};
use super::model::Model;
use super::proto::{
    tensor_proto::DataType, tensor_shape_proto::dimension::Value as DimValue, type_proto, NodeProto, ValueInfoProto,
};
use super::tensor::Tensor;

/// One dimension: known size or unknown.
pub type DimSize = Option<i64>;

/// What is known statically about one value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValueFacts {
    /// Element type (`Undefined` if unknown).
    pub dtype: i32,
    /// The shape, `None` when even the rank is unknown.
    pub shape: Option<Vec<DimSize>>,
    /// The value, when small and computable before running the model.
    pub value: Option<Tensor>,
}

impl ValueFacts {
    /// The shape when every dimension is known.
    pub fn static_shape(&self) -> Option<Vec<i64>> {
        self.shape.as_ref()?.iter().copied().collect()
    }
    /// Number of elements, when the shape is static.
    pub fn numel(&self) -> Option<i64> {
        self.static_shape().and_then(|s| crate::onnx::consteval::checked_product_i64(&s))
    }
}

/// Result of shape inference: facts per value name.
#[derive(Debug, Clone, Default)]
pub struct ShapeInfo {
    pub values: HashMap<String, ValueFacts>,
}

impl ShapeInfo {
    /// Facts about `name`, if anything is known.
    pub fn get(&self, name: &str) -> Option<&ValueFacts> {
        self.values.get(name)
    }
    /// The static shape of `name`.
    pub fn shape(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name)?.static_shape()
    }
}

/// Parses `1x3x640x640` into dims.
pub fn parse_dims(s: &str) -> Result<Vec<i64>> {
    s.split(['x', 'X', ','])
        .map(|d| {
            d.trim()
                .parse::<i64>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| anyhow::anyhow!("bad dimension '{d}' in shape '{s}' (expected e.g. 1x3x640x640)"))
        })
        .collect()
}

/// Parses `name=1x3x640x640` into a pair.
pub fn parse_input_shape(s: &str) -> Result<(String, Vec<i64>)> {
    let (name, dims) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--input-shape '{s}': expected NAME=DIMS, e.g. input.1=1x3x640x640"))?;
    Ok((name.to_string(), parse_dims(dims)?))
}

/// Declared shape of a value info (symbolic dims as `None`) and its element type.
pub fn declared(v: &ValueInfoProto) -> (i32, Option<Vec<DimSize>>) {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => {
            let shape = t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(DimValue::DimValue(v)) if v > 0 => Some(v),
                        _ => None,
                    })
                    .collect()
            });
            (t.elem_type, shape)
        }
        _ => (0, None),
    }
}

/// Refuses a fixed shape `o` for input `v` whose rank or fixed dims contradict its declaration.
pub fn check_override(v: &ValueInfoProto, o: &[i64]) -> Result<()> {
    let Some(decl) = declared(v).1 else { return Ok(()) };
    if decl.len() != o.len() {
        bail!("input '{}' has rank {}, but the given shape {:?} has rank {}", v.name, decl.len(), o, o.len());
    }
    if decl.iter().zip(o).any(|(d, g)| d.is_some_and(|d| d != *g)) {
        bail!("input '{}' is declared {:?}, the given shape {:?} contradicts it", v.name, decl, o);
    }
    Ok(())
}

/// Infers facts for every value. `overrides` fixes graph input shapes (symbolic dims resolved).
pub fn infer(model: &Model, overrides: &HashMap<String, Vec<i64>>) -> Result<ShapeInfo> {
    let g = model.graph();
    let idx = GraphIndex::new(g)?;
    let opset = model.opset("").unwrap_or(13);
    let mut info = ShapeInfo::default();
    for name in overrides.keys() {
        if !g.input.iter().any(|v| &v.name == name) {
            let names: Vec<&str> = idx.inputs.iter().map(String::as_str).collect();
            bail!("--input-shape names '{name}', but the model's inputs are: {}", names.join(", "));
        }
    }
    for v in &g.input {
        let (dtype, mut shape) = declared(v);
        if let Some(o) = overrides.get(&v.name) {
            check_override(v, o)?;
            shape = Some(o.iter().map(|&d| Some(d)).collect());
        }
        info.values.insert(v.name.clone(), ValueFacts { dtype, shape, value: None });
    }
    for t in &g.initializer {
        let numel = super::tensor::proto_numel(t) as usize;
        let value = if numel <= MAX_CONST_ELEMS { Tensor::from_proto(t).ok() } else { None };
        info.values.insert(
            t.name.clone(),
            ValueFacts { dtype: t.data_type, shape: Some(t.dims.iter().map(|&d| Some(d)).collect()), value },
        );
    }
    for i in idx.topological_order(g)? {
        let node = &g.node[i];
        let ins: Vec<Option<&ValueFacts>> =
            node.input.iter().map(|n| if n.is_empty() { None } else { info.values.get(n) }).collect();
        let outs = infer_node(node, &ins, opset)
            .map_err(|e| e.context(format!("shape inference at node '{}'", node_label(node))))?;
        for (name, facts) in node.output.iter().zip(outs) {
            if !name.is_empty() {
                info.values.insert(name.clone(), facts);
            }
        }
    }
    Ok(info)
}

fn known(shape: &[i64]) -> Option<Vec<DimSize>> {
    Some(shape.iter().map(|&d| Some(d)).collect())
}

/// Infers the output facts of one node from its input facts.
pub fn infer_node(node: &NodeProto, ins: &[Option<&ValueFacts>], opset: i64) -> Result<Vec<ValueFacts>> {
    let n_out = node.output.len();
    let shape_of = |i: usize| ins.get(i).copied().flatten().and_then(|f| f.shape.clone());
    let static_of = |i: usize| ins.get(i).copied().flatten().and_then(ValueFacts::static_shape);
    let value_of = |i: usize| ins.get(i).copied().flatten().and_then(|f| f.value.as_ref());
    let ints_of = |i: usize| value_of(i).and_then(Tensor::as_i64s);
    let dtype0 = ins.first().copied().flatten().map(|f| f.dtype).unwrap_or(0);
    let vals: Vec<Option<&Tensor>> = (0..node.input.len()).map(value_of).collect();
    let statics: Vec<Option<Vec<i64>>> = (0..node.input.len()).map(static_of).collect();
    let value = consteval::eval(node, &vals, &statics).map(|mut v| v.remove(0));

    let same = |shape: Option<Vec<DimSize>>| vec![ValueFacts { dtype: dtype0, shape, value: None }];
    let mut outs: Vec<ValueFacts> = match node.op_type.as_str() {
        "Relu"
        | "LeakyRelu"
        | "Sigmoid"
        | "Tanh"
        | "Neg"
        | "Exp"
        | "Log"
        | "Sqrt"
        | "Abs"
        | "Erf"
        | "Clip"
        | "Identity"
        | "Softplus"
        | "HardSigmoid"
        | "HardSwish"
        | "Elu"
        | "Selu"
        | "Dropout"
        | "InstanceNormalization"
        | "BatchNormalization"
        | "LRN"
        | "Softmax"
        | "LogSoftmax"
        | "LayerNormalization"
        | "Reciprocal"
        | "Floor"
        | "Ceil"
        | "Round"
        | "Sign"
        | "Sin"
        | "Cos"
        | "Not"
        | "Mish"
        | "Gelu" => same(shape_of(0)),
        "Cast" => vec![ValueFacts { dtype: node.attr_i("to", 0) as i32, shape: shape_of(0), value: None }],
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "PRelu" | "Mod" | "Sum" | "Mean" | "Equal" | "Less"
        | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor" | "Where" => {
            let shapes: Vec<Option<Vec<DimSize>>> = (0..node.input.len()).map(shape_of).collect();
            let shape = broadcast_dims(&shapes);
            let dtype = match node.op_type.as_str() {
                "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor" => {
                    DataType::Bool as i32
                }
                "Where" => ins.get(1).copied().flatten().map(|f| f.dtype).unwrap_or(0),
                _ => dtype0,
            };
            vec![ValueFacts { dtype, shape, value: None }]
        }
        "Conv" | "MaxPool" | "AveragePool" | "LpPool" => {
            let x = shape_of(0);
            let kernel: Option<Vec<i64>> = match node.op_type.as_str() {
                "Conv" => static_of(1)
                    .map(|w| w[2..].to_vec())
                    .or_else(|| node.attr_ints("kernel_shape").map(<[i64]>::to_vec)),
                _ => node.attr_ints("kernel_shape").map(<[i64]>::to_vec),
            };
            let channels = if node.op_type == "Conv" {
                static_of(1).map(|w| w[0])
            } else {
                x.as_ref().and_then(|x| x.get(1).copied().flatten())
            };
            let shape = match (x, kernel) {
                (Some(x), Some(k)) if x.len() == k.len() + 2 => {
                    let sp = k.len();
                    let strides = node.attr_ints("strides").map(<[i64]>::to_vec).unwrap_or_else(|| vec![1; sp]);
                    let dil = node.attr_ints("dilations").map(<[i64]>::to_vec).unwrap_or_else(|| vec![1; sp]);
                    let pads = node.attr_ints("pads").map(<[i64]>::to_vec).unwrap_or_else(|| vec![0; 2 * sp]);
                    let auto = node.attr_s("auto_pad").unwrap_or_default();
                    let ceil = node.attr_i("ceil_mode", 0) != 0;
                    let mut out = vec![x[0], channels];
                    for i in 0..sp {
                        out.push(x[i + 2].map(|d| {
                            let ek = dil[i] * (k[i] - 1) + 1;
                            match auto.as_str() {
                                "SAME_UPPER" | "SAME_LOWER" => (d + strides[i] - 1) / strides[i],
                                "VALID" => (d - ek) / strides[i] + 1,
                                _ => {
                                    let span = d + pads[i] + pads[i + sp] - ek;
                                    if ceil {
                                        (span + strides[i] - 1) / strides[i] + 1
                                    } else {
                                        span / strides[i] + 1
                                    }
                                }
                            }
                        }));
                    }
                    Some(out)
                }
                _ => None,
            };
            let mut v = same(shape);
            if node.op_type == "MaxPool" && n_out == 2 {
                v.push(ValueFacts { dtype: DataType::Int64 as i32, shape: v[0].shape.clone(), value: None });
            }
            v
        }
        "ConvTranspose" => {
            let shape = match (shape_of(0), static_of(1)) {
                (Some(x), Some(w)) if x.len() == w.len() => {
                    let sp = w.len() - 2;
                    let group = node.attr_i("group", 1);
                    let strides = node.attr_ints("strides").map(<[i64]>::to_vec).unwrap_or_else(|| vec![1; sp]);
                    let dil = node.attr_ints("dilations").map(<[i64]>::to_vec).unwrap_or_else(|| vec![1; sp]);
                    let pads = node.attr_ints("pads").map(<[i64]>::to_vec).unwrap_or_else(|| vec![0; 2 * sp]);
                    let opad = node.attr_ints("output_padding").map(<[i64]>::to_vec).unwrap_or_else(|| vec![0; sp]);
                    let explicit = node.attr_ints("output_shape").map(<[i64]>::to_vec);
                    let mut out = vec![x[0], Some(w[1] * group)];
                    for i in 0..sp {
                        out.push(match &explicit {
                            Some(o) => o.get(o.len().saturating_sub(sp) + i).copied(),
                            None => x[i + 2].map(|d| {
                                strides[i] * (d - 1) + opad[i] + dil[i] * (w[i + 2] - 1) + 1 - pads[i] - pads[i + sp]
                            }),
                        });
                    }
                    Some(out)
                }
                _ => None,
            };
            same(shape)
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            same(shape_of(0).map(|x| x.iter().enumerate().map(|(i, &d)| if i < 2 { d } else { Some(1) }).collect()))
        }
        "Pad" => {
            let pads = if opset >= 11 { ints_of(1) } else { node.attr_ints("pads").map(<[i64]>::to_vec) };
            let shape = match (shape_of(0), pads) {
                (Some(x), Some(p)) => {
                    let r = x.len();
                    // opset 18 `axes` input: pads apply to the listed axes only.
                    let axes: Vec<usize> = match ints_of(3) {
                        Some(a) => a.iter().map(|&a| norm_axis(a, r as i64)).collect::<Option<_>>().unwrap_or_default(),
                        None => (0..r).collect(),
                    };
                    if p.len() == 2 * axes.len() {
                        let mut out = x.clone();
                        for (k, &a) in axes.iter().enumerate() {
                            out[a] = x[a].map(|d| d + p[k] + p[k + axes.len()]);
                        }
                        Some(out)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            same(shape)
        }
        "Resize" | "Upsample" => {
            let x = shape_of(0);
            let (scales, sizes) = if node.op_type == "Upsample" {
                (node.attr("scales").map(|a| a.floats.clone()).or_else(|| value_of(1).map(Tensor::to_f32s)), None)
            } else if opset >= 11 {
                (value_of(2).map(Tensor::to_f32s).filter(|s| !s.is_empty()), ints_of(3).filter(|s| !s.is_empty()))
            } else {
                (value_of(1).map(Tensor::to_f32s), None)
            };
            let shape = match (x, scales, sizes) {
                (Some(_), _, Some(sz)) => known(&sz),
                (Some(x), Some(sc), _) if sc.len() == x.len() => {
                    Some(x.iter().zip(&sc).map(|(d, &s)| d.map(|d| (d as f32 * s).floor() as i64)).collect())
                }
                // Sizes computed at run time: the rank is still the input's (as ONNX infers it).
                (Some(x), _, _) => Some(vec![None; x.len()]),
                _ => None,
            };
            same(shape)
        }
        "Reshape" => {
            let target = if opset >= 5 { ints_of(1) } else { node.attr_ints("shape").map(<[i64]>::to_vec) };
            let shape = match (static_of(0), target.clone()) {
                (Some(x), Some(t)) => reshape_dims(&x, &t, node.attr_i("allowzero", 0) != 0).and_then(|d| known(&d)),
                (None, Some(t)) if t.iter().all(|&d| d > 0) => known(&t),
                (None, Some(t)) => Some(t.iter().map(|&d| if d > 0 { Some(d) } else { None }).collect()),
                // Unknown target values but a known target length still gives the rank.
                (_, None) => static_of(1).filter(|s| s.len() == 1).map(|s| vec![None; s[0].max(0) as usize]),
            };
            same(shape)
        }
        "Flatten" => {
            let shape = shape_of(0).and_then(|x| {
                let axis = norm_axis(node.attr_i("axis", 1), x.len() as i64 + 1)?;
                let prod = |s: &[DimSize]| s.iter().try_fold(1i64, |a, d| d.map(|d| a * d));
                Some(vec![prod(&x[..axis]), prod(&x[axis..])])
            });
            same(shape)
        }
        "Transpose" => {
            let shape = shape_of(0).map(|x| match node.attr_ints("perm") {
                Some(p) => p.iter().map(|&i| x.get(i as usize).copied().flatten()).collect(),
                None => x.iter().rev().copied().collect(),
            });
            same(shape)
        }
        "Slice" => {
            let x = shape_of(0);
            let (starts, ends, axes, steps) = if opset >= 10 {
                (ints_of(1), ints_of(2), ints_of(3), ints_of(4))
            } else {
                (
                    node.attr_ints("starts").map(<[i64]>::to_vec),
                    node.attr_ints("ends").map(<[i64]>::to_vec),
                    node.attr_ints("axes").map(<[i64]>::to_vec),
                    None,
                )
            };
            let shape = match (x, starts, ends) {
                (Some(x), Some(s), Some(e)) => {
                    let r = x.len() as i64;
                    let axes = axes.unwrap_or_else(|| (0..s.len() as i64).collect());
                    let steps = steps.unwrap_or_else(|| vec![1; s.len()]);
                    let mut out = x.clone();
                    for k in 0..s.len() {
                        let a = norm_axis(axes[k], r)
                            .ok_or_else(|| anyhow::anyhow!("Slice axis {} out of range", axes[k]))?;
                        out[a] = x[a].and_then(|d| slice_indices(d, s[k], e[k], steps[k]).map(|v| v.len() as i64));
                    }
                    Some(out)
                }
                _ => None,
            };
            same(shape)
        }
        "Split" => {
            let x = shape_of(0);
            let r = x.as_ref().map(|x| x.len() as i64).unwrap_or(0);
            let axis = norm_axis(node.attr_i("axis", 0), r);
            let sizes = if opset >= 13 { ints_of(1) } else { node.attr_ints("split").map(<[i64]>::to_vec) };
            let mut v = Vec::new();
            for k in 0..n_out {
                let shape = match (&x, axis) {
                    (Some(x), Some(a)) => {
                        let mut s = x.clone();
                        s[a] = match &sizes {
                            Some(sz) => sz.get(k).copied(),
                            None => x[a].map(|d| split_equal(d, n_out)[k]),
                        };
                        Some(s)
                    }
                    _ => None,
                };
                v.push(ValueFacts { dtype: dtype0, shape, value: None });
            }
            v
        }
        "Concat" => {
            let shapes: Vec<Option<Vec<DimSize>>> = (0..node.input.len()).map(shape_of).collect();
            let shape = shapes.first().cloned().flatten().and_then(|first| {
                let a = norm_axis(node.attr_i("axis", 0), first.len() as i64)?;
                let mut out = first.clone();
                *out.get_mut(a)? = shapes.iter().try_fold(0i64, |acc, s| {
                    s.as_ref().and_then(|s| s.get(a).copied().flatten()).and_then(|d| acc.checked_add(d))
                });
                for (i, d) in out.iter_mut().enumerate() {
                    if i != a && d.is_none() {
                        *d = shapes.iter().find_map(|s| s.as_ref().and_then(|s| s.get(i).copied().flatten()));
                    }
                }
                Some(out)
            });
            same(shape)
        }
        "Gather" => {
            let shape = match (shape_of(0), shape_of(1)) {
                (Some(x), Some(i)) => norm_axis(node.attr_i("axis", 0), x.len() as i64).map(|a| {
                    let mut s = x[..a].to_vec();
                    s.extend_from_slice(&i);
                    s.extend_from_slice(&x[a + 1..]);
                    s
                }),
                _ => None,
            };
            same(shape)
        }
        "Shape" => {
            let r = shape_of(0).map(|x| x.len() as i64);
            let shape = r.map(|r| {
                let norm = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) };
                let (s, e) = (norm(node.attr_i("start", 0)), norm(node.attr_i("end", r)));
                vec![Some((e - s).max(0))]
            });
            vec![ValueFacts { dtype: DataType::Int64 as i32, shape, value: None }]
        }
        "Size" => vec![ValueFacts { dtype: DataType::Int64 as i32, shape: Some(vec![]), value: None }],
        "Unsqueeze" => {
            let axes = if opset >= 13 { ints_of(1) } else { node.attr_ints("axes").map(<[i64]>::to_vec) };
            let shape = match (shape_of(0), axes) {
                (Some(x), Some(axes)) => {
                    let r = (x.len() + axes.len()) as i64;
                    let mut ax: Vec<usize> = axes.iter().filter_map(|&a| norm_axis(a, r)).collect();
                    ax.sort_unstable();
                    let mut out = x.clone();
                    for a in ax {
                        if a <= out.len() {
                            out.insert(a, Some(1));
                        }
                    }
                    Some(out)
                }
                _ => None,
            };
            same(shape)
        }
        "Squeeze" => {
            let axes = if opset >= 13 { ints_of(1) } else { node.attr_ints("axes").map(<[i64]>::to_vec) };
            let shape = shape_of(0).map(|x| {
                let r = x.len() as i64;
                match &axes {
                    Some(axes) => {
                        let ax: Vec<usize> = axes.iter().filter_map(|&a| norm_axis(a, r)).collect();
                        x.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, d)| *d).collect()
                    }
                    None => x.iter().copied().filter(|d| *d != Some(1)).collect(),
                }
            });
            same(shape)
        }
        "Gemm" => {
            let shape = match (shape_of(0), shape_of(1)) {
                (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                    let m = if node.attr_i("transA", 0) != 0 { a[1] } else { a[0] };
                    let n = if node.attr_i("transB", 0) != 0 { b[0] } else { b[1] };
                    Some(vec![m, n])
                }
                _ => None,
            };
            same(shape)
        }
        "MatMul" => {
            let shape = match (shape_of(0), shape_of(1)) {
                (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                    let (a2, b2) = (
                        if a.len() == 1 { vec![Some(1), a[0]] } else { a.clone() },
                        if b.len() == 1 { vec![b[0], Some(1)] } else { b.clone() },
                    );
                    let batch = broadcast_dims(&[Some(a2[..a2.len() - 2].to_vec()), Some(b2[..b2.len() - 2].to_vec())]);
                    batch.map(|mut s| {
                        if a.len() > 1 {
                            s.push(a2[a2.len() - 2]);
                        }
                        if b.len() > 1 {
                            s.push(b2[b2.len() - 1]);
                        }
                        s
                    })
                }
                _ => None,
            };
            same(shape)
        }
        op if op.starts_with("Reduce") || op == "ArgMax" || op == "ArgMin" => {
            let keep = node.attr_i("keepdims", 1) != 0;
            let axes = node.attr_ints("axes").map(<[i64]>::to_vec).or_else(|| {
                if opset >= 18 || op == "ReduceSum" {
                    ints_of(1)
                } else {
                    None
                }
            });
            let axes = if op.starts_with("Arg") { Some(vec![node.attr_i("axis", 0)]) } else { axes };
            let shape = shape_of(0).map(|x| {
                let r = x.len() as i64;
                let ax: Vec<usize> = match &axes {
                    Some(a) if !a.is_empty() => a.iter().filter_map(|&a| norm_axis(a, r)).collect(),
                    _ => (0..x.len()).collect(),
                };
                x.iter()
                    .enumerate()
                    .filter_map(|(i, &d)| if ax.contains(&i) { keep.then_some(Some(1)) } else { Some(d) })
                    .collect()
            });
            let dtype = if op.starts_with("Arg") { DataType::Int64 as i32 } else { dtype0 };
            vec![ValueFacts { dtype, shape, value: None }]
        }
        "ConstantOfShape" => {
            let dtype =
                node.attr("value").and_then(|a| a.t.as_ref()).map(|t| t.data_type).unwrap_or(DataType::Float as i32);
            vec![ValueFacts { dtype, shape: ints_of(0).and_then(|s| known(&s)), value: None }]
        }
        "Constant" => vec![ValueFacts::default()],
        "Range" => vec![ValueFacts { dtype: dtype0, shape: Some(vec![None]), value: None }],
        "Expand" => {
            let shape = match (shape_of(0), ints_of(1)) {
                (Some(x), Some(t)) => broadcast_dims(&[Some(x), known(&t)]),
                _ => None,
            };
            same(shape)
        }
        "Tile" => {
            let shape = match (shape_of(0), ints_of(1)) {
                (Some(x), Some(r)) if r.len() == x.len() => {
                    Some(x.iter().zip(&r).map(|(d, &k)| d.map(|d| d * k)).collect())
                }
                _ => None,
            };
            same(shape)
        }
        "DepthToSpace" | "SpaceToDepth" => {
            let b = node.attr_i("blocksize", 1);
            let up = node.op_type == "DepthToSpace";
            let shape = shape_of(0).filter(|x| x.len() == 4).map(|x| {
                if up {
                    vec![x[0], x[1].map(|c| c / (b * b)), x[2].map(|h| h * b), x[3].map(|w| w * b)]
                } else {
                    vec![x[0], x[1].map(|c| c * b * b), x[2].map(|h| h / b), x[3].map(|w| w / b)]
                }
            });
            same(shape)
        }
        _ => (0..n_out).map(|_| ValueFacts::default()).collect(),
    };
    outs.resize_with(n_out, ValueFacts::default);
    if let Some(v) = value {
        let dtype = v.data.data_type() as i32;
        outs[0] =
            ValueFacts { dtype, shape: known(&v.dims.iter().map(|&d| d as i64).collect::<Vec<_>>()), value: Some(v) };
    }
    Ok(outs)
}

/// Sizes of an equal split of `d` into `n` parts (the last part may be smaller, as ONNX 18 allows).
pub fn split_equal(d: i64, n: usize) -> Vec<i64> {
    let n = n.max(1) as i64;
    let chunk = (d + n - 1) / n;
    (0..n).map(|k| (d - k * chunk).clamp(0, chunk)).collect()
}

fn broadcast_dims(shapes: &[Option<Vec<DimSize>>]) -> Option<Vec<DimSize>> {
    let shapes: Vec<&Vec<DimSize>> = shapes.iter().map(|s| s.as_ref()).collect::<Option<_>>()?;
    if let Some(all) =
        shapes.iter().map(|s| s.iter().copied().collect::<Option<Vec<i64>>>()).collect::<Option<Vec<_>>>()
    {
        let as_usize: Vec<Vec<usize>> = all.iter().map(|s| s.iter().map(|&d| d as usize).collect()).collect();
        let refs: Vec<&Vec<usize>> = as_usize.iter().collect();
        return broadcast(&refs).map(|b| b.iter().map(|&d| Some(d as i64)).collect());
    }
    let rank = shapes.iter().map(|s| s.len()).max()?;
    let mut out: Vec<DimSize> = vec![Some(1); rank];
    for s in shapes {
        for (i, d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            *o = match (*o, *d) {
                (Some(1), d) => d,
                (o, Some(1)) => o,
                (Some(a), Some(b)) if a == b => Some(a),
                _ => None,
            };
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::builder::{Dim, GraphBuilder};
    use crate::onnx::graph::attr;

    fn shapes(pairs: &[(&str, &[i64])]) -> HashMap<String, Vec<i64>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect()
    }

    #[test]
    fn conv_pad_resize_chain() {
        let mut b = GraphBuilder::new("g");
        let x = b.input_f32("x", &[1, 3, 64, 64]);
        let pads = b.init("pads", &Tensor::i64_vec(&[0, 0, 3, 3, 0, 0, 3, 3]));
        let p = b.op("Pad", &[&x, &pads], &[attr::string("mode", "reflect")]);
        let w = b.init("w", &Tensor::f32(&[8, 3, 7, 7], vec![0.0; 8 * 3 * 49]));
        let c = b.op("Conv", &[&p, &w], &[attr::ints("strides", &[2, 2])]);
        let scales = b.init("scales", &Tensor::f32(&[4], vec![1.0, 1.0, 2.0, 2.0]));
        let r = b.op("Resize", &[&c, "", &scales], &[]);
        let wt = b.init("wt", &Tensor::f32(&[8, 4, 4, 4], vec![0.0; 8 * 64]));
        let t = b.op("ConvTranspose", &[&r, &wt], &[attr::ints("strides", &[2, 2]), attr::ints("pads", &[1, 1, 1, 1])]);
        let pool = b.op(
            "MaxPool",
            &[&t],
            &[attr::ints("kernel_shape", &[3, 3]), attr::ints("strides", &[2, 2]), attr::ints("pads", &[1, 1, 1, 1])],
        );
        let gap = b.op("GlobalAveragePool", &[&pool], &[]);
        let f = b.op("Flatten", &[&gap], &[]);
        let wg = b.init("wg", &Tensor::f32(&[10, 4], vec![0.0; 40]));
        let y = b.op("Gemm", &[&f, &wg], &[attr::int("transB", 1)]);
        b.output_f32(&y, &[1, 10]);
        let m = b.build(13);
        let info = infer(&m, &HashMap::new()).unwrap();
        assert_eq!(info.shape(&p), Some(vec![1, 3, 70, 70]));
        assert_eq!(info.shape(&c), Some(vec![1, 8, 32, 32]));
        assert_eq!(info.shape(&r), Some(vec![1, 8, 64, 64]));
        assert_eq!(info.shape(&t), Some(vec![1, 4, 128, 128]));
        assert_eq!(info.shape(&pool), Some(vec![1, 4, 64, 64]));
        assert_eq!(info.shape(&f), Some(vec![1, 4]));
        assert_eq!(info.shape(&y), Some(vec![1, 10]));
    }

    #[test]
    fn symbolic_input_with_override_resolves_reshape_chain() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(8), Dim::from("h"), Dim::from("w")]);
        let s = b.op("Shape", &[&x], &[]);
        let i0 = b.init("i0", &Tensor::i64_scalar(0));
        let n = b.op("Gather", &[&s, &i0], &[attr::int("axis", 0)]);
        let ax = b.init("ax", &Tensor::i64_vec(&[0]));
        let nu = b.op("Unsqueeze", &[&n, &ax], &[]);
        let tail = b.init("tail", &Tensor::i64_vec(&[-1, 2]));
        let target = b.op("Concat", &[&nu, &tail], &[attr::int("axis", 0)]);
        let t = b.op("Transpose", &[&x], &[attr::ints("perm", &[0, 2, 3, 1])]);
        let y = b.op("Reshape", &[&t, &target], &[]);
        let parts = b.op_n("Split", &[&y], 2, &[attr::int("axis", 2)]);
        let red = b.op("ReduceMean", &[&parts[0]], &[attr::ints("axes", &[1]), attr::int("keepdims", 0)]);
        b.output_f32(&red, &[1]);
        let m = b.build(13);
        let unknown = infer(&m, &HashMap::new()).unwrap();
        assert_eq!(unknown.get(&y).unwrap().shape, Some(vec![None, None, None]));
        let info = infer(&m, &shapes(&[("x", &[1, 8, 20, 20])])).unwrap();
        assert_eq!(info.get(&target).unwrap().value, Some(Tensor::i64_vec(&[1, -1, 2])));
        assert_eq!(info.shape(&y), Some(vec![1, 1600, 2]));
        assert_eq!(info.shape(&parts[1]), Some(vec![1, 1600, 1]));
        assert_eq!(info.shape(&red), Some(vec![1, 1]));
    }

    #[test]
    fn matmul_broadcast_gather_slice_squeeze() {
        let mut b = GraphBuilder::new("g");
        let a = b.input_f32("a", &[2, 1, 4, 5]);
        let w = b.init("w", &Tensor::f32(&[3, 5, 6], vec![0.0; 90]));
        let mm = b.op("MatMul", &[&a, &w], &[]);
        let idx = b.init("idx", &Tensor::i64_scalar(1));
        let g = b.op("Gather", &[&mm, &idx], &[attr::int("axis", 1)]);
        let st = b.init("st", &Tensor::i64_vec(&[-1]));
        let en = b.init("en", &Tensor::i64_vec(&[i64::MIN]));
        let axs = b.init("axs", &Tensor::i64_vec(&[2]));
        let stp = b.init("stp", &Tensor::i64_vec(&[-2]));
        let sl = b.op("Slice", &[&g, &st, &en, &axs, &stp], &[]);
        b.output_f32(&sl, &[2, 4, 3]);
        let m = b.build(13);
        let info = infer(&m, &HashMap::new()).unwrap();
        assert_eq!(info.shape(&mm), Some(vec![2, 3, 4, 6]));
        assert_eq!(info.shape(&g), Some(vec![2, 4, 6]));
        assert_eq!(info.shape(&sl), Some(vec![2, 4, 3]));
    }

    #[test]
    fn bad_override_is_a_clear_error() {
        let mut b = GraphBuilder::new("g");
        let x = b.input_f32("x", &[1, 3]);
        b.output_f32(&x, &[1, 3]);
        let m = b.build(13);
        let e = infer(&m, &shapes(&[("y", &[1])])).unwrap_err().to_string();
        assert!(e.contains("inputs are: x"), "{e}");
        let e = infer(&m, &shapes(&[("x", &[1, 4])])).unwrap_err().to_string();
        assert!(e.contains("contradicts"), "{e}");
        assert_eq!(parse_input_shape("input.1=1x3x640x640").unwrap(), ("input.1".to_string(), vec![1, 3, 640, 640]));
        assert!(parse_input_shape("oops").is_err());
    }

    #[test]
    fn split_equal_sizes() {
        assert_eq!(split_equal(10, 2), vec![5, 5]);
        assert_eq!(split_equal(7, 3), vec![3, 3, 1]);
    }
}
