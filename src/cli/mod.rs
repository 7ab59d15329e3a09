//! The `faceperf` command line: parses arguments and calls the library, nothing else.

mod bench;
mod compare;
mod doctor;
mod inspect;
mod live;
mod models;
mod optimize;
mod partitions;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `--version`: the package version and the commit the binary was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FACEPERF_BUILD_COMMIT"), ")");

/// Make live face-swap pipelines fast, and prove it.
#[derive(Debug, Parser)]
#[command(name = "faceperf", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// ONNX Runtime library to load (otherwise ORT_DYLIB_PATH, the active Python's onnxruntime, then .ort/)
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands. (Parsed once per process, so variant sizes do not matter.)
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Platform banner: OS, CPU, memory, GPU, ONNX Runtime and its execution providers
    Doctor(doctor::Args),
    /// Inputs, outputs, opsets, op histogram, parameters and FLOPs of a model
    Inspect(inspect::Args),
    /// The model set: list, fetch with verification, or synthesise offline replicas
    #[command(subcommand)]
    Models(models::Command),
    /// Rewrite models for an execution provider, prove them equivalent, cache the variants
    Optimize(optimize::Args),
    /// Benchmark models and pipeline stages under a hardware profile
    Bench(bench::Args),
    /// Run the live face-swap pipeline, optionally under measurement
    Live(live::Args),
    /// Turn bench-results into a markdown report with plots
    Report(report::Args),
    /// Predict how an execution provider partitions a model
    Partitions(partitions::Args),
    /// Set a live or bench result beside references and say which differences explain the gap
    Compare(compare::Args),
}

/// Shared context handed to every subcommand.
pub struct Ctx {
    pub ort_lib: Option<PathBuf>,
    pub json: bool,
}

impl Ctx {
    /// Loads ONNX Runtime per the discovery order.
    pub fn runtime(&self) -> anyhow::Result<&'static crate::runtime::Runtime> {
        crate::runtime::init(self.ort_lib.as_deref())
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Entry point of the binary: parse, run, and turn errors into one line on stderr and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx { ort_lib: cli.ort_lib, json: cli.json };
    let result = match cli.command {
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Models(c) => models::run(&ctx, c),
        Command::Optimize(a) => optimize::run(&ctx, a),
        Command::Bench(a) => bench::run(&ctx, a),
        Command::Live(a) => live::run(&ctx, a),
        Command::Report(a) => report::run(&ctx, a),
        Command::Partitions(a) => partitions::run(&ctx, a),
        Command::Compare(a) => compare::run(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line: `outer: inner: root`.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}
