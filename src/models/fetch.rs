//! Verified downloads of the manifest's models: HTTP(S) with resume, sha256 (or size) checks,
//! atomic placement, and extraction of models published only inside an archive.
//!
//! A download goes to `<file>.part` beside the destination. An interrupted transfer keeps the part
//! file; the next attempt (a retry, or the next `fetch`) asks for the rest with an HTTP `Range`
//! request. Only a complete file whose hash matches the manifest is renamed into place; a mismatch
//! deletes the download. A model whose entry publishes no hash must instead fit its role's I/O
//! signature, is reported as [`fetched::TRUST_SIGNATURE`], and has its sha256 recorded on the
//! first fetch ([`fetched`]) so a later change is noticed. A lock file per destination (removed on
//! release) makes concurrent fetches of one file wait for each other instead of writing into the
//! same part file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::fetched::{self, FetchRecord};
use super::local::{self, check_file, io_error, Expected, FileCheck, FileLock, Verdict};
use super::manifest::{Archive, Manifest, ModelEntry};
use super::Role;

/// Environment variable with a mirror base URL (same as `--mirror`).
pub const MIRROR_ENV: &str = "FACEPERF_MIRROR";

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The models folder.
    pub dir: PathBuf,
    /// Base URL that serves every file by its manifest file name (`<mirror>/<file>`); replaces
    /// the manifest's URLs when set.
    pub mirror: Option<String>,
    /// Automatic resumes after an interrupted transfer, per URL.
    pub retries: u32,
    /// Replace a present file that contradicts the manifest.
    pub force: bool,
    /// Hide progress bars and notes.
    pub quiet: bool,
}

impl FetchOptions {
    /// Defaults for `dir`: the mirror from [`MIRROR_ENV`] if set, 3 retries.
    pub fn new(dir: impl Into<PathBuf>) -> FetchOptions {
        FetchOptions {
            dir: dir.into(),
            mirror: std::env::var(MIRROR_ENV).ok().filter(|s| !s.is_empty()),
            retries: 3,
            force: false,
            quiet: true,
        }
    }
}

/// What a fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The file was already there and agrees with the manifest.
    AlreadyPresent,
    /// Downloaded (possibly resuming an earlier partial download).
    Downloaded,
    /// Extracted from its archive (which was downloaded first if needed).
    Extracted,
}

/// The outcome of fetching one model or archive.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    /// Manifest name.
    pub name: String,
    /// Where the file is now.
    pub path: String,
    /// What happened.
    pub action: Action,
    /// The URL it came from (for downloads).
    pub url: Option<String>,
    /// The archive it came from (for extractions).
    pub archive: Option<String>,
    /// Bytes received over the network in this call.
    pub bytes_transferred: u64,
    /// Offset the download resumed from (0 = from the start).
    pub resumed_from: u64,
    /// Size of the file.
    pub size: u64,
    /// sha256 of the file.
    pub sha256: String,
    /// How it was checked: `sha256`; for a model without a published hash `signature` or
    /// `size+signature`; for an archive without one `size` or `none`.
    pub verified_by: String,
    /// How far it can be trusted: `verified by sha256`, or `unverified: signature only` (and the
    /// other `unverified: …` forms of [`fetched`]) when no hash is published.
    pub trust: String,
    /// The record of fetched files its sha256 was written to or compared with (files without a
    /// published hash only).
    pub recorded_in: Option<String>,
}

/// What a fetched file must satisfy.
struct Want<'a> {
    /// Manifest name.
    name: &'a str,
    /// Published hash and size.
    expect: Expected,
    /// The model's role (models only): without a published hash the file must fit its signature.
    role: Option<Role>,
}

impl Want<'_> {
    /// True when no sha256 is published, so the file is taken on trust (and recorded).
    fn unhashed(&self) -> bool {
        self.expect.sha256.is_empty()
    }

    /// `verified_by` and `trust` for a file that passed its checks with `verdict`.
    fn words(&self, verdict: &Verdict) -> (String, String) {
        let trust = match (verdict, self.role) {
            (Verdict::Verified, _) => fetched::TRUST_SHA256,
            (Verdict::SizeMatches, Some(_)) => fetched::TRUST_SIZE_SIGNATURE,
            (Verdict::SizeMatches, None) => fetched::TRUST_SIZE,
            (_, Some(_)) => fetched::TRUST_SIGNATURE,
            (_, None) => fetched::TRUST_NONE,
        };
        let by = match (verdict, self.role) {
            (Verdict::SizeMatches, Some(_)) => "size+signature",
            (Verdict::Unchecked, Some(_)) => "signature",
            (v, _) => v.method(),
        };
        (by.to_string(), trust.to_string())
    }

    /// Refuses `file` (labelled `label` in the error) when no hash is published and it does not
    /// fit the model's role.
    fn check_signature(&self, file: &Path, label: &str) -> Result<()> {
        match self.role {
            Some(role) if self.unhashed() => fetched::check_signature(file, role, label),
            _ => Ok(()),
        }
    }

    /// The report for `dest`, which passed its checks as `check`.
    fn report(&self, dest: &Path, action: Action, check: &FileCheck) -> FetchReport {
        let (verified_by, trust) = self.words(&check.verdict);
        FetchReport {
            name: self.name.to_string(),
            path: dest.display().to_string(),
            action,
            url: None,
            archive: None,
            bytes_transferred: 0,
            resumed_from: 0,
            size: check.size,
            sha256: check.sha256.clone().unwrap_or_default(),
            verified_by,
            trust,
            recorded_in: None,
        }
    }

    /// Records the sha256 of `dest` (which passed as `check`, taken from `source`) when no hash is
    /// published; returns the record's path then.
    fn record(&self, dest: &Path, check: &FileCheck, source: &str) -> Result<Option<String>> {
        if !self.unhashed() {
            return Ok(None);
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        let entry = fetched::entry(self.name, check.sha256.as_deref().unwrap_or_default(), check.size, source);
        Ok(Some(fetched::record(dir, &file_name(dest), entry)?.display().to_string()))
    }
}

/// Something `fetch` can fetch.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A model file.
    Model(&'a ModelEntry),
    /// An archive of model files.
    Archive(&'a Archive),
}

impl Target<'_> {
    /// Its manifest name.
    pub fn name(&self) -> &str {
        match self {
            Target::Model(m) => &m.name,
            Target::Archive(a) => &a.name,
        }
    }
}

/// Resolves names (model names, file names, role names or archive names) into targets; all models
/// when `names` is empty.
pub fn targets<'a>(manifest: &'a Manifest, names: &[String]) -> Result<Vec<Target<'a>>> {
    if names.is_empty() {
        return Ok(manifest.models.iter().map(Target::Model).collect());
    }
    let mut out = Vec::new();
    for n in names {
        if let Some(a) = manifest.archive(n) {
            out.push(Target::Archive(a));
        } else {
            out.extend(manifest.select(std::slice::from_ref(n))?.into_iter().map(Target::Model));
        }
    }
    Ok(out)
}

/// Fetches one target into `opts.dir`.
pub fn fetch(manifest: &Manifest, target: Target<'_>, opts: &FetchOptions) -> Result<FetchReport> {
    match target {
        Target::Model(m) => fetch_model(manifest, m, opts),
        Target::Archive(a) => fetch_archive(a, opts),
    }
}

/// Fetches a model: downloads it from its URLs, or extracts it from its archive.
pub fn fetch_model(manifest: &Manifest, m: &ModelEntry, opts: &FetchOptions) -> Result<FetchReport> {
    local::ensure_dir(&opts.dir)?;
    let want = Want { name: &m.name, expect: Expected::of_model(m), role: Some(m.role) };
    let dest = opts.dir.join(&m.file);
    let _lock = FileLock::acquire(&opts.dir, &m.file, opts.quiet)?;
    if let Some(report) = present(&want, &dest, opts)? {
        return Ok(report);
    }
    if !m.urls.is_empty() {
        let urls = source_urls(&m.file, &m.urls, opts.mirror.as_deref());
        return download(&want, &urls, &dest, opts);
    }
    let Some(name) = &m.archive else { bail!("model `{}` has no URL and no archive", m.name) };
    let archive = manifest.archive(name).ok_or_else(|| anyhow!("archive `{name}` is not in the manifest"))?;
    let got = fetch_archive(archive, opts)?;
    let check = extract(Path::new(&got.path), m.member(), &dest, &want)
        .with_context(|| format!("extracting {} from {}", m.member(), got.path))?;
    let mut report = want.report(&dest, Action::Extracted, &check);
    report.recorded_in = want.record(&dest, &check, &format!("archive {}", archive.name))?;
    report.url = got.url;
    report.archive = Some(archive.name.clone());
    report.bytes_transferred = got.bytes_transferred;
    report.resumed_from = got.resumed_from;
    Ok(report)
}

/// Fetches an archive into `opts.dir` (kept there, so its other members need no second download).
pub fn fetch_archive(a: &Archive, opts: &FetchOptions) -> Result<FetchReport> {
    local::ensure_dir(&opts.dir)?;
    let want = Want { name: &a.name, expect: Expected::of_archive(a), role: None };
    let dest = opts.dir.join(&a.file);
    let _lock = FileLock::acquire(&opts.dir, &a.file, opts.quiet)?;
    if let Some(report) = present(&want, &dest, opts)? {
        return Ok(report);
    }
    let urls = source_urls(&a.file, &a.urls, opts.mirror.as_deref());
    download(&want, &urls, &dest, opts)
}

/// The URLs to try: the mirror's (only) when one is set.
pub fn source_urls(file: &str, urls: &[String], mirror: Option<&str>) -> Vec<String> {
    match mirror {
        Some(m) => vec![format!("{}/{file}", m.trim_end_matches('/'))],
        None => urls.to_vec(),
    }
}

/// A report for a file that is already in place and agrees with the manifest; an error for one
/// that contradicts it (unless `force`, which deletes it). Without a published hash, "agrees"
/// means: matches the sha256 recorded when it was first fetched, or (not recorded yet) fits the
/// role's signature, and is then recorded.
fn present(want: &Want, dest: &Path, opts: &FetchOptions) -> Result<Option<FetchReport>> {
    let Some(c) = check_file(dest, &want.expect)? else { return Ok(None) };
    let dir = dest.parent().unwrap_or(Path::new("."));
    let problem = if !c.verdict.is_ok() {
        Some(format!("its {}", c.verdict.problem()))
    } else if want.unhashed() {
        unhashed_problem(want, dest, &c)?
    } else {
        None
    };
    let Some(problem) = problem else {
        let mut report = want.report(dest, Action::AlreadyPresent, &c);
        if want.unhashed() {
            let recorded = FetchRecord::load(dir)?.get(&file_name(dest)).is_some();
            report.recorded_in = match recorded {
                true => Some(dir.join(fetched::RECORD_FILE).display().to_string()),
                false => want.record(dest, &c, "found in place")?,
            };
        }
        return Ok(Some(report));
    };
    if !opts.force {
        bail!("{} is already there but {problem}; delete it or re-run with --force to fetch it again", dest.display());
    }
    fs::remove_file(dest).map_err(|e| io_error(e, dest, "cannot delete the mismatched file"))?;
    Ok(None)
}

/// Why a present file without a published hash is not trusted: it changed since its sha256 was
/// recorded, or (not recorded yet) it does not fit the role's signature. `None`: it is fine.
fn unhashed_problem(want: &Want, dest: &Path, c: &FileCheck) -> Result<Option<String>> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let record = FetchRecord::load(dir)?;
    let file = file_name(dest);
    let sha = c.sha256.as_deref().unwrap_or_default();
    if let Some(why) = record.changed(&file, sha) {
        return Ok(Some(why));
    }
    if record.get(&file).is_some() {
        return Ok(None);
    }
    Ok(want.check_signature(dest, "it").err().map(|e| format!("{e:#}")))
}

/// `<file>.part` beside `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Why one transfer attempt failed, which decides what to do next.
enum Failure {
    /// Our side (disk full, no permission): no other URL will help.
    Local(anyhow::Error),
    /// The server refused or sent the wrong thing: try the next URL.
    Remote(anyhow::Error),
    /// The connection broke: resume from the part file.
    Interrupted(anyhow::Error),
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("faceperf/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Downloads `urls` (in order, resuming a kept part file) into `dest`, verified against `want`.
fn download(want: &Want, urls: &[String], dest: &Path, opts: &FetchOptions) -> Result<FetchReport> {
    let (name, expect) = (want.name, &want.expect);
    let part = part_path(dest);
    let agent = agent();
    let mut errors: Vec<anyhow::Error> = Vec::new();
    for url in urls {
        let mut transferred = 0u64;
        let mut first_offset = None;
        let mut attempt = 0;
        let outcome = loop {
            match transfer(&agent, url, &part, expect, opts.quiet, name, &mut transferred) {
                Ok(offset) => {
                    first_offset.get_or_insert(offset);
                    break Ok(());
                }
                Err(Failure::Interrupted(e)) if attempt < opts.retries => {
                    attempt += 1;
                    if !opts.quiet {
                        let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                        let how = if have > 0 { format!("resuming from byte {have}") } else { "retrying".into() };
                        eprintln!("{e:#}; {how} (attempt {attempt} of {})", opts.retries);
                    }
                    first_offset.get_or_insert(0);
                }
                Err(f) => break Err(f),
            }
        };
        match outcome {
            Err(Failure::Local(e)) => return Err(e),
            Err(Failure::Remote(e) | Failure::Interrupted(e)) => {
                errors.push(e);
                continue;
            }
            Ok(()) => {}
        }
        let check = check_file(&part, expect)?.ok_or_else(|| anyhow!("{} vanished", part.display()))?;
        if !check.verdict.is_ok() {
            let _ = fs::remove_file(&part);
            errors.push(match &check.verdict {
                Verdict::HashMismatch { expected, actual } => anyhow!(
                    "sha256 mismatch for {} from {url}: expected {expected}, got {actual}; the download was deleted",
                    file_name(dest)
                ),
                v => anyhow!("{} from {url}: {}; the download was deleted", file_name(dest), v.problem()),
            });
            continue;
        }
        if let Err(e) = want.check_signature(&part, &format!("{} from {url}", file_name(dest))) {
            let _ = fs::remove_file(&part);
            errors.push(anyhow!(
                "{e:#}; no sha256 is published for it, so its signature decides; the download was deleted"
            ));
            continue;
        }
        local::place(&part, dest)?;
        let mut report = want.report(dest, Action::Downloaded, &check);
        report.recorded_in = want.record(dest, &check, url)?;
        report.url = Some(url.clone());
        report.bytes_transferred = transferred;
        report.resumed_from = first_offset.unwrap_or(0);
        return Ok(report);
    }
    match errors.len() {
        0 => bail!("no URL to fetch {} from", file_name(dest)),
        1 => Err(errors.remove(0)),
        _ => {
            let all: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
            bail!("every URL failed for {}: {}", file_name(dest), all.join("; "))
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Connection errors worth retrying (the server may answer the next attempt); refused
/// connections and failed name lookups are not.
fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe | TimedOut | Interrupted)
}

/// `bytes START-END/TOTAL` → (START, TOTAL); TOTAL may be `*`.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// One HTTP request: appends the rest of the body to `part`, adding the bytes received to
/// `received` (also when it fails). Returns the offset it started at. The part file is complete
/// when this returns `Ok`.
fn transfer(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    expect: &Expected,
    quiet: bool,
    label: &str,
    total_received: &mut u64,
) -> Result<u64, Failure> {
    let mut offset = match fs::metadata(part) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Failure::Local(io_error(e, part, "cannot read the partial download"))),
    };
    if let Some(size) = expect.size {
        if offset > size {
            fs::remove_file(part).map_err(|e| Failure::Local(io_error(e, part, "cannot delete")))?;
            offset = 0;
        } else if offset == size && offset > 0 {
            return Ok(offset);
        }
    }
    let mut req = agent.get(url);
    if offset > 0 {
        req = req.header("Range", format!("bytes={offset}-"));
    }
    let mut resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Timeout(t)) => return Err(Failure::Interrupted(anyhow!("{url}: timed out ({t})"))),
        Err(ureq::Error::Io(e)) if transient(&e) => {
            return Err(Failure::Interrupted(anyhow::Error::new(e).context(format!("{url}: connection broke"))))
        }
        Err(e) => return Err(Failure::Remote(anyhow::Error::new(e).context(format!("cannot download {url}")))),
    };
    let status = resp.status().as_u16();
    let header = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (append, total) = match status {
        206 if offset > 0 => {
            let cr = header("content-range").unwrap_or_default();
            match parse_content_range(&cr) {
                Some((start, total)) if start == offset => (true, total),
                _ => {
                    // A range we did not ask for: start over rather than splice wrong bytes.
                    let _ = fs::remove_file(part);
                    return Err(Failure::Interrupted(anyhow!(
                        "{url}: unexpected Content-Range `{cr}` for a resume from byte {offset}; restarting"
                    )));
                }
            }
        }
        200 => (false, resp.body().content_length()),
        416 if offset > 0 => {
            let _ = fs::remove_file(part);
            return Err(Failure::Interrupted(anyhow!(
                "{url}: the server refused to resume from byte {offset} (HTTP 416); restarting from the beginning"
            )));
        }
        _ => {
            let reason = resp.status().canonical_reason().unwrap_or("");
            return Err(Failure::Remote(anyhow!("HTTP {status} {reason} from {url}")));
        }
    };
    let offset = if append { offset } else { 0 };
    let full = if append { total } else { total.or(expect.size) };
    if let (Some(full), Some(want)) = (full, expect.size) {
        if full != want {
            return Err(Failure::Remote(anyhow!(
                "{url} serves {full} bytes but the manifest says {want}: not the published file"
            )));
        }
    }
    let mut file = if append {
        OpenOptions::new().append(true).open(part)
    } else {
        OpenOptions::new().create(true).write(true).truncate(true).open(part)
    }
    .map_err(|e| Failure::Local(io_error(e, part, "cannot write the download")))?;
    let pb = crate::util::progress::bytes_bar(full.unwrap_or(0), label, quiet);
    pb.set_position(offset);
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0u64;
    let result = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let of = full.map(|f| format!(" of {f}")).unwrap_or_default();
                break Err(Failure::Interrupted(anyhow::Error::new(e).context(format!(
                    "transfer from {url} interrupted after {} bytes{of}; {} is kept and the next fetch resumes it",
                    offset + received,
                    part.display()
                ))));
            }
        };
        if let Err(e) = file.write_all(&buf[..n]) {
            break Err(Failure::Local(io_error(e, part, "cannot write the download")));
        }
        received += n as u64;
        *total_received += n as u64;
        pb.inc(n as u64);
    };
    pb.finish_and_clear();
    // Keep what arrived even on failure: it is what the next attempt resumes from.
    let synced = file.sync_all();
    result?;
    synced.map_err(|e| Failure::Local(io_error(e, part, "cannot write the download")))?;
    if let Some(full) = full {
        if offset + received != full {
            return Err(Failure::Interrupted(anyhow!(
                "transfer from {url} ended after {} of {full} bytes; the next fetch resumes it",
                offset + received
            )));
        }
    }
    Ok(offset)
}

/// Extracts `member` of the zip `archive` into `dest` through a temporary file, checking it
/// against `want` (hash or size, and the signature when no hash is published) before the rename.
fn extract(archive: &Path, member: &str, dest: &Path, want: &Want) -> Result<FileCheck> {
    let f = File::open(archive).map_err(|e| io_error(e, archive, "cannot open"))?;
    let mut zip = zip::ZipArchive::new(f).with_context(|| format!("{} is not a readable zip", archive.display()))?;
    let suffix = format!("/{member}");
    let index = (0..zip.len())
        .find(|&i| zip.name_for_index(i).is_some_and(|n| n.ok().is_some_and(|n| n == member || n.ends_with(&suffix))))
        .ok_or_else(|| anyhow!("{} has no member {member}", archive.display()))?;
    let mut entry = zip.by_index(index)?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.extract-{}", file_name(dest), std::process::id()));
    let result = (|| -> Result<FileCheck> {
        local::copy_synced(&mut entry, &tmp)?;
        let c = check_file(&tmp, &want.expect)?.ok_or_else(|| anyhow!("{} vanished", tmp.display()))?;
        if !c.verdict.is_ok() {
            bail!("member {member} of {}: {}; nothing was written", archive.display(), c.verdict.problem());
        }
        let label = format!("member {member} of {}", archive.display());
        want.check_signature(&tmp, &label).map_err(|e| anyhow!("{e:#}; nothing was written"))?;
        local::place(&tmp, dest)?;
        Ok(c)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn mirror_replaces_urls() {
        let urls = vec!["https://a.example/x/det.onnx".to_string()];
        assert_eq!(source_urls("det.onnx", &urls, None), urls);
        assert_eq!(source_urls("det.onnx", &urls, Some("http://127.0.0.1:9/m/")), ["http://127.0.0.1:9/m/det.onnx"]);
    }
}
