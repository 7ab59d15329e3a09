//! Calibration for the `quantize` pass: the activation ranges of the float model on real face
//! crops.
//!
//! **The set** ([`calibration_set`]): the astronaut photo's face at 9 boxes — as is, moved
//! left/right/up/down by an eighth to a sixth of the face, scaled from 0.75× to 1.3×, mirrored —
//! as face crops for face models, and for the detector as synthetic frames (the region around the
//! face at zoom levels from 1.5× to 4× the face, letterboxed into the input, so the face moves
//! and changes size in the frame); plus 3 seeded random cases (uniform pixels), so the ranges also
//! cover the seeded inputs the quality check runs. The swapper's `source` gets seeded unit-length
//! identity vectors. Same photo and seed, same set: its sha256 ([`CalibrationSet::hash`]) is part
//! of the variant's cache key.
//!
//! **The method** ([`Method`]): per case and value, the 0.01st and 99.99th percentiles of the
//! values (`percentile`, the default), or their min and max (`minmax`); the range is the widest
//! over the cases. Percentiles drop the few extreme activations that would otherwise stretch an
//! 8-bit grid of 256 steps (min-max spends steps on values that almost never occur); taking the
//! widest range over the cases keeps every realistic input inside the grid. Measured on the full
//! swapper replica, see `docs/passes.md`.
//!
//! The ranges come from one ORT CPU session per batch of values (≤ 256 MB of activations per
//! run): a copy of the model with those values added as graph outputs.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Context, Result};
use image::imageops;
use serde::{Deserialize, Serialize};

use crate::bench::inputs::Photo;
use crate::models::Role;
use crate::onnx::builder::value_info;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::infer;
use crate::onnx::{Model, Tensor};
pub use crate::rewrite::quantize::Method;
use crate::rewrite::quantize::QuantizeOptions;
use crate::runtime::session::ModelSource;
use crate::runtime::{Runtime, SessionConfig, SessionRunner};
use crate::util::hash::sha256_hex;
use crate::util::rng::Rng;
use crate::verify::inputs::{feed_tensor, Feed, InputDesc};

/// Seed of the calibration set's random cases and identity vectors (not the check's seed, so the
/// quality check runs on inputs calibration has not seen).
pub const CALIBRATION_SEED: u64 = 0x18_ca1b;
/// Seeded random cases in the set.
const RANDOM_CASES: usize = 3;
/// Bytes of activations exposed per calibration run.
const BATCH_BYTES: u64 = 256 << 20;

/// The calibration inputs of one model.
#[derive(Debug, Clone)]
pub struct CalibrationSet {
    /// One label per case (`face crop (moved left)`, `frame (face 2.5×)`, `random #1`).
    pub labels: Vec<String>,
    /// The feeds of each case, by input name.
    pub cases: Vec<Vec<(String, Tensor)>>,
    /// sha256 of the labels and every input tensor's bytes.
    pub hash: String,
}

/// What the sidecar records about calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    #[serde(flatten)]
    pub method: Method,
    /// sha256 of the calibration set (part of the variant's cache key).
    pub set_sha256: String,
    pub cases: Vec<String>,
    /// Values whose range was measured.
    pub values: usize,
    pub seconds: f64,
}

/// Face boxes relative to the photo's face: (label, dx, dy, scale) in face sides, and mirrored.
const BOXES: [(&str, f32, f32, f32, bool); 9] = [
    ("as is", 0.0, 0.0, 1.0, false),
    ("moved left", -0.15, 0.0, 1.0, false),
    ("moved right", 0.15, 0.05, 1.0, false),
    ("moved up", 0.0, -0.12, 1.05, false),
    ("moved down", 0.05, 0.15, 0.95, false),
    ("scaled 0.75×", 0.0, 0.0, 0.75, false),
    ("scaled 1.3×", 0.0, 0.0, 1.3, false),
    ("mirrored", 0.0, 0.0, 1.0, true),
    ("mirrored, moved and scaled 1.15×", 0.1, -0.05, 1.15, true),
];

/// The photo with its face box moved by (`dx`, `dy`) face sides, scaled by `scale` (about its
/// centre), optionally mirrored.
fn moved(photo: &Photo, dx: f32, dy: f32, scale: f32, mirror: bool) -> Photo {
    let (iw, ih) = photo.rgb.dimensions();
    let (fx, fy, fs) = photo.face;
    let (rgb, fx) =
        if mirror { (imageops::flip_horizontal(&photo.rgb), iw - fx - fs) } else { (photo.rgb.clone(), fx) };
    let s = ((fs as f32 * scale).round() as u32).clamp(8, iw.min(ih));
    let cx = fx as f32 + fs as f32 * (0.5 + dx);
    let cy = fy as f32 + fs as f32 * (0.5 + dy);
    let x = (cx - s as f32 / 2.0).round().clamp(0.0, (iw - s) as f32) as u32;
    let y = (cy - s as f32 / 2.0).round().clamp(0.0, (ih - s) as f32) as u32;
    Photo { rgb, face: (x, y, s) }
}

/// A synthetic detector frame: the region `zoom` face sides wide around the (moved) face,
/// letterboxed into `h`×`w`, so the face's size and place in the frame change with `zoom`.
fn frame(p: &Photo, zoom: f32, h: usize, w: usize) -> image::RgbImage {
    let (iw, ih) = p.rgb.dimensions();
    let (fx, fy, fs) = p.face;
    let side = ((fs as f32 * zoom) as u32).clamp(16, iw.min(ih));
    let x = (fx + fs / 2).saturating_sub(side / 3).min(iw - side);
    let y = (fy + fs / 2).saturating_sub(side / 2).min(ih - side);
    let region = imageops::crop_imm(&p.rgb, x, y, side, side).to_image();
    Photo { rgb: region, face: (0, 0, 1) }.letterbox(h as u32, w as u32)
}

/// The calibration set for a `role` model with inputs `inputs` (see the module docs). Without a
/// photo, or for a model without image inputs, only seeded cases.
pub fn calibration_set(role: Role, inputs: &[InputDesc], photo: Option<&Photo>) -> Result<CalibrationSet> {
    let mut rng = Rng::new(CALIBRATION_SEED);
    let images = inputs.iter().any(|d| d.image_nhw().is_some());
    let n_real = if photo.is_some() && images { BOXES.len() } else { 0 };
    let mut labels = Vec::new();
    let mut cases = Vec::new();
    for i in 0..n_real + RANDOM_CASES {
        let mut label = format!("random #{}", (i + 1).saturating_sub(n_real));
        let mut feeds = Vec::new();
        for d in inputs {
            let real = photo.zip(BOXES.get(i)).filter(|_| i < n_real);
            let feed = match (d.image_nhw(), real) {
                (Some((_, h, w)), Some((photo, &(name, dx, dy, scale, mirror)))) => {
                    let p = moved(photo, dx, dy, scale, mirror);
                    let img = if role == Role::Detector {
                        let zoom = 1.5 + 2.5 * i as f32 / (BOXES.len() - 1) as f32;
                        label = format!("frame (face {name}, region {zoom:.2}× the face)");
                        frame(&p, zoom, h, w)
                    } else {
                        label = format!("face crop ({name})");
                        p.face_crop(h as u32, w as u32)
                    };
                    Feed::Pixels { h, w, rgb: img.into_raw() }
                }
                (Some((_, h, w)), None) => {
                    Feed::Pixels { h, w, rgb: (0..h * w * 3).map(|_| (rng.next_u64() >> 56) as u8).collect() }
                }
                (None, _) => crate::verify::inputs::values_feed(d, &mut rng),
            };
            feeds.push((d.name.clone(), feed_tensor(d, &feed, Some(role), None)?));
        }
        labels.push(label);
        cases.push(feeds);
    }
    let mut bytes = Vec::new();
    for (label, feeds) in labels.iter().zip(&cases) {
        bytes.extend_from_slice(label.as_bytes());
        for (name, t) in feeds {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend(t.dims.iter().flat_map(|d| (*d as u64).to_le_bytes()));
            bytes.extend(t.to_f32s().iter().flat_map(|x| x.to_le_bytes()));
        }
    }
    Ok(CalibrationSet { labels, cases, hash: sha256_hex(&bytes) })
}

/// The float model's input descriptions from fixed shapes (the recipe's `input_shapes`): every
/// int8 recipe role lists all its inputs, so the set is known before the model is loaded.
pub fn inputs_from_shapes(shapes: &BTreeMap<String, Vec<i64>>) -> Vec<InputDesc> {
    shapes
        .iter()
        .map(|(name, dims)| InputDesc {
            name: name.clone(),
            dtype: DataType::Float as i32,
            dims: dims.iter().map(|&d| d.max(1) as usize).collect(),
        })
        .collect()
}

/// The values whose ranges the `quantize` pass with `opts` would read: input 0 and output 0 of
/// every node of a quantized op type (not blocked), graph inputs included, initializers not.
pub fn values_to_calibrate(model: &Model, opts: &QuantizeOptions) -> Vec<String> {
    let g = model.graph();
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in g.node.iter().filter(|n| opts.ops.contains(&n.op_type) && !opts.block.contains(&n.op_type)) {
        for v in [n.input.first(), n.output.first()].into_iter().flatten() {
            if !v.is_empty() && !inits.contains(v.as_str()) && seen.insert(v.clone()) {
                out.push(v.clone());
            }
        }
    }
    out
}

/// The (lo, hi) of `x` under `method`.
fn range_of(x: &mut Vec<f32>, method: Method) -> (f32, f32) {
    x.retain(|v| v.is_finite());
    if x.is_empty() {
        return (0.0, 0.0);
    }
    match method {
        Method::Minmax => x.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v))),
        Method::Percentile { percentile } => {
            let n = x.len();
            let k_hi = (((percentile / 100.0) * (n - 1) as f64).round() as usize).min(n - 1);
            let k_lo = n - 1 - k_hi;
            let hi = *x.select_nth_unstable_by(k_hi, f32::total_cmp).1;
            let lo = *x.select_nth_unstable_by(k_lo, f32::total_cmp).1;
            (lo, hi)
        }
    }
}

/// Runs `model` on every case of `set` with `values` exposed as outputs (in batches of bounded
/// size) and returns each value's range under `method`: the widest over the cases.
pub fn collect_ranges(
    rt: &Runtime,
    model: &Model,
    values: &[String],
    set: &CalibrationSet,
    method: Method,
    threads: usize,
) -> Result<BTreeMap<String, [f32; 2]>> {
    if let Method::Percentile { percentile } = method {
        if !(50.0..=100.0).contains(&percentile) {
            bail!("calibration percentile {percentile} must be within 50..100");
        }
    }
    let shapes: HashMap<String, Vec<i64>> = set
        .cases
        .first()
        .map(|c| c.iter().map(|(n, t)| (n.clone(), t.dims.iter().map(|&d| d as i64).collect())).collect())
        .unwrap_or_default();
    let info = infer(model, &shapes).unwrap_or_default();
    let bytes_of = |v: &str| info.get(v).and_then(|f| f.numel()).map(|n| n.max(1) as u64 * 4).unwrap_or(4 << 20);
    let cfg = SessionConfig::cpu(threads);
    let mut ranges: BTreeMap<String, [f32; 2]> = BTreeMap::new();
    let mut widen = |name: String, t: &Tensor| {
        let (lo, hi) = range_of(&mut t.to_f32s(), method);
        let r = ranges.entry(name).or_insert([lo, hi]);
        *r = [r[0].min(lo), r[1].max(hi)];
    };
    // Graph inputs: straight from the feeds (ORT is not asked to echo an input as an output).
    for feeds in &set.cases {
        for (name, t) in feeds.iter().filter(|(n, _)| values.contains(n)) {
            widen(name.clone(), t);
        }
    }
    let fed: HashSet<&str> = set.cases.iter().flatten().map(|(n, _)| n.as_str()).collect();
    let values: Vec<String> = values.iter().filter(|v| !fed.contains(v.as_str())).cloned().collect();
    let mut start = 0;
    while start < values.len() {
        let (mut end, mut budget) = (start, 0u64);
        while end < values.len() && (end == start || budget + bytes_of(&values[end]) <= BATCH_BYTES) {
            budget += bytes_of(&values[end]);
            end += 1;
        }
        let mut m = model.clone();
        let existing: HashSet<String> = m.graph().output.iter().map(|o| o.name.clone()).collect();
        for v in values[start..end].iter().filter(|v| !existing.contains(*v)) {
            m.graph_mut().output.push(value_info(v, DataType::Float, None));
        }
        let bytes = m.to_bytes();
        let mut s = SessionRunner::new(rt, ModelSource::Bytes(&bytes), &cfg)
            .context("ONNX Runtime cannot load the model with calibration outputs")?;
        for (label, feeds) in set.labels.iter().zip(&set.cases) {
            let outs = s.run(feeds).with_context(|| format!("calibration run on {label}"))?;
            for (name, t) in outs.into_iter().filter(|(n, _)| values[start..end].contains(n)) {
                widen(name, &t);
            }
        }
        start = end;
    }
    Ok(ranges)
}

/// A recipe's calibration for one model, worked out before the model is loaded: which pass
/// quantizes, its options, and the calibration set (whose hash joins the cache key).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Position of the `quantize` pass in the recipe.
    pub pass: usize,
    pub options: QuantizeOptions,
    pub set: CalibrationSet,
}

/// The calibration a `recipe` needs for a `role` model with fixed input shapes `shapes`: `None`
/// when the recipe has no `quantize` pass for the role.
pub fn prepare(
    recipe: &crate::rewrite::recipe::Recipe,
    role: Option<Role>,
    shapes: &BTreeMap<String, Vec<i64>>,
    photo: Option<&Photo>,
) -> Result<Option<Prepared>> {
    let run = recipe.passes_for(role);
    let Some(pass) = recipe.spec.passes.iter().position(|p| p.name.get_ref() == "quantize").filter(|i| run.contains(i))
    else {
        return Ok(None);
    };
    let Some(role) = role else {
        bail!("the {} recipe calibrates on face crops and needs the model's role (give --role)", recipe.target());
    };
    if recipe.model(Some(role)).skip.is_some() {
        return Ok(None);
    }
    if shapes.is_empty() {
        bail!(
            "the {} recipe lists no input_shapes for {} models: calibration needs them",
            recipe.target(),
            role.name()
        );
    }
    let options = QuantizeOptions::from_table(&recipe.options_for(pass, Some(role)))
        .with_context(|| format!("{}: quantize options for {} models", recipe.source, role.name()))?;
    let set = calibration_set(role, &inputs_from_shapes(shapes), photo)?;
    Ok(Some(Prepared { pass, options, set }))
}

/// The recipe key with the calibration set's hash folded in.
pub fn keyed(recipe_key: &str, prepared: Option<&Prepared>) -> String {
    match prepared {
        Some(p) => sha256_hex(format!("{recipe_key}+calibration:{}", p.set.hash).as_bytes()),
        None => recipe_key.to_string(),
    }
}

/// Runs the calibration of `prepared` on `model` and returns the ranges as the pass's `ranges`
/// option, with the record for the sidecar.
pub fn calibrate(
    rt: &Runtime,
    model: &Model,
    prepared: &Prepared,
    threads: usize,
) -> Result<(toml::Value, CalibrationRecord)> {
    let clock = std::time::Instant::now();
    let values = values_to_calibrate(model, &prepared.options);
    let method = prepared.options.calibration;
    let ranges = collect_ranges(rt, model, &values, &prepared.set, method, threads)?;
    let table: toml::Table = ranges
        .iter()
        .map(|(k, [lo, hi])| (k.clone(), toml::Value::Array(vec![(*lo as f64).into(), (*hi as f64).into()])))
        .collect();
    let record = CalibrationRecord {
        method,
        set_sha256: prepared.set.hash.clone(),
        cases: prepared.set.labels.clone(),
        values: ranges.len(),
        seconds: clock.elapsed().as_secs_f64(),
    };
    Ok((toml::Value::Table(table), record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_drop_outliers_minmax_keeps_them() {
        let mut x: Vec<f32> = (0..10_001).map(|i| i as f32 / 10_000.0).collect();
        x[5] = 1000.0;
        let (lo, hi) = range_of(&mut x.clone(), Method::Minmax);
        assert_eq!((lo, hi), (0.0, 1000.0));
        let (lo, hi) = range_of(&mut x, Method::Percentile { percentile: 99.9 });
        assert!(hi < 1.0 && hi > 0.99 && lo < 0.01, "{lo} {hi}");
    }

    #[test]
    fn the_set_is_deterministic_and_moves_the_face() {
        let photo = Photo::astronaut().unwrap();
        let shapes = [("target".to_string(), vec![1, 3, 32, 32]), ("source".to_string(), vec![1, 512])].into();
        let d = inputs_from_shapes(&shapes);
        let a = calibration_set(Role::Swapper, &d, Some(&photo)).unwrap();
        let b = calibration_set(Role::Swapper, &d, Some(&photo)).unwrap();
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.labels.len(), BOXES.len() + RANDOM_CASES);
        assert_eq!(a.labels[0], "face crop (as is)");
        assert!(a.labels.last().unwrap().starts_with("random"));
        // Every real case shows a different crop.
        let crops: HashSet<Vec<u32>> = a.cases[..BOXES.len()]
            .iter()
            .map(|c| c.iter().find(|(n, _)| n == "target").unwrap().1.to_f32s().iter().map(|x| x.to_bits()).collect())
            .collect();
        assert_eq!(crops.len(), BOXES.len());
        let det = calibration_set(
            Role::Detector,
            &inputs_from_shapes(&[("input.1".into(), vec![1, 3, 64, 64])].into()),
            Some(&photo),
        )
        .unwrap();
        assert!(det.labels[0].starts_with("frame (face as is"));
        assert_ne!(det.hash, a.hash);
        let seeded = calibration_set(Role::Swapper, &d, None).unwrap();
        assert_eq!(seeded.labels.len(), RANDOM_CASES);
    }
}
