#!/usr/bin/env bash
# Reproducibility of `faceperf bench` (issue 20): N back-to-back invocations of the same job (tiny
# replicas, swapper and detector, the same budget each) and, for each model, how many of the N medians
# fall inside the 95% CI that the first invocation reported. The criterion is at least 9 of 10 (in
# general ceil(0.9 N), the first invocation included). Then, unless REPRO_AB=0, two test-only A/B
# invocations (`--test-ab 10`: a twin of each job with a planted 10% slowdown; `--test-ab 0`: an
# identical twin) and the verdicts they got on this machine.
#
#   bash ci/repro-bench.sh                   # 10 invocations, 5 s per model, 10 rounds
#   REPRO_N=3 REPRO_TIME=1 bash ci/repro-bench.sh   # a short trial
#
# Environment: REPRO_N (invocations, 10), REPRO_TIME (seconds per model, 5), REPRO_ROUNDS (10),
# REPRO_AB (1), REPRO_OUT (bench-results/repro/<UTC stamp>), FACEPERF (a faceperf binary; default: build
# the release binary with cargo). The run cap is lifted (--runs 1000000) so the time budget, not the
# run count, decides how long each model is measured.
#
# Writes under REPRO_OUT: cpu/<stamp>_<host>.{csv,json} per invocation (full provenance: hardware, ORT
# version and path, EP options, model sha256, build commit), ab/cpu/… for the A/B runs, uptime.log
# (load before and after each invocation), summary.json and summary.md. Exits 1 when a model misses
# the criterion (the files are written all the same).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${REPRO_N:-10}
TIME=${REPRO_TIME:-5}
ROUNDS=${REPRO_ROUNDS:-10}
AB=${REPRO_AB:-1}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${REPRO_OUT:-bench-results/repro/$STAMP}

if [ -z "${FACEPERF:-}" ]; then
    bash ci/setup-ort.sh >/dev/null
    cargo build --release --quiet
    FACEPERF=target/release/faceperf
fi
mkdir -p "$OUT"
JOB=(bench --profile cpu --scale tiny --role swapper,detector --time "$TIME" --rounds "$ROUNDS"
     --runs 1000000 --min-runs "$ROUNDS" --op-profile-runs 0 --pipeline-frames 0)
echo "job: faceperf ${JOB[*]}" | tee "$OUT/uptime.log"

for i in $(seq 1 "$N"); do
    echo "invocation $i/$N before: $(uptime)" | tee -a "$OUT/uptime.log"
    "$FACEPERF" "${JOB[@]}" --out "$OUT" >"$OUT/invocation-$i.txt" 2>&1
    echo "invocation $i/$N after:  $(uptime)" | tee -a "$OUT/uptime.log"
done
if [ "$AB" = 1 ]; then
    for pct in 10 0; do
        echo "A/B twin, planted slowdown $pct% before: $(uptime)" | tee -a "$OUT/uptime.log"
        "$FACEPERF" "${JOB[@]}" --test-ab "$pct" --out "$OUT/ab" >"$OUT/ab-$pct.txt" 2>&1
    done
fi

python3 - "$OUT" "$N" <<'EOF'
import glob, json, math, os, sys

out, n = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, "cpu", "*.json")))]
if len(runs) != n:
    sys.exit(f"error: expected {n} results in {out}/cpu, found {len(runs)}")
need = math.ceil(0.9 * n)
summary = {"invocations": n, "criterion": f"at least {need} of {n} medians inside the first invocation's 95% CI",
           "job": runs[0]["command_line"][1:], "build_commit": runs[0]["tool"]["build_commit"],
           "git_commit": runs[0]["tool"]["git_commit"], "cpu": runs[0]["hardware"]["cpu_model"],
           "ort": runs[0]["ort"]["version"], "models": {}, "ab": []}
ok = True
for m0 in runs[0]["models"]:
    name = m0["model"]
    lo, hi = m0["run_ms"]["median_ci95_lo"], m0["run_ms"]["median_ci95_hi"]
    ci = m0.get("median_ci") or {}
    rlo, rhi = ci.get("rerun95_lo", lo), ci.get("rerun95_hi", hi)
    medians = [next(m["run_ms"]["median"] for m in r["models"] if m["model"] == name) for r in runs]
    widths = [next((m.get("median_ci") or {}).get("half_width_pct") for m in r["models"] if m["model"] == name) for r in runs]
    inside = sum(lo <= x <= hi for x in medians)
    summary["models"][name] = {
        "first_median": m0["run_ms"]["median"], "first_ci95": [lo, hi], "first_rerun95": [rlo, rhi],
        "medians": medians, "ci_half_width_pct": widths, "inside_ci": inside,
        "inside_rerun": sum(rlo <= x <= rhi for x in medians), "pass": inside >= need,
        "load_1m_start": [r["load_average_start"][0] if r.get("load_average_start") else None for r in runs],
    }
    ok &= inside >= need
for p in sorted(glob.glob(os.path.join(out, "ab", "cpu", "*.json"))):
    r = json.load(open(p))
    for c in r.get("comparisons", []):
        ci = c.get("ci") or {}
        summary["ab"].append({"file": p, "planted": r["command_line"][r["command_line"].index("--test-ab") + 1],
                              "candidate": c["candidate"], "time_ratio": ci.get("time_ratio"),
                              "ci95": [ci.get("ci95_lo"), ci.get("ci95_hi")], "verdict": ci.get("verdict"),
                              "noise_threshold_pct": ci.get("noise_threshold_pct")})
summary["pass"] = ok
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
lines = [f"# Reproducibility of `faceperf bench`: {n} invocations", "",
         f"Job: `faceperf {' '.join(summary['job'])}`; build `{summary['build_commit']}`, {summary['cpu']}, "
         f"ONNX Runtime {summary['ort']}. Criterion: {summary['criterion']}.", "",
         "| model | first median [95% CI] (ms) | CI ± | medians of all invocations (ms) | inside CI | inside rerun interval | pass |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
for name, m in summary["models"].items():
    lines.append(f"| `{name}` | {m['first_median']:.3f} [{m['first_ci95'][0]:.3f}, {m['first_ci95'][1]:.3f}] | "
                 f"{m['ci_half_width_pct'][0]:.1f}% | {', '.join(f'{x:.3f}' for x in m['medians'])} | "
                 f"{m['inside_ci']}/{n} | {m['inside_rerun']}/{n} | {'yes' if m['pass'] else '**no**'} |")
if summary["ab"]:
    lines += ["", "| A/B run | candidate | time ratio [95% CI] | verdict (noise threshold) |", "| --- | --- | --- | --- |"]
    for a in summary["ab"]:
        lines.append(f"| planted {a['planted']}% | `{a['candidate']}` | {a['time_ratio']:.3f} "
                     f"[{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] | {a['verdict']} (±{a['noise_threshold_pct']}%) |")
lines += ["", "Load before and after each invocation: `uptime.log`; every invocation's results and provenance: `cpu/`."]
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if ok else 1)
EOF
