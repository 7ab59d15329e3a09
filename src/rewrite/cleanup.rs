//! `cleanup`: removes `Identity` nodes (graph output names preserved), nodes that reach no graph
//! output and initializers nothing reads, then re-sorts the nodes topologically.
//!
//! The swapper's `emap` is read by no node but by insightface, as the *last* initializer: it is
//! never dropped, and kept last. Graph inputs are the model's interface and always stay. Every step
//! only removes nodes that copy or compute nothing the outputs depend on: exact.

use std::collections::HashSet;

use anyhow::Result;

use super::edit::{self, EMAP};
use super::{Pass, PassContext, PassReport};
use crate::onnx::proto::GraphProto;
use crate::onnx::{node_label, GraphIndex, Model};

/// The `cleanup` pass.
#[derive(Debug, Clone, Default)]
pub struct Cleanup;

impl Pass for Cleanup {
    fn name(&self) -> &'static str {
        "cleanup"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, model: &mut Model, _ctx: &PassContext) -> Result<PassReport> {
        let mut report = edit::report(self.name(), model);
        let g = model.graph_mut();
        remove_identities(g, &mut report);
        remove_dead_nodes(g, &mut report)?;
        remove_unused_initializers(g, &mut report);
        if let Some(pos) = g.initializer.iter().position(|t| t.name == EMAP) {
            if pos + 1 != g.initializer.len() {
                let t = g.initializer.remove(pos);
                g.initializer.push(t);
                report.details.push("emap moved back to the last initializer".into());
                report.rewritten += 1;
            }
        }
        if edit::topo_sort(g)? {
            report.details.push("nodes re-sorted topologically".into());
            report.rewritten += 1;
        }
        edit::prune_value_info(g);
        edit::finish(report, model)
    }
}

fn rename_value(g: &mut GraphProto, from: &str, to: &str) {
    for n in &mut g.node {
        for v in n.input.iter_mut().chain(n.output.iter_mut()).filter(|v| *v == from) {
            *v = to.to_string();
        }
    }
}

fn remove_identities(g: &mut GraphProto, report: &mut PassReport) {
    let captured = edit::captured_values(g);
    let is_output = |g: &GraphProto, v: &str| g.output.iter().any(|o| o.name == v);
    let mut i = 0;
    while i < g.node.len() {
        let n = &g.node[i];
        if n.op_type != "Identity" || !edit::is_default_domain(n) || n.input.len() != 1 || n.output.len() != 1 {
            i += 1;
            continue;
        }
        let (x, y, label) = (n.input[0].clone(), n.output[0].clone(), node_label(n));
        if captured.contains(&y) || captured.contains(&x) {
            i += 1;
            continue;
        }
        if is_output(g, &y) {
            // Keep the output's name: the value it copies takes that name instead, when the value
            // is a node's output that is not itself a graph output.
            let produced = g.node.iter().any(|m| m.output.contains(&x));
            if !produced || is_output(g, &x) {
                i += 1;
                continue;
            }
            g.node.remove(i);
            rename_value(g, &x, &y);
            g.value_info.retain(|v| v.name != x);
            report.details.push(format!("{label}: removed, '{x}' renamed to the graph output '{y}'"));
        } else {
            g.node.remove(i);
            rename_value(g, &y, &x);
            g.value_info.retain(|v| v.name != y);
            report.details.push(format!("{label}: removed, readers of '{y}' read '{x}'"));
        }
        report.rewritten += 1;
    }
}

fn remove_dead_nodes(g: &mut GraphProto, report: &mut PassReport) -> Result<()> {
    let idx = GraphIndex::new(g)?;
    let dead: HashSet<usize> = idx.dead_nodes(g).into_iter().collect();
    if dead.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> =
        dead.iter().map(|&i| format!("{}: removed, reaches no graph output", node_label(&g.node[i]))).collect();
    lines.sort();
    report.details.extend(lines);
    report.rewritten += dead.len();
    let mut k = 0;
    g.node.retain(|_| {
        k += 1;
        !dead.contains(&(k - 1))
    });
    Ok(())
}

fn remove_unused_initializers(g: &mut GraphProto, report: &mut PassReport) {
    let mut read: HashSet<String> = g.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
    read.extend(g.output.iter().map(|v| v.name.clone()));
    read.extend(edit::captured_values(g));
    let mut removed = HashSet::new();
    g.initializer.retain(|t| {
        let keep = read.contains(&t.name) || t.name == EMAP;
        if !keep {
            removed.insert(t.name.clone());
        }
        keep
    });
    if removed.is_empty() {
        return;
    }
    g.input.retain(|v| !removed.contains(&v.name));
    let mut names: Vec<_> = removed.into_iter().collect();
    names.sort();
    report.rewritten += names.len();
    for n in names {
        report.details.push(format!("initializer '{n}': removed, nothing reads it"));
    }
}
