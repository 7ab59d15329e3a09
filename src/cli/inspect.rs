use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::{print_json, Ctx};
use crate::onnx::{shape::parse_input_shape, summary::summarize, Model};

/// Arguments of `faceperf inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .onnx file
    pub model: PathBuf,
    /// Fix an input's shape for shape inference and FLOPs, e.g. input.1=1x3x640x640 (repeatable)
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shape: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    let shapes: HashMap<String, Vec<i64>> =
        a.input_shape.iter().map(|s| parse_input_shape(s)).collect::<Result<_>>()?;
    let model = Model::load(&a.model)?;
    let summary = summarize(&model, &shapes)?;
    if ctx.json {
        print_json(&summary)?;
    } else {
        print!("{}", summary.render());
    }
    Ok(ExitCode::SUCCESS)
}
