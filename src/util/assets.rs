//! Locating the shared test assets (`shared/` beside the checkout: real small models and photos).
//!
//! CI clones the project to `X/` with `shared/` at `X/../shared`; developer worktrees may sit deeper.
//! `FACEPERF_SHARED` overrides the search.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

const MARKER: &str = "media/astronaut.png";

/// The shared assets folder: `$FACEPERF_SHARED`, else the first `shared/` beside an ancestor of the
/// crate root (or the current folder) that holds `media/astronaut.png`.
pub fn shared_dir() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("FACEPERF_SHARED") {
        let p = PathBuf::from(p);
        if p.join(MARKER).is_file() {
            return Ok(p);
        }
        bail!("FACEPERF_SHARED={} does not contain {MARKER}", p.display());
    }
    let mut starts = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    for s in &starts {
        for a in s.ancestors() {
            for candidate in [a.join("shared"), a.join("../shared")] {
                if candidate.join(MARKER).is_file() {
                    return Ok(candidate.canonicalize().unwrap_or(candidate));
                }
            }
        }
    }
    bail!(
        "shared assets not found: expected a shared/ folder with {MARKER} beside the checkout, or set FACEPERF_SHARED"
    )
}

/// A file inside the shared assets folder, e.g. `media/astronaut.png`.
pub fn shared_file(rel: impl AsRef<Path>) -> Result<PathBuf> {
    let p = shared_dir()?.join(rel.as_ref());
    if !p.exists() {
        bail!("shared asset {} is missing", p.display());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_real_detector() {
        let p = super::shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap();
        assert!(p.is_file());
    }
}
