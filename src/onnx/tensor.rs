//! Dense tensors decoded from `TensorProto`s, and back.
//!
//! Constant folding, equivalence checks and replica generation all need the values of initializers as
//! typed arrays; this is the one place that knows the ONNX storage rules (typed fields vs `raw_data`,
//! little-endian layout).

use anyhow::{bail, Context, Result};
use half::f16;

use super::proto::{tensor_proto::DataType, TensorProto};

/// The element storage of a [`Tensor`].
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

/// A dense tensor: shape plus row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: TensorData,
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ONNX element type.
    pub fn data_type(&self) -> DataType {
        match self {
            TensorData::F32(_) => DataType::Float,
            TensorData::F16(_) => DataType::Float16,
            TensorData::F64(_) => DataType::Double,
            TensorData::I64(_) => DataType::Int64,
            TensorData::I32(_) => DataType::Int32,
            TensorData::I8(_) => DataType::Int8,
            TensorData::U8(_) => DataType::Uint8,
            TensorData::Bool(_) => DataType::Bool,
        }
    }
}

impl Tensor {
    /// A float32 tensor. Panics if `data.len()` does not match `dims` (a programming error).
    pub fn f32(dims: &[usize], data: Vec<f32>) -> Tensor {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "f32 tensor: dims and data disagree");
        Tensor { dims: dims.to_vec(), data: TensorData::F32(data) }
    }

    /// An int64 tensor. Panics if `data.len()` does not match `dims`.
    pub fn i64(dims: &[usize], data: Vec<i64>) -> Tensor {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "i64 tensor: dims and data disagree");
        Tensor { dims: dims.to_vec(), data: TensorData::I64(data) }
    }

    /// A rank-1 int64 tensor.
    pub fn i64_vec(data: &[i64]) -> Tensor {
        Tensor::i64(&[data.len()], data.to_vec())
    }

    /// A rank-0 int64 tensor.
    pub fn i64_scalar(v: i64) -> Tensor {
        Tensor::i64(&[], vec![v])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values as i64 if the tensor is of an integer type (shape arithmetic).
    pub fn as_i64s(&self) -> Option<Vec<i64>> {
        match &self.data {
            TensorData::I64(v) => Some(v.clone()),
            TensorData::I32(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::I8(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::U8(v) => Some(v.iter().map(|&x| x as i64).collect()),
            TensorData::Bool(v) => Some(v.iter().map(|&x| x as i64).collect()),
            _ => None,
        }
    }

    /// The values as f32, converting from any numeric type.
    pub fn to_f32s(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
        }
    }

    /// Encodes as a `TensorProto` named `name`, data in `raw_data` (little-endian), which is what
    /// exporters write and what ORT reads fastest.
    pub fn to_proto(&self, name: &str) -> TensorProto {
        let mut raw = Vec::with_capacity(self.len() * elem_size(self.data.data_type()).unwrap_or(1));
        match &self.data {
            TensorData::F32(v) => v.iter().for_each(|x| raw.extend_from_slice(&x.to_le_bytes())),
            TensorData::F16(v) => v.iter().for_each(|x| raw.extend_from_slice(&x.to_le_bytes())),
            TensorData::F64(v) => v.iter().for_each(|x| raw.extend_from_slice(&x.to_le_bytes())),
            TensorData::I64(v) => v.iter().for_each(|x| raw.extend_from_slice(&x.to_le_bytes())),
            TensorData::I32(v) => v.iter().for_each(|x| raw.extend_from_slice(&x.to_le_bytes())),
            TensorData::I8(v) => raw.extend(v.iter().map(|&x| x as u8)),
            TensorData::U8(v) => raw.extend_from_slice(v),
            TensorData::Bool(v) => raw.extend(v.iter().map(|&x| x as u8)),
        }
        TensorProto {
            name: name.to_string(),
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: self.data.data_type() as i32,
            raw_data: raw.into(),
            ..Default::default()
        }
    }

    /// Decodes a `TensorProto` whose data is inline (typed fields or `raw_data`). External data must
    /// have been resolved by the loader first.
    pub fn from_proto(t: &TensorProto) -> Result<Tensor> {
        if t.data_location == 1 {
            bail!("tensor '{}' still refers to external data; load the model with its data file", t.name);
        }
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).with_context(|| format!("tensor '{}' has negative dim {d}", t.name)))
            .collect::<Result<_>>()?;
        let n: usize = dims.iter().product();
        let dtype = DataType::try_from(t.data_type)
            .map_err(|_| anyhow::anyhow!("tensor '{}' has unknown data type {}", t.name, t.data_type))?;
        let raw = &t.raw_data[..];
        let use_raw = !raw.is_empty() || n == 0;
        if use_raw {
            if let Some(size) = elem_size(dtype) {
                if raw.len() != n * size {
                    bail!(
                        "tensor '{}': raw_data has {} bytes, shape {:?} of {:?} needs {}",
                        t.name,
                        raw.len(),
                        dims,
                        dtype,
                        n * size
                    );
                }
            }
        }
        fn le<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
            raw.chunks_exact(N).map(|c| f(c.try_into().expect("chunk size"))).collect()
        }
        let data = match dtype {
            DataType::Float if use_raw => TensorData::F32(le(raw, f32::from_le_bytes)),
            DataType::Float => TensorData::F32(t.float_data.clone()),
            DataType::Float16 if use_raw => TensorData::F16(le(raw, f16::from_le_bytes)),
            DataType::Float16 => TensorData::F16(t.int32_data.iter().map(|&x| f16::from_bits(x as u16)).collect()),
            DataType::Double if use_raw => TensorData::F64(le(raw, f64::from_le_bytes)),
            DataType::Double => TensorData::F64(t.double_data.clone()),
            DataType::Int64 if use_raw => TensorData::I64(le(raw, i64::from_le_bytes)),
            DataType::Int64 => TensorData::I64(t.int64_data.clone()),
            DataType::Int32 if use_raw => TensorData::I32(le(raw, i32::from_le_bytes)),
            DataType::Int32 => TensorData::I32(t.int32_data.clone()),
            DataType::Int8 if use_raw => TensorData::I8(raw.iter().map(|&x| x as i8).collect()),
            DataType::Int8 => TensorData::I8(t.int32_data.iter().map(|&x| x as i8).collect()),
            DataType::Uint8 if use_raw => TensorData::U8(raw.to_vec()),
            DataType::Uint8 => TensorData::U8(t.int32_data.iter().map(|&x| x as u8).collect()),
            DataType::Bool if use_raw => TensorData::Bool(raw.iter().map(|&x| x != 0).collect()),
            DataType::Bool => TensorData::Bool(t.int32_data.iter().map(|&x| x != 0).collect()),
            other => bail!("tensor '{}': data type {:?} is not supported here", t.name, other),
        };
        if data.len() != n {
            bail!("tensor '{}': {} values for shape {:?}", t.name, data.len(), dims);
        }
        Ok(Tensor { dims, data })
    }
}

/// Size in bytes of one element of a fixed-size ONNX type, `None` for strings and sub-byte types.
pub fn elem_size(dtype: DataType) -> Option<usize> {
    Some(match dtype {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Double | DataType::Int64 | DataType::Uint64 | DataType::Complex64 => 8,
        DataType::Complex128 => 16,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        DataType::Float8e4m3fn | DataType::Float8e4m3fnuz | DataType::Float8e5m2 | DataType::Float8e5m2fnuz => 1,
        DataType::Float8e8m0 => 1,
        _ => return None,
    })
}

/// Number of elements a `TensorProto` declares.
pub fn proto_numel(t: &TensorProto) -> u64 {
    // Saturating: declared dims come from the file and may be absurd.
    t.dims.iter().map(|&d| d.max(0) as u64).fold(1u64, u64::saturating_mul)
}

/// Bytes a `TensorProto`'s payload occupies (declared shape × element size).
pub fn proto_bytes(t: &TensorProto) -> u64 {
    let dtype = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
    proto_numel(t).saturating_mul(elem_size(dtype).unwrap_or(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_roundtrip_all_types() {
        let cases = vec![
            Tensor::f32(&[2, 2], vec![1.0, -2.5, 3.25, f32::MAX]),
            Tensor::i64(&[3], vec![-1, 0, i64::MAX]),
            Tensor { dims: vec![2], data: TensorData::F16(vec![f16::from_f32(0.5), f16::from_f32(-7.0)]) },
            Tensor { dims: vec![2], data: TensorData::Bool(vec![true, false]) },
            Tensor { dims: vec![], data: TensorData::I32(vec![42]) },
        ];
        for t in cases {
            let p = t.to_proto("x");
            assert_eq!(Tensor::from_proto(&p).unwrap(), t);
        }
    }

    #[test]
    fn typed_fields_are_read() {
        let p = TensorProto {
            name: "w".into(),
            dims: vec![3],
            data_type: DataType::Float as i32,
            float_data: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        assert_eq!(Tensor::from_proto(&p).unwrap().to_f32s(), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn wrong_raw_length_is_an_error() {
        let mut p = Tensor::f32(&[2], vec![1.0, 2.0]).to_proto("w");
        p.dims = vec![3];
        let e = Tensor::from_proto(&p).unwrap_err().to_string();
        assert!(e.contains("raw_data has 8 bytes"), "{e}");
    }
}
