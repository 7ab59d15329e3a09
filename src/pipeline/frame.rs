//! Owned frame buffers: packed 8-bit RGB or BGR, row-major, rows without padding.
//!
//! Every stage works on RGB (what the models take); BGR exists because cameras and video tools
//! often deliver it, and converting is a measured stage of its own.

use anyhow::{bail, Result};
use image::RgbImage;
use serde::Serialize;

/// Channel order of a packed 3-byte pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
}

/// An owned image: `width × height` pixels of 3 bytes in `format` order.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channel order.
    pub format: PixelFormat,
    /// `width · height · 3` bytes, row-major.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}×{} {:?})", self.width, self.height, self.format)
    }
}

impl Frame {
    /// A black frame.
    pub fn new(width: u32, height: u32, format: PixelFormat) -> Frame {
        Frame { width, height, format, data: vec![0; width as usize * height as usize * 3] }
    }

    /// Wraps packed pixel bytes, checking their length.
    pub fn from_raw(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> Result<Frame> {
        let want = width as usize * height as usize * 3;
        if data.len() != want {
            bail!("a {width}×{height} frame needs {want} bytes, got {}", data.len());
        }
        Ok(Frame { width, height, format, data })
    }

    /// Takes an RGB image's buffer without copying.
    pub fn from_rgb_image(img: RgbImage) -> Frame {
        let (width, height) = img.dimensions();
        Frame { width, height, format: PixelFormat::Rgb, data: img.into_raw() }
    }

    /// The frame as an RGB image (converted when it is BGR).
    pub fn to_rgb_image(&self) -> RgbImage {
        let mut f = self.clone();
        f.convert(PixelFormat::Rgb);
        RgbImage::from_raw(f.width, f.height, f.data).expect("length checked on construction")
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * 3
    }

    /// The pixel at (x, y), in the frame's channel order.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Converts the channel order in place (a no-op when it already is `to`).
    pub fn convert(&mut self, to: PixelFormat) {
        if self.format != to {
            for p in self.data.chunks_exact_mut(3) {
                p.swap(0, 2);
            }
            self.format = to;
        }
    }

    /// Copies the frame into `dst`, reusing its allocation.
    pub fn copy_into(&self, dst: &mut Frame) {
        dst.width = self.width;
        dst.height = self.height;
        dst.format = self.format;
        dst.data.clear();
        dst.data.extend_from_slice(&self.data);
    }
}

/// An axis-aligned pixel rectangle, `x0..x1 × y0..y1` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Rect {
    /// True when (x, y) lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }

    /// Number of pixels.
    pub fn area(&self) -> u64 {
        (self.x1.saturating_sub(self.x0)) as u64 * (self.y1.saturating_sub(self.y0)) as u64
    }
}

/// An RGB frame as an NCHW float tensor body, `(x − mean) / std` per channel.
pub fn to_nchw(frame: &Frame, mean: f32, std: f32) -> Vec<f32> {
    let plane = frame.width as usize * frame.height as usize;
    let mut out = vec![0.0f32; 3 * plane];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let inv = 1.0 / std;
    // Output planes are always R, G, B.
    let (ri, bi) = match frame.format {
        PixelFormat::Rgb => (0, 2),
        PixelFormat::Bgr => (2, 0),
    };
    for (i, p) in frame.data.chunks_exact(3).enumerate() {
        r[i] = (p[ri] as f32 - mean) * inv;
        g[i] = (p[1] as f32 - mean) * inv;
        b[i] = (p[bi] as f32 - mean) * inv;
    }
    out
}

/// The inverse of [`to_nchw`] for a 1×3×`h`×`w` output: `x · scale + offset`, rounded and clamped to
/// 0..=255, as an RGB frame.
pub fn from_nchw(data: &[f32], w: u32, h: u32, scale: f32, offset: f32) -> Result<Frame> {
    let plane = w as usize * h as usize;
    if data.len() != 3 * plane {
        bail!("expected 3×{h}×{w} = {} values, got {}", 3 * plane, data.len());
    }
    let mut out = Frame::new(w, h, PixelFormat::Rgb);
    for (i, p) in out.data.chunks_exact_mut(3).enumerate() {
        for (c, v) in p.iter_mut().enumerate() {
            *v = (data[c * plane + i] * scale + offset).round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}
