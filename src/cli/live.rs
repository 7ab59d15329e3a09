use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::{print_json, Ctx};
use crate::models::Scale;
use crate::pipeline::{self, Config, SinkSpec, SourceSpec};
use crate::profile::Profile;

/// Arguments of `faceperf live`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Frame source: synthetic, camera[:N], video:PATH or images:DIR
    #[arg(long, default_value = "synthetic", value_name = "SOURCE")]
    pub source: String,
    /// Where frames go: null, images:DIR, ppm:DIR, video:PATH, or window[:TITLE] (a preview window;
    /// needs a build with --features preview; close it or press Esc to stop)
    #[arg(long, default_value = "null", value_name = "SINK")]
    pub sink: String,
    /// Print the per-stage table (median, p90, p99, share of frame time)
    #[arg(long)]
    pub measure: bool,
    /// Stop after N frames
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Stop after S seconds
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Built-in profile name (cpu, m3max, cuda, directml, h100) or a profile .toml file
    #[arg(long, default_value = "cpu", value_name = "NAME|FILE")]
    pub profile: String,
    /// Run roles whose execution provider is absent on the CPU provider instead of failing
    #[arg(long)]
    pub fallback_cpu: bool,
    /// No silent fallback: fail at load when a model's nodes do not all run on the requested execution
    /// provider (ORT's session.disable_cpu_ep_fallback), naming them and the rewrite that fixes them
    #[arg(long)]
    pub strict_ep: bool,
    /// Folder with the models (default: the replica folder of --scale)
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Replica scale when --models is not given (generated on first use)
    #[arg(long, value_enum, default_value = "tiny")]
    pub scale: Scale,
    /// Detector model (default: <models>/det_10g.onnx). A replica detector (random weights) runs for
    /// its cost while the stages take the faces the synthetic source placed; a real one's detections
    /// are used
    #[arg(long, value_name = "ONNX")]
    pub detector: Option<PathBuf>,
    /// Photo whose face is swapped in (default: the built-in astronaut.png)
    #[arg(long, value_name = "IMAGE")]
    pub identity: Option<PathBuf>,
    /// Faces in the synthetic scene
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub faces: usize,
    /// Synthetic frame size, e.g. 1920x1080 (default: the profile's camera size)
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Run the enhancer (every frame unless --enhance-every or the profile says otherwise)
    #[arg(long)]
    pub enhance: bool,
    /// Run the enhancer every K frames, pasting its cached result in between
    #[arg(long, value_name = "K")]
    pub enhance_every: Option<usize>,
    /// Detect every N frames, tracking boxes in between (default: the profile's)
    #[arg(long, value_name = "N")]
    pub detect_every: Option<usize>,
    /// Swap every face instead of the largest
    #[arg(long)]
    pub many_faces: bool,
    /// Keep the real mouth (runs the 106-point landmark model)
    #[arg(long)]
    pub mouth_mask: bool,
    /// Measure for a few frames, then pick the detection/enhancer intervals that reach --target-fps
    #[arg(long, requires = "target_fps")]
    pub adaptive: bool,
    /// Target FPS of --adaptive
    #[arg(long, value_name = "F")]
    pub target_fps: Option<f64>,
    /// Pace offline sources at their frame rate and drop frames like a camera
    #[arg(long)]
    pub realtime: bool,
    /// Write one CSV row per frame (per-stage start/end/busy µs) to PATH
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s.split_once(['x', 'X']).with_context(|| format!("--size '{s}': expected WxH, e.g. 1920x1080"))?;
    Ok((w.trim().parse().context("--size width")?, h.trim().parse().context("--size height")?))
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    let mut loaded = Profile::resolve(&a.profile)?;
    loaded.profile.strict_ep |= a.strict_ep;
    let rt = ctx.runtime()?;
    for f in loaded.profile.check_or_fallback(rt, a.fallback_cpu)? {
        eprintln!("note: {} runs on {} ({} missing)", f.role.name(), f.used, f.missing.join(", "));
    }
    let models_dir = match &a.models {
        Some(d) => d.clone(),
        None => {
            if !ctx.json {
                eprintln!("using {} replicas (generated on first use)", a.scale.name());
            }
            crate::models::synth::ensure_replicas(a.scale)?
        }
    };
    let mut cfg = Config::new(loaded.profile, &models_dir);
    // Variants of models outside the folder (the shared SCRFD) go into it too.
    cfg.variant_dir = Some(models_dir.clone());
    if let Some(p) = &a.detector {
        cfg.models.detector = p.clone();
    }
    cfg.source = SourceSpec::parse(&a.source)?;
    if let SourceSpec::Synthetic(s) = &mut cfg.source {
        s.width = cfg.profile.camera.width;
        s.height = cfg.profile.camera.height;
        s.fps = cfg.profile.camera.fps as f64;
        if let Some(size) = &a.size {
            (s.width, s.height) = parse_size(size)?;
        }
        s.faces = a.faces;
    } else if a.size.is_some() || a.faces != 1 {
        bail!("--size and --faces only apply to --source synthetic");
    }
    cfg.sink = SinkSpec::parse(&a.sink)?;
    cfg.identity = a.identity;
    if let Some(n) = a.detect_every {
        cfg.detection_interval = n;
    }
    if let Some(k) = a.enhance_every {
        cfg.enhancer_interval = k;
    } else if a.enhance && cfg.enhancer_interval == 0 {
        cfg.enhancer_interval = 1;
    } else if !a.enhance {
        cfg.enhancer_interval = 0;
    }
    cfg.many_faces |= a.many_faces;
    cfg.mouth_mask = a.mouth_mask;
    cfg.adaptive_target_fps = if a.adaptive { a.target_fps } else { None };
    if let Some(t) = cfg.adaptive_target_fps {
        if !(t > 0.0 && t.is_finite()) {
            bail!("--target-fps must be a positive number");
        }
    }
    cfg.frames = a.frames;
    cfg.seconds = a.seconds;
    cfg.realtime = a.realtime;
    if cfg.frames.is_none()
        && cfg.seconds.is_none()
        && matches!(cfg.source, SourceSpec::Synthetic(_) | SourceSpec::Camera(_))
    {
        // Endless sources need a bound; a short one keeps a first run quick.
        cfg.frames = Some(300);
    }

    let mut report = pipeline::run(rt, &cfg)?;
    if let Some(p) = report.provenance.as_mut() {
        p.command_line = std::env::args().collect();
    }
    if let Some(p) = &a.csv {
        report.write_csv(p)?;
        let samples = p.with_extension("samples.csv");
        if let Some(m) = &report.monitor {
            crate::onnx::model::write_atomic(&samples, m.csv().as_bytes())?;
        }
        if !ctx.json {
            eprintln!("wrote {} and {}", p.display(), samples.display());
        }
    }
    // Without an NVIDIA driver the run goes on; the table says why there are no GPU samples, other
    // outputs say it here, once.
    if let (Some(note), false, false) = (report.monitor.as_ref().and_then(|m| m.gpu_note.as_ref()), a.measure, ctx.json)
    {
        eprintln!("note: {note}");
    }
    if ctx.json {
        print_json(&report)?;
    } else if a.measure {
        print!("{}", report.table());
    } else {
        println!(
            "{} frames, {:.1} FPS, {} dropped, latency median {:.1} ms ({})",
            report.frames,
            report.fps,
            report.dropped,
            report.latency_ms.as_ref().map(|l| l.median).unwrap_or(f64::NAN),
            report.source
        );
    }
    // A source or stage that failed mid-run: the measurements above are complete for the frames
    // before it; the run itself failed. Closing the preview window is not a failure.
    if let Some(why) = &report.stopped_by {
        if !report.stopped_by_user {
            bail!("{why}");
        }
        // The table says it already.
        if !ctx.json && !a.measure {
            eprintln!("stopped: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
