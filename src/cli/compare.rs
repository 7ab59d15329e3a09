use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::{print_json, Ctx};
use crate::report::compare::{compare, render, Comparison, RunView};

/// Arguments of `faceperf compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run to explain: a bench result (bench-results/<profile>/*.json) or a `live --json` report
    #[arg(value_name = "RUN.json")]
    pub run: PathBuf,
    /// One or more references to compare it with (e.g. the committed H100 or CPU results)
    #[arg(value_name = "REF.json", required = true, num_args = 1..)]
    pub references: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    let run = RunView::load(&a.run)?;
    let comparisons: Vec<Comparison> =
        a.references.iter().map(|r| Ok(compare(&run, &RunView::load(r)?))).collect::<Result<_>>()?;
    if ctx.json {
        print_json(&comparisons)?;
    } else {
        for (i, c) in comparisons.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", render(c));
        }
    }
    Ok(ExitCode::SUCCESS)
}
