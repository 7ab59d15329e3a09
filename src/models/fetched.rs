//! What `fetch` took on trust: the record of files fetched without a published sha256, and the
//! signature check such files must pass.
//!
//! A model whose manifest entry publishes no sha256 (GFPGANv1.4, say) cannot be verified. `fetch`
//! still refuses one whose declared inputs and outputs do not fit its role
//! ([`super::signature::check`]) and, on the first fetch, writes its sha256 to
//! `<models dir>/.fetched.toml` ([`RECORD_FILE`]). A later `fetch` or `models list` compares the
//! file with that record, so a file that changed since (replaced, corrupted, edited) is reported
//! instead of being trusted again. The record lives in the models folder, which git ignores.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::local::{self, io_error, FileLock};
use super::Role;
use crate::onnx::Model;

/// File name of the record in the models folder.
pub const RECORD_FILE: &str = ".fetched.toml";

/// How much a file can be trusted, as `fetch` reports it.
pub const TRUST_SHA256: &str = "verified by sha256";
/// A model without a published hash that fits its role's signature.
pub const TRUST_SIGNATURE: &str = "unverified: signature only";
/// A model without a published hash whose published size and role signature both fit.
pub const TRUST_SIZE_SIGNATURE: &str = "unverified: size and signature only";
/// An archive without a published hash whose published size fits.
pub const TRUST_SIZE: &str = "unverified: size only";
/// An archive with nothing published to check it against.
pub const TRUST_NONE: &str = "unverified: nothing published to check";

/// One recorded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Manifest name.
    pub name: String,
    /// sha256 of the file when it was first fetched.
    pub sha256: String,
    /// Its size then.
    pub size: u64,
    /// Where it came from (a URL, an archive, or `found in place`).
    pub source: String,
    /// When it was recorded (RFC 3339 UTC).
    pub recorded_utc: String,
}

/// The record file's content: recorded files by file name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRecord {
    /// File name in the models folder → what was recorded for it.
    #[serde(default)]
    pub files: BTreeMap<String, Recorded>,
}

impl FetchRecord {
    /// The record of `dir`; empty when there is none yet. A malformed record is an error naming
    /// the file (delete it to start a new one).
    pub fn load(dir: &Path) -> Result<FetchRecord> {
        let path = dir.join(RECORD_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FetchRecord::default()),
            Err(e) => return Err(io_error(e, &path, "cannot read the record of fetched files")),
        };
        toml::from_str(&text).with_context(|| {
            format!("{}: not a record of fetched files; delete it and fetch again to rebuild it", path.display())
        })
    }

    /// What was recorded for `file`, if anything.
    pub fn get(&self, file: &str) -> Option<&Recorded> {
        self.files.get(file)
    }

    /// Why the file `file` with `sha256` now differs from its record (`None`: no record, or it
    /// matches).
    pub fn changed(&self, file: &str, sha256: &str) -> Option<String> {
        let r = self.get(file).filter(|r| r.sha256 != sha256)?;
        Some(format!(
            "changed since it was first fetched: sha256 {sha256}, recorded {} from {} at {}",
            r.sha256, r.source, r.recorded_utc
        ))
    }
}

/// Adds (or replaces) the entry of `file` in `dir`'s record, under a lock so concurrent fetches of
/// different files do not lose each other's entries. Returns the record's path.
pub fn record(dir: &Path, file: &str, entry: Recorded) -> Result<PathBuf> {
    let _lock = FileLock::acquire(dir, RECORD_FILE, true)?;
    let mut rec = FetchRecord::load(dir)?;
    rec.files.insert(file.to_string(), entry);
    let path = dir.join(RECORD_FILE);
    let text = format!(
        "# sha256 of models fetched without a published hash, written by `faceperf models fetch`;\n\
         # `fetch` and `models list` report a file that no longer matches.\n{}",
        toml::to_string(&rec)?
    );
    let tmp = dir.join(format!("{RECORD_FILE}.tmp-{}", std::process::id()));
    fs::write(&tmp, text).map_err(|e| io_error(e, &tmp, "cannot write the record of fetched files"))?;
    if let Err(e) = local::place(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// A new record entry for `name`, stamped now.
pub fn entry(name: &str, sha256: &str, size: u64, source: &str) -> Recorded {
    Recorded {
        name: name.to_string(),
        sha256: sha256.to_string(),
        size,
        source: source.to_string(),
        recorded_utc: crate::bench::results::utc_now().0,
    }
}

/// Refuses `path` unless it is an ONNX model whose declared inputs and outputs fit `role`; `label`
/// names it in the error (the manifest file name and where it came from).
pub fn check_signature(path: &Path, role: Role, label: &str) -> Result<()> {
    let model = match Model::load(path) {
        Ok(m) => m,
        Err(e) => bail!("{label} is not a loadable ONNX model ({e:#})"),
    };
    super::signature::check(&model, role, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_change_detection() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(FetchRecord::load(d.path()).unwrap(), FetchRecord::default());
        let path = record(d.path(), "g.onnx", entry("g", "aa", 3, "http://x/g.onnx")).unwrap();
        record(d.path(), "h.onnx", entry("h", "bb", 4, "found in place")).unwrap();
        assert_eq!(path, d.path().join(RECORD_FILE));
        let rec = FetchRecord::load(d.path()).unwrap();
        assert_eq!(rec.get("g.onnx").unwrap().size, 3);
        assert_eq!(rec.changed("g.onnx", "aa"), None);
        assert_eq!(rec.changed("x.onnx", "aa"), None);
        let why = rec.changed("h.onnx", "cc").unwrap();
        assert!(
            why.starts_with("changed since it was first fetched: sha256 cc, recorded bb from found in place"),
            "{why}"
        );
        let names: Vec<String> =
            fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, [RECORD_FILE], "no temporary or lock files left");
        fs::write(&path, "files = 3").unwrap();
        let e = format!("{:#}", FetchRecord::load(d.path()).unwrap_err());
        assert!(e.contains("not a record of fetched files; delete it"), "{e}");
    }
}
