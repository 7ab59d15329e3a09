//! The model stages after detection: recognise (the source identity, once), swap, enhance (with a
//! temporal cache), and 106-point landmarks (only when a feature needs them).
//!
//! Pre- and post-processing follow insightface and GFPGAN: the swapper takes the 128 crop as RGB in
//! 0..1 and a latent `normalise(normalise(embedding) · emap)` where `emap` is the swapper file's last
//! initializer (no node reads it); ArcFace takes the 112 crop as `(x − 127.5) / 127.5`; GFPGAN takes
//! the FFHQ-aligned 512 crop in −1..1 and returns −1..1.
//!
//! A fused-I/O variant (`_cuda`, made by the `fuse-io` pass) takes the aligned crop as 8-bit NHWC
//! pixels and returns 8-bit pixels: the crop is warped straight into the channel order it wants
//! and its output pasted as is, so no float tensor is built or read on the CPU.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::align::{arcface_template, umeyama, warp_affine_as, Affine, FFHQ_512};
use super::detect::Face;
use super::frame::{from_nchw, to_nchw, Frame, PixelFormat};
use super::net::{Feed, ImageLayout, Net};
use crate::onnx::{Model, Tensor, TensorData};
use crate::runtime::{Runtime, SessionConfig};

/// Scales a vector to unit length (unchanged when it is all zeros).
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The channel order every model the pipeline runs computes in.
const MODEL_ORDER: PixelFormat = PixelFormat::Rgb;

/// How one model takes its image and returns its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageIo {
    /// Crop side.
    pub side: u32,
    /// The image input.
    pub input: ImageLayout,
    /// The first output (an image for the swapper and enhancer).
    pub output: ImageLayout,
}

impl ImageIo {
    fn of(net: &Net, input: usize) -> Result<ImageIo> {
        let (layout, side) = net.image_input(input, MODEL_ORDER)?;
        Ok(ImageIo { side, input: layout, output: net.image_output(0, MODEL_ORDER) })
    }

    /// The channel order crops are cut in.
    fn crop_format(&self) -> PixelFormat {
        match self.input {
            ImageLayout::FloatNchw => MODEL_ORDER,
            ImageLayout::Pixels(order) => order,
        }
    }

    /// The input tensor for `crop`: `(x − mean) / std` as float NCHW, or the pixels themselves.
    fn feed(&self, crop: Frame, mean: f32, std: f32) -> Feed {
        let s = self.side as usize;
        match self.input {
            ImageLayout::FloatNchw => Feed::F32(vec![1, 3, s, s], to_nchw(&crop, mean, std)),
            ImageLayout::Pixels(_) => Feed::U8(vec![1, s, s, 3], crop.data),
        }
    }

    /// The image in output `t`: float NCHW as `y · scale + offset`, or 8-bit pixels as they are.
    /// The flag is true when a float output had NaN or infinite values (an 8-bit one cannot tell).
    fn image(&self, t: Option<Tensor>, scale: f32, offset: f32, what: &str) -> Result<(Frame, bool)> {
        let t = t.with_context(|| format!("the {what} returned no output"))?;
        match (self.output, t.data) {
            (ImageLayout::Pixels(order), TensorData::U8(px)) => {
                let s = self.side as usize;
                if t.dims != [1, s, s, 3] {
                    bail!("the {what} returned {:?} pixels, expected [1, {s}, {s}, 3]", t.dims);
                }
                Ok((Frame::from_raw(self.side, self.side, order, px)?, false))
            }
            (_, data) => {
                let y = Tensor { dims: t.dims, data }.to_f32s();
                let rejected = !y.iter().all(|v| v.is_finite());
                let crop =
                    from_nchw(&y, self.side, self.side, scale, offset).with_context(|| format!("{what} output"))?;
                Ok((crop, rejected))
            }
        }
    }
}

fn load(rt: &Runtime, path: &Path, cfg: &SessionConfig, io_binding: bool, what: &str) -> Result<Net> {
    Net::load(rt, path, cfg, io_binding, &HashMap::new())
        .with_context(|| format!("loading the {what} {}", path.display()))
}

/// A face crop ready for a model, with its alignment and the time spent making it.
pub struct Aligned {
    /// The RGB crop.
    pub crop: Frame,
    /// Frame pixels → crop pixels.
    pub m: Affine,
    pub took: Duration,
}

/// Aligns `face` onto `template` and cuts the `side` crop in channel order `format`.
pub fn align(frame: &Frame, face: &Face, template: &[[f32; 2]; 5], side: u32, format: PixelFormat) -> Result<Aligned> {
    let t = Instant::now();
    let m = umeyama(&face.kps, template)?;
    let crop = warp_affine_as(frame, &m, side, format)?;
    Ok(Aligned { crop, m, took: t.elapsed() })
}

/// ArcFace recogniser.
pub struct Recogniser {
    net: Net,
    io: ImageIo,
}

impl Recogniser {
    /// Loads an ArcFace model (`1×3×112×112` → `1×512`).
    pub fn load(rt: &Runtime, path: &Path, cfg: &SessionConfig, io_binding: bool) -> Result<Recogniser> {
        let net = load(rt, path, cfg, io_binding, "recogniser")?;
        let io = ImageIo::of(&net, 0)?;
        Ok(Recogniser { net, io })
    }

    /// What loading the model found worth reporting.
    pub fn notes(&self) -> &[String] {
        &self.net.notes
    }

    /// The normalised embedding of `face` in `frame`.
    pub fn embed(&mut self, frame: &Frame, face: &Face) -> Result<Vec<f32>> {
        let side = self.io.side;
        let a = align(frame, face, &arcface_template(side), side, self.io.crop_format())?;
        let (out, _) = self.net.run(vec![self.io.feed(a.crop, 127.5, 127.5)])?;
        let mut e = out.first().map(Tensor::to_f32s).unwrap_or_default();
        if e.is_empty() {
            bail!("{}: produced no embedding", self.net.path.display());
        }
        normalise(&mut e);
        if !e.iter().all(|v| v.is_finite()) {
            bail!("{}: the identity embedding has NaN or infinite values", self.net.path.display());
        }
        Ok(e)
    }
}

/// Result of swapping one face.
pub struct Swapped {
    /// The swapped face as a crop in the space of `m` (RGB, or BGR from a fused-I/O variant).
    pub crop: Frame,
    /// Frame pixels → crop pixels.
    pub m: Affine,
    /// Alignment (estimate + warp).
    pub align: Duration,
    /// Whole swap stage: tensor conversion, run, conversion back.
    pub swap: Duration,
    /// Inside ONNX Runtime.
    pub infer: Duration,
    /// The model's output had NaN or infinite values: `crop` is meaningless and must not be pasted.
    pub rejected: bool,
}

/// inswapper-style swapper with its identity map.
pub struct Swapper {
    net: Net,
    emap: Vec<f32>,
    latent_dim: usize,
    io: ImageIo,
    /// Input positions of the target image and the source latent.
    image_input: usize,
}

/// The last initializer of `path` as a square matrix: the swapper's `emap`.
pub fn read_emap(path: &Path) -> Result<(Vec<f32>, usize)> {
    let model = Model::load(path)?;
    let init = model
        .graph()
        .initializer
        .last()
        .with_context(|| format!("{}: has no initializers, so no emap", path.display()))?;
    let t = Tensor::from_proto(init).with_context(|| format!("{}: reading emap '{}'", path.display(), init.name))?;
    match t.dims.as_slice() {
        [a, b] if a == b => Ok((t.to_f32s(), *a)),
        other => bail!("{}: the last initializer '{}' is {other:?}, not the square emap", path.display(), init.name),
    }
}

impl Swapper {
    /// Loads the swapper and its emap.
    pub fn load(rt: &Runtime, path: &Path, cfg: &SessionConfig, io_binding: bool) -> Result<Swapper> {
        let net = load(rt, path, cfg, io_binding, "swapper")?;
        if net.inputs.len() != 2 {
            bail!(
                "{}: a swapper has two inputs (target image, source latent), found {}",
                path.display(),
                net.inputs.len()
            );
        }
        let image_input = net.inputs.iter().position(|(_, _, s)| s.len() == 4).context("swapper has no image input")?;
        let io = ImageIo::of(&net, image_input)?;
        let (emap, latent_dim) = read_emap(path)?;
        Ok(Swapper { net, emap, latent_dim, io, image_input })
    }

    /// Crop side.
    pub fn side(&self) -> u32 {
        self.io.side
    }

    /// How the model takes and returns its crop.
    pub fn io(&self) -> ImageIo {
        self.io
    }

    /// What loading the model found worth reporting.
    pub fn notes(&self) -> &[String] {
        &self.net.notes
    }

    /// The source latent: the normalised embedding times emap, normalised.
    pub fn latent(&self, embedding: &[f32]) -> Result<Vec<f32>> {
        let d = self.latent_dim;
        if embedding.len() != d {
            bail!("embedding has {} values, the swapper's emap is {d}×{d}", embedding.len());
        }
        let mut out = vec![0.0f32; d];
        for (i, &e) in embedding.iter().enumerate() {
            for (o, &w) in out.iter_mut().zip(&self.emap[i * d..(i + 1) * d]) {
                *o += e * w;
            }
        }
        normalise(&mut out);
        Ok(out)
    }

    /// Swaps `face` in `frame` to the identity `latent`.
    pub fn swap(&mut self, frame: &Frame, face: &Face, latent: &[f32]) -> Result<Swapped> {
        let side = self.io.side;
        let a = align(frame, face, &arcface_template(side), side, self.io.crop_format())?;
        let t = Instant::now();
        let image = self.io.feed(a.crop, 0.0, 255.0);
        let lat = Feed::F32(vec![1, latent.len()], latent.to_vec());
        let inputs = if self.image_input == 0 { vec![image, lat] } else { vec![lat, image] };
        let (out, infer) = self.net.run(inputs)?;
        let (crop, rejected) = self.io.image(out.into_iter().next(), 255.0, 0.0, "swapper")?;
        Ok(Swapped { crop, m: a.m, align: a.took, swap: t.elapsed(), infer, rejected })
    }
}

/// Result of enhancing one face.
pub struct Enhanced {
    /// The enhanced face as a 512 crop in the space of `m` (RGB, or BGR from a fused-I/O variant).
    pub crop: Frame,
    pub m: Affine,
    /// True when the model ran; false when the cached crop was reused.
    pub ran: bool,
    pub infer: Duration,
    /// The model's output had NaN or infinite values: `crop` must not be pasted (and is not cached).
    pub rejected: bool,
}

/// GFPGAN enhancer with a per-track cache of its last result.
pub struct Enhancer {
    net: Net,
    io: ImageIo,
    cache: HashMap<u64, Frame>,
}

impl Enhancer {
    /// Loads a GFPGAN model (`1×3×512×512` → same).
    pub fn load(rt: &Runtime, path: &Path, cfg: &SessionConfig, io_binding: bool) -> Result<Enhancer> {
        let net = load(rt, path, cfg, io_binding, "enhancer")?;
        let io = ImageIo::of(&net, 0)?;
        Ok(Enhancer { net, io, cache: HashMap::new() })
    }

    /// What loading the model found worth reporting.
    pub fn notes(&self) -> &[String] {
        &self.net.notes
    }

    /// Crop side.
    pub fn side(&self) -> u32 {
        self.io.side
    }

    /// How the model takes and returns its crop.
    pub fn io(&self) -> ImageIo {
        self.io
    }

    /// The FFHQ template at this crop size.
    fn template(&self) -> [[f32; 2]; 5] {
        let r = self.io.side as f32 / 512.0;
        FFHQ_512.map(|[x, y]| [x * r, y * r])
    }

    /// The alignment of `face` for this enhancer.
    pub fn alignment(&self, face: &Face) -> Result<Affine> {
        umeyama(&face.kps, &self.template())
    }

    /// Enhances `face` of track `track`. With `run == false` the track's cached crop is returned for
    /// pasting with the current alignment (a track without one runs the model anyway).
    pub fn enhance(&mut self, frame: &Frame, face: &Face, track: u64, run: bool) -> Result<Enhanced> {
        let m = self.alignment(face)?;
        if !run {
            if let Some(c) = self.cache.get(&track) {
                return Ok(Enhanced { crop: c.clone(), m, ran: false, infer: Duration::ZERO, rejected: false });
            }
        }
        let crop = warp_affine_as(frame, &m, self.io.side, self.io.crop_format())?;
        let (out, infer) = self.net.run(vec![self.io.feed(crop, 127.5, 127.5)])?;
        let (crop, rejected) = self.io.image(out.into_iter().next(), 127.5, 127.5, "enhancer")?;
        if !rejected {
            self.cache.insert(track, crop.clone());
        }
        Ok(Enhanced { crop, m, ran: true, infer, rejected })
    }

    /// Forgets the cached crops of tracks not in `live`.
    pub fn retain(&mut self, live: &[u64]) {
        self.cache.retain(|k, _| live.contains(k));
    }
}

/// 2d106det landmark model.
pub struct Landmarker {
    net: Net,
    io: ImageIo,
}

/// Indices of the mouth among the 106 points.
pub const MOUTH_106: std::ops::Range<usize> = 52..72;

impl Landmarker {
    /// Loads a 106-point landmark model (`1×3×192×192` → `1×212`).
    pub fn load(rt: &Runtime, path: &Path, cfg: &SessionConfig, io_binding: bool) -> Result<Landmarker> {
        let net = load(rt, path, cfg, io_binding, "landmark model")?;
        let io = ImageIo::of(&net, 0)?;
        Ok(Landmarker { net, io })
    }

    /// What loading the model found worth reporting.
    pub fn notes(&self) -> &[String] {
        &self.net.notes
    }

    /// The 106 points of `face`, frame pixels, and the time inside ONNX Runtime. The crop is the box
    /// centre scaled so 1.5× the longer box side fills it (insightface's rule); the model takes raw
    /// RGB pixels and returns coordinates in −1..1.
    pub fn landmarks(&mut self, frame: &Frame, face: &Face) -> Result<(Vec<[f32; 2]>, Duration)> {
        let [x1, y1, x2, y2] = face.bbox;
        let side = self.io.side;
        let scale = side as f32 / ((x2 - x1).max(y2 - y1).max(1.0) * 1.5);
        let c = face.centre();
        let half = side as f32 / 2.0;
        let m = Affine([scale, 0.0, half - c[0] * scale, 0.0, scale, half - c[1] * scale]);
        let crop = warp_affine_as(frame, &m, side, self.io.crop_format())?;
        let (out, infer) = self.net.run(vec![self.io.feed(crop, 0.0, 1.0)])?;
        let v = out.first().map(Tensor::to_f32s).unwrap_or_default();
        if v.len() < 2 || v.len() % 2 != 0 {
            bail!("{}: expected pairs of coordinates, got {} values", self.net.path.display(), v.len());
        }
        let inv = m.invert().context("landmark crop transform is singular")?;
        let pts = v.chunks_exact(2).map(|p| inv.apply([(p[0] + 1.0) * half, (p[1] + 1.0) * half])).collect();
        Ok((pts, infer))
    }
}
