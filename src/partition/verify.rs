//! Checks a prediction against what ONNX Runtime logged on real hardware.
//!
//! Run the model once with the session log level at VERBOSE (`log_severity_level=0`) and save the
//! output; this module reads, whichever of them the log holds:
//!
//! - the CoreML EP's summary: `… number of partitions supported by CoreML: N number of nodes in the
//!   graph: M number of nodes supported by CoreML: K`;
//! - the CoreML EP's per-node verdicts: `Operator type: [Pad] index: [3] name: [Pad_3] supported: [0]`;
//! - ORT's placement report: `Node(s) placed on [EP]. Number of nodes: N` (or `All nodes placed on
//!   …`), followed by one `OpType (node name)` line per node at VERBOSE;
//! - kernel EPs' fallbacks: `… kernel not found in registries for Op type: X node name: Y` and
//!   `Force fallback to CPU execution for node: Y …`.
//!
//! and compares each with the [`Plan`](super::Plan).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use serde::Serialize;

use super::Plan;

/// What a verbose ORT log says about placement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogFacts {
    /// From the CoreML summary line (the last one: ORT may call GetCapability more than once).
    pub partitions: Option<usize>,
    pub graph_nodes: Option<usize>,
    pub supported_nodes: Option<usize>,
    /// Per-node builder verdicts (node name → supported).
    pub node_support: BTreeMap<String, bool>,
    /// Provider → number of nodes placed on it (fused partitions count as one node).
    pub placed: BTreeMap<String, usize>,
    /// Node names placed on the CPU EP, when the log lists them.
    pub cpu_nodes: BTreeSet<String>,
    /// Nodes a kernel EP sent to the CPU (no kernel, or cheaper on the CPU).
    pub fallback_nodes: BTreeSet<String>,
}

fn between<'a>(line: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = line.find(start)? + start.len();
    let rest = &line[i..];
    let j = rest.find(end)?;
    Some(&rest[..j])
}

fn number_after(line: &str, key: &str) -> Option<usize> {
    let i = line.find(key)? + key.len();
    let digits: String = line[i..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Parses a verbose ORT log.
pub fn parse_log(text: &str) -> LogFacts {
    let mut f = LogFacts::default();
    // The provider whose node list follows a placement header, if any.
    let mut listing: Option<String> = None;
    for line in text.lines() {
        if line.contains("number of partitions supported by") {
            f.partitions = number_after(line, "number of partitions supported by CoreML:");
            f.graph_nodes = number_after(line, "number of nodes in the graph:");
            f.supported_nodes = number_after(line, "number of nodes supported by CoreML:");
            listing = None;
            continue;
        }
        if line.contains("Operator type: [") && line.contains("supported: [") {
            if let (Some(name), Some(flag)) = (between(line, "name: [", "]"), between(line, "supported: [", "]")) {
                f.node_support.insert(name.to_string(), flag.trim() == "1" || flag.trim() == "true");
            }
            continue;
        }
        if let Some(pos) = line.find("placed on [") {
            let ep = between(&line[pos..], "placed on [", "]").unwrap_or_default().to_string();
            if let Some(n) = number_after(line, "Number of nodes:") {
                f.placed.insert(ep.clone(), n);
            }
            listing = if line.contains("All nodes placed") { None } else { Some(ep) };
            continue;
        }
        if let Some(rest) = line.split("kernel not found in registries for Op type:").nth(1) {
            if let Some(n) = rest.split("node name:").nth(1) {
                f.fallback_nodes.insert(n.trim().to_string());
            }
            continue;
        }
        if let Some(rest) = line.split("Force fallback to CPU execution for node:").nth(1) {
            let name = rest.split(" because").next().unwrap_or(rest).trim();
            f.fallback_nodes.insert(name.to_string());
            continue;
        }
        // Node lines under a placement header: "...]   OpType (name)" or bare "  OpType (name)".
        if let Some(ep) = &listing {
            let body = line.rsplit_once("] ").map(|(_, b)| b).unwrap_or(line).trim();
            match (body.find(" ("), body.ends_with(')')) {
                (Some(i), true) if !body[..i].contains(' ') && !body.is_empty() => {
                    if ep == "CPUExecutionProvider" {
                        // ORT may list several names per op type: "Mul (a, b)".
                        for n in body[i + 2..body.len() - 1].split(", ") {
                            if !n.is_empty() {
                                f.cpu_nodes.insert(n.to_string());
                            }
                        }
                    }
                }
                _ if !body.is_empty() && !body.contains(' ') => {} // a fused node's name
                _ => listing = None,
            }
        }
    }
    f
}

/// One compared quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRow {
    pub what: String,
    pub predicted: String,
    pub observed: String,
    pub ok: bool,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub rows: Vec<CheckRow>,
    /// Nodes whose logged verdict disagrees with the predicted one: (name, logged, predicted rule).
    pub node_mismatches: Vec<String>,
    pub ok: bool,
}

impl VerifyReport {
    /// As text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for r in &self.rows {
            let mark = if r.ok { "ok  " } else { "DIFF" };
            s.push_str(&format!("  {mark} {:<28} predicted {:<10} observed {}\n", r.what, r.predicted, r.observed));
        }
        for m in &self.node_mismatches {
            s.push_str(&format!("  DIFF {m}\n"));
        }
        s.push_str(if self.ok { "  prediction matches the log\n" } else { "  prediction differs from the log\n" });
        s
    }
}

/// Compares `plan` with the facts of a verbose ORT log. Fails if the log holds no placement facts.
pub fn verify(plan: &Plan, log: &str) -> Result<VerifyReport> {
    let f = parse_log(log);
    if f.partitions.is_none() && f.node_support.is_empty() && f.placed.is_empty() && f.fallback_nodes.is_empty() {
        bail!(
            "the log has no placement lines; run the session with log_severity_level=0 (VERBOSE) and \
             {} enabled, and save its output",
            plan.provider
        );
    }
    let mut rows = Vec::new();
    let mut row = |what: &str, p: usize, o: Option<usize>| {
        if let Some(o) = o {
            rows.push(CheckRow { what: what.into(), predicted: p.to_string(), observed: o.to_string(), ok: p == o });
        }
    };
    row("partitions", plan.partitions.len(), f.partitions);
    row("nodes in the graph", plan.nodes, f.graph_nodes);
    row("nodes claimed", plan.claimed, f.supported_nodes);
    if plan.fuses {
        row(
            &format!("nodes placed on {}", plan.provider),
            plan.partitions.len(),
            f.placed.get(&plan.provider).copied(),
        );
    } else {
        // ORT inserts one Memcpy node per tensor copied between a CPU node and the device, and
        // places it on the device EP; graph inputs and outputs are copied without nodes.
        let copies: BTreeSet<(&str, &str)> = plan
            .crossings
            .iter()
            .filter(|c| c.peer.starts_with("CPU node") && c.bytes != Some(0))
            .map(|c| (c.tensor.as_str(), c.direction.as_str()))
            .collect();
        row(
            &format!("nodes placed on {} (+copies)", plan.provider),
            plan.claimed + copies.len(),
            f.placed.get(&plan.provider).copied(),
        );
    }
    row("nodes placed on CPU", plan.cpu_nodes.len(), f.placed.get("CPUExecutionProvider").copied());

    let mut node_mismatches = Vec::new();
    // Builder verdicts (before grouping): compare with the rule verdict, not the placement.
    for v in &plan.verdicts {
        if let Some(&logged) = f.node_support.get(&v.name) {
            let predicted =
                v.reason.is_none() || v.rule.ends_with(":drop-trivial") || v.rule.ends_with(":cpu-preferred");
            if logged != predicted {
                node_mismatches.push(format!(
                    "{} ({}): log says {}, predicted {} [{}]",
                    v.name,
                    v.op,
                    if logged { "supported" } else { "unsupported" },
                    if predicted { "supported" } else { "unsupported" },
                    v.rule
                ));
            }
        }
    }
    let predicted_cpu: BTreeSet<String> = plan.cpu_nodes.iter().map(|v| v.name.clone()).collect();
    let observed_cpu: BTreeSet<String> = f.cpu_nodes.union(&f.fallback_nodes).cloned().collect();
    if !observed_cpu.is_empty() {
        for n in observed_cpu.difference(&predicted_cpu) {
            node_mismatches.push(format!("{n}: on the CPU in the log, predicted on {}", plan.ep));
        }
        if !f.cpu_nodes.is_empty() {
            for n in predicted_cpu.difference(&f.cpu_nodes) {
                node_mismatches.push(format!("{n}: predicted on the CPU, not listed on the CPU in the log"));
            }
        }
    }
    let ok = rows.iter().all(|r| r.ok) && node_mismatches.is_empty();
    Ok(VerifyReport { rows, node_mismatches, ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COREML_LOG: &str = "\
2026-04-15 [V:onnxruntime:, helper.cc:120 GetSupportedNodes] Operator type: [Pad] index: [0] name: [Pad_1] supported: [0]
2026-04-15 [V:onnxruntime:, helper.cc:120 GetSupportedNodes] Operator type: [Conv] index: [1] name: [Conv_2] supported: [1]
[W:onnxruntime:, coreml_execution_provider.cc:113 GetCapability] CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 14 number of nodes in the graph: 226 number of nodes supported by CoreML: 212
[V:onnxruntime:, session_state.cc:1313 VerifyEachNodeIsAssignedToAnEp] Node placements
[V:onnxruntime:, session_state.cc:1313 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CoreMLExecutionProvider]. Number of nodes: 14
[V:onnxruntime:, session_state.cc:1316 VerifyEachNodeIsAssignedToAnEp]   CoreMLExecutionProvider_CoreML_123_0_0
[V:onnxruntime:, session_state.cc:1313 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 14
[V:onnxruntime:, session_state.cc:1316 VerifyEachNodeIsAssignedToAnEp]   Pad (Pad_1)
[V:onnxruntime:, session_state.cc:1316 VerifyEachNodeIsAssignedToAnEp]   Pad (Pad_5, Pad_9)
[I:onnxruntime:, inference_session.cc:2000 Initialize] Session successfully initialized.
";

    #[test]
    fn coreml_log_lines_are_read() {
        let f = parse_log(COREML_LOG);
        assert_eq!(f.partitions, Some(14));
        assert_eq!(f.graph_nodes, Some(226));
        assert_eq!(f.supported_nodes, Some(212));
        assert_eq!(f.node_support.get("Pad_1"), Some(&false));
        assert_eq!(f.node_support.get("Conv_2"), Some(&true));
        assert_eq!(f.placed.get("CoreMLExecutionProvider"), Some(&14));
        assert_eq!(f.placed.get("CPUExecutionProvider"), Some(&14));
        let cpu: Vec<&str> = f.cpu_nodes.iter().map(String::as_str).collect();
        assert_eq!(cpu, vec!["Pad_1", "Pad_5", "Pad_9"]);
    }

    #[test]
    fn kernel_ep_fallback_lines_are_read() {
        let log = "\
[W:onnxruntime:, fallback_cpu_capability.cc:160 GetCpuPreferredNodes] ORT optimization- Force fallback to CPU execution for node: Shape_7 because the CPU execution path is deemed faster than overhead involved with execution on other EPs capable of executing this node
[I:onnxruntime:, cuda_execution_provider.cc:2500 GetCapability] CUDA kernel not found in registries for Op type: Foo node name: Foo_3
[V:onnxruntime:, session_state.cc:1313 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on [CUDAExecutionProvider]. Number of nodes: 40
";
        let f = parse_log(log);
        assert!(f.fallback_nodes.contains("Shape_7"));
        assert!(f.fallback_nodes.contains("Foo_3"));
        assert_eq!(f.placed.get("CUDAExecutionProvider"), Some(&40));
    }
}
