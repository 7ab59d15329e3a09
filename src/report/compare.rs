//! `faceperf compare RUN.json REF.json…`: a run beside references, and which differences explain the
//! gap. Reads `bench` results (`bench-results/<profile>/*.json`) and `live --json` reports alike, through
//! their JSON, so older files and files from other branches' schemas compare as far as they carry the
//! facts: hardware, ORT, the execution provider and options of each role, models by sha256, per-model
//! and per-stage medians with their 95 % confidence intervals, the pipeline's FPS and verdict.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

/// A median with its 95 % confidence interval, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Median {
    pub median: f64,
    pub ci_lo: Option<f64>,
    pub ci_hi: Option<f64>,
}

impl Median {
    fn of(v: &Value) -> Option<Median> {
        Some(Median {
            median: v.get("median")?.as_f64()?,
            ci_lo: v.get("median_ci95_lo").and_then(Value::as_f64),
            ci_hi: v.get("median_ci95_hi").and_then(Value::as_f64),
        })
    }

    /// `12.345 [12.1, 12.6]`.
    pub fn text(&self) -> String {
        match (self.ci_lo, self.ci_hi) {
            (Some(lo), Some(hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", self.median),
            _ => format!("{:.3}", self.median),
        }
    }
}

/// One model of a run: the role's model under the run's profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelView {
    pub role: String,
    pub model: String,
    pub variant: String,
    pub sha256: Option<String>,
    /// ORT's provider name of the first provider.
    pub provider: String,
    /// Its options as ORT got them, `k=v` joined by spaces.
    pub options: String,
    pub ms: Option<Median>,
}

/// The facts of one results file that a comparison uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub path: PathBuf,
    /// `bench` or `live`.
    pub kind: String,
    pub hardware: Option<String>,
    pub ort: Option<String>,
    pub profile: Option<String>,
    pub models: Vec<ModelView>,
    /// Pipeline stages: name, median busy ms per frame it ran in, share of the run's time.
    pub stages: Vec<(String, Median, f64)>,
    pub fps: Option<f64>,
    pub source: Option<String>,
    /// Roles moved to the CPU provider, and notes saying nodes go to the CPU.
    pub cpu_fallbacks: Vec<String>,
    /// The bottleneck verdict's paragraph, when the run has one.
    pub verdict: Option<String>,
    /// True when the run waited for its source most of the time.
    pub source_capped: bool,
}

fn provider_name(kind: &str) -> String {
    match kind {
        "cpu" => "CPUExecutionProvider",
        "cuda" => "CUDAExecutionProvider",
        "tensorrt" => "TensorrtExecutionProvider",
        "coreml" => "CoreMLExecutionProvider",
        "directml" => "DmlExecutionProvider",
        other => other,
    }
    .to_string()
}

fn hardware(v: &Value) -> Option<String> {
    let h = v.get("hardware")?;
    let cpu = h.get("cpu_model").and_then(Value::as_str).unwrap_or("?");
    let cores = h.get("logical_cores").and_then(Value::as_u64).map(|c| format!(" ({c} cores)")).unwrap_or_default();
    let gpus: Vec<String> = h
        .get("gpus")
        .and_then(Value::as_array)
        .map(|g| g.iter().map(|x| x.to_string().replace('"', "")).collect())
        .unwrap_or_default();
    let gpu = if gpus.is_empty() { ", no GPU".to_string() } else { format!(", {}", gpus.join(" + ")) };
    Some(format!("{cpu}{cores}{gpu}"))
}

/// The model a bench run timed for each role: no A/B configuration, the profile's variant.
fn bench_models(v: &Value) -> Vec<ModelView> {
    let empty = vec![];
    let models = v.get("models").and_then(Value::as_array).unwrap_or(&empty);
    let roles = v.pointer("/profile/effective/roles");
    let mut out: Vec<ModelView> = Vec::new();
    for m in models {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("?").to_string();
        let variant = m.get("variant").and_then(Value::as_str).unwrap_or("original").to_string();
        let wanted =
            roles.and_then(|r| r.pointer(&format!("/{role}/variant"))).and_then(Value::as_str).unwrap_or("original");
        if !m.get("config").is_none_or(Value::is_null) || variant != wanted || out.iter().any(|o| o.role == role) {
            continue;
        }
        let kind = m.pointer("/providers/0/kind").and_then(Value::as_str).unwrap_or("cpu");
        let options = m
            .pointer("/ort_provider_options/0/options")
            .and_then(Value::as_array)
            .map(|o| {
                o.iter()
                    .filter_map(|kv| Some(format!("{}={}", kv.get(0)?.as_str()?, kv.get(1)?.as_str()?)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push(ModelView {
            role,
            model: m.get("model").and_then(Value::as_str).unwrap_or("?").to_string(),
            variant,
            sha256: m.get("sha256").and_then(Value::as_str).map(str::to_string),
            provider: provider_name(kind),
            options,
            ms: m.get("run_ms").and_then(Median::of),
        });
    }
    out
}

/// Stages of a live report (`[{stage, ms, share}]`) or of a bench pipeline (`[[name, ms]]` with
/// `stage_share`).
fn stages(p: &Value) -> Vec<(String, Median, f64)> {
    let empty = vec![];
    let list = p.get("stages").and_then(Value::as_array).unwrap_or(&empty);
    let shares = p.get("stage_share").and_then(Value::as_array);
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            if let Some(name) = s.get("stage").and_then(Value::as_str) {
                let share = s.get("share").and_then(Value::as_f64).unwrap_or(0.0);
                return Some((name.to_string(), Median::of(s.get("ms")?)?, share));
            }
            // A bench pipeline: `stage_share` runs parallel to `stages`.
            let share = shares.and_then(|sh| sh.get(i)).and_then(Value::as_f64).unwrap_or(0.0);
            Some((s.get(0)?.as_str()?.to_string(), Median::of(s.get(1)?)?, share))
        })
        .collect()
}

impl RunView {
    /// Reads a results file.
    pub fn load(path: &Path) -> Result<RunView> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        RunView::from_json(path, &v)
    }

    /// The view of parsed results.
    pub fn from_json(path: &Path, v: &Value) -> Result<RunView> {
        let is_bench = v.get("schema_version").is_some() && v.get("models").is_some_and(Value::is_array);
        let is_live = v.get("stages").is_some() && v.get("fps").is_some();
        if !is_bench && !is_live {
            bail!("{}: neither a bench result nor a live --json report", path.display());
        }
        let pipeline = if is_bench { v.get("pipeline").filter(|p| !p.is_null()) } else { Some(v) };
        let notes = |x: &Value| -> Vec<String> {
            x.get("notes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        let mut cpu_fallbacks: Vec<String> = v
            .get("fallbacks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| Some(format!("{} moved to {}", f.get("role")?.as_str()?, f.get("used")?.as_str()?)))
            .collect();
        let mut all_notes = notes(v);
        all_notes.extend(pipeline.map(notes).unwrap_or_default());
        cpu_fallbacks.extend(all_notes.into_iter().filter(|n| n.contains("go to the CPU provider")));
        let verdict = pipeline.and_then(|p| p.pointer("/verdict/text")).and_then(Value::as_str).map(str::to_string);
        let stage_list = pipeline.map(stages).unwrap_or_default();
        let capped_by_verdict = pipeline.and_then(|p| p.pointer("/verdict/source_capped")).and_then(Value::as_bool);
        let wait_share = stage_list.iter().find(|s| s.0 == "capture_wait").map(|s| s.2).unwrap_or(0.0);
        Ok(RunView {
            path: path.to_path_buf(),
            kind: if is_bench { "bench" } else { "live" }.into(),
            hardware: hardware(v),
            ort: v.pointer("/ort/version").and_then(Value::as_str).map(str::to_string),
            profile: v.pointer("/profile/name").and_then(Value::as_str).map(str::to_string),
            models: if is_bench { bench_models(v) } else { vec![] },
            stages: stage_list,
            fps: pipeline.and_then(|p| p.get("fps")).and_then(Value::as_f64),
            source: pipeline.and_then(|p| p.get("source")).and_then(Value::as_str).map(str::to_string),
            cpu_fallbacks,
            verdict,
            source_capped: capped_by_verdict.unwrap_or(wait_share > 0.5),
        })
    }
}

/// One difference that explains part of the gap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// `ep`, `hardware`, `ort`, `model`, `nodes_on_cpu`, `capped_source`, `fps`, `dominant_model`,
    /// `dominant_stage`, `cpu_bound_stage` or `verdict`.
    pub kind: String,
    pub text: String,
}

/// A run beside one reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub run: RunView,
    pub reference: RunView,
    /// The differences that explain the gap, most basic first (provider, hardware), then where the
    /// time goes (the dominant model and stage).
    pub explanations: Vec<Explanation>,
}

fn say(out: &mut Vec<Explanation>, kind: &str, text: String) {
    out.push(Explanation { kind: kind.into(), text });
}

/// Stages that run no model: their time is CPU work of the pipeline itself.
const CPU_STAGES: [&str; 7] = ["decode", "track", "align", "paste", "convert", "sink", "capture_wait"];

/// Sets `run` beside `reference` and explains the gap.
pub fn compare(run: &RunView, reference: &RunView) -> Comparison {
    let mut ex = Vec::new();
    setup_differences(run, reference, &mut ex);
    model_gap(run, reference, &mut ex);
    stage_gap(run, reference, &mut ex);
    if let Some(v) = &run.verdict {
        say(&mut ex, "verdict", format!("run's own verdict: {v}"));
    }
    Comparison { run: run.clone(), reference: reference.clone(), explanations: ex }
}

fn setup_differences(run: &RunView, r: &RunView, ex: &mut Vec<Explanation>) {
    for m in &run.models {
        if let Some(o) = r.models.iter().find(|o| o.role == m.role) {
            if m.provider != o.provider {
                say(
                    ex,
                    "ep",
                    format!(
                        "{}: another execution provider, {} here vs {} in the reference",
                        m.role, m.provider, o.provider
                    ),
                );
            } else if m.options != o.options {
                say(ex, "ep", format!("{}: {} options differ: {} vs {}", m.role, m.provider, m.options, o.options));
            }
            if m.sha256.is_some() && o.sha256.is_some() && m.sha256 != o.sha256 {
                let short =
                    |s: &Option<String>| s.as_deref().map(|x| x[..12.min(x.len())].to_string()).unwrap_or_default();
                say(
                    ex,
                    "model",
                    format!(
                        "{}: another model file, {} {} vs {} {} (sha256)",
                        m.role,
                        m.model,
                        short(&m.sha256),
                        o.model,
                        short(&o.sha256)
                    ),
                );
            }
        }
    }
    if run.hardware != r.hardware && run.hardware.is_some() && r.hardware.is_some() {
        let h = |x: &Option<String>| x.clone().unwrap_or_else(|| "unknown".into());
        say(ex, "hardware", format!("other hardware: {} vs {}", h(&run.hardware), h(&r.hardware)));
    }
    if run.ort != r.ort && run.ort.is_some() && r.ort.is_some() {
        say(
            ex,
            "ort",
            format!("ONNX Runtime {} vs {}", run.ort.as_deref().unwrap_or("?"), r.ort.as_deref().unwrap_or("?")),
        );
    }
    for (who, v) in [("here", run), ("in the reference", r)] {
        for f in &v.cpu_fallbacks {
            say(ex, "nodes_on_cpu", format!("nodes on the CPU {who}: {f}"));
        }
        if v.source_capped {
            say(
                ex,
                "capped_source",
                format!(
                    "the source caps the run {who}: the pipeline waits for frames most of the time ({})",
                    v.source.as_deref().unwrap_or("?")
                ),
            );
        }
    }
    if let (Some(a), Some(b)) = (run.fps, r.fps) {
        let ratio =
            if a >= b { format!("{:.2}× higher", a / b.max(1e-9)) } else { format!("{:.2}× lower", b / a.max(1e-9)) };
        say(ex, "fps", format!("pipeline FPS {a:.1} here vs {b:.1} in the reference ({ratio})"));
    }
}

fn model_gap(run: &RunView, r: &RunView, ex: &mut Vec<Explanation>) {
    let pairs: Vec<(&ModelView, f64, f64)> = run
        .models
        .iter()
        .filter_map(|m| {
            let o = r.models.iter().find(|o| o.role == m.role)?;
            Some((m, m.ms?.median, o.ms?.median))
        })
        .collect();
    let gap: f64 = pairs.iter().map(|(_, a, b)| (a - b).abs()).sum();
    let Some((m, a, b)) = pairs.iter().max_by(|x, y| (x.1 - x.2).abs().total_cmp(&(y.1 - y.2).abs())) else { return };
    say(
        ex,
        "dominant_model",
        format!(
            "{} ({}) dominates the model-time gap: {a:.3} ms here vs {b:.3} ms in the reference ({:+.3} ms, {:.0} % of the {gap:.3} ms summed over {} roles)",
            m.role,
            m.model,
            a - b,
            100.0 * (a - b).abs() / gap.max(1e-12),
            pairs.len()
        ),
    );
}

/// Busy ms per delivered frame of a stage: its share of the run's time over the frame interval.
fn per_frame(v: &RunView, share: f64, median: f64) -> f64 {
    v.fps.filter(|f| *f > 0.0).map(|f| share * 1000.0 / f).unwrap_or(median)
}

fn stage_gap(run: &RunView, r: &RunView, ex: &mut Vec<Explanation>) {
    let pairs: Vec<(&str, f64, f64)> = run
        .stages
        .iter()
        .filter(|s| s.0 != "capture_wait")
        .filter_map(|(name, m, share)| {
            let (_, om, oshare) = r.stages.iter().find(|o| &o.0 == name)?;
            Some((name.as_str(), per_frame(run, *share, m.median), per_frame(r, *oshare, om.median)))
        })
        .collect();
    let gap: f64 = pairs.iter().map(|(_, a, b)| (a - b).abs()).sum();
    let Some(&(name, a, b)) = pairs.iter().max_by(|x, y| (x.1 - x.2).abs().total_cmp(&(y.1 - y.2).abs())) else {
        return;
    };
    say(
        ex,
        "dominant_stage",
        format!(
            "stage {name} dominates the pipeline gap: {a:.2} ms per frame here vs {b:.2} ms ({:.0} % of the {gap:.2} ms summed over {} stages)",
            100.0 * (a - b).abs() / gap.max(1e-12),
            pairs.len()
        ),
    );
    // The run's largest stage per frame, when it runs no model, is CPU-bound pipeline work.
    let largest = run
        .stages
        .iter()
        .filter(|s| s.0 != "capture_wait")
        .max_by(|x, y| per_frame(run, x.2, x.1.median).total_cmp(&per_frame(run, y.2, y.1.median)));
    if let Some((name, m, share)) = largest.filter(|s| CPU_STAGES.contains(&s.0.as_str())) {
        say(
            ex,
            "cpu_bound_stage",
            format!(
                "{name} runs no model and is the run's largest stage ({:.2} ms per frame): CPU-bound here",
                per_frame(run, *share, m.median)
            ),
        );
    }
}

/// The comparison as text: the setups and medians side by side, then the explanations.
pub fn render(c: &Comparison) -> String {
    let (a, b) = (&c.run, &c.reference);
    let mut out = String::new();
    let row = |out: &mut String, k: &str, x: String, y: String| {
        let _ = writeln!(out, "{k:<22} {x:<44} {y}");
    };
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    row(&mut out, "", "RUN".into(), "REFERENCE".into());
    row(&mut out, "file", a.path.display().to_string(), b.path.display().to_string());
    row(&mut out, "kind", a.kind.clone(), b.kind.clone());
    row(&mut out, "hardware", opt(&a.hardware), opt(&b.hardware));
    row(&mut out, "onnxruntime", opt(&a.ort), opt(&b.ort));
    row(&mut out, "profile", opt(&a.profile), opt(&b.profile));
    let mut roles: Vec<&str> = a.models.iter().map(|m| m.role.as_str()).collect();
    roles.extend(b.models.iter().map(|m| m.role.as_str()).filter(|r| !a.models.iter().any(|m| m.role == *r)));
    for role in roles {
        let get = |v: &RunView| v.models.iter().find(|m| m.role == role).cloned();
        let (x, y) = (get(a), get(b));
        let ep = |m: &Option<ModelView>| {
            m.as_ref().map(|m| format!("{} {}", m.provider, m.options)).unwrap_or_else(|| "-".into())
        };
        let file = |m: &Option<ModelView>| {
            m.as_ref()
                .map(|m| {
                    format!(
                        "{} ({}) {}",
                        m.model,
                        m.variant,
                        m.sha256.as_deref().map(|s| &s[..12.min(s.len())]).unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "-".into())
        };
        let ms = |m: &Option<ModelView>| m.as_ref().and_then(|m| m.ms).map(|s| s.text()).unwrap_or_else(|| "-".into());
        row(&mut out, &format!("{role} EP"), ep(&x), ep(&y));
        row(&mut out, &format!("{role} model"), file(&x), file(&y));
        row(&mut out, &format!("{role} median ms"), ms(&x), ms(&y));
    }
    for (name, m, _) in &a.stages {
        let other = b.stages.iter().find(|s| &s.0 == name).map(|s| s.1.text()).unwrap_or_else(|| "-".into());
        row(&mut out, &format!("stage {name} ms"), m.text(), other);
    }
    let fps = |v: &RunView| v.fps.map(|f| format!("{f:.1}")).unwrap_or_else(|| "-".into());
    row(&mut out, "pipeline FPS", fps(a), fps(b));
    let _ = writeln!(out, "\nwhat explains the gap:");
    for e in &c.explanations {
        let _ = writeln!(out, "- [{}] {}", e.kind, e.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(fps: f64, stages: &[(&str, f64, f64)]) -> Value {
        let st: Vec<Value> = stages
            .iter()
            .map(|(n, med, share)| serde_json::json!({"stage": n, "ms": {"median": med}, "share": share}))
            .collect();
        serde_json::json!({"source": "synthetic", "fps": fps, "stages": st, "notes": []})
    }

    #[test]
    fn a_cpu_bound_paste_and_a_capped_source_are_named() {
        let run = RunView::from_json(Path::new("run.json"), &live(10.0, &[("swap", 20.0, 0.2), ("paste", 60.0, 0.6)]))
            .unwrap();
        let reference = RunView::from_json(
            Path::new("ref.json"),
            &live(30.0, &[("capture_wait", 25.0, 0.75), ("swap", 3.0, 0.09), ("paste", 2.0, 0.06)]),
        )
        .unwrap();
        let c = compare(&run, &reference);
        let kinds: Vec<&str> = c.explanations.iter().map(|e| e.kind.as_str()).collect();
        assert!(kinds.contains(&"capped_source") && reference.source_capped && !run.source_capped, "{kinds:?}");
        let dom = c.explanations.iter().find(|e| e.kind == "dominant_stage").unwrap();
        // paste: 0.6 × 100 ms = 60 ms vs 0.06 × 33.3 = 2 ms per frame.
        assert!(
            dom.text.starts_with("stage paste dominates") && dom.text.contains("60.00 ms per frame here vs 2.00 ms"),
            "{}",
            dom.text
        );
        assert!(c.explanations.iter().any(|e| e.kind == "cpu_bound_stage" && e.text.starts_with("paste")));
        assert!(render(&c).contains("what explains the gap:"));
    }

    #[test]
    fn other_files_are_refused_by_name() {
        let e = RunView::from_json(Path::new("x.json"), &serde_json::json!({"a": 1})).unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("neither"), "{e}");
    }
}
