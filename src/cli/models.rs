use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Ctx};
use crate::models::synth;
use crate::models::{Role, Scale};

/// `faceperf models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Generate deterministic random-weight replicas with the real models' I/O and op patterns
    Synth(SynthArgs),
}

/// Arguments of `faceperf models synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// tiny: every op pattern at small widths (tests); full: published parameter counts and FLOPs
    #[arg(long, value_enum, default_value = "tiny")]
    pub scale: Scale,
    /// Weight seed; the same seed gives byte-identical files
    #[arg(long, default_value_t = synth::DEFAULT_SEED)]
    pub seed: u64,
    /// Output folder (default: models/replica-<scale> in the checkout, or $FACEPERF_MODELS/replica-<scale>)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Only these roles (default: all)
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub roles: Vec<Role>,
}

#[derive(Serialize)]
struct Written {
    role: Role,
    path: String,
    bytes: u64,
    sha256: String,
}

pub fn run(ctx: &Ctx, c: Command) -> Result<ExitCode> {
    match c {
        Command::Synth(a) => synth_cmd(ctx, a),
    }
}

fn synth_cmd(ctx: &Ctx, a: SynthArgs) -> Result<ExitCode> {
    let dir = a.dir.unwrap_or_else(|| synth::default_dir(a.scale));
    let roles = if a.roles.is_empty() { Role::ALL.to_vec() } else { a.roles };
    let written = synth::write_roles(&dir, &roles, a.scale, a.seed, ctx.json)?;
    let mut rows = Vec::new();
    for (role, path) in written {
        let bytes = std::fs::metadata(&path)?.len();
        let sha256 = crate::util::hash::sha256_file(&path)?;
        rows.push(Written { role, path: path.display().to_string(), bytes, sha256 });
    }
    if ctx.json {
        print_json(&rows)?;
    } else {
        for r in &rows {
            println!("{:<11} {:>12} B  {}  {}", r.role.name(), r.bytes, &r.sha256[..16], r.path);
        }
    }
    Ok(ExitCode::SUCCESS)
}
