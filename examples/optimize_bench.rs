//! Benchmark of `faceperf optimize` (the `coreml` recipe) on the full-size swapper replica, against
//! a plain read + write of the same file. Not a test: timings depend on the machine.
//!
//! ```text
//! cargo run --release --example optimize_bench [-- MODEL.onnx] [--reps N]
//! ```
//!
//! Without a model it uses (and if needed generates) the full swapper replica
//! (`faceperf models synth --scale full --roles swapper`). Writes
//! `bench-results/optimize/<UTC stamp>.json` and `.csv`.
//!
//! Measured, each as the median of N repetitions (page cache warm):
//! - `copy`: read the file's bytes and write them atomically (the floor);
//! - `read_write`: decode the ONNX model and encode + write it atomically (the baseline);
//! - `optimize`: `ensure_variant` making the variant from scratch, minus its equivalence check
//!   (hash, load, passes, encode, write; per phase too);
//! - `verify`: the equivalence check, reported separately (8 inputs in the first repetition;
//!   later repetitions run it on 1 input, only to time the rest);
//! - `reuse`: `ensure_variant` when the cached variant is valid (hashing source and variant).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use faceperf::bench::results::{file_safe, utc_now};
use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::model::write_atomic;
use faceperf::onnx::Model;
use faceperf::optimize::{ensure_variant, Action, OptimizeOptions, Timings};
use faceperf::rewrite::recipe::Recipe;
use faceperf::verify::VerifyOptions;
use serde::Serialize;

#[derive(Serialize)]
struct Rep {
    copy_s: f64,
    read_write_s: f64,
    optimize_s: f64,
    verify_s: f64,
    verify_cases: usize,
    reuse_s: f64,
    phases: Timings,
}

#[derive(Serialize)]
struct Report {
    started_utc: String,
    host: String,
    cpu: String,
    cores: usize,
    ort_version: String,
    tool_version: String,
    git_commit: String,
    model: String,
    model_bytes: u64,
    variant_bytes: u64,
    recipe: String,
    recipe_hash: String,
    reps: Vec<Rep>,
    median_copy_s: f64,
    median_read_write_s: f64,
    median_optimize_s: f64,
    median_reuse_s: f64,
    /// The figure: optimize (without its equivalence check) / plain read + write.
    optimize_over_read_write: f64,
    optimize_over_copy: f64,
    /// The equivalence check on 8 inputs (first repetition).
    verify_s_8_inputs: f64,
    verify_passed: bool,
    verify_summary: String,
    note: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn full_swapper() -> Result<PathBuf> {
    let dir = synth::default_dir(Scale::Full);
    let path = dir.join(Role::Swapper.default_file());
    if !path.is_file() {
        eprintln!("generating the full swapper replica in {} …", dir.display());
        synth::write_roles(&dir, &[Role::Swapper], Scale::Full, synth::DEFAULT_SEED, false)?;
    }
    Ok(path)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut reps = 3usize;
    let mut model: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => reps = it.next().context("--reps N")?.parse()?,
            other if other.starts_with("--") => bail!("unknown option {other}"),
            other => model = Some(PathBuf::from(other)),
        }
    }
    let model = match model {
        Some(m) => m,
        None => full_swapper()?,
    };
    let rt = faceperf::runtime::init(None)?;
    let recipe = Recipe::builtin("coreml")?;
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/optimize-bench");
    std::fs::create_dir_all(&work)?;
    let model_bytes = std::fs::metadata(&model)?.len();
    let (started_utc, stamp) = utc_now();
    // Warm the page cache so every measurement reads from memory.
    let _ = std::fs::read(&model)?;

    let mut rows = Vec::new();
    let mut first_report = None;
    let mut variant_bytes = 0;
    for rep in 0..reps {
        eprintln!("repetition {}/{reps}", rep + 1);
        let copy_to = work.join("copy.onnx");
        let t = Instant::now();
        let bytes = std::fs::read(&model)?;
        write_atomic(&copy_to, &bytes)?;
        let copy_s = t.elapsed().as_secs_f64();
        drop(bytes);

        let rw_to = work.join("read_write.onnx");
        let t = Instant::now();
        let m = Model::load(&model)?;
        write_atomic(&rw_to, &m.to_bytes())?;
        let read_write_s = t.elapsed().as_secs_f64();
        drop(m);

        let out = work.join(format!("rep{rep}"));
        let _ = std::fs::remove_dir_all(&out);
        let cases = if rep == 0 { 8 } else { 1 };
        let opts = OptimizeOptions {
            out_dir: Some(out.clone()),
            verify: VerifyOptions { cases, threads: 0, ..Default::default() },
            ..Default::default()
        };
        let t = Instant::now();
        let o = ensure_variant(rt, &model, &recipe, &opts)?;
        let wall = t.elapsed().as_secs_f64();
        if o.action != Action::Created {
            bail!("expected a new variant in {}", out.display());
        }
        let verify_s = o.sidecar.timings.verify_s;
        variant_bytes = o.sidecar.variant.bytes;
        let t = Instant::now();
        let again = ensure_variant(rt, &model, &recipe, &opts)?;
        let reuse_s = t.elapsed().as_secs_f64();
        assert_eq!(again.action, Action::Reused);
        if rep == 0 {
            first_report = Some(o.sidecar.equivalence.clone());
        }
        rows.push(Rep {
            copy_s,
            read_write_s,
            optimize_s: wall - verify_s,
            verify_s,
            verify_cases: cases,
            reuse_s,
            phases: o.sidecar.timings,
        });
        let _ = std::fs::remove_dir_all(&out);
        for p in [&copy_to, &rw_to] {
            let _ = std::fs::remove_file(p);
        }
    }
    let eq = first_report.context("no repetitions")?;
    let med = |f: fn(&Rep) -> f64| median(rows.iter().map(f).collect());
    let (copy, rw, opt, reuse) =
        (med(|r| r.copy_s), med(|r| r.read_write_s), med(|r| r.optimize_s), med(|r| r.reuse_s));
    let sys = sysinfo::System::new_all();
    let report = Report {
        started_utc,
        host: sysinfo::System::host_name().unwrap_or_default(),
        cpu: sys.cpus().first().map(|c| c.brand().trim().to_string()).unwrap_or_default(),
        cores: sys.cpus().len(),
        ort_version: rt.version.clone(),
        tool_version: faceperf::optimize::TOOL_VERSION.into(),
        git_commit: faceperf::bench::results::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        model: model.display().to_string(),
        model_bytes,
        variant_bytes,
        recipe: recipe.source.clone(),
        recipe_hash: recipe.hash().into(),
        median_copy_s: copy,
        median_read_write_s: rw,
        median_optimize_s: opt,
        median_reuse_s: reuse,
        optimize_over_read_write: opt / rw,
        optimize_over_copy: opt / copy,
        verify_s_8_inputs: rows[0].verify_s,
        verify_passed: eq.passed,
        verify_summary: eq.summary(),
        note: "optimize_s = ensure_variant wall time minus its equivalence check; reps after the first check 1 input"
            .into(),
        reps: rows,
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-results/optimize");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(format!("{stamp}_{}", file_safe(&report.host)));
    write_atomic(&base.with_extension("json"), &serde_json::to_vec_pretty(&report)?)?;
    let mut csv = String::from("stage,statistic,value,unit\n");
    for (stage, v) in [("copy", copy), ("read_write", rw), ("optimize", opt), ("reuse", reuse)] {
        csv.push_str(&format!("{stage},median,{v:.4},s\n"));
    }
    csv.push_str(&format!("verify_8_inputs,first,{:.4},s\n", report.verify_s_8_inputs));
    for (i, r) in report.reps.iter().enumerate() {
        let p = &r.phases;
        for (k, v) in [
            ("hash", p.hash_s),
            ("load", p.load_s),
            ("passes", p.passes_s),
            ("encode", p.encode_s),
            ("write", p.write_s),
        ] {
            csv.push_str(&format!("optimize_{k},rep{i},{v:.4},s\n"));
        }
    }
    csv.push_str(&format!("optimize_over_read_write,ratio,{:.3},x\n", report.optimize_over_read_write));
    write_atomic(&base.with_extension("csv"), csv.as_bytes())?;
    println!(
        "{}: {:.0} MB → {:.0} MB\n  copy {copy:.2} s, read+write {rw:.2} s, optimize (coreml, without check) {opt:.2} s = {:.2}× read+write\n  \
         equivalence check ({}): {:.1} s; reuse of a cached variant {reuse:.2} s\n  written {}",
        report.model,
        model_bytes as f64 / 1e6,
        variant_bytes as f64 / 1e6,
        report.optimize_over_read_write,
        report.verify_summary,
        report.verify_s_8_inputs,
        base.with_extension("json").display()
    );
    Ok(())
}
