//! Which nodes' int8 quantization costs the most quality? For a model and the built-in `int8`
//! recipe: calibrate once, then for each quantizable node quantize everything *but* that node and
//! measure the quality figure against float32 (PSNR for image outputs, else cosine) on the
//! check's inputs. The nodes whose exclusion gains most are the recipe's `block_nodes` candidates.
//! Not a test: it prints a table and writes `bench-results/int8/sensitivity_<model>_<stamp>.json`.
//!
//! ```text
//! cargo run --release --example int8_sensitivity -- MODEL.onnx ROLE [--cases N] [--top K]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use faceperf::bench::inputs::Photo;
use faceperf::bench::results::{file_safe, utc_now};
use faceperf::models::Role;
use faceperf::onnx::model::write_atomic;
use faceperf::onnx::Model;
use faceperf::optimize::calibrate;
use faceperf::rewrite::quantize::Quantize;
use faceperf::rewrite::recipe::Recipe;
use faceperf::rewrite::{Pass, PassContext};
use faceperf::verify::{self, VerifyOptions, VerifySpec};
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    /// Node kept float (`none` = everything quantized).
    kept_float: String,
    op: String,
    figure: f64,
}

/// The worst figure of the first output: min PSNR (dB) for images, else min cosine.
fn figure(r: &verify::EquivalenceReport) -> f64 {
    let o = &r.outputs[0];
    o.min_psnr_db.unwrap_or(o.min_cosine)
}

fn quality(
    rt: &faceperf::runtime::Runtime,
    m: &Model,
    ctx: &PassContext,
    spec: &VerifySpec,
    v: &VerifyOptions,
) -> Result<f64> {
    let mut q = m.clone();
    q.path = None;
    Quantize.run(&mut q, ctx)?;
    let bytes = q.to_bytes();
    Ok(figure(&verify::verify(rt, m, &q, Some(&bytes), spec, v)?))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(args.get(1).context("usage: int8_sensitivity MODEL.onnx ROLE")?);
    let role_name = args.get(2).context("usage: int8_sensitivity MODEL.onnx ROLE")?;
    let role = Role::ALL
        .into_iter()
        .find(|r| r.name() == role_name)
        .context("ROLE: detector, landmarks, recognizer, swapper or enhancer")?;
    let num =
        |k: &str, d: usize| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(d);
    let rt = faceperf::runtime::init(None)?;
    let recipe = Recipe::builtin("int8")?;
    let model = Model::load(&path)?;
    let shapes = recipe.input_shapes(Some(role), &BTreeMap::new());
    let photo = Photo::astronaut().ok();
    let prepared =
        calibrate::prepare(&recipe, Some(role), &shapes, photo.as_ref())?.context("the recipe skips this role")?;
    let (ranges, record) = calibrate::calibrate(rt, &model, &prepared, 0)?;
    println!("calibrated {} values in {:.1} s", record.values, record.seconds);
    let mut options = recipe.options_for(prepared.pass, Some(role));
    options.insert("ranges".into(), ranges);
    let m = recipe.model(Some(role));
    let spec = VerifySpec {
        role: Some(role),
        quality: true,
        tolerance: m.tolerance,
        input_shapes: shapes.clone(),
        ..Default::default()
    };
    let v = VerifyOptions { cases: num("--cases", 4), localize: false, ..Default::default() };
    let ctx = |block: Option<&str>| {
        let mut o = options.clone();
        if let Some(b) = block {
            o.insert("block_nodes".into(), toml::Value::Array(vec![b.into()]));
        }
        PassContext { input_shapes: shapes.clone(), options: o }
    };
    let all = quality(rt, &model, &ctx(None), &spec, &v)?;
    println!("everything quantized: {all:.3}");
    let mut rows = vec![Row { kept_float: "none".into(), op: String::new(), figure: all }];
    for n in model
        .graph()
        .node
        .iter()
        .filter(|n| prepared.options.ops.contains(&n.op_type) && !prepared.options.block.contains(&n.op_type))
    {
        let f = quality(rt, &model, &ctx(Some(&n.name)), &spec, &v)?;
        println!("{:<40} {:<8} {f:.3} ({:+.3})", n.name, n.op_type, f - all);
        rows.push(Row { kept_float: n.name.clone(), op: n.op_type.clone(), figure: f });
    }
    rows[1..].sort_by(|a, b| b.figure.total_cmp(&a.figure));
    let top = num("--top", 5);
    println!("most sensitive (quality with only that node float):");
    for r in rows.iter().skip(1).take(top) {
        println!("  {:<40} {:<8} {:.3}", r.kept_float, r.op, r.figure);
    }
    let (started, stamp) = utc_now();
    let out = serde_json::json!({
        "started_utc": started, "model": path.display().to_string(), "role": role.name(),
        "model_sha256": faceperf::util::hash::sha256_file(&path)?, "ort_version": rt.version,
        "git_commit": faceperf::bench::results::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        "hardware": faceperf::util::hw::detect(), "calibration": record, "cases": v.cases,
        "figure": "min PSNR (dB) of the first output, or min cosine", "rows": rows,
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-results/int8");
    std::fs::create_dir_all(&dir)?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let file = dir.join(format!("sensitivity_{}_{stamp}.json", file_safe(&stem)));
    write_atomic(&file, &serde_json::to_vec_pretty(&out)?)?;
    println!("wrote {}", file.display());
    Ok(())
}
