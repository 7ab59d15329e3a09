//! The device monitor's samples of a run over time: GPU utilisation and the CPU busy fraction of the
//! busiest threads (`MonitorReport` in the results JSON), one line each, 0–100 %.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::Figure;
use crate::runtime::gpu_monitor::MonitorReport;

/// A line chart of one run's monitor samples.
pub struct MonitorChart {
    pub title: String,
    /// (label, points (s, %)).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// The chart of `m`: GPU utilisation when sampled, and the four busiest threads; `None` without samples.
pub fn monitor_chart(title: &str, m: &MonitorReport) -> Option<MonitorChart> {
    let mut series = Vec::new();
    if !m.gpu.is_empty() {
        series.push(("GPU utilisation".to_string(), m.gpu.iter().map(|g| (g.t_ms / 1e3, g.util_pct)).collect()));
    }
    for t in m.threads.iter().take(4) {
        let pts = m.t_ms.iter().zip(&t.samples).map(|(ms, b)| (ms / 1e3, 100.0 * b)).collect();
        series.push((format!("{} ({}) CPU", t.name, t.tid), pts));
    }
    (!series.is_empty() && !m.t_ms.is_empty()).then(|| MonitorChart { title: title.into(), series })
}

/// The font `plots` registers (its built-in DejaVu Sans).
const FONT: &str = "sans-serif";

fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

impl Figure for MonitorChart {
    fn size(&self) -> (u32, u32) {
        (900, 360)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let end = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(0.0, f64::max).max(0.1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..end, 0.0..105.0)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("s since the run started")
            .y_desc("% busy")
            .label_style((FONT, 12))
            .draw()
            .map_err(de)?;
        for (i, (label, pts)) in self.series.iter().enumerate() {
            let c = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(de)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(de)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::gpu_monitor::{GpuSample, ThreadBusy};

    #[test]
    fn samples_become_one_line_each_and_the_figure_is_written() {
        let g = |t: f64, u: f64| GpuSample { t_ms: t, util_pct: u, mem_used_mib: 1.0, sm_clock_mhz: 1.0, power_w: 1.0 };
        let m = MonitorReport {
            interval_ms: 100.0,
            gpu_device: Some("test".into()),
            gpu: vec![g(100.0, 40.0), g(200.0, 55.0)],
            t_ms: vec![100.0, 200.0],
            threads: vec![ThreadBusy {
                tid: 7,
                name: "fp-detect".into(),
                cpu_s: 0.1,
                busy: 0.5,
                samples: vec![0.4, 0.6],
            }],
            ..Default::default()
        };
        let c = monitor_chart("Device", &m).unwrap();
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.series[0].1, vec![(0.1, 40.0), (0.2, 55.0)]);
        assert_eq!(c.series[1].1, vec![(0.1, 40.0), (0.2, 60.0)]);
        let dir = tempfile::tempdir().unwrap();
        let w = super::super::plots::save(&c, dir.path(), "device").unwrap();
        let svg = std::fs::read_to_string(&w.svg).unwrap();
        assert!(svg.contains("GPU utilisation") && svg.contains("fp-detect (7) CPU"));
        assert!(monitor_chart("none", &MonitorReport::default()).is_none());
    }
}
