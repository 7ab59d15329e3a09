//! The inputs an equivalence check runs: real photos where the model takes faces or frames
//! (face crops of `media/astronaut.png` at several boxes, mirrored; the whole frame letterboxed
//! for the detector) and seeded random ones, so both realistic activations and odd corners are
//! covered. The same case feeds both models; [`feed_tensor`] turns a case into each model's input
//! tensors (float NCHW normalised as the role expects, or raw 8-bit NHWC pixels for fused-I/O
//! models).

use anyhow::{bail, Context, Result};
use image::imageops;
use image::RgbImage;

use crate::bench::inputs::{default_side, normalization, to_nchw, Photo};
use crate::models::Role;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shape::declared;
use crate::onnx::{Model, Tensor, TensorData};
use crate::rewrite::fuse_io::{preprocess_reference, InputSpec};
use crate::util::rng::Rng;

/// One graph input as the check feeds it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputDesc {
    pub name: String,
    /// ONNX element type.
    pub dtype: i32,
    /// Fully resolved dims.
    pub dims: Vec<usize>,
}

impl InputDesc {
    /// `(n, h, w)` when this is an image input: float N×3×H×W or uint8 N×H×W×3.
    pub fn image_nhw(&self) -> Option<(usize, usize, usize)> {
        match self.dims.as_slice() {
            [n, h, w, 3] if self.dtype == DataType::Uint8 as i32 => Some((*n, *h, *w)),
            [n, 3, h, w] if self.dtype != DataType::Uint8 as i32 => Some((*n, *h, *w)),
            _ => None,
        }
    }
}

/// The graph inputs of `model` with symbolic dims resolved from `fixed` (name → dims), else the
/// role's usual image side (batch 1, other unknown dims 1).
pub fn describe_inputs(
    model: &Model,
    role: Option<Role>,
    fixed: &std::collections::BTreeMap<String, Vec<i64>>,
) -> Result<Vec<InputDesc>> {
    let g = model.graph();
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut out = Vec::new();
    for v in g.input.iter().filter(|v| !inits.contains(v.name.as_str())) {
        let (dtype, shape) = declared(v);
        let shape = shape.with_context(|| format!("input '{}' declares no shape; give --input-shape", v.name))?;
        let dims: Vec<usize> = match fixed.get(&v.name) {
            Some(f) => {
                if f.len() != shape.len() {
                    bail!("input '{}' has rank {}, the fixed shape {f:?} has rank {}", v.name, shape.len(), f.len());
                }
                f.iter().map(|&d| d as usize).collect()
            }
            None => {
                let side = role.map(default_side).unwrap_or(224);
                let image_like = shape.len() == 4;
                shape
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d {
                        Some(d) => *d as usize,
                        None if image_like && i >= 1 => side,
                        None => 1,
                    })
                    .collect()
            }
        };
        out.push(InputDesc { name: v.name.clone(), dtype, dims });
    }
    Ok(out)
}

/// What a case feeds one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// An RGB image, `h`×`w`, row-major pixels (repeated over the batch).
    Pixels { h: usize, w: usize, rgb: Vec<u8> },
    /// Plain values in the input's shape (identity vectors, random tensors).
    Values(Vec<f32>),
}

/// One equivalence input: a label and a feed per input name.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// e.g. `face crop (shifted)` or `random #2`.
    pub label: String,
    pub feeds: Vec<(String, Feed)>,
}

/// True for roles whose image input is a face crop (the detector takes whole frames).
fn takes_face(role: Role) -> bool {
    role != Role::Detector
}

/// The photo variant `j` as (label, image) sized `h`×`w`: face crops at several boxes for face
/// models, the whole frame (or a part of it) letterboxed for the detector.
fn photo_image(photo: &Photo, role: Role, j: usize, h: usize, w: usize) -> (String, RgbImage) {
    let (iw, ih) = photo.rgb.dimensions();
    let (fx, fy, fs) = photo.face;
    let clamp_box = |x: i64, y: i64, s: i64| -> (u32, u32, u32) {
        let s = s.clamp(8, iw.min(ih) as i64);
        let x = x.clamp(0, iw as i64 - s);
        let y = y.clamp(0, ih as i64 - s);
        (x as u32, y as u32, s as u32)
    };
    let mirrored = || Photo { rgb: imageops::flip_horizontal(&photo.rgb), face: (iw - fx - fs, fy, fs) };
    let (fx, fy, fs) = (fx as i64, fy as i64, fs as i64);
    let variant = j % 4;
    if takes_face(role) {
        let (label, p) = match variant {
            0 => ("face crop", Photo { rgb: photo.rgb.clone(), face: photo.face }),
            1 => ("face crop (mirrored)", mirrored()),
            2 => ("face crop (shifted)", Photo { rgb: photo.rgb.clone(), face: clamp_box(fx + 12, fy - 9, fs) }),
            _ => (
                "face crop (zoomed out)",
                Photo { rgb: photo.rgb.clone(), face: clamp_box(fx - fs / 6, fy - fs / 6, fs + fs / 3) },
            ),
        };
        (label.into(), p.face_crop(h as u32, w as u32))
    } else {
        let (label, p) = match variant {
            0 => ("frame", Photo { rgb: photo.rgb.clone(), face: photo.face }),
            1 => ("frame (mirrored)", mirrored()),
            2 => {
                // A closer shot: the region around the face, so the face is large in the frame.
                let (x, y, s) = clamp_box(fx - fs, fy - fs / 2, fs * 3);
                let rgb = imageops::crop_imm(&photo.rgb, x, y, s, s).to_image();
                ("frame (close-up)", Photo { rgb, face: (0, 0, 1) })
            }
            _ => {
                let rgb = imageops::crop_imm(&photo.rgb, 0, 0, iw, ih * 2 / 3).to_image();
                ("frame (wide)", Photo { rgb, face: (0, 0, 1) })
            }
        };
        (label.into(), p.letterbox(h as u32, w as u32))
    }
}

/// `n` cases for a model with inputs `inputs`: the first half from `photo` when there is one and
/// the role takes images, the rest seeded random (uniform pixels; unit-length identity vectors
/// for `1×d` inputs with d ≥ 64; uniform [0, 1) otherwise).
pub fn make_cases(role: Option<Role>, inputs: &[InputDesc], n: usize, seed: u64, photo: Option<&Photo>) -> Vec<Case> {
    let n_real = match (photo, role) {
        (Some(_), Some(_)) if inputs.iter().any(|d| d.image_nhw().is_some()) => n / 2,
        _ => 0,
    };
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let real = i < n_real;
            let mut label = format!("random #{}", (i + 1).saturating_sub(n_real));
            let feeds = inputs
                .iter()
                .map(|d| {
                    let feed = match d.image_nhw() {
                        Some((_, h, w)) if real => {
                            let (l, img) =
                                photo_image(photo.expect("real cases need the photo"), role.expect("role"), i, h, w);
                            label = l;
                            Feed::Pixels { h, w, rgb: img.into_raw() }
                        }
                        Some((_, h, w)) => {
                            Feed::Pixels { h, w, rgb: (0..h * w * 3).map(|_| (rng.next_u64() >> 56) as u8).collect() }
                        }
                        None => values_feed(d, &mut rng),
                    };
                    (d.name.clone(), feed)
                })
                .collect();
            Case { label, feeds }
        })
        .collect()
}

/// The feed of a non-image input: unit-length seeded normal vectors for `1×d` (d ≥ 64) inputs
/// (identity embeddings), seeded uniform [0, 1) otherwise.
pub fn values_feed(d: &InputDesc, rng: &mut Rng) -> Feed {
    let numel: usize = d.dims.iter().product();
    if d.dims.len() == 2 && d.dims[0] == 1 && d.dims[1] >= 64 {
        let v: Vec<f32> = (0..numel).map(|_| rng.normal()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        Feed::Values(v.into_iter().map(|x| x / norm).collect())
    } else {
        Feed::Values(rng.vec(numel, 0.0, 1.0))
    }
}

/// The tensor `feed` becomes for input `d`. Pixels go in raw for a uint8 NHWC input; for a float
/// NCHW input they are normalised with `fused` when the other model of the pair takes them raw
/// (so both see the same numbers as the fused prologue), else with the role's normalisation.
pub fn feed_tensor(d: &InputDesc, feed: &Feed, role: Option<Role>, fused: Option<&InputSpec>) -> Result<Tensor> {
    let t = match (feed, d.image_nhw()) {
        (Feed::Pixels { h, w, rgb }, Some((n, ih, iw))) if (*h, *w) == (ih, iw) => {
            if d.dtype == DataType::Uint8 as i32 {
                Tensor { dims: vec![n, ih, iw, 3], data: TensorData::U8(rgb.repeat(n)) }
            } else if let Some(spec) = fused {
                preprocess_reference(&rgb.repeat(n), n, ih, iw, spec)
            } else {
                let (mean, std) = role.map(normalization).unwrap_or((127.5, 127.5));
                let img = RgbImage::from_raw(*w as u32, *h as u32, rgb.clone()).context("pixel buffer size")?;
                Tensor::f32(&[n, 3, ih, iw], to_nchw(&img, mean, std).repeat(n))
            }
        }
        (Feed::Values(v), None) if v.len() == d.dims.iter().product::<usize>() => Tensor::f32(&d.dims, v.clone()),
        _ => bail!("input '{}' {:?}: the case's feed does not fit it", d.name, d.dims),
    };
    Ok(match d.dtype {
        x if x == DataType::Float as i32 || x == DataType::Uint8 as i32 => t,
        x if x == DataType::Float16 as i32 => Tensor {
            dims: t.dims.clone(),
            data: TensorData::F16(t.to_f32s().into_iter().map(half::f16::from_f32).collect()),
        },
        other => bail!(
            "input '{}' has element type {}, which the equivalence check cannot feed",
            d.name,
            crate::onnx::summary::dtype_name(other)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::GraphBuilder;

    #[test]
    fn cases_mix_real_crops_and_seeded_random() {
        let mut b = GraphBuilder::new("m");
        let x = b.input_f32("target", &[1, 3, 32, 32]);
        let s = b.input_f32("source", &[1, 512]);
        let y = b.op("Identity", &[&x], &[]);
        let z = b.op("Identity", &[&s], &[]);
        b.output_f32(&y, &[1, 3, 32, 32]);
        b.output_f32(&z, &[1, 512]);
        let m = b.build(13);
        let d = describe_inputs(&m, Some(Role::Swapper), &Default::default()).unwrap();
        assert_eq!(d[0].image_nhw(), Some((1, 32, 32)));
        let photo = Photo::astronaut().unwrap();
        let cases = make_cases(Some(Role::Swapper), &d, 8, 7, Some(&photo));
        assert_eq!(cases.len(), 8);
        let labels: Vec<&str> = cases.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels[..4], ["face crop", "face crop (mirrored)", "face crop (shifted)", "face crop (zoomed out)"]);
        assert!(labels[4..].iter().all(|l| l.starts_with("random")));
        // Every case differs; the same seed reproduces them.
        for i in 1..8 {
            assert_ne!(cases[i].feeds[0], cases[i - 1].feeds[0]);
        }
        assert_eq!(cases, make_cases(Some(Role::Swapper), &d, 8, 7, Some(&photo)));
        let t = feed_tensor(&d[0], &cases[0].feeds[0].1, Some(Role::Swapper), None).unwrap();
        assert_eq!(t.dims, vec![1, 3, 32, 32]);
        let src = feed_tensor(&d[1], &cases[0].feeds[1].1, Some(Role::Swapper), None).unwrap();
        assert!((src.to_f32s().iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        // Fused: raw pixels for the u8 model, the fused prologue's numbers for the float one.
        let u8_desc = InputDesc { name: "target".into(), dtype: DataType::Uint8 as i32, dims: vec![1, 32, 32, 3] };
        let raw = feed_tensor(&u8_desc, &cases[0].feeds[0].1, Some(Role::Swapper), None).unwrap();
        assert_eq!(raw.dims, vec![1, 32, 32, 3]);
        let spec = InputSpec { name: "target".into(), mean: [0.0; 3], std: [255.0; 3], swap_channels: true };
        let pre = feed_tensor(&d[0], &cases[0].feeds[0].1, Some(Role::Swapper), Some(&spec)).unwrap();
        let TensorData::U8(px) = &raw.data else { panic!() };
        assert_eq!(pre.to_f32s()[0], px[2] as f32 * (1.0 / 255.0));
    }

    #[test]
    fn detector_gets_frames_and_symbolic_dims_resolve() {
        let mut b = GraphBuilder::new("m");
        let x = b.input("input.1", DataType::Float, &[1.into(), 3.into(), "h".into(), "w".into()]);
        let y = b.op("Identity", &[&x], &[]);
        b.output_f32(&y, &[1, 3, 64, 64]);
        let m = b.build(13);
        let fixed = [("input.1".to_string(), vec![1, 3, 64, 96])].into_iter().collect();
        let d = describe_inputs(&m, Some(Role::Detector), &fixed).unwrap();
        assert_eq!(d[0].dims, vec![1, 3, 64, 96]);
        let d2 = describe_inputs(&m, Some(Role::Detector), &Default::default()).unwrap();
        assert_eq!(d2[0].dims, vec![1, 3, 640, 640]);
        let photo = Photo::astronaut().unwrap();
        let cases = make_cases(Some(Role::Detector), &d, 8, 1, Some(&photo));
        assert!(cases[0].label.starts_with("frame"));
        let none = make_cases(Some(Role::Detector), &d, 8, 1, None);
        assert!(none.iter().all(|c| c.label.starts_with("random")));
    }
}
