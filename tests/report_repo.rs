//! `faceperf report` with no arguments on a copy of the repository's own `bench-results/`: it must
//! succeed, passing by the CSV files that are not result tables (live per-frame records, the
//! optimize benchmark's timings) while still refusing a results folder's malformed CSV.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn report_in(dir: &Path) -> std::process::Output {
    Command::new(BIN).arg("report").current_dir(dir).output().unwrap()
}

#[test]
fn report_without_arguments_succeeds_on_the_committed_results() {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results"), &t.path().join("bench-results"));
    // Per-frame live records beside a profile's results are passed by, not read as a table.
    let live = std::fs::read_dir(t.path().join("bench-results/live-cpu"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .expect("bench-results/live-cpu holds per-frame records");
    std::fs::copy(&live, t.path().join("bench-results/cpu/zz_live_records.csv")).unwrap();

    let o = report_in(t.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "report failed: {err}");
    let md = std::fs::read_to_string(t.path().join("reports/performance.md")).unwrap();
    for profile in ["cpu", "h100", "m3max-published"] {
        assert!(md.contains(profile), "the report names {profile}");
    }
    assert!(!md.contains("live-cpu"), "per-frame records are not a profile's results");
    let figures = std::fs::read_dir(t.path().join("reports/figures")).unwrap().count();
    assert!(figures > 0, "the report draws figures");
}

#[test]
fn a_malformed_results_csv_still_stops_the_report() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("bench-results/cpu");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("20260101T000000Z_x.csv"), "profile,model\ncpu,x\n").unwrap();
    let o = report_in(t.path());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("20260101T000000Z_x.csv") && err.contains("not a faceperf results CSV"), "{err}");
}
