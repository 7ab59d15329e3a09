//! Where faceperf keeps its files when none are named: inside a faceperf checkout when the current
//! folder is in one, else a per-user cache folder. Never the folder the binary was built in: an
//! installed binary must not write into (or need) a source tree it happened to be built from.
//!
//! | what | default | override |
//! |---|---|---|
//! | models, replicas, variant caches | `<checkout>/models`, else `<user cache>/faceperf/models` | `FACEPERF_MODELS`, `--models` |
//! | bench results | `bench-results/` in the current folder | `--out` |
//! | reports | `reports/` in the current folder | `--out` |

use std::path::{Path, PathBuf};

/// The faceperf checkout that contains the current folder: the nearest ancestor with a `Cargo.toml`
/// naming the package `faceperf` and a `models/manifest.toml`.
pub fn checkout() -> Option<PathBuf> {
    checkout_above(&std::env::current_dir().ok()?)
}

/// [`checkout`] starting from `dir`.
pub fn checkout_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|a| is_checkout(a)).map(Path::to_path_buf)
}

fn is_checkout(dir: &Path) -> bool {
    dir.join("models/manifest.toml").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|t| t.lines().any(|l| l.trim().replace(' ', "") == "name=\"faceperf\""))
}

/// The per-user cache folder for faceperf: `$XDG_CACHE_HOME/faceperf` or `~/.cache/faceperf` on
/// Linux, `~/Library/Caches/faceperf` on macOS, `%LOCALAPPDATA%\faceperf` on Windows; `None` when
/// the platform's variables are unset.
pub fn user_cache() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library/Caches"))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("faceperf"))
}

/// The default models folder: `$FACEPERF_MODELS`, else `models/` of the checkout around the current
/// folder, else `models/` in the per-user cache, else `models/` in the current folder.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FACEPERF_MODELS").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(c) = checkout() {
        return c.join("models");
    }
    user_cache().map(|c| c.join("models")).unwrap_or_else(|| PathBuf::from("models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_checkout_only_by_its_manifest_and_package_name() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(checkout_above(&deep), None);
        std::fs::create_dir_all(t.path().join("a/models")).unwrap();
        std::fs::write(t.path().join("a/models/manifest.toml"), "").unwrap();
        std::fs::write(t.path().join("a/Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
        assert_eq!(checkout_above(&deep), None, "another crate is not a faceperf checkout");
        std::fs::write(t.path().join("a/Cargo.toml"), "[package]\nname = \"faceperf\"\n").unwrap();
        assert_eq!(checkout_above(&deep), Some(t.path().join("a")));
    }

    #[test]
    fn this_crate_is_a_checkout() {
        assert_eq!(
            checkout_above(Path::new(env!("CARGO_MANIFEST_DIR"))),
            Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        );
    }
}
