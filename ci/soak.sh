#!/usr/bin/env bash
# Soak test (not a timed test): 10,000 frames of the synthetic source through `faceperf live` with
# the tiny replicas, paced like a camera (--realtime, so a pipeline that falls behind drops frames),
# while this script samples the process's resident memory (VmRSS from /proc/<pid>/status) every
# second. Writes bench-results/soak/<stamp>.json: RSS after warm-up and at the end, its slope, every
# sample, and dropped frames per 1000-frame window.
#
#   bash ci/soak.sh                 # 10,000 frames at 320x240
#   FRAMES=2000 SIZE=640x360 bash ci/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FRAMES=${FRAMES:-10000}
SIZE=${SIZE:-320x240}
WARMUP_FRAMES=${WARMUP_FRAMES:-1000}

cargo build --release --quiet
bin=target/release/faceperf
stamp=$(date -u +%Y%m%dT%H%M%SZ)
outdir=bench-results/soak
mkdir -p "$outdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Replicas are generated before the clock starts.
"$bin" models synth --scale tiny >/dev/null

read -r load_start _ < /proc/loadavg
cmd=("$bin" --json live --source synthetic --size "$SIZE" --frames "$FRAMES" --realtime --csv "$work/frames.csv")
t0=$(date +%s.%N)
"${cmd[@]}" >"$work/summary.json" 2>"$work/stderr" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    read -r load _ </proc/loadavg
    [ -n "$rss" ] && echo "$(date +%s.%N) $rss $load" >>"$work/rss.txt"
    sleep 1
done
status=0
wait "$pid" || status=$?
t1=$(date +%s.%N)
read -r load_end _ < /proc/loadavg
if [ "$status" -ne 0 ]; then
    cat "$work/stderr" >&2
    exit "$status"
fi

python3 - "$work" "$outdir/$stamp.json" "$t0" "$t1" "$load_start" "$load_end" "$WARMUP_FRAMES" "${cmd[*]}" <<'EOF'
import csv, json, os, platform, sys

work, out, t0, t1, load_start, load_end, warmup_frames, command = sys.argv[1:]
t0, t1, warmup_frames = float(t0), float(t1), int(warmup_frames)
summary = json.load(open(os.path.join(work, "summary.json")))
rows = list(csv.DictReader(open(os.path.join(work, "frames.csv"))))
lines = [l.split() for l in open(os.path.join(work, "rss.txt"))]
samples = [(float(t) - t0, int(k)) for t, k, _ in lines]
loads = [(float(t) - t0, float(l)) for t, _, l in lines]

# Frame times are µs since the pipeline's clock started (after model loading); place them on the
# process clock by aligning the last frame with the end of the process (writing the CSV is quick).
done_s = [float(r["done_us"]) / 1e6 for r in rows]
offset = (t1 - t0) - done_s[-1]
warm_end = offset + done_s[min(warmup_frames, len(rows)) - 1]
after = [s for s in samples if s[0] >= warm_end]

# The measurement keeps one record per frame for the CSV (by design): size_of::<FrameRecord>()
# bytes each on 64-bit targets. RSS minus that is the pipeline's own footprint.
RECORD_BYTES = 424
def frames_done(t):
    return sum(1 for d in done_s if offset + d <= t)
own = [(t, k - frames_done(t) * RECORD_BYTES / 1024) for t, k in after]

def slope(points):  # least squares, KiB per minute
    n = len(points)
    if n < 2:
        return None
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    return None if var == 0 else 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / var

# Per window of 1000 measured frames: dropped frames (the gaps in the source's frame numbers), the
# median processing time of a frame (every stage but waiting for capture) and the machine's 1-minute
# load average meanwhile: drops that follow the load come from other processes, drops that follow
# the work time from the pipeline.
busy_cols = [c for c in rows[0] if c.endswith("_busy_us") and not c.startswith("capture_wait")]
def work_ms(r):
    return sum(float(r[c]) for c in busy_cols if r[c]) / 1000
windows = []
for start in range(0, len(rows), 1000):
    w = rows[start:start + 1000]
    first, last = int(w[0]["source_index"]), int(w[-1]["source_index"])
    t_a, t_b = offset + float(w[0]["captured_us"]) / 1e6, offset + float(w[-1]["done_us"]) / 1e6
    load = [l for t, l in loads if t_a <= t <= t_b]
    works = sorted(work_ms(r) for r in w)
    windows.append({
        "frames": f"{start}..{start + len(w) - 1}",
        "dropped": (last - first + 1) - len(w),
        "median_work_ms": round(works[len(works) // 2], 2),
        "load_average_1min": round(sum(load) / len(load), 2) if load else None,
    })

result = {
    "what": "faceperf live soak: synthetic source, tiny replicas, real SCRFD-500M detector, --realtime pacing",
    "stamp": os.path.basename(out)[:-5],
    "host": platform.node(),
    "command": command,
    "frames": summary["frames"],
    "wall_s": summary["wall_s"],
    "fps": summary["fps"],
    "dropped_total": summary["dropped"],
    "frames_without_face": summary.get("frames_without_face"),
    "rejected_outputs": summary.get("rejected_outputs"),
    "load_average_1min": {"start": float(load_start), "end": float(load_end)},
    "rss_kib": {
        "warmup": f"the first {warmup_frames} frames (and model loading) are warm-up",
        "after_warmup": after[0][1] if after else None,
        "last": samples[-1][1],
        "growth_after_warmup": (samples[-1][1] - after[0][1]) if after else None,
        "min_after_warmup": min(k for _, k in after) if after else None,
        "max_after_warmup": max(k for _, k in after) if after else None,
        "peak": max(k for _, k in samples),
        "slope_after_warmup_kib_per_min": slope(after),
        "samples": len(samples),
    },
    "rss_minus_frame_records_kib": {
        "why": f"the per-frame measurement records ({RECORD_BYTES} B each, kept for the CSV) grow by design",
        "after_warmup": round(own[0][1]) if own else None,
        "last": round(own[-1][1]) if own else None,
        "growth_after_warmup": round(own[-1][1] - own[0][1]) if own else None,
        "slope_after_warmup_kib_per_min": slope(own),
    },
    "dropped_per_1000_frames": windows,
    "rss_samples_s_kib": [[round(t, 2), k] for t, k in samples],
    "summary": summary,
}
with open(out, "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
r = result["rss_kib"]
print(f"{result['frames']} frames in {result['wall_s']:.0f} s ({result['fps']:.1f} FPS), {result['dropped_total']} dropped")
print(f"RSS after warm-up {r['after_warmup']} KiB, last {r['last']} KiB (growth {r['growth_after_warmup']} KiB, "
      f"slope {r['slope_after_warmup_kib_per_min']:.1f} KiB/min), peak {r['peak']} KiB")
o = result["rss_minus_frame_records_kib"]
print(f"RSS minus the frame records: after warm-up {o['after_warmup']} KiB, last {o['last']} KiB "
      f"(growth {o['growth_after_warmup']} KiB, slope {o['slope_after_warmup_kib_per_min']:.1f} KiB/min)")
print("per 1000 frames (dropped, median work ms, load):",
      [(w["dropped"], w["median_work_ms"], w["load_average_1min"]) for w in windows])
print("wrote", out)
EOF
