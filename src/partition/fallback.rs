//! No silent fallback: which nodes of a model an execution provider leaves to ORT's CPU provider,
//! said before a session runs. With `--strict-ep` (or `strict_ep = true` in a profile) the session is
//! built with ORT's `session.disable_cpu_ep_fallback`, and a model the EP does not take whole fails at
//! load with one line naming the nodes, the partition planner's reasons and the rewrite that fixes them;
//! without it, the run says how many nodes go to the CPU.

use serde::Serialize;

use super::{plan, Ep, Format, NodeVerdict, OrtVersion, PlanOptions};
use crate::onnx::Model;
use crate::runtime::EpConfig;

/// The planner's view of one model under one provider configuration.
#[derive(Debug, Clone, Serialize)]
pub struct FallbackReport {
    /// ORT's provider name, e.g. `CoreMLExecutionProvider`.
    pub provider: String,
    pub ort_version: OrtVersion,
    pub format: Option<Format>,
    /// Nodes ORT partitions (after its pre-partition optimisations).
    pub nodes: usize,
    /// Partitions the EP gets.
    pub partitions: usize,
    /// Nodes left to the CPU provider, each with the rule that rejected it.
    pub cpu_nodes: Vec<NodeVerdict>,
    /// The rewrite that moves them to the EP, when one does (`faceperf optimize --target …`).
    pub fix: Option<String>,
}

/// The planner's EP and CoreML format for a provider configuration; `None` for the CPU provider and
/// providers without rules (every node of theirs counts as taken).
pub fn planner_ep(ep: &EpConfig) -> Option<(Ep, Option<Format>)> {
    match ep {
        EpConfig::Coreml { format, .. } => {
            let f = if format == "neuralnetwork" { Format::Neuralnetwork } else { Format::Mlprogram };
            Some((Ep::Coreml, Some(f)))
        }
        EpConfig::Cuda { .. } | EpConfig::Tensorrt { .. } => Some((Ep::Cuda, None)),
        EpConfig::Directml { .. } => Some((Ep::Directml, None)),
        EpConfig::Cpu { .. } => None,
    }
}

/// Plans `model` for `ep` under ORT `ort_version` (e.g. `1.22.0`); `None` when the EP has no rules or
/// the version is outside them.
pub fn check(model: &Model, ep: &EpConfig, ort_version: &str) -> Option<FallbackReport> {
    let (pep, format) = planner_ep(ep)?;
    let ort: OrtVersion = ort_version.parse().ok()?;
    let mut opts = PlanOptions::new(pep, ort);
    opts.format = format;
    let p = plan(model, &opts).ok()?;
    let fix = if p.cpu_nodes.is_empty() { None } else { fixing_rewrite(model, pep, &opts, p.cpu_nodes.len()) };
    Some(FallbackReport {
        provider: ep.provider_name().to_string(),
        ort_version: ort,
        format: p.format,
        nodes: p.nodes,
        partitions: p.partitions.len(),
        cpu_nodes: p.cpu_nodes,
        fix,
    })
}

/// The built-in recipe of the EP's `optimize` target, if running it leaves fewer nodes on the CPU.
fn fixing_rewrite(model: &Model, ep: Ep, opts: &PlanOptions, before: usize) -> Option<String> {
    let target = match ep {
        Ep::Coreml => "coreml",
        Ep::Cuda => "cuda",
        Ep::Directml => return None,
    };
    let recipe = crate::rewrite::recipe::Recipe::builtin(target).ok()?;
    let passes = recipe.build_passes().ok()?;
    let ctx = recipe.context(0, None, &recipe.input_shapes(None, &Default::default()));
    let impact = super::recipe_impact(model, &passes, &ctx, opts).ok()?;
    let after = impact.overall.after.cpu_nodes;
    if after >= before {
        return None;
    }
    let helped: Vec<&str> = impact.steps.iter().filter(|s| s.verdict == "needed").map(|s| s.pass.as_str()).collect();
    Some(format!(
        "`faceperf optimize --target {target}` ({} {before} → {after} CPU node(s))",
        if helped.is_empty() { "the recipe:".to_string() } else { format!("pass {}:", helped.join(", ")) }
    ))
}

impl FallbackReport {
    /// `reflect_pad_1 (Pad: only constant-mode …), …` for the first `n` CPU nodes.
    pub fn node_list(&self, n: usize) -> String {
        let mut parts: Vec<String> = self
            .cpu_nodes
            .iter()
            .take(n)
            .map(|v| match &v.reason {
                Some(r) => format!("{} ({}: {r})", v.name, v.op),
                None => format!("{} ({})", v.name, v.op),
            })
            .collect();
        if self.cpu_nodes.len() > n {
            parts.push(format!("{} more", self.cpu_nodes.len() - n));
        }
        parts.join(", ")
    }

    /// The one-line error of a strict run: the nodes, the planner's verdict, the fix.
    pub fn strict_error(&self, model: &str) -> String {
        let fmt = self.format.map(|f| format!(", {f}")).unwrap_or_default();
        let hint = self.cpu_nodes.iter().find_map(|v| v.hint.clone());
        let fix = match (&self.fix, hint) {
            (Some(f), _) => format!("fix: {f}"),
            (None, Some(h)) => format!("no rewrite fixes them; the planner says: {h}"),
            (None, None) => "no rewrite fixes them: run without --strict-ep or on another provider".into(),
        };
        format!(
            "{model}: --strict-ep: {} does not take {} of {} node(s): {}; partition planner (ORT {}{fmt}): {} partition(s), the rest on the CPU; {fix}",
            self.provider,
            self.cpu_nodes.len(),
            self.nodes,
            self.node_list(3),
            self.ort_version,
            self.partitions
        )
    }

    /// The note of a non-strict run, `None` when the EP takes every node.
    pub fn note(&self, model: &str) -> Option<String> {
        (!self.cpu_nodes.is_empty()).then(|| {
            format!(
                "{model}: {} of {} node(s) go to the CPU provider under {} (partition planner, ORT {}): {}{}",
                self.cpu_nodes.len(),
                self.nodes,
                self.provider,
                self.ort_version,
                self.node_list(3),
                self.fix.as_ref().map(|f| format!("; fix: {f}")).unwrap_or_default()
            )
        })
    }
}
