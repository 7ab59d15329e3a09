use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::{one_line, print_json, Ctx};
use crate::profile::{Profile, Route};
use crate::runtime::{self, discover::Step};
use crate::util::hw;

/// Arguments of `faceperf doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Report {
    hardware: hw::Hardware,
    ort_search: Vec<Step>,
    ort: Option<&'static runtime::Runtime>,
    ort_error: Option<String>,
    /// How each model role would run under each built-in profile with the loaded ORT.
    routes: Vec<ProfileRoutes>,
}

#[derive(Serialize)]
struct ProfileRoutes {
    profile: String,
    routes: Vec<Route>,
}

/// Routes of every built-in profile; a profile that fails to load is reported in place.
fn all_routes(rt: &runtime::Runtime) -> Vec<ProfileRoutes> {
    Profile::builtin_names()
        .into_iter()
        .filter_map(|name| Profile::builtin(name).ok().map(|p| (name, p)))
        .map(|(name, p)| ProfileRoutes { profile: name.to_string(), routes: p.profile.routes(rt) })
        .collect()
}

pub fn run(ctx: &Ctx, _a: Args) -> Result<ExitCode> {
    let hardware = hw::detect();
    let search = runtime::discover(ctx.ort_lib.as_deref());
    let (ort, ort_error) = match ctx.runtime() {
        Ok(rt) => (Some(rt), None),
        Err(e) => (None, Some(one_line(&e))),
    };
    let routes = ort.map(all_routes).unwrap_or_default();
    let report = Report { hardware, ort_search: search.steps, ort, ort_error, routes };
    if ctx.json {
        print_json(&report)?;
    } else {
        let h = &report.hardware;
        println!("faceperf {} (built from {})", env!("CARGO_PKG_VERSION"), crate::BUILD_COMMIT);
        println!("os:        {} {} ({}), kernel {}", h.os, h.os_version, h.arch, h.kernel);
        println!("host:      {}", h.hostname);
        let phys = h.physical_cores.map(|p| format!(", {p} physical")).unwrap_or_default();
        println!("cpu:       {} ({} logical cores{phys})", h.cpu_model, h.logical_cores);
        println!("memory:    {:.1} GiB", h.memory_bytes as f64 / (1u64 << 30) as f64);
        if h.gpus.is_empty() {
            println!("gpu:       none visible (no nvidia-smi)");
        }
        for g in &h.gpus {
            println!("gpu:       {g}");
        }
        println!("onnxruntime search:");
        for s in &report.ort_search {
            let found = s.found.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into());
            println!("  {:<14} {found}  ({})", s.source, s.note);
        }
        if let Some(rt) = report.ort {
            println!("onnxruntime: {} from {} (via {})", rt.version, rt.library.display(), rt.source);
            println!("providers:   {}", rt.providers.join(", "));
        }
        if !report.routes.is_empty() {
            println!("model routes per built-in profile:");
        }
        for pr in &report.routes {
            for r in &pr.routes {
                let fb = if r.fallback { "  (requested EP absent: bench needs --fallback cpu)" } else { "" };
                println!("  {:<9} {:<10} {:<8} -> {}{fb}", pr.profile, r.role.name(), r.variant.name(), r.runs_on);
            }
        }
    }
    match report.ort_error {
        Some(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
