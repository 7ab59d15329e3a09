//! Entry points shared by the fuzz targets (`fuzz/`) and their regression tests (`tests/fuzz_regressions.rs`):
//! whatever the bytes, the model core may return errors but must never panic, hang or abort.

use std::collections::HashMap;

use crate::onnx::graph::GraphIndex;
use crate::onnx::{shape, summary, Model};
use crate::rewrite::{self, PassContext};

/// Parses `data` as a model and, if it parses, drives it through the graph index, shape inference,
/// the summary, a save/load round trip and every rewrite pass. Results are discarded.
pub fn exercise_model_bytes(data: &[u8]) {
    let Ok(model) = Model::from_bytes(data) else { return };
    exercise_model(&model);
}

/// Everything [`exercise_model_bytes`] does after parsing.
pub fn exercise_model(model: &Model) {
    if let Ok(index) = GraphIndex::new(model.graph()) {
        let _ = index.topological_order(model.graph());
        let _ = index.check_dangling(model.graph());
        let _ = index.dead_nodes(model.graph());
    }
    let _ = shape::infer(model, &HashMap::new());
    let _ = summary::summarize(model, &HashMap::new());
    let bytes = model.to_bytes();
    let back = Model::from_bytes(&bytes).expect("a model we wrote must parse again");
    assert_eq!(back.proto, model.proto, "save/load round trip changed the model");
    // The commands reach the passes only through `Model::load`, which refuses graphs that fail
    // `check_graph`; the fuzzer follows the same path.
    if model.check_graph().is_err() {
        return;
    }
    for name in rewrite::PASS_NAMES {
        let Ok(pass) = rewrite::pass_by_name(name) else { continue };
        let mut m = model.clone();
        let _ = pass.run(&mut m, &PassContext::default());
    }
}
