//! Prints the partition counts of every replica before and after the CoreML rewrites, per EP, model
//! format and ORT release: the table in `docs/partitions.md`.
//!
//! `cargo run --release --example partitions_table [tiny|full]` (default: full, planned on the
//! weightless skeletons, which have the real graphs).

use faceperf::models::{synth, Role, Scale};
use faceperf::partition::{self, Ep, Format, PlanOptions};
use faceperf::rewrite::{pass_by_name, PassContext};

fn main() -> anyhow::Result<()> {
    let scale = match std::env::args().nth(1).as_deref() {
        Some("tiny") => Scale::Tiny,
        _ => Scale::Full,
    };
    let names = ["fold-shapes", "reflect-pad", "split-to-slice", "widen-scalar-gather", "cleanup"];
    let passes = names.iter().map(|n| pass_by_name(n)).collect::<anyhow::Result<Vec<_>>>()?;
    println!("recipe: {}", names.join(" → "));
    println!("{:<10} {:<8} {:<13} {:<4} | partitions | CPU nodes | passes", "model", "ep", "format", "ORT");
    for role in Role::ALL {
        let model = match scale {
            Scale::Full => synth::synth_skeleton(role, scale)?,
            Scale::Tiny => synth::synth_model(role, scale, synth::DEFAULT_SEED)?,
        };
        let mut ctx = PassContext::default();
        if role == Role::Detector {
            ctx.input_shapes.insert("input.1".into(), vec![1, 3, 640, 640]);
        }
        for (ep, format, orts) in [
            (Ep::Coreml, Some(Format::Mlprogram), &["1.22", "1.26", "1.27"][..]),
            (Ep::Coreml, Some(Format::Neuralnetwork), &["1.22", "1.27"][..]),
            (Ep::Cuda, None, &["1.22"][..]),
            (Ep::Directml, None, &["1.22"][..]),
        ] {
            for ort in orts {
                let opts = PlanOptions { format, ..PlanOptions::new(ep, ort.parse()?) };
                let r = partition::recipe_impact(&model, &passes, &ctx, &opts)?;
                let (b, a) = (&r.overall.before, &r.overall.after);
                let steps: Vec<String> = r
                    .steps
                    .iter()
                    .filter(|s| s.verdict != "no-op")
                    .map(|s| format!("{} {}", s.pass, s.verdict))
                    .collect();
                println!(
                    "{:<10} {:<8} {:<13} {:<4} | {:>3} → {:<4} | {:>3} → {:<3} | {}",
                    role.name(),
                    ep.name(),
                    format.map(|f| f.name()).unwrap_or("-"),
                    ort,
                    b.partitions,
                    a.partitions,
                    b.cpu_nodes,
                    a.cpu_nodes,
                    steps.join(", ")
                );
            }
        }
    }
    Ok(())
}
