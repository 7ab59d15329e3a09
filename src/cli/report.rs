use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::{print_json, Ctx};
use crate::report::load::Selection;
use crate::report::{self, ReportOptions};

/// Arguments of `faceperf report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs to include: profile names (latest run) or PROFILE/RUN (a results file stem or its UTC stamp);
    /// default: every profile's latest run
    #[arg(long, value_delimiter = ',', value_name = "NAME[/RUN],…")]
    pub profiles: Vec<String>,
    /// Run to compare the others with; stages slower beyond the 95% CI are marked
    #[arg(long, value_name = "NAME[/RUN]")]
    pub baseline: Option<String>,
    /// Output folder: <name>.md and figures/<name>-*.{svg,png}
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Results folder written by `faceperf bench`
    #[arg(long, default_value = "bench-results", value_name = "DIR")]
    pub results: PathBuf,
    /// Report name (file names)
    #[arg(long, default_value = "performance")]
    pub name: String,
    /// Flag medians whose 95% CI is wider than ± this percent (default: each run's own stated width)
    #[arg(long, value_name = "PCT")]
    pub max_ci_width: Option<f64>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    if let Some(w) = a.max_ci_width.filter(|w| !(w.is_finite() && *w > 0.0)) {
        anyhow::bail!("--max-ci-width {w}: expected a positive percentage");
    }
    let selections = a.profiles.iter().map(|s| Selection::parse(s)).collect::<Result<Vec<_>>>()?;
    let baseline = a.baseline.as_deref().map(Selection::parse).transpose()?;
    let opts = ReportOptions {
        results: a.results,
        selections,
        baseline,
        out: a.out,
        name: a.name,
        command_line: std::env::args().collect(),
        ci_width_pct: a.max_ci_width,
    };
    let g = report::generate(&opts)?;
    if ctx.json {
        print_json(&g)?;
    } else {
        println!(
            "wrote {} and {} figures (SVG + PNG) in {}",
            g.markdown.display(),
            g.figures.len(),
            opts.out.join("figures").display()
        );
        for (profile, id, _, published) in &g.runs {
            let tag =
                published.as_ref().map(|s| format!(" ({s}, {})", report::load::PUBLISHED_LABEL)).unwrap_or_default();
            println!("  {profile}/{id}{tag}");
        }
        if opts.baseline.is_some() {
            println!("{} stage(s) slower than the baseline beyond the 95% CI and the noise threshold", g.slower);
        }
        for f in &g.flags {
            let (profile, id, _, _) = &g.runs[f.run];
            println!("flag: {profile}/{id} {} ({}): {}", f.model, f.variant, f.advice.join("; "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
