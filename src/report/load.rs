//! Loading benchmark results: `bench-results/<profile>/<stamp>_<host>.{csv,json}`, the latest run per
//! profile or runs chosen by name, validated so that empty or malformed files stop the report with an
//! error naming the file (and line), never an empty report.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::bench::results::{read_csv, BenchReport, CsvRow, CSV_HEADER};

/// `profile.source` prefix of a run whose numbers were published elsewhere, not measured by faceperf.
pub const PUBLISHED_PREFIX: &str = "published:";

/// Words every report puts beside numbers that were published, not measured here.
pub const PUBLISHED_LABEL: &str = "published, not measured here";

/// Which run of a profile to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Folder name under the results folder.
    pub profile: String,
    /// A run's file stem or a prefix of it (e.g. its UTC stamp); `None` = the latest run.
    pub run: Option<String>,
}

impl Selection {
    /// Parses `NAME` or `NAME/RUN` (`RUN` = a file stem or a prefix of it, such as `20251125T061829Z`).
    pub fn parse(s: &str) -> Result<Selection> {
        let s = s.trim();
        let (profile, run) = match s.split_once(['/', '@']) {
            Some((p, r)) => (p.trim(), Some(r.trim().trim_end_matches(".csv").trim_end_matches(".json"))),
            None => (s, None),
        };
        if profile.is_empty() || run.is_some_and(str::is_empty) {
            bail!("'{s}': expected a profile name or PROFILE/RUN (RUN = a results file stem or its timestamp)");
        }
        Ok(Selection { profile: profile.into(), run: run.map(Into::into) })
    }
}

/// One benchmark run: its tidy rows and its provenance.
#[derive(Debug, Clone)]
pub struct Run {
    /// Profile (the folder name).
    pub profile: String,
    /// File stem, `<UTC stamp>_<host>`.
    pub id: String,
    pub csv_path: PathBuf,
    pub json_path: PathBuf,
    pub rows: Vec<CsvRow>,
    pub report: BenchReport,
    /// Where the numbers come from when they were published elsewhere (e.g. `Deep-Live-Cam PR #1775`).
    pub published: Option<String>,
    /// Set when a report holds several runs of one profile: tells them apart in labels (the run's stamp).
    pub tag: Option<String>,
}

impl Run {
    /// The run's name in tables and legends; published runs carry [`PUBLISHED_LABEL`].
    pub fn label(&self) -> String {
        match &self.published {
            Some(_) => format!("{} ({PUBLISHED_LABEL})", self.name()),
            None => self.name(),
        }
    }

    /// Profile name, with the run's tag when the report holds several runs of the profile.
    pub fn name(&self) -> String {
        match &self.tag {
            Some(t) => format!("{} @{t}", self.profile),
            None => self.profile.clone(),
        }
    }

    /// A short name for figure legends.
    pub fn short_label(&self) -> String {
        match &self.published {
            Some(_) => format!("{} (published)", self.name()),
            None => format!("{} (measured)", self.name()),
        }
    }

    /// The value of one row, if present.
    pub fn value(&self, model: &str, variant: &str, stage: &str, statistic: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.model == model && r.variant == variant && r.stage == stage && r.statistic == statistic)
            .map(|r| r.value)
    }
}

/// Folders under `results` that hold at least one results CSV, sorted.
pub fn profiles_in(results: &Path) -> Result<Vec<String>> {
    if !results.is_dir() {
        bail!(
            "results folder {} does not exist: run `faceperf bench --profile cpu` first, or pass --results DIR",
            results.display()
        );
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(results).with_context(|| format!("cannot read {}", results.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", results.display()))?;
        if entry.path().is_dir() && !csv_files(&entry.path())?.is_empty() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    if names.is_empty() {
        bail!(
            "results folder {} holds no results (expected <profile>/<stamp>_<host>.csv and .json): \
             run `faceperf bench --profile cpu` first",
            results.display()
        );
    }
    Ok(names)
}

/// How the headers of the other CSV files faceperf writes beside results begin: `live --csv`
/// per-frame records, the device samples beside them and beside bench results (`.samples.csv`),
/// and the optimize benchmark's timings (`examples/optimize_bench.rs`). They may sit in a results
/// folder but are not result tables, so the report passes them by; any other header is an error
/// naming the file.
pub const OTHER_CSV_HEADERS: [&str; 3] = ["frame,source_index,", "t_ms,", "stage,statistic,value,unit"];

/// True for a CSV of one of the [`OTHER_CSV_HEADERS`] kinds.
fn is_other_csv(path: &Path) -> bool {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(path) else { return false };
    let mut first = String::new();
    std::io::BufReader::new(f).read_line(&mut first).is_ok()
        && OTHER_CSV_HEADERS.iter().any(|h| first.trim_end().starts_with(h))
}

/// The results `.csv` files of one folder (other CSV kinds left out), sorted by name (UTC stamps
/// sort in time order).
fn csv_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "csv") && !is_other_csv(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads the selected runs (every profile's latest when `selections` is empty), in the order given.
pub fn load_runs(results: &Path, selections: &[Selection]) -> Result<Vec<Run>> {
    let selections = if selections.is_empty() {
        profiles_in(results)?.into_iter().map(|profile| Selection { profile, run: None }).collect()
    } else {
        if !results.is_dir() {
            bail!(
                "results folder {} does not exist: run `faceperf bench` first, or pass --results DIR",
                results.display()
            );
        }
        selections.to_vec()
    };
    let mut runs: Vec<Run> = Vec::new();
    for sel in &selections {
        let run = load_selection(results, sel)?;
        if !runs.iter().any(|r| r.csv_path == run.csv_path) {
            runs.push(run);
        }
    }
    tag_duplicates(&mut runs);
    Ok(runs)
}

/// Tags runs that share a profile with their stamp (the file stem before `_<host>`).
pub fn tag_duplicates(runs: &mut [Run]) {
    let profiles: Vec<String> = runs.iter().map(|r| r.profile.clone()).collect();
    for run in runs.iter_mut() {
        let twins = profiles.iter().filter(|p| **p == run.profile).count();
        run.tag = (twins > 1).then(|| run.id.split('_').next().unwrap_or(&run.id).to_string());
    }
}

/// Loads one selected run.
pub fn load_selection(results: &Path, sel: &Selection) -> Result<Run> {
    let dir = results.join(&sel.profile);
    if !dir.is_dir() {
        let known = profiles_in(results).map(|p| p.join(", ")).unwrap_or_else(|_| "none".into());
        bail!(
            "no results for profile '{}': {} does not exist (profiles with results: {known})",
            sel.profile,
            dir.display()
        );
    }
    let files = csv_files(&dir)?;
    if files.is_empty() {
        bail!("{} holds no results CSV: run `faceperf bench --profile {}` first", dir.display(), sel.profile);
    }
    let chosen = match &sel.run {
        None => files.last().cloned(),
        Some(run) => files
            .iter()
            .rev()
            .find(|p| p.file_stem().is_some_and(|s| s.to_string_lossy().starts_with(run.as_str())))
            .cloned(),
    };
    let csv = chosen.ok_or_else(|| {
        let ids: Vec<String> =
            files.iter().filter_map(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned()).collect();
        anyhow!(
            "profile '{}' has no run '{}' (runs: {})",
            sel.profile,
            sel.run.as_deref().unwrap_or(""),
            ids.join(", ")
        )
    })?;
    load_run(&csv)
}

/// Loads one run from its CSV path (the `.json` beside it holds the provenance), checking both.
pub fn load_run(csv_path: &Path) -> Result<Run> {
    let profile = csv_path
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{}: a results file must sit in a <profile>/ folder", csv_path.display()))?;
    let id = csv_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let rows = read_rows(csv_path)?;
    let json_path = csv_path.with_extension("json");
    let report = read_provenance(&json_path)?;
    let where_ = json_path.display();
    if report.profile.name != profile {
        bail!("{where_}: profile.name is '{}' but the file is in folder '{profile}'", report.profile.name);
    }
    let published = report.profile.source.strip_prefix(PUBLISHED_PREFIX).map(|s| s.trim().to_string());
    if published.is_none() && report.models.is_empty() && report.pipeline.is_none() {
        bail!("{where_}: the run measured nothing (no models, no pipeline)");
    }
    Ok(Run { profile, id, csv_path: csv_path.to_path_buf(), json_path, rows, report, published, tag: None })
}

/// Reads and validates a results CSV; errors name the file and the line.
pub fn read_rows(path: &Path) -> Result<Vec<CsvRow>> {
    let where_ = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("{where_}: cannot read"))?;
    if text.trim().is_empty() {
        bail!("{where_}: line 1: the file is empty (expected the header '{}' and result rows)", CSV_HEADER.join(","));
    }
    let rows = read_csv(&text).map_err(|e| {
        let msg = format!("{e:#}");
        // read_csv names lines itself except for the header.
        if msg.starts_with("line ") {
            anyhow!("{where_}: {msg}")
        } else {
            anyhow!("{where_}: line 1: {msg}")
        }
    })?;
    if rows.is_empty() {
        bail!("{where_}: no result rows after the header: the run wrote nothing (rerun `faceperf bench`)");
    }
    // Line numbers of the rows (read_csv skips blank lines).
    let lines = text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1);
    let folder = path.parent().and_then(Path::file_name).map(|s| s.to_string_lossy().into_owned());
    for (row, line) in rows.iter().zip(lines) {
        if !row.value.is_finite() {
            bail!("{where_}: line {line}: value {} is not a finite number", row.value);
        }
        for (name, v) in [("model", &row.model), ("stage", &row.stage), ("statistic", &row.statistic)] {
            if v.trim().is_empty() {
                bail!("{where_}: line {line}: the {name} field is empty");
            }
        }
        if let Some(folder) = &folder {
            if &row.profile != folder {
                bail!("{where_}: line {line}: profile '{}' but the file is in folder '{folder}'", row.profile);
            }
        }
    }
    Ok(rows)
}

/// Reads a run's provenance JSON; errors name the file, line and column.
pub fn read_provenance(path: &Path) -> Result<BenchReport> {
    let where_ = path.display();
    if !path.is_file() {
        bail!("{where_}: missing: every results CSV needs its provenance JSON beside it");
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{where_}: cannot read"))?;
    if text.trim().is_empty() {
        bail!("{where_}: line 1: the file is empty (expected the run's provenance JSON)");
    }
    // serde_json's message ends with "at line L column C".
    serde_json::from_str(&text).map_err(|e| anyhow!("{where_}: not a faceperf provenance file: {e}"))
}
