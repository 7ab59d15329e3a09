//! Importing models that are already on disk: a Deep-Live-Cam `models/` folder, insightface's
//! `~/.insightface/models/buffalo_l`, or any folder holding files of the manifest.
//!
//! Files are identified by name, checked against the published hash (or size), and placed into the
//! models folder by hard link (no extra disk space) or, across file systems, by copy — through a
//! temporary name and a rename, so a reader never sees a partial file. Files that contradict the
//! manifest are reported and left out.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::local::{self, check_file, io_error, Expected, FileLock, Verdict};
use super::manifest::Manifest;

/// What happened to one manifest model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportStatus {
    /// Found, checked, and placed into the models folder.
    Imported,
    /// Found, and the models folder already holds the same content (or is the same file).
    AlreadyPresent,
    /// Found, but it contradicts the manifest: not imported.
    Mismatched,
    /// Not found in the source folder.
    Missing,
}

/// One manifest model's import outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ImportEntry {
    /// Manifest name.
    pub name: String,
    /// File name.
    pub file: String,
    /// Outcome.
    pub status: ImportStatus,
    /// Where it was found.
    pub source: Option<String>,
    /// Where it is now (imported or already present).
    pub path: Option<String>,
    /// `hard-link` or `copy` (imported only).
    pub method: Option<String>,
    /// How it was checked: `sha256`, `size` or `none`.
    pub verified_by: Option<String>,
    /// What is wrong (mismatched only).
    pub problem: Option<String>,
}

/// The result of one import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The folder imported from.
    pub from: String,
    /// The folders searched (the source and its known subfolders that exist).
    pub searched: Vec<String>,
    /// The models folder imported into.
    pub dir: String,
    /// One entry per manifest model, in manifest order.
    pub models: Vec<ImportEntry>,
}

impl ImportReport {
    /// Number of entries with `status`.
    pub fn count(&self, status: ImportStatus) -> usize {
        self.models.iter().filter(|e| e.status == status).count()
    }
}

/// Folders that may hold model files under `src`: itself, a Deep-Live-Cam checkout's `models/`,
/// and insightface's `buffalo_l` pack below `~/.insightface` or `~/.insightface/models`.
pub fn search_dirs(src: &Path) -> Vec<PathBuf> {
    ["", "models", "buffalo_l", "models/buffalo_l"]
        .iter()
        .map(|s| if s.is_empty() { src.to_path_buf() } else { src.join(s) })
        .filter(|p| p.is_dir())
        .collect()
}

/// Imports every manifest model found under `src` into `dir`.
pub fn import(manifest: &Manifest, src: &Path, dir: &Path, quiet: bool) -> Result<ImportReport> {
    if !src.is_dir() {
        bail!(
            "{} is not a folder (expected a Deep-Live-Cam models/ folder or ~/.insightface/models/buffalo_l)",
            src.display()
        );
    }
    let searched = search_dirs(src);
    let mut models = Vec::new();
    let mut dir_ready = false;
    for m in &manifest.models {
        let mut entry = ImportEntry {
            name: m.name.clone(),
            file: m.file.clone(),
            status: ImportStatus::Missing,
            source: None,
            path: None,
            method: None,
            verified_by: None,
            problem: None,
        };
        let Some(found) = searched.iter().map(|d| d.join(&m.file)).find(|p| p.is_file()) else {
            models.push(entry);
            continue;
        };
        entry.source = Some(found.display().to_string());
        let expect = Expected::of_model(m);
        let check =
            check_file(&found, &expect)?.ok_or_else(|| anyhow!("{} vanished while importing", found.display()))?;
        entry.verified_by = Some(check.verdict.method().to_string());
        if !check.verdict.is_ok() {
            entry.status = ImportStatus::Mismatched;
            entry.problem = Some(check.verdict.problem());
            models.push(entry);
            continue;
        }
        if !dir_ready {
            local::ensure_dir(dir)?;
            dir_ready = true;
        }
        let dest = dir.join(&m.file);
        let _lock = FileLock::acquire(dir, &m.file, quiet)?;
        entry.path = Some(dest.display().to_string());
        if same_file(&found, &dest) {
            entry.status = ImportStatus::AlreadyPresent;
            models.push(entry);
            continue;
        }
        // What is already in the models folder: keep it when it has the same content.
        let have = Expected { size: Some(check.size), sha256: check.sha256.clone().unwrap_or_default() };
        if check_file(&dest, &have)?.is_some_and(|c| c.verdict == Verdict::Verified) {
            entry.status = ImportStatus::AlreadyPresent;
            models.push(entry);
            continue;
        }
        entry.method = Some(link_or_copy(&found, &dest)?.to_string());
        entry.status = ImportStatus::Imported;
        models.push(entry);
    }
    Ok(ImportReport {
        from: src.display().to_string(),
        searched: searched.iter().map(|p| p.display().to_string()).collect(),
        dir: dir.display().to_string(),
        models,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Places `src` at `dest` atomically: a hard link (or a copy, when linking fails, e.g. across file
/// systems) under a temporary name, then a rename. Returns the method used.
fn link_or_copy(src: &Path, dest: &Path) -> Result<&'static str> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.import-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let method = match fs::hard_link(src, &tmp) {
        Ok(()) => "hard-link",
        Err(_) => {
            let mut f = fs::File::open(src).map_err(|e| io_error(e, src, "cannot read"))?;
            if let Err(e) = local::copy_synced(&mut f, &tmp) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            "copy"
        }
    };
    if let Err(e) = local::place(&tmp, dest) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(method)
}
