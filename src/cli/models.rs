use std::process::ExitCode;

use anyhow::{bail, Result};

use super::Ctx;

/// `faceperf models` subcommands (placeholder until the model-zoo issue lands).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Generate deterministic replicas
    Synth,
}

pub fn run(_ctx: &Ctx, _c: Command) -> Result<ExitCode> {
    bail!("`faceperf models` is not built yet")
}
