//! `faceperf report`: reports from fixture results written by the real results writer. The markdown's
//! numbers equal the CSV's, empty or malformed results give errors naming the file and line, the
//! baseline view marks a stage slower only beyond the confidence interval, and the published M3 Max
//! numbers are always labelled as published.

use std::path::{Path, PathBuf};

use faceperf::bench::results::{
    read_csv, BenchReport, InputInfo, ModelResult, OrtInfo, ProfileInfo, Settings, ToolInfo, CSV_HEADER, SCHEMA_VERSION,
};
use faceperf::bench::stats::Summary;
use faceperf::models::Role;
use faceperf::profile::{Profile, Variant, Warmup};
use faceperf::report::load::{Selection, PUBLISHED_LABEL};
use faceperf::report::regress::Verdict;
use faceperf::report::{generate, Generated, ReportOptions};
use faceperf::util::hw::Hardware;
use faceperf::util::rng::Rng;

/// `n` samples around `center` ms with a ±`spread` uniform jitter, seeded.
fn samples(center: f64, spread: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| center + spread * ((rng.next_u64() % 10_000) as f64 / 5_000.0 - 1.0)).collect()
}

fn model(role: Role, variant: Variant, samples_ms: Vec<f64>) -> ModelResult {
    let stem = role.default_file().trim_end_matches(".onnx").to_string();
    let run_ms = Summary::of(&samples_ms).expect("samples");
    ModelResult {
        model: format!("{stem}{}", variant.suffix()),
        role,
        variant,
        file: PathBuf::from(format!("/nonexistent/{stem}{}.onnx", variant.suffix())),
        sha256: format!("{:064x}", role as u64 + 1),
        bytes: 1000,
        providers: vec![Default::default()],
        ort_provider_options: vec![],
        binding: None,
        variant_origin: None,
        config: None,
        intra_threads: 2,
        optimization: "all".into(),
        io_binding: false,
        fallback: false,
        inputs: vec![InputInfo { name: "x".into(), dtype: "f32".into(), dims: vec![1, 3, 8, 8] }],
        session_create_ms: 12.0,
        first_run_ms: 3.0 * run_ms.median,
        warmup_runs: 2,
        warmup_ms: 2.0 * run_ms.median,
        run_ms,
        samples_ms,
        warnings: vec![],
        op_profile: None,
        rounds: vec![],
        median_ci: None,
        quality: None,
        planted_slowdown: None,
    }
}

/// A measured run of the built-in cpu profile renamed `name`, with the given models.
fn run_report(name: &str, models: Vec<ModelResult>) -> BenchReport {
    let loaded = Profile::builtin("cpu").expect("cpu profile");
    let mut effective = loaded.profile.clone();
    effective.name = name.into();
    // These fixtures measure the original models of every role (the built-in profile's swapper
    // runs its int8 variant).
    effective.roles.swapper.variant = faceperf::profile::Variant::Original;
    BenchReport {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo {
            name: "faceperf".into(),
            version: "0.1.0".into(),
            git_commit: "0123456789abcdef".into(),
            build_commit: String::new(),
        },
        command_line: vec!["faceperf".into(), "bench".into(), "--profile".into(), "cpu".into()],
        started_utc: "2026-01-02T03:04:05Z".into(),
        finished_utc: "2026-01-02T03:05:05Z".into(),
        hardware: Hardware {
            os: "linux".into(),
            os_version: "Test OS".into(),
            kernel: "6.1".into(),
            arch: "x86_64".into(),
            hostname: "fixture".into(),
            cpu_model: "Fixture CPU".into(),
            logical_cores: 2,
            physical_cores: Some(1),
            memory_bytes: 8 << 30,
            gpus: vec![],
        },
        ort: OrtInfo {
            version: "1.23.2".into(),
            library: "/opt/ort/libonnxruntime.so".into(),
            source: "fixture".into(),
            providers: vec!["CPUExecutionProvider".into()],
        },
        profile: ProfileInfo { name: name.into(), source: "builtin:cpu".into(), content: loaded.content, effective },
        fallbacks: vec![],
        comparisons: vec![],
        settings: Settings {
            models_dir: "models/replica-full".into(),
            warmup: Warmup::Runs(2),
            runs: 30,
            min_runs: 8,
            time_budget_s: 12.0,
            op_profile_runs: 0,
            top_n: 10,
            input_seed: 7,
            input_image: "astronaut.png".into(),
            input_face_box: (0, 0, 128),
            bootstrap_resamples: 2000,
            bootstrap_seed: 1,
            rounds: 0,
            round_order: String::new(),
            sessions: String::new(),
            ci_method: String::new(),
            ci_width_limit_pct: 3.0,
            noise_threshold_pct: 2.0,
        },
        models,
        missing: vec![],
        pipeline: None,
        notes: vec![],
        load_average_start: Some([0.1, 0.1, 0.1]),
        load_average_end: Some([0.2, 0.1, 0.1]),
        machine_start: None,
        machine_end: None,
        machine_changes: vec![],
        monitor: None,
    }
}

/// Every role's original model at the given centre latencies (ms).
fn all_roles(centers: [f64; 5], seed: u64) -> Vec<ModelResult> {
    Role::ALL
        .iter()
        .zip(centers)
        .enumerate()
        .map(|(i, (&role, c))| model(role, Variant::Original, samples(c, 0.05 * c, 25, seed + i as u64)))
        .collect()
}

fn write_run(results: &Path, report: &BenchReport, stamp: &str) -> PathBuf {
    report.write(results, stamp).expect("write results").0
}

fn options(results: &Path, out: &Path, profiles: &[&str], baseline: Option<&str>) -> ReportOptions {
    ReportOptions {
        results: results.to_path_buf(),
        selections: profiles.iter().map(|p| Selection::parse(p).unwrap()).collect(),
        baseline: baseline.map(|b| Selection::parse(b).unwrap()),
        out: out.to_path_buf(),
        name: "test".into(),
        command_line: vec![],
        ci_width_pct: None,
    }
}

/// The section of `md` under `## title`, up to the next `## `.
fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let start = md.find(&format!("## {title}\n")).unwrap_or_else(|| panic!("no section {title}"));
    let rest = &md[start + 3..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// Table rows (cells) of a markdown section, header and separator skipped.
fn table_rows(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// True when the printed number `shown` is `value` rounded to the digits it shows.
fn same_number(shown: &str, value: f64) -> bool {
    let Ok(x) = shown.parse::<f64>() else { return false };
    let decimals = shown.split_once('.').map(|(_, d)| d.len()).unwrap_or(0) as i32;
    (x - value).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-12
}

#[test]
fn markdown_numbers_equal_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let csv = write_run(&results, &run_report("cpu", all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 1)), "20260102T030405Z");
    let g: Generated = generate(&options(&results, &dir.path().join("reports"), &["cpu"], None)).unwrap();
    let md = std::fs::read_to_string(&g.markdown).unwrap();
    let rows = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    let csv_value = |model: &str, stat: &str| {
        rows.iter().find(|r| r.model == model && r.stage == "run" && r.statistic == stat).map(|r| r.value).unwrap()
    };

    // Distribution table: every statistic cell equals its CSV row.
    let dist = table_rows(section(&md, "Latency distributions"));
    assert_eq!(dist.len(), 5, "one row per model");
    let stats = ["n", "min", "median", "mean", "p90", "p99", "max", "stddev", "outliers"];
    for r in &dist {
        let model = r[1].trim_matches('`');
        for (k, stat) in stats.iter().enumerate() {
            let v = csv_value(model, stat);
            assert!(same_number(&r[3 + k], v), "{model} {stat}: markdown {} vs CSV {v}", r[3 + k]);
        }
    }

    // Stage table: `median [lo, hi]` per role equals the CSV's median and CI.
    let stages = table_rows(section(&md, "Per-stage comparison"));
    assert_eq!(stages.len(), 5);
    for r in &stages {
        let role = &r[0];
        let model = Role::ALL.iter().find(|x| x.name() == role).unwrap().default_file().trim_end_matches(".onnx");
        let cell = &r[1];
        let (median, rest) = cell.split_once(" [").unwrap();
        let (lo, rest) = rest.split_once(", ").unwrap();
        let (hi, _) = rest.split_once(']').unwrap();
        assert!(same_number(median, csv_value(model, "median")), "{role}: {cell}");
        assert!(same_number(lo, csv_value(model, "median_ci95_lo")), "{role}: {cell}");
        assert!(same_number(hi, csv_value(model, "median_ci95_hi")), "{role}: {cell}");
    }

    // Headline: FPS estimated from the sum of the per-frame model medians.
    let swap_ms: f64 =
        ["det_10g", "2d106det", "w600k_r50", "inswapper_128"].iter().map(|m| csv_value(m, "median")).sum();
    let head = table_rows(section(&md, "Headline"));
    let fps = head[0][2].trim_start_matches("≈ ").split(' ').next().unwrap().to_string();
    assert!(same_number(&fps, 1000.0 / swap_ms), "headline {fps} vs {}", 1000.0 / swap_ms);

    // Provenance and reproduction.
    let prov = section(&md, "Provenance");
    for needle in ["Fixture CPU", "1.23.2", "0123456789abcdef", "CPUExecutionProvider", &format!("{:016x}", 0)] {
        assert!(prov.contains(needle) || md.contains(needle), "provenance lacks {needle}");
    }
    let repro = section(&md, "How to reproduce");
    assert!(repro.contains("git checkout 0123456789abcdef"));
    assert!(repro.contains("cargo run --release -- bench --profile cpu"));
    assert!(repro.contains("models synth --scale full"));

    // Figures: SVG and PNG for headline, stages, stacked frame, rewrites and the distribution.
    assert_eq!(g.figures.len(), 5);
    for f in &g.figures {
        let png = image::open(&f.png).unwrap_or_else(|e| panic!("{}: {e}", f.png.display()));
        assert!(png.width() >= 1000 && png.height() >= 400, "{} is {}x{}", f.png.display(), png.width(), png.height());
        let svg = std::fs::read_to_string(&f.svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<text"), "{}", f.svg.display());
        assert!(md.contains(&format!("figures/{}", f.png.file_name().unwrap().to_string_lossy())));
    }
}

#[test]
fn empty_or_malformed_results_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let out = dir.path().join("reports");
    let err = |opts: &ReportOptions| format!("{:#}", generate(opts).expect_err("must fail"));

    // No results folder, then an empty one.
    assert!(err(&options(&results, &out, &[], None)).contains("does not exist"));
    std::fs::create_dir_all(&results).unwrap();
    assert!(err(&options(&results, &out, &[], None)).contains("holds no results"));
    std::fs::create_dir_all(results.join("cpu")).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains("holds no results CSV"), "{e}");
    assert!(err(&options(&results, &out, &["nosuch"], None)).contains("no results for profile 'nosuch'"));

    let csv = write_run(&results, &run_report("cpu", all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 1)), "20260102T030405Z");
    let json = csv.with_extension("json");
    let good_csv = std::fs::read_to_string(&csv).unwrap();
    let good_json = std::fs::read_to_string(&json).unwrap();
    let name = csv.display().to_string();

    // Empty CSV.
    std::fs::write(&csv, "").unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&name) && e.contains("line 1") && e.contains("empty"), "{e}");
    // Header only.
    std::fs::write(&csv, format!("{}\n", CSV_HEADER.join(","))).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&name) && e.contains("no result rows"), "{e}");
    // Wrong header.
    std::fs::write(&csv, "a,b,c\n1,2,3\n").unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&name) && e.contains("line 1") && e.contains("header"), "{e}");
    // A value that is not a number on line 4.
    let mut lines: Vec<String> = good_csv.lines().map(String::from).collect();
    let mut f: Vec<&str> = lines[3].split(',').collect();
    f[6] = "fast";
    lines[3] = f.join(",");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&name) && e.contains("line 4") && e.contains("'fast'"), "{e}");
    // A short row on line 3.
    let mut lines: Vec<String> = good_csv.lines().map(String::from).collect();
    lines[2] = "cpu,det_10g,detector".into();
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&name) && e.contains("line 3") && e.contains("fields"), "{e}");
    // A non-finite value.
    let bad = good_csv.replacen("session_create,value,12,ms", "session_create,value,NaN,ms", 1);
    assert_ne!(bad, good_csv);
    std::fs::write(&csv, bad).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&name) && e.contains("line 2") && e.contains("finite"), "{e}");
    std::fs::write(&csv, &good_csv).unwrap();

    // Provenance JSON: missing, empty, truncated.
    let jname = json.display().to_string();
    std::fs::remove_file(&json).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&jname) && e.contains("missing"), "{e}");
    std::fs::write(&json, " \n").unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&jname) && e.contains("empty"), "{e}");
    std::fs::write(&json, &good_json[..good_json.len() / 2]).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&jname) && e.contains("line"), "{e}");
    std::fs::write(&json, good_json.replace("\"hardware\"", "\"hardwar\"")).unwrap();
    let e = err(&options(&results, &out, &["cpu"], None));
    assert!(e.contains(&jname) && e.contains("hardware"), "{e}");

    // No markdown was written by any failed attempt.
    assert!(!out.join("test.md").exists());
    std::fs::write(&json, &good_json).unwrap();
    generate(&options(&results, &out, &["cpu"], None)).unwrap();
    assert!(out.join("test.md").exists());
}

#[test]
fn baseline_marks_slower_beyond_the_ci_only() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    // Baseline and a later run: the swapper 30% slower, everything else the same distribution.
    let base = all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 11);
    let mut now = all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 11);
    now[3] = model(Role::Swapper, Variant::Original, samples(95.0 * 1.3, 0.05 * 95.0 * 1.3, 25, 99));
    // The detector 0.5% slower: well inside its interval.
    now[0] = model(Role::Detector, Variant::Original, base[0].samples_ms.iter().map(|x| x * 1.005).collect());
    write_run(&results, &run_report("old", base), "20260101T000000Z");
    write_run(&results, &run_report("new", now), "20260102T000000Z");

    let g = generate(&options(&results, &dir.path().join("reports"), &["new"], Some("old"))).unwrap();
    let verdict = |model: &str| g.regressions.iter().find(|c| c.model == model && c.stage == "run").unwrap().verdict;
    assert_eq!(verdict("inswapper_128"), Verdict::Slower);
    assert_eq!(verdict("det_10g"), Verdict::NoDifference);
    assert_eq!(verdict("GFPGANv1.4"), Verdict::NoDifference);
    assert_eq!(g.slower, 1);

    let md = std::fs::read_to_string(&g.markdown).unwrap();
    let rows = table_rows(section(&md, "Regressions against the baseline"));
    let row = |m: &str| rows.iter().find(|r| r[1] == format!("`{m}`")).unwrap().clone();
    assert!(row("inswapper_128")[7].contains("slower"), "{:?}", row("inswapper_128"));
    assert_eq!(row("det_10g")[7], "no difference beyond noise");
    assert!(g.figures.iter().any(|f| f.png.to_string_lossy().contains("regress")));

    // Two runs of one profile: chosen by stamp, told apart by it in every label.
    let again = all_roles([8.0, 1.5, 12.0, 95.0 * 1.3, 1400.0], 11);
    write_run(&results, &run_report("old", again), "20260103T000000Z");
    let g = generate(&options(&results, &dir.path().join("same"), &["old/20260103T"], Some("old/20260101T"))).unwrap();
    assert_eq!(g.slower, 1, "{:?}", g.regressions);
    let md = std::fs::read_to_string(&g.markdown).unwrap();
    assert!(md.contains("Baseline: **old @20260101T000000Z**"), "{md}");
    assert!(table_rows(section(&md, "Regressions against the baseline"))
        .iter()
        .all(|r| r[0] == "old @20260103T000000Z"));
    assert_eq!(g.figures.iter().filter(|f| f.png.to_string_lossy().contains("dist-old-2026")).count(), 2);
}

#[test]
fn published_m3max_numbers_are_labelled_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results/m3max-published");
    std::fs::create_dir_all(results.join("m3max-published")).unwrap();
    for e in std::fs::read_dir(&repo).expect("bench-results/m3max-published is committed") {
        let p = e.unwrap().path();
        std::fs::copy(&p, results.join("m3max-published").join(p.file_name().unwrap())).unwrap();
    }
    write_run(&results, &run_report("cpu", all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 1)), "20260102T030405Z");
    let g = generate(&options(&results, &dir.path().join("reports"), &["cpu", "m3max-published"], None)).unwrap();
    let md = std::fs::read_to_string(&g.markdown).unwrap();

    let head = table_rows(section(&md, "Headline"));
    let published: Vec<&Vec<String>> = head.iter().filter(|r| r[0].starts_with("m3max-published")).collect();
    assert_eq!(published.len(), 2, "before and after");
    for r in &published {
        assert!(r[0].contains(PUBLISHED_LABEL), "{r:?}");
    }
    let before = published.iter().find(|r| r[1].starts_with("before")).unwrap();
    let after = published.iter().find(|r| r[1].starts_with("after")).unwrap();
    assert_eq!((before[2].as_str(), before[3].as_str()), ("< 5 †", "< 2 †"));
    assert_eq!((after[2].as_str(), after[3].as_str()), ("> 20 †", "> 10 †"));
    assert!(before[4].starts_with("640×480"), "{before:?}");
    assert!(after[4].starts_with("960×540 MJPEG @ 60 FPS"), "{after:?}");

    // Model rewrites: published latencies and CoreML partition counts.
    let rw = table_rows(section(&md, "Models before and after rewrites"));
    let find = |model: &str, variant: &str| {
        rw.iter()
            .find(|r| r[0].starts_with("m3max-published") && r[1] == format!("`{model}`") && r[2] == variant)
            .unwrap()
    };
    assert_eq!(find("det_10g", "original")[3], "21 †");
    assert_eq!(find("det_10g_coreml", "coreml")[3], "4 †");
    assert_eq!(find("GFPGANv1.4", "original")[3], "155 †");
    assert_eq!(find("GFPGANv1.4_coreml", "coreml")[3], "89 †");
    assert_eq!(find("inswapper_128", "original")[3], "55.30 †");
    assert_eq!(find("inswapper_128", "original")[7], "14 †");
    assert_eq!(find("inswapper_128_coreml", "coreml")[3], "27.40 †");
    assert_eq!(find("inswapper_128_coreml", "coreml")[7], "1 †");
    assert_eq!(find("inswapper_128", "original@ort-1.26")[3], "27.20 †");

    // Every section with a published number carries the label.
    for title in ["Headline", "Per-stage comparison", "Models before and after rewrites", "Provenance"] {
        assert!(section(&md, title).contains(PUBLISHED_LABEL), "{title} lacks the published label");
    }
}

#[test]
fn a_latency_whose_bound_outputs_failed_their_check_is_marked_unverified() {
    use faceperf::bench::results::{BindingInfo, OutputCheck};
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let mut models = all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 3);
    let swapper = models.iter_mut().find(|m| m.role == Role::Swapper).unwrap();
    swapper.binding = Some(BindingInfo {
        device: "cuda:0".into(),
        cuda_graph_requested: true,
        cuda_graph_active: true,
        graph_fallback: None,
        setup_ms: 1.0,
        timed: "bound run".into(),
        check: Some(OutputCheck {
            outputs: 1,
            max_abs_diff: None,
            identical: false,
            error: Some("outputs differ in non-finite values (NaN or infinity)".into()),
        }),
    });
    write_run(&results, &run_report("cpu", models), "20260102T030405Z");
    let g = generate(&options(&results, &dir.path().join("reports"), &["cpu"], None)).unwrap();
    let md = std::fs::read_to_string(&g.markdown).unwrap();
    let marked: Vec<&str> = md.lines().filter(|l| l.starts_with('|') && l.contains('‡')).collect();
    // The swapper's row in the stage table and in the frame breakdown, nothing else.
    assert_eq!(marked.len(), 2, "{marked:#?}");
    assert!(marked.iter().all(|l| l.contains("swapper")), "{marked:#?}");
    assert!(md.contains("‡ The run's own check found these bound outputs different"), "{md}");
}

/// A run made by a binary built elsewhere than the checkout it ran in (a lent GPU machine with a
/// stale copy): the provenance names both commits and the reproduction checks out the build commit.
#[test]
fn provenance_prefers_the_binary_build_commit() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let mut run = run_report("cpu", all_roles([8.0, 1.5, 12.0, 95.0, 1400.0], 3));
    run.tool.git_commit = "0123456789abcdef+dirty".into();
    run.tool.build_commit = "fedcba9876543210".into();
    write_run(&results, &run, "20260104T000000Z");
    let g = generate(&options(&results, &dir.path().join("reports"), &["cpu"], None)).unwrap();
    let md = std::fs::read_to_string(&g.markdown).unwrap();
    let prov = section(&md, "Provenance");
    assert!(prov.contains("built from `fedcba9876543210` (run in a checkout at `0123456789abcdef+dirty`)"), "{prov}");
    let repro = section(&md, "How to reproduce");
    assert!(repro.contains("git checkout fedcba9876543210"), "{repro}");
    assert!(!repro.contains("uncommitted changes"), "{repro}");
}

/// A model measured in rounds (synthetic): per-round figures, the interval over rounds and its quality,
/// as `faceperf bench` records them. Each round's level is `center × level[i]`, samples jitter ±`spread`.
fn model_in_rounds(role: Role, center: f64, levels: &[f64], spread: f64, seed: u64) -> ModelResult {
    use faceperf::bench::results::RoundResult;
    let rounds: Vec<Vec<f64>> =
        levels.iter().enumerate().map(|(i, l)| samples(center * l, spread * center, 20, seed + i as u64)).collect();
    let mut m = model(role, Variant::Original, rounds.concat());
    let (summary, ci) = faceperf::bench::model::round_statistics(&rounds, Path::new("x.onnx")).unwrap();
    let ci = ci.unwrap();
    m.run_ms = summary;
    m.quality = Some(faceperf::bench::rounds::quality(&ci, 3.0, 12.0, Some(0.1)));
    m.median_ci = Some(ci);
    m.rounds = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = Summary::of(r).unwrap();
            RoundResult {
                round: i,
                position: 0,
                session_create_ms: 1.0,
                first_run_ms: 1.0,
                warmup_runs: 1,
                n: r.len(),
                median: s.median,
                min: s.min,
                max: s.max,
                started_s: i as f64,
                load_1m: Some(0.1),
            }
        })
        .collect();
    m
}

/// A run with rounds: every role steady except the swapper, whose rounds drift by ±8%.
fn rounds_run(name: &str, swapper_scale: f64) -> BenchReport {
    let steady = [1.0, 1.002, 0.998, 1.001, 0.999, 1.0, 1.002, 0.998];
    let drifting = [1.0, 1.08, 0.92, 1.05, 0.95, 1.08, 0.93, 1.0];
    let mut models: Vec<ModelResult> = Role::ALL
        .iter()
        .zip([8.0, 1.5, 12.0, 95.0, 1400.0])
        .enumerate()
        .map(|(i, (&role, c))| model_in_rounds(role, c, &steady, 0.01, 40 + 10 * i as u64))
        .collect();
    models[3] = model_in_rounds(Role::Swapper, 95.0 * swapper_scale, &drifting, 0.01, 400);
    let mut r = run_report(name, models);
    r.settings.rounds = steady.len();
    r
}

#[test]
fn the_report_shows_each_ci_and_flags_those_over_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    write_run(&results, &rounds_run("cpu", 1.0), "20260105T000000Z");
    let g = generate(&options(&results, &dir.path().join("reports"), &["cpu"], None)).unwrap();
    let md = std::fs::read_to_string(&g.markdown).unwrap();

    // The swapper's rounds drift by ±8%: its interval is over ±3% and its rounds disagree; nothing else.
    assert_eq!(g.flags.len(), 1, "{:#?}", g.flags);
    let f = &g.flags[0];
    assert_eq!(f.model, "inswapper_128");
    assert!(f.ci_too_wide && f.rounds_disagree && f.half_width_pct > 3.0 && f.limit_pct == 3.0, "{f:?}");
    assert!(f.advice.iter().any(|a| a.contains("--time")) && f.advice.iter().any(|a| a.contains("rounds disagree")));

    // Distribution table: every model's CI, its half-width, the rounds; the wide one marked.
    let dist = table_rows(section(&md, "Latency distributions"));
    assert_eq!(dist.len(), 5);
    for r in &dist {
        let model = r[1].trim_matches('`');
        assert!(r[12].starts_with('[') && r[12].ends_with(']'), "{r:?}");
        assert_eq!(r[14], "8", "{r:?}");
        assert_eq!(r[13].contains('⚠'), model == "inswapper_128", "{r:?}");
    }
    // Stage table: the swapper's cell marked, the others not.
    for r in table_rows(section(&md, "Per-stage comparison")) {
        assert!(r[1].contains(" ["), "{r:?}");
        assert_eq!(r[1].contains('⚠'), r[0] == "swapper", "{r:?}");
    }
    let q = section(&md, "Measurement quality");
    assert!(q.contains("`inswapper_128`") && q.contains("rounds disagree"), "{q}");
    let prov = section(&md, "Provenance");
    assert!(prov.contains("8 rounds"), "{prov}");

    // A stated width of ±50% clears both flags (the rounds span about 16%, well within twice it).
    let mut opts = options(&results, &dir.path().join("wide"), &["cpu"], None);
    opts.ci_width_pct = Some(50.0);
    let g = generate(&opts).unwrap();
    assert!(g.flags.is_empty(), "{:#?}", g.flags);
}

#[test]
fn baseline_ratios_carry_an_interval_over_both_runs_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let mut base = rounds_run("old", 1.0);
    // The detector steady and 10% slower in the new run; the swapper 4% slower but its rounds drift by ±8%.
    let mut now = rounds_run("new", 1.04);
    now.models[0] =
        model_in_rounds(Role::Detector, 8.8, &[1.0, 1.002, 0.998, 1.001, 0.999, 1.0, 1.002, 0.998], 0.01, 900);
    base.settings.noise_threshold_pct = 2.0;
    write_run(&results, &base, "20260101T000000Z");
    write_run(&results, &now, "20260102T000000Z");
    let g = generate(&options(&results, &dir.path().join("reports"), &["new"], Some("old"))).unwrap();
    let cmp = |m: &str| g.regressions.iter().find(|c| c.model == m).unwrap();
    let det = cmp("det_10g");
    let (lo, hi) = det.ratio_ci95.expect("interval from samples");
    assert!(lo > 1.0 && lo < det.ratio && det.ratio < hi && (det.ratio - 1.1).abs() < 0.02, "{det:?}");
    assert_eq!(det.verdict, Verdict::Slower);
    assert!(det.method.contains("not paired"), "{}", det.method);
    let sw = cmp("inswapper_128");
    let (lo, hi) = sw.ratio_ci95.unwrap();
    assert!(lo < 1.0 && hi > 1.04, "{sw:?}");
    assert_eq!(sw.verdict, Verdict::NoDifference);
    assert_eq!(cmp("GFPGANv1.4").verdict, Verdict::NoDifference);
    let md = std::fs::read_to_string(&g.markdown).unwrap();
    let rows = table_rows(section(&md, "Regressions against the baseline"));
    let row = rows.iter().find(|r| r[1] == "`det_10g`").unwrap();
    assert!(row[6].contains(" [") && row[7].contains("slower"), "{row:?}");
    assert!(section(&md, "Regressions against the baseline").contains("noise threshold of ±2%"));
}

/// Results committed before rounds (no per-round figures, no machine state, samples-only CIs) still
/// load and report; the report says their intervals predate rounds.
#[test]
fn committed_results_from_before_rounds_still_report() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("bench-results");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    for profile in ["cpu", "h100", "m3max-published"] {
        std::fs::create_dir_all(results.join(profile)).unwrap();
        for e in std::fs::read_dir(repo.join(profile)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && p.extension().is_some_and(|x| x == "csv" || x == "json") {
                std::fs::copy(&p, results.join(profile).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let g = generate(&options(&results, &dir.path().join("reports"), &["cpu", "h100", "m3max-published"], Some("cpu")))
        .unwrap();
    let md = std::fs::read_to_string(&g.markdown).unwrap();
    assert!(section(&md, "Measurement quality").contains("written before rounds"), "{md}");
    assert!(g.flags.iter().all(|f| !f.rounds_disagree));
}
