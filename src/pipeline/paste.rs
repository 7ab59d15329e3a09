//! Paste-back: the swapped (or enhanced) aligned crop warped back into the frame through the inverse
//! of its alignment, blended through an eroded, feathered mask, in place.
//!
//! Only the pixels the mask can reach are visited: the face box is the frame-space bounding box of
//! the eroded mask, and on each row the loop runs only over the span where the crop coordinates fall
//! inside it, so the cost is the face's area, not the frame's. Nothing outside the box is written.

use super::align::Affine;
use super::frame::{Frame, Rect};

/// The blend mask of a `side × side` crop: 0 within `erode` pixels of the crop's edge, rising
/// linearly to 1 over the next `feather` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PasteMask {
    /// Crop side in pixels.
    pub side: u32,
    /// Width of the zero border, crop pixels.
    pub erode: f32,
    /// Width of the ramp from 0 to 1, crop pixels.
    pub feather: f32,
}

impl PasteMask {
    /// Default proportions: 8 % of the side eroded, 12 % feathered.
    pub fn for_side(side: u32) -> PasteMask {
        PasteMask { side, erode: 0.08 * side as f32, feather: (0.12 * side as f32).max(1.0) }
    }

    /// Weight of crop position (u, v).
    pub fn alpha(&self, u: f32, v: f32) -> f32 {
        let hi = self.side as f32 - 1.0 - self.erode;
        let d = (u - self.erode).min(v - self.erode).min(hi - u).min(hi - v);
        (d / self.feather).clamp(0.0, 1.0)
    }
}

/// The frame-space box the mask of a crop aligned by `m` (frame → crop) can touch, clipped to a
/// `width × height` frame; `None` when it misses the frame or `m` is singular.
pub fn face_box(m: &Affine, mask: &PasteMask, width: u32, height: u32) -> Option<Rect> {
    let inv = m.invert()?;
    let (lo, hi) = (mask.erode, mask.side as f32 - 1.0 - mask.erode);
    if hi <= lo {
        return None;
    }
    let corners = [[lo, lo], [hi, lo], [lo, hi], [hi, hi]].map(|p| inv.apply(p));
    let min_x = corners.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min);
    let max_x = corners.iter().map(|p| p[0]).fold(f32::NEG_INFINITY, f32::max);
    let min_y = corners.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
    let max_y = corners.iter().map(|p| p[1]).fold(f32::NEG_INFINITY, f32::max);
    if !(min_x.is_finite() && max_x.is_finite() && min_y.is_finite() && max_y.is_finite()) {
        return None;
    }
    let x0 = min_x.floor().max(0.0) as u32;
    let y0 = min_y.floor().max(0.0) as u32;
    let x1 = (max_x.ceil() + 1.0).clamp(0.0, width as f32) as u32;
    let y1 = (max_y.ceil() + 1.0).clamp(0.0, height as f32) as u32;
    (x0 < x1 && y0 < y1).then_some(Rect { x0, y0, x1, y1 })
}

/// The x range on one row where `lo ≤ base + slope·x ≤ hi`, as reals (may be empty or unbounded).
fn span(base: f32, slope: f32, lo: f32, hi: f32) -> (f32, f32) {
    if slope.abs() < 1e-12 {
        if base >= lo && base <= hi {
            (f32::NEG_INFINITY, f32::INFINITY)
        } else {
            (1.0, 0.0)
        }
    } else {
        let (a, b) = ((lo - base) / slope, (hi - base) / slope);
        (a.min(b), a.max(b))
    }
}

/// Which inner loop [`paste_back_with`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AVX2 (8 pixels per step) where the CPU has it, else scalar.
    Auto,
    /// One pixel at a time (what non-x86 CPUs run).
    Scalar,
}

/// Fixed-point parameters of one paste.
struct Fixed {
    /// Mask support bounds in crop pixels, 16.16.
    lo: i32,
    hi: i32,
    /// `alpha = ((dist >> 8) · k) >> 16`, i.e. 256 · dist / feather.
    k: i32,
    /// Crop side, and the largest top-left tap index (keeps 4-byte reads inside the crop).
    side: usize,
    max_i: i32,
    /// Crop-coordinate steps per frame pixel along x, 16.16.
    du: i32,
    dv: i32,
    /// The crop's channel order is the reverse of the frame's.
    swap: bool,
}

/// One pixel: bilinear sample of the crop at (u, v) (16.16), blended into `px` with the mask's
/// alpha. All arithmetic is in 8-bit weights with rounding, the same as the AVX2 path bit for bit.
#[inline(always)]
fn blend_pixel(p: &Fixed, src: &[u8], px: &mut [u8], u: i32, v: i32) {
    let dist = (u - p.lo).min(v - p.lo).min(p.hi - u).min(p.hi - v).max(0);
    let alpha = (((dist >> 8) * p.k) >> 16).min(256);
    let ui = (u >> 16).clamp(0, p.max_i) as usize;
    let vi = (v >> 16).clamp(0, p.max_i) as usize;
    let (wx, wy) = ((u >> 8) & 0xff, (v >> 8) & 0xff);
    let fs = p.side * 3;
    let i = vi * fs + ui * 3;
    for (ch, out) in px.iter_mut().enumerate().take(3) {
        let sc = if p.swap { 2 - ch } else { ch };
        let (a, b) = (src[i + sc] as i32, src[i + 3 + sc] as i32);
        let (c, d) = (src[i + fs + sc] as i32, src[i + fs + 3 + sc] as i32);
        let top = (a * (256 - wx) + b * wx + 128) >> 8;
        let bot = (c * (256 - wx) + d * wx + 128) >> 8;
        let s = (top * (256 - wy) + bot * wy + 128) >> 8;
        *out = ((*out as i32 * (256 - alpha) + s * alpha + 128) >> 8) as u8;
    }
}

/// Eight consecutive pixels starting at `dst` (24 bytes, all inside the frame row) with the first at
/// crop position (u, v): [`blend_pixel`]'s arithmetic in 16-bit lanes, two channels per lane pair.
///
/// # Safety
/// The CPU must have AVX2; `dst..dst + 24` must be writable; `src` must hold a `p.side`² RGB crop
/// with `p.side ≥ 3`, so every 4-byte tap read (indices clamped to `p.max_i`) stays inside it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blend8_avx2(p: &Fixed, src: &[u8], dst: *mut u8, u: i32, v: i32) {
    use std::arch::x86_64::*;
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let uu = _mm256_add_epi32(_mm256_set1_epi32(u), _mm256_mullo_epi32(lanes, _mm256_set1_epi32(p.du)));
    let vv = _mm256_add_epi32(_mm256_set1_epi32(v), _mm256_mullo_epi32(lanes, _mm256_set1_epi32(p.dv)));
    let (lo, hi) = (_mm256_set1_epi32(p.lo), _mm256_set1_epi32(p.hi));
    let zero = _mm256_setzero_si256();
    let dist = _mm256_min_epi32(
        _mm256_min_epi32(_mm256_sub_epi32(uu, lo), _mm256_sub_epi32(vv, lo)),
        _mm256_min_epi32(_mm256_sub_epi32(hi, uu), _mm256_sub_epi32(hi, vv)),
    );
    let dist = _mm256_max_epi32(dist, zero);
    let alpha = _mm256_min_epi32(
        _mm256_srai_epi32(_mm256_mullo_epi32(_mm256_srai_epi32(dist, 8), _mm256_set1_epi32(p.k)), 16),
        _mm256_set1_epi32(256),
    );
    let max_i = _mm256_set1_epi32(p.max_i);
    let ui = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(uu, 16), zero), max_i);
    let vi = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(vv, 16), zero), max_i);
    let ff = _mm256_set1_epi32(0xff);
    let wx = _mm256_and_si256(_mm256_srai_epi32(uu, 8), ff);
    let wy = _mm256_and_si256(_mm256_srai_epi32(vv, 8), ff);
    let fs = (p.side * 3) as i32;
    let off =
        _mm256_add_epi32(_mm256_mullo_epi32(vi, _mm256_set1_epi32(fs)), _mm256_add_epi32(ui, _mm256_slli_epi32(ui, 1)));
    // Each tap: 4 bytes from the packed RGB crop (the fourth is the next pixel's and is ignored).
    let base = src.as_ptr() as *const i32;
    let p00 = _mm256_i32gather_epi32::<1>(base, off);
    let p01 = _mm256_i32gather_epi32::<1>(base, _mm256_add_epi32(off, _mm256_set1_epi32(3)));
    let p10 = _mm256_i32gather_epi32::<1>(base, _mm256_add_epi32(off, _mm256_set1_epi32(fs)));
    let p11 = _mm256_i32gather_epi32::<1>(base, _mm256_add_epi32(off, _mm256_set1_epi32(fs + 3)));
    let m = _mm256_set1_epi32(0x00ff_00ff);
    let rnd = _mm256_set1_epi32(0x0080_0080);
    let w256 = _mm256_set1_epi32(0x0100_0100);
    let spread = |w: __m256i| _mm256_or_si256(w, _mm256_slli_epi32(w, 16));
    let (wx2, wy2, al2) = (spread(wx), spread(wy), spread(alpha));
    let (iwx2, iwy2, ial2) = (_mm256_sub_epi16(w256, wx2), _mm256_sub_epi16(w256, wy2), _mm256_sub_epi16(w256, al2));
    // (a·(256 − w) + b·w + 128) >> 8 in each 16-bit lane; the sums stay below 65536.
    let lerp = |a: __m256i, b: __m256i, w: __m256i, iw: __m256i| {
        _mm256_srli_epi16(
            _mm256_add_epi16(_mm256_add_epi16(_mm256_mullo_epi16(a, iw), _mm256_mullo_epi16(b, w)), rnd),
            8,
        )
    };
    let even = |x: __m256i| _mm256_and_si256(x, m);
    let odd = |x: __m256i| _mm256_and_si256(_mm256_srli_epi32(x, 8), m);
    let top_02 = lerp(even(p00), even(p01), wx2, iwx2);
    let top_13 = lerp(odd(p00), odd(p01), wx2, iwx2);
    let bot_02 = lerp(even(p10), even(p11), wx2, iwx2);
    let bot_13 = lerp(odd(p10), odd(p11), wx2, iwx2);
    let mut s_02 = lerp(top_02, bot_02, wy2, iwy2);
    let s_13 = lerp(top_13, bot_13, wy2, iwy2);
    if p.swap {
        // Channels 0 and 2 sit in the two 16-bit halves: swapping them swaps R and B.
        s_02 = _mm256_or_si256(_mm256_slli_epi32(s_02, 16), _mm256_srli_epi32(s_02, 16));
    }
    // The destination's 24 bytes as eight 4-byte pixels, blended, packed back.
    let mask6 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    let raw = _mm256_maskload_epi32(dst as *const i32, mask6);
    let raw = _mm256_permutevar8x32_epi32(raw, _mm256_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6));
    let expand = _mm256_setr_epi8(
        0, 1, 2, -128, 3, 4, 5, -128, 6, 7, 8, -128, 9, 10, 11, -128, 0, 1, 2, -128, 3, 4, 5, -128, 6, 7, 8, -128, 9,
        10, 11, -128,
    );
    let d = _mm256_shuffle_epi8(raw, expand);
    let o_02 = lerp(even(d), s_02, al2, ial2);
    let o_13 = lerp(odd(d), s_13, al2, ial2);
    let out = _mm256_or_si256(o_02, _mm256_slli_epi32(o_13, 8));
    let pack = _mm256_setr_epi8(
        0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128,
        -128, -128, -128,
    );
    let packed = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(out, pack), _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
    _mm256_maskstore_epi32(dst as *mut i32, mask6, packed);
}

/// Blends `face` (a `mask.side`² RGB or BGR crop in the space of `m`, which maps frame → crop) into
/// `frame` in place, bilinear, through `mask`. Returns the face box: no pixel outside it is written.
pub fn paste_back(frame: &mut Frame, face: &Frame, m: &Affine, mask: &PasteMask) -> Option<Rect> {
    paste_back_with(frame, face, m, mask, Kernel::Auto)
}

/// [`paste_back`] with a chosen inner loop (both give identical frames).
pub fn paste_back_with(frame: &mut Frame, face: &Frame, m: &Affine, mask: &PasteMask, kernel: Kernel) -> Option<Rect> {
    if face.width != mask.side || face.height != mask.side || mask.side < 3 {
        return None;
    }
    let rect = face_box(m, mask, frame.width, frame.height)?;
    let (lo, hi) = (mask.erode, mask.side as f32 - 1.0 - mask.erode);
    let [a, b, c, d, e, f] = m.0;
    const ONE: f32 = 65536.0;
    let p = Fixed {
        lo: (lo * ONE) as i32,
        hi: (hi * ONE) as i32,
        k: (256.0 / mask.feather * 256.0) as i32,
        side: mask.side as usize,
        max_i: mask.side as i32 - 3,
        du: (a * ONE) as i32,
        dv: (d * ONE) as i32,
        swap: frame.format != face.format,
    };
    #[cfg(target_arch = "x86_64")]
    let avx2 = kernel == Kernel::Auto && std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = {
        let _ = kernel;
        false
    };
    let stride = frame.stride();
    let src = &face.data[..];
    for y in rect.y0..rect.y1 {
        let fy = y as f32;
        let (ub, vb) = (b * fy + c, e * fy + f);
        let (su0, su1) = span(ub, a, lo, hi);
        let (sv0, sv1) = span(vb, d, lo, hi);
        let xs = su0.max(sv0).max(rect.x0 as f32).ceil();
        let xe = su1.min(sv1).min((rect.x1 - 1) as f32).floor();
        if xe < xs {
            continue;
        }
        let (xs, end) = (xs as usize, xe as usize + 1);
        let row = &mut frame.data[y as usize * stride..(y as usize + 1) * stride];
        let mut u = ((ub as f64 + a as f64 * xs as f64) * 65536.0) as i32;
        let mut v = ((vb as f64 + d as f64 * xs as f64) * 65536.0) as i32;
        let mut x = xs;
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            while x + 8 <= end {
                // SAFETY: AVX2 was detected; pixels x..x+8 lie inside this row (end ≤ width); the
                // crop is side² RGB with side ≥ 3 (checked above).
                unsafe { blend8_avx2(&p, src, row.as_mut_ptr().add(x * 3), u, v) };
                u += 8 * p.du;
                v += 8 * p.dv;
                x += 8;
            }
        }
        while x < end {
            blend_pixel(&p, src, &mut row[x * 3..x * 3 + 3], u, v);
            u += p.du;
            v += p.dv;
            x += 1;
        }
    }
    Some(rect)
}

/// The original pixels around the mouth, saved before the swap and blended back after it (the
/// mouth-mask option keeps the real mouth moving under the swapped face).
#[derive(Debug, Clone)]
pub struct MouthPatch {
    rect: Rect,
    pixels: Vec<u8>,
    centre: [f32; 2],
    radii: [f32; 2],
}

impl MouthPatch {
    /// Saves the ellipse around `points` (the mouth landmarks), 20 % larger than their box.
    pub fn save(frame: &Frame, points: &[[f32; 2]]) -> Option<MouthPatch> {
        if points.is_empty() {
            return None;
        }
        let min_x = points.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min);
        let max_x = points.iter().map(|p| p[0]).fold(f32::NEG_INFINITY, f32::max);
        let min_y = points.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
        let max_y = points.iter().map(|p| p[1]).fold(f32::NEG_INFINITY, f32::max);
        let centre = [(min_x + max_x) / 2.0, (min_y + max_y) / 2.0];
        let radii = [((max_x - min_x) * 0.6).max(2.0), ((max_y - min_y) * 0.6).max(2.0)];
        let x0 = (centre[0] - radii[0]).floor().max(0.0) as u32;
        let y0 = (centre[1] - radii[1]).floor().max(0.0) as u32;
        let x1 = ((centre[0] + radii[0]).ceil() + 1.0).clamp(0.0, frame.width as f32) as u32;
        let y1 = ((centre[1] + radii[1]).ceil() + 1.0).clamp(0.0, frame.height as f32) as u32;
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        let rect = Rect { x0, y0, x1, y1 };
        let mut pixels = Vec::with_capacity(rect.area() as usize * 3);
        for y in y0..y1 {
            let s = (y as usize * frame.width as usize + x0 as usize) * 3;
            pixels.extend_from_slice(&frame.data[s..s + (x1 - x0) as usize * 3]);
        }
        Some(MouthPatch { rect, pixels, centre, radii })
    }

    /// Blends the saved pixels back: fully at the centre, fading out over the outer 30 % of the ellipse.
    pub fn restore(&self, frame: &mut Frame) {
        let r = self.rect;
        let w = (r.x1 - r.x0) as usize;
        for y in r.y0..r.y1.min(frame.height) {
            for x in r.x0..r.x1.min(frame.width) {
                let dx = (x as f32 - self.centre[0]) / self.radii[0];
                let dy = (y as f32 - self.centre[1]) / self.radii[1];
                let a = ((1.0 - (dx * dx + dy * dy).sqrt()) / 0.3).clamp(0.0, 1.0);
                if a <= 0.0 {
                    continue;
                }
                let d = (y as usize * frame.width as usize + x as usize) * 3;
                let s = ((y - r.y0) as usize * w + (x - r.x0) as usize) * 3;
                for ch in 0..3 {
                    let (cur, orig) = (frame.data[d + ch] as f32, self.pixels[s + ch] as f32);
                    frame.data[d + ch] = (cur + (orig - cur) * a + 0.5) as u8;
                }
            }
        }
    }
}
