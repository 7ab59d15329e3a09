//! `faceperf optimize`: model → recipe passes → equivalence check → cached variant.
//!
//! [`ensure_variant`] is the one entry point (the CLI and the benchmark both call it): it returns
//! the cached variant when its sidecar's keys (source sha256, recipe hash, tool version) match,
//! and otherwise rewrites the model, proves the rewrite equivalent on ORT CPU and writes the
//! variant and its sidecar atomically, under a per-variant lock. A rewrite that fails its check is
//! never written: the error ([`NotEquivalent`]) names the first diverging node. [`check_variant`]
//! says whether a variant is fresh without writing anything (`--check`, for CI).

pub mod cache;
pub mod calibrate;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::models::Role;
use crate::onnx::graph::NodeExt;
use crate::onnx::model::{remove_stale_temps, write_atomic, write_staged};
use crate::onnx::shape::declared;
use crate::onnx::{DataLayout, Model};
use crate::rewrite::fuse_io::FuseIoSpec;
use crate::rewrite::recipe::Recipe;
use crate::rewrite::{Pass, PassReport};
use crate::runtime::Runtime;
use crate::util::hash::{sha256_file, sha256_hex};
use crate::verify::{self, EquivalenceReport, VerifyOptions, VerifySpec};
pub use cache::{Blockers, FileKey, PassRecord, RecipeKey, Sidecar, Timings, VariantLock, VariantPaths};

/// The version recorded in sidecars by default: this build's crate version.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Makes a pass from its recipe name (the registry, or a test's own passes).
pub type PassResolver = Arc<dyn Fn(&str) -> Result<Box<dyn Pass>> + Send + Sync>;

/// How to make (or check) variants.
#[derive(Clone)]
pub struct OptimizeOptions {
    /// Write variants here instead of beside their source.
    pub out_dir: Option<PathBuf>,
    /// Fixed input shapes that replace the recipe's (name → dims); part of the recipe key.
    pub input_shapes: BTreeMap<String, Vec<i64>>,
    /// Recorded in sidecars and compared on reuse (a new tool version remakes every variant).
    pub tool_version: String,
    /// The equivalence check.
    pub verify: VerifyOptions,
    /// How long to wait for another process making the same variant.
    pub lock_timeout: Duration,
    /// Role of the model when its name and signature do not tell.
    pub role: Option<Role>,
    /// `--check` re-runs the equivalence check on fresh variants.
    pub reverify: bool,
    /// Builds passes by name (default: the registry, [`crate::rewrite::pass_by_name`]).
    pub resolver: PassResolver,
    /// Phase messages go here (a progress bar's message), if set.
    pub progress: Option<indicatif::ProgressBar>,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            out_dir: None,
            input_shapes: BTreeMap::new(),
            tool_version: TOOL_VERSION.to_string(),
            verify: VerifyOptions::default(),
            lock_timeout: Duration::from_secs(30 * 60),
            role: None,
            reverify: true,
            resolver: Arc::new(crate::rewrite::pass_by_name),
            progress: None,
        }
    }
}

impl std::fmt::Debug for OptimizeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptimizeOptions")
            .field("out_dir", &self.out_dir)
            .field("input_shapes", &self.input_shapes)
            .field("tool_version", &self.tool_version)
            .field("lock_timeout", &self.lock_timeout)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl OptimizeOptions {
    fn phase(&self, label: &str, phase: &str) {
        if let Some(pb) = &self.progress {
            pb.set_message(format!("{label}: {phase}"));
        }
    }
}

/// What [`ensure_variant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Made and written now.
    Created,
    /// The cached variant's keys all matched.
    Reused,
}

/// A variant on disk and how it got there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantOutcome {
    pub action: Action,
    pub source: PathBuf,
    pub variant: PathBuf,
    pub sidecar_path: PathBuf,
    /// Why a cached variant was not reused (empty when there was none, or on reuse).
    pub remade_because: Vec<String>,
    pub sidecar: Sidecar,
}

/// A rewrite that failed its equivalence check; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{}: not written: the {target} rewrite of {} is {}", .variant.display(), .source_path.display(), .report.summary())]
pub struct NotEquivalent {
    pub target: String,
    pub source_path: PathBuf,
    pub variant: PathBuf,
    pub passes: Vec<PassReport>,
    pub report: Box<EquivalenceReport>,
}

/// The recipe does not apply to the model's role (its `skip` says why); nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{}: the {target} recipe skips {} models: {reason}", .source_path.display(), .role.name())]
pub struct Skipped {
    pub target: String,
    pub source_path: PathBuf,
    pub role: Role,
    pub reason: String,
}

/// The role of a model: from its file name (the model set's file names and common aliases),
/// else from its I/O signature.
pub fn guess_role(path: &Path, model: &Model) -> Option<Role> {
    role_from_name(path).or_else(|| role_from_signature(model))
}

/// The role a file name suggests: the model set's file names (`inswapper_128…`), role names and
/// common aliases (`gfpgan`, `scrfd`, `arcface`, …).
pub fn role_from_name(path: &Path) -> Option<Role> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    for role in Role::ALL {
        let known = role.default_file().trim_end_matches(".onnx").to_lowercase();
        if stem.starts_with(&known) || stem == role.name() {
            return Some(role);
        }
    }
    let aliases: [(&str, Role); 7] = [
        ("inswapper", Role::Swapper),
        ("gfpgan", Role::Enhancer),
        ("scrfd", Role::Detector),
        ("det_", Role::Detector),
        ("2d106", Role::Landmarks),
        ("w600k", Role::Recognizer),
        ("arcface", Role::Recognizer),
    ];
    aliases.iter().find(|(a, _)| stem.contains(a)).map(|(_, r)| *r)
}

/// The role an I/O signature suggests (detectors: 6, 9 or 10 outputs; swapper: a 1×512 second
/// input; landmarks: 212 outputs; recogniser: a 1×512 output; enhancer: image in, same image out).
pub fn role_from_signature(model: &Model) -> Option<Role> {
    let g = model.graph();
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let ins: Vec<Option<Vec<Option<i64>>>> =
        g.input.iter().filter(|v| !inits.contains(v.name.as_str())).map(|v| declared(v).1).collect();
    let outs: Vec<Option<Vec<Option<i64>>>> = g.output.iter().map(|v| declared(v).1).collect();
    let dims = |s: &Option<Vec<Option<i64>>>| s.clone().unwrap_or_default();
    if outs.len() == 6 || outs.len() == 9 || outs.len() == 10 {
        return Some(Role::Detector);
    }
    if ins.len() == 2 && ins.iter().any(|s| dims(s) == [Some(1), Some(512)]) {
        return Some(Role::Swapper);
    }
    match (ins.as_slice(), outs.as_slice()) {
        ([i], [o]) if dims(o).last() == Some(&Some(212)) && dims(i).len() == 4 => Some(Role::Landmarks),
        ([i], [o]) if dims(o) == [Some(1), Some(512)] && dims(i).len() == 4 => Some(Role::Recognizer),
        ([i], [o]) if dims(i).len() == 4 && dims(i) == dims(o) => Some(Role::Enhancer),
        _ => None,
    }
}

/// Counts of the ops the CoreML EP could not take before ORT 1.26/1.27.
pub fn blockers(model: &Model) -> Blockers {
    let g = model.graph();
    let rank0: HashSet<&str> = g
        .initializer
        .iter()
        .filter(|t| t.dims.is_empty())
        .map(|t| t.name.as_str())
        .chain(
            g.node
                .iter()
                .filter(|n| {
                    n.op_type == "Constant"
                        && n.attr("value").and_then(|a| a.t.as_ref()).is_some_and(|t| t.dims.is_empty())
                })
                .filter_map(|n| n.output.first().map(String::as_str)),
        )
        .collect();
    let mut b = Blockers::default();
    for n in &g.node {
        match n.op_type.as_str() {
            "Pad" if n.attr_s("mode").as_deref() == Some("reflect") => b.reflect_pad += 1,
            "Shape" => b.shape += 1,
            "Split" => b.split += 1,
            "Gather" if n.input.get(1).is_some_and(|i| rank0.contains(i.as_str())) => b.scalar_gather += 1,
            _ => {}
        }
    }
    b
}

/// Content key of a source model: sha256 of the file, combined with its `<file>.data` side file
/// when there is one.
pub fn source_sha256(path: &Path) -> Result<String> {
    let main = sha256_file(path)?;
    let data = PathBuf::from(format!("{}.data", path.display()));
    if data.is_file() {
        return Ok(sha256_hex(format!("{main}+{}", sha256_file(&data)?).as_bytes()));
    }
    Ok(main)
}

/// The recipe key: the recipe's hash, combined with command-line input shapes when given.
pub fn recipe_key(recipe: &Recipe, overrides: &BTreeMap<String, Vec<i64>>) -> String {
    if overrides.is_empty() {
        recipe.hash().to_string()
    } else {
        sha256_hex(format!("{}+{}", recipe.hash(), serde_json::to_string(overrides).unwrap_or_default()).as_bytes())
    }
}

/// Graph inputs of `model` (initializers excluded) and whether any has a symbolic dim.
fn inputs_of(model: &Model) -> (Vec<String>, bool) {
    let g = model.graph();
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut symbolic = false;
    let names = g
        .input
        .iter()
        .filter(|v| !inits.contains(v.name.as_str()))
        .map(|v| {
            symbolic |= declared(v).1.is_none_or(|s| s.iter().any(Option::is_none));
            v.name.clone()
        })
        .collect();
    (names, symbolic)
}

/// Everything a rewrite needs, worked out from the model, the recipe and the options.
struct Plan {
    role: Option<Role>,
    shapes: BTreeMap<String, Vec<i64>>,
    symbolic: bool,
    /// (position in the recipe, pass), skipping the role's `skip_passes`.
    passes: Vec<(usize, Box<dyn Pass>)>,
    verify: VerifySpec,
}

fn plan(path: &Path, model: &Model, recipe: &Recipe, opts: &OptimizeOptions) -> Result<Plan> {
    // A role the user or the file name asserts must fit the model's I/O (a detector named or
    // passed as the swapper is refused here, not deep inside the equivalence check).
    if let Some(claimed) = opts.role.or_else(|| role_from_name(path)) {
        crate::models::signature::check(model, claimed, &path.display().to_string())?;
    }
    let role = opts.role.or_else(|| guess_role(path, model));
    let (names, symbolic) = inputs_of(model);
    for (k, dims) in &opts.input_shapes {
        if !names.contains(k) {
            bail!("{}: --input-shape names '{k}', but the model's inputs are: {}", path.display(), names.join(", "));
        }
        if let Some(v) = model.graph().input.iter().find(|v| &v.name == k) {
            crate::onnx::shape::check_override(v, dims)
                .with_context(|| format!("{}: --input-shape", path.display()))?;
        }
    }
    // The recipe's shapes for inputs this model has (a user's export may name them differently).
    let shapes: BTreeMap<String, Vec<i64>> =
        recipe.input_shapes(role, &opts.input_shapes).into_iter().filter(|(k, _)| names.contains(k)).collect();
    let model_spec = recipe.model(role);
    if let (Some(reason), Some(role)) = (&model_spec.skip, role) {
        return Err(Skipped {
            target: recipe.target().to_string(),
            source_path: path.to_path_buf(),
            role,
            reason: reason.clone(),
        }
        .into());
    }
    let run = recipe.passes_for(role);
    let passes: Vec<(usize, Box<dyn Pass>)> = recipe
        .build_passes_with(&|n| (opts.resolver)(n))?
        .into_iter()
        .enumerate()
        .filter(|(i, _)| run.contains(i))
        .collect();
    let fuse_io =
        match recipe.spec.passes.iter().position(|p| p.name.get_ref() == "fuse-io").filter(|i| run.contains(i)) {
            Some(i) => {
                let o = recipe.options_for(i, role);
                let spec: FuseIoSpec = toml::Value::Table(o)
                    .try_into()
                    .with_context(|| format!("{}: fuse-io options for this model", recipe.source))?;
                (!spec.inputs.is_empty() || !spec.outputs.is_empty()).then_some(spec)
            }
            None => None,
        };
    let verify = VerifySpec {
        role,
        exact: passes.iter().all(|(_, p)| p.exact()),
        quality: passes.iter().any(|(_, p)| p.name() == "quantize"),
        tolerance: model_spec.tolerance,
        outputs: model_spec.outputs,
        input_shapes: shapes.clone(),
        fuse_io,
    };
    Ok(Plan { role, shapes, symbolic, passes, verify })
}

/// The `variant` of the `role` model at `original` as the built-in recipe of the variant's name
/// makes it: the cached file when its keys match, else made now (rewritten, proven equivalent on
/// ORT CPU, written to `out_dir` or beside the original). `Ok(None)` for [`Variant::Original`].
///
/// [`Variant::Original`]: crate::profile::Variant::Original
pub fn variant_of(
    rt: &Runtime,
    original: &Path,
    role: Role,
    variant: crate::profile::Variant,
    out_dir: Option<&Path>,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Option<VariantOutcome>> {
    if variant == crate::profile::Variant::Original {
        return Ok(None);
    }
    if !original.is_file() {
        bail!("{}: model file not found (variants are made from it)", original.display());
    }
    let recipe = Recipe::builtin(variant.name())?;
    let opts = OptimizeOptions {
        role: Some(role),
        progress: progress.cloned(),
        out_dir: out_dir.map(Path::to_path_buf),
        ..Default::default()
    };
    ensure_variant(rt, original, &recipe, &opts)
        .map(Some)
        .with_context(|| format!("`faceperf optimize --target {variant}` could not make it"))
}

/// Returns the variant of `model_path` that `recipe` makes: the cached one when its keys match,
/// else a new one, rewritten, proven equivalent and written atomically (under a per-variant lock,
/// so a concurrent call for the same variant waits and then reuses it). A rewrite that fails its
/// check is not written and the error is a [`NotEquivalent`] naming the first diverging node.
pub fn ensure_variant(
    rt: &Runtime,
    model_path: &Path,
    recipe: &Recipe,
    opts: &OptimizeOptions,
) -> Result<VariantOutcome> {
    let total = Instant::now();
    let paths = VariantPaths::new(model_path, recipe.suffix(), opts.out_dir.as_deref())?;
    let label = format!(
        "{} {}",
        model_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        recipe.target()
    );
    if !model_path.is_file() {
        bail!("{}: model not found", model_path.display());
    }
    let _lock = VariantLock::acquire(&paths.lock, &paths.variant, opts.lock_timeout, &|| {
        opts.phase(&label, "waiting for another optimize")
    })?;
    // Temporary files of a writer that was killed (only a lock holder writes them).
    for p in [&paths.variant, &paths.sidecar] {
        remove_stale_temps(p);
    }
    let mut t = Timings::default();
    let prepared = prepare_calibration(model_path, recipe, opts)?;
    let rkey = calibrate::keyed(&recipe_key(recipe, &opts.input_shapes), prepared.as_ref());
    let cached = if paths.variant.is_file() { Sidecar::read(&paths.sidecar) } else { None };
    // The source is hashed on a second thread alongside what comes next either way: hashing the
    // cached variant when its sidecar may vouch for it, else loading the model to rewrite it.
    let may_reuse = cached.as_ref().is_some_and(|c| c.recipe.hash == rkey && c.tool_version == opts.tool_version);
    opts.phase(&label, if may_reuse { "hashing" } else { "hashing and loading" });
    let (source_sha, variant_sha, loaded) = std::thread::scope(|sc| {
        let hashing = sc.spawn(|| {
            let clock = Instant::now();
            (source_sha256(model_path), clock.elapsed().as_secs_f64())
        });
        let clock = Instant::now();
        let (variant_sha, loaded) =
            if may_reuse { (Some(sha256_file(&paths.variant)), None) } else { (None, Some(Model::load(model_path))) };
        let other_s = clock.elapsed().as_secs_f64();
        let (sha, hash_s) = hashing.join().unwrap_or_else(|_| (Err(anyhow::anyhow!("hashing thread panicked")), 0.0));
        t.hash_s = hash_s;
        if loaded.is_some() {
            t.load_s = other_s;
        }
        (sha, variant_sha, loaded)
    });
    let source_sha = source_sha?;

    let mut remade_because = Vec::new();
    match (&cached, variant_sha) {
        (None, _) if paths.variant.is_file() => remade_because.push("no readable sidecar".into()),
        (None, _) => {}
        (Some(c), variant_sha) => {
            remade_because = c.mismatches(&source_sha, &rkey, &opts.tool_version);
            match variant_sha {
                Some(Ok(h)) if remade_because.is_empty() && h == c.variant.sha256 && c.equivalence.passed => {
                    return Ok(VariantOutcome {
                        action: Action::Reused,
                        source: model_path.to_path_buf(),
                        variant: paths.variant,
                        sidecar_path: paths.sidecar,
                        remade_because,
                        sidecar: cached.expect("matched above"),
                    });
                }
                Some(Ok(h)) if h != c.variant.sha256 => {
                    remade_because.push("variant file was modified after it was written".into())
                }
                Some(Err(e)) => remade_because.push(format!("variant unreadable: {e:#}")),
                _ => {}
            }
            if remade_because.is_empty() {
                remade_because.push("the cached variant's equivalence check had failed".into());
            }
        }
    }

    let original = match loaded {
        Some(m) => m?,
        None => {
            opts.phase(&label, "loading");
            let clock = Instant::now();
            let m = Model::load(model_path)?;
            t.load_s = clock.elapsed().as_secs_f64();
            m
        }
    };
    let plan = plan(model_path, &original, recipe, opts)?;

    opts.phase(&label, "rewriting");
    let clock = Instant::now();
    // Tensor payloads are reference-counted, so the copy shares every weight with the original.
    let mut rewritten = original.clone();
    // The copy is not the file the original came from.
    rewritten.path = None;
    let nodes_before = original.graph().node.len();
    let mut records = Vec::new();
    let calibration = match &prepared {
        Some(p) => {
            opts.phase(&label, "calibrating on face crops");
            Some(calibrate::calibrate(rt, &original, p, opts.verify.threads)?)
        }
        None => None,
    };
    for (i, pass) in plan.passes.iter() {
        let i = *i;
        let mut ctx = recipe.context(i, plan.role, &plan.shapes);
        if let (Some(p), Some((ranges, _))) = (&prepared, &calibration) {
            if p.pass == i {
                ctx.options.insert("ranges".into(), ranges.clone());
            }
        }
        let mut r = pass
            .run(&mut rewritten, &ctx)
            .with_context(|| format!("{}: rewrite pass `{}` failed", model_path.display(), pass.name()))?;
        r.pass = pass.name().to_string();
        let spec = &recipe.spec.passes[i];
        records.push(PassRecord {
            report: r,
            exact: pass.exact(),
            ort_below: spec.ort_below.as_ref().map(|v| v.get_ref().clone()),
            only_symbolic_dims: spec.only_symbolic_dims,
            needed_with_this_ort: spec.needed(&rt.version, plan.symbolic),
        });
    }
    t.passes_s = clock.elapsed().as_secs_f64();

    opts.phase(&label, "encoding");
    let clock = Instant::now();
    verify::check_graph(&rewritten)
        .with_context(|| format!("{}: the {} passes left an invalid graph", model_path.display(), recipe.target()))?;
    let bytes = rewritten.to_bytes();
    t.encode_s = clock.elapsed().as_secs_f64();

    opts.phase(&label, "verifying on ORT CPU");
    let clock = Instant::now();
    let report = verify::verify(rt, &original, &rewritten, Some(&bytes), &plan.verify, &opts.verify)
        .with_context(|| format!("{}: equivalence check of the {} variant", model_path.display(), recipe.target()))?;
    t.verify_s = clock.elapsed().as_secs_f64();
    if !report.passed {
        return Err(NotEquivalent {
            target: recipe.target().to_string(),
            source_path: model_path.to_path_buf(),
            variant: paths.variant,
            passes: records.into_iter().map(|r| r.report).collect(),
            report: Box::new(report),
        }
        .into());
    }

    opts.phase(&label, "writing");
    let clock = Instant::now();
    // Order for a kill at any point: the variant is staged under a temporary name, any old variant
    // is removed, the sidecar is written, and only then the variant renamed into place. So a
    // variant file on disk always has a sidecar vouching for its content. (Over 2 GiB the variant
    // and its .data file are written first, each atomically; a stale pair is caught by its hash.)
    let (variant_sha, staged) = if bytes.len() as u64 >= crate::onnx::model::INLINE_LIMIT_BYTES {
        rewritten.save(&paths.variant, DataLayout::External)?;
        (source_sha256(&paths.variant)?, None)
    } else {
        // Hash while the file is staged (and synced): the write waits on the disk, not the CPU.
        let (staged, sha) = std::thread::scope(|sc| {
            let hashing = sc.spawn(|| sha256_hex(&bytes));
            (write_staged(&paths.variant, &bytes), hashing.join())
        });
        let staged = staged?;
        let sha = sha.map_err(|_| anyhow::anyhow!("hashing thread panicked"))?;
        match std::fs::remove_file(&paths.variant) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(e).context(format!("{}: cannot replace", paths.variant.display())))
            }
            _ => {}
        }
        (sha, Some(staged))
    };
    let sidecar = Sidecar {
        schema: cache::SIDECAR_SCHEMA,
        source: FileKey {
            path: model_path.display().to_string(),
            sha256: source_sha,
            bytes: std::fs::metadata(model_path).map(|m| m.len()).unwrap_or(0),
        },
        recipe: RecipeKey { target: recipe.target().to_string(), source: recipe.source.clone(), hash: rkey },
        tool_version: opts.tool_version.clone(),
        variant: FileKey { path: paths.variant.display().to_string(), sha256: variant_sha, bytes: bytes.len() as u64 },
        role: plan.role,
        input_shapes: plan.shapes,
        ort_version: rt.version.clone(),
        nodes_before,
        nodes_after: rewritten.graph().node.len(),
        blockers_before: blockers(&original),
        blockers_after: blockers(&rewritten),
        passes: records,
        equivalence: report,
        calibration: calibration.map(|(_, r)| r),
        timings: t,
        created_utc: crate::bench::results::utc_now().0,
    };
    let mut sidecar = sidecar;
    sidecar.timings.write_s = clock.elapsed().as_secs_f64();
    sidecar.timings.total_s = total.elapsed().as_secs_f64();
    write_atomic(&paths.sidecar, &serde_json::to_vec_pretty(&sidecar)?)?;
    if let Some(staged) = staged {
        staged.commit()?;
    }
    Ok(VariantOutcome {
        action: Action::Created,
        source: model_path.to_path_buf(),
        variant: paths.variant,
        sidecar_path: paths.sidecar,
        remade_because,
        sidecar,
    })
}

/// The role of the model at `path`: the option, else guessed from its name, else from its
/// signature (loading it).
fn guess_role_of_file(path: &Path, opts: &OptimizeOptions) -> Option<Role> {
    opts.role.or_else(|| role_from_name(path).or_else(|| Model::load(path).ok().and_then(|m| role_from_signature(&m))))
}

/// The calibration `recipe` needs for the model at `path` (its role from the options, its name or
/// its signature; the input shapes from the recipe and `--input-shape`), if any.
fn prepare_calibration(path: &Path, recipe: &Recipe, opts: &OptimizeOptions) -> Result<Option<calibrate::Prepared>> {
    if !recipe.spec.passes.iter().any(|p| p.name.get_ref() == "quantize") {
        return Ok(None);
    }
    let role = guess_role_of_file(path, opts);
    let shapes = recipe.input_shapes(role, &opts.input_shapes);
    let photo = match &opts.verify.photo {
        Some(p) => Some(p.clone()),
        None => crate::bench::inputs::Photo::astronaut().ok().map(Arc::new),
    };
    calibrate::prepare(recipe, role, &shapes, photo.as_deref())
}

/// Whether a variant on disk can be used as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", content = "why", rename_all = "snake_case")]
pub enum VariantState {
    /// Keys match, content intact, equivalent.
    Fresh,
    /// No variant file.
    Missing,
    /// Made from another source, recipe or tool version, or modified since.
    Stale(Vec<String>),
    /// Fails (or failed) its equivalence check.
    NonEquivalent(String),
    /// The recipe does not apply to this model's role (the reason).
    Skipped(String),
}

/// The result of checking one variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub source: PathBuf,
    pub target: String,
    pub variant: PathBuf,
    #[serde(flatten)]
    pub state: VariantState,
}

/// Checks the variant of `model_path` for `recipe` without writing anything. With
/// `opts.reverify`, a variant whose keys match is also re-checked for equivalence against its
/// source.
pub fn check_variant(rt: &Runtime, model_path: &Path, recipe: &Recipe, opts: &OptimizeOptions) -> Result<CheckOutcome> {
    let paths = VariantPaths::new(model_path, recipe.suffix(), opts.out_dir.as_deref())?;
    let done = |state| CheckOutcome {
        source: model_path.to_path_buf(),
        target: recipe.target().to_string(),
        variant: paths.variant.clone(),
        state,
    };
    if let Some(reason) = guess_role_of_file(model_path, opts).and_then(|r| recipe.model(Some(r)).skip) {
        return Ok(done(VariantState::Skipped(reason)));
    }
    if !paths.variant.is_file() {
        return Ok(done(VariantState::Missing));
    }
    let Some(s) = Sidecar::read(&paths.sidecar) else {
        return Ok(done(VariantState::Stale(vec![format!("no readable sidecar {}", paths.sidecar.display())])));
    };
    let prepared = prepare_calibration(model_path, recipe, opts)?;
    let rkey = calibrate::keyed(&recipe_key(recipe, &opts.input_shapes), prepared.as_ref());
    let mut why = s.mismatches(&source_sha256(model_path)?, &rkey, &opts.tool_version);
    if sha256_file(&paths.variant)? != s.variant.sha256 {
        why.push("variant file was modified after it was written".into());
    }
    if !why.is_empty() {
        return Ok(done(VariantState::Stale(why)));
    }
    if !s.equivalence.passed {
        return Ok(done(VariantState::NonEquivalent(s.equivalence.summary())));
    }
    if opts.reverify {
        let original = Model::load(model_path)?;
        let variant = Model::load(&paths.variant)?;
        let plan = plan(model_path, &original, recipe, opts)?;
        let report = verify::verify(rt, &original, &variant, None, &plan.verify, &opts.verify)?;
        if !report.passed {
            return Ok(done(VariantState::NonEquivalent(report.summary())));
        }
    }
    Ok(done(VariantState::Fresh))
}
