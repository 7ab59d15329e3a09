//! The state of the machine that moves numbers, read before and after a benchmark: load average,
//! CPU frequency governor and current / maximum frequency, thermal zones (Linux) or `pmset -g therm`
//! (macOS), the power source, and GPU clocks through `nvidia-smi` when a GPU is used. Everything is
//! best effort: what cannot be read is left out, never guessed.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// One thermal zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thermal {
    /// Zone type (`x86_pkg_temp`, `acpitz`, …).
    pub name: String,
    pub celsius: f64,
}

/// One GPU's clocks and state as `nvidia-smi --query-gpu` reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuState {
    pub index: u32,
    pub name: String,
    pub sm_mhz: Option<f64>,
    pub mem_mhz: Option<f64>,
    pub max_sm_mhz: Option<f64>,
    pub celsius: Option<f64>,
    pub power_w: Option<f64>,
    /// Performance state (`P0` … `P12`).
    pub pstate: String,
}

/// What was readable at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MachineState {
    /// 1-, 5- and 15-minute load averages.
    #[serde(default)]
    pub load_average: Option<[f64; 3]>,
    /// Distinct `scaling_governor` values over the CPUs.
    #[serde(default)]
    pub cpu_governor: Vec<String>,
    /// Mean current frequency over the CPUs, MHz (cpufreq, else `/proc/cpuinfo`).
    #[serde(default)]
    pub cpu_mhz: Option<f64>,
    /// Lowest current frequency over the CPUs, MHz.
    #[serde(default)]
    pub cpu_mhz_min: Option<f64>,
    /// Highest maximum frequency over the CPUs (`cpuinfo_max_freq`), MHz.
    #[serde(default)]
    pub cpu_mhz_max: Option<f64>,
    /// Linux thermal zones.
    #[serde(default)]
    pub thermal: Vec<Thermal>,
    /// macOS `pmset -g therm` lines that carry a value (CPU speed limit, thermal warning level).
    #[serde(default)]
    pub macos_therm: Vec<String>,
    /// `AC`, `battery` or the supply's own words, where readable.
    #[serde(default)]
    pub power_source: Option<String>,
    /// GPUs, when a GPU was used and `nvidia-smi` is present.
    #[serde(default)]
    pub gpus: Vec<GpuState>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn load_average() -> Option<[f64; 3]> {
    let l = sysinfo::System::load_average();
    (l.one > 0.0 || l.five > 0.0 || l.fifteen > 0.0).then_some([l.one, l.five, l.fifteen])
}

/// (governors, mean cur MHz, min cur MHz, max MHz) from cpufreq, else `/proc/cpuinfo`'s `cpu MHz`.
fn cpu_freq() -> (Vec<String>, Option<f64>, Option<f64>, Option<f64>) {
    let mut governors: Vec<String> = Vec::new();
    let (mut cur, mut max) = (Vec::new(), None::<f64>);
    let cpus = std::fs::read_dir("/sys/devices/system/cpu").into_iter().flatten().flatten();
    for e in cpus {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("cpu") || !name[3..].chars().all(|c| c.is_ascii_digit()) || name.len() == 3 {
            continue;
        }
        let f = e.path().join("cpufreq");
        if let Some(g) = read(&f.join("scaling_governor")) {
            if !governors.contains(&g) {
                governors.push(g);
            }
        }
        if let Some(khz) = read(&f.join("scaling_cur_freq")).and_then(|s| s.parse::<f64>().ok()) {
            cur.push(khz / 1000.0);
        }
        if let Some(khz) = read(&f.join("cpuinfo_max_freq")).and_then(|s| s.parse::<f64>().ok()) {
            max = Some(max.map_or(khz / 1000.0, |m: f64| m.max(khz / 1000.0)));
        }
    }
    if cur.is_empty() {
        let info = read(Path::new("/proc/cpuinfo")).unwrap_or_default();
        cur = info
            .lines()
            .filter(|l| l.starts_with("cpu MHz"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
            .collect();
    }
    governors.sort();
    let mean = (!cur.is_empty()).then(|| cur.iter().sum::<f64>() / cur.len() as f64);
    let min = cur.iter().copied().reduce(f64::min);
    (governors, mean, min, max)
}

fn thermal_zones() -> Vec<Thermal> {
    let mut out: Vec<(String, Thermal)> = std::fs::read_dir("/sys/class/thermal")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| {
            let milli: f64 = read(&e.path().join("temp"))?.parse().ok()?;
            let name = read(&e.path().join("type")).unwrap_or_else(|| e.file_name().to_string_lossy().into_owned());
            Some((e.file_name().to_string_lossy().into_owned(), Thermal { name, celsius: milli / 1000.0 }))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, t)| t).collect()
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Linux: a `Mains` supply that is online means AC; a battery without it means battery.
fn power_source_linux() -> Option<String> {
    let supplies: Vec<(String, Option<String>, Option<String>)> = std::fs::read_dir("/sys/class/power_supply")
        .ok()?
        .flatten()
        .map(|e| {
            (
                read(&e.path().join("type")).unwrap_or_default(),
                read(&e.path().join("online")),
                read(&e.path().join("status")),
            )
        })
        .collect();
    if supplies.iter().any(|(t, online, _)| t == "Mains" && online.as_deref() == Some("1")) {
        return Some("AC".into());
    }
    supplies.iter().find(|(t, _, _)| t == "Battery").map(|(_, _, status)| match status.as_deref() {
        Some("Discharging") => "battery".to_string(),
        Some(s) => format!("battery ({s})"),
        None => "battery".to_string(),
    })
}

/// macOS: `pmset -g batt`'s first line says "Now drawing from 'AC Power'" or "'Battery Power'".
fn power_source_macos() -> Option<String> {
    let out = run("pmset", &["-g", "batt"])?;
    let line = out.lines().next()?;
    let src = line.split('\'').nth(1)?;
    Some(if src.starts_with("AC") {
        "AC".into()
    } else if src.starts_with("Battery") {
        "battery".into()
    } else {
        src.into()
    })
}

/// `pmset -g therm` lines with a value, e.g. `CPU_Speed_Limit = 100`.
fn macos_therm() -> Vec<String> {
    run("pmset", &["-g", "therm"])
        .map(|o| o.lines().map(str::trim).filter(|l| l.contains('=')).map(String::from).collect())
        .unwrap_or_default()
}

/// Parses `nvidia-smi --query-gpu=index,name,clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw,pstate
/// --format=csv,noheader,nounits` output.
pub fn parse_nvidia_smi(text: &str) -> Vec<GpuState> {
    let num = |s: &str| s.trim().parse::<f64>().ok();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            if f.len() < 8 {
                return None;
            }
            Some(GpuState {
                index: f[0].parse().ok()?,
                name: f[1].to_string(),
                sm_mhz: num(f[2]),
                mem_mhz: num(f[3]),
                max_sm_mhz: num(f[4]),
                celsius: num(f[5]),
                power_w: num(f[6]),
                pstate: f[7].to_string(),
            })
        })
        .collect()
}

fn gpu_states() -> Vec<GpuState> {
    let q = "--query-gpu=index,name,clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw,pstate";
    run("nvidia-smi", &[q, "--format=csv,noheader,nounits"]).map(|o| parse_nvidia_smi(&o)).unwrap_or_default()
}

impl MachineState {
    /// Reads the state now; GPU clocks only when `gpu` (a GPU execution provider is in use).
    pub fn read(gpu: bool) -> MachineState {
        let (cpu_governor, cpu_mhz, cpu_mhz_min, cpu_mhz_max) = cpu_freq();
        let macos = cfg!(target_os = "macos");
        MachineState {
            load_average: load_average(),
            cpu_governor,
            cpu_mhz,
            cpu_mhz_min,
            cpu_mhz_max,
            thermal: thermal_zones(),
            macos_therm: if macos { macos_therm() } else { vec![] },
            power_source: if macos { power_source_macos() } else { power_source_linux() },
            gpus: if gpu { gpu_states() } else { vec![] },
        }
    }

    /// One line for the terminal and reports: what was readable.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.load_average {
            parts.push(format!("load {:.2}", l[0]));
        }
        if !self.cpu_governor.is_empty() {
            parts.push(format!("governor {}", self.cpu_governor.join("/")));
        }
        match (self.cpu_mhz, self.cpu_mhz_max) {
            (Some(c), Some(m)) => parts.push(format!("CPU {c:.0} of {m:.0} MHz")),
            (Some(c), None) => parts.push(format!("CPU {c:.0} MHz")),
            _ => {}
        }
        if let Some(t) = self.thermal.iter().map(|t| t.celsius).reduce(f64::max) {
            parts.push(format!("hottest zone {t:.0} °C"));
        }
        parts.extend(self.macos_therm.iter().cloned());
        if let Some(p) = &self.power_source {
            parts.push(format!("power {p}"));
        }
        for g in &self.gpus {
            let sm = g.sm_mhz.map(|x| format!("{x:.0}")).unwrap_or("?".into());
            parts.push(format!("GPU{} {} SM {sm} MHz", g.index, g.pstate));
        }
        if parts.is_empty() {
            "nothing readable".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Thresholds of [`changes`]: 1-minute load average (absolute, and relative to the larger of the
/// two), CPU and GPU clocks (relative), temperatures (°C).
pub const LOAD_CHANGE: f64 = 0.5;
pub const LOAD_CHANGE_REL: f64 = 0.2;
pub const CLOCK_CHANGE: f64 = 0.10;
pub const THERMAL_CHANGE_C: f64 = 5.0;

fn rel_change(a: Option<f64>, b: Option<f64>) -> Option<(f64, f64)> {
    let (a, b) = (a?, b?);
    (a > 0.0 && ((b - a) / a).abs() > CLOCK_CHANGE).then_some((a, b))
}

/// What changed between `start` and `end` beyond the thresholds, one sentence each.
pub fn changes(start: &MachineState, end: &MachineState, logical_cores: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (start.load_average, end.load_average) {
        let d = (b[0] - a[0]).abs();
        if d > LOAD_CHANGE && d > LOAD_CHANGE_REL * a[0].max(b[0]) {
            out.push(format!("load average moved {:.2} → {:.2} on {logical_cores} logical cores", a[0], b[0]));
        }
    }
    if !start.cpu_governor.is_empty() && !end.cpu_governor.is_empty() && start.cpu_governor != end.cpu_governor {
        out.push(format!("CPU governor changed {} → {}", start.cpu_governor.join("/"), end.cpu_governor.join("/")));
    }
    if let Some((a, b)) = rel_change(start.cpu_mhz_min, end.cpu_mhz_min) {
        out.push(format!("slowest CPU clock moved {a:.0} → {b:.0} MHz"));
    }
    for (a, b) in start.thermal.iter().zip(&end.thermal).filter(|(a, b)| a.name == b.name) {
        if (b.celsius - a.celsius).abs() > THERMAL_CHANGE_C {
            out.push(format!("thermal zone {} moved {:.0} → {:.0} °C", a.name, a.celsius, b.celsius));
        }
    }
    if start.macos_therm != end.macos_therm && !start.macos_therm.is_empty() {
        out.push(format!(
            "pmset thermal state changed: {} → {}",
            start.macos_therm.join("; "),
            end.macos_therm.join("; ")
        ));
    }
    if let (Some(a), Some(b)) = (&start.power_source, &end.power_source) {
        if a != b {
            out.push(format!("power source changed {a} → {b}"));
        }
    }
    for (a, b) in start.gpus.iter().zip(&end.gpus).filter(|(a, b)| a.index == b.index) {
        if let Some((x, y)) = rel_change(a.sm_mhz, b.sm_mhz) {
            out.push(format!("GPU{} SM clock moved {x:.0} → {y:.0} MHz", a.index));
        }
        if a.pstate != b.pstate {
            out.push(format!("GPU{} performance state changed {} → {}", a.index, a.pstate, b.pstate));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_rows_parse() {
        let g = parse_nvidia_smi(
            "0, NVIDIA H100 80GB HBM3, 1980, 2619, 1980, 34, 71.52, P0\n1, X, [N/A], 1, 2, 3, 4, P8\nbad\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].index, g[0].sm_mhz, g[0].pstate.as_str()), (0, Some(1980.0), "P0"));
        assert_eq!(g[1].sm_mhz, None);
    }

    #[test]
    fn changes_name_what_moved_beyond_the_thresholds() {
        let a = MachineState {
            load_average: Some([0.2, 0.2, 0.2]),
            cpu_governor: vec!["performance".into()],
            cpu_mhz_min: Some(3000.0),
            thermal: vec![Thermal { name: "pkg".into(), celsius: 50.0 }],
            power_source: Some("AC".into()),
            gpus: parse_nvidia_smi("0, G, 1980, 2619, 1980, 34, 70, P0"),
            ..Default::default()
        };
        assert!(changes(&a, &a, 2).is_empty());
        let mut b = a.clone();
        b.load_average = Some([1.9, 0.5, 0.3]);
        b.cpu_governor = vec!["powersave".into()];
        b.cpu_mhz_min = Some(2000.0);
        b.thermal[0].celsius = 80.0;
        b.power_source = Some("battery".into());
        b.gpus = parse_nvidia_smi("0, G, 1410, 2619, 1980, 80, 300, P2");
        let c = changes(&a, &b, 2);
        assert_eq!(c.len(), 7, "{c:#?}");
        for needle in ["load average", "governor", "3000 → 2000", "pkg", "battery", "SM clock", "P0 → P2"] {
            assert!(c.iter().any(|l| l.contains(needle)), "{needle}: {c:#?}");
        }
        // Small moves are not changes.
        let mut d = a.clone();
        d.load_average = Some([0.5, 0.2, 0.2]);
        d.cpu_mhz_min = Some(2900.0);
        d.thermal[0].celsius = 53.0;
        assert!(changes(&a, &d, 2).is_empty());
        // On a machine loaded either way, a small relative move of the load is not a change.
        let (mut e, mut f) = (a.clone(), a.clone());
        e.load_average = Some([13.6, 13.0, 12.0]);
        f.load_average = Some([13.0, 13.0, 12.0]);
        assert!(changes(&e, &f, 2).is_empty());
    }

    #[test]
    fn reading_this_machine_never_fails() {
        let s = MachineState::read(false);
        assert!(s.gpus.is_empty());
        assert!(!s.summary().is_empty());
    }
}
