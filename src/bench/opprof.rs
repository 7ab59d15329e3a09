//! Per-op profile: ONNX Runtime's profiling JSON (a Chrome trace: one event per node execution)
//! aggregated by op type and by node.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Time spent in one op type or one node, over all profiled runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpTime {
    /// Op type (`Conv`) or node name.
    pub name: String,
    /// Op type of the node (same as `name` in the by-type table).
    pub op_type: String,
    /// Provider that ran it (`CPUExecutionProvider`, …; several joined by `+`).
    pub provider: String,
    /// Kernel executions counted.
    pub calls: u64,
    /// Mean time per profiled run, ms.
    pub ms_per_run: f64,
    /// Share of all kernel time, percent.
    pub percent: f64,
}

/// The aggregated profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpProfile {
    /// Runs the profile covers.
    pub runs: usize,
    /// Kernel time per run, ms (sum of all nodes).
    pub kernel_ms_per_run: f64,
    /// Whole `model_run` time per run as ORT measured it, ms (kernel time plus overheads).
    pub model_run_ms_per_run: Option<f64>,
    /// Nodes per provider (a node is counted once, however many runs).
    pub nodes_per_provider: Vec<(String, usize)>,
    /// Top op types by time.
    pub by_op_type: Vec<OpTime>,
    /// Top nodes by time.
    pub by_node: Vec<OpTime>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    cat: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    dur: f64,
    #[serde(default)]
    ts: f64,
    #[serde(default)]
    args: Args,
}

#[derive(Deserialize, Default)]
struct Args {
    #[serde(default)]
    op_name: String,
    #[serde(default)]
    provider: String,
}

#[derive(Default)]
struct Acc {
    op_type: String,
    providers: Vec<String>,
    calls: u64,
    us: f64,
}

impl Acc {
    fn add(&mut self, op_type: &str, provider: &str, us: f64) {
        if self.op_type.is_empty() {
            self.op_type = op_type.to_string();
        }
        if !provider.is_empty() && !self.providers.iter().any(|p| p == provider) {
            self.providers.push(provider.to_string());
        }
        self.calls += 1;
        self.us += us;
    }
}

fn top(map: HashMap<String, Acc>, total_us: f64, runs: usize, n: usize) -> Vec<OpTime> {
    let mut v: Vec<OpTime> = map
        .into_iter()
        .map(|(name, a)| OpTime {
            name,
            op_type: a.op_type,
            provider: a.providers.join("+"),
            calls: a.calls,
            ms_per_run: a.us / 1000.0 / runs as f64,
            percent: if total_us > 0.0 { 100.0 * a.us / total_us } else { 0.0 },
        })
        .collect();
    v.sort_by(|a, b| b.ms_per_run.total_cmp(&a.ms_per_run).then_with(|| a.name.cmp(&b.name)));
    v.truncate(n);
    v
}

/// Aggregates ORT profiling JSON text, skipping the first `skip_runs` runs (warm-up) and keeping the
/// `top_n` heaviest entries. Runs are delimited by ORT's `model_run` events.
pub fn aggregate(json: &str, skip_runs: usize, top_n: usize) -> Result<OpProfile> {
    let events: Vec<Event> = serde_json::from_str(json).context("not an ONNX Runtime profiling trace")?;
    let mut run_starts: Vec<(f64, f64)> =
        events.iter().filter(|e| e.cat == "Session" && e.name == "model_run").map(|e| (e.ts, e.dur)).collect();
    run_starts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let skip = if run_starts.len() > skip_runs { skip_runs } else { 0 };
    let since = run_starts.get(skip).map(|r| r.0).unwrap_or(f64::NEG_INFINITY);
    let kept = &run_starts[skip.min(run_starts.len())..];
    let runs = kept.len().max(1);
    let mut by_type: HashMap<String, Acc> = HashMap::new();
    let mut by_node: HashMap<String, Acc> = HashMap::new();
    let mut total_us = 0.0;
    for e in &events {
        // Each node execution is split into fence_before / kernel_time / fence_after; only the kernel counts.
        let Some(node) = e.name.strip_suffix("_kernel_time") else { continue };
        if e.cat != "Node" || e.ts < since {
            continue;
        }
        let op = if e.args.op_name.is_empty() { "?" } else { e.args.op_name.as_str() };
        by_type.entry(op.to_string()).or_default().add(op, &e.args.provider, e.dur);
        by_node.entry(node.to_string()).or_default().add(op, &e.args.provider, e.dur);
        total_us += e.dur;
    }
    let mut per_provider: HashMap<String, usize> = HashMap::new();
    for a in by_node.values() {
        *per_provider.entry(a.providers.first().cloned().unwrap_or_else(|| "?".into())).or_default() += 1;
    }
    let mut nodes_per_provider: Vec<(String, usize)> = per_provider.into_iter().collect();
    nodes_per_provider.sort();
    let model_run_ms_per_run =
        (!kept.is_empty()).then(|| kept.iter().map(|r| r.1).sum::<f64>() / kept.len() as f64 / 1000.0);
    Ok(OpProfile {
        runs,
        kernel_ms_per_run: total_us / 1000.0 / runs as f64,
        model_run_ms_per_run,
        nodes_per_provider,
        by_op_type: top(by_type, total_us, runs, top_n),
        by_node: top(by_node, total_us, runs, top_n),
    })
}

/// Reads and aggregates an ORT profiling file.
pub fn aggregate_file(path: &Path, skip_runs: usize, top_n: usize) -> Result<OpProfile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    aggregate(&text, skip_runs, top_n).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_by_type_and_node() {
        let ev = |name: &str, op: &str, dur: f64, ts: f64| {
            format!(
                r#"{{"cat":"Node","pid":1,"tid":1,"dur":{dur},"ts":{ts},"ph":"X","name":"{name}","args":{{"op_name":"{op}","provider":"CPUExecutionProvider"}}}}"#
            )
        };
        let run = |ts: f64, dur: f64| format!(r#"{{"cat":"Session","name":"model_run","ts":{ts},"dur":{dur}}}"#);
        let mut events = vec![r#"{"cat":"Session","name":"session_initialization","ts":0,"dur":5000}"#.to_string()];
        // A slow warm-up run at t=10000, then two steady runs; ORT writes model_run after the nodes.
        for (start, slow) in [(10_000.0, 50.0), (20_000.0, 1.0), (30_000.0, 1.0)] {
            events.push(ev("conv1_fence_before", "Conv", 1.0, start + 1.0));
            events.push(ev("conv1_kernel_time", "Conv", 600.0 * slow, start + 2.0));
            events.push(ev("conv2_kernel_time", "Conv", 200.0, start + 3.0));
            events.push(ev("relu_kernel_time", "Relu", 200.0, start + 4.0));
            events.push(run(start, 1100.0 * slow));
        }
        let json = format!("[{}]", events.join(",\n"));
        let p = aggregate(&json, 1, 2).unwrap();
        assert_eq!(p.runs, 2);
        assert!((p.kernel_ms_per_run - 1.0).abs() < 1e-9);
        assert_eq!(p.model_run_ms_per_run, Some(1.1));
        assert_eq!(p.by_op_type[0].name, "Conv");
        assert_eq!(p.by_op_type[0].calls, 4);
        assert!((p.by_op_type[0].percent - 80.0).abs() < 1e-9);
        assert_eq!(p.by_node.len(), 2);
        assert_eq!(p.by_node[0].name, "conv1");
        assert!((p.by_node[0].ms_per_run - 0.6).abs() < 1e-9);
        assert_eq!(p.nodes_per_provider, vec![("CPUExecutionProvider".to_string(), 3)]);
        assert!(aggregate("{", 1, 5).is_err());
    }
}
