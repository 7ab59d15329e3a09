//! A small SCRFD decoder, to compare detectors where it matters: boxes and keypoints in pixels.
//!
//! SCRFD (det_10g and relatives) predicts, per feature-map location and per anchor (2 per location
//! at strides 8, 16 and 32), a score, four distances from the anchor centre to the box sides and
//! five keypoint offsets, all in units of the stride. Outputs are `rows × k` (k = 1 scores, 4
//! boxes, 10 keypoints), rows = ⌈H/s⌉·⌈W/s⌉·anchors, in row-major location order.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::onnx::Tensor;

/// The strides SCRFD models use, finest first.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// One level's decoded predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub stride: usize,
    pub scores: Vec<f32>,
    /// x1, y1, x2, y2 in input pixels, one per anchor.
    pub boxes: Vec<[f32; 4]>,
    /// Five (x, y) keypoints in input pixels, one set per anchor (empty without a keypoint head).
    pub kps: Vec<[f32; 10]>,
}

/// `(rows, k, values)` of an output: all but the last dim are rows.
fn rows_k(t: &Tensor) -> Option<(usize, usize, Vec<f32>)> {
    let k = *t.dims.last()?;
    if k == 0 || t.dims.len() < 2 {
        return None;
    }
    Some((t.len() / k, k, t.to_f32s()))
}

/// Decodes SCRFD outputs (any order) for an input of `h`×`w` pixels.
pub fn decode(outputs: &[(String, Tensor)], h: usize, w: usize) -> Result<Vec<Level>> {
    let mut by_k: [Vec<(usize, Vec<f32>)>; 3] = Default::default();
    for (name, t) in outputs {
        let Some((rows, k, v)) = rows_k(t) else { bail!("output '{name}' {:?} is not rows×k", t.dims) };
        let slot = match k {
            1 => 0,
            4 => 1,
            10 => 2,
            _ => bail!("output '{name}' has width {k}; SCRFD outputs have 1, 4 or 10 columns"),
        };
        by_k[slot].push((rows, v));
    }
    for g in &mut by_k {
        g.sort_by_key(|x| std::cmp::Reverse(x.0));
    }
    if by_k[0].len() != STRIDES.len() || by_k[1].len() != STRIDES.len() {
        bail!(
            "expected {} score and {} box outputs (strides 8/16/32), got {} and {}",
            STRIDES.len(),
            STRIDES.len(),
            by_k[0].len(),
            by_k[1].len()
        );
    }
    let mut levels = Vec::new();
    for (i, &s) in STRIDES.iter().enumerate() {
        let (fh, fw) = (h.div_ceil(s), w.div_ceil(s));
        let (rows, scores) = &by_k[0][i];
        let (brows, bv) = &by_k[1][i];
        if *rows != *brows || fh * fw == 0 || rows % (fh * fw) != 0 {
            bail!("stride {s}: {rows} score rows and {brows} box rows do not fit a {fh}×{fw} feature map");
        }
        let anchors = rows / (fh * fw);
        if !(1..=2).contains(&anchors) {
            bail!("stride {s}: {rows} rows on a {fh}×{fw} feature map is {anchors} anchors per location, not 1 or 2");
        }
        let centre = |a: usize| {
            let loc = a / anchors;
            (((loc % fw) * s) as f32, ((loc / fw) * s) as f32)
        };
        let sf = s as f32;
        let boxes = (0..*rows)
            .map(|a| {
                let (cx, cy) = centre(a);
                let d = &bv[a * 4..a * 4 + 4];
                [cx - d[0] * sf, cy - d[1] * sf, cx + d[2] * sf, cy + d[3] * sf]
            })
            .collect();
        let kps = match by_k[2].get(i) {
            Some((krows, kv)) if krows == rows => (0..*rows)
                .map(|a| {
                    let (cx, cy) = centre(a);
                    let mut p = [0f32; 10];
                    for j in 0..5 {
                        p[2 * j] = cx + kv[a * 10 + 2 * j] * sf;
                        p[2 * j + 1] = cy + kv[a * 10 + 2 * j + 1] * sf;
                    }
                    p
                })
                .collect(),
            _ => Vec::new(),
        };
        levels.push(Level { stride: s, scores: scores.clone(), boxes, kps });
    }
    Ok(levels)
}

/// How far a candidate detector's decoded predictions are from the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BoxDiff {
    /// Anchors compared: those the reference scores at or above the threshold (all anchors when
    /// none does, so the check is never vacuous).
    pub anchors: usize,
    /// Largest box-corner difference (px) over the compared anchors.
    pub max_box_px: f64,
    /// Largest keypoint difference (px) over the compared anchors.
    pub max_kps_px: f64,
    /// Largest score difference over all anchors.
    pub max_score_abs: f64,
    /// Largest box-corner difference (px) over all anchors.
    pub max_box_px_all: f64,
    /// Faces (anchors at or above the threshold after non-maximum suppression, IoU 0.4) the
    /// reference finds and the candidate does not, and the other way round: a count that differs
    /// is a missed or an extra face.
    #[serde(default)]
    pub missed_faces: usize,
    #[serde(default)]
    pub extra_faces: usize,
}

/// Faces among `levels`: anchors scoring at least `threshold`, greedy non-maximum suppression at
/// IoU 0.4 (insightface's SCRFD setting).
pub fn face_count(levels: &[Level], threshold: f32) -> usize {
    let mut cands: Vec<(f32, [f32; 4])> = levels
        .iter()
        .flat_map(|l| l.scores.iter().zip(&l.boxes).filter(|(s, _)| **s >= threshold).map(|(s, b)| (*s, *b)))
        .collect();
    cands.sort_by(|a, b| b.0.total_cmp(&a.0));
    let area = |b: &[f32; 4]| (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0);
    let mut kept: Vec<[f32; 4]> = Vec::new();
    for (_, b) in cands {
        let overlaps = kept.iter().any(|k| {
            let iw = (b[2].min(k[2]) - b[0].max(k[0])).max(0.0);
            let ih = (b[3].min(k[3]) - b[1].max(k[1])).max(0.0);
            let inter = iw * ih;
            inter > 0.4 * (area(&b) + area(k) - inter)
        });
        if !overlaps {
            kept.push(b);
        }
    }
    kept.len()
}

/// Compares decoded predictions; `threshold` selects the anchors that would become detections.
pub fn compare(reference: &[Level], candidate: &[Level], threshold: f32) -> Result<BoxDiff> {
    if reference.len() != candidate.len() {
        bail!("{} levels vs {}", reference.len(), candidate.len());
    }
    let any_above = reference.iter().any(|l| l.scores.iter().any(|&s| s >= threshold));
    let mut d = BoxDiff::default();
    for (r, c) in reference.iter().zip(candidate) {
        if r.scores.len() != c.scores.len() || r.kps.len() != c.kps.len() {
            bail!("stride {}: anchor counts differ", r.stride);
        }
        for a in 0..r.scores.len() {
            let box_px = r.boxes[a].iter().zip(&c.boxes[a]).map(|(x, y)| (x - y).abs() as f64).fold(0f64, f64::max);
            d.max_box_px_all = d.max_box_px_all.max(box_px);
            d.max_score_abs = d.max_score_abs.max((r.scores[a] - c.scores[a]).abs() as f64);
            if any_above && r.scores[a] < threshold {
                continue;
            }
            d.anchors += 1;
            d.max_box_px = d.max_box_px.max(box_px);
            if let (Some(rk), Some(ck)) = (r.kps.get(a), c.kps.get(a)) {
                let k = rk.iter().zip(ck).map(|(x, y)| (x - y).abs() as f64).fold(0f64, f64::max);
                d.max_kps_px = d.max_kps_px.max(k);
            }
        }
    }
    let (r, c) = (face_count(reference, threshold), face_count(candidate, threshold));
    d.missed_faces = r.saturating_sub(c);
    d.extra_faces = c.saturating_sub(r);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(h: usize, w: usize, shift: f32) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (k, kind) in [(1usize, "score"), (4, "bbox"), (10, "kps")] {
            for s in STRIDES {
                let rows = h.div_ceil(s) * w.div_ceil(s) * 2;
                let v: Vec<f32> =
                    (0..rows * k).map(|i| if k == 1 { (i % 7) as f32 / 7.0 } else { 1.0 + shift }).collect();
                out.push((format!("{kind}{s}"), Tensor::f32(&[rows, k], v)));
            }
        }
        out
    }

    #[test]
    fn decodes_distances_to_pixels() {
        let levels = decode(&outputs(64, 96, 0.0), 64, 96).unwrap();
        assert_eq!(levels.len(), 3);
        // Stride 8: 8×12 locations, 2 anchors; anchor 3 sits at location 1 → centre (8, 0).
        let l = &levels[0];
        assert_eq!(l.scores.len(), 8 * 12 * 2);
        assert_eq!(l.boxes[3], [0.0, -8.0, 16.0, 8.0]);
        assert_eq!(l.kps[3][0..2], [16.0, 8.0]);
        // Stride 32 on 64×96 → 2×3 locations.
        assert_eq!(levels[2].scores.len(), 12);

        let same = compare(&levels, &levels, 0.5).unwrap();
        assert_eq!(same.max_box_px, 0.0);
        assert!(same.anchors > 0);
        // Distances off by 0.1 stride: 0.8 px at stride 8, 3.2 px at stride 32.
        let moved = decode(&outputs(64, 96, 0.1), 64, 96).unwrap();
        let d = compare(&levels, &moved, 0.5).unwrap();
        assert!((d.max_box_px_all - 3.2).abs() < 1e-4, "{d:?}");
        assert!(decode(&outputs(64, 96, 0.0), 64, 64).is_err());
    }
}
