//! Paste-back writes only inside the face box, puts the crop where the alignment says, and blends
//! through the feathered mask.

mod support;

use faceperf::pipeline::align::{arcface_template, umeyama};
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::pipeline::paste::{face_box, paste_back, paste_back_with, Kernel, PasteMask};
use faceperf::util::rng::Rng;
use support::similarity;

fn noise_frame(w: u32, h: u32, format: PixelFormat, rng: &mut Rng) -> Frame {
    let data = (0..w * h * 3).map(|_| (rng.next_u64() & 0xff) as u8).collect();
    Frame::from_raw(w, h, format, data).unwrap()
}

#[test]
fn no_pixel_outside_the_face_box_changes() {
    let mut rng = Rng::new(3);
    for case in 0..40 {
        let format = if case % 2 == 0 { PixelFormat::Rgb } else { PixelFormat::Bgr };
        let frame0 = noise_frame(320, 240, format, &mut rng);
        // Crops everywhere, including half outside the frame, rotated, tiny and huge.
        let crop_to_frame = similarity(
            rng.range(-180.0, 180.0),
            rng.range(0.2, 4.0),
            rng.range(-150.0, 350.0),
            rng.range(-150.0, 250.0),
        );
        let m = crop_to_frame.invert().unwrap();
        let face = noise_frame(128, 128, PixelFormat::Rgb, &mut rng);
        let mask = PasteMask::for_side(128);
        let mut frame = frame0.clone();
        let rect = paste_back(&mut frame, &face, &m, &mask);
        assert_eq!(rect, face_box(&m, &mask, 320, 240));
        // The vector kernel (where the CPU has one) and the scalar one agree bit for bit.
        let mut scalar = frame0.clone();
        assert_eq!(paste_back_with(&mut scalar, &face, &m, &mask, Kernel::Scalar), rect);
        assert!(scalar == frame, "case {case}: kernels differ");
        let mut changed_inside = 0;
        for y in 0..240 {
            for x in 0..320 {
                let same = frame.pixel(x, y) == frame0.pixel(x, y);
                match rect {
                    Some(r) if r.contains(x, y) => changed_inside += usize::from(!same),
                    _ => assert!(same, "case {case}: pixel ({x}, {y}) outside {rect:?} changed"),
                }
            }
        }
        // The box is the eroded crop square's footprint: its corners map inside the crop's footprint.
        if let Some(r) = rect {
            let corners = [[0.0, 0.0], [127.0, 0.0], [0.0, 127.0], [127.0, 127.0]].map(|p| crop_to_frame.apply(p));
            let min_x = corners.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min);
            let max_x = corners.iter().map(|p| p[0]).fold(f32::NEG_INFINITY, f32::max);
            assert!(r.x0 as f32 >= min_x.floor() && r.x1 as f32 <= max_x.ceil() + 1.0, "case {case}: {r:?}");
            assert!(changed_inside > 0 || r.x1 - r.x0 < 16 || r.y1 - r.y0 < 16, "case {case}: nothing pasted in {r:?}");
        }
    }
}

#[test]
fn crop_lands_where_the_alignment_says() {
    // A flat 400×300 frame; a face crop of one colour aligned on points around (200, 150) at 2×. The
    // centre of the crop is fully opaque: the frame there takes the crop's colour exactly; the box
    // edge keeps the frame's.
    let template = arcface_template(128);
    let crop_to_frame = similarity(15.0, 2.0, 80.0, 20.0);
    let kps: Vec<[f32; 2]> = template.iter().map(|&p| crop_to_frame.apply(p)).collect();
    let m = umeyama(&kps, &template).unwrap();
    let mut frame = Frame::from_raw(400, 300, PixelFormat::Bgr, vec![10; 400 * 300 * 3]).unwrap();
    let face = Frame::from_raw(128, 128, PixelFormat::Rgb, [200u8, 100, 50].repeat(128 * 128)).unwrap();
    let rect = paste_back(&mut frame, &face, &m, &PasteMask::for_side(128)).unwrap();
    let centre = crop_to_frame.apply([63.5, 63.5]);
    let p = frame.pixel(centre[0].round() as u32, centre[1].round() as u32);
    assert_eq!(p, [50, 100, 200], "BGR frame gets the RGB crop's colour swapped");
    assert_eq!(frame.pixel(rect.x0, rect.y0), [10, 10, 10], "box corner outside the rotated square");
    // The feather: along the crop's row 63 values rise monotonically from the eroded border to the centre.
    let mut last = 0u8;
    for u in 10..64 {
        let q = crop_to_frame.apply([u as f32, 63.5]);
        let v = frame.pixel(q[0].round() as u32, q[1].round() as u32)[2];
        assert!(v + 2 >= last, "feather not monotonic at u={u}: {v} after {last}");
        last = last.max(v);
    }
    assert_eq!(last, 200);
}

#[test]
fn mask_values() {
    let m = PasteMask::for_side(128);
    assert_eq!(m.alpha(0.0, 64.0), 0.0);
    assert_eq!(m.alpha(64.0, 64.0), 1.0);
    let mid = m.alpha(m.erode + m.feather / 2.0, 64.0);
    assert!((mid - 0.5).abs() < 1e-4);
    // A crop entirely outside the frame writes nothing.
    let far = similarity(0.0, 1.0, 5000.0, 5000.0).invert().unwrap();
    assert!(face_box(&far, &m, 100, 100).is_none());
}
