//! Hardware profiles: which execution provider, options, model variant and threads each model role
//! gets on a machine, plus camera, pipeline and benchmark settings. Profiles are TOML (`profiles/`);
//! the built-in ones are embedded so the binary works from any folder.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::models::{Role, Scale};
use crate::runtime::{EpConfig, Runtime, SessionConfig};

/// Built-in profiles: name and embedded TOML.
pub const BUILTIN: [(&str, &str); 5] = [
    ("cpu", include_str!("../profiles/cpu.toml")),
    ("m3max", include_str!("../profiles/m3max.toml")),
    ("cuda", include_str!("../profiles/cuda.toml")),
    ("directml", include_str!("../profiles/directml.toml")),
    ("h100", include_str!("../profiles/h100.toml")),
];

/// Which file of a model a role uses: the original, or a rewrite the optimize command wrote beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The model as published.
    Original,
    /// Rewritten for the CoreML EP (`<stem>_coreml.onnx`).
    Coreml,
    /// Weights and activations in fp16 (`<stem>_fp16.onnx`).
    Fp16,
    /// fp16 plus pre/post-processing fused into the model: 8-bit NHWC BGR frames in and out, so the
    /// normalisation and layout work runs on the GPU (`<stem>_cuda.onnx`, `rewrites/cuda.toml`).
    Cuda,
    /// Static QDQ int8 quantization for CPUs (`<stem>_int8.onnx`, `rewrites/int8.toml`):
    /// approximate, made only within its role's quality bar.
    Int8,
}

impl Variant {
    /// All variants, in the order they are reported side by side.
    pub const ALL: [Variant; 5] = [Variant::Original, Variant::Coreml, Variant::Fp16, Variant::Cuda, Variant::Int8];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Coreml => "coreml",
            Variant::Fp16 => "fp16",
            Variant::Cuda => "cuda",
            Variant::Int8 => "int8",
        }
    }

    /// File-name suffix before `.onnx`.
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Original => "",
            Variant::Coreml => "_coreml",
            Variant::Fp16 => "_fp16",
            Variant::Cuda => "_cuda",
            Variant::Int8 => "_int8",
        }
    }

    /// The variant's file beside `original` (`x.onnx` → `x_coreml.onnx`).
    pub fn path_for(self, original: &Path) -> PathBuf {
        let stem = original.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        original.with_file_name(format!("{stem}{}.onnx", self.suffix()))
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Execution settings of one model role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Model variant the role runs.
    #[serde(default = "original")]
    pub variant: Variant,
    /// Execution providers in priority order (ORT's CPU provider takes what they leave).
    #[serde(default = "cpu_only")]
    pub providers: Vec<EpConfig>,
    /// Intra-op threads for this role; absent = the profile's `threads.intra`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_threads: Option<usize>,
    /// Graph optimisation level: `disable`, `basic`, `extended` or `all`.
    #[serde(default = "opt_all")]
    pub optimization: String,
    /// Bind inputs and outputs once (IOBinding) instead of passing them on every run; CUDA graphs need it.
    #[serde(default)]
    pub io_binding: bool,
}

fn original() -> Variant {
    Variant::Original
}
fn cpu_only() -> Vec<EpConfig> {
    vec![EpConfig::default()]
}
fn opt_all() -> String {
    "all".into()
}

impl Default for RoleConfig {
    fn default() -> Self {
        RoleConfig {
            variant: Variant::Original,
            providers: cpu_only(),
            intra_threads: None,
            optimization: opt_all(),
            io_binding: false,
        }
    }
}

/// Per-role settings; a role left out runs the original model on the CPU provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    #[serde(default)]
    pub detector: RoleConfig,
    #[serde(default)]
    pub landmarks: RoleConfig,
    #[serde(default)]
    pub recognizer: RoleConfig,
    #[serde(default)]
    pub swapper: RoleConfig,
    #[serde(default)]
    pub enhancer: RoleConfig,
}

impl Roles {
    /// The settings of `role`.
    pub fn get(&self, role: Role) -> &RoleConfig {
        match role {
            Role::Detector => &self.detector,
            Role::Landmarks => &self.landmarks,
            Role::Recognizer => &self.recognizer,
            Role::Swapper => &self.swapper,
            Role::Enhancer => &self.enhancer,
        }
    }

    /// Mutable settings of `role`.
    pub fn get_mut(&mut self, role: Role) -> &mut RoleConfig {
        match role {
            Role::Detector => &mut self.detector,
            Role::Landmarks => &mut self.landmarks,
            Role::Recognizer => &mut self.recognizer,
            Role::Swapper => &mut self.swapper,
            Role::Enhancer => &mut self.enhancer,
        }
    }
}

/// Thread counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threads {
    /// Intra-op threads per session (0 = ORT's default, one per physical core).
    #[serde(default)]
    pub intra: usize,
    /// Pipeline worker threads (capture, inference, paste-back overlap).
    #[serde(default = "one")]
    pub pipeline: usize,
}

fn one() -> usize {
    1
}

impl Default for Threads {
    fn default() -> Self {
        Threads { intra: 0, pipeline: 1 }
    }
}

/// Camera capture settings for the live pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    #[serde(default)]
    pub device: u32,
    #[serde(default = "w960")]
    pub width: u32,
    #[serde(default = "h540")]
    pub height: u32,
    #[serde(default = "fps30")]
    pub fps: u32,
    /// Pixel format asked of the camera, e.g. `mjpeg` or `yuyv`.
    #[serde(default = "mjpeg")]
    pub format: String,
}

fn w960() -> u32 {
    960
}
fn h540() -> u32 {
    540
}
fn fps30() -> u32 {
    30
}
fn mjpeg() -> String {
    "mjpeg".into()
}

impl Default for Camera {
    fn default() -> Self {
        Camera { device: 0, width: 960, height: 540, fps: 30, format: mjpeg() }
    }
}

/// Live-pipeline settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Run the detector every N frames (1 = every frame).
    #[serde(default = "one")]
    pub detection_interval: usize,
    /// Run the enhancer every N frames (0 = enhancer off).
    #[serde(default)]
    pub enhancer_interval: usize,
    /// Swap every face found instead of the largest one.
    #[serde(default)]
    pub many_faces: bool,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline { detection_interval: 1, enhancer_interval: 0, many_faces: false }
    }
}

/// Warm-up before measured runs: a count of runs or a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Warmup {
    /// This many runs.
    Runs(u32),
    /// Runs until this many seconds have passed (at least one run).
    Seconds(f64),
}

impl Warmup {
    /// Parses `3` (runs) or `1.5s` (seconds), as given on the command line.
    pub fn parse(s: &str) -> Result<Warmup> {
        let s = s.trim();
        if let Some(secs) = s.strip_suffix('s') {
            let v: f64 = secs.parse().with_context(|| format!("warm-up '{s}': expected e.g. 3 or 1.5s"))?;
            if !(v >= 0.0 && v.is_finite()) {
                bail!("warm-up '{s}': seconds must be a non-negative number");
            }
            Ok(Warmup::Seconds(v))
        } else {
            Ok(Warmup::Runs(s.parse().with_context(|| format!("warm-up '{s}': expected e.g. 3 or 1.5s"))?))
        }
    }
}

/// Benchmark defaults of the profile (the command line overrides them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSettings {
    /// Replica scale used when no model folder is given.
    #[serde(default = "full")]
    pub scale: Scale,
    /// Variants measured side by side for each role (the role's own variant is always included).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Warm-up before measuring.
    #[serde(default = "warm3")]
    pub warmup: Warmup,
    /// Most measured runs per model.
    #[serde(default = "runs")]
    pub runs: usize,
    /// Fewest measured runs per model, even past the time budget.
    #[serde(default = "min_runs")]
    pub min_runs: usize,
    /// Time budget for measured runs per model, seconds.
    #[serde(default = "budget")]
    pub time_budget_s: f64,
    /// Profiled runs (ORT profiling on, separate session) for the per-op breakdown; 0 = off.
    #[serde(default = "one")]
    pub op_profile_runs: usize,
    /// Also run every CUDA-graph model without graphs (bound all the same), so graph speed-ups are
    /// ratios from one run.
    #[serde(default)]
    pub cuda_graph_ab: bool,
    /// Frames of the live pipeline run in measure mode after the models (synthetic source at the
    /// camera size, the profile's pipeline settings and role variants); 0 = no pipeline run.
    #[serde(default)]
    pub pipeline_frames: u64,
    /// Faces in the pipeline's synthetic scene.
    #[serde(default = "one")]
    pub pipeline_faces: usize,
    /// Interleaved rounds the runs, warm-up and budget are divided over (`faceperf bench` docs).
    #[serde(default = "rounds")]
    pub rounds: usize,
}

fn rounds() -> usize {
    crate::bench::rounds::DEFAULT_ROUNDS
}

fn full() -> Scale {
    Scale::Full
}
fn warm3() -> Warmup {
    Warmup::Runs(3)
}
fn runs() -> usize {
    100
}
fn min_runs() -> usize {
    10
}
fn budget() -> f64 {
    10.0
}

impl Default for BenchSettings {
    fn default() -> Self {
        BenchSettings {
            scale: Scale::Full,
            variants: vec![],
            warmup: warm3(),
            runs: runs(),
            min_runs: min_runs(),
            time_budget_s: budget(),
            op_profile_runs: 1,
            cuda_graph_ab: false,
            pipeline_frames: 0,
            pipeline_faces: 1,
            rounds: rounds(),
        }
    }
}

/// A hardware profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name (results go to `bench-results/<name>/`).
    pub name: String,
    /// What machine it is for.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub threads: Threads,
    #[serde(default)]
    pub camera: Camera,
    #[serde(default)]
    pub pipeline: Pipeline,
    #[serde(default)]
    pub bench: BenchSettings,
    #[serde(default)]
    pub roles: Roles,
    /// No silent fallback: sessions fail at load when their provider leaves nodes to the CPU
    /// (ORT's `session.disable_cpu_ep_fallback`); `--strict-ep` sets it from the command line.
    #[serde(default)]
    pub strict_ep: bool,
}

/// A profile together with where it came from and its exact text (for provenance).
#[derive(Debug, Clone, Serialize)]
pub struct LoadedProfile {
    pub profile: Profile,
    /// `builtin:<name>` or the file's path.
    pub source: String,
    /// The TOML as read.
    pub content: String,
}

/// An execution provider a profile asks for that the loaded ORT lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingProvider {
    pub role: Role,
    pub provider: String,
}

/// A role moved to the CPU provider because its providers are absent (`--fallback cpu`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub role: Role,
    /// Providers the profile asked for, by ORT name.
    pub requested: Vec<String>,
    /// The ones the loaded ORT lacks.
    pub missing: Vec<String>,
    /// What runs instead.
    pub used: String,
}

/// How one role would run under a profile with the loaded ORT (for `doctor`).
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub role: Role,
    pub variant: Variant,
    /// Providers asked for, with whether the loaded ORT offers each.
    pub requested: Vec<(String, bool)>,
    /// The provider that would take the model's nodes first, or what `--fallback cpu` would use.
    pub runs_on: String,
    /// True when the profile cannot run as written (bench fails without `--fallback cpu`).
    pub fallback: bool,
    /// Why a requested provider that ORT lists cannot load here (a missing library), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Profile {
    /// Parses TOML and validates it; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile> {
        let p: Profile = toml::from_str(text).map_err(|e| {
            // `origin:line:col: message`, one line, as recipes report theirs.
            let at = e.span().map(|s| {
                let before = &text[..s.start.min(text.len())];
                let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
                format!("{}:{col}", before.matches('\n').count() + 1)
            });
            let msg = e.message().trim_end().replace('\n', " ");
            match at {
                Some(at) => anyhow::anyhow!("profile {origin}:{at}: {msg}"),
                None => anyhow::anyhow!("profile {origin}: {msg}"),
            }
        })?;
        p.validate().with_context(|| format!("profile {origin} is not valid"))?;
        Ok(p)
    }

    /// Checks values serde cannot: provider options, optimisation levels, budgets.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            bail!("name '{}' must be non-empty and contain no path separators", self.name);
        }
        for role in Role::ALL {
            let rc = self.roles.get(role);
            if rc.providers.is_empty() {
                bail!("roles.{}: providers is empty (use [{{ kind = \"cpu\" }}])", role.name());
            }
            for ep in &rc.providers {
                ep.validate().with_context(|| format!("roles.{}", role.name()))?;
                if ep.uses_cuda_graph() && !rc.io_binding {
                    bail!("roles.{}: cuda_graph = true needs io_binding = true", role.name());
                }
            }
            if !["disable", "basic", "extended", "all"].contains(&rc.optimization.as_str()) {
                bail!(
                    "roles.{}: optimization '{}' is not one of disable, basic, extended, all",
                    role.name(),
                    rc.optimization
                );
            }
        }
        let b = &self.bench;
        if b.rounds == 0 {
            bail!("bench: rounds must be at least 1 (1 = every job's runs at once)");
        }
        if b.runs == 0 || b.min_runs == 0 || b.min_runs > b.runs {
            bail!("bench: need 1 <= min_runs ({}) <= runs ({})", b.min_runs, b.runs);
        }
        if !(b.time_budget_s > 0.0 && b.time_budget_s.is_finite()) {
            bail!("bench: time_budget_s must be a positive number of seconds");
        }
        if let Warmup::Seconds(s) = b.warmup {
            if !(s >= 0.0 && s.is_finite()) {
                bail!("bench: warmup seconds must be non-negative");
            }
        }
        if self.pipeline.detection_interval == 0 {
            bail!("pipeline: detection_interval must be at least 1");
        }
        Ok(())
    }

    /// Names of the built-in profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in profile by name: `profiles/<name>.toml` from the current folder when present (so
    /// edits in a checkout take effect), else the copy embedded in the binary.
    pub fn builtin(name: &str) -> Result<LoadedProfile> {
        let Some((_, embedded)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            bail!(
                "no built-in profile '{name}' (built-in: {}); pass a .toml file for your own",
                Self::builtin_names().join(", ")
            );
        };
        let on_disk = Path::new("profiles").join(format!("{name}.toml"));
        if let Ok(text) = std::fs::read_to_string(&on_disk) {
            let profile = Profile::parse(&text, &on_disk.display().to_string())?;
            return Ok(LoadedProfile { profile, source: on_disk.display().to_string(), content: text });
        }
        let profile = Profile::parse(embedded, &format!("builtin:{name}"))?;
        Ok(LoadedProfile { profile, source: format!("builtin:{name}"), content: embedded.to_string() })
    }

    /// A user's profile file.
    pub fn from_file(path: &Path) -> Result<LoadedProfile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read profile {}", path.display()))?;
        let profile = Profile::parse(&text, &path.display().to_string())?;
        Ok(LoadedProfile { profile, source: path.display().to_string(), content: text })
    }

    /// `--profile` argument: a path (contains a separator or ends in `.toml`, or exists) or a built-in name.
    pub fn resolve(arg: &str) -> Result<LoadedProfile> {
        let p = Path::new(arg);
        if arg.ends_with(".toml") || arg.contains(['/', '\\']) || (p.is_file() && !Self::builtin_names().contains(&arg))
        {
            Self::from_file(p)
        } else {
            Self::builtin(arg)
        }
    }

    /// Session settings for `role`.
    pub fn session_config(&self, role: Role) -> SessionConfig {
        let rc = self.roles.get(role);
        SessionConfig {
            providers: rc.providers.clone(),
            intra_threads: rc.intra_threads.unwrap_or(self.threads.intra),
            optimization: rc.optimization.clone(),
            profile_prefix: None,
            strict_ep: self.strict_ep,
        }
    }

    /// Providers the profile asks for that `rt` lacks, per role.
    pub fn missing_providers(&self, rt: &Runtime) -> Vec<MissingProvider> {
        let mut out = Vec::new();
        for role in Role::ALL {
            for ep in &self.roles.get(role).providers {
                if !rt.has_provider(ep.provider_name()) {
                    out.push(MissingProvider { role, provider: ep.provider_name().to_string() });
                }
            }
        }
        out
    }

    /// Fails with one clear message when a provider is absent, or listed by ORT but unable to load
    /// (a library it links is missing: the message names the first one and points to `doctor`), or
    /// (with `fallback_cpu`) moves each affected role to the CPU provider and returns what was changed.
    pub fn check_or_fallback(&mut self, rt: &Runtime, fallback_cpu: bool) -> Result<Vec<Fallback>> {
        let unusable = crate::runtime::deps::unusable_providers(crate::runtime::deps::checks_for(rt));
        self.check_or_fallback_with(rt, &unusable, fallback_cpu)
    }

    /// [`Self::check_or_fallback`] with the providers that cannot load given as (name, problem).
    pub fn check_or_fallback_with(
        &mut self,
        rt: &Runtime,
        unusable: &[(String, String)],
        fallback_cpu: bool,
    ) -> Result<Vec<Fallback>> {
        let missing = self.missing_providers(rt);
        let broken = |name: &str| unusable.iter().find(|(n, _)| n == name).map(|(_, why)| why.clone());
        let requested_broken =
            Role::ALL.iter().flat_map(|&r| self.roles.get(r).providers.iter()).find_map(|e| broken(e.provider_name()));
        if missing.is_empty() && requested_broken.is_none() {
            return Ok(vec![]);
        }
        if !fallback_cpu {
            if let Some(why) = requested_broken.filter(|_| missing.is_empty()) {
                bail!("{why}");
            }
            let list: Vec<String> = missing.iter().map(|m| format!("{} for {}", m.provider, m.role.name())).collect();
            bail!(
                "profile '{}' needs {}, which ONNX Runtime {} at {} does not offer (it has: {}); \
                 install the matching onnxruntime package, pass --ort-lib, or use --fallback cpu",
                self.name,
                list.join(", "),
                rt.version,
                rt.library.display(),
                rt.providers.join(", ")
            );
        }
        let mut out = Vec::new();
        for role in Role::ALL {
            let rc = self.roles.get_mut(role);
            let lacking: Vec<String> = rc
                .providers
                .iter()
                .filter(|e| !rt.has_provider(e.provider_name()) || broken(e.provider_name()).is_some())
                .map(|e| e.provider_name().to_string())
                .collect();
            if lacking.is_empty() {
                continue;
            }
            let requested = rc.providers.iter().map(|e| e.provider_name().to_string()).collect();
            rc.providers = vec![EpConfig::default()];
            out.push(Fallback { role, requested, missing: lacking, used: "CPUExecutionProvider".into() });
        }
        Ok(out)
    }

    /// How each role would run with the loaded ORT.
    pub fn routes(&self, rt: &Runtime) -> Vec<Route> {
        self.routes_with(rt, &[])
    }

    /// How each role would run with the loaded ORT when the providers in `unusable` (name, problem)
    /// are listed but cannot load: a role never routes to one of them.
    pub fn routes_with(&self, rt: &Runtime, unusable: &[(String, String)]) -> Vec<Route> {
        Role::ALL
            .iter()
            .map(|&role| {
                let rc = self.roles.get(role);
                let broken = |n: &str| unusable.iter().find(|(u, _)| u == n).map(|(_, why)| why.clone());
                let requested: Vec<(String, bool)> = rc
                    .providers
                    .iter()
                    .map(|e| {
                        (
                            e.provider_name().to_string(),
                            rt.has_provider(e.provider_name()) && broken(e.provider_name()).is_none(),
                        )
                    })
                    .collect();
                let problem = requested.iter().find_map(|(n, _)| broken(n));
                let fallback = requested.iter().any(|(_, ok)| !ok);
                let runs_on = if fallback { "CPUExecutionProvider".to_string() } else { requested[0].0.clone() };
                Route { role, variant: rc.variant, requested, runs_on, fallback, problem }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_paths() {
        let p = Path::new("/m/inswapper_128.onnx");
        assert_eq!(Variant::Original.path_for(p), p);
        assert_eq!(Variant::Coreml.path_for(p), Path::new("/m/inswapper_128_coreml.onnx"));
        assert_eq!(Variant::Fp16.path_for(p), Path::new("/m/inswapper_128_fp16.onnx"));
    }

    #[test]
    fn builtin_profiles_parse_and_the_nvidia_ones_bind_half_precision_with_graphs() {
        for (name, text) in BUILTIN {
            let p = Profile::parse(text, name).unwrap();
            assert_eq!(p.name, name);
        }
        // Both run the `_cuda` variants (fp16 swapper and enhancer, fused 8-bit I/O).
        for (name, want) in [("cuda", Variant::Cuda), ("h100", Variant::Cuda)] {
            let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).unwrap();
            let p = Profile::parse(text, name).unwrap();
            assert!(p.bench.variants.contains(&Variant::Fp16), "{name}");
            let swapper = p.roles.get(Role::Swapper);
            assert_eq!(swapper.variant, want, "{name}");
            assert!(swapper.io_binding, "{name}");
            for role in Role::ALL {
                let rc = p.roles.get(role);
                for ep in &rc.providers {
                    let EpConfig::Cuda { conv_algo_search, .. } = ep else { panic!("{name}: {role:?} is not on CUDA") };
                    assert_eq!(conv_algo_search, "exhaustive", "{name} {role:?}");
                    // Graphs everywhere ORT can capture them (replay verified on the H100,
                    // bench-results/h100/README.md); ORT refuses capture for the original
                    // det_10g, which the cuda profile's detector uses.
                    let refused = role == Role::Detector && rc.variant == Variant::Original;
                    assert_eq!(ep.uses_cuda_graph(), !refused, "{name} {role:?}");
                }
            }
        }
    }

    #[test]
    fn cuda_graphs_without_io_binding_are_rejected() {
        let text = "name = \"x\"\n[roles.swapper]\nproviders = [{ kind = \"cuda\", cuda_graph = true }]\n";
        let e = format!("{:#}", Profile::parse(text, "x").unwrap_err());
        assert!(e.contains("io_binding"), "{e}");
        let text = "name = \"x\"\n[roles.swapper]\nproviders = [{ kind = \"cuda\", conv_algo_search = \"fastest\" }]\n";
        let e = format!("{:#}", Profile::parse(text, "x").unwrap_err());
        assert!(e.contains("roles.swapper") && e.contains("'fastest'"), "{e}");
    }

    #[test]
    fn warmup_parsing() {
        assert_eq!(Warmup::parse("3").unwrap(), Warmup::Runs(3));
        assert_eq!(Warmup::parse("1.5s").unwrap(), Warmup::Seconds(1.5));
        assert!(Warmup::parse("abc").is_err());
        assert!(Warmup::parse("-1s").is_err());
    }
}
