use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{print_json, Ctx};
use crate::onnx::Model;
use crate::partition::{self, render, verify, Ep, Format, OrtVersion, Plan, PlanOptions, RecipeImpact};

fn releases(ep: Ep, specs: &[String]) -> Result<Vec<OrtVersion>> {
    if specs.iter().any(|s| s == "all") {
        return Ok(partition::table(ep)?.releases());
    }
    specs.iter().map(|s| s.parse()).collect()
}

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
    /// ONNX Runtime release(s) whose rules apply, e.g. 1.22 or 1.22,1.26,1.27, or `all` (every
    /// release the rules describe)
    #[arg(long = "ort", value_delimiter = ',', default_value = "1.22")]
    pub ort: Vec<String>,
    /// Fixed input shapes for the rewrites (fold-shapes), e.g. input.1=1x3x640x640 (repeatable)
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shape: Vec<String>,
    /// Also fix those shapes in the predicted session (ORT free-dimension overrides); by default the
    /// session sees the shapes the model declares, symbolic dims included, as Deep-Live-Cam's do
    #[arg(long)]
    pub fix_shapes: bool,
    /// Rewrite passes to judge in order, e.g. reflect-pad,fold-shapes: each step (needed,
    /// unnecessary, harmful) and the whole (before/after)
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
    rewrites: Vec<RecipeImpact>,
    /// With several releases: where each pass is needed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    needs: Vec<partition::PassNeed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<verify::VerifyReport>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    let model = Model::load(&a.model)?;
    let name = a.model.display().to_string();
    let input_shapes = partition::parse_input_shapes(&a.input_shape)?;
    let orts = releases(a.ep, &a.ort)?;
    if a.verify.is_some() && orts.len() != 1 {
        bail!("--verify compares one prediction: give a single --ort version (the one that wrote the log)");
    }
    let mut out = Output { model: name.clone(), plans: vec![], rewrites: vec![], needs: vec![], verify: None };
    let session_shapes = if a.fix_shapes { input_shapes.clone() } else { Default::default() };
    let pctx = crate::rewrite::PassContext { input_shapes: input_shapes.clone(), ..Default::default() };
    let passes: Vec<Box<dyn crate::rewrite::Pass>> =
        a.passes.iter().map(|p| crate::rewrite::pass_by_name(p)).collect::<Result<_>>()?;
    for &ort in &orts {
        let opts = PlanOptions { ep: a.ep, format: a.format, ort_version: ort, input_shapes: session_shapes.clone() };
        out.plans.push(partition::plan(&model, &opts)?);
        if !passes.is_empty() {
            out.rewrites.push(partition::recipe_impact(&model, &passes, &pctx, &opts)?);
        }
    }
    if orts.len() > 1 && !out.rewrites.is_empty() {
        let pairs: Vec<(OrtVersion, RecipeImpact)> = orts.iter().copied().zip(out.rewrites.iter().cloned()).collect();
        out.needs = partition::pass_needs(&pairs);
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
            if let Some(r) = out.rewrites.get(k) {
                println!("  rewrites, in order:");
                for i in &r.steps {
                    print!("{}", render::impact_text(i));
                }
                print!("{}", render::comparison_text(&r.overall, &format!("{name} with {}", a.passes.join(" → "))));
            }
            println!();
        }
        if !out.needs.is_empty() {
            println!("{name}: where each pass is needed ({}):", a.ep);
            for n in &out.needs {
                println!("  {:<22} {}", n.pass, n.summary);
            }
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
