//! Graph rewrites that help execution providers; every pass is exact or carries a tolerance, and
//! `verify` proves it by running both graphs.
//!
//! A pass is a value implementing [`Pass`]; [`pass_by_name`] builds one from its recipe name and
//! options, and [`run_passes`] applies a list in order, collecting one [`PassReport`] per pass.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::onnx::Model;

pub mod cleanup;
pub mod edit;
pub mod fold_shapes;
pub mod fp16;
pub mod fuse_io;
pub mod quantize;
pub mod recipe;
pub mod reflect_pad;
pub mod scalar_gather;
pub mod split_to_slice;

/// What every pass may need besides the model itself.
#[derive(Debug, Clone, Default)]
pub struct PassContext {
    /// Fixed input shapes (graph input name → dims) from the recipe or `--input-shape`.
    pub input_shapes: BTreeMap<String, Vec<i64>>,
    /// Pass-specific options from the recipe (`[passes.options]`), e.g. the fp16 op block list.
    pub options: toml::Table,
}

/// What one pass changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PassReport {
    /// Recipe name of the pass.
    pub pass: String,
    /// Nodes in the graph before and after the pass.
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// How many sites the pass rewrote (0 = nothing to do).
    pub rewritten: usize,
    /// Human-readable details (one line each), e.g. "Pad_12 → 4 Slice + 2 Concat".
    #[serde(default)]
    pub details: Vec<String>,
}

/// One graph rewrite.
pub trait Pass: Send + Sync {
    /// Recipe name, e.g. `reflect-pad`.
    fn name(&self) -> &'static str;
    /// True when the rewritten graph must be bit-identical to the original (up to documented ORT
    /// kernel differences); false for approximate passes such as `fp16`.
    fn exact(&self) -> bool;
    /// Rewrites `model` in place and reports what changed. Must leave a valid graph (topologically
    /// sorted, no dangling values) and keep initializer order (the swapper's `emap` stays last).
    fn run(&self, model: &mut Model, ctx: &PassContext) -> Result<PassReport>;
}

/// Names of every pass [`pass_by_name`] knows, in the order a recipe would usually list them.
pub const PASS_NAMES: &[&str] =
    &["fold-shapes", "reflect-pad", "split-to-slice", "widen-scalar-gather", "fuse-io", "fp16", "quantize", "cleanup"];

/// Builds the pass called `name`. Options reach the pass at run time through
/// [`PassContext::options`].
pub fn pass_by_name(name: &str) -> Result<Box<dyn Pass>> {
    Ok(match name {
        "fold-shapes" => Box::new(fold_shapes::FoldShapes),
        "reflect-pad" => Box::new(reflect_pad::ReflectPad),
        "split-to-slice" => Box::new(split_to_slice::SplitToSlice),
        "widen-scalar-gather" => Box::new(scalar_gather::WidenScalarGather),
        "fuse-io" => Box::new(fuse_io::FuseIo),
        "fp16" => Box::new(fp16::Fp16),
        "quantize" => Box::new(quantize::Quantize),
        "cleanup" => Box::new(cleanup::Cleanup),
        _ => bail!("unknown rewrite pass `{name}` (known: {})", PASS_NAMES.join(", ")),
    })
}

/// Applies `passes` in order; stops at the first error, naming the pass.
pub fn run_passes(model: &mut Model, passes: &[Box<dyn Pass>], ctx: &PassContext) -> Result<Vec<PassReport>> {
    let mut reports = Vec::with_capacity(passes.len());
    for p in passes {
        let mut r = p.run(model, ctx).map_err(|e| e.context(format!("rewrite pass `{}` failed", p.name())))?;
        r.pass = p.name().to_string();
        reports.push(r);
    }
    Ok(reports)
}
