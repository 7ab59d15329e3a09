//! Watching the device while a run works: every ~100 ms, GPU utilisation, memory used, SM clock and
//! power through NVML (`nvml-wrapper`, which loads `libnvidia-ml` at run time, so a machine without an
//! NVIDIA driver runs on with one note), and the CPU busy time of each of faceperf's own threads
//! (`/proc/self/task/*/stat` on Linux).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

/// One GPU reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// ms since the monitor started.
    pub t_ms: f64,
    /// GPU utilisation over NVML's last sample period, %.
    pub util_pct: f64,
    /// Device memory in use, MiB.
    pub mem_used_mib: f64,
    /// SM clock, MHz.
    pub sm_clock_mhz: f64,
    /// Board power draw, W.
    pub power_w: f64,
}

/// Where GPU readings come from.
pub trait GpuSampler: Send {
    /// The device, e.g. `NVIDIA H100 80GB HBM3 (GPU 0)`.
    fn device(&self) -> String;
    /// One reading (its `t_ms` is filled in by the monitor).
    fn sample(&mut self) -> Result<GpuSample>;
}

/// NVML through `nvml-wrapper` (libnvidia-ml loaded at run time).
pub struct NvmlSampler {
    nvml: nvml_wrapper::Nvml,
    index: u32,
    name: String,
}

impl NvmlSampler {
    /// Opens NVML and GPU `index`; fails (with the reason) when no NVIDIA driver is present.
    pub fn open(index: u32) -> Result<NvmlSampler> {
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| anyhow!("NVML is not available ({e})"))?;
        let name = {
            let dev = nvml.device_by_index(index).map_err(|e| anyhow!("NVML has no GPU {index} ({e})"))?;
            dev.name().unwrap_or_else(|_| "NVIDIA GPU".into())
        };
        Ok(NvmlSampler { nvml, index, name })
    }
}

impl GpuSampler for NvmlSampler {
    fn device(&self) -> String {
        format!("{} (GPU {})", self.name, self.index)
    }

    fn sample(&mut self) -> Result<GpuSample> {
        use nvml_wrapper::enum_wrappers::device::Clock;
        let dev = self.nvml.device_by_index(self.index).map_err(|e| anyhow!("{e}"))?;
        let util = dev.utilization_rates().map_err(|e| anyhow!("utilisation: {e}"))?;
        let mem = dev.memory_info().map_err(|e| anyhow!("memory: {e}"))?;
        Ok(GpuSample {
            t_ms: 0.0,
            util_pct: util.gpu as f64,
            mem_used_mib: mem.used as f64 / (1u64 << 20) as f64,
            sm_clock_mhz: dev.clock_info(Clock::SM).map(|c| c as f64).unwrap_or(f64::NAN),
            power_w: dev.power_usage().map(|mw| mw as f64 / 1000.0).unwrap_or(f64::NAN),
        })
    }
}

/// CPU busy time of one of faceperf's threads over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadBusy {
    /// Kernel thread id.
    pub tid: u64,
    /// The thread's name (`comm`): `faceperf` for the main (pipeline) thread, `fp-capture`,
    /// `fp-detect`, or ORT's worker threads (which inherit the name of the thread that made them).
    pub name: String,
    /// CPU seconds used during the monitored time.
    pub cpu_s: f64,
    /// Busy fraction of the monitored wall time (0..1 per core).
    pub busy: f64,
    /// Busy fraction per sample interval, one per sample (aligned with `MonitorReport::t_ms`).
    pub samples: Vec<f64>,
}

/// What the monitor saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    /// Sampling interval asked for, ms.
    pub interval_ms: f64,
    /// The GPU sampled, or `None`.
    pub gpu_device: Option<String>,
    /// Why there are no GPU samples (no NVIDIA driver, …), said once.
    pub gpu_note: Option<String>,
    pub gpu: Vec<GpuSample>,
    /// Sample times of the thread series, ms since the monitor started.
    pub t_ms: Vec<f64>,
    /// Threads that were busy at least 1 % of the time, busiest first.
    pub threads: Vec<ThreadBusy>,
    /// Clock offset: the monitor's t = 0 in µs since the pipeline's clock started (for timelines).
    pub start_us: f64,
}

impl MonitorReport {
    /// Median GPU utilisation as a fraction, when sampled.
    pub fn gpu_util_median(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.gpu.iter().map(|s| s.util_pct).filter(|u| u.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2] / 100.0)
    }

    /// The samples as CSV: `t_ms,gpu_util_pct,gpu_mem_used_mib,gpu_sm_clock_mhz,gpu_power_w` then
    /// one busy-fraction column per thread (`<name>_<tid>_busy`).
    pub fn csv(&self) -> String {
        let mut out = String::from("t_ms,gpu_util_pct,gpu_mem_used_mib,gpu_sm_clock_mhz,gpu_power_w");
        for t in &self.threads {
            out.push_str(&format!(",{}_{}_busy", t.name.replace([',', ' '], "_"), t.tid));
        }
        out.push('\n');
        for (i, t) in self.t_ms.iter().enumerate() {
            out.push_str(&format!("{t:.1}"));
            match self.gpu.get(i) {
                Some(g) => out.push_str(&format!(
                    ",{:.0},{:.0},{:.0},{:.1}",
                    g.util_pct, g.mem_used_mib, g.sm_clock_mhz, g.power_w
                )),
                None => out.push_str(",,,,"),
            }
            for th in &self.threads {
                out.push_str(&th.samples.get(i).map(|b| format!(",{b:.3}")).unwrap_or_else(|| ",".into()));
            }
            out.push('\n');
        }
        out
    }
}

/// CPU ticks (user + system) and name of each thread of this process; empty off Linux.
pub fn thread_ticks() -> Vec<(u64, String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return vec![] };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let tid: u64 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (name, ticks) = parse_stat(&stat)?;
            // The main thread (the pipeline's) shares its name with ORT's workers, which inherit it.
            let name = if tid == u64::from(std::process::id()) { format!("{name} (main)") } else { name };
            Some((tid, name, ticks))
        })
        .collect()
}

/// `(comm, utime + stime)` from a `/proc/.../stat` line.
pub fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    Some((name, fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?))
}

/// Clock ticks per second of `/proc` times (100 on every Linux ABI faceperf runs on).
const TICKS_PER_S: f64 = 100.0;

/// A running monitor; [`Monitor::finish`] stops it and returns what it saw.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<MonitorReport>,
}

impl Monitor {
    /// Starts sampling every `interval` on its own thread. `gpu` is the sampler, or the reason there
    /// is none (which goes into the report, said once). `start_us` places t = 0 on the caller's clock.
    pub fn start(interval: Duration, gpu: std::result::Result<Box<dyn GpuSampler>, String>, start_us: f64) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("fp-monitor".into())
            .spawn(move || sample_loop(interval, gpu, &flag, start_us))
            .expect("spawning the monitor thread");
        Monitor { stop, handle }
    }

    /// Stops sampling and returns the report.
    pub fn finish(self) -> MonitorReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        self.handle.join().unwrap_or_default()
    }
}

fn sample_loop(
    interval: Duration,
    gpu: std::result::Result<Box<dyn GpuSampler>, String>,
    stop: &AtomicBool,
    start_us: f64,
) -> MonitorReport {
    let t0 = Instant::now();
    let own = std::fs::read_to_string("/proc/thread-self/stat").ok().and_then(|s| parse_stat(&s)).map(|p| p.0);
    let mut rep = MonitorReport { interval_ms: interval.as_secs_f64() * 1e3, start_us, ..Default::default() };
    let mut sampler = match gpu {
        Ok(s) => {
            rep.gpu_device = Some(s.device());
            Some(s)
        }
        Err(why) => {
            rep.gpu_note = Some(why);
            None
        }
    };
    let mut last = thread_ticks();
    // (tid, name, busy per sample, ticks counted)
    let mut series: Vec<(u64, String, Vec<f64>, u64)> = Vec::new();
    let mut last_t = t0;
    // One sample per interval, and a last one when stopped (so even a run shorter than the interval
    // has one).
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if !stopping {
            std::thread::park_timeout(interval);
        }
        let stopping = stopping || stop.load(Ordering::SeqCst);
        let now = Instant::now();
        let dt = now.duration_since(last_t).as_secs_f64().max(1e-6);
        last_t = now;
        let t_ms = now.duration_since(t0).as_secs_f64() * 1e3;
        rep.t_ms.push(t_ms);
        if let Some(s) = sampler.as_mut() {
            match s.sample() {
                Ok(mut g) => {
                    g.t_ms = t_ms;
                    rep.gpu.push(g);
                }
                Err(e) => {
                    rep.gpu_note = Some(format!("GPU sampling stopped: {e:#}"));
                    sampler = None;
                }
            }
        }
        let cur = thread_ticks();
        let n = rep.t_ms.len();
        for (tid, name, ticks) in &cur {
            let before = last.iter().find(|p| p.0 == *tid).map(|p| p.2).unwrap_or(*ticks);
            let delta = ticks.saturating_sub(before);
            let busy = delta as f64 / TICKS_PER_S / dt;
            let idx = match series.iter().position(|s| s.0 == *tid) {
                Some(i) => i,
                None => {
                    series.push((*tid, name.clone(), Vec::new(), 0));
                    series.len() - 1
                }
            };
            let s = &mut series[idx];
            s.2.resize(n - 1, 0.0);
            s.2.push(busy);
            s.3 += delta;
        }
        last = cur;
        if stopping {
            break;
        }
    }
    let wall_s = t0.elapsed().as_secs_f64().max(1e-6);
    let n = rep.t_ms.len();
    rep.threads = series
        .into_iter()
        .filter(|(_, name, _, _)| Some(name) != own.as_ref())
        .map(|(tid, name, mut samples, ticks)| {
            // A thread that ended before the last sample was idle after it.
            samples.resize(n, 0.0);
            let cpu_s = ticks as f64 / TICKS_PER_S;
            ThreadBusy { tid, name, cpu_s, busy: cpu_s / wall_s, samples }
        })
        .filter(|t| t.busy >= 0.01)
        .collect();
    rep.threads.sort_by(|a, b| b.busy.total_cmp(&a.busy));
    rep
}

/// The GPU sampler for a run: NVML's GPU 0, or the reason there is none.
pub fn default_sampler() -> std::result::Result<Box<dyn GpuSampler>, String> {
    NvmlSampler::open(0).map(|s| Box::new(s) as Box<dyn GpuSampler>).map_err(|e| format!("no GPU samples: {e:#}"))
}

/// A sampler reporting the same readings every time: for tests and dry runs of the GPU code path on
/// machines without an NVIDIA GPU. Its device name says so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedSampler(pub GpuSample);

impl GpuSampler for FixedSampler {
    fn device(&self) -> String {
        "fixed readings (no GPU sampled)".into()
    }
    fn sample(&mut self) -> Result<GpuSample> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_and_parens_in_the_name() {
        let line = "4242 (fp detect (x)) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 9 0";
        assert_eq!(parse_stat(line), Some(("fp detect (x)".to_string(), 267)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_busy_thread_and_fixed_gpu_readings_are_sampled() {
        let g = GpuSample { t_ms: 0.0, util_pct: 46.0, mem_used_mib: 2048.0, sm_clock_mhz: 1980.0, power_w: 310.0 };
        let m = Monitor::start(Duration::from_millis(20), Ok(Box::new(FixedSampler(g))), 0.0);
        let spin = std::thread::Builder::new()
            .name("fp-spin".into())
            .spawn(|| {
                let t = Instant::now();
                let mut x = 0u64;
                while t.elapsed() < Duration::from_millis(300) {
                    x = x.wrapping_mul(31).wrapping_add(1);
                }
                x
            })
            .unwrap();
        spin.join().unwrap();
        let r = m.finish();
        assert!(r.gpu.len() >= 2 && r.gpu.len() == r.t_ms.len(), "{} samples", r.gpu.len());
        assert!(r.gpu.windows(2).all(|w| w[1].t_ms > w[0].t_ms));
        assert_eq!(r.gpu_util_median(), Some(0.46));
        assert!(r.gpu_note.is_none());
        if std::path::Path::new("/proc/self/task").is_dir() {
            let spin = r.threads.iter().find(|t| t.name == "fp-spin").expect("the spinning thread is seen");
            assert!(spin.cpu_s > 0.0 && spin.samples.len() == r.t_ms.len());
            assert!(r.threads.iter().all(|t| t.name != "fp-monitor"), "the monitor leaves itself out");
        }
        let csv = r.csv();
        assert!(csv.starts_with("t_ms,gpu_util_pct,gpu_mem_used_mib,gpu_sm_clock_mhz,gpu_power_w"));
        assert_eq!(csv.lines().count(), r.t_ms.len() + 1);
        assert!(csv.lines().nth(1).unwrap().contains(",46,2048,1980,310.0"));
    }

    #[test]
    fn without_a_driver_the_reason_is_kept_once() {
        let m = Monitor::start(Duration::from_millis(10), Err("no GPU samples: NVML is not available".into()), 0.0);
        std::thread::sleep(Duration::from_millis(40));
        let r = m.finish();
        assert!(r.gpu.is_empty() && !r.t_ms.is_empty());
        assert_eq!(r.gpu_note.as_deref(), Some("no GPU samples: NVML is not available"));
    }
}
