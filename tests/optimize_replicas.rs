//! The built-in recipes on the tiny replicas: `coreml` variants are exact on ≥ 8 inputs with no
//! op left that the CoreML EP (before ORT 1.26/1.27) cannot take and the swapper's `emap` still
//! last; `fp16` variants meet their tolerances at about half the size; the `cuda` swapper takes
//! and gives 8-bit NHWC pixels within tolerance.

mod optimize_support;

use faceperf::models::Role;
use faceperf::onnx::shape::declared;
use faceperf::onnx::{DataType, Model};
use faceperf::optimize::{blockers, ensure_variant, Action, Blockers};
use faceperf::rewrite::recipe::{Recipe, Tolerance};
use optimize_support::*;

#[test]
fn coreml_variants_are_exact_and_free_of_coreml_blockers() {
    let recipe = Recipe::builtin("coreml").unwrap();
    let mut seen = Blockers::default();
    for role in Role::ALL {
        let (_dir, src) = tiny(role);
        let o = ensure_variant(rt(), &src, &recipe, &options()).unwrap();
        assert_eq!(o.action, Action::Created);
        let s = &o.sidecar;
        let e = &s.equivalence;
        assert!(e.passed && e.exact, "{role:?}: {}", e.summary());
        assert!(e.cases.len() >= 8);
        assert!(e.cases.iter().any(|c| !c.starts_with("random")), "{role:?}: real photos among the inputs");
        for out in &e.outputs {
            assert_eq!(out.tolerance, Tolerance::Exact);
            // Bit-identical; where ORT optimises the two graphs differently (constant shapes), bit-identical
            // with its graph optimisations off and within 1e-6 with them on.
            assert!(
                out.bit_identical || (out.max_abs <= 1e-6 && e.bit_identical_unoptimized == Some(true)),
                "{role:?} output {}: {}",
                out.name,
                e.summary()
            );
        }
        // What the CoreML EP could not take is gone, counted on the written file.
        let variant = Model::load(&o.variant).unwrap();
        assert_eq!(blockers(&variant), Blockers::default(), "{role:?}");
        assert_eq!(s.blockers_after, Blockers::default());
        let b = s.blockers_before;
        seen.reflect_pad += b.reflect_pad;
        seen.shape += b.shape;
        seen.split += b.split;
        seen.scalar_gather += b.scalar_gather;
        if role == Role::Swapper {
            assert_eq!(b.reflect_pad, 14);
            let last = variant.graph().initializer.last().unwrap();
            let orig = Model::load(&src).unwrap();
            assert_eq!(last.name, "emap");
            assert_eq!(last.raw_data, orig.graph().initializer.last().unwrap().raw_data);
            assert!(e.last_initializer.as_ref().unwrap().kept_last);
        }
        if role == Role::Detector {
            assert!(b.shape > 0);
        }
        if role == Role::Enhancer {
            assert!(b.split > 0 && b.scalar_gather > 0);
        }
    }
    assert!(seen.reflect_pad > 0 && seen.shape > 0 && seen.split > 0 && seen.scalar_gather > 0, "{seen:?}");
}

#[test]
fn fp16_variants_meet_tolerances_at_about_half_the_size() {
    let recipe = Recipe::builtin("fp16").unwrap();
    for role in [Role::Swapper, Role::Enhancer, Role::Detector, Role::Recognizer] {
        let (_dir, src) = tiny(role);
        let o = ensure_variant(rt(), &src, &recipe, &options()).unwrap();
        let e = &o.sidecar.equivalence;
        assert!(e.passed && !e.exact, "{role:?}: {}", e.summary());
        match role {
            Role::Swapper | Role::Enhancer => {
                let out = &e.outputs[0];
                assert_eq!(out.tolerance, Tolerance::PsnrDb(40.0));
                assert!(out.min_psnr_db.unwrap() >= 40.0, "{role:?}: {out:?}");
            }
            Role::Detector => {
                let d = e.detections.as_ref().expect("detector boxes decoded and compared");
                assert!(
                    d.passed && d.diff.anchors > 0 && d.diff.max_box_px <= 1.0 && d.diff.max_kps_px <= 1.0,
                    "{d:?}"
                );
            }
            _ => assert!(e.outputs[0].min_cosine >= 0.999),
        }
        // About half: the float32 weights become float16. The swapper's emap stays float32 on
        // purpose (insightface reads it), so it is left out of the comparison.
        let orig = Model::load(&src).unwrap();
        let kept: u64 = match &e.last_initializer {
            Some(l) if l.kept_last => orig.graph().initializer.last().unwrap().raw_data.len() as u64,
            _ => 0,
        };
        let (before, after) = (o.sidecar.source.bytes - kept, o.sidecar.variant.bytes - kept);
        let ratio = after as f64 / before as f64;
        assert!((0.45..=0.56).contains(&ratio), "{role:?}: {after} / {before} = {ratio:.3}");
        // float32 in and out, as the original.
        let v = Model::load(&o.variant).unwrap();
        assert!(v.graph().input.iter().chain(&v.graph().output).all(|x| declared(x).0 == DataType::Float as i32));
    }
    // The recipe skips the landmarks model, saying why; nothing is written.
    let (dir, src) = tiny(Role::Landmarks);
    let e = ensure_variant(rt(), &src, &recipe, &options()).unwrap_err();
    assert!(e.is::<faceperf::optimize::Skipped>() && e.to_string().contains("px"), "{e}");
    assert!(!dir.path().join("2d106det_fp16.onnx").exists());
}

#[test]
fn cuda_swapper_takes_and_gives_8_bit_pixels_within_tolerance() {
    let recipe = Recipe::builtin("cuda").unwrap();
    let (_dir, src) = tiny(Role::Swapper);
    let o = ensure_variant(rt(), &src, &recipe, &options()).unwrap();
    let e = &o.sidecar.equivalence;
    assert!(e.passed, "{}", e.summary());
    let out = &e.outputs[0];
    assert_eq!(out.dtype, "uint8");
    assert!(out.min_psnr_db.unwrap() >= 40.0, "{out:?}");
    let v = Model::load(&o.variant).unwrap();
    let g = v.graph();
    let target = g.input.iter().find(|x| x.name == "target").unwrap();
    assert_eq!(declared(target), (DataType::Uint8 as i32, Some(vec![Some(1), Some(128), Some(128), Some(3)])));
    assert_eq!(declared(&g.output[0]).0, DataType::Uint8 as i32);
    assert_eq!(g.initializer.last().unwrap().name, "emap");
}
