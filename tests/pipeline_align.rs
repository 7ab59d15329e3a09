//! Alignment: the similarity estimate maps keypoints onto the templates, and the warp samples the
//! frame where the transform says.

mod support;

use faceperf::pipeline::align::{arcface_template, umeyama, warp_affine, Affine, ARCFACE_112, FFHQ_512};
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::util::rng::Rng;
use support::similarity;

fn max_error(m: &Affine, src: &[[f32; 2]], dst: &[[f32; 2]]) -> f32 {
    src.iter()
        .zip(dst)
        .map(|(p, q)| {
            let r = m.apply(*p);
            ((r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)).sqrt()
        })
        .fold(0.0, f32::max)
}

#[test]
fn keypoints_map_onto_the_templates_within_one_pixel() {
    let mut rng = Rng::new(7);
    for side in [112u32, 128, 224, 512] {
        let template = if side == 512 { FFHQ_512 } else { arcface_template(side) };
        for _ in 0..50 {
            // A face somewhere in a 1080p frame: any rotation, 0.3–6× the template's size.
            let scale = rng.range(0.3, 6.0);
            let frame_from_template =
                similarity(rng.range(-180.0, 180.0), scale, rng.range(0.0, 1920.0), rng.range(0.0, 1080.0));
            let kps: Vec<[f32; 2]> = template.iter().map(|&p| frame_from_template.apply(p)).collect();
            let m = umeyama(&kps, &template).unwrap();
            let err = max_error(&m, &kps, &template);
            assert!(err < 1.0, "side {side}: max error {err} px");
            assert!(err < 0.01, "side {side}: exact points must map almost exactly, error {err} px");
            // Detector noise of up to half a template pixel on every point still lands within 1 px.
            let n = 0.5 * scale;
            let noisy: Vec<[f32; 2]> = kps.iter().map(|p| [p[0] + rng.range(-n, n), p[1] + rng.range(-n, n)]).collect();
            let m = umeyama(&noisy, &template).unwrap();
            let err = max_error(&m, &noisy, &template);
            assert!(err < 1.0, "side {side}: noisy max error {err} px");
        }
    }
}

#[test]
fn least_squares_beats_any_perturbed_similarity() {
    // On points no similarity fits exactly, the estimate has the smallest squared error around it.
    let src = [[10.0, 10.0], [50.0, 12.0], [30.0, 35.0], [15.0, 60.0], [48.0, 58.0]];
    let dst = ARCFACE_112;
    let m = umeyama(&src, &dst).unwrap();
    let sse = |m: &Affine| {
        src.iter()
            .zip(&dst)
            .map(|(p, q)| {
                let r = m.apply(*p);
                (r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)
            })
            .sum::<f32>()
    };
    let best = sse(&m);
    let [a, b, c, _, _, f] = m.0;
    for (da, db, dc, df) in [(0.01, 0.0, 0.0, 0.0), (0.0, 0.01, 0.0, 0.0), (0.0, 0.0, 0.5, 0.0), (0.0, 0.0, 0.0, 0.5)] {
        for sign in [-1.0, 1.0] {
            let (na, nb) = (a + sign * da, b + sign * db);
            let p = Affine([na, nb, c + sign * dc, -nb, na, f + sign * df]);
            assert!(sse(&p) > best, "perturbation {da} {db} {dc} {df} is better");
        }
    }
    // A similarity without reflection: a = e, b = −d.
    assert!((m.0[0] - m.0[4]).abs() < 1e-5 && (m.0[1] + m.0[3]).abs() < 1e-5);
}

#[test]
fn template_rules() {
    assert_eq!(arcface_template(112), ARCFACE_112);
    let t128 = arcface_template(128);
    assert!((t128[0][0] - (38.2946 + 8.0)).abs() < 1e-4 && (t128[0][1] - 51.6963).abs() < 1e-4);
    let t224 = arcface_template(224);
    assert!((t224[4][0] - 2.0 * 70.7299).abs() < 1e-3);
}

#[test]
fn inverse_and_composition() {
    let m = similarity(33.0, 2.5, 100.0, -40.0);
    let inv = m.invert().unwrap();
    let id = inv.after(&m);
    for (got, want) in id.0.iter().zip(Affine::IDENTITY.0) {
        assert!((got - want).abs() < 1e-4, "{:?}", id);
    }
    assert!((m.scale() - 2.5).abs() < 1e-5);
    assert!(Affine([1.0, 2.0, 0.0, 2.0, 4.0, 0.0]).invert().is_none());
    assert!(umeyama(&[[1.0, 1.0]; 5], &ARCFACE_112).is_err());
}

#[test]
fn warp_samples_where_the_transform_says() {
    // A frame whose pixel (x, y) is (x mod 256, y mod 256, 7), in BGR order.
    let (w, h) = (300u32, 200u32);
    let mut f = Frame::new(w, h, PixelFormat::Bgr);
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            f.data[i..i + 3].copy_from_slice(&[7, (y % 256) as u8, (x % 256) as u8]);
        }
    }
    // Crop pixel (u, v) = frame (2u + 40, 2v + 30): the crop is the frame scaled by ½ from (40, 30).
    let m = Affine([0.5, 0.0, -20.0, 0.0, 0.5, -15.0]);
    let crop = warp_affine(&f, &m, 64).unwrap();
    assert_eq!(crop.format, PixelFormat::Rgb);
    for v in 0..64u32 {
        for u in 0..64u32 {
            let p = crop.pixel(u, v);
            let (x, y) = (2 * u + 40, 2 * v + 30);
            if x < w && y < h {
                assert_eq!(p, [x as u8, y as u8, 7], "crop ({u}, {v})");
            }
        }
    }
    // Half-pixel positions interpolate; outside the frame is black.
    let m = Affine([1.0, 0.0, 0.5, 0.0, 1.0, 0.0]);
    let crop = warp_affine(&f, &m, 8).unwrap();
    assert_eq!(crop.pixel(3, 2), [3, 2, 7]); // frame x = 2.5 rounds half up to 3 (2.5 + 0.5)
    let m = Affine([1.0, 0.0, 1000.0, 0.0, 1.0, 0.0]);
    assert!(warp_affine(&f, &m, 8).unwrap().data.iter().all(|&b| b == 0));
}
