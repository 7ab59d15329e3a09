//! Differences between a reference tensor and a candidate: max abs and relative error, cosine
//! similarity, PSNR.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::onnx::{Tensor, TensorData};

/// How a candidate tensor differs from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Same element type and every bit equal.
    pub bit_identical: bool,
    /// max |a − b|.
    pub max_abs: f64,
    /// max |a − b| / max(|a|, floor), floor = 1e-3 · max |a| (keeps near-zero references from
    /// dominating).
    pub max_rel: f64,
    /// ‖a − b‖₂ / ‖a‖₂.
    pub rel_l2: f64,
    /// Cosine similarity of the flattened tensors (1 when both are zero).
    pub cosine: f64,
    /// Mean squared error.
    pub mse: f64,
    /// max a − min a (the data range PSNR uses for float images).
    pub ref_range: f64,
    /// max |a|.
    pub ref_max_abs: f64,
}

impl Diff {
    /// PSNR in dB with `peak` (infinite when the tensors are equal).
    pub fn psnr_db(&self, peak: f64) -> f64 {
        if self.mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (peak * peak / self.mse).log10()
        }
    }
}

fn bits_equal(a: &TensorData, b: &TensorData) -> bool {
    match (a, b) {
        // Compare float bits, so NaNs in the same places count as identical and -0 ≠ +0.
        (TensorData::F32(x), TensorData::F32(y)) => x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
        (TensorData::F16(x), TensorData::F16(y)) => x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
        (TensorData::F64(x), TensorData::F64(y)) => x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
        _ => a == b,
    }
}

/// Compares `b` against the reference `a`. The shapes must agree; element types may differ (an
/// fp16 candidate against an fp32 reference); values are compared as f64.
pub fn diff(a: &Tensor, b: &Tensor) -> Result<Diff> {
    if a.dims != b.dims {
        bail!("shape {:?} differs from the reference's {:?}", b.dims, a.dims);
    }
    let bit_identical = a.data.data_type() == b.data.data_type() && bits_equal(&a.data, &b.data);
    let (av, bv) = (a.to_f32s(), b.to_f32s());
    let (mut max_abs, mut dot, mut na, mut nb, mut se) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let (mut lo, mut hi, mut amax) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
    let mut nan_mismatch = false;
    for (&x, &y) in av.iter().zip(&bv) {
        let (x, y) = (x as f64, y as f64);
        if x.is_nan() || y.is_nan() {
            nan_mismatch |= x.is_nan() != y.is_nan();
            continue;
        }
        let d = (x - y).abs();
        max_abs = max_abs.max(d);
        dot += x * y;
        na += x * x;
        nb += y * y;
        se += d * d;
        lo = lo.min(x);
        hi = hi.max(x);
        amax = amax.max(x.abs());
    }
    let floor = (1e-3 * amax).max(f64::MIN_POSITIVE);
    let max_rel = av
        .iter()
        .zip(&bv)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(&x, &y)| ((x as f64) - (y as f64)).abs() / (x as f64).abs().max(floor))
        .fold(0f64, f64::max);
    let n = av.len().max(1) as f64;
    let cosine = if na == 0.0 && nb == 0.0 {
        1.0
    } else if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    };
    let mut d = Diff {
        bit_identical,
        max_abs,
        max_rel,
        rel_l2: if na > 0.0 {
            se.sqrt() / na.sqrt()
        } else if se > 0.0 {
            f64::INFINITY
        } else {
            0.0
        },
        cosine,
        mse: se / n,
        ref_range: if hi >= lo { hi - lo } else { 0.0 },
        ref_max_abs: amax,
    };
    if nan_mismatch {
        // A NaN where the reference has a number (or the reverse) is as different as it gets.
        d.max_abs = f64::INFINITY;
        d.max_rel = f64::INFINITY;
        d.rel_l2 = f64::INFINITY;
        d.mse = f64::INFINITY;
        d.cosine = 0.0;
    }
    Ok(d)
}

/// True when a tensor of this shape and type is an image: N×3×H×W float, or N×H×W×3 uint8 (the
/// fused-I/O layout).
pub fn is_image(t: &Tensor) -> bool {
    match t.dims.as_slice() {
        [_, c, h, w] if matches!(t.data, TensorData::U8(_)) => *w == 3 && *h > 1 && *c > 1,
        [_, 3, h, w] => *h > 1 && *w > 1,
        _ => false,
    }
}

/// The PSNR peak of an image: 255 for 8-bit pixels, else the reference's value range.
pub fn psnr_peak(reference: &Tensor, d: &Diff) -> f64 {
    if matches!(reference.data, TensorData::U8(_)) {
        255.0
    } else {
        d.ref_range.max(f64::MIN_POSITIVE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics() {
        let a = Tensor::f32(&[4], vec![1.0, -2.0, 3.0, 0.0]);
        let d = diff(&a, &a).unwrap();
        assert!(d.bit_identical && d.max_abs == 0.0 && d.cosine == 1.0 && d.psnr_db(5.0).is_infinite());
        let b = Tensor::f32(&[4], vec![1.0, -2.0, 3.5, 0.0]);
        let d = diff(&a, &b).unwrap();
        assert!(!d.bit_identical);
        assert_eq!(d.max_abs, 0.5);
        assert!((d.max_rel - 0.5 / 3.0).abs() < 1e-12);
        assert_eq!(d.ref_range, 5.0);
        assert!((d.psnr_db(5.0) - 10.0 * (25.0f64 / (0.25 / 4.0)).log10()).abs() < 1e-9);
        assert!(d.cosine < 1.0 && d.cosine > 0.99);
        // fp16 against fp32: compared by value, never bit-identical.
        let h =
            Tensor { dims: vec![4], data: TensorData::F16(a.to_f32s().into_iter().map(half::f16::from_f32).collect()) };
        let d = diff(&a, &h).unwrap();
        assert!(!d.bit_identical && d.max_abs == 0.0);
        let nan = Tensor::f32(&[4], vec![1.0, f32::NAN, 3.0, 0.0]);
        assert!(diff(&a, &nan).unwrap().max_abs.is_infinite());
        assert!(diff(&a, &Tensor::f32(&[2, 2], vec![0.0; 4])).is_err());
    }

    #[test]
    fn images() {
        assert!(is_image(&Tensor::f32(&[1, 3, 8, 8], vec![0.0; 192])));
        assert!(!is_image(&Tensor::f32(&[1, 512], vec![0.0; 512])));
        assert!(is_image(&Tensor { dims: vec![1, 8, 8, 3], data: TensorData::U8(vec![0; 192]) }));
    }
}
