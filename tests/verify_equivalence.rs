//! The equivalence check itself: approximate rewrites are judged by their tolerance and a broken
//! one is localised; moving the swapper's emap is caught; a detector is judged on decoded boxes.

mod optimize_support;

use faceperf::models::Role;
use faceperf::onnx::{node_label, Model};
use faceperf::optimize::{ensure_variant, NotEquivalent};
use faceperf::rewrite::recipe::Tolerance;
use optimize_support::*;

const SWAPPER_PSNR: &str = "\n[models.swapper]\ntolerance = { psnr_db = 40.0 }\n";

#[test]
fn approximate_rewrite_within_tolerance_is_accepted() {
    let (_dir, src) = tiny(Role::Swapper);
    let o = ensure_variant(rt(), &src, &recipe("round", &["round-weights"], SWAPPER_PSNR), &options()).unwrap();
    let e = &o.sidecar.equivalence;
    assert!(e.passed && !e.exact, "{}", e.summary());
    let out = &e.outputs[0];
    assert_eq!(out.tolerance, Tolerance::PsnrDb(40.0));
    assert!(!out.bit_identical && out.max_abs > 0.0);
    assert!(out.min_psnr_db.unwrap() >= 40.0 && out.min_cosine > 0.999, "{out:?}");
}

#[test]
fn broken_approximation_is_refused_and_localised() {
    let (_dir, src) = tiny(Role::Swapper);
    let model = Model::load(&src).unwrap();
    let planted = node_label(&model.graph().node[kth_conv(&model, PLANTED_CONV)]);
    let err = ensure_variant(rt(), &src, &recipe("broken", &["round-weights-broken"], SWAPPER_PSNR), &options())
        .expect_err("PSNR below 40 dB must be refused");
    let ne = err.downcast_ref::<NotEquivalent>().unwrap();
    assert!(ne.report.failures[0].contains("PSNR"), "{:?}", ne.report.failures);
    // The weight rounding alone stays below the localisation threshold; the planted bias does not.
    assert_eq!(ne.report.divergence.as_ref().unwrap().node, planted, "{}", ne.report.summary());
}

#[test]
fn moving_the_swapper_emap_is_caught() {
    let (_dir, src) = tiny(Role::Swapper);
    let err = ensure_variant(rt(), &src, &recipe("emap", &["move-emap"], ""), &options()).unwrap_err();
    let ne = err.downcast_ref::<NotEquivalent>().unwrap();
    assert!(!ne.report.last_initializer.as_ref().unwrap().kept_last);
    assert!(err.to_string().contains("'emap'"), "{err}");
}

#[test]
fn detector_is_judged_on_decoded_boxes() {
    let (_dir, src) = tiny(Role::Detector);
    // A small frame keeps the test fast; symbolic H and W take it.
    let mut opts = options();
    opts.input_shapes.insert("input.1".into(), vec![1, 3, 320, 256]);
    let o = ensure_variant(rt(), &src, &recipe("round", &["round-weights"], ""), &opts).unwrap();
    let e = &o.sidecar.equivalence;
    let d = e.detections.as_ref().expect("boxes compared");
    assert!(e.passed && d.passed, "{}", e.summary());
    assert!(d.diff.anchors > 0 && d.diff.max_box_px_all > 0.0 && d.diff.max_box_px <= 1.0, "{d:?}");
    assert!(e.outputs.iter().all(|o| o.tolerance == Tolerance::BoxPx(1.0)));
    assert_eq!(o.sidecar.input_shapes["input.1"], vec![1, 3, 320, 256]);
    // Input shapes from the command line are part of the recipe key.
    assert_ne!(o.sidecar.recipe.hash, recipe("round", &["round-weights"], "").hash());
}
