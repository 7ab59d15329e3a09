//! Hardware and OS facts for `doctor` and benchmark provenance.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// A fingerprint of the machine a measurement was taken on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hardware {
    pub os: String,
    pub os_version: String,
    pub kernel: String,
    pub arch: String,
    pub hostname: String,
    pub cpu_model: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub memory_bytes: u64,
    /// GPUs reported by `nvidia-smi`, e.g. `NVIDIA H100 80GB HBM3, 81559 MiB, driver 580.65.06`.
    pub gpus: Vec<String>,
}

/// Reads the current machine's facts.
pub fn detect() -> Hardware {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    sys.refresh_cpu_all();
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    Hardware {
        os: std::env::consts::OS.into(),
        os_version: sysinfo::System::long_os_version().unwrap_or_default(),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: std::env::consts::ARCH.into(),
        hostname: sysinfo::System::host_name().unwrap_or_else(|| "unknown".into()),
        cpu_model,
        logical_cores: sys.cpus().len().max(1),
        physical_cores: sysinfo::System::physical_core_count(),
        memory_bytes: sys.total_memory(),
        gpus: nvidia_gpus(),
    }
}

/// GPUs listed by `nvidia-smi`, empty when it is absent.
pub fn nvidia_gpus() -> Vec<String> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').map(str::trim).collect();
                match f.as_slice() {
                    [name, mem, drv] => format!("{name}, {mem}, driver {drv}"),
                    _ => l.trim().to_string(),
                }
            })
            .filter(|l| !l.is_empty())
            .collect(),
        _ => vec![],
    }
}
