//! Text rendering of plans and comparisons (JSON is the serde form of the same structs).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Comparison, PassImpact, Plan};
use crate::onnx::summary::si;

/// Human size of a byte count (`None`: unknown).
pub fn bytes(b: Option<u64>) -> String {
    match b {
        Some(b) if b < 1024 => format!("{b} B"),
        Some(b) => format!("{}B", si(b as f64)),
        None => "? B".into(),
    }
}

fn ops_line(ops: &BTreeMap<String, usize>, max: usize) -> String {
    let mut v: Vec<(&String, &usize)> = ops.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> =
        v.iter().take(max).map(|(k, n)| if **n > 1 { format!("{k}×{n}") } else { k.to_string() }).collect();
    if v.len() > max {
        parts.push(format!("+{} more", v.len() - max));
    }
    parts.join(" ")
}

/// The headline: EP, format, ORT version.
pub fn target(plan: &Plan) -> String {
    let fmt = plan.format.map(|f| format!(" {f}")).unwrap_or_default();
    format!("{}{fmt}, ORT {} rules", plan.provider, plan.ort_version)
}

/// A plan as text. `detail` lists every partition and every CPU node instead of summaries.
pub fn plan_text(plan: &Plan, model: &str, detail: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{model} — {}", target(plan));
    let pre = &plan.prepass;
    let mut changes = Vec::new();
    if !pre.inputs_fixed.is_empty() {
        changes.push(format!("fixed input shapes of {}", pre.inputs_fixed.join(", ")));
    }
    for (n, what) in [
        (pre.constants, "Constant → initializer"),
        (pre.folded, "folded to constants"),
        (pre.identities_removed, "Identity removed"),
        (pre.duplicates_merged, "duplicates merged"),
        (pre.reshape_fusions, "Reshape targets fused"),
        (pre.reshape_chains, "merged into Reshape chains"),
        (pre.conv_fusions, "fused into Conv"),
        (pre.dead_removed, "dead removed"),
    ] {
        if n > 0 {
            changes.push(format!("{n} {what}"));
        }
    }
    if pre.shapes_folded > 0 {
        changes.push(format!("({} of them Shape)", pre.shapes_folded));
    }
    let changes = if changes.is_empty() { "no change".to_string() } else { changes.join(", ") };
    let _ = writeln!(
        s,
        "  ORT graph optimisations before partitioning: {} → {} nodes ({changes})",
        plan.model_nodes, plan.nodes
    );
    let unit = if plan.fuses { "partition" } else { "EP region" };
    let _ = writeln!(
        s,
        "  {} claims {} of {} nodes in {} {unit}{}; {} node(s) on the CPU",
        plan.ep,
        plan.claimed,
        plan.nodes,
        plan.partitions.len(),
        if plan.partitions.len() == 1 { "" } else { "s" },
        plan.cpu_nodes.len()
    );
    if !plan.fuses {
        let _ = writeln!(s, "  ({} runs nodes one by one; regions are what lies between host↔device copies)", plan.ep);
    }
    let show = if detail { plan.partitions.len() } else { plan.partitions.len().min(12) };
    for p in plan.partitions.iter().take(show) {
        let _ = writeln!(
            s,
            "  #{:<3} {:>4} nodes  {}  in {} / out {}",
            p.index,
            p.nodes,
            ops_line(&p.ops, 4),
            bytes(p.input_bytes),
            bytes(p.output_bytes)
        );
        if let Some(b) = p.border.first() {
            let more = if p.border.len() > 1 { format!(" (+{} more)", p.border.len() - 1) } else { String::new() };
            let _ = writeln!(s, "        stopped by {} ({}){more}: {} [{}]", b.name, b.op, b.reason, b.rule);
        }
    }
    if show < plan.partitions.len() {
        let _ = writeln!(s, "  … {} more partitions (--detail lists them)", plan.partitions.len() - show);
    }
    for p in &plan.discarded {
        let _ = writeln!(
            s,
            "  discarded group of {} trivial node(s): {} (ORT ≥ 1.27 heuristic)",
            p.nodes,
            ops_line(&p.ops, 4)
        );
    }
    if !plan.cpu_nodes.is_empty() {
        let _ = writeln!(s, "  on the CPU:");
        // Group by (op, rule, reason) so 14 identical Pads print once.
        type Key = (String, String, String);
        let mut groups: BTreeMap<Key, (Vec<String>, Option<String>)> = BTreeMap::new();
        for v in &plan.cpu_nodes {
            let key = (v.op.clone(), v.rule.clone(), v.reason.clone().unwrap_or_default());
            groups.entry(key).or_insert_with(|| (vec![], v.hint.clone())).0.push(v.name.clone());
        }
        for ((op, rule, reason), (names, hint)) in groups {
            let n = names.len();
            let examples =
                if detail || names.len() <= 3 { names.join(", ") } else { format!("{}, … ", names[..2].join(", ")) };
            let _ = writeln!(s, "    {n:>3}× {op:<12} {reason} [{rule}]");
            let _ = writeln!(s, "          {examples}");
            if let Some(h) = hint {
                let _ = writeln!(s, "          → {h}");
            }
        }
    }
    let n_cross = plan.crossings.len();
    let unknown = if plan.crossing_unknown > 0 {
        format!(" ({} of unknown size: symbolic dims)", plan.crossing_unknown)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "  EP↔CPU crossings: {n_cross} tensor transfer(s), {} per inference{unknown}",
        bytes(plan.crossing_bytes)
    );
    if detail {
        for c in &plan.crossings {
            let _ = writeln!(
                s,
                "    #{:<3} {} {} [{}] {} {} ({})",
                c.partition,
                c.direction,
                c.tensor,
                c.shape.join("×"),
                c.dtype,
                bytes(c.bytes),
                c.peer
            );
        }
    }
    s
}

/// Before/after rows for one model.
pub fn comparison_text(c: &Comparison, model: &str) -> String {
    let fmt = c.format.map(|f| format!(" {f}")).unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(s, "{model} — {}{fmt}, ORT {} rules", c.ep, c.ort_version);
    let _ = writeln!(
        s,
        "  {:<8} {:>6} {:>8} {:>11} {:>10} {:>12}",
        "", "nodes", "claimed", "partitions", "CPU nodes", "crossing"
    );
    for (label, p) in [("before", &c.before), ("after", &c.after)] {
        let _ = writeln!(
            s,
            "  {label:<8} {:>6} {:>8} {:>11} {:>10} {:>12}",
            p.nodes,
            p.claimed,
            p.partitions,
            p.cpu_nodes,
            bytes(p.crossing_bytes)
        );
    }
    s
}

/// One line per pass impact.
pub fn impact_text(i: &PassImpact) -> String {
    format!("  {:<22} {:<11} {}\n", i.pass, i.verdict, i.note)
}
