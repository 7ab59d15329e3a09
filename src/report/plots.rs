//! Figures (plotters), each written as SVG and PNG: grouped bar charts with 95% CI error bars, a
//! stacked bar of one frame's time, and box plots of the latency samples. The font (DejaVu Sans,
//! `assets/fonts/`) is built into the binary, so faceperf needs no fontconfig/freetype at run time
//! (the lent H100 machine had neither); sizes are chosen to be legible at 100% zoom.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::load::Run;
use super::metrics::{self, Headline, Kind, Pipeline, Value, VariantRow};
use super::regress::{Comparison, Verdict};
use super::tables::num;
use crate::bench::stats::quantile;
use crate::models::Role;

const FONT: &str = "sans-serif";
const TITLE: u32 = 26;
const LABEL: u32 = 17;
const DESC: u32 = 19;
const SMALL: u32 = 15;

/// Series colours (colour-blind-safe Tableau 10 order).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Stage colours of the stacked bar, by [`Role::ALL`] order.
const ROLE_COLORS: [RGBColor; 5] = [
    RGBColor(78, 121, 167),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
];

/// An axis tick label: [`num`] without trailing zeros (`0.1`, not `0.100`).
fn tick(x: f64) -> String {
    let s = num(x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Colour of shaded bands.
const BAND: RGBColor = RGBColor(200, 200, 200);

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

fn text_style(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(h, v))
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Pixel size.
    fn size(&self) -> (u32, u32);
    /// Draws on a white area of [`Figure::size`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// A written figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// Registers the built-in font under [`FONT`] once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../../assets/fonts/DejaVuSans.ttf"))
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the built-in font (assets/fonts/DejaVuSans.ttf) could not be loaded"))
    }
}

/// Writes `<dir>/<stem>.svg` and `<dir>/<stem>.png`.
pub fn save<F: Figure>(fig: &F, dir: &Path, stem: &str) -> Result<Written> {
    ensure_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (w, h) = fig.size();
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        fig.draw(&root).with_context(|| format!("{}", svg.display()))?;
        root.present().map_err(de).with_context(|| format!("cannot write {}", svg.display()))?;
    }
    let png = dir.join(format!("{stem}.png"));
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        fig.draw(&root).with_context(|| format!("{}", png.display()))?;
        root.present().map_err(de)?;
    }
    image::save_buffer(&png, &buf, w, h, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("cannot write {}", png.display()))?;
    Ok(Written { svg, png })
}

/// One legend entry: a swatch and its text.
struct LegendItem {
    text: String,
    color: RGBColor,
    /// Hollow swatch (published numbers).
    hollow: bool,
    /// A line instead of a box (error bars).
    line: bool,
}

/// Draws a wrapping row of legend items; returns the height used.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, items: &[LegendItem], dry: bool) -> Result<i32> {
    let (w, _) = area.dim_in_pixel();
    let style = text_style(LABEL, HPos::Left, VPos::Center);
    let (mut x, mut y, line_h) = (10i32, 14i32, 26i32);
    for it in items {
        let (tw, _) = area.estimate_text_size(&it.text, &style).map_err(de)?;
        let item_w = 30 + tw as i32 + 24;
        if x + item_w > w as i32 && x > 10 {
            x = 10;
            y += line_h;
        }
        if !dry {
            if it.line {
                area.draw(&PathElement::new(vec![(x + 10, y - 9), (x + 10, y + 9)], BLACK.stroke_width(2)))
                    .map_err(de)?;
                area.draw(&PathElement::new(vec![(x + 4, y - 9), (x + 16, y - 9)], BLACK.stroke_width(2)))
                    .map_err(de)?;
                area.draw(&PathElement::new(vec![(x + 4, y + 9), (x + 16, y + 9)], BLACK.stroke_width(2)))
                    .map_err(de)?;
            } else {
                let fill = if it.hollow { it.color.mix(0.25).filled() } else { it.color.filled() };
                area.draw(&Rectangle::new([(x, y - 9), (x + 22, y + 9)], fill)).map_err(de)?;
                if it.hollow {
                    area.draw(&Rectangle::new([(x, y - 9), (x + 22, y + 9)], it.color.stroke_width(3))).map_err(de)?;
                }
            }
            area.draw_text(&it.text, &style, (x + 30, y)).map_err(de)?;
        }
        x += item_w;
    }
    Ok(y + 16)
}

/// Title, legend strip and footnote around a plot area; returns the plot area.
fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    items: &[LegendItem],
    footnote: &str,
) -> Result<DrawingArea<DB, Shift>> {
    let (w, h) = root.dim_in_pixel();
    root.draw_text(title, &text_style(TITLE, HPos::Center, VPos::Top), (w as i32 / 2, 10)).map_err(de)?;
    let (_, rest) = root.split_vertically(50);
    let legend_h = legend(&rest, items, true)?;
    let (legend_area, rest) = rest.split_vertically(legend_h + 6);
    legend(&legend_area, items, false)?;
    let lines = wrap(root, footnote, w as i32 - 24)?;
    let foot_h = 8 + 22 * lines.len() as i32;
    let (plot, foot) = rest.split_vertically((h as i32 - 56 - legend_h - foot_h).max(100));
    for (i, l) in lines.iter().enumerate() {
        foot.draw_text(l, &text_style(SMALL, HPos::Left, VPos::Top), (12, 4 + 22 * i as i32)).map_err(de)?;
    }
    Ok(plot)
}

/// Splits `text` into lines (at its newlines, then between words) no wider than `width` pixels.
fn wrap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, width: i32) -> Result<Vec<String>> {
    let style = text_style(SMALL, HPos::Left, VPos::Top);
    let mut out = Vec::new();
    for para in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            let (tw, _) = area.estimate_text_size(&candidate, &style).map_err(de)?;
            if tw as i32 > width && !line.is_empty() {
                out.push(std::mem::take(&mut line));
                line = word.to_string();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

/// A bar: a value with its interval and origin, and an optional note under its label.
#[derive(Debug, Clone)]
pub struct Bar {
    pub value: Value,
    pub note: Option<String>,
}

/// A series of bars (one colour).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: RGBColor,
}

/// A grouped bar chart.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub y_desc: String,
    pub x_desc: String,
    pub series: Vec<Series>,
    /// Group label (lines split at `\n`) and one optional bar per series.
    pub groups: Vec<(String, Vec<Option<Bar>>)>,
    /// Logarithmic value axis.
    pub log: bool,
    /// Lay out only the bars present in a group (instead of a slot per series).
    pub compact: bool,
    /// A horizontal reference line (e.g. ratio 1.0).
    pub reference: Option<(f64, String)>,
    /// A shaded band per group (e.g. the baseline's CI) and its legend text; empty = none.
    pub bands: (Vec<Option<(f64, f64)>>, String),
    pub footnote: String,
    pub size: (u32, u32),
}

impl BarChart {
    fn value_range(&self) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi: f64 = 0.0;
        for b in self.groups.iter().flat_map(|(_, bars)| bars.iter().flatten()) {
            let v = &b.value;
            for x in [Some(v.value), v.lo, v.hi].into_iter().flatten() {
                if x > 0.0 {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
        }
        if let Some((r, _)) = self.reference {
            lo = lo.min(r);
            hi = hi.max(r);
        }
        if !lo.is_finite() {
            (0.1, 1.0)
        } else {
            (lo, hi)
        }
    }

    fn legend_items(&self) -> Vec<LegendItem> {
        let mut items: Vec<LegendItem> = self
            .series
            .iter()
            .map(|s| LegendItem {
                text: s.name.clone(),
                color: s.color,
                hollow: s.name.contains("published"),
                line: false,
            })
            .collect();
        let bars = || self.groups.iter().flat_map(|(_, b)| b.iter().flatten());
        if self.bands.0.iter().any(Option::is_some) {
            items.push(LegendItem { text: self.bands.1.clone(), color: BAND, hollow: false, line: false });
        }
        if bars().any(|b| b.value.lo.is_some()) {
            items.push(LegendItem { text: "95% CI of the median".into(), color: BLACK, hollow: false, line: true });
        }
        items
    }

    fn draw_on<DB: DrawingBackend, Y>(&self, area: &DrawingArea<DB, Shift>, y: Y, base: f64) -> Result<()>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let n = self.groups.len().max(1);
        let max_lines = self.groups.iter().map(|(l, _)| l.lines().count()).max().unwrap_or(1) as u32;
        let mut chart = ChartBuilder::on(area)
            .margin_left(10)
            .margin_right(25)
            .margin_top(10)
            .x_label_area_size(30 + 22 * max_lines)
            .y_label_area_size(95)
            .build_cartesian_2d(RangedCoordf64::from(0f64..n as f64), y)
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(&self.y_desc)
            .x_desc(&self.x_desc)
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, DESC))
            .draw()
            .map_err(de)?;
        let area_base = area.get_base_pixel();
        let label_style = text_style(LABEL, HPos::Center, VPos::Top);
        for (gi, (label, bars)) in self.groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(gi as f64 + 0.5, base));
            for (k, line) in label.lines().enumerate() {
                let pos = (px - area_base.0, py - area_base.1 + 8 + 21 * k as i32);
                area.draw_text(line, &label_style, pos).map_err(de)?;
            }
            if let Some(Some((lo, hi))) = self.bands.0.get(gi) {
                let band = [(gi as f64 + 0.04, lo.max(base)), (gi as f64 + 0.96, *hi)];
                chart.draw_series([Rectangle::new(band, BAND.mix(0.6).filled())]).map_err(de)?;
            }
            let present: Vec<(usize, &Bar)> =
                bars.iter().enumerate().filter_map(|(i, b)| b.as_ref().map(|b| (i, b))).collect();
            let slots = if self.compact { present.len().max(2) } else { self.series.len().max(1) };
            let width = 0.8 / slots as f64;
            // Compact groups centre their bars.
            let used = if self.compact { present.len() } else { slots };
            let offset = 0.1 + (0.8 - used as f64 * width) / 2.0;
            let (px0, _) = chart.backend_coord(&(0.0, base));
            let (px1, _) = chart.backend_coord(&(width, base));
            let narrow = px1 - px0 < 90;
            for (k, (si, bar)) in present.iter().enumerate() {
                let slot = if self.compact { k } else { *si };
                let x0 = gi as f64 + offset + slot as f64 * width;
                let (l, r) = (x0 + 0.06 * width, x0 + 0.94 * width);
                let c = self.series[*si].color;
                let v = &bar.value;
                let published = v.is_published();
                let top = v.value.max(base);
                let fill = if published { c.mix(0.25).filled() } else { c.filled() };
                chart.draw_series([Rectangle::new([(l, base), (r, top)], fill)]).map_err(de)?;
                if published {
                    chart.draw_series([Rectangle::new([(l, base), (r, top)], c.stroke_width(3))]).map_err(de)?;
                }
                let xc = (l + r) / 2.0;
                let mut label_at = top;
                if let (Some(lo), Some(hi)) = (v.lo, v.hi) {
                    let cap = 0.18 * width;
                    let s = BLACK.stroke_width(2);
                    let lo = lo.max(base);
                    chart.draw_series([PathElement::new(vec![(xc, lo), (xc, hi)], s)]).map_err(de)?;
                    chart.draw_series([PathElement::new(vec![(xc - cap, hi), (xc + cap, hi)], s)]).map_err(de)?;
                    chart.draw_series([PathElement::new(vec![(xc - cap, lo), (xc + cap, lo)], s)]).map_err(de)?;
                    label_at = label_at.max(hi);
                }
                let prefix = match v.kind {
                    Kind::AtLeast => "> ",
                    Kind::AtMost => "< ",
                    Kind::Estimated => "≈ ",
                    _ => "",
                };
                let mut lines = vec![format!("{prefix}{}", tick(v.value))];
                if published && !narrow {
                    lines.push("published".into());
                }
                let (bx, by) = chart.backend_coord(&(xc, label_at));
                let st = text_style(SMALL, HPos::Center, VPos::Bottom);
                // Labels of bounds sit above their arrow.
                let lift = if matches!(v.kind, Kind::AtLeast | Kind::AtMost) { 20 } else { 4 };
                for (k, line) in lines.iter().rev().enumerate() {
                    area.draw_text(line, &st, (bx - area_base.0, by - area_base.1 - lift - 17 * k as i32))
                        .map_err(de)?;
                }
                // Notes run up inside the bar, so narrow neighbours cannot collide.
                if let Some(note) = &bar.note {
                    let (nx, ny) = chart.backend_coord(&(xc, base));
                    let st = TextStyle::from((FONT, SMALL).into_font().transform(FontTransform::Rotate270))
                        .pos(Pos::new(HPos::Left, VPos::Center));
                    area.draw_text(note, &st, (nx - area_base.0, ny - area_base.1 - 8)).map_err(de)?;
                }
                // An arrow shows which way the true value lies for a published bound.
                if matches!(v.kind, Kind::AtLeast | Kind::AtMost) {
                    let (ax, ay) = chart.backend_coord(&(xc, top));
                    let (ax, ay) = (ax - area_base.0, ay - area_base.1);
                    let d = if v.kind == Kind::AtLeast { -1 } else { 1 };
                    let tip = (ax, ay + d * 14);
                    let s = c.stroke_width(3);
                    let back = if v.kind == Kind::AtLeast { ay + 12 } else { ay - 12 };
                    area.draw(&PathElement::new(vec![(ax, back), tip], s)).map_err(de)?;
                    area.draw(&PathElement::new(vec![(ax - 7, tip.1 - d * 7), tip, (ax + 7, tip.1 - d * 7)], s))
                        .map_err(de)?;
                }
            }
        }
        if let Some((r, text)) = &self.reference {
            chart
                .draw_series([PathElement::new(vec![(0.0, *r), (n as f64, *r)], BLACK.stroke_width(2))])
                .map_err(de)?;
            let (px, py) = chart.backend_coord(&(n as f64, *r));
            area.draw_text(
                text,
                &text_style(SMALL, HPos::Right, VPos::Bottom),
                (px - area_base.0 - 4, py - area_base.1 - 3),
            )
            .map_err(de)?;
        }
        Ok(())
    }
}

impl Figure for BarChart {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = frame(root, &self.title, &self.legend_items(), &self.footnote)?;
        let (lo, hi) = self.value_range();
        // Headroom above the tallest bar for its label lines.
        if self.log {
            let ylo = 10f64.powf(lo.log10().floor());
            let yhi = 10f64.powf((hi * 3.0).log10().ceil());
            self.draw_on(&area, LogCoord::from((ylo..yhi).log_scale()), ylo)
        } else {
            self.draw_on(&area, RangedCoordf64::from(0.0..hi * 1.3), 0.0)
        }
    }
}

/// Uses a log axis when the values span more than this factor.
const LOG_SPAN: f64 = 20.0;

fn wants_log(groups: &[(String, Vec<Option<Bar>>)]) -> bool {
    let vals: Vec<f64> =
        groups.iter().flat_map(|(_, b)| b.iter().flatten()).map(|b| b.value.value).filter(|v| *v > 0.0).collect();
    let (lo, hi) = vals.iter().fold((f64::INFINITY, 0f64), |(l, h), v| (l.min(*v), h.max(*v)));
    !vals.is_empty() && hi / lo > LOG_SPAN
}

const PUBLISHED_FOOT: &str = "Pale bars with a coloured outline: published, not measured here. \
    An arrow marks a published bound (▲ more than, ▼ less than the bar).";

/// Headline: FPS swap-only and swap + enhance per profile configuration.
pub fn headline_chart(runs: &[Run], rows: &[Headline]) -> BarChart {
    let series: Vec<Series> = rows
        .iter()
        .enumerate()
        .map(|(i, h)| Series {
            name: format!("{}: {}", runs[h.run].short_label(), h.config.replace('`', "")),
            color: color(i),
        })
        .collect();
    let groups: Vec<(String, Vec<Option<Bar>>)> = [Pipeline::Swap, Pipeline::SwapEnhance]
        .iter()
        .map(|&p| {
            let bars = rows
                .iter()
                .map(|h| {
                    let f = if p == Pipeline::Swap { &h.swap } else { &h.swap_enhance };
                    f.as_ref().map(|f| Bar { value: f.value, note: None })
                })
                .collect();
            (p.title().to_string(), bars)
        })
        .collect();
    let log = wants_log(&groups);
    BarChart {
        title: "Frames per second (higher is better)".into(),
        y_desc: "frames per second (1/s)".into(),
        x_desc: "pipeline".into(),
        series,
        groups,
        log,
        compact: false,
        reference: None,
        bands: (vec![], String::new()),
        footnote: format!(
            "≈: estimated from model latencies (serial, no capture or pre/post-processing: an upper bound). {PUBLISHED_FOOT}\n\
             Error bars: conservative 95% interval from the models' median CIs.{}",
            if log { " Logarithmic axis." } else { "" }
        ),
        size: (1280, 720),
    }
}

/// Per-stage latency between runs (each role's model in its profile's variant).
pub fn stages_chart(runs: &[Run]) -> BarChart {
    let series: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut vs: Vec<String> = Role::ALL.iter().map(|&role| metrics::role_variant(r, role)).collect();
            vs.sort();
            vs.dedup();
            Series { name: format!("{}: {} models", r.short_label(), vs.join("/")), color: color(i) }
        })
        .collect();
    let mut groups = Vec::new();
    for role in Role::ALL {
        let bars: Vec<Option<Bar>> =
            runs.iter().map(|r| metrics::stage_latency(r, role).map(|(_, v)| Bar { value: v, note: None })).collect();
        if bars.iter().any(Option::is_some) {
            groups.push((format!("{}\n({})", role.name(), role.default_file().trim_end_matches(".onnx")), bars));
        }
    }
    let log = wants_log(&groups);
    BarChart {
        title: "Latency per stage (lower is better)".into(),
        y_desc: "median latency per run (ms)".into(),
        x_desc: "stage (model)".into(),
        series,
        groups,
        log,
        compact: false,
        reference: None,
        bands: (vec![], String::new()),
        footnote: format!(
            "Each stage runs the model variant its profile configures. {PUBLISHED_FOOT}{}",
            if log { "\nLogarithmic axis: equal distances are equal ratios." } else { "" }
        ),
        size: (1280, 720),
    }
}

/// Per-model variants (original vs `_coreml` vs `_fp16`, and published before/after).
pub fn variants_chart(runs: &[Run], rows: &[VariantRow]) -> BarChart {
    let mut keys: Vec<(usize, String)> = Vec::new();
    for r in rows.iter().filter(|r| r.latency.is_some()) {
        let k = (r.run, r.variant.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let series: Vec<Series> = keys
        .iter()
        .enumerate()
        .map(|(i, (run, v))| Series { name: format!("{}: {v}", runs[*run].short_label()), color: color(i) })
        .collect();
    let mut bases: Vec<(usize, String)> = Vec::new();
    for r in rows {
        let rank = Role::ALL.iter().position(|x| x.name() == r.role).unwrap_or(usize::MAX);
        if !bases.iter().any(|(_, b)| *b == r.base) {
            bases.push((rank, r.base.clone()));
        }
    }
    bases.sort();
    let groups: Vec<(String, Vec<Option<Bar>>)> = bases
        .iter()
        .map(|(_, base)| {
            let bars = keys
                .iter()
                .map(|(run, v)| {
                    rows.iter().find(|r| r.run == *run && &r.variant == v && &r.base == base).and_then(|r| {
                        let note = r.coreml_partitions.map(|p| {
                            let n = p.value;
                            format!("{} CoreML part.", tick(n))
                        });
                        r.latency.map(|value| Bar { value, note })
                    })
                })
                .collect();
            (base.clone(), bars)
        })
        .filter(|(_, bars): &(String, Vec<Option<Bar>>)| bars.iter().any(Option::is_some))
        .collect();
    let log = wants_log(&groups);
    BarChart {
        title: "Models before and after rewrites (lower is better)".into(),
        y_desc: "median latency per run (ms)".into(),
        x_desc: "model".into(),
        series,
        groups,
        log,
        compact: true,
        reference: None,
        bands: (vec![], String::new()),
        footnote: format!(
            "original = the model as published; coreml / fp16 = faceperf's rewrites; other names are published configurations. \
             {PUBLISHED_FOOT}{}",
            if log { "\nLogarithmic axis." } else { "" }
        ),
        size: (1280, 720),
    }
}

/// Ratio of each stage to the baseline, coloured by verdict.
pub fn regress_chart(runs: &[Run], baseline: usize, cmp: &[Comparison]) -> BarChart {
    let series = vec![
        Series { name: "slower".into(), color: RGBColor(214, 39, 40) },
        Series { name: "no difference beyond noise".into(), color: RGBColor(127, 127, 127) },
        Series { name: "faster".into(), color: RGBColor(44, 160, 44) },
    ];
    let groups = cmp
        .iter()
        .map(|c| {
            let b = c.baseline.value;
            let (lo, hi) = match c.ratio_ci95 {
                Some((lo, hi)) => (Some(lo), Some(hi)),
                None => (c.current.lo.map(|x| x / b), c.current.hi.map(|x| x / b)),
            };
            let value = Value { value: c.ratio, lo, hi, kind: Kind::Measured };
            let slot = match c.verdict {
                Verdict::Slower => 0,
                Verdict::NoDifference => 1,
                Verdict::Faster => 2,
            };
            let mut bars: Vec<Option<Bar>> = vec![None, None, None];
            bars[slot] = Some(Bar { value, note: None });
            let stage = if c.stage == "run" { String::new() } else { format!(" {}", c.stage) };
            (format!("{}\n{}{stage}\n{}", c.model, c.variant, runs[c.run].name()), bars)
        })
        .collect();
    BarChart {
        title: format!("Against baseline {} (ratio of medians; above 1 = slower)", runs[baseline].name()),
        y_desc: "run median / baseline median".into(),
        x_desc: "model, variant, run".into(),
        series,
        groups,
        log: false,
        compact: true,
        reference: Some((1.0, "baseline".into())),
        bands: (
            cmp.iter()
                .map(|c| match (c.baseline.lo, c.baseline.hi) {
                    (Some(lo), Some(hi)) => Some((lo / c.baseline.value, hi / c.baseline.value)),
                    _ => None,
                })
                .collect(),
            "baseline's 95% CI".into(),
        ),
        footnote: "Error bars: the ratio's 95% CI (bootstrap over both runs' rounds; without samples, the run's CI \
                   over the baseline median). Slower / faster: the CI excludes 1 and the ratio is beyond the noise \
                   threshold."
            .into(),
        size: (1280, 720),
    }
}

/// One stacked bar: run label, published or not, and (stage, ms) parts.
pub type StackBar = (String, bool, Vec<(Role, f64)>);

/// One box-plot panel: model, variant, samples (ms) and the median's 95% CI.
pub type BoxPanel = (String, String, Vec<f64>, Option<(f64, f64)>);

/// One frame's time stacked by stage: absolute (ms) and as a share of the frame.
pub struct FrameStack {
    /// Run label and (role, ms) parts.
    pub bars: Vec<StackBar>,
}

/// The stacked bar of one frame's time per run.
pub fn frame_stack(runs: &[Run]) -> FrameStack {
    let bars = runs
        .iter()
        .map(|r| {
            let parts: Vec<(Role, f64)> = Role::ALL
                .iter()
                .filter_map(|&role| metrics::stage_latency(r, role).map(|(_, v)| (role, v.value)))
                .collect();
            let missing = parts.len() < Role::ALL.len();
            let label = if missing { format!("{}\n(listed stages only)", r.short_label()) } else { r.short_label() };
            (label, r.published.is_some(), parts)
        })
        .filter(|(_, _, p)| !p.is_empty())
        .collect();
    FrameStack { bars }
}

impl FrameStack {
    fn panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, share: bool) -> Result<()> {
        let n = self.bars.len().max(1);
        let total = |p: &[(Role, f64)]| p.iter().map(|(_, v)| v).sum::<f64>();
        let xmax = if share { 100.0 } else { self.bars.iter().map(|(_, _, p)| total(p)).fold(0.0, f64::max) * 1.12 };
        let mut chart = ChartBuilder::on(area)
            .margin_left(10)
            .margin_right(30)
            .margin_top(34)
            .x_label_area_size(55)
            .y_label_area_size(330)
            .build_cartesian_2d(0.0..xmax.max(1e-9), 0.0..n as f64)
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(if share { "share of one frame's model time (%)" } else { "one frame's model time (ms)" })
            .x_label_formatter(&|v| tick(*v))
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, DESC))
            .draw()
            .map_err(de)?;
        let base = area.get_base_pixel();
        let title = if share { "Share of the frame" } else { "Milliseconds per frame (every model once, in series)" };
        area.draw_text(title, &text_style(DESC, HPos::Left, VPos::Top), (340, 6)).map_err(de)?;
        for (i, (label, published, parts)) in self.bars.iter().enumerate() {
            let y0 = n as f64 - i as f64 - 0.8;
            let y1 = n as f64 - i as f64 - 0.2;
            let t = total(parts);
            let mut x = 0.0;
            for (role, v) in parts {
                let w = if share { 100.0 * v / t } else { *v };
                let c = ROLE_COLORS[Role::ALL.iter().position(|r| r == role).unwrap_or(0)];
                let fill = if *published { c.mix(0.35).filled() } else { c.filled() };
                chart.draw_series([Rectangle::new([(x, y0), (x + w, y1)], fill)]).map_err(de)?;
                chart.draw_series([Rectangle::new([(x, y0), (x + w, y1)], WHITE.stroke_width(1))]).map_err(de)?;
                let (l, _) = chart.backend_coord(&(x, y0));
                let (r, _) = chart.backend_coord(&(x + w, y0));
                let text = if share { format!("{w:.1}%") } else { tick(*v) };
                if r - l > 56 {
                    let (cx, cy) = chart.backend_coord(&(x + w / 2.0, (y0 + y1) / 2.0));
                    area.draw_text(&text, &text_style(SMALL, HPos::Center, VPos::Center), (cx - base.0, cy - base.1))
                        .map_err(de)?;
                }
                x += w;
            }
            if !share {
                let (ex, ey) = chart.backend_coord(&(x, (y0 + y1) / 2.0));
                let tag = if *published { " ms (published)" } else { " ms" };
                area.draw_text(
                    &format!("{}{tag}", num(t)),
                    &text_style(SMALL, HPos::Left, VPos::Center),
                    (ex - base.0 + 6, ey - base.1),
                )
                .map_err(de)?;
            }
            let (lx, ly) = chart.backend_coord(&(0.0, (y0 + y1) / 2.0));
            let lines: Vec<&str> = label.lines().collect();
            for (k, line) in lines.iter().enumerate() {
                let dy = (2 * k as i32 - (lines.len() as i32 - 1)) * 11;
                area.draw_text(
                    line,
                    &text_style(LABEL, HPos::Right, VPos::Center),
                    (lx - base.0 - 12, ly - base.1 + dy),
                )
                .map_err(de)?;
            }
        }
        Ok(())
    }
}

impl Figure for FrameStack {
    fn size(&self) -> (u32, u32) {
        (1280, 260 + 2 * 70 * self.bars.len().max(1) as u32 + 120)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let items: Vec<LegendItem> = Role::ALL
            .iter()
            .enumerate()
            .map(|(i, r)| LegendItem { text: r.name().into(), color: ROLE_COLORS[i], hollow: false, line: false })
            .collect();
        let area = frame(
            root,
            "Where one frame's time goes (model latencies, medians)",
            &items,
            "Pale segments: published, not measured here. Segments narrower than a label are left unlabelled; \
             the tables give every number.",
        )?;
        let (top, bottom) = area.split_vertically(area.dim_in_pixel().1 / 2);
        self.panel(&top, false)?;
        self.panel(&bottom, true)
    }
}

/// Box plots of one run's latency samples, one panel per model variant.
pub struct Distributions {
    pub title: String,
    /// (model, variant, samples ms, median CI).
    pub panels: Vec<BoxPanel>,
}

/// The distribution figure of a measured run (`None` when it kept no samples).
pub fn distributions(run: &Run) -> Option<Distributions> {
    let panels: Vec<_> = run
        .report
        .models
        .iter()
        .filter(|m| !m.samples_ms.is_empty())
        .map(|m| {
            (
                m.model.clone(),
                m.variant.name().to_string(),
                m.samples_ms.clone(),
                Some((m.run_ms.median_ci95_lo, m.run_ms.median_ci95_hi)),
            )
        })
        .collect();
    (!panels.is_empty())
        .then(|| Distributions { title: format!("Latency distributions: {} ({})", run.short_label(), run.id), panels })
}

impl Figure for Distributions {
    fn size(&self) -> (u32, u32) {
        let cols = self.panels.len().clamp(1, 5) as u32;
        let rows = self.panels.len().div_ceil(5).max(1) as u32;
        (cols.max(3) * 300 + 40, 200 + rows * 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let items = vec![
            LegendItem {
                text: "box: quartiles, whiskers: 1.5×IQR".into(),
                color: PALETTE[0],
                hollow: true,
                line: false,
            },
            LegendItem { text: "median".into(), color: BLACK, hollow: false, line: false },
            LegendItem { text: "95% CI of the median".into(), color: PALETTE[3], hollow: false, line: false },
            LegendItem { text: "each measured run".into(), color: PALETTE[7], hollow: false, line: false },
        ];
        let area = frame(
            root,
            &self.title,
            &items,
            "Every measured (warm) run is a dot; each panel has its own latency axis (ms).",
        )?;
        let cols = self.panels.len().clamp(1, 5);
        let rows = self.panels.len().div_ceil(5).max(1);
        let cells = area.split_evenly((rows, cols.max(3)));
        for ((model, variant, samples, ci), cell) in self.panels.iter().zip(cells.iter()) {
            box_panel(cell, model, variant, samples, *ci)?;
        }
        Ok(())
    }
}

fn box_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    model: &str,
    variant: &str,
    samples: &[f64],
    ci: Option<(f64, f64)>,
) -> Result<()> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let (q1, med, q3) = (quantile(&s, 0.25), quantile(&s, 0.5), quantile(&s, 0.75));
    let iqr = q3 - q1;
    let lo_w = s.iter().copied().find(|x| *x >= q1 - 1.5 * iqr).unwrap_or(s[0]);
    let hi_w = s.iter().rev().copied().find(|x| *x <= q3 + 1.5 * iqr).unwrap_or(s[s.len() - 1]);
    let (min, max) = (s[0], s[s.len() - 1]);
    let pad = ((max - min) * 0.08).max(max.abs() * 0.01).max(1e-6);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{model} ({variant}), n = {}", s.len()), (FONT, LABEL))
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..1.0, (min - pad)..(max + pad))
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("latency (ms)")
        .y_label_formatter(&|v| tick(*v))
        .label_style((FONT, SMALL))
        .axis_desc_style((FONT, LABEL))
        .draw()
        .map_err(de)?;
    let c = PALETTE[0];
    let (l, r) = (0.3, 0.7);
    chart.draw_series([Rectangle::new([(l, q1), (r, q3)], c.mix(0.25).filled())]).map_err(de)?;
    chart.draw_series([Rectangle::new([(l, q1), (r, q3)], c.stroke_width(2))]).map_err(de)?;
    let line = |pts: Vec<(f64, f64)>, st: ShapeStyle| PathElement::new(pts, st);
    let k = BLACK.stroke_width(2);
    chart
        .draw_series([
            line(vec![(0.5, q3), (0.5, hi_w)], k),
            line(vec![(0.5, q1), (0.5, lo_w)], k),
            line(vec![(0.4, hi_w), (0.6, hi_w)], k),
            line(vec![(0.4, lo_w), (0.6, lo_w)], k),
            line(vec![(l, med), (r, med)], BLACK.stroke_width(4)),
        ])
        .map_err(de)?;
    if let Some((lo, hi)) = ci {
        let red = PALETTE[3];
        chart.draw_series([Rectangle::new([(0.72, lo), (0.78, hi)], red.filled())]).map_err(de)?;
    }
    // Deterministic horizontal jitter so equal samples do not hide each other.
    let dots = s.iter().enumerate().map(|(i, v)| {
        let jitter = ((i * 7919) % 97) as f64 / 97.0;
        Circle::new((0.08 + 0.16 * jitter, *v), 3, PALETTE[7].mix(0.7).filled())
    });
    chart.draw_series(dots).map_err(de)?;
    Ok(())
}
