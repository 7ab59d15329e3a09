//! The variant cache: a planted non-equivalent pass is refused with the first diverging node
//! named and nothing written; editing the source, the recipe or the tool version invalidates a
//! variant; concurrent optimizers of one variant serialise; `check_variant` reports each state.

mod optimize_support;

use faceperf::models::Role;
use faceperf::onnx::{node_label, Model};
use faceperf::optimize::{check_variant, ensure_variant, Action, NotEquivalent, VariantState};
use optimize_support::*;

#[test]
fn planted_non_equivalent_pass_is_refused_naming_the_first_diverging_node() {
    let (_dir, src) = tiny(Role::Swapper);
    let model = Model::load(&src).unwrap();
    let planted = node_label(&model.graph().node[kth_conv(&model, PLANTED_CONV)]);
    let recipe = recipe("planted", &["identity-insert", "planted-bias"], "");
    let err = ensure_variant(rt(), &src, &recipe, &options()).expect_err("a broken rewrite must be refused");
    let msg = format!("{err:#}");
    println!("{msg}");
    let ne = err.downcast_ref::<NotEquivalent>().expect("a NotEquivalent error");
    let d = ne.report.divergence.as_ref().expect("the divergence is localised");
    assert_eq!(d.node, planted, "{msg}");
    assert_eq!(d.op_type, "Conv");
    assert!(d.values_compared > 1, "earlier values were compared and found equal: {d:?}");
    assert!(msg.contains(&format!("first diverging node: '{planted}'")), "{msg}");
    assert!(msg.contains("not written"), "{msg}");
    assert!(!ne.report.passed && ne.report.exact);
    // Nothing was written.
    let written: Vec<_> = std::fs::read_dir(src.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_planted") && !n.ends_with(".lock"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn source_recipe_and_tool_version_edits_invalidate_the_variant() {
    let (_dir, src) = tiny(Role::Swapper);
    let r1 = recipe("ident", &["identity-insert"], "");
    let opts = options();
    let first = ensure_variant(rt(), &src, &r1, &opts).unwrap();
    assert_eq!(first.action, Action::Created);
    assert!(first.sidecar.equivalence.passed && first.sidecar.equivalence.exact);
    assert_eq!(first.sidecar.equivalence.cases.len(), 8);
    assert!(first.sidecar.equivalence.outputs.iter().all(|o| o.bit_identical));
    assert_eq!(first.sidecar.nodes_after, first.sidecar.nodes_before + 1);
    assert_eq!(first.sidecar.passes[0].report.pass, "identity-insert");
    assert!(first.variant.ends_with("inswapper_128_ident.onnx") && first.variant.is_file());
    assert!(first.sidecar_path.ends_with("inswapper_128_ident.json"));
    let check = |r: &faceperf::rewrite::recipe::Recipe, o: &faceperf::optimize::OptimizeOptions| {
        check_variant(rt(), &src, r, o).unwrap().state
    };
    assert_eq!(check(&r1, &opts), VariantState::Fresh);

    // Same keys: reused, byte for byte.
    let bytes = std::fs::read(&first.variant).unwrap();
    let again = ensure_variant(rt(), &src, &r1, &opts).unwrap();
    assert_eq!(again.action, Action::Reused);
    assert_eq!(std::fs::read(&again.variant).unwrap(), bytes);

    // The recipe's meaning changes (an extra option): remade.
    let r2 = recipe("ident", &["identity-insert"], "\n[models.swapper]\ntolerance = \"exact\"\n");
    assert_ne!(r1.hash(), r2.hash());
    assert!(matches!(check(&r2, &opts), VariantState::Stale(ref w) if w[0].contains("recipe changed")));
    let o = ensure_variant(rt(), &src, &r2, &opts).unwrap();
    assert_eq!(o.action, Action::Created);
    assert!(o.remade_because.iter().any(|w| w.contains("recipe changed")), "{:?}", o.remade_because);

    // A new tool version: remade.
    let mut newer = options();
    newer.tool_version = "99.0.0".into();
    assert!(matches!(check(&r2, &newer), VariantState::Stale(ref w) if w[0].contains("tool version")));
    let o = ensure_variant(rt(), &src, &r2, &newer).unwrap();
    assert_eq!(o.action, Action::Created);
    assert!(o.remade_because.iter().any(|w| w.contains("tool version changed")), "{:?}", o.remade_because);
    assert_eq!(o.sidecar.tool_version, "99.0.0");

    // The source model is edited (its file time is irrelevant; its content changes): remade.
    let mut m = Model::load(&src).unwrap();
    m.proto.doc_string = "edited".into();
    std::fs::write(&src, m.to_bytes()).unwrap();
    assert!(matches!(check(&r2, &newer), VariantState::Stale(ref w) if w[0].contains("source model changed")));
    let o = ensure_variant(rt(), &src, &r2, &newer).unwrap();
    assert_eq!(o.action, Action::Created);
    assert!(o.remade_because.iter().any(|w| w.contains("source model changed")), "{:?}", o.remade_because);

    // A variant modified behind the cache's back is not trusted.
    std::fs::write(&o.variant, b"garbage").unwrap();
    assert!(matches!(check(&r2, &newer), VariantState::Stale(ref w) if w[0].contains("modified")));
    let o = ensure_variant(rt(), &src, &r2, &newer).unwrap();
    assert_eq!(o.action, Action::Created);
    assert_eq!(check(&r2, &newer), VariantState::Fresh);

    // Missing.
    std::fs::remove_file(&o.variant).unwrap();
    assert_eq!(check(&r2, &newer), VariantState::Missing);
}

#[test]
fn concurrent_optimizers_of_one_variant_wait_and_reuse() {
    let (_dir, src) = tiny(Role::Landmarks);
    let r = recipe("ident", &["identity-insert"], "");
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| ensure_variant(rt(), &src, &r, &options()).unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = outcomes.iter().filter(|o| o.action == Action::Created).count();
    assert_eq!(created, 1, "exactly one writer, the others reuse its variant");
    let v = Model::load(&outcomes[0].variant).unwrap();
    assert_eq!(v.graph().node.iter().filter(|n| n.name == "test_identity").count(), 1);
    assert_eq!(check_variant(rt(), &src, &r, &options()).unwrap().state, VariantState::Fresh);
}
