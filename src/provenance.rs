//! Provenance of a live result: what produced the figures (tool and build, machine incl. GPU name,
//! ONNX Runtime version and path, each role's execution providers and options, model files with
//! sha256, the command line), so a live JSON is as traceable as a bench result.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::bench::results::{OrtInfo, ToolInfo};
use crate::models::Role;
use crate::profile::Profile;
use crate::runtime::{Runtime, SessionConfig};
use crate::util::hash::sha256_file;
use crate::util::hw::Hardware;

/// One model file a run loaded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelFile {
    /// Role name (`detector`, `swapper`, …).
    pub role: String,
    /// The file loaded (the variant when the profile asks for one).
    pub path: PathBuf,
    /// sha256 of the file, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// True when the file is one of faceperf's replicas (random weights).
    pub replica: bool,
}

/// Execution providers, options and threads of one role's session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoleSession {
    pub role: String,
    pub session: SessionConfig,
    /// Whether the role runs through IOBinding with fixed buffers.
    pub io_binding: bool,
}

/// Everything that names where and with what a result was measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    pub tool: ToolInfo,
    pub hardware: Hardware,
    pub ort: OrtInfo,
    /// Profile name.
    pub profile: String,
    pub sessions: Vec<RoleSession>,
    pub models: Vec<ModelFile>,
    /// argv of the command (empty when run through the library).
    pub command_line: Vec<String>,
    /// When it was recorded (RFC 3339, UTC).
    pub recorded_utc: String,
}

impl Provenance {
    /// Provenance of a run of `roles` with `files` under `profile` on `rt`.
    /// `replica` tells whether a role's original is one of faceperf's replicas.
    pub fn collect(
        rt: &Runtime,
        profile: &Profile,
        files: &[(Role, &Path)],
        replica: impl Fn(Role) -> bool,
    ) -> Result<Provenance> {
        let mut models = Vec::with_capacity(files.len());
        for &(role, path) in files {
            models.push(ModelFile {
                role: role.name().to_string(),
                path: path.to_path_buf(),
                sha256: sha256_file(path)?,
                bytes: std::fs::metadata(path)?.len(),
                replica: replica(role),
            });
        }
        let sessions = files
            .iter()
            .map(|&(role, _)| RoleSession {
                role: role.name().to_string(),
                session: profile.session_config(role),
                io_binding: profile.roles.get(role).io_binding,
            })
            .collect();
        let checkout = crate::util::paths::checkout().unwrap_or_else(|| PathBuf::from("."));
        Ok(Provenance {
            tool: ToolInfo::current(&checkout),
            hardware: crate::util::hw::detect(),
            ort: OrtInfo::of(rt),
            profile: profile.name.clone(),
            sessions,
            models,
            command_line: Vec::new(),
            recorded_utc: crate::bench::results::utc_now().0,
        })
    }
}
