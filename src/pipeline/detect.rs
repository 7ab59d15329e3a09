//! SCRFD face detection: letterbox, run, decode the per-stride heads, threshold, NMS, scale back.
//!
//! SCRFD models with keypoints (det_10g, scrfd_500m_bnkps, …) have nine outputs in a fixed order:
//! scores for strides 8, 16, 32, then boxes for the same strides, then keypoints. Exports differ in
//! two ways this decoder absorbs: outputs are 3-D with a batch axis (`1×N×k`) or 2-D without it
//! (det_10g's `N×k`), and they are named (`score_8`) or numbered (`448`); they are read by position.
//! Each output row belongs to one anchor: feature-map locations in row-major order, `A` anchors per
//! location (2 for these models), centred at `(x·stride, y·stride)`. Boxes are distances from the
//! centre to the four sides and keypoints offsets from the centre, both in stride units.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::frame::{Frame, PixelFormat};
use super::net::{Feed, ImageLayout, Net};
use crate::onnx::Tensor;
use crate::runtime::{Runtime, SessionConfig};

/// Feature strides of the three heads, in output order.
pub const STRIDES: [usize; 3] = [8, 16, 32];
/// Input normalisation of SCRFD: `(x − 127.5) / 128` on RGB.
pub const MEAN: f32 = 127.5;
/// See [`MEAN`].
pub const STD: f32 = 128.0;
/// Input side used when the model leaves it dynamic (det_10g).
pub const DEFAULT_SIDE: usize = 640;

/// A detected face in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Face {
    /// Box `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Detection score in 0..1.
    pub score: f32,
    /// Left eye, right eye, nose tip, left and right mouth corner (image left/right), `[x, y]`.
    pub kps: [[f32; 2]; 5],
}

impl Face {
    /// Box area in pixels².
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }

    /// Box centre.
    pub fn centre(&self) -> [f32; 2] {
        [(self.bbox[0] + self.bbox[2]) * 0.5, (self.bbox[1] + self.bbox[3]) * 0.5]
    }
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Decoding settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DetectParams {
    /// Candidates scoring below are dropped (insightface uses 0.5).
    pub score_threshold: f32,
    /// A candidate overlapping a better one by more than this IoU is dropped (insightface: 0.4).
    pub nms_threshold: f32,
    /// Most candidates entering NMS (best first); bounds NMS on an untrained replica that fires everywhere.
    pub pre_nms: usize,
    /// Most faces returned (best first); 0 = no limit.
    pub max_faces: usize,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams { score_threshold: 0.5, nms_threshold: 0.4, pre_nms: 1000, max_faces: 0 }
    }
}

/// How a frame was fitted into the detector input: scaled to `scaled_w × scaled_h`, top-left, padded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Detector input size.
    pub input_w: usize,
    pub input_h: usize,
    /// Size of the scaled frame inside the input.
    pub scaled_w: usize,
    pub scaled_h: usize,
    /// Frame pixels per input pixel, per axis.
    pub fx: f32,
    pub fy: f32,
}

impl Letterbox {
    /// Fits `frame_w × frame_h` into `input_w × input_h` keeping the aspect ratio.
    pub fn fit(frame_w: u32, frame_h: u32, input_w: usize, input_h: usize) -> Letterbox {
        let s = (input_w as f32 / frame_w as f32).min(input_h as f32 / frame_h as f32);
        let scaled_w = ((frame_w as f32 * s).round() as usize).clamp(1, input_w);
        let scaled_h = ((frame_h as f32 * s).round() as usize).clamp(1, input_h);
        Letterbox {
            input_w,
            input_h,
            scaled_w,
            scaled_h,
            fx: frame_w as f32 / scaled_w as f32,
            fy: frame_h as f32 / scaled_h as f32,
        }
    }
}

/// Bilinear taps along one axis for resizing `src` samples to `dst` (pixel centres aligned, as
/// OpenCV's linear resize): first index and the weight of the second.
fn taps(src: usize, dst: usize) -> Vec<(usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|d| {
            let s = ((d as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
            let i = (s as usize).min(src.saturating_sub(2));
            (i, if src > 1 { s - i as f32 } else { 0.0 })
        })
        .collect()
}

/// The frame letterboxed into the detector input as a normalised RGB NCHW tensor body (bilinear
/// resize; the padding is black before normalisation, as in insightface).
pub fn letterbox_nchw(frame: &Frame, lb: &Letterbox, mean: f32, std: f32) -> Vec<f32> {
    let (iw, ih) = (lb.input_w, lb.input_h);
    let plane = iw * ih;
    let inv = 1.0 / std;
    let pad = (0.0 - mean) * inv;
    let mut out = vec![pad; 3 * plane];
    let xt = taps(frame.width as usize, lb.scaled_w);
    let yt = taps(frame.height as usize, lb.scaled_h);
    let stride = frame.stride();
    let order = match frame.format {
        PixelFormat::Rgb => [0usize, 1, 2],
        PixelFormat::Bgr => [2, 1, 0],
    };
    let two_rows = frame.height > 1;
    for (y, &(sy, wy)) in yt.iter().enumerate() {
        let r0 = &frame.data[sy * stride..(sy + 1) * stride];
        let r1 = if two_rows { &frame.data[(sy + 1) * stride..(sy + 2) * stride] } else { r0 };
        for (c, &ch) in order.iter().enumerate() {
            let dst = &mut out[c * plane + y * iw..c * plane + y * iw + lb.scaled_w];
            for (d, &(sx, wx)) in dst.iter_mut().zip(&xt) {
                let i0 = sx * 3 + ch;
                let i1 = if frame.width > 1 { i0 + 3 } else { i0 };
                let top = r0[i0] as f32 + (r0[i1] as f32 - r0[i0] as f32) * wx;
                let bot = r1[i0] as f32 + (r1[i1] as f32 - r1[i0] as f32) * wx;
                *d = (top + (bot - top) * wy - mean) * inv;
            }
        }
    }
    out
}

/// The frame letterboxed into the detector input as 8-bit NHWC pixels in channel order `order`, for
/// a fused-I/O detector that normalises inside the model (same taps as [`letterbox_nchw`], 8-bit
/// fixed-point weights, black padding).
pub fn letterbox_pixels(frame: &Frame, lb: &Letterbox, order: PixelFormat) -> Vec<u8> {
    let (iw, ih) = (lb.input_w, lb.input_h);
    let mut out = vec![0u8; iw * ih * 3];
    let fixed = |t: Vec<(usize, f32)>| -> Vec<(usize, u32)> {
        t.into_iter().map(|(i, w)| (i, (w * 256.0).round().clamp(0.0, 256.0) as u32)).collect()
    };
    let xt = fixed(taps(frame.width as usize, lb.scaled_w));
    let yt = fixed(taps(frame.height as usize, lb.scaled_h));
    let stride = frame.stride();
    let ch: [usize; 3] = if frame.format == order { [0, 1, 2] } else { [2, 1, 0] };
    let (two_rows, two_cols) = (frame.height > 1, frame.width > 1);
    for (y, &(sy, wy)) in yt.iter().enumerate() {
        let r0 = &frame.data[sy * stride..(sy + 1) * stride];
        let r1 = if two_rows { &frame.data[(sy + 1) * stride..(sy + 2) * stride] } else { r0 };
        let row = &mut out[y * iw * 3..(y * iw + lb.scaled_w) * 3];
        for (px, &(sx, wx)) in row.chunks_exact_mut(3).zip(&xt) {
            let i0 = sx * 3;
            let i1 = if two_cols { i0 + 3 } else { i0 };
            for (v, &c) in px.iter_mut().zip(&ch) {
                let top = r0[i0 + c] as u32 * (256 - wx) + r0[i1 + c] as u32 * wx;
                let bot = r1[i0 + c] as u32 * (256 - wx) + r1[i1 + c] as u32 * wx;
                *v = ((top * (256 - wy) + bot * wy + 32768) >> 16) as u8;
            }
        }
    }
    out
}

/// Rows of one head output: accepts `1×N×k` and `N×k`.
fn head_rows(t: &Tensor, k: usize, what: &str) -> Result<(Vec<f32>, usize)> {
    let n = match t.dims.as_slice() {
        [1, n, kk] if *kk == k => *n,
        [n, kk] if *kk == k => *n,
        other => bail!("{what}: expected shape 1×N×{k} or N×{k}, got {other:?}"),
    };
    Ok((t.to_f32s(), n))
}

/// Decodes the nine SCRFD outputs (in order: scores, boxes, keypoints, each for strides 8/16/32) for
/// an `input_w × input_h` input into faces in input pixels, thresholded and NMS-filtered, best first.
pub fn decode(outputs: &[Tensor], input_w: usize, input_h: usize, p: &DetectParams) -> Result<Vec<Face>> {
    decode_counting(outputs, input_w, input_h, p).map(|(faces, _)| faces)
}

/// [`decode`], also returning how many candidates were discarded for NaN or infinite values (a
/// broken model or export: such a box cannot be aligned or pasted, so it is no face).
pub fn decode_counting(
    outputs: &[Tensor],
    input_w: usize,
    input_h: usize,
    p: &DetectParams,
) -> Result<(Vec<Face>, usize)> {
    if outputs.len() != 9 {
        bail!(
            "expected the 9 outputs of an SCRFD detector with keypoints (scores, boxes, keypoints × strides 8/16/32), got {}",
            outputs.len()
        );
    }
    let mut cands: Vec<Face> = Vec::new();
    let mut rejected = 0;
    for (level, &stride) in STRIDES.iter().enumerate() {
        let (scores, n) = head_rows(&outputs[level], 1, &format!("score output of stride {stride}"))?;
        let (boxes, nb) = head_rows(&outputs[3 + level], 4, &format!("box output of stride {stride}"))?;
        let (kps, nk) = head_rows(&outputs[6 + level], 10, &format!("keypoint output of stride {stride}"))?;
        if nb != n || nk != n {
            bail!("stride {stride}: {n} scores, {nb} boxes and {nk} keypoint rows differ");
        }
        let fw = input_w.div_ceil(stride);
        let fh = input_h.div_ceil(stride);
        let locations = fw * fh;
        if n == 0 || n % locations != 0 {
            bail!(
                "stride {stride}: {n} rows is not a multiple of the {fh}×{fw} feature map of a {input_w}×{input_h} input"
            );
        }
        let anchors = n / locations;
        let s = stride as f32;
        for (i, &score) in scores.iter().enumerate() {
            let b = &boxes[i * 4..i * 4 + 4];
            let k = &kps[i * 10..i * 10 + 10];
            // NaN compares false, so it is tested apart: a non-finite score, box or keypoint rejects
            // the candidate (counted) whatever the score says.
            let finite = score.is_finite() && b.iter().chain(k).all(|v| v.is_finite());
            if !finite && (score.is_nan() || score >= p.score_threshold) {
                rejected += 1;
            }
            if !finite || score < p.score_threshold {
                continue;
            }
            let loc = i / anchors;
            let (cx, cy) = ((loc % fw) as f32 * s, (loc / fw) as f32 * s);
            let mut pts = [[0.0f32; 2]; 5];
            for (j, pt) in pts.iter_mut().enumerate() {
                *pt = [cx + k[2 * j] * s, cy + k[2 * j + 1] * s];
            }
            cands.push(Face { bbox: [cx - b[0] * s, cy - b[1] * s, cx + b[2] * s, cy + b[3] * s], score, kps: pts });
        }
    }
    Ok((nms(cands, p), rejected))
}

/// Greedy non-maximum suppression, best score first.
pub fn nms(mut cands: Vec<Face>, p: &DetectParams) -> Vec<Face> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    cands.truncate(p.pre_nms.max(1));
    let mut keep: Vec<Face> = Vec::new();
    for c in cands {
        if keep.iter().all(|k| iou(&k.bbox, &c.bbox) <= p.nms_threshold) {
            keep.push(c);
            if p.max_faces > 0 && keep.len() == p.max_faces {
                break;
            }
        }
    }
    keep
}

/// Maps faces from detector-input pixels back to frame pixels.
pub fn scale_back(faces: &mut [Face], lb: &Letterbox) {
    for f in faces {
        f.bbox = [f.bbox[0] * lb.fx, f.bbox[1] * lb.fy, f.bbox[2] * lb.fx, f.bbox[3] * lb.fy];
        for k in &mut f.kps {
            *k = [k[0] * lb.fx, k[1] * lb.fy];
        }
    }
}

/// One detection with the time of its parts.
#[derive(Debug, Clone)]
pub struct Detection {
    /// Faces in frame pixels, best first.
    pub faces: Vec<Face>,
    /// Letterbox and normalisation.
    pub prep: Duration,
    /// Inside ONNX Runtime.
    pub infer: Duration,
    /// Decoding, NMS, scaling back.
    pub post: Duration,
    /// Candidates above the score threshold (or with a NaN score) discarded for NaN or infinite
    /// values.
    pub rejected: usize,
}

/// A loaded SCRFD detector.
pub struct Detector {
    net: Net,
    /// Float NCHW (normalised here) or 8-bit pixels (a fused-I/O variant).
    layout: ImageLayout,
    /// Detector input width and height.
    pub input_w: usize,
    pub input_h: usize,
    /// Decoding settings.
    pub params: DetectParams,
}

impl Detector {
    /// Loads an SCRFD model. A dynamic input size becomes `side × side` ([`DEFAULT_SIDE`] when `None`).
    pub fn load(
        rt: &Runtime,
        path: &Path,
        cfg: &SessionConfig,
        io_binding: bool,
        side: Option<usize>,
    ) -> Result<Detector> {
        let probe = Net::load(rt, path, cfg, false, &HashMap::new())
            .with_context(|| format!("loading detector {}", path.display()))?;
        let shape = probe.input_shape(0).to_vec();
        if probe.inputs.len() != 1 || shape.len() != 4 {
            bail!("{}: an SCRFD detector has one 1×3×H×W input, found {:?}", path.display(), probe.inputs);
        }
        let side = side.unwrap_or(DEFAULT_SIDE);
        let dim = |d: i64| if d > 0 { d as usize } else { side };
        // A fused-I/O variant takes 1×H×W×3 pixels (SCRFD computes in RGB, like the other models).
        let layout = match probe.inputs[0].1 {
            ort::value::TensorElementType::Uint8 if shape[3] == 3 => {
                ImageLayout::Pixels(probe.pixel_order(0, PixelFormat::Rgb))
            }
            _ => ImageLayout::FloatNchw,
        };
        let (input_h, input_w) = match layout {
            ImageLayout::FloatNchw => (dim(shape[2]), dim(shape[3])),
            ImageLayout::Pixels(_) => (dim(shape[1]), dim(shape[2])),
        };
        let net = if io_binding {
            let dims = match layout {
                ImageLayout::FloatNchw => vec![1, 3, input_h as i64, input_w as i64],
                ImageLayout::Pixels(_) => vec![1, input_h as i64, input_w as i64, 3],
            };
            let shapes = HashMap::from([(probe.inputs[0].0.clone(), dims)]);
            drop(probe);
            Net::load(rt, path, cfg, true, &shapes)?
        } else {
            probe
        };
        if net.outputs.len() != 9 {
            bail!(
                "{}: has {} outputs; the pipeline needs an SCRFD detector with keypoints (9 outputs, e.g. det_10g)",
                path.display(),
                net.outputs.len()
            );
        }
        Ok(Detector { net, layout, input_w, input_h, params: DetectParams::default() })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.net.path
    }

    /// What loading the model found worth reporting.
    pub fn notes(&self) -> &[String] {
        &self.net.notes
    }

    /// How the detector takes its input.
    pub fn layout(&self) -> ImageLayout {
        self.layout
    }

    /// Detects faces in `frame`.
    pub fn detect(&mut self, frame: &Frame) -> Result<Detection> {
        let t0 = Instant::now();
        let lb = Letterbox::fit(frame.width, frame.height, self.input_w, self.input_h);
        let (h, w) = (self.input_h, self.input_w);
        let input = match self.layout {
            ImageLayout::FloatNchw => Feed::F32(vec![1, 3, h, w], letterbox_nchw(frame, &lb, MEAN, STD)),
            ImageLayout::Pixels(order) => Feed::U8(vec![1, h, w, 3], letterbox_pixels(frame, &lb, order)),
        };
        let prep = t0.elapsed();
        let (outputs, infer) = self.net.run(vec![input])?;
        let t1 = Instant::now();
        let (mut faces, rejected) = decode_counting(&outputs, self.input_w, self.input_h, &self.params)
            .with_context(|| format!("decoding the outputs of {}", self.net.path.display()))?;
        scale_back(&mut faces, &lb);
        Ok(Detection { faces, prep, infer, post: t1.elapsed(), rejected })
    }
}
