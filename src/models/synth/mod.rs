//! Deterministic random-weight replicas of the Deep-Live-Cam model set.
//!
//! The real models cannot be downloaded everywhere (CI, air-gapped machines), yet rewrites, benchmarks
//! and the pipeline need models with the real I/O signatures and the op patterns the rewrites target.
//! Each replica is generated from a seed with [`crate::util::rng::Rng`], so a seed fixes every byte:
//! the same seed gives byte-identical files on every platform. `tiny` keeps every pattern at small
//! widths (tests); `full` matches the published parameter counts and FLOPs (benchmarks).
//!
//! Replica folders carry a stamp file (`replicas.json`) with the generator version, seed and the
//! sha256 of each file; [`ensure_replicas`] regenerates whatever the stamp does not vouch for, under
//! an exclusive file lock so concurrent test threads and processes never see a partial file.

mod detector;
mod enhancer;
mod landmarks;
mod net;
mod recognizer;
mod swapper;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use super::{Role, Scale};
use crate::onnx::Model;
use crate::util::hash::{sha256_file, sha256_hex};

pub use detector::{ANCHORS as DETECTOR_ANCHORS, OUTPUTS as DETECTOR_OUTPUTS, STRIDES as DETECTOR_STRIDES};
pub use enhancer::NUM_LATENT as ENHANCER_STYLE_CODES;
pub use swapper::STYLE_BLOCKS as SWAPPER_STYLE_BLOCKS;

/// The seed used when none is given (tests, CI and `ensure_replicas`).
pub const DEFAULT_SEED: u64 = 20_240_611;

/// Bumped whenever any generator changes its output; stale stamps then force regeneration.
pub const GENERATOR_VERSION: u32 = 1;

/// Name of the stamp file in a replica folder.
pub const STAMP_FILE: &str = "replicas.json";
const LOCK_FILE: &str = ".replicas.lock";

/// Builds the replica for `role` at `scale` from `seed`.
pub fn synth_model(role: Role, scale: Scale, seed: u64) -> Result<Model> {
    build(role, scale, seed, false)
}

/// The graph of [`synth_model`] with every random weight left without payload (dims kept): for
/// structure checks and parameter/FLOP counts of `full` replicas without generating ~1 GB. ORT
/// cannot run it.
pub fn synth_skeleton(role: Role, scale: Scale) -> Result<Model> {
    build(role, scale, DEFAULT_SEED, true)
}

fn build(role: Role, scale: Scale, seed: u64, skeleton: bool) -> Result<Model> {
    // Distinct streams per role, so adding a layer to one replica leaves the others' bytes unchanged.
    let seed = seed ^ (role as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F);
    let model = match role {
        Role::Swapper => swapper::build(scale, seed, skeleton),
        Role::Detector => detector::build(scale, seed, skeleton),
        Role::Recognizer => recognizer::build(scale, seed, skeleton),
        Role::Landmarks => landmarks::build(scale, seed, skeleton),
        Role::Enhancer => enhancer::build(scale, seed, skeleton),
    };
    crate::onnx::GraphIndex::new(model.graph())?.check_dangling(model.graph())?;
    Ok(model)
}

/// Contents of a replica folder's stamp file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// [`GENERATOR_VERSION`] that wrote the files.
    pub generator_version: u32,
    /// Scale of every file in the folder.
    pub scale: Scale,
    /// Seed of every file in the folder.
    pub seed: u64,
    /// File name → sha256.
    pub files: BTreeMap<String, String>,
}

impl Stamp {
    fn read(dir: &Path) -> Option<Stamp> {
        let text = fs::read_to_string(dir.join(STAMP_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// True when this stamp was written by this generator for `scale` and `seed` and `role`'s file
    /// still has the recorded content.
    fn vouches_for(&self, dir: &Path, role: Role, scale: Scale, seed: u64) -> bool {
        if self.generator_version != GENERATOR_VERSION || self.scale != scale || self.seed != seed {
            return false;
        }
        let file = role.default_file();
        match self.files.get(file) {
            Some(want) => sha256_file(&dir.join(file)).map(|got| &got == want).unwrap_or(false),
            None => false,
        }
    }
}

/// True when `path` is one of faceperf's replicas: its folder's stamp records a file of that name
/// with the same sha256. Replicas have random weights: a replica detector finds no real face.
pub fn is_replica(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let Some(stamp) = Stamp::read(dir) else { return false };
    stamp.files.get(name).is_some_and(|want| sha256_file(path).is_ok_and(|got| &got == want))
}

/// Holds an exclusive lock on a replica folder until dropped.
struct DirLock(fs::File);

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock> {
        fs::create_dir_all(dir).with_context(|| format!("{}: cannot create replica folder", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open lock file", path.display()))?;
        f.lock().with_context(|| format!("{}: cannot lock", path.display()))?;
        Ok(DirLock(f))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Generates `roles` into `dir` (locked, atomic writes) and updates the stamp. With `only_stale`,
/// roles whose files the stamp already vouches for are skipped.
fn generate(
    dir: &Path,
    roles: &[Role],
    scale: Scale,
    seed: u64,
    quiet: bool,
    only_stale: bool,
) -> Result<Vec<(Role, PathBuf)>> {
    let _lock = DirLock::acquire(dir)?;
    let old = Stamp::read(dir);
    let mut stamp = match &old {
        Some(s) if s.generator_version == GENERATOR_VERSION && s.scale == scale && s.seed == seed => s.clone(),
        _ => Stamp { generator_version: GENERATOR_VERSION, scale, seed, files: BTreeMap::new() },
    };
    let todo: Vec<Role> = roles
        .iter()
        .copied()
        .filter(|&r| !only_stale || !old.as_ref().is_some_and(|s| s.vouches_for(dir, r, scale, seed)))
        .collect();
    let pb = crate::util::progress::bar(todo.len() as u64, &format!("synth {}", scale.name()), quiet);
    for &role in &todo {
        pb.set_message(format!("synth {} {}", scale.name(), role.name()));
        let model = synth_model(role, scale, seed).with_context(|| format!("building the {} replica", role.name()))?;
        let bytes = model.to_bytes();
        let path = dir.join(role.default_file());
        // Inline data: every replica is far below protobuf's 2 GiB limit, and one file is simpler to
        // hash, stamp and hand to ORT.
        crate::onnx::model::write_atomic(&path, &bytes)?;
        stamp.files.insert(role.default_file().to_string(), sha256_hex(&bytes));
        pb.inc(1);
    }
    pb.finish_and_clear();
    if !todo.is_empty() || old.as_ref() != Some(&stamp) {
        let json = serde_json::to_vec_pretty(&stamp)?;
        crate::onnx::model::write_atomic(&dir.join(STAMP_FILE), &json)?;
    }
    Ok(roles.iter().map(|&r| (r, dir.join(r.default_file()))).collect())
}

/// Writes every replica at `scale` from `seed` into `dir` as `Role::default_file()` (atomically),
/// plus the stamp file. Returns the paths in [`Role::ALL`] order.
pub fn write_replicas(dir: &Path, scale: Scale, seed: u64, quiet: bool) -> Result<Vec<(Role, PathBuf)>> {
    write_roles(dir, &Role::ALL, scale, seed, quiet)
}

/// Like [`write_replicas`] for a subset of roles; files of other roles in `dir` are left alone.
pub fn write_roles(dir: &Path, roles: &[Role], scale: Scale, seed: u64, quiet: bool) -> Result<Vec<(Role, PathBuf)>> {
    if roles.is_empty() {
        bail!("no roles selected");
    }
    generate(dir, roles, scale, seed, quiet, false)
}

/// The default replica folder for `scale`: `$FACEPERF_MODELS/replica-<scale>` when set, else
/// `models/replica-<scale>` under the source checkout this crate was built from (so tests, `cargo
/// run` and the built binary share one cache wherever they run), else under the current folder (a
/// binary installed away from its source tree).
pub fn default_dir(scale: Scale) -> PathBuf {
    super::local::default_dir().join(format!("replica-{}", scale.name()))
}

/// Returns [`default_dir`]`(scale)`, first generating (with [`DEFAULT_SEED`]) any replica that is
/// missing or whose content the stamp does not vouch for. Safe to call from many threads and
/// processes at once.
pub fn ensure_replicas(scale: Scale) -> Result<PathBuf> {
    let dir = default_dir(scale);
    ensure_dir(&dir, scale, DEFAULT_SEED)?;
    Ok(dir)
}

/// Makes `dir` hold every replica at `scale` from `seed`, regenerating only the files whose content
/// the stamp does not vouch for (missing, edited, other seed or generator version).
pub fn ensure_dir(dir: &Path, scale: Scale, seed: u64) -> Result<Vec<(Role, PathBuf)>> {
    generate(dir, &Role::ALL, scale, seed, true, true)
}

/// The path of `role`'s replica at `scale`, generated first if needed (see [`ensure_replicas`]).
pub fn replica_path(role: Role, scale: Scale) -> Result<PathBuf> {
    Ok(ensure_replicas(scale)?.join(role.default_file()))
}
