use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use std::time::Duration;

use super::{print_json, Ctx};
use crate::bench::{self, BenchOptions};
use crate::models::{Role, Scale};
use crate::profile::{Profile, Variant, Warmup};
use crate::runtime::gpu_monitor::{self, Monitor};

/// What to run on when a profile's execution provider is absent.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FallbackTo {
    /// ORT's CPU provider (reported as a fallback in the results).
    Cpu,
}

/// Arguments of `faceperf bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Built-in profile name (cpu, m3max, cuda, directml, h100) or a profile .toml file
    #[arg(long, default_value = "cpu", value_name = "NAME|FILE")]
    pub profile: String,
    /// Run roles whose execution provider is absent on this provider instead of failing
    #[arg(long, value_enum, value_name = "EP")]
    pub fallback: Option<FallbackTo>,
    /// No silent fallback: fail at load when a model's nodes do not all run on the requested execution
    /// provider (ORT's session.disable_cpu_ep_fallback), naming them and the rewrite that fixes them
    #[arg(long)]
    pub strict_ep: bool,
    /// Folder with the models (default: models/replica-<scale>)
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Replica scale when --models is not given (default: the profile's)
    #[arg(long, value_enum)]
    pub scale: Option<Scale>,
    /// Roles to run (default: all)
    #[arg(long = "role", value_enum, value_delimiter = ',')]
    pub roles: Vec<Role>,
    /// Variants side by side, e.g. original,coreml,fp16 (default: the profile's)
    #[arg(long, value_enum, value_delimiter = ',')]
    pub variants: Vec<Variant>,
    /// Warm-up: a run count (3) or seconds (1.5s)
    #[arg(long, value_name = "N|Ss")]
    pub warmup: Option<String>,
    /// Most measured runs per model
    #[arg(long)]
    pub runs: Option<usize>,
    /// Fewest measured runs per model, even past the time budget
    #[arg(long)]
    pub min_runs: Option<usize>,
    /// Time budget of the measured runs per model, seconds
    #[arg(long = "time", value_name = "SECONDS")]
    pub time_budget_s: Option<f64>,
    /// Profiled runs for the per-op breakdown (0 = off)
    #[arg(long)]
    pub op_profile_runs: Option<usize>,
    /// Also run every CUDA-graph model without graphs, for graph speed-ups from one run
    #[arg(long)]
    pub cuda_graph_ab: bool,
    /// Also run the live pipeline in measure mode for this many frames (0 = off; default: the profile's)
    #[arg(long, value_name = "N")]
    pub pipeline_frames: Option<u64>,
    /// Entries per per-op table
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Photo the face crops come from (default: the shared astronaut.png)
    #[arg(long, value_name = "PNG", requires = "face")]
    pub image: Option<PathBuf>,
    /// Face box in --image: x,y,side in pixels
    #[arg(long, value_name = "X,Y,SIDE", requires = "image")]
    pub face: Option<String>,
    /// Results folder (bench-results/<profile>/<stamp>_<host>.{csv,json} inside it)
    #[arg(long, default_value = "bench-results", value_name = "DIR")]
    pub out: PathBuf,
    /// Do not write result files
    #[arg(long)]
    pub no_save: bool,
    /// Rounds: each runs every job once, interleaved, with a fresh session, for 1/N of the budget
    /// (default: the profile's, else 10)
    #[arg(long, value_name = "N")]
    pub rounds: Option<usize>,
    /// Flag medians whose 95% CI is wider than ± this percent
    #[arg(long, default_value_t = crate::bench::rounds::DEFAULT_CI_WIDTH_PCT, value_name = "PCT")]
    pub max_ci_width: f64,
    /// Ratios within ± this percent of 1 are "no difference beyond noise"
    #[arg(long, default_value_t = crate::bench::rounds::DEFAULT_NOISE_PCT, value_name = "PCT")]
    pub noise_threshold: f64,
    /// TEST ONLY: also run an identical twin of every job with its samples multiplied by 1 + PCT/100
    /// (0 = an identical A/B pair), to check the comparison verdicts end to end
    #[arg(long, value_name = "PCT", hide = true)]
    pub test_ab: Option<f64>,
}

/// Checks the statistics options: a round count of at least 1, positive percentages.
fn check_stats_args(a: &Args) -> Result<()> {
    if a.rounds == Some(0) {
        bail!("--rounds must be at least 1 (1 = every job's runs at once, without rounds)");
    }
    for (name, v) in [("--max-ci-width", a.max_ci_width), ("--noise-threshold", a.noise_threshold)] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{name} {v}: expected a positive percentage");
        }
    }
    if let Some(p) = a.test_ab {
        if !(p.is_finite() && p > -100.0) {
            bail!("--test-ab {p}: expected a percentage above -100");
        }
    }
    Ok(())
}

fn parse_face(s: &str) -> Result<(u32, u32, u32)> {
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--face '{s}': expected X,Y,SIDE"))?;
    match v.as_slice() {
        [x, y, side] => Ok((*x, *y, *side)),
        _ => bail!("--face '{s}': expected three numbers X,Y,SIDE"),
    }
}

pub fn run(ctx: &Ctx, a: Args) -> Result<ExitCode> {
    check_stats_args(&a)?;
    let mut loaded = Profile::resolve(&a.profile)?;
    loaded.profile.strict_ep |= a.strict_ep;
    let b = &mut loaded.profile.bench;
    if let Some(w) = &a.warmup {
        b.warmup = Warmup::parse(w)?;
    }
    if let Some(n) = a.runs {
        b.runs = n;
        b.min_runs = b.min_runs.min(n);
    }
    if let Some(n) = a.min_runs {
        b.min_runs = n;
    }
    if let Some(t) = a.time_budget_s {
        b.time_budget_s = t;
    }
    if let Some(n) = a.op_profile_runs {
        b.op_profile_runs = n;
    }
    if let Some(n) = a.pipeline_frames {
        b.pipeline_frames = n;
    }
    if a.cuda_graph_ab {
        b.cuda_graph_ab = true;
    }
    if let Some(s) = a.scale {
        b.scale = s;
    }
    if let Some(k) = a.rounds {
        b.rounds = k;
    }
    loaded.profile.validate().context("command-line overrides")?;
    let image = match (&a.image, &a.face) {
        (Some(p), Some(f)) => Some((p.clone(), parse_face(f)?)),
        _ => None,
    };
    let opts = BenchOptions {
        profile: loaded,
        fallback_cpu: a.fallback.is_some(),
        models_dir: a.models,
        roles: a.roles,
        variants: (!a.variants.is_empty()).then_some(a.variants),
        top_n: a.top,
        image,
        quiet: ctx.json,
        command_line: std::env::args().collect(),
        ci_width_pct: a.max_ci_width,
        noise_pct: a.noise_threshold,
        test_ab_slowdown_pct: a.test_ab,
    };
    if !a.no_save {
        bench::results::BenchReport::check_writable(&a.out, &opts.profile.profile.name)?;
    }
    let rt = ctx.runtime()?;
    let monitor = Monitor::start(Duration::from_millis(100), gpu_monitor::default_sampler(), 0.0);
    let result = bench::run(rt, &opts);
    let monitor = monitor.finish();
    let mut report = result?;
    if let (Some(note), false) = (&monitor.gpu_note, ctx.json) {
        eprintln!("note: {note}");
    }
    report.monitor = Some(monitor);
    if !a.no_save {
        let (_, stamp) = bench::results::utc_now();
        let (csv, json) = report.write(&a.out, &stamp)?;
        let samples = json.with_extension("samples.csv");
        if let Some(m) = &report.monitor {
            crate::onnx::model::write_atomic(&samples, m.csv().as_bytes())?;
        }
        eprintln!("wrote {}, {} and {}", csv.display(), json.display(), samples.display());
    }
    if ctx.json {
        print_json(&report)?;
    } else {
        print!("{}", bench::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
