//! EP support rules as data: one table per execution provider (`rules/<ep>.toml`, embedded at build
//! time), each rule naming an op, the ORT versions and model formats it holds for, and conditions on
//! attributes, input ranks, static shapes, dtypes and constant inputs, each with the reason a node
//! failing it is left to the CPU.
//!
//! The tables restate, in this project's own words, the support checks of ONNX Runtime's EP sources
//! (for CoreML: `onnxruntime/core/providers/coreml/builders/impl/*_op_builder.cc`, `helper.cc`,
//! `base_op_builder.cc`). Checks that need code rather than data (pad geometry, resize factors, split
//! sizes) are [`Named`] checks implemented here; the tables only pick and parameterise them.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{Ep, Format, OrtVersion};
use crate::onnx::graph::NodeExt;
use crate::onnx::proto::NodeProto;
use crate::onnx::shape::{DimSize, ShapeInfo, ValueFacts};
use crate::onnx::summary::dtype_name;
use crate::onnx::Tensor;

const COREML_TOML: &str = include_str!("../../rules/coreml.toml");
const CUDA_TOML: &str = include_str!("../../rules/cuda.toml");
const DIRECTML_TOML: &str = include_str!("../../rules/directml.toml");

/// One EP's rule table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    pub ep: Ep,
    /// ORT's provider name, as its logs print it.
    pub provider: String,
    /// The oldest ORT release the table describes.
    pub oldest: OrtVersion,
    /// Model formats the EP can build (empty: the EP has no formats).
    #[serde(default)]
    pub formats: Vec<Format>,
    pub default_format: Option<Format>,
    /// Compiling EP: each partition becomes one fused node.
    pub fuses: bool,
    /// Ops without a rule are claimed (kernel EPs with near-complete op coverage) instead of rejected.
    #[serde(default)]
    pub unlisted_claimed: bool,
    pub general: General,
    pub partitioning: Partitioning,
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

/// Checks every node must pass whatever its op (CoreML: `IsInputSupported` and the default dtype
/// check of input 0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    /// Every present input needs a known rank.
    #[serde(default)]
    pub require_rank: bool,
    pub max_rank: Option<usize>,
    /// Largest dimension any input may have.
    pub max_dim: Option<i64>,
    /// Inputs with a 0-sized dimension are rejected…
    #[serde(default)]
    pub reject_zero_dim: bool,
    /// …except these (op, input indexes), e.g. Resize's unused `roi`.
    #[serde(default)]
    pub allow_empty: Vec<OpInputs>,
    /// Allowed dtypes of input 0 by format name (`mlprogram`, `neuralnetwork`) or `all`.
    pub dtypes: BTreeMap<String, Vec<String>>,
    pub source: String,
}

/// How claimed nodes become partitions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partitioning {
    /// From `since`, a group made only of `ops` is discarded (its nodes run on the CPU).
    pub drop_trivial: Option<DropTrivial>,
    /// Nodes that only compute shape values for CPU-side inputs run on the CPU (ORT's
    /// `GetCpuPreferredNodes`, used by kernel EPs).
    #[serde(default)]
    pub cpu_shape_nodes: bool,
    /// Inputs whose kernels read them from CPU memory (shape-like inputs), by op.
    #[serde(default)]
    pub shape_inputs: Vec<OpInputs>,
    pub source: String,
}

/// Partition-quality heuristic: drop groups made only of cheap ops.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropTrivial {
    pub since: OrtVersion,
    pub ops: Vec<String>,
    pub source: String,
}

/// Some inputs of one op.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpInputs {
    pub op: String,
    pub inputs: Vec<usize>,
}

/// One support rule: the EP claims `op` for ORT in `[since, until)` and the listed formats when every
/// condition holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The op (or use `ops` for several ops sharing one rule; the table is expanded on load).
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub ops: Vec<String>,
    pub since: OrtVersion,
    /// First release the rule no longer describes (a later rule replaces it).
    pub until: Option<OrtVersion>,
    /// Formats the rule holds for (empty: all).
    #[serde(default)]
    pub formats: Vec<Format>,
    /// Opset range of the node's op (the model's default-domain opset stands for the node's).
    pub min_opset: Option<i64>,
    pub max_opset: Option<i64>,
    /// Input-0 dtypes allowed besides the general list.
    #[serde(default)]
    pub extra_dtypes: Vec<String>,
    /// No dtype check on input 0 (Shape reads only metadata, Cast converts).
    #[serde(default)]
    pub any_dtype: bool,
    #[serde(default)]
    pub when: Vec<Condition>,
    /// The ORT source file the rule restates.
    pub source: String,
    /// Anything worth knowing (e.g. "from PR #…").
    #[serde(default)]
    pub note: String,
}

impl Rule {
    /// A stable identifier: `Pad@1.26+[mlprogram]`.
    pub fn id(&self) -> String {
        let until = self.until.map(|u| format!("-{u}")).unwrap_or_else(|| "+".into());
        let formats = if self.formats.is_empty() {
            String::new()
        } else {
            format!("[{}]", self.formats.iter().map(|f| f.name()).collect::<Vec<_>>().join(","))
        };
        format!("{}@{}{until}{formats}", self.op, self.since)
    }

    fn holds_for(&self, ort: OrtVersion, format: Option<Format>) -> bool {
        self.in_version(ort) && self.in_format(format)
    }

    fn in_version(&self, ort: OrtVersion) -> bool {
        ort >= self.since && self.until.is_none_or(|u| ort < u)
    }

    fn in_format(&self, format: Option<Format>) -> bool {
        match format {
            Some(f) => self.formats.is_empty() || self.formats.contains(&f),
            None => true,
        }
    }
}

/// A condition and the reason a node failing it is rejected. (Not `deny_unknown_fields`: serde
/// cannot combine it with the flattened check.)
#[derive(Debug, Clone, Deserialize)]
pub struct Condition {
    #[serde(flatten)]
    pub check: Check,
    /// Why a failing node is left to the CPU, in words.
    pub reason: String,
    /// Only for these formats (empty: all).
    #[serde(default)]
    pub formats: Vec<Format>,
    /// Only when this attribute takes one of these values.
    pub only_if: Option<AttrMatch>,
}

/// An attribute value test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttrMatch {
    pub attr: String,
    pub default: toml::Value,
    pub values: Vec<toml::Value>,
}

/// What a condition tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// The attribute (or its default) is one of `values`.
    AttrIn { attr: String, default: toml::Value, values: Vec<toml::Value> },
    /// Input `input`, when present, is a constant initializer.
    ConstInput { input: usize },
    /// Input `input` is present (a non-empty name).
    Present { input: usize },
    /// Input `input`'s rank is known and within bounds.
    Rank { input: usize, min: Option<usize>, max: Option<usize> },
    /// Every dimension of input `input` is known.
    StaticShape { input: usize },
    /// Input `input` has one of these dtypes.
    InputDtype { input: usize, allowed: Vec<String> },
    /// The node has at least `n` outputs.
    MinOutputs { n: usize },
    /// The node has at most `n` outputs (used ones: trailing optional outputs may be empty).
    MaxOutputs { n: usize },
    /// A check that needs code.
    Named { name: Named },
}

/// Checks implemented in code, chosen by name in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Named {
    /// Pad amounts are all ≥ 0.
    PadsNonNegative,
    /// Only the last two axes are padded.
    PadsLastTwoAxes,
    /// Every reflect pad is smaller than the padded dimension (static dims needed).
    ReflectPadBelowDim,
    /// Resize gets `scales` or `sizes` as a constant initializer.
    ResizeParamsConstant,
    /// Resize leaves N and C alone.
    ResizeKeepsBatchChannels,
    /// Resize upsamples by whole factors (NeuralNetwork's upsample layer).
    ResizeWholeUpscale,
    /// Split sizes (input or attribute, else an even split) are valid for a static split axis.
    SplitSizesValid,
    /// Gather's index is not a rank-0 scalar.
    GatherIndexNotScalar,
    /// A rank-0 Gather index needs a static data shape of rank ≤ 4.
    GatherScalarStaticData,
    /// Gather's output rank is ≤ 5.
    GatherOutputRankMax5,
    /// PRelu's slope is constant with shape [C,1,1] or a single element.
    PreluSlopeShape,
    /// Shape has no `start`/`end` attributes.
    ShapeWholeRange,
    /// Every input of the node has the dtype of input 0.
    SameDtypes,
}

/// The verdict on one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The EP claims the node under `rule`.
    Claimed { rule: String },
    /// The node stays on the CPU: `rule` (a rule id, or `general:<check>`) rejected it because `reason`.
    Rejected {
        rule: String,
        reason: String,
        /// Where the node would be claimed instead (a later ORT, another format), if anywhere.
        hint: Option<String>,
    },
}

impl Verdict {
    /// True when claimed.
    pub fn claimed(&self) -> bool {
        matches!(self, Verdict::Claimed { .. })
    }
}

/// What the rules see of one node.
pub struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    pub info: &'a ShapeInfo,
    /// Names of constant initializers (after the prepass's folding).
    pub consts: &'a HashSet<String>,
    /// Default-domain opset of the model.
    pub opset: i64,
}

impl NodeCtx<'_> {
    fn input(&self, i: usize) -> Option<&str> {
        self.node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }
    fn facts(&self, i: usize) -> Option<&ValueFacts> {
        self.input(i).and_then(|n| self.info.get(n))
    }
    fn shape(&self, i: usize) -> Option<Vec<DimSize>> {
        self.facts(i).and_then(|f| f.shape.clone())
    }
    fn value(&self, i: usize) -> Option<&Tensor> {
        self.facts(i).and_then(|f| f.value.as_ref())
    }
    fn ints(&self, i: usize) -> Option<Vec<i64>> {
        self.value(i).and_then(Tensor::as_i64s)
    }
    fn dtype(&self, i: usize) -> Option<String> {
        self.facts(i).filter(|f| f.dtype != 0).map(|f| dtype_name(f.dtype))
    }
    fn is_const(&self, i: usize) -> bool {
        self.input(i).is_some_and(|n| self.consts.contains(n))
    }
}

static TABLES: OnceLock<Result<Vec<RuleTable>, String>> = OnceLock::new();

/// The embedded rule table for `ep` (parsed once).
pub fn table(ep: Ep) -> Result<&'static RuleTable> {
    let tables = TABLES.get_or_init(|| {
        [("coreml", COREML_TOML), ("cuda", CUDA_TOML), ("directml", DIRECTML_TOML)]
            .iter()
            .map(|(name, text)| parse_table(text).map_err(|e| format!("rules/{name}.toml: {e:#}")))
            .collect()
    });
    let tables = tables.as_ref().map_err(|e| anyhow!("{e}"))?;
    tables.iter().find(|t| t.ep == ep).ok_or_else(|| anyhow!("no rule table for {ep}"))
}

/// Parses and validates a rule table.
pub fn parse_table(text: &str) -> Result<RuleTable> {
    let mut t: RuleTable = toml::from_str(text).context("invalid rule table")?;
    let mut expanded = Vec::with_capacity(t.rules.len());
    for r in std::mem::take(&mut t.rules) {
        let names = match (r.op.is_empty(), r.ops.is_empty()) {
            (false, true) => vec![r.op.clone()],
            (true, false) => r.ops.clone(),
            _ => bail!("a rule from {} must name exactly one of `op` or `ops`", r.source),
        };
        for name in names {
            expanded.push(Rule { op: name, ops: vec![], ..r.clone() });
        }
    }
    t.rules = expanded;
    let known_dtypes = [
        "float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64",
        "bool",
    ];
    let check_dtype = |d: &str, wher: &str| -> Result<()> {
        if !known_dtypes.contains(&d) {
            bail!("{wher}: unknown dtype '{d}' (known: {})", known_dtypes.join(", "));
        }
        Ok(())
    };
    for (k, v) in &t.general.dtypes {
        if k != "all" && !t.formats.iter().any(|f| f.name() == k) {
            bail!("general.dtypes: '{k}' is neither 'all' nor a format of this EP");
        }
        for d in v {
            check_dtype(d, "general.dtypes")?;
        }
    }
    if let Some(f) = t.default_format {
        if !t.formats.contains(&f) {
            bail!("default_format {f} is not in formats");
        }
    }
    for r in &t.rules {
        if r.source.trim().is_empty() {
            bail!("rule {}: empty source", r.id());
        }
        if let Some(u) = r.until {
            if u <= r.since {
                bail!("rule {}: until must be after since", r.id());
            }
        }
        for d in &r.extra_dtypes {
            check_dtype(d, &r.id())?;
        }
        for c in &r.when {
            if c.reason.trim().is_empty() {
                bail!("rule {}: a condition has no reason", r.id());
            }
            if let Check::InputDtype { allowed, .. } = &c.check {
                for d in allowed {
                    check_dtype(d, &r.id())?;
                }
            }
        }
    }
    Ok(t)
}

impl RuleTable {
    /// The format to plan for: the given one, else the default; an error if the EP has no such format.
    pub fn resolve_format(&self, f: Option<Format>) -> Result<Option<Format>> {
        match f {
            Some(f) if self.formats.contains(&f) => Ok(Some(f)),
            Some(f) => bail!("{} has no model format '{f}' (formats only apply to coreml)", self.ep),
            None => Ok(self.default_format),
        }
    }

    /// Rules for `op`.
    pub fn rules_for<'a>(&'a self, op: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.op == op)
    }

    /// Every op any rule mentions.
    pub fn ops(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.rules.iter().map(|r| r.op.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every release from the oldest the table describes to the newest one any rule names.
    pub fn releases(&self) -> Vec<OrtVersion> {
        let mut newest = self.oldest;
        for r in &self.rules {
            newest = newest.max(r.since).max(r.until.unwrap_or(r.since));
        }
        if let Some(d) = &self.partitioning.drop_trivial {
            newest = newest.max(d.since);
        }
        (self.oldest.minor..=newest.minor).map(|m| OrtVersion::new(self.oldest.major, m)).collect()
    }

    /// True when the drop-trivial heuristic applies at `ort` and `op` is trivial.
    pub fn is_trivial(&self, op: &str, ort: OrtVersion) -> bool {
        self.partitioning.drop_trivial.as_ref().is_some_and(|d| ort >= d.since && d.ops.iter().any(|o| o == op))
    }

    /// Judges one node.
    pub fn judge(&self, ctx: &NodeCtx, format: Option<Format>, ort: OrtVersion) -> Verdict {
        let op = ctx.node.op_type.as_str();
        let all: Vec<&Rule> = self.rules_for(op).collect();
        if all.is_empty() {
            if self.unlisted_claimed {
                return match self.general_check(ctx, format, None) {
                    Some((rule, reason)) => Verdict::Rejected { rule, reason, hint: None },
                    None => Verdict::Claimed { rule: format!("{op}@unlisted") },
                };
            }
            return Verdict::Rejected {
                rule: format!("{}:no-builder", self.ep),
                reason: format!("the {} EP has no builder for {op}", self.ep),
                hint: None,
            };
        }
        let candidates: Vec<&Rule> = all.iter().copied().filter(|r| r.holds_for(ort, format)).collect();
        if candidates.is_empty() {
            let (what, reason) = if all.iter().any(|r| r.in_version(ort)) {
                let mut fmts: Vec<&str> =
                    all.iter().filter(|r| r.in_version(ort)).flat_map(|r| r.formats.iter().map(|f| f.name())).collect();
                fmts.dedup();
                let f = format.map(|f| f.name()).unwrap_or("this format");
                ("format", format!("{op} has no {f} builder (only {}) in ORT {ort}", fmts.join("/")))
            } else if all.iter().all(|r| r.since > ort) {
                let first = all.iter().filter(|r| r.in_format(format)).map(|r| r.since).min();
                let first = first.map(|v| format!(" before ORT {v}")).unwrap_or_default();
                ("version", format!("{op} has no {} builder{first}", self.ep))
            } else {
                ("version", format!("{op} has no {} rule for ORT {ort}", self.ep))
            };
            let hint = self.hint(ctx, format, ort);
            return Verdict::Rejected { rule: format!("{}:{op}:no-{what}-builder", self.ep), reason, hint };
        }
        let mut last_failure = None;
        for r in &candidates {
            match self.evaluate(r, ctx, format) {
                Ok(()) => return Verdict::Claimed { rule: r.id() },
                Err(f) => last_failure = Some(f),
            }
        }
        let (rule, reason) = last_failure.expect("at least one candidate");
        Verdict::Rejected { rule, reason, hint: self.hint(ctx, format, ort) }
    }

    /// Where a rejected node would be claimed: the first later ORT release (same format), else another
    /// format at this release.
    fn hint(&self, ctx: &NodeCtx, format: Option<Format>, ort: OrtVersion) -> Option<String> {
        let op = ctx.node.op_type.as_str();
        let mut later: Vec<&Rule> = self.rules_for(op).filter(|r| r.since > ort && r.in_format(format)).collect();
        later.sort_by_key(|r| r.since);
        if let Some(r) = later.into_iter().find(|r| self.evaluate(r, ctx, format).is_ok()) {
            return Some(format!("claimed from ORT {} ({})", r.since, r.id()));
        }
        for f in &self.formats {
            if Some(*f) == format {
                continue;
            }
            if self.rules_for(op).any(|r| r.holds_for(ort, Some(*f)) && self.evaluate(r, ctx, Some(*f)).is_ok()) {
                return Some(format!("claimed with --format {f}"));
            }
        }
        None
    }

    /// `Ok` when `rule` accepts the node; else the failing rule id and reason.
    fn evaluate(
        &self,
        rule: &Rule,
        ctx: &NodeCtx,
        format: Option<Format>,
    ) -> std::result::Result<(), (String, String)> {
        let op = &ctx.node.op_type;
        if let Some(min) = rule.min_opset {
            if ctx.opset < min {
                return Err((
                    rule.id(),
                    format!("{op} is only built for opset ≥ {min}; the model uses opset {}", ctx.opset),
                ));
            }
        }
        if let Some(max) = rule.max_opset {
            if ctx.opset > max {
                return Err((
                    rule.id(),
                    format!("{op} is only built for opset ≤ {max}; the model uses opset {}", ctx.opset),
                ));
            }
        }
        if let Some(fail) = self.general_check(ctx, format, Some(rule)) {
            return Err(fail);
        }
        for c in &rule.when {
            if !c.formats.is_empty() && format.is_some_and(|f| !c.formats.contains(&f)) {
                continue;
            }
            if let Some(m) = &c.only_if {
                if !attr_matches(ctx.node, &m.attr, &m.default, &m.values) {
                    continue;
                }
            }
            if !check(&c.check, ctx) {
                return Err((rule.id(), c.reason.clone()));
            }
        }
        Ok(())
    }

    /// The EP-wide input checks, then the input-0 dtype check. `None` when they pass.
    fn general_check(&self, ctx: &NodeCtx, format: Option<Format>, rule: Option<&Rule>) -> Option<(String, String)> {
        let g = &self.general;
        let op = ctx.node.op_type.as_str();
        let gid = |c: &str| format!("{}:general:{c}", self.ep);
        for (i, name) in ctx.node.input.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let shape = ctx.info.get(name).and_then(|f| f.shape.clone());
            let Some(shape) = shape else {
                if g.require_rank {
                    return Some((gid("rank"), format!("input '{name}' has no known shape (rank unknown)")));
                }
                continue;
            };
            if let Some(max) = g.max_rank {
                if shape.len() > max {
                    return Some((gid("max-rank"), format!("input '{name}' has rank {} > {max}", shape.len())));
                }
            }
            if let Some(max) = g.max_dim {
                if let Some(d) = shape.iter().flatten().find(|&&d| d > max) {
                    return Some((gid("max-dim"), format!("input '{name}' has a dimension of {d} > {max}")));
                }
            }
            if g.reject_zero_dim && shape.contains(&Some(0)) {
                let allowed = g.allow_empty.iter().any(|a| a.op == op && a.inputs.contains(&i));
                if !allowed {
                    return Some((gid("empty"), format!("input '{name}' has a 0-sized dimension")));
                }
            }
        }
        if rule.is_some_and(|r| r.any_dtype) {
            return None;
        }
        let mut allowed: Vec<&str> =
            g.dtypes.get("all").map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default();
        if let Some(f) = format {
            if let Some(v) = g.dtypes.get(f.name()) {
                allowed.extend(v.iter().map(String::as_str));
            }
        }
        if let Some(r) = rule {
            allowed.extend(r.extra_dtypes.iter().map(String::as_str));
        }
        ctx.input(0)?;
        match ctx.dtype(0) {
            Some(d) if allowed.contains(&d.as_str()) => None,
            Some(d) => Some((gid("dtype"), format!("input 0 is {d}; {op} takes {}", allowed.join("/")))),
            None => Some((gid("dtype"), "input 0 has an unknown element type".into())),
        }
    }
}

fn toml_eq(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Integer(x), toml::Value::Float(y)) | (toml::Value::Float(y), toml::Value::Integer(x)) => {
            (*x as f64) == *y
        }
        _ => a == b,
    }
}

/// True when the node's attribute `attr` (or `default` when absent) equals one of `values`.
fn attr_matches(node: &NodeProto, attr: &str, default: &toml::Value, values: &[toml::Value]) -> bool {
    use crate::onnx::proto::attribute_proto::AttributeType;
    let v: toml::Value = match node.attr(attr) {
        None => default.clone(),
        Some(a) => match AttributeType::try_from(a.r#type) {
            Ok(AttributeType::Int) => toml::Value::Integer(a.i),
            Ok(AttributeType::Float) => toml::Value::Float(a.f as f64),
            Ok(AttributeType::String) => toml::Value::String(String::from_utf8_lossy(&a.s).into_owned()),
            Ok(AttributeType::Ints) => toml::Value::Array(a.ints.iter().map(|&i| toml::Value::Integer(i)).collect()),
            // Untyped attributes from old exporters: guess from the populated field.
            _ if !a.s.is_empty() => toml::Value::String(String::from_utf8_lossy(&a.s).into_owned()),
            _ => toml::Value::Integer(a.i),
        },
    };
    values.iter().any(|x| toml_eq(x, &v))
}

fn check(c: &Check, ctx: &NodeCtx) -> bool {
    match c {
        Check::AttrIn { attr, default, values } => attr_matches(ctx.node, attr, default, values),
        Check::ConstInput { input } => ctx.input(*input).is_none() || ctx.is_const(*input),
        Check::Present { input } => ctx.input(*input).is_some(),
        Check::Rank { input, min, max } => match ctx.shape(*input) {
            Some(s) => min.is_none_or(|m| s.len() >= m) && max.is_none_or(|m| s.len() <= m),
            None => false,
        },
        Check::StaticShape { input } => ctx.shape(*input).is_some_and(|s| s.iter().all(Option::is_some)),
        Check::InputDtype { input, allowed } => {
            ctx.input(*input).is_none() || ctx.dtype(*input).is_some_and(|d| allowed.contains(&d))
        }
        Check::MinOutputs { n } => ctx.node.output.len() >= *n,
        Check::MaxOutputs { n } => ctx.node.output.iter().filter(|o| !o.is_empty()).count() <= *n,
        Check::Named { name } => named(*name, ctx),
    }
}

/// Pad amounts and the axes they apply to (`None` when not known statically).
fn pad_geometry(ctx: &NodeCtx) -> Option<(Vec<i64>, Vec<usize>)> {
    let rank = ctx.shape(0)?.len();
    let pads = if ctx.opset >= 11 { ctx.ints(1)? } else { ctx.node.attr_ints("pads")?.to_vec() };
    let axes: Vec<usize> = match ctx.ints(3) {
        Some(a) => a.iter().map(|&x| if x < 0 { (x + rank as i64) as usize } else { x as usize }).collect(),
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return None;
    }
    Some((pads, axes))
}

fn resize_params(ctx: &NodeCtx) -> (Option<Vec<f32>>, Option<Vec<i64>>) {
    if ctx.node.op_type == "Upsample" || ctx.opset < 11 {
        let scales = ctx.node.attr("scales").map(|a| a.floats.clone()).or_else(|| ctx.value(1).map(Tensor::to_f32s));
        return (scales, None);
    }
    let scales = ctx.value(2).map(Tensor::to_f32s).filter(|s| !s.is_empty());
    let sizes = ctx.ints(3).filter(|s| !s.is_empty());
    (scales, sizes)
}

fn named(n: Named, ctx: &NodeCtx) -> bool {
    match n {
        // Unknown values (payload-less constants) cannot be judged; assume the usual case.
        Named::PadsNonNegative => pad_geometry(ctx).is_none_or(|(p, _)| p.iter().all(|&v| v >= 0)),
        Named::PadsLastTwoAxes => match (pad_geometry(ctx), ctx.shape(0)) {
            (Some((p, axes)), Some(s)) => {
                let k = axes.len();
                axes.iter().enumerate().all(|(i, &a)| a + 2 >= s.len() || (p[i] == 0 && p[i + k] == 0))
            }
            _ => true,
        },
        Named::ReflectPadBelowDim => match (pad_geometry(ctx), ctx.shape(0)) {
            (Some((p, axes)), Some(s)) => {
                let k = axes.len();
                axes.iter().enumerate().all(|(i, &a)| match s.get(a).copied().flatten() {
                    Some(d) => p[i] < d && p[i + k] < d,
                    None => p[i] == 0 && p[i + k] == 0,
                })
            }
            _ => false,
        },
        Named::ResizeParamsConstant => {
            let (si, zi) = if ctx.opset >= 11 && ctx.node.op_type == "Resize" { (2, 3) } else { (1, usize::MAX) };
            let scales_ok = ctx.input(si).is_some() && ctx.is_const(si) && ctx.value(si).is_none_or(|v| !v.is_empty());
            let sizes_ok = ctx.input(zi).is_some() && ctx.is_const(zi);
            scales_ok || sizes_ok || ctx.node.attr("scales").is_some()
        }
        Named::ResizeKeepsBatchChannels => match resize_params(ctx) {
            (_, Some(sz)) => match ctx.shape(0) {
                Some(s) if sz.len() >= 2 && s.len() >= 2 => s[0] == Some(sz[0]) && s[1] == Some(sz[1]),
                _ => false,
            },
            (Some(sc), _) => sc.len() >= 2 && sc[0] == 1.0 && sc[1] == 1.0,
            _ => true,
        },
        Named::ResizeWholeUpscale => match resize_params(ctx) {
            (_, Some(sz)) => match ctx.shape(0) {
                Some(s) if sz.len() == 4 && s.len() == 4 => {
                    (2..4).all(|i| s[i].is_some_and(|d| d > 0 && sz[i] % d == 0))
                }
                _ => false,
            },
            (Some(sc), _) => sc.len() == 4 && (2..4).all(|i| sc[i] >= 1.0 && sc[i].fract() == 0.0),
            _ => false,
        },
        Named::SplitSizesValid => {
            let Some(s) = ctx.shape(0) else { return false };
            let axis = ctx.node.attr_i("axis", 0);
            let a = if axis < 0 { axis + s.len() as i64 } else { axis };
            let Some(dim) = s.get(a.max(0) as usize).copied().flatten() else { return false };
            let sizes = if ctx.input(1).is_some() {
                match ctx.ints(1) {
                    Some(v) => Some(v),
                    None => return ctx.is_const(1),
                }
            } else {
                ctx.node.attr_ints("split").map(<[i64]>::to_vec)
            };
            let n = ctx.node.output.len();
            match sizes {
                Some(v) => v.len() >= 2 && v.iter().all(|&x| x > 0) && v.iter().sum::<i64>() == dim,
                None => n >= 2 && dim % n as i64 == 0,
            }
        }
        Named::GatherIndexNotScalar => ctx.shape(1).is_some_and(|s| !s.is_empty()),
        Named::GatherScalarStaticData => match ctx.shape(1) {
            Some(i) if i.is_empty() => ctx.shape(0).is_some_and(|d| d.len() <= 4 && d.iter().all(Option::is_some)),
            Some(_) => true,
            None => false,
        },
        Named::GatherOutputRankMax5 => match (ctx.shape(0), ctx.shape(1)) {
            (Some(d), Some(i)) => d.len() + i.len() <= 6,
            _ => false,
        },
        Named::PreluSlopeShape => {
            if !ctx.is_const(1) {
                return false;
            }
            match ctx.shape(1) {
                Some(s) => {
                    let numel: Option<i64> = s.iter().copied().try_fold(1i64, |a, d| d.map(|d| a * d));
                    numel == Some(1) || (s.len() == 3 && s[1] == Some(1) && s[2] == Some(1))
                }
                None => false,
            }
        }
        Named::ShapeWholeRange => ctx.node.attr("start").is_none() && ctx.node.attr("end").is_none(),
        Named::SameDtypes => {
            let d0 = ctx.dtype(0);
            (1..ctx.node.input.len()).all(|i| ctx.input(i).is_none() || ctx.dtype(i) == d0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_parse_and_validate() {
        for ep in [Ep::Coreml, Ep::Cuda, Ep::Directml] {
            let t = table(ep).unwrap();
            assert_eq!(t.ep, ep);
            assert!(!t.rules.is_empty());
        }
        let t = table(Ep::Coreml).unwrap();
        assert_eq!(t.default_format, Some(Format::Mlprogram));
        assert!(t.fuses);
    }

    #[test]
    fn invalid_tables_are_refused_with_the_rule_named() {
        let base = r#"
ep = "coreml"
provider = "X"
oldest = "1.16"
formats = ["mlprogram"]
default_format = "mlprogram"
fuses = true
[general]
dtypes = { all = ["float32"] }
source = "s"
[partitioning]
source = "s"
"#;
        parse_table(base).unwrap();
        let bad_dtype =
            format!("{base}\n[[rule]]\nop = \"Relu\"\nsince = \"1.16\"\nsource = \"s\"\nextra_dtypes = [\"fp32\"]\n");
        let e = format!("{:#}", parse_table(&bad_dtype).unwrap_err());
        assert!(e.contains("Relu@1.16+") && e.contains("fp32"), "{e}");
        let no_reason = format!(
            "{base}\n[[rule]]\nop = \"Pad\"\nsince = \"1.16\"\nsource = \"s\"\nwhen = [{{ check = \"const_input\", input = 1, reason = \"\" }}]\n"
        );
        assert!(format!("{:#}", parse_table(&no_reason).unwrap_err()).contains("no reason"));
        let backwards = format!("{base}\n[[rule]]\nop = \"Pad\"\nsince = \"1.26\"\nuntil = \"1.20\"\nsource = \"s\"\n");
        assert!(format!("{:#}", parse_table(&backwards).unwrap_err()).contains("until"));
    }
}
