//! Which shared libraries an execution provider needs, which of them this machine lacks, and what
//! provides each one.
//!
//! ONNX Runtime lists an execution provider (`CUDAExecutionProvider`, …) whenever it was built with
//! it; the provider's own library (`libonnxruntime_providers_cuda.so` beside ORT) is only loaded when a
//! session asks for it, and fails then if a library it links (cuBLAS, the CUDA runtime, …) is absent.
//! This module reads each provider library's dynamic dependencies (ELF `DT_NEEDED`, Mach-O
//! `LC_LOAD_DYLIB`, PE imports, through `goblin`), resolves them the way the loader would, and names
//! what provides each missing one from `data/provider-libs.toml` (built into the binary), so `doctor`
//! can say "libcublasLt.so.13 is missing: cuBLASLt of CUDA 13, pip nvidia-cublas==13.*" instead of
//! routing models to an EP that cannot load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The facts table, as committed.
pub const FACTS_TOML: &str = include_str!("../../data/provider-libs.toml");

/// A provider library's facts: the EP it implements and what it opens at run time.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderFact {
    /// ORT's provider name, e.g. `CUDAExecutionProvider`.
    pub name: String,
    /// File stem of its library without `lib` and extension, e.g. `onnxruntime_providers_cuda`.
    pub library: String,
    /// ORT release the facts are taken from.
    pub ort_release: String,
    /// CUDA major the release is built for, when it is a CUDA build.
    #[serde(default)]
    pub cuda_major: Option<u32>,
    /// Libraries the provider opens by name at run time (absent from its dynamic section).
    #[serde(default)]
    pub runtime_loaded: Vec<String>,
    /// How the facts were established.
    pub source: String,
}

/// What provides one library.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LibFact {
    /// Exact file name the loader looks for, e.g. `libcublasLt.so.13`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soname: Option<String>,
    /// Name prefix matched when no `soname` entry matches, e.g. `libcudnn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// What the library is, e.g. "cuBLASLt of CUDA 13".
    pub what: String,
    /// The pip package that ships it (empty: none does).
    pub pip: String,
    /// The system package or installer that ships it.
    pub system: String,
    /// ORT release the fact is taken from.
    pub ort_release: String,
    /// How the fact was established.
    pub source: String,
}

/// The whole table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub provider: Vec<ProviderFact>,
    pub lib: Vec<LibFact>,
}

impl Facts {
    /// The embedded table.
    pub fn builtin() -> &'static Facts {
        static F: OnceLock<Facts> = OnceLock::new();
        F.get_or_init(|| toml::from_str(FACTS_TOML).expect("data/provider-libs.toml is valid (tested)"))
    }

    /// What provides `name`: the exact entry, else the longest matching prefix.
    pub fn lib(&self, name: &str) -> Option<&LibFact> {
        self.lib.iter().find(|l| l.soname.as_deref() == Some(name)).or_else(|| {
            self.lib
                .iter()
                .filter(|l| l.prefix.as_deref().is_some_and(|p| name.starts_with(p)))
                .max_by_key(|l| l.prefix.as_ref().map(String::len))
        })
    }

    /// The provider a library file implements (`libonnxruntime_providers_cuda.so` → CUDA).
    pub fn provider_of_file(&self, file_name: &str) -> Option<&ProviderFact> {
        let stem = provider_stem(file_name)?;
        self.provider.iter().find(|p| p.library == stem)
    }

    /// The facts of provider `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderFact> {
        self.provider.iter().find(|p| p.name == name)
    }
}

/// `onnxruntime_providers_cuda` from `libonnxruntime_providers_cuda.so` / `.dylib` /
/// `onnxruntime_providers_cuda.dll`; `None` for other files and for `_shared` (ORT's own helper).
pub fn provider_stem(file_name: &str) -> Option<String> {
    let base = file_name.strip_prefix("lib").unwrap_or(file_name);
    let stem =
        base.strip_suffix(".so").or_else(|| base.strip_suffix(".dylib")).or_else(|| base.strip_suffix(".dll"))?;
    (stem.starts_with("onnxruntime_providers_") && stem != "onnxruntime_providers_shared").then(|| stem.to_string())
}

/// The dynamic-linking facts of one binary.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct BinaryDeps {
    /// `elf`, `mach-o` or `pe`.
    pub format: String,
    /// Libraries it links, in order (`DT_NEEDED`, `LC_LOAD_DYLIB`, PE imports).
    pub needed: Vec<String>,
    /// `DT_RUNPATH` / `LC_RPATH` entries, as written (`$ORIGIN`, `@loader_path` unexpanded).
    pub runpath: Vec<String>,
    /// `DT_RPATH` entries (searched before `LD_LIBRARY_PATH`, and only when there is no RUNPATH).
    pub rpath: Vec<String>,
}

/// Reads the dynamic dependencies of the binary at `path`.
pub fn read_deps(path: &Path) -> Result<BinaryDeps> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only map of a library file; nothing writes it while we parse.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    parse_deps(&map).with_context(|| format!("cannot read the dynamic section of {}", path.display()))
}

fn split_paths(v: &[&str]) -> Vec<String> {
    v.iter().flat_map(|s| s.split(':')).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Parses the dependencies out of a binary's bytes.
pub fn parse_deps(bytes: &[u8]) -> Result<BinaryDeps> {
    use goblin::Object;
    match Object::parse(bytes).map_err(|e| anyhow!("{e}"))? {
        Object::Elf(elf) => Ok(BinaryDeps {
            format: "elf".into(),
            needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
            runpath: split_paths(&elf.runpaths),
            rpath: split_paths(&elf.rpaths),
        }),
        Object::Mach(goblin::mach::Mach::Binary(m)) => Ok(macho_deps(&m)),
        Object::Mach(goblin::mach::Mach::Fat(fat)) => {
            let first = fat.into_iter().next().ok_or_else(|| anyhow!("empty universal binary"))?;
            match first.map_err(|e| anyhow!("{e}"))? {
                goblin::mach::SingleArch::MachO(m) => Ok(macho_deps(&m)),
                goblin::mach::SingleArch::Archive(_) => bail!("a static archive inside a universal binary"),
            }
        }
        Object::PE(pe) => Ok(BinaryDeps {
            format: "pe".into(),
            needed: pe.libraries.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        _ => bail!("not a shared library (ELF, Mach-O or PE)"),
    }
}

fn macho_deps(m: &goblin::mach::MachO<'_>) -> BinaryDeps {
    BinaryDeps {
        format: "mach-o".into(),
        // libs[0] is "self" in goblin's list.
        needed: m.libs.iter().filter(|l| **l != "self").map(|s| s.to_string()).collect(),
        runpath: m.rpaths.iter().map(|s| s.to_string()).collect(),
        rpath: vec![],
    }
}

/// Where the loader (and ORT's Python package) look for libraries on this machine.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SearchPaths {
    /// `LD_LIBRARY_PATH` (`DYLD_LIBRARY_PATH` on macOS, `PATH` on Windows).
    pub env: Vec<PathBuf>,
    /// The system's folders: the default ones and those listed in `/etc/ld.so.cache`.
    pub system: Vec<PathBuf>,
    /// The active Python's NVIDIA wheels (`site-packages/nvidia/*/lib`): onnxruntime's Python
    /// package preloads them, but a program loading ORT directly only finds them on `LD_LIBRARY_PATH`.
    pub python_wheels: Vec<PathBuf>,
}

impl SearchPaths {
    /// The paths of this process's environment.
    pub fn from_env() -> SearchPaths {
        let var = if cfg!(target_os = "macos") {
            "DYLD_LIBRARY_PATH"
        } else if cfg!(windows) {
            "PATH"
        } else {
            "LD_LIBRARY_PATH"
        };
        let env = std::env::var_os(var).map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
        SearchPaths { env, system: system_dirs(), python_wheels: python_nvidia_dirs() }
    }
}

/// The loader's default folders plus every folder named in `/etc/ld.so.cache`.
fn system_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = if cfg!(target_os = "macos") {
        ["/usr/lib", "/usr/local/lib"].iter().map(PathBuf::from).collect()
    } else if cfg!(windows) {
        ["C:\\Windows\\System32"].iter().map(PathBuf::from).collect()
    } else {
        ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]
            .iter()
            .map(PathBuf::from)
            .collect()
    };
    if let Ok(cache) = std::fs::read("/etc/ld.so.cache") {
        for d in ld_cache_dirs(&cache) {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// The folders of the absolute paths in an `ld.so.cache` (its string table holds each cached
/// library's full path).
pub fn ld_cache_dirs(cache: &[u8]) -> Vec<PathBuf> {
    let mut out: BTreeSet<PathBuf> = BTreeSet::new();
    for s in cache.split(|&b| b == 0) {
        if s.first() == Some(&b'/') && s.iter().all(|b| b.is_ascii_graphic()) {
            if let Some(dir) = Path::new(std::str::from_utf8(s).unwrap_or("")).parent() {
                out.insert(dir.to_path_buf());
            }
        }
    }
    out.into_iter().collect()
}

/// `site-packages/nvidia/*/lib` of the active Python.
fn python_nvidia_dirs() -> Vec<PathBuf> {
    let script = "import site, sys\nfor p in site.getsitepackages() + [site.getusersitepackages()]: print(p)";
    let mut pythons: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("FACEPERF_PYTHON") {
        pythons.push(p);
    }
    if let Ok(v) = std::env::var("VIRTUAL_ENV") {
        pythons.push(Path::new(&v).join("bin/python").display().to_string());
    }
    pythons.push("python3".into());
    let Some(out) = pythons.iter().find_map(|py| {
        std::process::Command::new(py).args(["-c", script]).output().ok().filter(|o| o.status.success())
    }) else {
        return vec![];
    };
    let mut dirs = Vec::new();
    for site in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(entries) = std::fs::read_dir(Path::new(site).join("nvidia")) else { continue };
        let mut found: Vec<PathBuf> =
            entries.filter_map(|e| e.ok()).map(|e| e.path().join("lib")).filter(|p| p.is_dir()).collect();
        found.sort();
        dirs.extend(found);
    }
    dirs
}

/// How one dependency resolved.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Resolution {
    /// The loader finds it here (`via`: `runpath`, `rpath`, `LD_LIBRARY_PATH`, `system`, `path`).
    Found { path: PathBuf, via: String },
    /// Only in the Python NVIDIA wheels: a program that loads ORT directly does not see it until
    /// the folder is on `LD_LIBRARY_PATH`.
    OffPath { path: PathBuf },
    /// Nowhere.
    Missing,
}

fn expand_origin(entry: &str, origin: &Path) -> PathBuf {
    let o = origin.display().to_string();
    PathBuf::from(
        entry.replace("$ORIGIN", &o).replace("${ORIGIN}", &o).replace("@loader_path", &o).replace("@rpath/", ""),
    )
}

/// Resolves `name`, needed by the library at `from` (with its `deps`), as the loader would: a name
/// with a slash as is; else RPATH (only without RUNPATH), the environment's path, RUNPATH, the
/// system folders; then the Python wheels, which the loader does not search.
pub fn resolve(name: &str, from: &Path, deps: &BinaryDeps, paths: &SearchPaths) -> Resolution {
    let origin = from.parent().unwrap_or(Path::new("."));
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if name.contains('/') && !name.starts_with('@') {
        let p = PathBuf::from(name);
        return if p.exists() { Resolution::Found { path: p, via: "path".into() } } else { Resolution::Missing };
    }
    let mut order: Vec<(PathBuf, &str)> = Vec::new();
    if deps.runpath.is_empty() {
        order.extend(deps.rpath.iter().map(|r| (expand_origin(r, origin), "rpath")));
    }
    order.extend(paths.env.iter().map(|d| (d.clone(), "LD_LIBRARY_PATH")));
    order.extend(deps.runpath.iter().map(|r| (expand_origin(r, origin), "runpath")));
    if deps.format != "elf" {
        // Mach-O @loader_path names and PE's own-folder rule both look beside the library.
        order.push((origin.to_path_buf(), "beside the library"));
    }
    order.extend(paths.system.iter().map(|d| (d.clone(), "system")));
    for (dir, via) in order {
        let p = dir.join(file);
        if p.exists() {
            return Resolution::Found { path: p, via: via.into() };
        }
    }
    match paths.python_wheels.iter().map(|d| d.join(file)).find(|p| p.exists()) {
        Some(path) => Resolution::OffPath { path },
        None => Resolution::Missing,
    }
}

/// A library an execution provider needs that the loader will not find.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissingLib {
    /// The file name looked for, e.g. `libcublasLt.so.13`.
    pub name: String,
    /// The library that needs it (file name).
    pub needed_by: String,
    /// True when the provider opens it at run time (from the facts table, not its dynamic section):
    /// the provider loads, and fails at the first kernel that needs it.
    pub runtime_loaded: bool,
    /// Where it is in the Python NVIDIA wheels, when only there (add that folder to LD_LIBRARY_PATH).
    pub off_path: Option<PathBuf>,
    /// What provides it, from the facts table.
    pub provides: Option<LibFact>,
}

impl MissingLib {
    /// `libcublasLt.so.13 (cuBLASLt of CUDA 13; pip nvidia-cublas==13.*; system libcublas-13-0)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.off_path {
            parts.push(format!("only in {}: add that folder to LD_LIBRARY_PATH", p.parent().unwrap_or(p).display()));
        }
        if let Some(f) = &self.provides {
            parts.push(f.what.clone());
            if !f.pip.is_empty() {
                parts.push(format!("pip {}", f.pip));
            }
            parts.push(format!("system {}", f.system));
        }
        if self.runtime_loaded {
            parts.push("opened at run time".into());
        }
        format!("{} ({})", self.name, parts.join("; "))
    }
}

/// One provider library beside ORT, or one provider ORT lists: can it load?
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProviderCheck {
    /// ORT's provider name, when the facts table knows the library.
    pub provider: Option<String>,
    /// The provider library (or where it was expected).
    pub library: PathBuf,
    /// True when ORT lists the provider as available.
    pub listed: bool,
    /// Binary format of the library.
    pub format: String,
    /// Its direct dependencies and how each resolved.
    pub needed: Vec<(String, Resolution)>,
    /// Everything missing, direct or through a found dependency, plus run-time-loaded libraries.
    pub missing: Vec<MissingLib>,
    /// Why the library itself could not be checked (absent, unreadable).
    pub error: Option<String>,
    /// The facts the names come from.
    pub facts: Option<ProviderFact>,
}

impl ProviderCheck {
    /// True when nothing is missing.
    pub fn usable(&self) -> bool {
        self.error.is_none() && self.missing.is_empty()
    }

    /// One short line naming the first missing library once, or `None` when usable.
    pub fn problem(&self) -> Option<String> {
        let who = self.provider.clone().unwrap_or_else(|| file_name(&self.library));
        if let Some(e) = &self.error {
            return Some(format!("{who} cannot load: {e}; run `faceperf doctor` for details"));
        }
        let first = self.missing.first()?;
        let more = match self.missing.len() - 1 {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let what = first.provides.as_ref().map(|f| format!(", {}", f.what)).unwrap_or_default();
        let verb = if first.off_path.is_some() { "is not on the library path" } else { "is missing" };
        Some(format!(
            "{who} cannot load: {} {verb} (needed by {}{what}){more}; run `faceperf doctor` for the list and what provides each",
            first.name, first.needed_by
        ))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// True for a library in one of the system folders (its own dependencies are the system's business).
fn in_system(p: &Path, paths: &SearchPaths) -> bool {
    paths.system.iter().any(|d| p.starts_with(d))
}

/// Checks one provider library: direct dependencies, then (one level down) those of each found
/// non-system dependency, then the run-time-loaded libraries of its facts.
pub fn check_library(library: &Path, listed: bool, paths: &SearchPaths, facts: &Facts) -> ProviderCheck {
    let fact = facts.provider_of_file(&file_name(library)).cloned();
    let mut check = ProviderCheck {
        provider: fact.as_ref().map(|f| f.name.clone()),
        library: library.to_path_buf(),
        listed,
        format: String::new(),
        needed: vec![],
        missing: vec![],
        error: None,
        facts: fact.clone(),
    };
    let deps = match read_deps(library) {
        Ok(d) => d,
        Err(e) => {
            check.error = Some(format!("{e:#}"));
            return check;
        }
    };
    check.format = deps.format.clone();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for name in &deps.needed {
        let r = resolve(name, library, &deps, paths);
        check.needed.push((name.clone(), r.clone()));
        match r {
            Resolution::Found { path, .. } if !in_system(&path, paths) => {
                missing_below(&path, paths, facts, &mut seen, &mut check.missing);
            }
            Resolution::Found { .. } => {}
            Resolution::OffPath { path } => {
                push_missing(&mut check.missing, &mut seen, name, library, Some(path), false, facts)
            }
            Resolution::Missing => push_missing(&mut check.missing, &mut seen, name, library, None, false, facts),
        }
    }
    for name in fact.iter().flat_map(|f| f.runtime_loaded.iter()) {
        match resolve(name, library, &deps, paths) {
            Resolution::Found { .. } => {}
            Resolution::OffPath { path } => {
                push_missing(&mut check.missing, &mut seen, name, library, Some(path), true, facts)
            }
            Resolution::Missing => push_missing(&mut check.missing, &mut seen, name, library, None, true, facts),
        }
    }
    check
}

/// Adds the missing direct dependencies of `lib` (a found dependency) to `out`.
fn missing_below(
    lib: &Path,
    paths: &SearchPaths,
    facts: &Facts,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<MissingLib>,
) {
    let Ok(deps) = read_deps(lib) else { return };
    for name in &deps.needed {
        match resolve(name, lib, &deps, paths) {
            Resolution::Found { .. } => {}
            Resolution::OffPath { path } => push_missing(out, seen, name, lib, Some(path), false, facts),
            Resolution::Missing => push_missing(out, seen, name, lib, None, false, facts),
        }
    }
}

fn push_missing(
    out: &mut Vec<MissingLib>,
    seen: &mut BTreeSet<String>,
    name: &str,
    by: &Path,
    off_path: Option<PathBuf>,
    runtime_loaded: bool,
    facts: &Facts,
) {
    if seen.insert(name.to_string()) {
        out.push(MissingLib {
            name: name.to_string(),
            needed_by: file_name(by),
            runtime_loaded,
            off_path,
            provides: facts.lib(name).cloned(),
        });
    }
}

/// Checks every provider library in the folder of `ort_library`, and every provider in `listed`
/// (ORT's available providers) whose library the facts table names but the folder lacks.
pub fn check_ort_folder(
    ort_library: &Path,
    listed: &[String],
    paths: &SearchPaths,
    facts: &Facts,
) -> Vec<ProviderCheck> {
    let dir = ort_library.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p| provider_stem(&file_name(p)).is_some());
    files.sort();
    let mut checks: Vec<ProviderCheck> = files
        .iter()
        .map(|f| {
            let listed_here = facts.provider_of_file(&file_name(f)).is_some_and(|p| listed.contains(&p.name));
            check_library(f, listed_here, paths, facts)
        })
        .collect();
    for name in listed {
        let Some(fact) = facts.provider(name) else { continue };
        if checks.iter().any(|c| c.provider.as_deref() == Some(name.as_str())) {
            continue;
        }
        let expected = dir.join(format!("lib{}.so", fact.library));
        checks.push(ProviderCheck {
            provider: Some(name.clone()),
            library: expected.clone(),
            listed: true,
            format: String::new(),
            needed: vec![],
            missing: vec![],
            error: Some(format!("its library {} is not beside ONNX Runtime", file_name(&expected))),
            facts: Some(fact.clone()),
        });
    }
    checks
}

/// The checks for the loaded runtime, made once per process.
pub fn checks_for(rt: &super::Runtime) -> &'static [ProviderCheck] {
    static CHECKS: OnceLock<Vec<ProviderCheck>> = OnceLock::new();
    CHECKS.get_or_init(|| check_ort_folder(&rt.library, &rt.providers, &SearchPaths::from_env(), Facts::builtin()))
}

/// Providers ORT lists that cannot load here, each with its one-line problem.
pub fn unusable_providers(checks: &[ProviderCheck]) -> Vec<(String, String)> {
    checks
        .iter()
        .filter(|c| c.listed && !c.usable())
        .filter_map(|c| Some((c.provider.clone()?, c.problem()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_table_parses_and_names_each_provider_release() {
        let f: Facts = toml::from_str(FACTS_TOML).unwrap();
        assert!(f.provider.iter().all(|p| !p.ort_release.is_empty() && !p.source.is_empty()));
        assert!(f.lib.iter().all(|l| l.soname.is_some() != l.prefix.is_some()), "each entry is exact or a prefix");
        assert_eq!(f.lib("libcublasLt.so.13").unwrap().what, "cuBLASLt of CUDA 13");
        // A major the table does not list falls back to the longest prefix.
        assert!(f.lib("libcudnn_graph.so.8").unwrap().what.starts_with("cuDNN"));
        assert_eq!(f.provider_of_file("libonnxruntime_providers_cuda.so").unwrap().name, "CUDAExecutionProvider");
        assert!(f.provider_of_file("libonnxruntime_providers_shared.so").is_none());
        assert!(f.lib("libc.so.6").is_none());
    }

    #[test]
    fn ld_cache_strings_give_folders() {
        let cache = b"glibc-ld.so.cache1.1\0\0\0libz.so.1\0/usr/lib/x86_64-linux-gnu/libz.so.1\0libfoo.so\0/opt/foo/lib/libfoo.so\0";
        let dirs = ld_cache_dirs(cache);
        assert_eq!(dirs, vec![PathBuf::from("/opt/foo/lib"), PathBuf::from("/usr/lib/x86_64-linux-gnu")]);
    }

    #[test]
    fn resolution_follows_the_loader_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (lib_dir, env_dir, wheel) = (tmp.path().join("ort"), tmp.path().join("env"), tmp.path().join("wheel"));
        for d in [&lib_dir, &env_dir, &wheel] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lib_dir.join("libbeside.so.1"), b"").unwrap();
        std::fs::write(env_dir.join("libenv.so.2"), b"").unwrap();
        std::fs::write(wheel.join("libwheel.so.3"), b"").unwrap();
        let from = lib_dir.join("libonnxruntime_providers_x.so");
        let deps = BinaryDeps { format: "elf".into(), runpath: vec!["$ORIGIN".into()], ..Default::default() };
        let paths = SearchPaths { env: vec![env_dir.clone()], system: vec![], python_wheels: vec![wheel.clone()] };
        let via = |n: &str| match resolve(n, &from, &deps, &paths) {
            Resolution::Found { via, .. } => via,
            Resolution::OffPath { .. } => "off-path".into(),
            Resolution::Missing => "missing".into(),
        };
        assert_eq!(via("libbeside.so.1"), "runpath");
        assert_eq!(via("libenv.so.2"), "LD_LIBRARY_PATH");
        assert_eq!(via("libwheel.so.3"), "off-path");
        assert_eq!(via("libnowhere.so.4"), "missing");
        // Without RUNPATH, the library's folder is not searched for ELF.
        let bare = BinaryDeps { format: "elf".into(), ..Default::default() };
        assert_eq!(resolve("libbeside.so.1", &from, &bare, &paths), Resolution::Missing);
    }
}
