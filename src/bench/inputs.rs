//! Fixed, seeded, realistic benchmark inputs: the face of `media/astronaut.png` cropped and resized
//! for the roles that take faces, the whole photo letterboxed for the detector, a seeded unit-length
//! identity vector for the swapper's source.
//!
//! Realistic inputs matter: activations' ranges change the work some kernels do (denormals,
//! early-outs), and an all-zero image lets a detector's post-processing do nothing.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::imageops::{self, FilterType};
use image::RgbImage;
use ort::value::TensorElementType;

use crate::models::Role;
use crate::onnx::{Tensor, TensorData};
use crate::util::rng::Rng;

/// The face in `astronaut.png` (512×512): a square box around it, (x, y, side) in pixels.
pub const ASTRONAUT_FACE: (u32, u32, u32) = (150, 40, 150);

/// Seed of every generated value that is not taken from the photo.
pub const INPUT_SEED: u64 = 0xFACE_5EED;

/// How a role's image input is scaled from 0..255 pixels: `(x − mean) / std`.
pub fn normalization(role: Role) -> (f32, f32) {
    match role {
        Role::Detector => (127.5, 128.0),
        Role::Recognizer => (127.5, 127.5),
        Role::Swapper => (0.0, 255.0),
        Role::Enhancer => (127.5, 127.5),
        // 2d106det was exported with its normalisation inside the graph: it takes raw pixels.
        Role::Landmarks => (0.0, 1.0),
    }
}

/// Spatial size a role's image input gets when the model leaves it dynamic.
pub fn default_side(role: Role) -> usize {
    match role {
        Role::Detector => 640,
        Role::Recognizer => 112,
        Role::Swapper => 128,
        Role::Enhancer => 512,
        Role::Landmarks => 192,
    }
}

/// The photo the inputs come from, decoded once.
pub struct Photo {
    pub rgb: RgbImage,
    /// Face box (x, y, side).
    pub face: (u32, u32, u32),
}

impl Photo {
    /// Decodes `path` (PNG) with the face box `face`.
    pub fn load(path: &Path, face: (u32, u32, u32)) -> Result<Photo> {
        let rgb = image::open(path).with_context(|| format!("{}: cannot decode the image", path.display()))?.to_rgb8();
        let (x, y, s) = face;
        if x + s > rgb.width() || y + s > rgb.height() || s == 0 {
            bail!("{}: face box {face:?} is outside the {}×{} image", path.display(), rgb.width(), rgb.height());
        }
        Ok(Photo { rgb, face })
    }

    /// The built-in astronaut photo (`assets/media/astronaut.png`).
    pub fn astronaut() -> Result<Photo> {
        Ok(Photo { rgb: crate::util::assets::astronaut()?, face: ASTRONAUT_FACE })
    }

    /// The face crop resized to `h`×`w`.
    pub fn face_crop(&self, h: u32, w: u32) -> RgbImage {
        let (x, y, s) = self.face;
        let crop = imageops::crop_imm(&self.rgb, x, y, s, s).to_image();
        imageops::resize(&crop, w, h, FilterType::Triangle)
    }

    /// The whole photo scaled to fit `h`×`w` keeping its aspect, placed top-left, zero padded (SCRFD's letterbox).
    pub fn letterbox(&self, h: u32, w: u32) -> RgbImage {
        let (iw, ih) = self.rgb.dimensions();
        let scale = (w as f32 / iw as f32).min(h as f32 / ih as f32);
        let (nw, nh) =
            (((iw as f32 * scale).round() as u32).clamp(1, w), ((ih as f32 * scale).round() as u32).clamp(1, h));
        let resized = imageops::resize(&self.rgb, nw, nh, FilterType::Triangle);
        let mut out = RgbImage::new(w, h);
        imageops::replace(&mut out, &resized, 0, 0);
        out
    }
}

/// An RGB image as an NCHW float tensor, `(x − mean) / std`.
pub fn to_nchw(img: &RgbImage, mean: f32, std: f32) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (p.0[c] as f32 - mean) / std;
        }
    }
    out
}

/// One input tensor for a model input with element type `ty` and declared shape `shape` (−1 = dynamic).
pub fn make_input(role: Role, photo: &Photo, ty: TensorElementType, shape: &[i64], rng: &mut Rng) -> Result<Tensor> {
    let dims: Vec<usize> = match shape.len() {
        // Image-like: N×C×H×W with dynamic batch → 1 and dynamic sides → the role's size.
        4 => {
            let side = default_side(role);
            let fix = |d: i64, dflt: usize| if d > 0 { d as usize } else { dflt };
            vec![fix(shape[0], 1), fix(shape[1], 3), fix(shape[2], side), fix(shape[3], side)]
        }
        _ => shape.iter().map(|&d| if d > 0 { d as usize } else { 1 }).collect(),
    };
    let n: usize = dims.iter().product();
    // A frame input fused by `rewrites/cuda.toml`: 8-bit NHWC BGR pixels, as a camera delivers them.
    if ty == TensorElementType::Uint8 && dims.len() == 4 && dims[3] == 3 {
        let (h, w) = (shape[1].max(1) as u32, shape[2].max(1) as u32);
        let side = default_side(role) as u32;
        let (h, w) = if shape[1] > 0 { (h, w) } else { (side, side) };
        let img = if role == Role::Detector { photo.letterbox(h, w) } else { photo.face_crop(h, w) };
        let bgr: Vec<u8> = img.pixels().flat_map(|p| [p.0[2], p.0[1], p.0[0]]).collect();
        let batch = dims[0];
        return Ok(Tensor { dims: vec![batch, h as usize, w as usize, 3], data: TensorData::U8(bgr.repeat(batch)) });
    }
    let values: Vec<f32> = if dims.len() == 4 && dims[1] == 3 {
        let (h, w) = (dims[2] as u32, dims[3] as u32);
        let img = if role == Role::Detector { photo.letterbox(h, w) } else { photo.face_crop(h, w) };
        let (mean, std) = normalization(role);
        to_nchw(&img, mean, std).repeat(dims[0])
    } else if dims.len() == 2 && dims[0] == 1 && dims[1] >= 64 {
        // An identity vector (the swapper's `source`): seeded, unit length like ArcFace's normed embedding.
        let v: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        v.into_iter().map(|x| x / norm).collect()
    } else {
        rng.vec(n, 0.0, 1.0)
    };
    let data = match ty {
        TensorElementType::Float32 => TensorData::F32(values),
        TensorElementType::Float16 => TensorData::F16(values.into_iter().map(half::f16::from_f32).collect()),
        other => bail!("{} input element type {other:?} is not supported by the benchmark", role.name()),
    };
    Ok(Tensor { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_letterbox_and_normalisation() {
        let photo = Photo::astronaut().unwrap();
        let lb = photo.letterbox(640, 640);
        assert_eq!(lb.dimensions(), (640, 640));
        // 512² scales to exactly 640², so nothing is padded; a wide frame gets zero rows at the bottom.
        let wide = Photo { rgb: RgbImage::from_pixel(200, 100, image::Rgb([9, 9, 9])), face: (0, 0, 50) };
        let lb = wide.letterbox(64, 64);
        assert_eq!(lb.get_pixel(10, 10).0, [9, 9, 9]);
        assert_eq!(lb.get_pixel(10, 40).0, [0, 0, 0]);

        let mut rng = Rng::new(INPUT_SEED);
        let u8_frame =
            make_input(Role::Swapper, &photo, TensorElementType::Uint8, &[1, 128, 128, 3], &mut rng).unwrap();
        assert_eq!(u8_frame.dims, vec![1, 128, 128, 3]);
        let crop = photo.face_crop(128, 128);
        let TensorData::U8(px) = &u8_frame.data else { panic!("u8 frame") };
        assert_eq!(&px[..3], &[crop.get_pixel(0, 0).0[2], crop.get_pixel(0, 0).0[1], crop.get_pixel(0, 0).0[0]]);
        let t = make_input(Role::Swapper, &photo, TensorElementType::Float32, &[1, 3, 128, 128], &mut rng).unwrap();
        assert_eq!(t.dims, vec![1, 3, 128, 128]);
        let v = t.to_f32s();
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
        // A real face crop is not flat.
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(v.iter().any(|x| (x - mean).abs() > 0.2));

        let src = make_input(Role::Swapper, &photo, TensorElementType::Float32, &[1, 512], &mut rng).unwrap();
        let norm: f32 = src.to_f32s().iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);

        let det = make_input(Role::Detector, &photo, TensorElementType::Float16, &[1, 3, -1, -1], &mut rng).unwrap();
        assert_eq!(det.dims, vec![1, 3, 640, 640]);
        assert!(matches!(det.data, TensorData::F16(_)));
        assert!(make_input(Role::Detector, &photo, TensorElementType::Int64, &[1, 3, 8, 8], &mut rng).is_err());
    }

    #[test]
    fn inputs_are_reproducible() {
        let photo = Photo::astronaut().unwrap();
        let a = make_input(Role::Swapper, &photo, TensorElementType::Float32, &[1, 512], &mut Rng::new(1)).unwrap();
        let b = make_input(Role::Swapper, &photo, TensorElementType::Float32, &[1, 512], &mut Rng::new(1)).unwrap();
        assert_eq!(a, b);
    }
}
