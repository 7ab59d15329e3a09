use std::process::ExitCode;

use anyhow::{bail, Result};

use super::Ctx;

/// Arguments of `faceperf partitions` (placeholder until its issue lands).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_ctx: &Ctx, _a: Args) -> Result<ExitCode> {
    bail!("`faceperf partitions` is not built yet")
}
