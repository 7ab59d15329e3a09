#!/usr/bin/env bash
# Measures the NVIDIA path on a CUDA machine (used for bench-results/h100): full replicas, fp16
# variants (proven equivalent on ORT CPU first), the model benchmark fp32 vs fp16 with and without
# CUDA graphs, and the live pipeline on a synthetic 1920x1080 source (swap-only and swap+enhance,
# 1 and 4 faces). Everything lands in $OUT.
#
#   FACEPERF=./target/release/faceperf OUT=/tmp/h100 bash ci/gpu-measure.sh
#   PROFILE=cpu SCALE=tiny FRAMES=30 ...   (a quick dry run of the same steps on a CPU machine)
set -euo pipefail
fp=${FACEPERF:-faceperf}
out=${OUT:-gpu-measure}
profile=${PROFILE:-h100}
scale=${SCALE:-full}
frames=${FRAMES:-600}
budget=${BUDGET_S:-4}
mkdir -p "$out"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" >&2; }

stamp "doctor"
"$fp" doctor | tee "$out/doctor.txt"
(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true) > "$out/nvidia-smi.csv" 2>&1

stamp "replicas ($scale)"
"$fp" models synth --scale "$scale" >&2

stamp "fp16 and cuda (fused u8 I/O) variants (equivalence on ORT CPU)"
"$fp" --json optimize --target fp16,cuda --scale "$scale" --inputs 8 --threads 0 > "$out/optimize.json"

stamp "model benchmark ($profile): original vs fp16, CUDA graphs on/off"
"$fp" --json bench --profile "$profile" --scale "$scale" --variants original,fp16,cuda --cuda-graph-ab \
  --warmup 1s --time "$budget" --out "$out/bench-results" > "$out/bench.json"

for faces in 1 4; do
  for mode in swap enhance; do
    extra=()
    [ "$mode" = enhance ] && extra=(--enhance)
    stamp "live: synthetic 1920x1080, $faces face(s), $mode"
    "$fp" --json live --profile "$profile" --scale "$scale" --source synthetic --size 1920x1080 \
      --faces "$faces" --many-faces "${extra[@]}" --measure --frames "$frames" \
      --csv "$out/live-${mode}-${faces}f.csv" > "$out/live-${mode}-${faces}f.json"
  done
done
stamp "done"
