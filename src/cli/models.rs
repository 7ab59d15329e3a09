use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::{one_line, print_json, Ctx};
use crate::models::fetch::{self, Action, FetchOptions, FetchReport};
use crate::models::import::{self, ImportStatus};
use crate::models::list;
use crate::models::{local, synth, Manifest};
use crate::models::{Role, Scale};

/// `faceperf models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every model, archive and test asset of the manifest with its local status
    List(ListArgs),
    /// Download models (resumable), verify their sha256 and move them into place
    Fetch(FetchArgs),
    /// Take models from a Deep-Live-Cam models/ folder or ~/.insightface/models/buffalo_l
    Import(ImportArgs),
    /// Generate deterministic random-weight replicas with the real models' I/O and op patterns
    Synth(SynthArgs),
}

/// Options every manifest-reading subcommand shares.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Manifest to use instead of the built-in one
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Models folder (default: models/ in the checkout, or $FACEPERF_MODELS)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl Common {
    fn load(&self) -> Result<(Manifest, PathBuf)> {
        let manifest = Manifest::load_or_embedded(self.manifest.as_deref())?;
        Ok((manifest, self.dir.clone().unwrap_or_else(local::default_dir)))
    }
}

/// Arguments of `faceperf models list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `faceperf models fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Models to fetch: names (det_10g), file names, roles (detector) or archives (buffalo_l); default all
    pub names: Vec<String>,
    #[command(flatten)]
    pub common: Common,
    /// Base URL serving every file as <URL>/<file name>, instead of the manifest's URLs
    /// (default: $FACEPERF_MIRROR)
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Automatic resumes after an interrupted transfer
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Replace a present file whose size or hash contradicts the manifest
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `faceperf models import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A Deep-Live-Cam models/ folder, ~/.insightface/models/buffalo_l, or a folder containing either
    pub path: PathBuf,
    #[command(flatten)]
    pub common: Common,
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
        Command::List(a) => list_cmd(ctx, a),
        Command::Fetch(a) => fetch_cmd(ctx, a),
        Command::Import(a) => import_cmd(ctx, a),
        Command::Synth(a) => synth_cmd(ctx, a),
    }
}

fn list_cmd(ctx: &Ctx, a: ListArgs) -> Result<ExitCode> {
    let (manifest, dir) = a.common.load()?;
    let l = list::list(&manifest, &dir)?;
    if ctx.json {
        print_json(&l)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("models folder: {}   manifest: {}", l.dir, l.manifest);
    println!("{:<20} {:<11} {:<19} {:<16} replicas", "model", "role", "status", "source");
    for m in &l.models {
        let replicas: Vec<&str> = m.replicas.iter().map(|s| s.name()).collect();
        let replicas = if replicas.is_empty() { "-".to_string() } else { replicas.join(", ") };
        println!("{:<20} {:<11} {:<19} {:<16} {replicas}", m.name, m.role.name(), m.status.name(), m.source);
        if let Some(p) = &m.problem {
            println!("    {p}");
        }
    }
    for ar in &l.archives {
        println!("{:<20} {:<11} {:<19} {}", ar.name, "archive", ar.status.name(), ar.file);
    }
    if !l.assets.is_empty() {
        println!("assets (built in, or test assets of faceperf's own tests in shared/; no command needs those):");
    }
    for s in &l.assets {
        let kind = match s.kind {
            crate::models::manifest::AssetKind::Model => "model",
            crate::models::manifest::AssetKind::Image => "image",
        };
        println!("{:<20} {:<11} {:<19} {}", s.name, kind, s.status.name(), s.path.as_deref().unwrap_or(&s.rel_path));
        if let Some(p) = &s.problem {
            println!("    {p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct FetchRow {
    name: String,
    ok: bool,
    #[serde(flatten)]
    report: Option<FetchReport>,
    error: Option<String>,
}

fn fetch_cmd(ctx: &Ctx, a: FetchArgs) -> Result<ExitCode> {
    let (manifest, dir) = a.common.load()?;
    let targets = fetch::targets(&manifest, &a.names)?;
    let mut opts = FetchOptions::new(dir);
    if a.mirror.is_some() {
        opts.mirror = a.mirror;
    }
    opts.retries = a.retries;
    opts.force = a.force;
    opts.quiet = ctx.json;
    let mut rows = Vec::new();
    for t in targets {
        let row = match fetch::fetch(&manifest, t, &opts) {
            Ok(r) => FetchRow { name: r.name.clone(), ok: true, report: Some(r), error: None },
            Err(e) => FetchRow { name: t.name().to_string(), ok: false, report: None, error: Some(one_line(&e)) },
        };
        if !ctx.json {
            match (&row.report, &row.error) {
                (Some(r), _) => {
                    let what = match r.action {
                        Action::AlreadyPresent => "already present".to_string(),
                        Action::Downloaded if r.resumed_from > 0 => {
                            format!("downloaded (resumed at {} B)", r.resumed_from)
                        }
                        Action::Downloaded => "downloaded".to_string(),
                        Action::Extracted => format!("extracted from {}", r.archive.as_deref().unwrap_or("?")),
                    };
                    println!("{:<20} {:<32} {:<36} {}", r.name, what, r.trust, r.path);
                }
                (None, Some(e)) => eprintln!("{:<20} FAILED: {e}", row.name),
                _ => {}
            }
        }
        rows.push(row);
    }
    if ctx.json {
        print_json(&rows)?;
    }
    Ok(if rows.iter().all(|r| r.ok) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn import_cmd(ctx: &Ctx, a: ImportArgs) -> Result<ExitCode> {
    let (manifest, dir) = a.common.load()?;
    let r = import::import(&manifest, &a.path, &dir, ctx.json)?;
    let none_found = r.count(ImportStatus::Missing) == r.models.len();
    if none_found && !ctx.json {
        anyhow::bail!("no model of the manifest found in {} (searched: {})", r.from, r.searched.join(", "));
    }
    if ctx.json {
        print_json(&r)?;
    } else {
        println!("from {} into {}", r.from, r.dir);
        for e in &r.models {
            let status = match e.status {
                ImportStatus::Imported => format!("imported ({})", e.method.as_deref().unwrap_or("?")),
                ImportStatus::AlreadyPresent => "already present".into(),
                ImportStatus::Mismatched => "MISMATCHED, not imported".into(),
                ImportStatus::Missing => "missing".into(),
            };
            let by = e.verified_by.as_deref().map(|v| format!("verified by {v}")).unwrap_or_default();
            println!("{:<20} {:<28} {by}", e.name, status);
            if let Some(p) = &e.problem {
                println!("    {}: {p}", e.source.as_deref().unwrap_or(""));
            }
        }
        println!(
            "found {}, missing {}, mismatched {}",
            r.models.len() - r.count(ImportStatus::Missing),
            r.count(ImportStatus::Missing),
            r.count(ImportStatus::Mismatched)
        );
    }
    Ok(if r.count(ImportStatus::Mismatched) == 0 && !none_found { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
