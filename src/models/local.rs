//! Files in the local models folder: where the folder is, how a file compares with the manifest,
//! a per-file lock so concurrent fetches and imports never collide, and atomic placement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

use super::manifest::{Archive, Asset, ModelEntry};

/// The default models folder (see [`crate::util::paths::models_dir`]): `$FACEPERF_MODELS`, else
/// `models/` of the faceperf checkout around the current folder, else the per-user cache.
pub fn default_dir() -> PathBuf {
    crate::util::paths::models_dir()
}

/// What the manifest publishes about a file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Size in bytes, if published.
    pub size: Option<u64>,
    /// sha256, lowercase hex; empty when none is published.
    pub sha256: String,
}

impl Expected {
    /// The expectations of a model entry.
    pub fn of_model(m: &ModelEntry) -> Expected {
        Expected { size: m.size, sha256: m.sha256.clone() }
    }

    /// The expectations of an archive.
    pub fn of_archive(a: &Archive) -> Expected {
        Expected { size: a.size, sha256: a.sha256.clone() }
    }

    /// The expectations of a test asset.
    pub fn of_asset(a: &Asset) -> Expected {
        Expected { size: a.size, sha256: a.sha256.clone() }
    }
}

/// A present file compared with what the manifest publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// The sha256 matches the published one.
    Verified,
    /// No hash published; the size matches the published size.
    SizeMatches,
    /// Neither hash nor size published: nothing to check against.
    Unchecked,
    /// The size differs from the published size.
    SizeMismatch {
        /// Published size.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// The sha256 differs from the published one.
    HashMismatch {
        /// Published sha256.
        expected: String,
        /// sha256 on disk.
        actual: String,
    },
}

impl Verdict {
    /// True unless the file contradicts the manifest.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Verified | Verdict::SizeMatches | Verdict::Unchecked)
    }

    /// How the file was checked: `sha256`, `size` or `none` (for reports).
    pub fn method(&self) -> &'static str {
        match self {
            Verdict::Verified | Verdict::HashMismatch { .. } => "sha256",
            Verdict::SizeMatches | Verdict::SizeMismatch { .. } => "size",
            Verdict::Unchecked => "none",
        }
    }

    /// One-line explanation of a mismatch (empty when the file is fine).
    pub fn problem(&self) -> String {
        match self {
            Verdict::SizeMismatch { expected, actual } => {
                format!("size {actual} bytes, the manifest says {expected}")
            }
            Verdict::HashMismatch { expected, actual } => {
                format!("sha256 {actual} does not match the published {expected}")
            }
            _ => String::new(),
        }
    }
}

/// The result of checking one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    /// How it compares.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Size on disk.
    pub size: u64,
    /// sha256 on disk (not computed when the size already mismatches).
    pub sha256: Option<String>,
}

/// Compares `path` with `expect`; `Ok(None)` when the file does not exist. The size is checked
/// first, so a wrong-size file is rejected without hashing it.
pub fn check_file(path: &Path, expect: &Expected) -> Result<Option<FileCheck>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("{}: cannot read", path.display()))),
    };
    if !meta.is_file() {
        return Err(anyhow!("{} exists but is not a file", path.display()));
    }
    let size = meta.len();
    if let Some(want) = expect.size {
        if want != size {
            return Ok(Some(FileCheck {
                verdict: Verdict::SizeMismatch { expected: want, actual: size },
                size,
                sha256: None,
            }));
        }
    }
    let sha = crate::util::hash::sha256_file(path)?;
    let verdict = if !expect.sha256.is_empty() {
        if sha == expect.sha256 {
            Verdict::Verified
        } else {
            Verdict::HashMismatch { expected: expect.sha256.clone(), actual: sha.clone() }
        }
    } else if expect.size.is_some() {
        Verdict::SizeMatches
    } else {
        Verdict::Unchecked
    };
    Ok(Some(FileCheck { verdict, size, sha256: Some(sha) }))
}

/// An exclusive lock on one file name of a folder (`.<file>.lock` beside it), held until dropped.
/// Fetches and imports of the same file wait for each other; different files proceed in parallel.
///
/// The lock file is removed on release (on Unix), so no empty `.NAME.lock` files stay beside the
/// models. That is safe with waiters: the holder unlinks the file *before* unlocking it, and a
/// process that obtains the lock keeps it only if the path still names the very file it locked
/// (same device and inode); a waiter that locked an unlinked file starts over and creates a new
/// one. Elsewhere the file is left in place (an unlocked lock file is harmless).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock for `file` in `dir`, waiting (with a note on stderr unless `quiet`) while
    /// another process or thread holds it.
    pub fn acquire(dir: &Path, file: &str, quiet: bool) -> Result<FileLock> {
        let path = dir.join(format!(".{file}.lock"));
        let mut noted = quiet;
        loop {
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(e, &path, "cannot create the lock file"))?;
            match f.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    if !noted {
                        eprintln!("waiting for another faceperf working on {}", dir.join(file).display());
                        noted = true;
                    }
                    f.lock().with_context(|| format!("{}: cannot lock", path.display()))?;
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_error(e, &path, "cannot lock")),
            }
            if still_linked(&f, &path) {
                return Ok(FileLock { file: f, path });
            }
            // The previous holder removed the file we were waiting on: lock the current one.
        }
    }
}

/// Whether `path` still names the open file `f` (always true where this cannot be told).
fn still_linked(f: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (f.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (f, path);
        true
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock (see the type's docs), then unlock.
        #[cfg(unix)]
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Creates the models folder, with a clear error when that is impossible.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| io_error(e, dir, "cannot create the models folder"))
}

/// Turns an I/O error on `path` into a message that says what to do: disk full, no permission,
/// read-only file system, or the plain error.
pub fn io_error(e: io::Error, path: &Path, what: &str) -> anyhow::Error {
    let p = path.display();
    let hint = match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            format!("{p}: disk full ({what}): free some space and run the command again")
        }
        io::ErrorKind::PermissionDenied => {
            format!("{p}: permission denied ({what}): choose a writable folder with --dir")
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            format!("{p}: read-only file system ({what}): choose a writable folder with --dir")
        }
        _ => format!("{p}: {what}"),
    };
    anyhow::Error::new(e).context(hint)
}

/// Moves `tmp` to `dest` with one rename (same folder, so readers see the old file or the new one,
/// never a partial one) and syncs the folder so the rename survives a crash.
pub fn place(tmp: &Path, dest: &Path) -> Result<()> {
    fs::rename(tmp, dest).map_err(|e| io_error(e, dest, "cannot move the verified file into place"))?;
    if let Some(dir) = dest.parent() {
        if let Ok(d) = File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Copies `src` to `dst` (created, truncated) and syncs it; returns the bytes copied.
pub fn copy_synced(src: &mut impl Read, dst: &Path) -> Result<u64> {
    let mut f = File::create(dst).map_err(|e| io_error(e, dst, "cannot create"))?;
    let n = io::copy(src, &mut f).map_err(|e| io_error(e, dst, "cannot write"))?;
    f.sync_all().map_err(|e| io_error(e, dst, "cannot write"))?;
    Ok(n)
}
