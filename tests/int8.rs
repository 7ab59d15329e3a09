//! The `int8` target: calibration is deterministic (same inputs → byte-identical variant), the
//! calibration set is part of the cache key, the swapper's `emap` stays last and float, and a
//! planted bad quantization (weight scales of the wrong sign) is refused with its figure and
//! never written.

mod optimize_support;

use std::sync::Arc;

use anyhow::Result;
use faceperf::bench::inputs::Photo;
use faceperf::models::Role;
use faceperf::onnx::{Model, Tensor, TensorData};
use faceperf::optimize::{check_variant, ensure_variant, Action, NotEquivalent, OptimizeOptions, VariantState};
use faceperf::rewrite::quantize::Quantize;
use faceperf::rewrite::recipe::Recipe;
use faceperf::rewrite::{Pass, PassContext, PassReport};
use optimize_support::*;

fn int8() -> Recipe {
    Recipe::builtin("int8").unwrap()
}

fn opts() -> OptimizeOptions {
    let mut o = options();
    o.verify.cases = 4;
    o
}

#[test]
fn calibration_is_deterministic_and_keeps_emap_last_and_float() {
    let recipe = int8();
    let (_d1, a) = tiny(Role::Swapper);
    let (_d2, b) = tiny(Role::Swapper);
    let va = ensure_variant(rt(), &a, &recipe, &opts()).unwrap();
    let vb = ensure_variant(rt(), &b, &recipe, &opts()).unwrap();
    assert_eq!(va.action, Action::Created);
    assert_eq!(std::fs::read(&va.variant).unwrap(), std::fs::read(&vb.variant).unwrap(), "same inputs, same bytes");
    let cal = va.sidecar.calibration.as_ref().expect("the sidecar records the calibration");
    assert_eq!(cal.set_sha256, vb.sidecar.calibration.as_ref().unwrap().set_sha256);
    assert!(cal.values > 0 && cal.cases.iter().any(|c| c.starts_with("face crop (moved")), "{cal:?}");
    let eq = &va.sidecar.equivalence;
    assert!(eq.passed && eq.quality && !eq.exact);
    assert!(
        eq.summary().starts_with("within its quality bar") && !eq.summary().contains("equivalent"),
        "{}",
        eq.summary()
    );
    assert!(eq.outputs[0].min_psnr_db.is_some_and(|p| p >= 30.0));

    let (orig, var) = (Model::load(&a).unwrap(), Model::load(&va.variant).unwrap());
    let (lo, lv) = (orig.graph().initializer.last().unwrap(), var.graph().initializer.last().unwrap());
    assert_eq!((&lo.name, &lo.raw_data, lo.data_type), (&lv.name, &lv.raw_data, lv.data_type), "emap unchanged, last");
    // QDQ form: every Conv but the recipe's blocked ones reads an int8 weight through a DQ.
    let blocked = recipe.options_for(0, Some(Role::Swapper))["block_nodes"].as_array().unwrap().len();
    let convs = |m: &Model, dq: bool| {
        m.graph().node.iter().filter(|n| n.op_type == "Conv" && n.input[1].ends_with("_dequantized") == dq).count()
    };
    assert_eq!(convs(&var, true), convs(&orig, false) - blocked);
    assert_eq!(convs(&var, false), blocked);
    assert!(var.graph().node.iter().any(|n| n.op_type == "QuantizeLinear"));
}

#[test]
fn the_calibration_set_is_part_of_the_cache_key() {
    let recipe = int8();
    let (_d, src) = tiny(Role::Recognizer);
    let o = opts();
    let first = ensure_variant(rt(), &src, &recipe, &o).unwrap();
    assert_eq!(first.action, Action::Created);
    assert_ne!(first.sidecar.recipe.hash, recipe.hash(), "the key folds in the calibration set");
    assert_eq!(check_variant(rt(), &src, &recipe, &o).unwrap().state, VariantState::Fresh);
    // Another photo (the face box moved): another calibration set, so the variant is stale.
    let p = Photo::astronaut().unwrap();
    let (x, y, s) = p.face;
    let mut moved = opts();
    moved.verify.photo = Some(Arc::new(Photo { rgb: p.rgb, face: (x + 10, y, s) }));
    let state = check_variant(rt(), &src, &recipe, &moved).unwrap().state;
    assert!(matches!(state, VariantState::Stale(ref w) if w[0].contains("recipe changed")), "{state:?}");
    let again = ensure_variant(rt(), &src, &recipe, &moved).unwrap();
    assert_eq!(again.action, Action::Created);
}

/// Quantizes, then flips the sign of the first quantized Conv's weight scales (a planted bad
/// quantization).
struct WrongSignScale;
impl Pass for WrongSignScale {
    fn name(&self) -> &'static str {
        "quantize"
    }
    fn exact(&self) -> bool {
        false
    }
    fn run(&self, m: &mut Model, ctx: &PassContext) -> Result<PassReport> {
        let r = Quantize.run(m, ctx)?;
        let g = m.graph();
        let conv = g.node.iter().find(|n| n.op_type == "Conv" && n.input[1].ends_with("_dequantized")).unwrap();
        let dq = g.node.iter().find(|n| n.output[0] == conv.input[1]).unwrap();
        let scale = dq.input[1].clone();
        let t = m.graph_mut().initializer.iter_mut().find(|t| t.name == scale).unwrap();
        let mut v = Tensor::from_proto(t)?;
        let TensorData::F32(x) = &mut v.data else { anyhow::bail!("scale is not f32") };
        x.iter_mut().for_each(|s| *s = -*s);
        *t = v.to_proto(&scale);
        Ok(r)
    }
}

#[test]
fn a_planted_wrong_sign_scale_is_refused_with_its_figure() {
    let (_d, src) = tiny(Role::Recognizer);
    let mut o = opts();
    o.resolver = Arc::new(|name: &str| -> Result<Box<dyn Pass>> {
        if name == "quantize" {
            Ok(Box::new(WrongSignScale))
        } else {
            faceperf::rewrite::pass_by_name(name)
        }
    });
    let err = ensure_variant(rt(), &src, &int8(), &o).expect_err("a wrong-sign scale must be refused");
    let msg = format!("{err:#}");
    let ne = err.downcast_ref::<NotEquivalent>().expect("a NotEquivalent error");
    assert!(ne.report.quality && !ne.report.passed);
    assert!(msg.contains("below its quality bar") && msg.contains("cosine ≥ 0.99"), "{msg}");
    let cos = ne.report.outputs[0].min_cosine;
    assert!(cos < 0.99 && msg.contains(&format!("min cosine {cos:.6}")), "{msg}");
    let written: Vec<_> = std::fs::read_dir(src.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_int8") && !n.ends_with(".lock"))
        .collect();
    assert!(written.is_empty(), "nothing cached: {written:?}");
    // The correct quantization of the same model passes.
    assert!(ensure_variant(rt(), &src, &int8(), &opts()).unwrap().sidecar.equivalence.passed);
}
