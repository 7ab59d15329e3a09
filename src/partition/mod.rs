//! Partition planner: predicts how an execution provider splits a model, per ONNX Runtime version.
//!
//! ONNX Runtime hands each execution provider (EP) the graph after its basic optimisations; the EP
//! says which nodes it can run; ORT groups the claimed nodes into partitions (fused subgraphs for
//! compiling EPs such as CoreML) and runs everything else on the CPU, copying tensors across every
//! boundary. This module reproduces those three steps offline, from data:
//!
//! 1. [`prepass`]: the optimisations ORT applies before partitioning (constant folding, shape-chain
//!    folding when shapes are static, identity elimination, reshape fusion, Conv+BN/Add/Mul fusion);
//! 2. [`rules`]: per-EP support tables (`rules/*.toml`, embedded) with the ORT version each rule
//!    holds from, the model format, and conditions on attributes, ranks, shapes, dtypes and constant
//!    inputs, each with the reason it rejects a node;
//! 3. [`partitioner`]: ORT's greedy wave grouping of claimed nodes, respecting topological order.
//!
//! [`plan`] runs the three and returns a [`Plan`]: partitions, their sizes, the unsupported node at
//! each boundary and the rule that rejected it, and the tensors (with bytes) crossing EP↔CPU.
//! [`compare`] gives the before/after view of a rewrite, [`pass_impact`] says whether a rewrite pass
//! changes anything under the chosen rules (e.g. the reflect-Pad rewrite is unnecessary for CoreML
//! from ORT 1.26), and [`verify`] checks a prediction against ORT's own verbose log.

pub mod fallback;
pub mod partitioner;
pub mod prepass;
pub mod render;
pub mod rules;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::onnx::Model;

pub use partitioner::{Crossing, NodeVerdict, Partition};
pub use prepass::PrepassReport;
pub use rules::{table, RuleTable, Verdict};

/// An execution provider the planner has rules for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Ep {
    /// Apple CoreML (compiling EP: each partition becomes one CoreML model).
    Coreml,
    /// NVIDIA CUDA (kernel EP: nodes run one by one; partitions are regions between CPU nodes).
    Cuda,
    /// DirectML on Windows (kernel EP, like CUDA).
    Directml,
}

impl Ep {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Ep::Coreml => "coreml",
            Ep::Cuda => "cuda",
            Ep::Directml => "directml",
        }
    }
}

impl fmt::Display for Ep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The model format a CoreML session builds (`ModelFormat` provider option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ML Program (`ModelFormat=MLProgram`): more ops, float16.
    Mlprogram,
    /// The older NeuralNetwork format (ORT's default for the CoreML EP).
    Neuralnetwork,
}

impl Format {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mlprogram => "mlprogram",
            Format::Neuralnetwork => "neuralnetwork",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An ONNX Runtime release, compared by (major, minor); the patch level never changes EP support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrtVersion {
    pub major: u32,
    pub minor: u32,
}

impl OrtVersion {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> OrtVersion {
        OrtVersion { major, minor }
    }
}

/// The ORT version assumed when none is given: the release Deep-Live-Cam's Apple instructions pin.
pub const DEFAULT_ORT: OrtVersion = OrtVersion::new(1, 22);

impl FromStr for OrtVersion {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<OrtVersion> {
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let parse = |p: Option<&str>| -> Result<u32> {
            let p = p.ok_or_else(|| anyhow::anyhow!("ORT version '{s}': expected MAJOR.MINOR, e.g. 1.22"))?;
            p.parse::<u32>().map_err(|_| anyhow::anyhow!("ORT version '{s}': '{p}' is not a number"))
        };
        let major = parse(parts.next())?;
        let minor = parse(parts.next())?;
        // A patch level (and anything after it, e.g. "1.22.1-dev") is accepted and ignored.
        Ok(OrtVersion { major, minor })
    }
}

impl fmt::Display for OrtVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for OrtVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for OrtVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<OrtVersion, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What to plan for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    pub ep: Ep,
    /// CoreML model format; `None` takes the table's default (ML Program for CoreML). Ignored by EPs
    /// without formats.
    pub format: Option<Format>,
    pub ort_version: OrtVersion,
    /// Input shapes the session fixes (free-dimension overrides). Empty: the shapes the model
    /// declares, symbolic dimensions staying unknown as they do in ORT.
    pub input_shapes: BTreeMap<String, Vec<i64>>,
}

impl PlanOptions {
    /// Options for `ep` under `ort_version`, default format, declared input shapes.
    pub fn new(ep: Ep, ort_version: OrtVersion) -> PlanOptions {
        PlanOptions { ep, format: None, ort_version, input_shapes: BTreeMap::new() }
    }

    /// The same options with another model format.
    pub fn with_format(mut self, format: Format) -> PlanOptions {
        self.format = Some(format);
        self
    }
}

/// The prediction for one model.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub ep: Ep,
    /// ORT's provider name, e.g. `CoreMLExecutionProvider`.
    pub provider: String,
    pub format: Option<Format>,
    pub ort_version: OrtVersion,
    /// True for compiling EPs: every partition becomes one fused node.
    pub fuses: bool,
    /// Nodes in the model as given.
    pub model_nodes: usize,
    /// Nodes ORT partitions, after its pre-partitioning optimisations.
    pub nodes: usize,
    pub prepass: PrepassReport,
    /// Nodes inside kept partitions.
    pub claimed: usize,
    pub partitions: Vec<Partition>,
    /// Groups the EP would have claimed but ORT discards (e.g. trivial-only groups from ORT 1.27).
    pub discarded: Vec<Partition>,
    /// Nodes left to the CPU EP, each with the rule that rejected it.
    pub cpu_nodes: Vec<NodeVerdict>,
    /// Tensors crossing between the EP and the CPU, once per (tensor, direction).
    pub crossings: Vec<Crossing>,
    /// Total bytes crossing per inference, when every crossing tensor has a static shape.
    pub crossing_bytes: Option<u64>,
    /// Crossing tensors whose size is unknown (symbolic dims).
    pub crossing_unknown: usize,
    /// Verdict per node (after the prepass), in topological order.
    pub verdicts: Vec<NodeVerdict>,
}

impl Plan {
    /// Number of kept partitions.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Unsupported nodes counted by op type.
    pub fn cpu_ops(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for n in &self.cpu_nodes {
            *m.entry(n.op.clone()).or_insert(0) += 1;
        }
        m
    }

    /// The short form used in comparisons and reports.
    pub fn summary(&self) -> PlanSummary {
        PlanSummary {
            nodes: self.nodes,
            claimed: self.claimed,
            partitions: self.partitions.len(),
            cpu_nodes: self.cpu_nodes.len(),
            cpu_ops: self.cpu_ops(),
            crossing_bytes: self.crossing_bytes,
        }
    }
}

/// Predicts how `opts.ep` partitions `model`.
pub fn plan(model: &Model, opts: &PlanOptions) -> Result<Plan> {
    let table = rules::table(opts.ep)?;
    if opts.ort_version < table.oldest {
        bail!("the {} rules describe ORT {} and later, not {}", opts.ep, table.oldest, opts.ort_version);
    }
    let format = table.resolve_format(opts.format)?;
    let (optimised, report) =
        prepass::run(model, &opts.input_shapes).context("simulating ORT's graph optimisations")?;
    partitioner::partition(&optimised, model.graph().node.len(), report, table, format, opts.ort_version)
}

/// Counts of one plan, for before/after tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSummary {
    pub nodes: usize,
    pub claimed: usize,
    pub partitions: usize,
    pub cpu_nodes: usize,
    pub cpu_ops: BTreeMap<String, usize>,
    pub crossing_bytes: Option<u64>,
}

/// The same EP, format and ORT version applied to a model before and after a rewrite.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub ep: Ep,
    pub format: Option<Format>,
    pub ort_version: OrtVersion,
    pub before: PlanSummary,
    pub after: PlanSummary,
}

impl Comparison {
    /// True when the rewrite changes nothing the EP cares about: same partitions, same claimed
    /// node count and same nodes left to the CPU.
    pub fn unchanged(&self) -> bool {
        self.before.partitions == self.after.partitions
            && self.before.cpu_ops == self.after.cpu_ops
            && self.before.cpu_nodes == self.after.cpu_nodes
    }
}

/// Plans `before` and `after` under the same options.
pub fn compare(before: &Model, after: &Model, opts: &PlanOptions) -> Result<Comparison> {
    let b = plan(before, opts).context("planning the model before the rewrite")?;
    let a = plan(after, opts).context("planning the model after the rewrite")?;
    Ok(Comparison {
        ep: opts.ep,
        format: b.format,
        ort_version: opts.ort_version,
        before: b.summary(),
        after: a.summary(),
    })
}

/// Whether one rewrite pass matters under the given rules.
#[derive(Debug, Clone, Serialize)]
pub struct PassImpact {
    /// Recipe name of the pass.
    pub pass: String,
    /// Sites the pass rewrote in this model.
    pub rewritten: usize,
    pub comparison: Comparison,
    /// `needed`: fewer partitions or CPU nodes after it; `unnecessary`: it rewrites sites but the EP
    /// already claims them; `harmful`: more partitions or CPU nodes after it; `no-op`: nothing to
    /// rewrite.
    pub verdict: String,
    /// One line for humans.
    pub note: String,
}

/// Applies `pass` to `model` (in place) and says whether the rewrite mattered under `opts`: e.g.
/// `reflect-pad` is needed for CoreML ML Program before ORT 1.26 and unnecessary from 1.26.
pub fn pass_impact(
    model: &mut Model,
    pass: &dyn crate::rewrite::Pass,
    ctx: &crate::rewrite::PassContext,
    opts: &PlanOptions,
) -> Result<PassImpact> {
    let before = model.clone();
    let report = pass.run(model, ctx).with_context(|| format!("running pass `{}`", pass.name()))?;
    let comparison = compare(&before, model, opts)?;
    let what = format!(
        "{} (ORT {}{})",
        opts.ep,
        opts.ort_version,
        comparison.format.map(|f| format!(", {f}")).unwrap_or_default()
    );
    let (b, a) = (&comparison.before, &comparison.after);
    let key = |p: &PlanSummary| (p.partitions, p.cpu_nodes);
    let change =
        format!("{} → {} partition(s), {} → {} CPU node(s)", b.partitions, a.partitions, b.cpu_nodes, a.cpu_nodes);
    let (verdict, note) = if report.rewritten == 0 {
        ("no-op", format!("`{}` finds nothing to rewrite", pass.name()))
    } else if key(a) < key(b) {
        ("needed", format!("`{}` rewrites {} site(s): {what} {change}", pass.name(), report.rewritten))
    } else if key(a) > key(b) {
        ("harmful", format!("`{}` rewrites {} site(s) and makes {what} worse: {change}", pass.name(), report.rewritten))
    } else {
        (
            "unnecessary",
            format!(
                "`{}` rewrites {} site(s), but {what} claims them already: {} partition(s) either way",
                pass.name(),
                report.rewritten,
                b.partitions
            ),
        )
    };
    Ok(PassImpact {
        pass: pass.name().to_string(),
        rewritten: report.rewritten,
        comparison,
        verdict: verdict.into(),
        note,
    })
}

/// A recipe's effect: each pass in order (each judged on the output of the ones before it), and the
/// model before the first against after the last.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeImpact {
    pub steps: Vec<PassImpact>,
    pub overall: Comparison,
}

/// Runs `passes` in order on a copy of `model`, judging each step and the whole under `opts`. This is
/// the before/after view `optimize` and reports show.
pub fn recipe_impact(
    model: &Model,
    passes: &[Box<dyn crate::rewrite::Pass>],
    ctx: &crate::rewrite::PassContext,
    opts: &PlanOptions,
) -> Result<RecipeImpact> {
    let mut current = model.clone();
    let mut steps = Vec::with_capacity(passes.len());
    for p in passes {
        steps.push(pass_impact(&mut current, p.as_ref(), ctx, opts)?);
    }
    let overall = compare(model, &current, opts)?;
    Ok(RecipeImpact { steps, overall })
}

/// Over a range of ORT releases: in which ones each pass of a recipe is needed.
#[derive(Debug, Clone, Serialize)]
pub struct PassNeed {
    pub pass: String,
    /// Releases where the pass reduces partitions or CPU nodes (given the passes before it).
    pub needed_in: Vec<OrtVersion>,
    /// One line for humans, e.g. "needed in ORT 1.20–1.25".
    pub summary: String,
}

/// Collapses releases into ranges: `1.20–1.25, 1.27`.
pub fn ranges(v: &[OrtVersion]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].major == v[j].major && v[j + 1].minor == v[j].minor + 1 {
            j += 1;
        }
        out.push(if i == j { v[i].to_string() } else { format!("{}–{}", v[i], v[j]) });
        i = j + 1;
    }
    out.join(", ")
}

/// Summarises [`recipe_impact`]s made for several releases (same model, EP and format, the releases in
/// ascending order) into the releases each pass is needed in.
pub fn pass_needs(impacts: &[(OrtVersion, RecipeImpact)]) -> Vec<PassNeed> {
    let Some((_, first)) = impacts.first() else { return vec![] };
    first
        .steps
        .iter()
        .enumerate()
        .map(|(k, step)| {
            let needed_in: Vec<OrtVersion> = impacts
                .iter()
                .filter(|(_, r)| r.steps.get(k).is_some_and(|s| s.verdict == "needed"))
                .map(|(v, _)| *v)
                .collect();
            let all: Vec<OrtVersion> = impacts.iter().map(|(v, _)| *v).collect();
            let summary = if needed_in.is_empty() {
                format!("not needed in ORT {}", ranges(&all))
            } else {
                format!("needed in ORT {} (of {})", ranges(&needed_in), ranges(&all))
            };
            PassNeed { pass: step.pass.clone(), needed_in, summary }
        })
        .collect()
}

/// Parses `--input-shape NAME=DIMS` options into a map (later duplicates win).
pub fn parse_input_shapes(specs: &[String]) -> Result<BTreeMap<String, Vec<i64>>> {
    let mut m = BTreeMap::new();
    for s in specs {
        let (k, v) = crate::onnx::shape::parse_input_shape(s)?;
        if v.iter().any(|&d| d <= 0) {
            bail!("--input-shape '{s}': every dimension must be positive");
        }
        m.insert(k, v);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        let v: OrtVersion = "1.22.1".parse().unwrap();
        assert_eq!(v, OrtVersion::new(1, 22));
        assert!(OrtVersion::new(1, 9) < OrtVersion::new(1, 26));
        assert_eq!("v1.27".parse::<OrtVersion>().unwrap().to_string(), "1.27");
        assert!("1".parse::<OrtVersion>().is_err());
        assert!("one.two".parse::<OrtVersion>().is_err());
    }
}
