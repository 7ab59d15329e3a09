//! Face alignment: the 5-point similarity transform onto a template (least squares, Umeyama), and
//! the bilinear affine warp that cuts the aligned crop out of a frame.
//!
//! Templates: ArcFace's 112×112 five points (insightface's `arcface_dst`), scaled and shifted for
//! other crop sizes by insightface's rule (sides that are multiples of 112 scale; multiples of 128
//! scale by side/128 and shift right by 8·side/128: the swapper's 128 crop), and FFHQ's 512 points
//! for GFPGAN.

use anyhow::{bail, Result};

use super::frame::{Frame, PixelFormat};

/// ArcFace's 112×112 template: left eye, right eye, nose, left and right mouth corner.
pub const ARCFACE_112: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// GFPGAN's (FFHQ) 512×512 template, same point order.
pub const FFHQ_512: [[f32; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// The ArcFace template for a `side × side` crop (insightface's `estimate_norm` rule).
pub fn arcface_template(side: u32) -> [[f32; 2]; 5] {
    let (ratio, shift) = if side.is_multiple_of(112) {
        (side as f32 / 112.0, 0.0)
    } else {
        (side as f32 / 128.0, 8.0 * side as f32 / 128.0)
    };
    ARCFACE_112.map(|[x, y]| [x * ratio + shift, y * ratio])
}

/// A 2-D affine map `[x', y'] = [a·x + b·y + c, d·x + e·y + f]`, stored `[a, b, c, d, e, f]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f32; 6]);

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// Maps a point.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let m = &self.0;
        [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]]
    }

    /// The inverse map, or `None` when the map is singular.
    pub fn invert(&self) -> Option<Affine> {
        let m = self.0.map(f64::from);
        let det = m[0] * m[4] - m[1] * m[3];
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (a, b, d, e) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
        let c = -(a * m[2] + b * m[5]);
        let f = -(d * m[2] + e * m[5]);
        Some(Affine([a, b, c, d, e, f].map(|v| v as f32)))
    }

    /// Linear scale factor (square root of the determinant's magnitude).
    pub fn scale(&self) -> f32 {
        (self.0[0] * self.0[4] - self.0[1] * self.0[3]).abs().sqrt()
    }

    /// `self` after `first`: maps `p` to `self(first(p))`.
    pub fn after(&self, first: &Affine) -> Affine {
        let (a, b) = (&self.0, &first.0);
        Affine([
            a[0] * b[0] + a[1] * b[3],
            a[0] * b[1] + a[1] * b[4],
            a[0] * b[2] + a[1] * b[5] + a[2],
            a[3] * b[0] + a[4] * b[3],
            a[3] * b[1] + a[4] * b[4],
            a[3] * b[2] + a[4] * b[5] + a[5],
        ])
    }
}

/// The similarity transform (rotation, uniform scale, translation; no reflection) that maps `src`
/// onto `dst` with the least squared error: Umeyama's estimate. In 2-D with complex numbers the
/// problem is linear, `dst ≈ s·src + t` with `s` complex, and this is its closed-form solution,
/// which equals Umeyama's SVD form whenever the optimum is a proper rotation (always for faces).
pub fn umeyama(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Result<Affine> {
    if src.len() != dst.len() || src.len() < 2 {
        bail!("similarity estimate needs ≥ 2 matching point pairs, got {} and {}", src.len(), dst.len());
    }
    let n = src.len() as f64;
    let mean = |pts: &[[f32; 2]]| {
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
        (sx / n, sy / n)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    // s = Σ conj(a)·b / Σ |a|², a and b the centred source and destination points.
    let (mut re, mut im, mut var) = (0.0f64, 0.0f64, 0.0f64);
    for (p, q) in src.iter().zip(dst) {
        let (ax, ay) = (p[0] as f64 - msx, p[1] as f64 - msy);
        let (bx, by) = (q[0] as f64 - mdx, q[1] as f64 - mdy);
        re += ax * bx + ay * by;
        im += ax * by - ay * bx;
        var += ax * ax + ay * ay;
    }
    if var <= 1e-12 || !var.is_finite() {
        bail!("similarity estimate: the source points coincide or are not finite");
    }
    let (sr, si) = (re / var, im / var);
    let tx = mdx - (sr * msx - si * msy);
    let ty = mdy - (si * msx + sr * msy);
    Ok(Affine([sr, -si, tx, si, sr, ty].map(|v| v as f32)))
}

/// Cuts a `side × side` RGB crop out of `src`: each crop pixel (x, y) takes `src` at `inv(m)(x, y)`,
/// bilinear, black outside the frame. `m` maps frame pixels to crop pixels.
///
/// Pixels whose four taps are inside the frame take a fixed-point path (16.16 coordinates stepped
/// along the row, 8-bit weights); the rest (crops reaching past the frame edge) a checked one.
pub fn warp_affine(src: &Frame, m: &Affine, side: u32) -> Result<Frame> {
    warp_affine_as(src, m, side, PixelFormat::Rgb)
}

/// [`warp_affine`] producing the crop in channel order `format` (a fused-I/O model taking BGR
/// pixels gets them without a separate conversion pass).
pub fn warp_affine_as(src: &Frame, m: &Affine, side: u32, format: PixelFormat) -> Result<Frame> {
    let Some(inv) = m.invert() else { bail!("the alignment transform is singular") };
    let mut out = Frame::new(side, side, format);
    let (w, h) = (src.width as i64, src.height as i64);
    let stride = src.stride();
    let order: [usize; 3] = if src.format != format { [2, 1, 0] } else { [0, 1, 2] };
    let [a, b, c, d, e, f] = inv.0.map(f64::from);
    const ONE: f64 = 65536.0;
    let (dx, dy) = ((a * ONE).round() as i64, (d * ONE).round() as i64);
    let data = &src.data[..];
    for y in 0..side as usize {
        let row = &mut out.data[y * side as usize * 3..(y + 1) * side as usize * 3];
        let fy = y as f64;
        let mut sx = ((b * fy + c) * ONE).round() as i64;
        let mut sy = ((e * fy + f) * ONE).round() as i64;
        for px in row.chunks_exact_mut(3) {
            let (xi, yi) = (sx >> 16, sy >> 16);
            if xi >= 0 && yi >= 0 && xi + 1 < w && yi + 1 < h {
                let (wx, wy) = (((sx >> 8) & 0xff) as i32, ((sy >> 8) & 0xff) as i32);
                let i = yi as usize * stride + xi as usize * 3;
                let r0: &[u8; 6] = data[i..i + 6].try_into().expect("checked inside");
                let r1: &[u8; 6] = data[i + stride..i + stride + 6].try_into().expect("checked inside");
                for (v, &ch) in px.iter_mut().zip(&order) {
                    let top = r0[ch] as i32 * (256 - wx) + r0[ch + 3] as i32 * wx;
                    let bot = r1[ch] as i32 * (256 - wx) + r1[ch + 3] as i32 * wx;
                    *v = ((top * (256 - wy) + bot * wy + 32768) >> 16) as u8;
                }
            } else if xi >= -1 && yi >= -1 && xi < w && yi < h {
                let (wx, wy) = (((sx & 0xffff) as f32) / 65536.0, ((sy & 0xffff) as f32) / 65536.0);
                let tap = |xx: i64, yy: i64, ch: usize| -> f32 {
                    if xx < 0 || yy < 0 || xx >= w || yy >= h {
                        0.0
                    } else {
                        data[yy as usize * stride + xx as usize * 3 + ch] as f32
                    }
                };
                for (v, &ch) in px.iter_mut().zip(&order) {
                    let top = tap(xi, yi, ch) * (1.0 - wx) + tap(xi + 1, yi, ch) * wx;
                    let bot = tap(xi, yi + 1, ch) * (1.0 - wx) + tap(xi + 1, yi + 1, ch) * wx;
                    *v = (top * (1.0 - wy) + bot * wy).round().clamp(0.0, 255.0) as u8;
                }
            }
            sx += dx;
            sy += dy;
        }
    }
    Ok(out)
}

/// The transform from frame pixels to a `side × side` crop aligned on `template`.
pub fn align_to(kps: &[[f32; 2]; 5], template: &[[f32; 2]; 5]) -> Result<Affine> {
    umeyama(kps, template)
}
