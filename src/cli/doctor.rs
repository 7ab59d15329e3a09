use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::{one_line, print_json, Ctx};
use crate::profile::{Profile, Route};
use crate::runtime::deps::{self, ProviderCheck, Resolution};
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
    /// Every provider library beside the loaded ORT (and every listed provider whose library is
    /// absent): its dependencies, the missing ones and what provides each.
    provider_libraries: Vec<ProviderCheck>,
    /// How each model role would run under each built-in profile with the loaded ORT; a provider that
    /// cannot load is never a role's route.
    routes: Vec<ProfileRoutes>,
}

#[derive(Serialize)]
struct ProfileRoutes {
    profile: String,
    routes: Vec<Route>,
}

/// Routes of every built-in profile; a profile that fails to load is reported in place.
fn all_routes(rt: &runtime::Runtime, unusable: &[(String, String)]) -> Vec<ProfileRoutes> {
    Profile::builtin_names()
        .into_iter()
        .filter_map(|name| Profile::builtin(name).ok().map(|p| (name, p)))
        .map(|(name, p)| ProfileRoutes { profile: name.to_string(), routes: p.profile.routes_with(rt, unusable) })
        .collect()
}

/// The provider-library section of the text output.
fn print_provider_libraries(checks: &[ProviderCheck]) {
    if checks.is_empty() {
        println!("provider libraries: none beside ONNX Runtime (CPU-only build)");
        return;
    }
    println!("provider libraries:");
    for c in checks {
        let who = c.provider.as_deref().unwrap_or("(unknown provider)");
        let listed = if c.listed { "listed by ORT" } else { "not listed by ORT" };
        let state = if c.usable() { "loads" } else { "CANNOT LOAD" };
        println!("  {who}: {} ({listed}): {state}", c.library.display());
        if let Some(e) = &c.error {
            println!("    {e}");
        }
        let found = c.needed.iter().filter(|(_, r)| matches!(r, Resolution::Found { .. })).count();
        if !c.needed.is_empty() {
            println!("    {} of {} linked libraries found", found, c.needed.len());
        }
        for m in &c.missing {
            println!("    missing {} — needed by {}", m.describe(), m.needed_by);
        }
        if let (false, Some(f)) = (c.missing.is_empty(), &c.facts) {
            println!("    (what provides each: ORT {} facts, data/provider-libs.toml)", f.ort_release);
        }
    }
}

pub fn run(ctx: &Ctx, _a: Args) -> Result<ExitCode> {
    let hardware = hw::detect();
    let search = runtime::discover(ctx.ort_lib.as_deref());
    let (ort, ort_error) = match ctx.runtime() {
        Ok(rt) => (Some(rt), None),
        Err(e) => (None, Some(one_line(&e))),
    };
    let provider_libraries: Vec<ProviderCheck> = ort.map(|rt| deps::checks_for(rt).to_vec()).unwrap_or_default();
    let unusable = deps::unusable_providers(&provider_libraries);
    let routes = ort.map(|rt| all_routes(rt, &unusable)).unwrap_or_default();
    let report = Report { hardware, ort_search: search.steps, ort, ort_error, provider_libraries, routes };
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
            print_provider_libraries(&report.provider_libraries);
        }
        if !report.routes.is_empty() {
            println!("model routes per built-in profile:");
        }
        for pr in &report.routes {
            for r in &pr.routes {
                let fb = match (&r.problem, r.fallback) {
                    (Some(_), _) => "  (requested EP cannot load: see provider libraries; bench needs --fallback cpu)",
                    (None, true) => "  (requested EP absent: bench needs --fallback cpu)",
                    (None, false) => "",
                };
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
