"""Combines the per-role bench runs of one ci/gpu-measure.sh session (one process per role, so a
crash in one configuration cannot take the others with it) and its live-pipeline runs into one run
that `faceperf report` reads as the h100 profile. Provenance of each part stays in its own files."""
import csv, glob, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
parts = sorted(p for p in glob.glob(os.path.join(here, "2026*_vm.json")) if "combined" not in p)
runs = [json.load(open(p)) for p in parts]
out = dict(runs[0])
out["models"] = [m for r in runs for m in r["models"]]
out["missing"] = [m for r in runs for m in r.get("missing", [])]
out["comparisons"] = [c for r in runs for c in r.get("comparisons", [])]
out["started_utc"] = runs[0]["started_utc"]
out["finished_utc"] = runs[-1]["finished_utc"]
out["command_line"] = ["ci/gpu-measure.sh (one `faceperf bench --role R` per role)"]
# The per-role JSONs record `git_commit` from the lent machine's copy of the checkout, whose git
# metadata was stale (3dc4a04+dirty); the binary was built here from 65d3f7b (README.md). Results
# written since record the binary's own build commit (`tool.build_commit`).
out["tool"] = dict(out["tool"], build_commit="65d3f7b855a745f87bbb8ad176b1067de6236c14")
notes = out.get("notes", [])
out["notes"] = notes + ["tool.build_commit set by combine.py: the binary was built from 65d3f7b; git_commit is the lent machine's stale checkout metadata",
                        "combined by bench-results/h100/combine.py from " + ", ".join(os.path.basename(p) for p in parts)]
rows = []
for p in parts:
    with open(p[:-5] + ".csv") as f:
        rows += list(csv.DictReader(f))
live = os.path.join(here, "run-20261125c")
for tag, stage in (("swap", "pipeline:swap"), ("enhance", "pipeline:swap_enhance")):
  for faces in (1, 4):
    # The h100 profile (`_cuda` variants, CUDA graphs on) and the same profile with graphs off.
    for graphs in ("", "-nographs"):
        d = json.load(open(os.path.join(live, f"live-{tag}-{faces}f-h100{graphs}.json")))
        variant = f"live-1080p-{faces}face" + ("s" if faces > 1 else "") + ("-nographs" if graphs else "-graphs")
        base = dict(profile="h100", model="pipeline", role="pipeline", variant=variant, stage=stage)
        rows.append(dict(base, statistic="fps", value=d["fps"], unit="1/s"))
        rows.append(dict(base, statistic="frames", value=d["frames"], unit="count"))
        rows.append(dict(base, statistic="dropped", value=d["dropped"], unit="count"))
        rows.append(dict(base, statistic="non_inference_share", value=100 * d["non_inference_share"], unit="percent"))
# After every part (UTC stamps sort in time order; the live runs ended 13:07:33).
stamp = "20261125T130800Z_vm-combined"
json.dump(out, open(os.path.join(here, stamp + ".json"), "w"), indent=1)
with open(os.path.join(here, stamp + ".csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["profile", "model", "role", "variant", "stage", "statistic", "value", "unit"])
    w.writeheader()
    w.writerows(rows)
print(f"{len(out['models'])} model results, {len(rows)} rows -> {stamp}.csv/.json")
