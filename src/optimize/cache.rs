//! The variant cache on disk: where a variant lives, its JSON sidecar (the keys it was made from
//! and what was done to it), and the per-variant lock that serialises concurrent writers.
//!
//! A variant is reused only when the source model's sha256, the recipe hash and the tool version
//! recorded in its sidecar all match, and the variant file still has the content the sidecar
//! vouches for. File times never count.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::models::Role;
use crate::rewrite::PassReport;
use crate::verify::EquivalenceReport;

/// Version of the sidecar format; a sidecar of another version is stale.
pub const SIDECAR_SCHEMA: u32 = 1;

/// Where a variant of `source` made by a recipe with `suffix` lives: `<stem><suffix>.onnx` beside
/// the source or in `out_dir`, with `<stem><suffix>.json` as its sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantPaths {
    pub variant: PathBuf,
    pub sidecar: PathBuf,
    pub lock: PathBuf,
}

impl VariantPaths {
    /// The paths for `source` and `suffix`.
    pub fn new(source: &Path, suffix: &str, out_dir: Option<&Path>) -> Result<VariantPaths> {
        let stem = source
            .file_stem()
            .with_context(|| format!("{}: not a model file path", source.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = match out_dir {
            Some(d) => d.to_path_buf(),
            None => source.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let name = format!("{stem}{suffix}");
        Ok(VariantPaths {
            variant: dir.join(format!("{name}.onnx")),
            sidecar: dir.join(format!("{name}.json")),
            lock: dir.join(format!(".{name}.onnx.lock")),
        })
    }
}

/// A file and its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    /// As given (source) or as written (variant).
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The recipe a variant was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeKey {
    pub target: String,
    /// Path or `built-in rewrites/<target>.toml`.
    pub source: String,
    /// sha256 of the recipe's canonical content, combined with any command-line input shapes.
    pub hash: String,
}

/// One applied pass, with the recipe's word on when it is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    #[serde(flatten)]
    pub report: PassReport,
    /// The pass promises bit-identical outputs.
    pub exact: bool,
    /// Needed only with ORT older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_below: Option<String>,
    /// Needed only when some input has symbolic dims.
    #[serde(default)]
    pub only_symbolic_dims: bool,
    /// Whether the pass matters with the ORT that ran the optimisation.
    pub needed_with_this_ort: bool,
}

/// Counts of the ops the CoreML EP (before ORT 1.26/1.27) cannot take, before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Blockers {
    pub reflect_pad: usize,
    pub shape: usize,
    pub split: usize,
    pub scalar_gather: usize,
}

/// Wall time of each phase of making one variant (seconds). Hashing the source runs on a second
/// thread alongside loading it, and hashing the variant alongside writing it, so the phases add
/// up to more than `total_s` when cores are free.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Hashing the source model.
    pub hash_s: f64,
    /// Reading and decoding it.
    pub load_s: f64,
    /// Running the passes.
    pub passes_s: f64,
    /// Encoding the variant and checking its graph.
    pub encode_s: f64,
    /// The equivalence check (both models on ORT CPU, or on the providers its notes name).
    pub verify_s: f64,
    /// Writing (and syncing) the variant and the sidecar, hashing the variant.
    pub write_s: f64,
    pub total_s: f64,
}

/// The JSON sidecar beside a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub schema: u32,
    pub source: FileKey,
    pub recipe: RecipeKey,
    pub tool_version: String,
    pub variant: FileKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The fixed input shapes the passes and the check used.
    pub input_shapes: BTreeMap<String, Vec<i64>>,
    /// ORT that ran the equivalence check.
    pub ort_version: String,
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub blockers_before: Blockers,
    pub blockers_after: Blockers,
    pub passes: Vec<PassRecord>,
    pub equivalence: EquivalenceReport,
    /// How the activation ranges of a quantized variant were calibrated (`int8`); the set's hash
    /// is part of the recipe key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<super::calibrate::CalibrationRecord>,
    pub timings: Timings,
    /// RFC 3339 UTC (informational; never a cache key).
    pub created_utc: String,
}

impl Sidecar {
    /// Reads a sidecar; `None` when absent, unreadable or of another schema.
    pub fn read(path: &Path) -> Option<Sidecar> {
        let text = fs::read_to_string(path).ok()?;
        let s: Sidecar = serde_json::from_str(&text).ok()?;
        (s.schema == SIDECAR_SCHEMA).then_some(s)
    }

    /// Why this sidecar does not vouch for a variant of a source with `source_sha`, made with
    /// `recipe_hash` by `tool_version` (empty: it does).
    pub fn mismatches(&self, source_sha: &str, recipe_hash: &str, tool_version: &str) -> Vec<String> {
        let mut why = Vec::new();
        if self.source.sha256 != source_sha {
            why.push(format!("source model changed (sha256 {} → {})", short(&self.source.sha256), short(source_sha)));
        }
        if self.recipe.hash != recipe_hash {
            why.push(format!("recipe changed (hash {} → {})", short(&self.recipe.hash), short(recipe_hash)));
        }
        if self.tool_version != tool_version {
            why.push(format!("tool version changed ({} → {tool_version})", self.tool_version));
        }
        why
    }
}

/// The first 12 hex digits of a hash.
pub fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// An exclusive lock on one variant, held until dropped. A second `faceperf optimize` making the
/// same variant waits for it; the OS releases it if the holder dies, so a stale lock file is
/// harmless.
pub struct VariantLock {
    file: File,
}

impl VariantLock {
    /// Takes the lock at `path`, waiting up to `timeout`; `on_wait` is called once if it must wait.
    pub fn acquire(path: &Path, variant: &Path, timeout: Duration, on_wait: &dyn Fn()) -> Result<VariantLock> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("{}: cannot create folder", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open lock file", path.display()))?;
        let start = Instant::now();
        let mut waited = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(VariantLock { file }),
                Err(TryLockError::WouldBlock) => {
                    if !waited {
                        on_wait();
                        waited = true;
                    }
                    if start.elapsed() >= timeout {
                        bail!(
                            "{}: another `faceperf optimize` is still writing this variant after {:.0} s (lock {} held); \
                             wait for it to finish or raise --lock-timeout",
                            variant.display(),
                            timeout.as_secs_f64(),
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(anyhow::Error::new(e).context(format!("{}: cannot lock", path.display())))
                }
            }
        }
    }
}

impl Drop for VariantLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The key a CI cache of variants is stored under: everything [`Sidecar::mismatches`] compares
/// (each source model's sha256, each recipe's hash with the input-shape overrides, the tool
/// version), so a cache restored under the same key holds variants `optimize --check` accepts.
/// Printed by `faceperf optimize --cache-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// sha256 of the canonical JSON of the other fields.
    pub key: String,
    /// Tool version recorded in sidecars.
    pub tool_version: String,
    /// Target and recipe key of each recipe, sorted by target.
    pub recipes: Vec<RecipeKeyPart>,
    /// File name and content hash of each source model, sorted by name (paths do not count, so
    /// the key is the same in every checkout).
    pub models: Vec<ModelKeyPart>,
}

/// One recipe's part of a [`CacheKey`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecipeKeyPart {
    pub target: String,
    /// [`super::recipe_key`]: the recipe hash combined with any `--input-shape` overrides.
    pub hash: String,
}

/// One source model's part of a [`CacheKey`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelKeyPart {
    /// File name.
    pub file: String,
    /// [`super::source_sha256`] (covers an external-data `.onnx.data` file too).
    pub sha256: String,
}

impl CacheKey {
    /// The key for making `recipes` of `models` (with input-shape `overrides`) by `tool_version`.
    pub fn compute(
        models: &[PathBuf],
        recipes: &[crate::rewrite::recipe::Recipe],
        overrides: &BTreeMap<String, Vec<i64>>,
        tool_version: &str,
    ) -> Result<CacheKey> {
        let mut m = Vec::new();
        for p in models {
            let file = p.file_name().with_context(|| format!("{}: not a model file", p.display()))?;
            m.push(ModelKeyPart { file: file.to_string_lossy().into_owned(), sha256: super::source_sha256(p)? });
        }
        m.sort();
        m.dedup();
        let mut r: Vec<RecipeKeyPart> = recipes
            .iter()
            .map(|x| RecipeKeyPart { target: x.target().to_string(), hash: super::recipe_key(x, overrides) })
            .collect();
        r.sort();
        r.dedup();
        let canonical = serde_json::json!({ "tool_version": tool_version, "recipes": r, "models": m });
        let key = crate::util::hash::sha256_hex(canonical.to_string().as_bytes());
        Ok(CacheKey { key, tool_version: tool_version.to_string(), recipes: r, models: m })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_beside_source_or_in_out_dir() {
        let p = VariantPaths::new(Path::new("/m/inswapper_128.onnx"), "_coreml", None).unwrap();
        assert_eq!(p.variant, Path::new("/m/inswapper_128_coreml.onnx"));
        assert_eq!(p.sidecar, Path::new("/m/inswapper_128_coreml.json"));
        let p = VariantPaths::new(Path::new("/m/x.onnx"), "_fp16", Some(Path::new("/o"))).unwrap();
        assert_eq!(p.variant, Path::new("/o/x_fp16.onnx"));
    }

    #[test]
    fn lock_times_out_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(".v.lock");
        let v = dir.path().join("v.onnx");
        let held = VariantLock::acquire(&lock, &v, Duration::from_secs(1), &|| {}).unwrap();
        let waited = std::cell::Cell::new(false);
        let e = VariantLock::acquire(&lock, &v, Duration::from_millis(200), &|| waited.set(true))
            .err()
            .expect("second holder must wait and time out");
        assert!(waited.get());
        assert!(e.to_string().contains("another `faceperf optimize`"), "{e}");
        drop(held);
        VariantLock::acquire(&lock, &v, Duration::from_millis(200), &|| {}).unwrap();
    }

    #[test]
    fn cache_key_follows_content_recipes_and_version_not_paths() {
        use crate::rewrite::recipe::Recipe;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a/x.onnx"), dir.path().join("b/x.onnx"));
        for p in [&a, &b] {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"model bytes").unwrap();
        }
        let coreml = vec![Recipe::builtin("coreml").unwrap()];
        let none = BTreeMap::new();
        let k = |m: &PathBuf, r: &[Recipe], o: &BTreeMap<String, Vec<i64>>, v: &str| {
            CacheKey::compute(std::slice::from_ref(m), r, o, v).unwrap().key
        };
        let base = k(&a, &coreml, &none, "0.1.0");
        assert_eq!(base, k(&b, &coreml, &none, "0.1.0"), "another folder, same content: same key");
        assert_ne!(base, k(&a, &coreml, &none, "0.1.1"), "tool version counts");
        assert_ne!(base, k(&a, &[Recipe::builtin("fp16").unwrap()], &none, "0.1.0"), "recipe counts");
        let shapes = BTreeMap::from([("input.1".to_string(), vec![1, 3, 480, 640])]);
        assert_ne!(base, k(&a, &coreml, &shapes, "0.1.0"), "input-shape overrides count");
        fs::write(&b, b"other bytes").unwrap();
        let changed = CacheKey::compute(std::slice::from_ref(&b), &coreml, &none, "0.1.0").unwrap();
        assert_ne!(base, changed.key, "model content counts");
        assert_eq!(changed.models[0].sha256, crate::util::hash::sha256_hex(b"other bytes"));
        assert_eq!(changed.recipes[0].hash, Recipe::builtin("coreml").unwrap().hash());
    }
}
