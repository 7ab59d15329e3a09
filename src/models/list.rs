//! The local state of every manifest entry: what `faceperf models list` shows.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::fetched::FetchRecord;
use super::local::{check_file, Expected, FileCheck};
use super::manifest::{AssetKind, Manifest};
use super::{Role, Scale};

/// How a local file stands against the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocalStatus {
    /// Present, and its sha256 matches the published one.
    Verified,
    /// Present; no hash is published (the size matches where one is).
    PresentUnverified,
    /// Present, but its size or hash contradicts the manifest.
    Mismatched,
    /// Present, no hash published, and its sha256 differs from the one recorded when it was first
    /// fetched (`<dir>/.fetched.toml`).
    Changed,
    /// Not present.
    Missing,
}

impl LocalStatus {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            LocalStatus::Verified => "verified",
            LocalStatus::PresentUnverified => "present-unverified",
            LocalStatus::Mismatched => "mismatched",
            LocalStatus::Changed => "changed",
            LocalStatus::Missing => "missing",
        }
    }

    fn of(check: &Option<FileCheck>) -> LocalStatus {
        match check {
            None => LocalStatus::Missing,
            Some(c) if !c.verdict.is_ok() => LocalStatus::Mismatched,
            Some(c) if c.verdict.method() == "sha256" => LocalStatus::Verified,
            Some(_) => LocalStatus::PresentUnverified,
        }
    }
}

/// One model's local state.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    /// Manifest name.
    pub name: String,
    /// File name.
    pub file: String,
    /// Role.
    pub role: Role,
    /// Local status of the real file.
    pub status: LocalStatus,
    /// Path checked.
    pub path: String,
    /// Published size.
    pub size: Option<u64>,
    /// What is wrong (mismatched only).
    pub problem: Option<String>,
    /// Where `fetch` gets it: `url` or `archive:<name>`.
    pub source: String,
    /// Replica scales present in `<dir>/replica-<scale>` (empty when the model has no replica).
    pub replicas: Vec<Scale>,
}

/// An archive's local state.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveStatus {
    /// Manifest name.
    pub name: String,
    /// File name.
    pub file: String,
    /// Local status.
    pub status: LocalStatus,
    /// Path checked.
    pub path: String,
}

/// A test asset's state in the shared folder.
#[derive(Debug, Clone, Serialize)]
pub struct AssetStatus {
    /// Manifest name.
    pub name: String,
    /// Model or image.
    pub kind: AssetKind,
    /// Path relative to the shared folder.
    pub rel_path: String,
    /// Where it was found, if found.
    pub path: Option<String>,
    /// Status (`missing` when the shared folder or the file is absent).
    pub status: LocalStatus,
    /// Why it is missing or mismatched.
    pub problem: Option<String>,
}

/// Everything `models list` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The models folder.
    pub dir: String,
    /// Where the manifest came from.
    pub manifest: String,
    /// One per manifest model.
    pub models: Vec<ModelStatus>,
    /// One per manifest archive.
    pub archives: Vec<ArchiveStatus>,
    /// One per manifest asset.
    pub assets: Vec<AssetStatus>,
}

/// Checks every manifest entry against `dir` (models, archives, replicas) and the shared folder
/// (assets). Present files are hashed.
pub fn list(manifest: &Manifest, dir: &Path) -> Result<Listing> {
    let mut models = Vec::new();
    let record = FetchRecord::load(dir)?;
    for m in &manifest.models {
        let path = dir.join(&m.file);
        let check = check_file(&path, &Expected::of_model(m))?;
        let changed = check.as_ref().and_then(|c| record.changed(&m.file, c.sha256.as_deref()?));
        let replicas = if m.has_replica() {
            [Scale::Tiny, Scale::Full]
                .into_iter()
                .filter(|s| dir.join(format!("replica-{}", s.name())).join(m.role.default_file()).is_file())
                .collect()
        } else {
            vec![]
        };
        models.push(ModelStatus {
            name: m.name.clone(),
            file: m.file.clone(),
            role: m.role,
            status: if changed.is_some() { LocalStatus::Changed } else { LocalStatus::of(&check) },
            path: path.display().to_string(),
            size: m.size,
            problem: changed.or_else(|| check.as_ref().map(|c| c.verdict.problem()).filter(|p| !p.is_empty())),
            source: match &m.archive {
                Some(a) if m.urls.is_empty() => format!("archive:{a}"),
                _ => "url".into(),
            },
            replicas,
        });
    }
    let mut archives = Vec::new();
    for a in &manifest.archives {
        let path = dir.join(&a.file);
        let check = check_file(&path, &Expected::of_archive(a))?;
        archives.push(ArchiveStatus {
            name: a.name.clone(),
            file: a.file.clone(),
            status: LocalStatus::of(&check),
            path: path.display().to_string(),
        });
    }
    let mut assets = Vec::new();
    for a in &manifest.assets {
        if let Some(bytes) = a.builtin_bytes() {
            let ok = crate::util::hash::sha256_hex(bytes) == a.sha256;
            assets.push(AssetStatus {
                name: a.name.clone(),
                kind: a.kind,
                rel_path: a.path.clone(),
                path: Some(format!("built in (assets/{})", a.path)),
                status: if ok { LocalStatus::Verified } else { LocalStatus::Mismatched },
                problem: (!ok).then(|| "the built-in bytes do not match the manifest's sha256".to_string()),
            });
            continue;
        }
        let (path, status, problem) = match a.locate() {
            Err(e) => (None, LocalStatus::Missing, Some(format!("{e:#}"))),
            Ok(p) => {
                let check = check_file(&p, &Expected::of_asset(a))?;
                let problem = check.as_ref().map(|c| c.verdict.problem()).filter(|p| !p.is_empty());
                (Some(p.display().to_string()), LocalStatus::of(&check), problem)
            }
        };
        assets.push(AssetStatus {
            name: a.name.clone(),
            kind: a.kind,
            rel_path: a.path.clone(),
            path,
            status,
            problem,
        });
    }
    Ok(Listing { dir: dir.display().to_string(), manifest: manifest.origin.clone(), models, archives, assets })
}
