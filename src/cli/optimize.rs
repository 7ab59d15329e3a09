//! `faceperf optimize`: make (or `--check`) the cached, verified variants of models.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{one_line, print_json, Ctx};
use crate::models::{synth, Role, Scale};
use crate::onnx::shape::parse_input_shape;
use crate::optimize::Skipped;
use crate::optimize::{
    check_variant, ensure_variant, Action, CheckOutcome, NotEquivalent, OptimizeOptions, VariantOutcome, VariantState,
};
use crate::rewrite::recipe::{Recipe, BUILTIN};
use crate::verify::{EquivalenceReport, VerifyOptions};

/// Arguments of `faceperf optimize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Models: .onnx files, folders of them, or names (a role such as `swapper`, or a file stem such
    /// as `inswapper_128`) looked up in the replica folder of --scale. Default: every replica of --scale
    pub models: Vec<String>,
    /// Recipes to apply: built-in targets (coreml, fp16, cuda) or `all`; repeat or comma-separate
    #[arg(long = "target", value_delimiter = ',', default_value = "all")]
    pub targets: Vec<String>,
    /// Recipe files to apply instead of the built-in targets
    #[arg(long = "recipe", value_name = "FILE")]
    pub recipes: Vec<PathBuf>,
    /// Write variants here instead of beside their source
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fix an input's shape, overriding the recipe (e.g. input.1=1x3x480x640); repeatable
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<String>,
    /// Only check: exit non-zero naming every variant that is missing, stale or not equivalent
    #[arg(long)]
    pub check: bool,
    /// With --check: trust the sidecar's equivalence report instead of re-running the check
    #[arg(long, requires = "check")]
    pub quick: bool,
    /// Print the key a CI cache of these variants is stored under (sha256 over the models'
    /// content, the recipes' hashes and the tool version; --json: its parts too) and exit
    #[arg(long, conflicts_with = "check")]
    pub cache_key: bool,
    /// Replica scale that model names and the default model set refer to
    #[arg(long, value_enum, default_value = "tiny")]
    pub scale: Scale,
    /// The models' role when their names and I/O signatures do not tell
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// Equivalence inputs per model (half real photos where the model takes images)
    #[arg(long, default_value_t = 8)]
    pub inputs: usize,
    /// ORT CPU threads for the equivalence check (0 = one per core)
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Run the equivalence check with this profile's execution providers (name or TOML file, e.g.
    /// `h100`) instead of ORT's CPU provider, so it covers the target's own kernels (fp16 really
    /// runs in fp16 there); CUDA graphs and TF32 are off for the check
    #[arg(long, value_name = "PROFILE")]
    pub verify_on: Option<String>,
    /// Seconds to wait for another optimize that is writing the same variant
    #[arg(long, default_value_t = 1800)]
    pub lock_timeout: u64,
    /// Tool version recorded in (and compared against) sidecars (testing the cache)
    #[arg(long, hide = true)]
    pub tool_version: Option<String>,
}

/// One model × recipe result, for `--json` and the text table.
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum Row {
    Created(Box<VariantOutcome>),
    Reused(Box<VariantOutcome>),
    NotEquivalent { source: PathBuf, target: String, variant: PathBuf, error: String, report: Box<EquivalenceReport> },
    Error { source: PathBuf, target: String, error: String },
    Skipped { source: PathBuf, target: String, reason: String },
    Check(CheckOutcome),
}

/// Every `.onnx` in `dir` that is not itself a variant: the model set's files when present, else
/// all files without a variant suffix.
fn models_in(dir: &Path, suffixes: &[String]) -> Result<Vec<PathBuf>> {
    let known: Vec<PathBuf> = Role::ALL.iter().map(|r| dir.join(r.default_file())).filter(|p| p.is_file()).collect();
    if !known.is_empty() {
        return Ok(known);
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let p = e?.path();
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if p.extension().is_some_and(|x| x == "onnx") && !suffixes.iter().any(|s| stem.ends_with(s.as_str())) {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("{}: no .onnx models", dir.display());
    }
    Ok(out)
}

fn resolve_models(a: &Args, suffixes: &[String]) -> Result<Vec<PathBuf>> {
    if a.models.is_empty() {
        let dir = synth::ensure_replicas(a.scale)?;
        return Ok(Role::ALL.iter().map(|r| dir.join(r.default_file())).collect());
    }
    let mut out = Vec::new();
    for m in &a.models {
        let p = PathBuf::from(m);
        if p.is_file() {
            out.push(p);
        } else if p.is_dir() {
            out.extend(models_in(&p, suffixes)?);
        } else {
            let name = m.trim_end_matches(".onnx");
            let role =
                Role::ALL.into_iter().find(|r| r.name() == name || r.default_file().trim_end_matches(".onnx") == name);
            match role {
                Some(r) => out.push(synth::ensure_replicas(a.scale)?.join(r.default_file())),
                None => bail!(
                    "model '{m}' is neither a file, a folder nor a known name (roles: {}; files: {})",
                    Role::ALL.map(|r| r.name()).join(", "),
                    Role::ALL.map(|r| r.default_file().trim_end_matches(".onnx")).join(", ")
                ),
            }
        }
    }
    Ok(out)
}

fn recipes(a: &Args) -> Result<Vec<Recipe>> {
    if !a.recipes.is_empty() {
        return a.recipes.iter().map(|p| Recipe::load(p)).collect();
    }
    let mut out: Vec<Recipe> = Vec::new();
    for t in &a.targets {
        if t == "all" {
            out.extend(Recipe::builtins()?);
        } else {
            out.push(Recipe::builtin(t).with_context(|| {
                format!(
                    "--target {t}: use one of {}, all",
                    BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )
            })?);
        }
    }
    out.dedup_by(|a, b| a.target() == b.target());
    // Unknown pass names fail here, at their line, before any model is touched.
    for r in &out {
        r.build_passes()?;
    }
    Ok(out)
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

fn describe(o: &VariantOutcome) -> String {
    let s = &o.sidecar;
    let (b, a) = (s.blockers_before, s.blockers_after);
    let mut changes = Vec::new();
    for (what, x, y) in [
        ("reflect Pad", b.reflect_pad, a.reflect_pad),
        ("Shape", b.shape, a.shape),
        ("Split", b.split, a.split),
        ("scalar Gather", b.scalar_gather, a.scalar_gather),
    ] {
        if x != y {
            changes.push(format!("{what} {x}→{y}"));
        }
    }
    let size = |n: u64| format!("{:.1} MB", n as f64 / 1e6);
    format!(
        "{:<8} {}  nodes {}→{}{}  {}→{}  {}  [{} total, verify {}]",
        if o.action == Action::Created { "created" } else { "reused" },
        o.variant.display(),
        s.nodes_before,
        s.nodes_after,
        if changes.is_empty() { String::new() } else { format!(" ({})", changes.join(", ")) },
        size(s.source.bytes),
        size(s.variant.bytes),
        s.equivalence.summary(),
        secs(s.timings.total_s),
        secs(s.timings.verify_s),
    )
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    let recipes = recipes(&a)?;
    let suffixes: Vec<String> = recipes.iter().map(|r| r.suffix().to_string()).collect();
    let models = resolve_models(&a, &suffixes)?;
    let mut input_shapes = BTreeMap::new();
    for s in &a.input_shapes {
        let (k, v) = parse_input_shape(s)?;
        input_shapes.insert(k, v);
    }
    if a.cache_key {
        let tool_version = a.tool_version.as_deref().unwrap_or(crate::optimize::TOOL_VERSION);
        let key = crate::optimize::cache::CacheKey::compute(&models, &recipes, &input_shapes, tool_version)?;
        if ctx.json {
            print_json(&key)?;
        } else {
            println!("{}", key.key);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rt = ctx.runtime()?;
    let verify_on = match &a.verify_on {
        Some(name) => {
            let loaded = crate::profile::Profile::resolve(name)?;
            let missing = loaded.profile.missing_providers(rt);
            if let Some(m) = missing.first() {
                bail!(
                    "--verify-on {name}: the {} role needs {}, which ONNX Runtime {} does not offer",
                    m.role.name(),
                    m.provider,
                    rt.version
                );
            }
            Some(std::sync::Arc::new(loaded.profile))
        }
        None => None,
    };
    let jobs = models.len() * recipes.len();
    let pb = crate::util::progress::bar(jobs as u64, if a.check { "optimize --check" } else { "optimize" }, ctx.json);
    let opts = OptimizeOptions {
        out_dir: a.out.clone(),
        input_shapes,
        tool_version: a.tool_version.clone().unwrap_or_else(|| crate::optimize::TOOL_VERSION.to_string()),
        verify: VerifyOptions { cases: a.inputs.max(1), threads: a.threads, on: verify_on, ..Default::default() },
        lock_timeout: Duration::from_secs(a.lock_timeout),
        role: a.role,
        reverify: !a.quick,
        progress: Some(pb.clone()),
        ..Default::default()
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for m in &models {
        for r in &recipes {
            let row = if a.check {
                match check_variant(rt, m, r, &opts) {
                    Ok(c) => {
                        match &c.state {
                            VariantState::Fresh | VariantState::Skipped(_) => {}
                            VariantState::Missing => problems.push(format!("missing: {}", c.variant.display())),
                            VariantState::Stale(why) => {
                                problems.push(format!("stale: {} ({})", c.variant.display(), why.join("; ")))
                            }
                            VariantState::NonEquivalent(why) => {
                                problems.push(format!("not equivalent: {} ({why})", c.variant.display()))
                            }
                        }
                        Row::Check(c)
                    }
                    Err(e) => {
                        problems.push(format!("{} {}: {}", m.display(), r.target(), one_line(&e)));
                        Row::Error { source: m.clone(), target: r.target().into(), error: one_line(&e) }
                    }
                }
            } else {
                match ensure_variant(rt, m, r, &opts) {
                    Ok(o) if o.action == Action::Created => Row::Created(Box::new(o)),
                    Ok(o) => Row::Reused(Box::new(o)),
                    Err(e) if e.is::<Skipped>() => {
                        Row::Skipped { source: m.clone(), target: r.target().into(), reason: e.to_string() }
                    }
                    Err(e) => {
                        problems.push(one_line(&e));
                        match e.downcast::<NotEquivalent>() {
                            Ok(ne) => Row::NotEquivalent {
                                source: ne.source_path.clone(),
                                target: ne.target.clone(),
                                variant: ne.variant.clone(),
                                error: ne.to_string(),
                                report: ne.report,
                            },
                            Err(e) => Row::Error { source: m.clone(), target: r.target().into(), error: one_line(&e) },
                        }
                    }
                }
            };
            pb.inc(1);
            if !ctx.json {
                let line = match &row {
                    Row::Created(o) | Row::Reused(o) => describe(o),
                    Row::Check(c) => match &c.state {
                        VariantState::Fresh => format!("fresh    {}", c.variant.display()),
                        VariantState::Skipped(w) => format!("skipped  {} ({w})", c.variant.display()),
                        VariantState::Missing => format!("MISSING  {}", c.variant.display()),
                        VariantState::Stale(w) => format!("STALE    {}: {}", c.variant.display(), w.join("; ")),
                        VariantState::NonEquivalent(w) => format!("NOT EQUIVALENT {}: {w}", c.variant.display()),
                    },
                    Row::NotEquivalent { error, .. } => format!("REFUSED  {error}"),
                    Row::Skipped { reason, .. } => format!("skipped  {reason}"),
                    Row::Error { source, target, error } => format!("ERROR    {} {target}: {error}", source.display()),
                };
                pb.suspend(|| println!("{line}"));
            }
            rows.push(row);
        }
    }
    pb.finish_and_clear();
    if ctx.json {
        print_json(&rows)?;
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if problems.len() == 1 {
        // One failure: one `error:` line (main prints it), whatever the number of variants.
        let what = if a.check { "needs `faceperf optimize`" } else { "failed" };
        match jobs {
            1 => bail!("{}", problems[0]),
            _ => bail!("1 of {jobs} variants {what}: {}", problems[0]),
        }
    }
    eprintln!(
        "{} of {jobs} variant{} {}:",
        problems.len(),
        if jobs == 1 { "" } else { "s" },
        if a.check { "need `faceperf optimize`" } else { "failed" }
    );
    for p in &problems {
        eprintln!("  {p}");
    }
    Ok(ExitCode::FAILURE)
}
