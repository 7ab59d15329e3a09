//! Evaluation of shape-arithmetic nodes on known small tensors.
//!
//! With fixed input shapes, exporters' `Shape → Gather → Unsqueeze → Concat → Reshape` chains compute
//! values known ahead of time. Shape inference uses this to resolve Reshape targets; the
//! `fold-shapes` rewrite uses it to replace the chains by initializers. Only integer and small float
//! tensors are evaluated: anything else returns `None` ("not known").

use super::graph::NodeExt;
use super::proto::{tensor_proto::DataType, NodeProto};
use super::tensor::{Tensor, TensorData};

/// Largest tensor (in elements) the evaluator produces; beyond that a value is "not known".
pub const MAX_CONST_ELEMS: usize = 1 << 16;

/// Evaluates `node` if every needed input value is known. `shapes[i]` is the static shape of input
/// `i` when fully known (used by `Shape`).
pub fn eval(node: &NodeProto, vals: &[Option<&Tensor>], shapes: &[Option<Vec<i64>>]) -> Option<Vec<Tensor>> {
    let val = |i: usize| vals.get(i).copied().flatten();
    let ints = |i: usize| val(i).and_then(Tensor::as_i64s);
    let out = match node.op_type.as_str() {
        "Shape" => {
            let shape = shapes.first()?.clone()?;
            let r = shape.len() as i64;
            let norm = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) };
            let start = norm(node.attr_i("start", 0)) as usize;
            let end = norm(node.attr_i("end", r)) as usize;
            Tensor::i64_vec(&shape[start..end.max(start)])
        }
        "Size" => Tensor::i64_scalar(checked_product_i64(shapes.first()?.as_ref()?)?),
        "Constant" => {
            if let Some(a) = node.attr("value") {
                Tensor::from_proto(a.t.as_ref()?).ok()?
            } else if let Some(a) = node.attr("value_int") {
                Tensor::i64_scalar(a.i)
            } else if let Some(a) = node.attr("value_ints") {
                Tensor::i64_vec(&a.ints)
            } else if let Some(a) = node.attr("value_float") {
                Tensor::f32(&[], vec![a.f])
            } else if let Some(a) = node.attr("value_floats") {
                Tensor::f32(&[a.floats.len()], a.floats.clone())
            } else {
                return None;
            }
        }
        "Identity" => val(0)?.clone(),
        "Cast" => cast(val(0)?, node.attr_i("to", 0))?,
        "Gather" => {
            let data = val(0)?;
            let idx = val(1)?;
            let idx_v = idx.as_i64s()?;
            let rank = data.dims.len() as i64;
            let axis = norm_axis(node.attr_i("axis", 0), rank)?;
            let d = data.dims[axis] as i64;
            let outer: usize = data.dims[..axis].iter().product();
            let inner: usize = data.dims[axis + 1..].iter().product();
            let mut picks = Vec::new();
            for &i in &idx_v {
                let i = if i < 0 { i + d } else { i };
                if i < 0 || i >= d {
                    return None;
                }
                picks.push(i as usize);
            }
            let mut dims = data.dims[..axis].to_vec();
            dims.extend_from_slice(&idx.dims);
            dims.extend_from_slice(&data.dims[axis + 1..]);
            let mut src_index = Vec::with_capacity(outer * picks.len() * inner);
            for o in 0..outer {
                for &p in &picks {
                    for k in 0..inner {
                        src_index.push((o * data.dims[axis] + p) * inner + k);
                    }
                }
            }
            take(&[data], dims, |i| (0, src_index[i]))?
        }
        "Unsqueeze" => {
            let data = val(0)?;
            let axes = node.attr_ints("axes").map(<[i64]>::to_vec).or_else(|| ints(1))?;
            let out_rank = (data.dims.len() + axes.len()) as i64;
            let mut axes: Vec<usize> = axes.iter().map(|&a| norm_axis(a, out_rank)).collect::<Option<_>>()?;
            axes.sort_unstable();
            let mut dims = data.dims.clone();
            for a in axes {
                if a > dims.len() {
                    return None;
                }
                dims.insert(a, 1);
            }
            reshaped(data, dims)
        }
        "Squeeze" => {
            let data = val(0)?;
            let rank = data.dims.len() as i64;
            let axes = node.attr_ints("axes").map(<[i64]>::to_vec).or_else(|| ints(1));
            let dims = match axes {
                Some(axes) => {
                    let axes: Vec<usize> = axes.iter().map(|&a| norm_axis(a, rank)).collect::<Option<_>>()?;
                    data.dims.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
                }
                None => data.dims.iter().copied().filter(|&d| d != 1).collect(),
            };
            reshaped(data, dims)
        }
        "Reshape" => {
            let data = val(0)?;
            let target = ints(1)?;
            let dims = reshape_dims(
                &data.dims.iter().map(|&d| d as i64).collect::<Vec<_>>(),
                &target,
                node.attr_i("allowzero", 0) != 0,
            )?;
            reshaped(data, dims.iter().map(|&d| d as usize).collect())
        }
        "Flatten" => {
            let data = val(0)?;
            let axis = norm_axis(node.attr_i("axis", 1), data.dims.len() as i64 + 1)?;
            let a: usize = data.dims[..axis].iter().product();
            let b: usize = data.dims[axis..].iter().product();
            reshaped(data, vec![a, b])
        }
        "Concat" => {
            let parts: Vec<&Tensor> = (0..node.input.len()).map(val).collect::<Option<_>>()?;
            let first = parts.first()?;
            let rank = first.dims.len() as i64;
            let axis = norm_axis(node.attr_i("axis", 0), rank)?;
            if parts.iter().any(|p| p.dims.len() != first.dims.len()) {
                return None;
            }
            let outer: usize = first.dims[..axis].iter().product();
            let mut dims = first.dims.clone();
            dims[axis] = parts.iter().map(|p| p.dims.get(axis).copied().unwrap_or(0)).sum();
            let mut src: Vec<(usize, usize)> = Vec::new();
            for o in 0..outer {
                for (j, p) in parts.iter().enumerate() {
                    let chunk: usize = p.dims[axis..].iter().product();
                    src.extend((0..chunk).map(|k| (j, o * chunk + k)));
                }
            }
            take(&parts, dims, |i| src[i])?
        }
        "Slice" => {
            let data = val(0)?;
            if data.dims.len() != 1 {
                return None;
            }
            let (starts, ends, axes, steps) = if node.input.len() > 1 {
                (ints(1)?, ints(2)?, ints(3).unwrap_or_else(|| vec![0]), ints(4).unwrap_or_else(|| vec![1]))
            } else {
                (
                    node.attr_ints("starts")?.to_vec(),
                    node.attr_ints("ends")?.to_vec(),
                    node.attr_ints("axes").map(<[i64]>::to_vec).unwrap_or_else(|| vec![0]),
                    vec![1],
                )
            };
            if axes.first().copied().map(|a| a != 0 && a != -1)? {
                return None;
            }
            let idx = slice_indices(data.dims[0] as i64, starts[0], ends[0], steps[0])?;
            take(&[data], vec![idx.len()], |i| (0, idx[i]))?
        }
        "ConstantOfShape" => {
            let shape = ints(0)?;
            let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).ok()).collect::<Option<_>>()?;
            let n: usize = checked_product_usize(&dims)?;
            if n > MAX_CONST_ELEMS {
                return None;
            }
            let fill = match node.attr("value").and_then(|a| a.t.as_ref()) {
                Some(t) => Tensor::from_proto(t).ok()?,
                None => Tensor::f32(&[1], vec![0.0]),
            };
            rebuild_like(&fill, dims, |_| fill.to_f32s()[0] as f64)?
        }
        "Range" => {
            let (s, l, d) = (val(0)?, val(1)?, val(2)?);
            // Integer ranges only, and in the inputs' own type.
            if !matches!(s.data, TensorData::I64(_)) && !matches!(s.data, TensorData::I32(_)) {
                return None;
            }
            let int32 = matches!(s.data, TensorData::I32(_));
            if let (Some(s), Some(l), Some(d)) = (s.as_i64s(), l.as_i64s(), d.as_i64s()) {
                let (s, l, d) = (s[0], l[0], d[0]);
                if d == 0 {
                    return None;
                }
                let n = (((l - s) as f64 / d as f64).ceil()).max(0.0) as usize;
                if n > MAX_CONST_ELEMS {
                    return None;
                }
                let t = Tensor::i64_vec(&(0..n as i64).map(|i| s + i * d).collect::<Vec<_>>());
                if int32 {
                    cast(&t, DataType::Int32 as i64)?
                } else {
                    t
                }
            } else {
                return None;
            }
        }
        // ONNX integer Mod (fmod = 0) takes the divisor's sign, like Python; fmod = 1 is C's fmod.
        "Mod" if node.attr_i("fmod", 0) == 0 => binary("ModFloor", val(0)?, val(1)?)?,
        "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" | "Equal" | "Less" | "Greater" | "Mod" => {
            binary(&node.op_type, val(0)?, val(1)?)?
        }
        "Neg" => {
            let a = val(0)?;
            rebuild_like(a, a.dims.clone(), |i| -(a.to_f32s()[i] as f64))?
        }
        "Where" => {
            let (c, a, b) = (val(0)?, val(1)?, val(2)?);
            let dims = broadcast(&[&c.dims, &a.dims, &b.dims])?;
            let cv = c.to_f32s();
            take(&[a, b], dims.clone(), |i| {
                if cv[bcast_index(i, &dims, &c.dims)] != 0.0 {
                    (0, bcast_index(i, &dims, &a.dims))
                } else {
                    (1, bcast_index(i, &dims, &b.dims))
                }
            })?
        }
        _ => return None,
    };
    if out.len() > MAX_CONST_ELEMS || node.output.len() != 1 {
        return None;
    }
    Some(vec![out])
}

/// Product of sizes, `None` on overflow (sizes come from the graph and may be anything).
pub fn checked_product_usize(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Product of signed sizes, `None` on overflow.
pub fn checked_product_i64(dims: &[i64]) -> Option<i64> {
    dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d))
}

/// Resolves a Reshape target (0 = copy, -1 = infer) against an input shape.
pub fn reshape_dims(input: &[i64], target: &[i64], allowzero: bool) -> Option<Vec<i64>> {
    let total: i64 = checked_product_i64(input)?;
    let mut dims: Vec<i64> = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 if !allowzero => dims.push(*input.get(i)?),
            -1 => {
                if infer.replace(i).is_some() {
                    return None;
                }
                dims.push(1);
            }
            t if t >= 0 => dims.push(t),
            _ => return None,
        }
    }
    if let Some(i) = infer {
        let known: i64 = checked_product_i64(&dims)?;
        if known == 0 || total % known != 0 {
            return None;
        }
        dims[i] = total / known;
    }
    (checked_product_i64(&dims)? == total).then_some(dims)
}

/// Element indices selected by a 1-D slice with ONNX clamping rules.
pub fn slice_indices(dim: i64, start: i64, end: i64, step: i64) -> Option<Vec<usize>> {
    if step == 0 {
        return None;
    }
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let (s, e) = if step > 0 {
        let s = if start < 0 { start + dim } else { start };
        let e = if end < 0 { end + dim } else { end };
        (clamp(s, 0, dim), clamp(e, 0, dim))
    } else {
        let s = if start < 0 { start + dim } else { start };
        let e = if end < 0 { end + dim } else { end };
        (clamp(s, -1, dim - 1), clamp(e, -1, dim - 1))
    };
    let mut v = Vec::new();
    let mut i = s;
    while (step > 0 && i < e) || (step < 0 && i > e) {
        v.push(i as usize);
        i += step;
    }
    Some(v)
}

/// Normalises a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: i64) -> Option<usize> {
    let a = if axis < 0 { axis + rank } else { axis };
    (0..rank.max(1)).contains(&a).then_some(a as usize).or(if rank == 0 && a == 0 { Some(0) } else { None })
}

/// Numpy-style broadcast of several shapes.
pub fn broadcast(shapes: &[&Vec<usize>]) -> Option<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

fn bcast_index(flat: usize, out: &[usize], src: &[usize]) -> usize {
    let mut rem = flat;
    let mut idx = 0;
    let mut stride = 1;
    let off = out.len() - src.len();
    let mut coords = vec![0; out.len()];
    for i in (0..out.len()).rev() {
        coords[i] = rem % out[i];
        rem /= out[i];
    }
    for i in (0..src.len()).rev() {
        let c = if src[i] == 1 { 0 } else { coords[i + off] };
        idx += c * stride;
        stride *= src[i];
    }
    idx
}

fn binary(op: &str, a: &Tensor, b: &Tensor) -> Option<Tensor> {
    let dims = broadcast(&[&a.dims, &b.dims])?;
    let n: usize = checked_product_usize(&dims)?;
    if n > MAX_CONST_ELEMS {
        return None;
    }
    let cmp = matches!(op, "Equal" | "Less" | "Greater");
    if let (Some(x), Some(y)) = (a.as_i64s(), b.as_i64s()) {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let (p, q) = (x[bcast_index(i, &dims, &a.dims)], y[bcast_index(i, &dims, &b.dims)]);
            v.push(match op {
                "Add" => p.wrapping_add(q),
                "Sub" => p.wrapping_sub(q),
                "Mul" => p.wrapping_mul(q),
                "Div" => p.checked_div(q)?,
                "Mod" => p.checked_rem(q)?,
                "ModFloor" => {
                    let r = p.checked_rem(q)?;
                    if r != 0 && (r < 0) != (q < 0) {
                        r + q
                    } else {
                        r
                    }
                }
                "Max" => p.max(q),
                "Min" => p.min(q),
                "Equal" => (p == q) as i64,
                "Less" => (p < q) as i64,
                "Greater" => (p > q) as i64,
                _ => return None,
            });
        }
        if cmp {
            return Some(Tensor { dims, data: TensorData::Bool(v.iter().map(|&x| x != 0).collect()) });
        }
        let t = Tensor::i64(&dims, v);
        return match a.data {
            TensorData::I32(_) => cast(&t, DataType::Int32 as i64),
            _ => Some(t),
        };
    }
    if !matches!(a.data, TensorData::F32(_)) || !matches!(b.data, TensorData::F32(_)) {
        return None;
    }
    let (x, y) = (a.to_f32s(), b.to_f32s());
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let (p, q) = (x[bcast_index(i, &dims, &a.dims)], y[bcast_index(i, &dims, &b.dims)]);
        v.push(match op {
            "Add" => p + q,
            "Sub" => p - q,
            "Mul" => p * q,
            "Div" => p / q,
            "Max" => p.max(q),
            "Min" => p.min(q),
            "Equal" => (p == q) as u8 as f32,
            "Less" => (p < q) as u8 as f32,
            "Greater" => (p > q) as u8 as f32,
            _ => return None,
        });
    }
    if cmp {
        return Some(Tensor { dims, data: TensorData::Bool(v.iter().map(|&x| x != 0.0).collect()) });
    }
    Some(Tensor::f32(&dims, v))
}

fn cast(t: &Tensor, to: i64) -> Option<Tensor> {
    let to = DataType::try_from(to as i32).ok()?;
    let f = t.to_f32s();
    let i = t.as_i64s();
    let ints = || i.clone().unwrap_or_else(|| f.iter().map(|&x| x as i64).collect::<Vec<_>>());
    let data = match to {
        DataType::Int64 => TensorData::I64(ints()),
        DataType::Int32 => TensorData::I32(ints().iter().map(|&x| x as i32).collect()),
        DataType::Float => TensorData::F32(match &i {
            Some(v) => v.iter().map(|&x| x as f32).collect(),
            None => f.clone(),
        }),
        DataType::Bool => TensorData::Bool(f.iter().map(|&x| x != 0.0).collect()),
        _ => return None,
    };
    Some(Tensor { dims: t.dims.clone(), data })
}

/// A tensor of `dims` whose element `i` is element `src(i).1` of `parts[src(i).0]`, copied exactly
/// (no numeric conversion). `None` when the parts' element types differ or the result is too big.
fn take(parts: &[&Tensor], dims: Vec<usize>, src: impl Fn(usize) -> (usize, usize)) -> Option<Tensor> {
    let n: usize = checked_product_usize(&dims)?;
    if n > MAX_CONST_ELEMS {
        return None;
    }
    macro_rules! pick {
        ($variant:ident) => {{
            let vs: Vec<&Vec<_>> = parts
                .iter()
                .map(|p| match &p.data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            TensorData::$variant(
                (0..n)
                    .map(|i| {
                        let (j, k) = src(i);
                        vs[j].get(k).copied()
                    })
                    .collect::<Option<_>>()?,
            )
        }};
    }
    let data = match parts.first()?.data {
        TensorData::F32(_) => pick!(F32),
        TensorData::F16(_) => pick!(F16),
        TensorData::F64(_) => pick!(F64),
        TensorData::I64(_) => pick!(I64),
        TensorData::I32(_) => pick!(I32),
        TensorData::I8(_) => pick!(I8),
        TensorData::U8(_) => pick!(U8),
        TensorData::Bool(_) => pick!(Bool),
    };
    Some(Tensor { dims, data })
}

fn reshaped(t: &Tensor, dims: Vec<usize>) -> Tensor {
    Tensor { dims, data: t.data.clone() }
}

/// A tensor of `like`'s element type with `dims` and values from `f` (computed in f64).
fn rebuild_like(like: &Tensor, dims: Vec<usize>, f: impl Fn(usize) -> f64) -> Option<Tensor> {
    let n: usize = checked_product_usize(&dims)?;
    if n > MAX_CONST_ELEMS {
        return None;
    }
    let data = match like.data {
        TensorData::I64(_) => TensorData::I64((0..n).map(|i| f(i) as i64).collect()),
        TensorData::I32(_) => TensorData::I32((0..n).map(|i| f(i) as i32).collect()),
        TensorData::F32(_) => TensorData::F32((0..n).map(|i| f(i) as f32).collect()),
        TensorData::Bool(_) => TensorData::Bool((0..n).map(|i| f(i) != 0.0).collect()),
        TensorData::U8(_) => TensorData::U8((0..n).map(|i| f(i) as u8).collect()),
        TensorData::I8(_) => TensorData::I8((0..n).map(|i| f(i) as i8).collect()),
        _ => return None,
    };
    Some(Tensor { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::graph::attr;

    fn node(op: &str, attrs: Vec<crate::onnx::proto::AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            output: vec!["y".into()],
            attribute: attrs,
            input: vec!["a".into(), "b".into()],
            ..Default::default()
        }
    }

    #[test]
    fn shape_gather_unsqueeze_concat_chain() {
        let shape = eval(&node("Shape", vec![]), &[None], &[Some(vec![1, 64, 20, 20])]).unwrap().remove(0);
        assert_eq!(shape, Tensor::i64_vec(&[1, 64, 20, 20]));
        let idx = Tensor::i64_scalar(2);
        let g = eval(&node("Gather", vec![attr::int("axis", 0)]), &[Some(&shape), Some(&idx)], &[None, None])
            .unwrap()
            .remove(0);
        assert_eq!(g, Tensor::i64_scalar(20));
        let u = eval(&node("Unsqueeze", vec![attr::ints("axes", &[0])]), &[Some(&g)], &[None]).unwrap().remove(0);
        assert_eq!(u, Tensor::i64_vec(&[20]));
        let m = eval(&node("Mul", vec![]), &[Some(&u), Some(&Tensor::i64_vec(&[2]))], &[None, None]).unwrap().remove(0);
        let c = eval(
            &node("Concat", vec![attr::int("axis", 0)]),
            &[Some(&Tensor::i64_vec(&[1, -1])), Some(&m)],
            &[None, None],
        )
        .unwrap()
        .remove(0);
        assert_eq!(c, Tensor::i64_vec(&[1, -1, 40]));
    }

    #[test]
    fn integers_are_copied_exactly_and_mod_follows_onnx() {
        // Values beyond 2^53 survive Concat/Gather/Slice/Where (no trip through f64).
        let big = Tensor::i64_vec(&[i64::MAX - 1, i64::MIN + 1, 3]);
        let c = eval(&node("Concat", vec![attr::int("axis", 0)]), &[Some(&big), Some(&big)], &[None, None])
            .unwrap()
            .remove(0);
        assert_eq!(c.as_i64s().unwrap()[..2], [i64::MAX - 1, i64::MIN + 1]);
        let g = eval(&node("Gather", vec![]), &[Some(&big), Some(&Tensor::i64_scalar(0))], &[None, None]).unwrap();
        assert_eq!(g[0], Tensor::i64_scalar(i64::MAX - 1));
        // Mod with fmod = 0 takes the divisor's sign; fmod = 1 the dividend's.
        let (a, b) = (Tensor::i64_vec(&[-7, 7, -7]), Tensor::i64_vec(&[3, -3, -3]));
        let m = eval(&node("Mod", vec![]), &[Some(&a), Some(&b)], &[None, None]).unwrap();
        assert_eq!(m[0], Tensor::i64_vec(&[2, -2, -1]));
        let f = eval(&node("Mod", vec![attr::int("fmod", 1)]), &[Some(&a), Some(&b)], &[None, None]).unwrap();
        assert_eq!(f[0], Tensor::i64_vec(&[-1, 1, -1]));
        // Range keeps int32.
        let i32s = |v: i32| Tensor { dims: vec![], data: TensorData::I32(vec![v]) };
        let mut range = node("Range", vec![]);
        range.input.push("c".into());
        let r = eval(&range, &[Some(&i32s(0)), Some(&i32s(5)), Some(&i32s(2))], &[None, None, None]).unwrap();
        assert_eq!(r[0], Tensor { dims: vec![3], data: TensorData::I32(vec![0, 2, 4]) });
    }

    #[test]
    fn reshape_rules() {
        assert_eq!(reshape_dims(&[1, 4, 6], &[0, -1], false), Some(vec![1, 24]));
        assert_eq!(reshape_dims(&[2, 3], &[-1, -1], false), None);
        assert_eq!(reshape_dims(&[2, 3], &[4, -1], false), None);
    }

    #[test]
    fn slice_negative_step() {
        assert_eq!(slice_indices(5, -1, i64::MIN, -1), Some(vec![4, 3, 2, 1, 0]));
        assert_eq!(slice_indices(5, 3, 0, -1), Some(vec![3, 2, 1]));
        assert_eq!(slice_indices(5, 1, 100, 2), Some(vec![1, 3]));
    }
}
