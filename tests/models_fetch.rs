//! `models fetch` and `models import` against a loopback HTTP server started by each test (no test
//! touches the internet): resume after an interrupted transfer, hash and size rejection (nothing
//! left in place), HTTP errors, archives, locking (no lock file left behind), disk-full and
//! unwritable-folder errors, models without a published hash (signature check, recorded sha256,
//! changed files noticed), and imports from Deep-Live-Cam and insightface folders.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use faceperf::models::fetch::{self, part_path, Action, FetchOptions, Target};
use faceperf::models::fetched::{self, FetchRecord, RECORD_FILE};
use faceperf::models::import::{import, ImportStatus};
use faceperf::models::local::FileLock;
use faceperf::models::{synth, Manifest, Role, Scale};
use faceperf::util::hash::sha256_hex;
use support::http::{Route, Server};

// ---------------------------------------------------------------------------------------------
// Manifests for the test files.

fn payload(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + i / 251) as u8) ^ salt).collect()
}

/// A `[[models]]` entry with direct URLs.
fn model_toml(name: &str, file: &str, urls: &[String], size: Option<usize>, sha: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let size = size.map(|s| format!("size = {s}\n")).unwrap_or_default();
    format!(
        "[[models]]\nname = \"{name}\"\nfile = \"{file}\"\nrole = \"swapper\"\nurls = [{}]\n{size}sha256 = \"{sha}\"\n\n",
        urls.join(", ")
    )
}

fn manifest(body: &str) -> Manifest {
    Manifest::parse(&format!("version = 1\n\n{body}"), "test manifest").unwrap()
}

fn opts(dir: &Path) -> FetchOptions {
    FetchOptions { dir: dir.to_path_buf(), mirror: None, retries: 0, force: false, quiet: true }
}

fn fetch_one(m: &Manifest, name: &str, o: &FetchOptions) -> anyhow::Result<fetch::FetchReport> {
    fetch::fetch_model(m, m.model(name).unwrap(), o)
}

/// Every file in `dir`, lock files included (none may be left behind).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------

#[test]
fn interrupted_transfer_resumes_with_a_range_request() {
    let body = payload(3 << 20, 0);
    let cut = 1 << 20;
    let srv =
        Server::start_with(vec![("/m/a.onnx", Route { body: body.clone(), drops: 1, cut, ..Default::default() })]);
    let m = manifest(&model_toml("a", "a.onnx", &[srv.url("/m/a.onnx")], Some(body.len()), &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path());

    // First fetch: the server drops the connection after 1 MiB.
    let err = format!("{:#}", fetch_one(&m, "a", &o).unwrap_err());
    assert!(err.contains("interrupted after 1048576 bytes of 3145728"), "{err}");
    assert!(err.contains("next fetch resumes"), "{err}");
    let part = part_path(&d.path().join("a.onnx"));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut as u64, "the partial data is kept");
    assert!(!d.path().join("a.onnx").exists(), "nothing unverified in place");

    // Second fetch: asks for the rest only, completes and verifies.
    let r = fetch_one(&m, "a", &o).unwrap();
    assert_eq!(r.action, Action::Downloaded);
    assert_eq!(r.resumed_from, cut as u64);
    assert_eq!(r.bytes_transferred, (body.len() - cut) as u64);
    assert_eq!(r.verified_by, "sha256");
    assert!(std::fs::read(d.path().join("a.onnx")).unwrap() == body);
    assert_eq!(srv.requests(), [("/m/a.onnx".to_string(), None), ("/m/a.onnx".to_string(), Some(cut as u64))]);
    assert_eq!(leftovers(d.path()), ["a.onnx"], "the part file is gone");

    // Third fetch: already present and verified, no request.
    let r = fetch_one(&m, "a", &o).unwrap();
    assert_eq!(r.action, Action::AlreadyPresent);
    assert_eq!(srv.requests().len(), 2);
}

#[test]
fn retries_resume_within_one_fetch() {
    let body = payload(600_000, 1);
    let srv = Server::start_with(vec![(
        "/b.onnx",
        Route { body: body.clone(), drops: 2, cut: 100_000, ..Default::default() },
    )]);
    let m = manifest(&model_toml("b", "b.onnx", &[srv.url("/b.onnx")], None, &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.retries = 2;
    let r = fetch_one(&m, "b", &o).unwrap();
    assert_eq!(r.action, Action::Downloaded);
    assert_eq!(r.resumed_from, 0, "the call started from scratch");
    assert!(std::fs::read(d.path().join("b.onnx")).unwrap() == body);
    let ranges: Vec<Option<u64>> = srv.requests().into_iter().map(|(_, r)| r).collect();
    assert_eq!(ranges, [None, Some(100_000), Some(200_000)]);
}

#[test]
fn resume_follows_redirects_and_survives_a_server_without_range_support() {
    let body = payload(500_000, 18);
    let srv = Server::start_with(vec![
        ("/r/o.onnx", Route { redirect: Some("/files/o.onnx".into()), ..Default::default() }),
        ("/files/o.onnx", Route { body: body.clone(), drops: 1, cut: 200_000, ..Default::default() }),
        ("/p.onnx", Route { body: body.clone(), drops: 1, cut: 200_000, ignore_range: true, ..Default::default() }),
    ]);
    let m = manifest(&format!(
        "{}{}",
        model_toml("o", "o.onnx", &[srv.url("/r/o.onnx")], None, &sha256_hex(&body)),
        model_toml("p", "p.onnx", &[srv.url("/p.onnx")], None, &sha256_hex(&body))
    ));
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.retries = 1;
    // The Range header survives the redirect.
    let r = fetch_one(&m, "o", &o).unwrap();
    assert!(std::fs::read(d.path().join("o.onnx")).unwrap() == body);
    assert_eq!(r.bytes_transferred, 500_000);
    let log = srv.requests();
    assert_eq!(log[3], ("/files/o.onnx".to_string(), Some(200_000)), "{log:?}");
    // A 200 answer to a Range request restarts the file instead of appending to it.
    fetch_one(&m, "p", &o).unwrap();
    assert!(std::fs::read(d.path().join("p.onnx")).unwrap() == body);
    assert_eq!(srv.requests()[5], ("/p.onnx".to_string(), Some(200_000)));
}

#[test]
fn wrong_hash_is_rejected_and_nothing_is_left_in_place() {
    let served = payload(200_000, 2);
    let published = payload(200_000, 3);
    let (want, got) = (sha256_hex(&published), sha256_hex(&served));
    let srv = Server::start(vec![("/c.onnx", served)]);
    let m = manifest(&model_toml("c", "c.onnx", &[srv.url("/c.onnx")], Some(200_000), &want));
    let d = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch_one(&m, "c", &opts(d.path())).unwrap_err());
    assert!(err.contains("sha256 mismatch for c.onnx"), "{err}");
    assert!(err.contains(&format!("expected {want}, got {got}")), "both hashes named: {err}");
    assert!(err.contains(&srv.url("/c.onnx")), "{err}");
    assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
}

#[test]
fn http_404_names_the_status_and_url() {
    let srv = Server::start(vec![]);
    let url = srv.url("/missing/d.onnx");
    let m = manifest(&model_toml("d", "d.onnx", std::slice::from_ref(&url), None, ""));
    let d = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch_one(&m, "d", &opts(d.path())).unwrap_err());
    assert!(err.contains(&format!("HTTP 404 Not Found from {url}")), "{err}");
    assert!(leftovers(d.path()).is_empty());
}

#[test]
fn next_url_is_tried_after_a_failure() {
    let body = payload(50_000, 4);
    let srv = Server::start(vec![("/good/e.onnx", body.clone())]);
    let urls = [srv.url("/gone/e.onnx"), srv.url("/good/e.onnx")];
    let m = manifest(&model_toml("e", "e.onnx", &urls, Some(body.len()), &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    let r = fetch_one(&m, "e", &opts(d.path())).unwrap();
    assert_eq!(r.url.as_deref(), Some(urls[1].as_str()));
}

/// The serialized tiny replica of `role`.
fn replica(role: Role, seed: u64) -> Vec<u8> {
    synth::synth_model(role, Scale::Tiny, seed).unwrap().to_bytes()
}

#[test]
fn without_a_hash_the_size_and_the_signature_are_checked() {
    let body = replica(Role::Swapper, 1);
    let n = body.len();
    let srv = Server::start(vec![("/f.onnx", body.clone()), ("/g.onnx", body.clone())]);
    let m = manifest(&format!(
        "{}{}",
        model_toml("f", "f.onnx", &[srv.url("/f.onnx")], Some(n), ""),
        model_toml("g", "g.onnx", &[srv.url("/g.onnx")], Some(n + 1), "")
    ));
    let d = tempfile::tempdir().unwrap();
    let r = fetch_one(&m, "f", &opts(d.path())).unwrap();
    assert_eq!(r.verified_by, "size+signature");
    assert_eq!(r.trust, fetched::TRUST_SIZE_SIGNATURE);
    assert_eq!(r.sha256, sha256_hex(&body), "the digest is still reported");
    let err = format!("{:#}", fetch_one(&m, "g", &opts(d.path())).unwrap_err());
    assert!(err.contains(&format!("serves {n} bytes but the manifest says {}", n + 1)), "{err}");
    assert!(!d.path().join("g.onnx").exists());
    assert_eq!(leftovers(d.path()), [RECORD_FILE, "f.onnx"]);
}

/// Runs `faceperf models <args> --manifest <mpath> --dir <dir>` with `FACEPERF_MIRROR=<mirror>`.
fn cli(args: &[&str], mpath: &Path, dir: &Path, mirror: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faceperf"))
        .arg("models")
        .args(args)
        .arg("--manifest")
        .arg(mpath)
        .arg("--dir")
        .arg(dir)
        .env("FACEPERF_MIRROR", mirror)
        .output()
        .unwrap()
}

/// A manifest file with a GFPGANv1.4 entry like the built-in one: an enhancer, no hash, no size.
fn gfpgan_manifest(dir: &Path) -> std::path::PathBuf {
    let text = "version = 1\n\n[[models]]\nname = \"GFPGANv1.4\"\nfile = \"GFPGANv1.4.onnx\"\nrole = \"enhancer\"\n\
                urls = [\"https://example.invalid/GFPGANv1.4.onnx\"]\nsha256 = \"\"\n";
    let p = dir.join("manifest.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_wrong_model_served_for_a_name_without_a_hash_is_refused() {
    // The mirror serves a 192x192 landmarks model under the enhancer's name.
    let srv = Server::start(vec![("/GFPGANv1.4.onnx", replica(Role::Landmarks, 1))]);
    let d = tempfile::tempdir().unwrap();
    let mpath = gfpgan_manifest(d.path());
    let models = d.path().join("models");
    let out = cli(&["fetch", "GFPGANv1.4"], &mpath, &models, &srv.base);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("GFPGANv1.4.onnx from {}/GFPGANv1.4.onnx is not a enhancer model", srv.base)),
        "{err}"
    );
    assert!(err.contains("it looks like a landmarks model"), "{err}");
    assert!(err.contains("no sha256 is published for it, so its signature decides; the download was deleted"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
    assert!(leftovers(&models).is_empty(), "no file, part file, lock or record: {:?}", leftovers(&models));

    // The same file put in place by hand is not taken either.
    std::fs::write(models.join("GFPGANv1.4.onnx"), replica(Role::Landmarks, 1)).unwrap();
    let out = cli(&["fetch", "GFPGANv1.4", "--retries", "0"], &mpath, &models, &srv.base);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is already there but it is not a enhancer model"), "{err}");
    assert_eq!(leftovers(&models), ["GFPGANv1.4.onnx"], "nothing recorded for a refused file");
}

#[test]
fn a_model_without_a_hash_is_signature_checked_recorded_and_watched() {
    let first = replica(Role::Enhancer, 1);
    let srv = Server::start(vec![("/GFPGANv1.4.onnx", first.clone())]);
    let d = tempfile::tempdir().unwrap();
    let mpath = gfpgan_manifest(d.path());
    let models = d.path().join("models");

    // First fetch (text): reported as unverified, its sha256 recorded.
    let out = cli(&["fetch", "GFPGANv1.4"], &mpath, &models, &srv.base);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("downloaded") && text.contains("unverified: signature only"), "{text}");
    let rec = FetchRecord::load(&models).unwrap();
    let entry = rec.get("GFPGANv1.4.onnx").unwrap();
    assert_eq!(entry.sha256, sha256_hex(&first));
    assert_eq!(entry.source, format!("{}/GFPGANv1.4.onnx", srv.base));
    assert_eq!(leftovers(&models), [RECORD_FILE, "GFPGANv1.4.onnx"], "no lock files");

    // Second fetch (JSON): already present, same trust, compared with the record.
    let out = cli(&["fetch", "GFPGANv1.4", "--json"], &mpath, &models, &srv.base);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["action"], "already-present");
    assert_eq!(rows[0]["trust"], "unverified: signature only");
    assert_eq!(rows[0]["verified_by"], "signature");
    assert_eq!(rows[0]["recorded_in"], models.join(RECORD_FILE).display().to_string());
    assert_eq!(FetchRecord::load(&models).unwrap(), rec, "the first record is kept as it was");

    // The file changes (another enhancer: its signature still fits): list and fetch notice.
    let second = replica(Role::Enhancer, 2);
    std::fs::write(models.join("GFPGANv1.4.onnx"), &second).unwrap();
    let out = cli(&["list", "--json"], &mpath, &models, &srv.base);
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l["models"][0]["status"], "changed");
    let why = l["models"][0]["problem"].as_str().unwrap();
    assert!(why.contains(&format!("changed since it was first fetched: sha256 {}", sha256_hex(&second))), "{why}");
    assert!(why.contains(&format!("recorded {}", sha256_hex(&first))), "{why}");
    let text = String::from_utf8_lossy(&cli(&["list"], &mpath, &models, &srv.base).stdout).into_owned();
    assert!(text.contains("changed") && text.contains("changed since it was first fetched"), "{text}");
    let out = cli(&["fetch", "GFPGANv1.4"], &mpath, &models, &srv.base);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is already there but changed since it was first fetched") && err.contains("--force"),
        "{err}"
    );

    // --force fetches it again; the record and the listing agree again.
    let out = cli(&["fetch", "GFPGANv1.4", "--force", "--json"], &mpath, &models, &srv.base);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["action"], "downloaded");
    assert!(std::fs::read(models.join("GFPGANv1.4.onnx")).unwrap() == first);
    let l: serde_json::Value =
        serde_json::from_slice(&cli(&["list", "--json"], &mpath, &models, &srv.base).stdout).unwrap();
    assert_eq!(l["models"][0]["status"], "present-unverified");
    assert_eq!(leftovers(&models), [RECORD_FILE, "GFPGANv1.4.onnx"], "no lock files");
}

#[test]
fn an_archive_member_without_a_hash_must_fit_its_role() {
    let zip = zip_of(&[("det.onnx", &replica(Role::Recognizer, 1)), ("rec.onnx", &replica(Role::Recognizer, 1))]);
    let srv = Server::start(vec![("/pack.zip", zip.clone())]);
    let member = |name: &str, role: &str| {
        format!("[[models]]\nname = \"{name}\"\nfile = \"{name}.onnx\"\nrole = \"{role}\"\narchive = \"pack\"\n\n")
    };
    let m = manifest(&format!(
        "[[archives]]\nname = \"pack\"\nfile = \"pack.zip\"\nurls = [\"{}\"]\nsha256 = \"{}\"\n\n{}{}",
        srv.url("/pack.zip"),
        sha256_hex(&zip),
        member("det", "detector"),
        member("rec", "recognizer")
    ));
    let d = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch_one(&m, "det", &opts(d.path())).unwrap_err());
    assert!(err.contains("is not a detector model") && err.contains("nothing was written"), "{err}");
    let r = fetch_one(&m, "rec", &opts(d.path())).unwrap();
    assert_eq!((r.action, r.trust.as_str()), (Action::Extracted, fetched::TRUST_SIGNATURE));
    assert_eq!(FetchRecord::load(d.path()).unwrap().get("rec.onnx").unwrap().source, "archive pack");
    assert_eq!(leftovers(d.path()), [RECORD_FILE, "pack.zip", "rec.onnx"]);
}

#[test]
fn lock_files_are_removed_on_release_without_breaking_mutual_exclusion() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let d = tempfile::tempdir().unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (dir, inside, most) = (d.path().to_path_buf(), inside.clone(), most.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let _lock = FileLock::acquire(&dir, "x.onnx", true).unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
    assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
}

#[test]
fn a_present_mismatched_file_needs_force() {
    let body = payload(30_000, 6);
    let srv = Server::start(vec![("/h.onnx", body.clone())]);
    let m = manifest(&model_toml("h", "h.onnx", &[srv.url("/h.onnx")], None, &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("h.onnx"), b"old version").unwrap();
    let err = format!("{:#}", fetch_one(&m, "h", &opts(d.path())).unwrap_err());
    assert!(err.contains("already there") && err.contains("--force"), "{err}");
    assert!(srv.requests().is_empty());
    let mut o = opts(d.path());
    o.force = true;
    assert_eq!(fetch_one(&m, "h", &o).unwrap().action, Action::Downloaded);
    assert!(std::fs::read(d.path().join("h.onnx")).unwrap() == body);
}

#[test]
fn concurrent_fetches_of_one_file_download_it_once() {
    let body = payload(2 << 20, 7);
    let srv = Server::start(vec![("/i.onnx", body.clone())]);
    let m = Arc::new(manifest(&model_toml("i", "i.onnx", &[srv.url("/i.onnx")], None, &sha256_hex(&body))));
    let d = tempfile::tempdir().unwrap();
    let actions: Vec<Action> = (0..3)
        .map(|_| {
            let (m, o) = (m.clone(), opts(d.path()));
            std::thread::spawn(move || fetch_one(&m, "i", &o).unwrap().action)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == Action::Downloaded).count(), 1, "{actions:?}");
    assert_eq!(srv.requests().len(), 1);
    assert!(std::fs::read(d.path().join("i.onnx")).unwrap() == body);
    assert_eq!(leftovers(d.path()), ["i.onnx"], "no lock file left");
}

/// A zip with `members` stored under `prefix`.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opt = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        w.start_file(*name, opt).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn models_inside_an_archive_are_extracted_and_verified() {
    let det = payload(40_000, 8);
    let rec = payload(70_000, 9);
    let zip = zip_of(&[("det.onnx", &det), ("rec.onnx", &rec), ("bad.onnx", b"corrupt")]);
    let srv = Server::start(vec![("/pack.zip", zip.clone())]);
    let archive = format!(
        "[[archives]]\nname = \"pack\"\nfile = \"pack.zip\"\nurls = [\"{}\"]\nsize = {}\nsha256 = \"{}\"\n\n",
        srv.url("/pack.zip"),
        zip.len(),
        sha256_hex(&zip)
    );
    let member = |name: &str, file: &str, sha: &str| {
        format!("[[models]]\nname = \"{name}\"\nfile = \"{file}\"\nrole = \"detector\"\narchive = \"pack\"\nsha256 = \"{sha}\"\n\n")
    };
    let m = manifest(&format!(
        "{archive}{}{}{}",
        member("det", "det.onnx", &sha256_hex(&det)),
        member("rec", "rec.onnx", &sha256_hex(&rec)),
        member("bad", "bad.onnx", &sha256_hex(b"expected"))
    ));
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path());
    let r = fetch_one(&m, "det", &o).unwrap();
    assert_eq!(r.action, Action::Extracted);
    assert_eq!(r.archive.as_deref(), Some("pack"));
    assert_eq!(r.verified_by, "sha256");
    assert!(std::fs::read(d.path().join("det.onnx")).unwrap() == det);
    // The verified archive is kept: the second member needs no second download.
    assert_eq!(fetch_one(&m, "rec", &o).unwrap().action, Action::Extracted);
    assert!(std::fs::read(d.path().join("rec.onnx")).unwrap() == rec);
    assert_eq!(srv.requests().len(), 1);
    let err = format!("{:#}", fetch_one(&m, "bad", &o).unwrap_err());
    assert!(err.contains("member bad.onnx") && err.contains("does not match the published"), "{err}");
    assert_eq!(leftovers(d.path()), ["det.onnx", "pack.zip", "rec.onnx"]);
    // Fetching the archive by name through the target list.
    let t = fetch::targets(&m, &["pack".into()]).unwrap();
    assert!(matches!(t[0], Target::Archive(_)));
    assert_eq!(fetch::fetch(&m, t[0], &o).unwrap().action, Action::AlreadyPresent);
}

#[test]
fn the_mirror_replaces_the_manifest_urls() {
    let body = payload(20_000, 10);
    let srv = Server::start(vec![("/mirror/j.onnx", body.clone())]);
    // The manifest URL is never contacted (the .invalid TLD cannot resolve).
    let m = manifest(&model_toml("j", "j.onnx", &["https://example.invalid/j.onnx".into()], None, &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.mirror = Some(srv.url("/mirror/"));
    let r = fetch_one(&m, "j", &o).unwrap();
    assert_eq!(r.url, Some(srv.url("/mirror/j.onnx")));
}

#[cfg(target_os = "linux")]
#[test]
fn disk_full_is_reported_as_such() {
    let body = payload(100_000, 11);
    let srv = Server::start(vec![("/k.onnx", body.clone())]);
    let m = manifest(&model_toml("k", "k.onnx", &[srv.url("/k.onnx")], None, &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    // Every write to /dev/full fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", part_path(&d.path().join("k.onnx"))).unwrap();
    let err = format!("{:#}", fetch_one(&m, "k", &opts(d.path())).unwrap_err());
    assert!(err.contains("disk full"), "{err}");
    assert!(!d.path().join("k.onnx").exists());
}

#[test]
fn an_unusable_models_folder_is_reported() {
    let body = payload(1_000, 12);
    let srv = Server::start(vec![("/l.onnx", body.clone())]);
    let m = manifest(&model_toml("l", "l.onnx", &[srv.url("/l.onnx")], None, &sha256_hex(&body)));
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = format!("{:#}", fetch_one(&m, "l", &opts(&file.join("models"))).unwrap_err());
    assert!(err.contains("cannot create the models folder"), "{err}");
    assert!(srv.requests().is_empty());
}

#[test]
fn cli_fetch_reads_the_mirror_from_the_environment_and_reports_json() {
    let body = payload(5_000, 13);
    let srv = Server::start(vec![("/m.onnx", body.clone())]);
    let d = tempfile::tempdir().unwrap();
    let text = format!(
        "version = 1\n\n{}{}",
        model_toml("m", "m.onnx", &["https://example.invalid/m.onnx".into()], Some(5_000), &sha256_hex(&body)),
        model_toml("n", "n.onnx", &["https://example.invalid/n.onnx".into()], None, "")
    );
    let mpath = d.path().join("manifest.toml");
    std::fs::write(&mpath, text).unwrap();
    let models = d.path().join("models");
    let out = Command::new(env!("CARGO_BIN_EXE_faceperf"))
        .args(["models", "fetch", "m", "n", "--json", "--manifest"])
        .arg(&mpath)
        .arg("--dir")
        .arg(&models)
        .env("FACEPERF_MIRROR", &srv.base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one of the two fails");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "m");
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[0]["action"], "downloaded");
    assert_eq!(rows[0]["verified_by"], "sha256");
    assert_eq!(rows[1]["ok"], false);
    let e = rows[1]["error"].as_str().unwrap();
    assert!(e.contains("HTTP 404") && e.contains(&format!("{}/n.onnx", srv.base)), "{e}");
    assert!(std::fs::read(models.join("m.onnx")).unwrap() == body);
}

// ---------------------------------------------------------------------------------------------
// import

fn import_manifest(a: &[u8], b: &[u8]) -> Manifest {
    manifest(&format!(
        "{}{}{}",
        model_toml("swap", "swap.onnx", &["https://example.invalid/swap.onnx".into()], None, &sha256_hex(a)),
        model_toml("enh", "enh.onnx", &["https://example.invalid/enh.onnx".into()], Some(b.len()), ""),
        "[[archives]]\nname = \"pk\"\nfile = \"pk.zip\"\nurls = [\"https://example.invalid/pk.zip\"]\n\n\
         [[models]]\nname = \"det\"\nfile = \"det.onnx\"\nrole = \"detector\"\narchive = \"pk\"\nsha256 = \"\"\nsize = 3\n\n"
    ))
}

#[test]
fn import_from_a_deep_live_cam_folder() {
    let (a, b) = (payload(4_000, 14), payload(3_000, 15));
    let m = import_manifest(&a, &b);
    let src = tempfile::tempdir().unwrap();
    let dlc = src.path().join("Deep-Live-Cam");
    std::fs::create_dir_all(dlc.join("models")).unwrap();
    std::fs::write(dlc.join("models/swap.onnx"), &a).unwrap();
    std::fs::write(dlc.join("models/enh.onnx"), b"wrong size").unwrap();
    let dest = tempfile::tempdir().unwrap();
    // The checkout root works as well as its models/ folder.
    let r = import(&m, &dlc, dest.path(), true).unwrap();
    let st: Vec<ImportStatus> = r.models.iter().map(|e| e.status).collect();
    assert_eq!(st, [ImportStatus::Imported, ImportStatus::Mismatched, ImportStatus::Missing]);
    assert_eq!(r.models[0].verified_by.as_deref(), Some("sha256"));
    assert!(r.models[1].problem.as_ref().unwrap().contains("size 10 bytes, the manifest says 3000"));
    assert!(std::fs::read(dest.path().join("swap.onnx")).unwrap() == a);
    assert!(!dest.path().join("enh.onnx").exists(), "a mismatched file is not imported");
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(r.models[0].method.as_deref(), Some("hard-link"));
        assert_eq!(ino(&dlc.join("models/swap.onnx")), ino(&dest.path().join("swap.onnx")));
    }
    assert_eq!(leftovers(dest.path()), ["swap.onnx"], "no temporary files");
    // Importing again: already present.
    let again = import(&m, &dlc.join("models"), dest.path(), true).unwrap();
    assert_eq!(again.models[0].status, ImportStatus::AlreadyPresent);
}

#[test]
fn import_from_an_insightface_folder_via_the_cli() {
    let (a, b) = (payload(4_000, 16), payload(3_000, 17));
    let m = import_manifest(&a, &b);
    let home = tempfile::tempdir().unwrap();
    let buffalo = home.path().join(".insightface/models/buffalo_l");
    std::fs::create_dir_all(&buffalo).unwrap();
    std::fs::write(buffalo.join("det.onnx"), b"abc").unwrap();
    std::fs::write(buffalo.join("1k3d68.onnx"), b"not in the manifest").unwrap();
    let r = import(&m, &home.path().join(".insightface"), &home.path().join("models"), true).unwrap();
    let det = &r.models[2];
    assert_eq!(det.status, ImportStatus::Imported);
    assert_eq!(det.verified_by.as_deref(), Some("size"));
    assert!(det.source.as_ref().unwrap().ends_with("models/buffalo_l/det.onnx"));

    // The command line: JSON report; a folder with none of the models is an error.
    let mpath = home.path().join("m.toml");
    std::fs::write(
        &mpath,
        format!(
            "version = 1\n\n{}",
            model_toml("det", "det.onnx", &["https://example.invalid/det.onnx".into()], Some(3), "")
        ),
    )
    .unwrap();
    let run = |src: &Path, json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_faceperf"));
        c.args(["models", "import"]).arg(src).arg("--manifest").arg(&mpath).arg("--dir").arg(home.path().join("m2"));
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let out = run(&buffalo, true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"][0]["status"], "imported");
    let empty = tempfile::tempdir().unwrap();
    let out = run(empty.path(), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model of the manifest found"));
}
