//! The model manifest (`models/manifest.toml`): where each model of the set comes from, how to
//! verify it, what its inputs and outputs mean, and its published and replica sizes.
//!
//! The manifest is embedded in the binary ([`Manifest::embedded`]); `--manifest FILE` loads another
//! ([`Manifest::load`]). Every load is validated, so the rest of the crate can rely on well-formed
//! hashes, URLs, shapes and references.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Role;

/// The manifest compiled into the binary.
pub const EMBEDDED: &str = include_str!("../../models/manifest.toml");

/// Schema version this code reads.
pub const VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version ([`VERSION`]).
    pub version: u32,
    /// Archives that models are published inside (e.g. insightface's `buffalo_l.zip`).
    #[serde(default)]
    pub archives: Vec<Archive>,
    /// The model files.
    #[serde(default)]
    pub models: Vec<ModelEntry>,
    /// Test assets in the shared folder.
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// Where this manifest was read from (`embedded` or a path), for messages.
    #[serde(skip)]
    pub origin: String,
}

/// A downloadable archive holding model files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// Short name, e.g. `buffalo_l`.
    pub name: String,
    /// File name in the models folder.
    pub file: String,
    /// Download URLs, tried in order.
    pub urls: Vec<String>,
    /// Published size in bytes, if any.
    #[serde(default)]
    pub size: Option<u64>,
    /// Published sha256 (lowercase hex); empty when none is published.
    #[serde(default)]
    pub sha256: String,
    /// Licence terms, as published.
    #[serde(default)]
    pub licence: String,
    /// Where it comes from.
    #[serde(default)]
    pub origin: String,
}

/// One model file of the set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Short name, e.g. `det_10g` (the file stem).
    pub name: String,
    /// File name in the models folder.
    pub file: String,
    /// What it does in the pipeline.
    pub role: Role,
    /// One line on what it is.
    #[serde(default)]
    pub description: String,
    /// Direct download URLs, tried in order (empty when only published inside an archive).
    #[serde(default)]
    pub urls: Vec<String>,
    /// Name of the [`Archive`] that holds this file, when it is published inside one.
    #[serde(default)]
    pub archive: Option<String>,
    /// Path of the file inside the archive (default: [`ModelEntry::file`]).
    #[serde(default)]
    pub member: Option<String>,
    /// Published size in bytes, if any.
    #[serde(default)]
    pub size: Option<u64>,
    /// Published sha256 (lowercase hex); empty when none is published.
    #[serde(default)]
    pub sha256: String,
    /// Licence terms, as published.
    #[serde(default)]
    pub licence: String,
    /// Where it comes from.
    #[serde(default)]
    pub origin: String,
    /// Fixed input shapes used to fold shape computations, by input name.
    #[serde(default)]
    pub fold_shapes: BTreeMap<String, Vec<i64>>,
    /// Published (or derived, see its note) size and compute.
    #[serde(default)]
    pub published: Option<Published>,
    /// Size and compute of the `full` replica; present when `models synth` makes one of this file.
    #[serde(default)]
    pub replica: Option<ReplicaCounts>,
    /// Graph inputs, in order.
    #[serde(default)]
    pub inputs: Vec<TensorSpec>,
    /// Graph outputs, in order.
    #[serde(default)]
    pub outputs: Vec<TensorSpec>,
}

/// How a published compute figure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlopUnit {
    /// 2 × multiply-accumulates (what `faceperf inspect` reports as FLOPs).
    #[default]
    Flops,
    /// Multiply-accumulates (many papers' "FLOPs", e.g. mmcv's and ptflops' counters).
    Macs,
}

/// Published parameter count and compute.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Number of parameters.
    #[serde(default)]
    pub params: Option<f64>,
    /// Compute per run in G (10⁹) of [`Published::unit`].
    #[serde(default)]
    pub gflops: Option<f64>,
    /// What [`Published::gflops`] counts.
    #[serde(default)]
    pub unit: FlopUnit,
    /// Input shapes the compute figure holds for (default: the model's `fold_shapes`).
    #[serde(default)]
    pub shapes: BTreeMap<String, Vec<i64>>,
    /// Source or derivation of the numbers.
    #[serde(default)]
    pub note: String,
}

impl Published {
    /// The published compute as multiply-accumulates, if published.
    pub fn macs(&self) -> Option<f64> {
        self.gflops.map(|g| match self.unit {
            FlopUnit::Flops => g * 1e9 / 2.0,
            FlopUnit::Macs => g * 1e9,
        })
    }
}

/// Parameter count and compute of the `full` replica, measured with [`crate::onnx::summary`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaCounts {
    /// Number of parameters.
    pub params: u64,
    /// 2 × MACs in G, at the published shapes (else the fold shapes).
    pub gflops: f64,
}

/// A declared dimension: a number, or a symbol of the original export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic (dynamic) size, by its name in the export (`?` when unnamed).
    Sym(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Sym(s) => write!(f, "{s}"),
        }
    }
}

/// Memory layout of an image tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Batch, channels, height, width.
    NCHW,
    /// Batch, height, width, channels.
    NHWC,
    /// Batch, features.
    NC,
}

/// Channel order of an image tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Colour {
    /// Red, green, blue.
    RGB,
    /// Blue, green, red (OpenCV's order).
    BGR,
}

/// A graph input or output and what its values mean.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Name in the graph; empty when not published (feed by position).
    pub name: String,
    /// Declared shape.
    pub shape: Vec<Dim>,
    /// Element type (`float32`, …); empty when unknown.
    #[serde(default)]
    pub dtype: String,
    /// Layout, for image and feature tensors.
    #[serde(default)]
    pub layout: Option<Layout>,
    /// Channel order, for images.
    #[serde(default)]
    pub colour: Option<Colour>,
    /// Per-channel mean in 0..255 pixel units (one value = all channels); empty when unknown.
    #[serde(default)]
    pub mean: Vec<f64>,
    /// Per-channel std in 0..255 pixel units; empty when unknown.
    #[serde(default)]
    pub std: Vec<f64>,
    /// Value range of an output, `[low, high]`.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// Anything else the caller must know.
    #[serde(default)]
    pub note: String,
}

/// What kind of file a test asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    /// An ONNX model.
    Model,
    /// A photo.
    Image,
}

/// A file of the shared test assets folder (see [`crate::util::assets`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Short name, e.g. `astronaut`.
    pub name: String,
    /// Path relative to the shared folder.
    pub path: String,
    /// Model or image.
    pub kind: AssetKind,
    /// Role, for model assets.
    #[serde(default)]
    pub role: Option<Role>,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// sha256 (lowercase hex); empty when not recorded.
    #[serde(default)]
    pub sha256: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Licence terms.
    #[serde(default)]
    pub licence: String,
    /// Where it comes from.
    #[serde(default)]
    pub origin: String,
    /// Built into the binary (`assets/<path>` in the repository) rather than read from `shared/`.
    #[serde(default)]
    pub builtin: bool,
}

impl Asset {
    /// The asset's path in the shared folder (errors when the folder or the file is missing).
    pub fn locate(&self) -> Result<PathBuf> {
        crate::util::assets::shared_file(&self.path)
    }

    /// The bytes of a built-in asset (`None` for test assets in `shared/`).
    pub fn builtin_bytes(&self) -> Option<&'static [u8]> {
        if !self.builtin {
            return None;
        }
        crate::util::assets::builtin(&self.path)
    }
}

impl ModelEntry {
    /// The file's path inside its archive.
    pub fn member(&self) -> &str {
        self.member.as_deref().unwrap_or(&self.file)
    }

    /// [`ModelEntry::fold_shapes`] as the map shape inference takes.
    pub fn fold_shape_map(&self) -> HashMap<String, Vec<i64>> {
        self.fold_shapes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Input shapes the published compute figure (and the replica's) refers to.
    pub fn counting_shapes(&self) -> HashMap<String, Vec<i64>> {
        match &self.published {
            Some(p) if !p.shapes.is_empty() => p.shapes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => self.fold_shape_map(),
        }
    }

    /// True when `models synth` generates a replica of this file.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }
}

impl Manifest {
    /// The embedded manifest (validated).
    pub fn embedded() -> Result<Manifest> {
        Manifest::parse(EMBEDDED, "embedded manifest")
    }

    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read manifest", path.display()))?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// `path` when given, else the embedded manifest.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<Manifest> {
        match path {
            Some(p) => Manifest::load(p),
            None => Manifest::embedded(),
        }
    }

    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let mut m: Manifest = toml::from_str(text).map_err(|e| anyhow!("{origin}: {}", e.to_string().trim_end()))?;
        m.origin = origin.to_string();
        m.validate().with_context(|| format!("{origin}: invalid manifest"))?;
        Ok(m)
    }

    /// Checks every rule the rest of the crate relies on; the error names the entry and field.
    pub fn validate(&self) -> Result<()> {
        if self.version != VERSION {
            bail!("version {} is not supported (this faceperf reads version {VERSION})", self.version);
        }
        let mut names = HashSet::new();
        let mut files = HashSet::new();
        for (kind, name, file) in self
            .archives
            .iter()
            .map(|a| ("archive", &a.name, &a.file))
            .chain(self.models.iter().map(|m| ("model", &m.name, &m.file)))
        {
            check_name(kind, name)?;
            check_file_name(&format!("{kind} `{name}`"), file)?;
            if !names.insert(name.as_str()) {
                bail!("{kind} `{name}`: the name is used twice");
            }
            if !files.insert(file.as_str()) {
                bail!("{kind} `{name}`: file `{file}` is used twice");
            }
        }
        for a in &self.archives {
            let what = format!("archive `{}`", a.name);
            check_sha(&what, &a.sha256)?;
            check_urls(&what, &a.urls)?;
            if a.urls.is_empty() {
                bail!("{what}: no urls");
            }
        }
        let mut replica_roles = HashSet::new();
        for m in &self.models {
            self.validate_model(m)?;
            if m.replica.is_some() && !replica_roles.insert(m.role) {
                bail!("model `{}`: a second model with a replica for role {}", m.name, m.role.name());
            }
        }
        let mut asset_names = HashSet::new();
        for a in &self.assets {
            check_name("asset", &a.name)?;
            if !asset_names.insert(a.name.as_str()) {
                bail!("asset `{}`: the name is used twice", a.name);
            }
            let what = format!("asset `{}`", a.name);
            check_sha(&what, &a.sha256)?;
            let p = Path::new(&a.path);
            if a.path.is_empty()
                || p.is_absolute()
                || p.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                bail!("{what}: path `{}` must be relative to the shared folder, without `..`", a.path);
            }
        }
        Ok(())
    }

    fn validate_model(&self, m: &ModelEntry) -> Result<()> {
        let what = format!("model `{}`", m.name);
        check_sha(&what, &m.sha256)?;
        check_urls(&what, &m.urls)?;
        match &m.archive {
            Some(a) if self.archive(a).is_none() => bail!("{what}: archive `{a}` is not in the manifest"),
            None if m.urls.is_empty() => bail!("{what}: no urls and no archive: nowhere to fetch it from"),
            None if m.member.is_some() => bail!("{what}: `member` without `archive`"),
            _ => {}
        }
        if m.replica.is_some() && m.file != m.role.default_file() {
            bail!(
                "{what}: has a replica, but `models synth` writes the {} replica as `{}`, not `{}`",
                m.role.name(),
                m.role.default_file(),
                m.file
            );
        }
        let mut seen = HashSet::new();
        for (list, specs) in [("input", &m.inputs), ("output", &m.outputs)] {
            for t in specs {
                let tw = format!("{what}: {list} `{}`", t.name);
                if !t.name.is_empty() && !seen.insert((list, t.name.as_str())) {
                    bail!("{tw}: the name is used twice");
                }
                for d in &t.shape {
                    match d {
                        Dim::Fixed(v) if *v <= 0 => bail!("{tw}: dimension {v} must be positive"),
                        Dim::Sym(s) if s.is_empty() => bail!("{tw}: empty symbolic dimension (use \"?\")"),
                        _ => {}
                    }
                }
                if t.mean.len() != t.std.len() {
                    bail!("{tw}: mean has {} values but std has {}", t.mean.len(), t.std.len());
                }
                if t.std.iter().any(|s| *s == 0.0 || !s.is_finite()) || t.mean.iter().any(|v| !v.is_finite()) {
                    bail!("{tw}: mean and std must be finite and std non-zero");
                }
                if let (Some(Dim::Fixed(c)), Some(Layout::NCHW), n) = (t.shape.get(1), t.layout, t.mean.len()) {
                    if n > 1 && n as i64 != *c {
                        bail!("{tw}: {n} mean/std values for {c} channels");
                    }
                }
                if let Some([lo, hi]) = t.range {
                    if lo >= hi {
                        bail!("{tw}: range [{lo}, {hi}] is empty");
                    }
                }
            }
        }
        let check_shapes = |field: &str, shapes: &BTreeMap<String, Vec<i64>>| -> Result<()> {
            for (name, dims) in shapes {
                let input = m
                    .inputs
                    .iter()
                    .find(|i| &i.name == name)
                    .ok_or_else(|| anyhow!("{what}: {field} names `{name}`, which is not a declared input"))?;
                if dims.len() != input.shape.len() || dims.iter().any(|d| *d <= 0) {
                    bail!("{what}: {field}.{name} = {dims:?} does not fit the declared rank {}", input.shape.len());
                }
                for (d, want) in dims.iter().zip(&input.shape) {
                    if let Dim::Fixed(w) = want {
                        if d != w {
                            bail!("{what}: {field}.{name} = {dims:?} contradicts the fixed dims of the input");
                        }
                    }
                }
            }
            Ok(())
        };
        check_shapes("fold_shapes", &m.fold_shapes)?;
        if let Some(p) = &m.published {
            check_shapes("published.shapes", &p.shapes)?;
            for v in [p.params, p.gflops].into_iter().flatten() {
                if !(v.is_finite() && v > 0.0) {
                    bail!("{what}: published counts must be positive");
                }
            }
        }
        if let Some(r) = &m.replica {
            if r.params == 0 || !(r.gflops.is_finite() && r.gflops >= 0.0) {
                bail!("{what}: replica counts must be positive");
            }
        }
        Ok(())
    }

    /// The model called `name` (its name or its file name).
    pub fn model(&self, name: &str) -> Result<&ModelEntry> {
        self.models.iter().find(|m| m.name == name || m.file == name).ok_or_else(|| {
            let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            anyhow!("no model `{name}` in the {}; known: {}", self.origin, known.join(", "))
        })
    }

    /// The archive called `name` (its name or its file name).
    pub fn archive(&self, name: &str) -> Option<&Archive> {
        self.archives.iter().find(|a| a.name == name || a.file == name)
    }

    /// The asset called `name`.
    pub fn asset(&self, name: &str) -> Result<&Asset> {
        self.assets.iter().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.assets.iter().map(|a| a.name.as_str()).collect();
            anyhow!("no asset `{name}` in the {}; known: {}", self.origin, known.join(", "))
        })
    }

    /// Every model of `role`, in manifest order.
    pub fn by_role(&self, role: Role) -> Vec<&ModelEntry> {
        self.models.iter().filter(|m| m.role == role).collect()
    }

    /// The model the pipeline uses for `role`: the one with a replica, else the first of the role.
    pub fn primary(&self, role: Role) -> Option<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.role == role && m.replica.is_some())
            .or_else(|| self.by_role(role).first().copied())
    }

    /// Models named in `names` (names, file names or role names); all models when empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&ModelEntry>> {
        if names.is_empty() {
            return Ok(self.models.iter().collect());
        }
        let mut out: Vec<&ModelEntry> = Vec::new();
        for n in names {
            let found: Vec<&ModelEntry> = match self.model(n) {
                Ok(m) => vec![m],
                Err(e) => {
                    let by_role: Vec<&ModelEntry> =
                        Role::ALL.iter().filter(|r| r.name() == n).filter_map(|r| self.primary(*r)).collect();
                    if by_role.is_empty() {
                        return Err(e);
                    }
                    by_role
                }
            };
            for m in found {
                if !out.iter().any(|o| o.name == m.name) {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }
}

fn check_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '/' || c == '\\') {
        bail!("{kind} name `{name}` must be non-empty, without spaces or slashes");
    }
    Ok(())
}

fn check_file_name(what: &str, file: &str) -> Result<()> {
    if file.is_empty() || file.contains(['/', '\\']) || file == "." || file == ".." || file.starts_with('.') {
        bail!("{what}: file `{file}` must be a plain file name (no folders, not hidden)");
    }
    Ok(())
}

fn check_sha(what: &str, sha: &str) -> Result<()> {
    if !sha.is_empty() && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))) {
        bail!("{what}: sha256 `{sha}` is not 64 lowercase hex digits (leave it empty when none is published)");
    }
    Ok(())
}

fn check_urls(what: &str, urls: &[String]) -> Result<()> {
    for u in urls {
        let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) || u.contains(char::is_whitespace) {
            bail!("{what}: url `{u}` is not an http(s) URL");
        }
    }
    Ok(())
}
