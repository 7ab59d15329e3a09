//! The benchmark engine on tiny replicas and ORT's CPU provider: the IOBinding path gives the same
//! outputs as plain runs, and a run writes CSV + JSON with every provenance field.

use std::path::Path;

use faceperf::bench::inputs::Photo;
use faceperf::bench::model::{compare_outputs, ModelJob, Prepared};
use faceperf::bench::results::read_csv;
use faceperf::bench::{self, BenchOptions};
use faceperf::models::synth::ensure_replicas;
use faceperf::models::{Role, Scale};
use faceperf::profile::{LoadedProfile, Profile, Variant};
use faceperf::runtime::binding::BindDevice;
use faceperf::runtime::{self, SessionConfig};

fn job(role: Role, path: &Path, io_binding: bool) -> ModelJob<'_> {
    ModelJob { role, variant: Variant::Original, path, session: SessionConfig::cpu(1), io_binding, fallback: false }
}

#[test]
fn bound_bench_path_gives_the_same_outputs_as_plain_runs() {
    let rt = runtime::init(None).unwrap();
    let dir = ensure_replicas(Scale::Tiny).unwrap();
    let photo = Photo::astronaut().unwrap();
    for role in Role::ALL {
        let path = dir.join(role.default_file());
        let bound_job = job(role, &path, true);
        assert_eq!(bound_job.bind_device(), Some(BindDevice::Cpu));
        assert_eq!(job(role, &path, false).bind_device(), None);
        let mut plain = Prepared::new(rt, &bound_job, &bound_job.session, &photo, None).unwrap();
        let mut bound = Prepared::new(rt, &bound_job, &bound_job.session, &photo, bound_job.bind_device()).unwrap();
        // The same seeded inputs on both paths, and the bound session already ran once (its probe).
        assert_eq!(plain.inputs, bound.inputs, "{role:?}");
        assert!(bound.first_run.is_some() && plain.first_run.is_none());
        let expected = plain.outputs().unwrap();
        for _ in 0..3 {
            bound.run_once().unwrap();
            let got = bound.outputs().unwrap();
            let (max, identical) = compare_outputs(&expected, &got).unwrap();
            assert!(identical, "{role:?}: bound outputs differ by {max}");
        }
        // A real input, not the zeros the binding was probed with, produced them.
        assert!(expected.iter().any(|(_, t)| t.to_f32s().iter().any(|v| *v != 0.0)), "{role:?}");
    }
}

fn out_of_tree() -> std::path::PathBuf {
    std::env::temp_dir().join("faceperf-no-such-model").join("inswapper_128.onnx")
}

const PROFILE: &str = r#"
name = "test-bench"
description = "tiny replicas, CPU, swapper bound through IOBinding with CUDA graphs asked for"

[bench]
scale = "tiny"
variants = ["original", "fp16"]
warmup = { seconds = 0.01 }
runs = 4
min_runs = 2
time_budget_s = 0.5
op_profile_runs = 1
cuda_graph_ab = true
pipeline_frames = 4
rounds = 2

[roles.swapper]
providers = [{ kind = "cuda", device_id = 0, cudnn_conv_algo_search = "heuristic", use_tf32 = false, cuda_graph = true }]
io_binding = true

[roles.detector]
providers = [{ kind = "cpu" }]
intra_threads = 1
"#;

#[test]
fn bench_run_writes_csv_and_json_with_provenance() {
    let rt = runtime::init(None).unwrap();
    let profile = Profile::parse(PROFILE, "test").unwrap();
    let has_cuda = rt.has_provider("CUDAExecutionProvider");
    let loaded = LoadedProfile { profile, source: "test".into(), content: PROFILE.into() };
    let opts = BenchOptions {
        profile: loaded.clone(),
        fallback_cpu: true,
        models_dir: None,
        roles: vec![Role::Detector, Role::Swapper],
        variants: None,
        top_n: 3,
        image: None,
        quiet: true,
        command_line: vec!["faceperf".into(), "bench".into(), "--profile".into(), "test".into()],
        ..BenchOptions::new(loaded)
    };
    let report = bench::run(rt, &opts).unwrap();

    // Variants side by side, in a fixed order: each role's original, then its fp16 variant, made
    // (or reused) through `faceperf optimize`'s cache.
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let order: Vec<(Role, Variant)> = report.models.iter().map(|m| (m.role, m.variant)).collect();
    assert_eq!(
        order,
        [
            (Role::Detector, Variant::Original),
            (Role::Detector, Variant::Fp16),
            (Role::Swapper, Variant::Original),
            (Role::Swapper, Variant::Fp16)
        ]
    );
    for m in &report.models {
        match m.variant {
            Variant::Original => assert!(m.variant_origin.is_none()),
            _ => {
                let o = m.variant_origin.as_ref().unwrap();
                assert_eq!(o.recipe, "fp16");
                assert!(m.file.to_string_lossy().ends_with("_fp16.onnx") && o.sidecar.is_file());
            }
        }
    }
    // fp16 against original, once per role, in the report and as CSV rows.
    assert_eq!(report.comparisons.len(), 2, "{:?}", report.comparisons);
    for c in &report.comparisons {
        assert_eq!(c.kind, "variant");
        assert!(c.candidate.ends_with("_fp16") && c.speedup > 0.0 && c.speedup.is_finite(), "{c:?}");
    }
    let swapper = report.models.iter().find(|m| m.role == Role::Swapper && m.variant == Variant::Original).unwrap();
    let detector = report.models.iter().find(|m| m.role == Role::Detector && m.variant == Variant::Original).unwrap();
    assert!(detector.binding.is_none());
    assert_eq!(detector.intra_threads, 1);
    if !has_cuda {
        // `--fallback cpu` moved the swapper to the CPU provider and says so; it still runs bound.
        assert_eq!(report.fallbacks.len(), 1);
        assert_eq!(report.fallbacks[0].role, Role::Swapper);
        assert!(swapper.fallback);
        let b = swapper.binding.as_ref().expect("swapper is bound");
        assert_eq!(b.device, "cpu");
        assert!(!b.cuda_graph_requested && !b.cuda_graph_active && b.graph_fallback.is_none());
        let check = b.check.as_ref().unwrap();
        assert!(check.identical && check.max_abs_diff == Some(0.0) && check.error.is_none(), "{check:?}");
        assert_eq!(swapper.ort_provider_options[0].provider, "CPUExecutionProvider");
    }
    for m in &report.models {
        assert_eq!(m.sha256.len(), 64);
        assert!(m.session_create_ms > 0.0 && m.first_run_ms > 0.0);
        // Each round's fresh session ran once before its measured runs (the first run may be its whole warm-up).
        assert!(m.rounds.iter().all(|r| r.first_run_ms > 0.0));
        assert!((2..=4).contains(&m.run_ms.n) && m.samples_ms.len() == m.run_ms.n);
        let s = &m.run_ms;
        assert!(s.min <= s.median && s.median <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.max);
        assert!(s.median_ci95_lo <= s.median && s.median <= s.median_ci95_hi);
        let op = m.op_profile.as_ref().expect("per-op profile");
        assert!(!op.by_op_type.is_empty() && op.by_op_type.len() <= 3 && op.by_node.len() <= 3);
    }

    // Two rounds, interleaved: round 0 in job order, round 1 reversed (A B B A), each round's runs the
    // next entries of samples_ms, and the median's interval computed over the rounds.
    assert_eq!(report.settings.rounds, 2);
    let jobs = report.models.len();
    for (j, m) in report.models.iter().enumerate() {
        let rounds: Vec<(usize, usize)> = m.rounds.iter().map(|r| (r.round, r.position)).collect();
        assert_eq!(rounds, vec![(0, j), (1, jobs - 1 - j)], "{}", m.model);
        assert_eq!(m.rounds.iter().map(|r| r.n).sum::<usize>(), m.samples_ms.len());
        assert!(m.rounds.iter().all(|r| (1..=2).contains(&r.n) && r.min <= r.median && r.median <= r.max));
        assert!(m.rounds[0].started_s <= m.rounds[1].started_s);
        let ci = m.median_ci.as_ref().expect("interval over rounds");
        assert_eq!((ci.rounds, ci.round_medians.len()), (2, 2));
        assert_eq!(
            (ci.median, ci.ci95_lo, ci.ci95_hi),
            (m.run_ms.median, m.run_ms.median_ci95_lo, m.run_ms.median_ci95_hi)
        );
        assert!(ci.rerun95_lo <= ci.ci95_lo && ci.ci95_hi <= ci.rerun95_hi);
        let q = m.quality.as_ref().expect("quality");
        assert_eq!(q.ci_width_limit_pct, 3.0);
        assert_eq!(q.ci_too_wide, ci.half_width_pct > 3.0);
        assert_eq!(q.ci_too_wide, m.warnings.iter().any(|w| w.contains("wider than the stated")));
    }
    // Each comparison carries its paired interval, the verdict and the noise threshold.
    for c in &report.comparisons {
        let ci = c.ci.as_ref().expect("paired interval");
        assert_eq!((ci.rounds, ci.round_ratios.len(), ci.noise_threshold_pct), (2, 2, 2.0));
        let (lo, hi) = c.speedup_ci95().unwrap();
        assert!(lo <= c.speedup && c.speedup <= hi, "{c:?}");
    }
    // The machine's state before and after.
    let (a, b) = (report.machine_start.as_ref().unwrap(), report.machine_end.as_ref().unwrap());
    assert_eq!(report.load_average_start, a.load_average);
    assert_eq!(report.load_average_end, b.load_average);

    // A variant that cannot be made is reported with its reason, not measured.
    let e = bench::variant_file(rt, &out_of_tree(), Role::Swapper, Variant::Fp16, None).unwrap_err();
    assert!(e.contains("not found"), "{e}");
    // So is a missing original: listed, not attempted as a job.
    let e = bench::variant_file(rt, &out_of_tree(), Role::Swapper, Variant::Original, None).unwrap_err();
    assert!(e.contains("not found"), "{e}");

    // The live pipeline ran in measure mode after the models, with per-stage statistics.
    assert!(report.notes.iter().all(|n| !n.contains("pipeline run failed")), "{:?}", report.notes);
    let p = report.pipeline.as_ref().expect("pipeline measured");
    assert_eq!(p.frames, 4);
    assert!(p.fps > 0.0 && p.stage_share.len() == p.stages.len());
    let swap = p.stages.iter().find(|(s, _)| s == "swap").expect("swap stage");
    assert!(swap.1.n >= 1 && swap.1.median > 0.0);

    let out = tempfile::tempdir().unwrap();
    let (csv, json) = report.write(out.path(), "20250101T000000Z").unwrap();
    assert!(csv.starts_with(out.path().join("test-bench")));
    let rows = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    let has = |role: &str, stage: &str, stat: &str| {
        rows.iter().any(|r| r.role == role && r.stage.starts_with(stage) && r.statistic == stat)
    };
    for stat in ["n", "min", "median", "mean", "p90", "p99", "stddev", "median_ci95_lo", "median_ci95_hi", "outliers"] {
        assert!(has("swapper", "run", stat), "{stat}");
    }
    assert!(has("detector", "session_create", "value") && has("detector", "first_run", "value"));
    assert!(has("detector", "warmup", "runs") && has("detector", "op_type:", "ms_per_run"));
    assert!(has("detector", "op_node:", "percent"));
    assert!(has("swapper", "speedup_vs:inswapper_128", "variant"));
    for stat in ["variant_ci95_lo", "variant_ci95_hi", "variant_verdict"] {
        assert!(has("swapper", "speedup_vs:inswapper_128", stat), "{stat}");
    }
    for stat in ["rounds", "ci_halfwidth", "rerun95_lo", "rerun95_hi", "ci_too_wide", "rounds_disagree"] {
        assert!(has("detector", "run", stat), "{stat}");
    }
    assert!(has("detector", "round:1", "median"));
    assert!(has("pipeline", "pipeline:swap", "median") && has("pipeline", "pipeline:total", "fps"));
    if !has_cuda {
        assert!(rows.iter().any(|r| r.role == "swapper"
            && r.stage == "binding"
            && r.statistic == "max_abs_diff_vs_plain"
            && r.value == 0.0));
    }

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for ptr in [
        "/hardware/cpu_model",
        "/hardware/logical_cores",
        "/hardware/memory_bytes",
        "/hardware/gpus",
        "/hardware/os",
        "/ort/version",
        "/ort/library",
        "/tool/version",
        "/tool/git_commit",
        "/profile/content",
        "/command_line/2",
        "/models/0/sha256",
        "/models/0/providers/0/kind",
        "/models/0/ort_provider_options/0/options",
        "/models/0/op_profile/by_node",
        "/settings/input_seed",
        "/settings/rounds",
        "/settings/ci_method",
        "/settings/ci_width_limit_pct",
        "/settings/noise_threshold_pct",
        "/machine_start",
        "/machine_end",
        "/models/0/rounds/1/position",
        "/models/0/median_ci/rerun95_hi",
        "/models/0/quality/ci_too_wide",
        "/comparisons/0/ci/verdict",
    ] {
        assert!(v.pointer(ptr).is_some_and(|x| !x.is_null()), "{ptr} missing");
    }
    assert_eq!(v.pointer("/profile/content").unwrap().as_str().unwrap(), PROFILE);
    assert_eq!(v.pointer("/ort/version").unwrap().as_str().unwrap(), rt.version);
}

/// The test-only A/B twin runs end to end: every job gets a twin (`@ab-twin`) measured in the same
/// rounds, its samples multiplied by the planted factor, and an `ab_twin` comparison from paired
/// rounds. The verdict on real timings is not asserted (it depends on the machine's noise): the
/// verdicts themselves are tested on synthetic rounds in `bench::rounds` and `bench::results`.
#[test]
fn test_ab_twins_run_in_the_same_rounds() {
    let rt = runtime::init(None).unwrap();
    let text = PROFILE
        .replace("op_profile_runs = 1", "op_profile_runs = 0")
        .replace("rounds = 2", "rounds = 3")
        .replace("pipeline_frames = 4", "pipeline_frames = 0");
    let profile = Profile::parse(&text, "test").unwrap();
    let loaded = LoadedProfile { profile, source: "test".into(), content: text };
    let opts = BenchOptions {
        fallback_cpu: true,
        roles: vec![Role::Detector],
        variants: Some(vec![Variant::Original]),

        test_ab_slowdown_pct: Some(10.0),
        ..BenchOptions::new(loaded)
    };
    let report = bench::run(rt, &opts).unwrap();
    let names: Vec<&str> = report.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(names, ["det_10g", "det_10g@ab-twin"]);
    let twin = &report.models[1];
    assert_eq!((twin.config.as_deref(), twin.planted_slowdown), (Some("ab-twin"), Some(1.1)));
    assert!(twin.warnings.iter().any(|w| w.starts_with("TEST ONLY")));
    assert!(report.notes.iter().any(|n| n.starts_with("TEST ONLY")));
    // A B, B A, A B.
    let order: Vec<usize> = report.models[0].rounds.iter().map(|r| r.position).collect();
    assert_eq!(order, [0, 1, 0]);
    assert_eq!(report.comparisons.len(), 1);
    let c = &report.comparisons[0];
    assert_eq!((c.kind.as_str(), c.baseline.as_str(), c.candidate.as_str()), ("ab_twin", "det_10g", "det_10g@ab-twin"));
    let ci = c.ci.as_ref().unwrap();
    assert_eq!(ci.round_ratios.len(), 3);
    assert!(ci.ci95_lo <= ci.time_ratio && ci.time_ratio <= ci.ci95_hi, "{ci:?}");
    assert!(ci.method.contains("paired"));
}
