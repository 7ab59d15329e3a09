use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{print_json, Ctx};
use crate::onnx::Model;
use crate::partition::{self, render, verify, Comparison, Ep, Format, OrtVersion, PassImpact, Plan, PlanOptions};

/// Arguments of `faceperf partitions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .onnx file
    pub model: PathBuf,
    /// Execution provider to predict for
    #[arg(long, value_enum)]
    pub ep: Ep,
    /// CoreML model format (default: mlprogram)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// ONNX Runtime release(s) whose rules apply, e.g. 1.22 or 1.22,1.26,1.27
    #[arg(long = "ort", value_delimiter = ',', default_value = "1.22")]
    pub ort: Vec<OrtVersion>,
    /// Input shapes the session fixes (free-dimension overrides), e.g. input.1=1x3x640x640 (repeatable)
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shape: Vec<String>,
    /// Rewrite passes to judge, e.g. reflect-pad,fold-shapes: each alone (needed or not) and all in
    /// order (before/after)
    #[arg(long, value_delimiter = ',')]
    pub passes: Vec<String>,
    /// Compare the prediction with a verbose ORT log of the same model (exit 1 when they differ)
    #[arg(long, value_name = "LOG")]
    pub verify: Option<PathBuf>,
    /// List every partition, CPU node and crossing tensor
    #[arg(long)]
    pub detail: bool,
}

#[derive(Serialize)]
struct Output {
    model: String,
    plans: Vec<Plan>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    passes: Vec<PassImpact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rewritten: Vec<Comparison>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<verify::VerifyReport>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    let model = Model::load(&a.model)?;
    let name = a.model.display().to_string();
    let input_shapes = partition::parse_input_shapes(&a.input_shape)?;
    if a.verify.is_some() && a.ort.len() != 1 {
        bail!("--verify compares one prediction: give a single --ort version (the one that wrote the log)");
    }
    let mut out = Output { model: name.clone(), plans: vec![], passes: vec![], rewritten: vec![], verify: None };
    for &ort in &a.ort {
        let opts = PlanOptions { ep: a.ep, format: a.format, ort_version: ort, input_shapes: input_shapes.clone() };
        out.plans.push(partition::plan(&model, &opts)?);
        if a.passes.is_empty() {
            continue;
        }
        let pctx = crate::rewrite::PassContext { input_shapes: input_shapes.clone(), ..Default::default() };
        let passes: Vec<Box<dyn crate::rewrite::Pass>> =
            a.passes.iter().map(|p| crate::rewrite::pass_by_name(p)).collect::<Result<_>>()?;
        for p in &passes {
            out.passes.push(partition::pass_impact_with(&model, p.as_ref(), &pctx, &opts)?);
        }
        let mut after = model.clone();
        crate::rewrite::run_passes(&mut after, &passes, &pctx)?;
        out.rewritten.push(partition::compare(&model, &after, &opts)?);
    }
    if let Some(log) = &a.verify {
        let text =
            std::fs::read_to_string(log).with_context(|| format!("{}: cannot read the ORT log", log.display()))?;
        out.verify = Some(verify::verify(&out.plans[0], &text)?);
    }
    if ctx.json {
        print_json(&out)?;
    } else {
        for (k, plan) in out.plans.iter().enumerate() {
            print!("{}", render::plan_text(plan, &name, a.detail));
            if !a.passes.is_empty() {
                println!("  rewrites:");
                let per = a.passes.len();
                for i in &out.passes[k * per..(k + 1) * per] {
                    print!("{}", render::impact_text(i));
                }
                print!(
                    "{}",
                    render::comparison_text(&out.rewritten[k], &format!("{name} with {}", a.passes.join(" → ")))
                );
            }
            println!();
        }
        if let Some(v) = &out.verify {
            println!(
                "verification against {}:",
                a.verify.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            );
            print!("{}", v.text());
        }
    }
    Ok(match &out.verify {
        Some(v) if !v.ok => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}
