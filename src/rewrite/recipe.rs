//! Recipes: which passes make a model variant for a target (`coreml`, `fp16`, `cuda`, …), with
//! what options, when each pass is needed, and per model role the fixed input shapes and the
//! tolerance the variant must meet.
//!
//! Recipes are TOML files (`rewrites/*.toml`, built into the binary, or any file given by the
//! user). A recipe's [hash](Recipe::hash) is the sha256 of its canonical content (comments,
//! whitespace and key order do not count), so the variant cache invalidates exactly when the
//! recipe's meaning changes. Errors name the file and the line.
//!
//! ```toml
//! target = "coreml"
//! description = "…"
//! suffix = "_coreml"
//!
//! [[pass]]
//! name = "reflect-pad"
//! why = "CoreML EP has no reflect Pad before ORT 1.26"
//! ort_below = "1.26"          # needed with ORT older than this
//!
//! [models.swapper]
//! input_shapes = { target = [1, 3, 128, 128], source = [1, 512] }
//! tolerance = "exact"         # or { psnr_db = 40.0 } | { cosine = 0.999 } | { box_px = 1.0 } | { max_abs = 1e-3 }
//! outputs = { output = { psnr_db = 40.0 } }   # per-output overrides
//! [models.swapper.options.fuse-io]             # options merged over the pass's own, for this role
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{pass_by_name, Pass, PassContext};
use crate::models::Role;
use crate::util::hash::sha256_hex;

/// The recipes shipped with faceperf (`rewrites/<target>.toml`), by target name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("coreml", include_str!("../../rewrites/coreml.toml")),
    ("fp16", include_str!("../../rewrites/fp16.toml")),
    ("cuda", include_str!("../../rewrites/cuda.toml")),
    ("int8", include_str!("../../rewrites/int8.toml")),
];

/// How close a variant's output must be to the original's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Tolerance {
    /// Bit-identical, or max abs ≤ [`EXACT_MAX_ABS`] × max(1, largest |reference value|) (explained as
    /// ORT kernel rounding differences).
    Exact,
    /// Images: PSNR (dB) at least this, peak = the reference's value range (255 for 8-bit images).
    PsnrDb(f64),
    /// Embeddings: cosine similarity at least this.
    Cosine(f64),
    /// Detectors: boxes and keypoints after SCRFD decoding within this many pixels.
    BoxPx(f64),
    /// Any output: max absolute difference at most this.
    MaxAbs(f64),
}

/// The largest difference an exact rewrite may show (ORT kernels for different but equivalent
/// graphs may round differently, e.g. a fused vs an unfused activation).
pub const EXACT_MAX_ABS: f64 = 1e-6;

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Exact => write!(f, "exact (bit-identical or max abs ≤ {EXACT_MAX_ABS:e} × max(1, |output|))"),
            Tolerance::PsnrDb(v) => write!(f, "PSNR ≥ {v} dB"),
            Tolerance::Cosine(v) => write!(f, "cosine ≥ {v}"),
            Tolerance::BoxPx(v) => write!(f, "boxes within {v} px"),
            Tolerance::MaxAbs(v) => write!(f, "max abs ≤ {v:e}"),
        }
    }
}

impl Tolerance {
    /// The default for an approximate (non-exact) rewrite of `role`'s model: PSNR ≥ 40 dB on
    /// images, cosine ≥ 0.999 on embeddings, detector boxes within 1 px, landmarks within 0.01
    /// (≈ 1 px on the 192 px crop). Without a role: PSNR for 4-D outputs, cosine otherwise.
    pub fn default_for(role: Option<Role>, output_rank: usize) -> Tolerance {
        match role {
            Some(Role::Detector) => Tolerance::BoxPx(1.0),
            Some(Role::Landmarks) => Tolerance::MaxAbs(0.01),
            Some(Role::Recognizer) => Tolerance::Cosine(0.999),
            _ if output_rank == 4 => Tolerance::PsnrDb(40.0),
            _ => Tolerance::Cosine(0.999),
        }
    }

    fn check(&self) -> Result<()> {
        let ok = match *self {
            Tolerance::Exact => true,
            Tolerance::PsnrDb(v) => v > 0.0 && v.is_finite(),
            Tolerance::Cosine(v) => v > 0.0 && v <= 1.0,
            Tolerance::BoxPx(v) | Tolerance::MaxAbs(v) => v >= 0.0 && v.is_finite(),
        };
        if !ok {
            bail!("tolerance {self} is out of range");
        }
        Ok(())
    }
}

/// One pass of a recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassSpec {
    /// Registry name (see [`super::PASS_NAMES`]).
    pub name: Spanned<String>,
    /// Why the target needs it (documentation, shown in reports).
    #[serde(default)]
    pub why: String,
    /// The pass is needed only with ONNX Runtime older than this version (e.g. `"1.26"`: the
    /// CoreML EP runs reflect Pad natively from 1.26). `None`: needed with every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_below: Option<Spanned<String>>,
    /// The pass changes anything only when some model input has symbolic dims (shape folding).
    #[serde(default)]
    pub only_symbolic_dims: bool,
    /// Options handed to the pass ([`PassContext::options`]); a model's own options for this pass
    /// are merged over them.
    #[serde(default)]
    pub options: toml::Table,
}

impl PassSpec {
    /// True when this pass matters with ORT `ort_version` (e.g. `1.25.1`) and a model whose inputs
    /// are (`symbolic`) or are not fully fixed.
    pub fn needed(&self, ort_version: &str, symbolic: bool) -> bool {
        if self.only_symbolic_dims && !symbolic {
            return false;
        }
        match (&self.ort_below, parse_version(ort_version)) {
            (Some(below), Some(have)) => parse_version(below.get_ref()).is_none_or(|b| have < b),
            _ => true,
        }
    }
}

/// What a recipe says about one model role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Graph input name → fixed dims used for shape folding and for the equivalence inputs.
    #[serde(default)]
    pub input_shapes: BTreeMap<String, Vec<i64>>,
    /// Tolerance of every output (default: exact for exact recipes, else [`Tolerance::default_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// Per-output tolerance overrides.
    #[serde(default)]
    pub outputs: BTreeMap<String, Tolerance>,
    /// Pass name → options merged over the pass's recipe options for this role.
    #[serde(default)]
    pub options: BTreeMap<String, toml::Table>,
    /// The recipe does not apply to this role; the reason (measured) says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// Passes not run for this role (the rest of the recipe still applies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_passes: Vec<String>,
}

/// The parsed content of a recipe file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeSpec {
    /// Target name, e.g. `coreml`.
    pub target: String,
    /// One line on what the variant is for.
    #[serde(default)]
    pub description: String,
    /// File-name suffix of the variant, e.g. `_coreml` → `inswapper_128_coreml.onnx`.
    pub suffix: String,
    /// Passes, applied in order.
    #[serde(rename = "pass")]
    pub passes: Vec<PassSpec>,
    /// Per-role shapes, tolerances and options.
    #[serde(default)]
    pub models: BTreeMap<Role, Spanned<ModelSpec>>,
}

/// A loaded recipe: its content, where it came from, and its hash.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub spec: RecipeSpec,
    /// File path, or `built-in rewrites/<target>.toml`.
    pub source: String,
    text: String,
    hash: String,
}

/// `1.26` or `1.26.1` → (1, 26, 1).
fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split(['.', '-', '+']).map(|p| p.parse::<u32>());
    let major = it.next()?.ok()?;
    let minor = it.next().unwrap_or(Ok(0)).ok()?;
    let patch = it.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, patch))
}

/// 1-based (line, column) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// Serialises a JSON value with object keys sorted, so equal content gives equal bytes whatever
/// the maps' iteration order.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                canonical_json(&m[*k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A recipe error at byte range `span` of `text`, as `source:line:col: message`.
fn at(source: &str, text: &str, span: Option<Range<usize>>, msg: impl fmt::Display) -> anyhow::Error {
    match span {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            anyhow!("{source}:{l}:{c}: {msg}")
        }
        None => anyhow!("{source}: {msg}"),
    }
}

impl Recipe {
    /// Parses recipe `text`; `source` names it in errors (a path or `built-in …`).
    pub fn parse(text: &str, source: &str) -> Result<Recipe> {
        let spec: RecipeSpec = toml::from_str(text).map_err(|e| at(source, text, e.span(), e.message().trim_end()))?;
        let err = |span: Option<Range<usize>>, msg: String| at(source, text, span, msg);
        let top = || Some(0..0);
        if spec.target.trim().is_empty() {
            return Err(err(top(), "`target` is empty".into()));
        }
        let suffix_ok = spec.suffix.starts_with('_')
            && spec.suffix.len() > 1
            && spec.suffix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !suffix_ok {
            return Err(err(
                top(),
                format!("`suffix` '{}' must start with '_' and use only letters, digits, '_' or '-'", spec.suffix),
            ));
        }
        if spec.passes.is_empty() {
            return Err(err(top(), "the recipe lists no [[pass]]".into()));
        }
        for p in &spec.passes {
            if let Some(v) = &p.ort_below {
                if parse_version(v.get_ref()).is_none() {
                    return Err(err(
                        Some(v.span()),
                        format!("`ort_below` '{}' is not a version like \"1.26\"", v.get_ref()),
                    ));
                }
            }
        }
        for (role, m) in &spec.models {
            let span = Some(m.span());
            for (name, dims) in &m.get_ref().input_shapes {
                if dims.is_empty() || dims.iter().any(|&d| d <= 0) {
                    return Err(err(
                        span.clone(),
                        format!("models.{}: input shape of '{name}' {dims:?} must be positive dims", role.name()),
                    ));
                }
            }
            let m = m.get_ref();
            for t in m.tolerance.iter().chain(m.outputs.values()) {
                t.check().map_err(|e| err(span.clone(), format!("models.{}: {e}", role.name())))?;
            }
            for pass in m.skip_passes.iter() {
                if !spec.passes.iter().any(|p| p.name.get_ref() == pass) {
                    return Err(err(
                        span.clone(),
                        format!("models.{}.skip_passes names `{pass}`, which the recipe does not run", role.name()),
                    ));
                }
            }
            for pass in m.options.keys() {
                if !spec.passes.iter().any(|p| p.name.get_ref() == pass) {
                    return Err(err(
                        span.clone(),
                        format!("models.{}.options names pass `{pass}`, which the recipe does not run", role.name()),
                    ));
                }
            }
        }
        let mut canon = String::new();
        canonical_json(&serde_json::to_value(&spec).context("recipe to JSON")?, &mut canon);
        Ok(Recipe { hash: sha256_hex(canon.as_bytes()), spec, source: source.to_string(), text: text.to_string() })
    }

    /// Reads and parses a recipe file.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read recipe", path.display()))?;
        Recipe::parse(&text, &path.display().to_string())
    }

    /// The built-in recipe for `target` (`coreml`, `fp16`, `cuda`).
    pub fn builtin(target: &str) -> Result<Recipe> {
        let (name, text) = BUILTIN.iter().find(|(n, _)| *n == target).ok_or_else(|| {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            anyhow!("no built-in recipe for target `{target}` (built in: {})", names.join(", "))
        })?;
        Recipe::parse(text, &format!("built-in rewrites/{name}.toml"))
    }

    /// Every built-in recipe.
    pub fn builtins() -> Result<Vec<Recipe>> {
        BUILTIN.iter().map(|(n, _)| Recipe::builtin(n)).collect()
    }

    /// sha256 (hex) of the canonical content.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The variant suffix, e.g. `_coreml`.
    pub fn suffix(&self) -> &str {
        &self.spec.suffix
    }

    /// Target name.
    pub fn target(&self) -> &str {
        &self.spec.target
    }

    /// What the recipe says about `role` (empty when the role is unknown or not listed).
    pub fn model(&self, role: Option<Role>) -> ModelSpec {
        role.and_then(|r| self.spec.models.get(&r)).map(|m| m.get_ref().clone()).unwrap_or_default()
    }

    /// The options `pass` (by position) runs with for `role`: the pass's options, with the role's
    /// options for that pass merged over them (top-level keys replaced).
    pub fn options_for(&self, pass: usize, role: Option<Role>) -> toml::Table {
        let p = &self.spec.passes[pass];
        let mut opts = p.options.clone();
        if let Some(extra) = self.model(role).options.get(p.name.get_ref()) {
            for (k, v) in extra {
                opts.insert(k.clone(), v.clone());
            }
        }
        opts
    }

    /// Positions of the passes that run for `role` (all but the role's `skip_passes`).
    pub fn passes_for(&self, role: Option<Role>) -> Vec<usize> {
        let skip = self.model(role).skip_passes;
        (0..self.spec.passes.len()).filter(|&i| !skip.contains(self.spec.passes[i].name.get_ref())).collect()
    }

    /// Builds the passes with `resolve` (normally [`pass_by_name`]); an unknown name is an error
    /// at its line.
    pub fn build_passes_with(&self, resolve: &dyn Fn(&str) -> Result<Box<dyn Pass>>) -> Result<Vec<Box<dyn Pass>>> {
        self.spec
            .passes
            .iter()
            .map(|p| {
                resolve(p.name.get_ref())
                    .map_err(|e| at(&self.source, &self.text, Some(p.name.span()), format!("{e:#}")))
            })
            .collect()
    }

    /// Builds the passes from the registry.
    pub fn build_passes(&self) -> Result<Vec<Box<dyn Pass>>> {
        self.build_passes_with(&pass_by_name)
    }

    /// The [`PassContext`] of pass `pass` for a model of `role` with the given fixed input shapes.
    pub fn context(&self, pass: usize, role: Option<Role>, input_shapes: &BTreeMap<String, Vec<i64>>) -> PassContext {
        PassContext { input_shapes: input_shapes.clone(), options: self.options_for(pass, role) }
    }

    /// The fixed input shapes for `role`: the recipe's, with `overrides` (e.g. `--input-shape`)
    /// replacing inputs of the same name.
    pub fn input_shapes(
        &self,
        role: Option<Role>,
        overrides: &BTreeMap<String, Vec<i64>>,
    ) -> BTreeMap<String, Vec<i64>> {
        let mut s = self.model(role).input_shapes;
        s.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Noop;
    impl Pass for Noop {
        fn name(&self) -> &'static str {
            "cleanup"
        }
        fn exact(&self) -> bool {
            true
        }
        fn run(&self, _: &mut crate::onnx::Model, _: &PassContext) -> Result<super::super::PassReport> {
            Ok(Default::default())
        }
    }

    const GOOD: &str = r#"
target = "t"
description = "test"
suffix = "_t"

[[pass]]
name = "cleanup"
ort_below = "1.26"

[[pass]]
name = "fold-shapes"
only_symbolic_dims = true
options = { keep = ["a"] }

[models.swapper]
input_shapes = { target = [1, 3, 128, 128] }
tolerance = { psnr_db = 40.0 }
outputs = { output = "exact" }
[models.swapper.options.cleanup]
x = 1

[models.landmarks]
skip = "measured: too far off"
[models.enhancer]
skip_passes = ["fold-shapes"]
"#;

    #[test]
    fn parses_and_hashes_canonical_content() {
        let r = Recipe::parse(GOOD, "good.toml").unwrap();
        assert_eq!(r.suffix(), "_t");
        let m = r.model(Some(Role::Swapper));
        assert_eq!(m.tolerance, Some(Tolerance::PsnrDb(40.0)));
        assert_eq!(m.outputs["output"], Tolerance::Exact);
        assert_eq!(r.options_for(0, Some(Role::Swapper))["x"].as_integer(), Some(1));
        assert!(r.options_for(0, Some(Role::Detector)).is_empty());
        assert_eq!(r.model(Some(Role::Landmarks)).skip.as_deref(), Some("measured: too far off"));
        assert_eq!(r.passes_for(Some(Role::Enhancer)), vec![0]);
        assert_eq!(r.passes_for(Some(Role::Swapper)), vec![0, 1]);
        let bad = GOOD.replace("skip_passes = [\"fold-shapes\"]", "skip_passes = [\"fp16\"]");
        assert!(Recipe::parse(&bad, "x").unwrap_err().to_string().contains("skip_passes names `fp16`"));
        // Comments and formatting do not change the hash; content does.
        let reformatted = GOOD.replace("[[pass]]\nname = \"cleanup\"", "# a comment\n[[pass]]\nname   =   \"cleanup\"");
        assert_ne!(reformatted, GOOD);
        assert_eq!(Recipe::parse(&reformatted, "x").unwrap().hash(), r.hash());
        let edited = GOOD.replace("40.0", "41.0");
        assert_ne!(Recipe::parse(&edited, "x").unwrap().hash(), r.hash());
    }

    #[test]
    fn versions_decide_which_passes_are_needed() {
        let r = Recipe::parse(GOOD, "good.toml").unwrap();
        let p = &r.spec.passes;
        assert!(p[0].needed("1.25.1", false));
        assert!(!p[0].needed("1.26.0", false));
        assert!(!p[0].needed("1.32", false));
        assert!(!p[1].needed("1.20", false));
        assert!(p[1].needed("1.20", true));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Recipe::parse("target = \"t\"\nsuffix = \"_t\"\n[[pass]]\nnmae = \"x\"\n", "bad.toml").unwrap_err();
        assert!(e.to_string().starts_with("bad.toml:4:"), "{e}");
        let e = Recipe::parse("target = \"t\"\nsuffix = \"_t\"\n[[pass]]\nname = \n", "syntax.toml").unwrap_err();
        assert!(e.to_string().starts_with("syntax.toml:4:"), "{e}");
        let bad_version = GOOD.replace("\"1.26\"", "\"soon\"");
        let e = Recipe::parse(&bad_version, "v.toml").unwrap_err();
        assert!(e.to_string().starts_with("v.toml:8:") && e.to_string().contains("soon"), "{e}");
        let bad_tol = GOOD.replace("{ psnr_db = 40.0 }", "{ psnr = 40.0 }");
        let e = Recipe::parse(&bad_tol, "tol.toml").unwrap_err();
        assert!(e.to_string().starts_with("tol.toml:17:"), "{e}");
        let bad_role = GOOD.replace("models.swapper]", "models.swaper]");
        assert!(Recipe::parse(&bad_role, "r.toml").unwrap_err().to_string().contains("swaper"));
        let bad_suffix = GOOD.replace("\"_t\"", "\"t/x\"");
        assert!(Recipe::parse(&bad_suffix, "s.toml").unwrap_err().to_string().contains("suffix"));
        let r = Recipe::parse(&GOOD.replace("fold-shapes", "no-such-pass"), "p.toml").unwrap();
        // `cleanup` resolves (stand-in), the misspelt pass does not.
        let resolve = |n: &str| -> Result<Box<dyn Pass>> {
            if n == "cleanup" {
                Ok(Box::new(Noop))
            } else {
                pass_by_name(n)
            }
        };
        let e = r.build_passes_with(&resolve).err().expect("unknown pass is an error");
        assert!(e.to_string().starts_with("p.toml:11:") && e.to_string().contains("no-such-pass"), "{e:#}");
    }

    #[test]
    fn builtin_recipes_parse() {
        for r in Recipe::builtins().unwrap() {
            assert!(!r.spec.passes.is_empty(), "{}", r.source);
            assert_eq!(r.suffix(), format!("_{}", r.target()));
        }
    }
}
