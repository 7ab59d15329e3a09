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
steps=${STEPS:-prep,measure}   # prep: replicas + variants; measure: bench + live (split across calls on a lent machine)
mkdir -p "$out"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" >&2; }

stamp "doctor"
"$fp" doctor | tee "$out/doctor.txt"
(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true) > "$out/nvidia-smi.csv" 2>&1

if [[ $steps == *prep* ]]; then
stamp "replicas ($scale)"
"$fp" models synth --scale "$scale" >&2

stamp "fp16 and cuda (fused u8 I/O) variants (equivalence on ORT CPU)"
"$fp" --json optimize --target fp16,cuda --scale "$scale" --inputs 8 --threads 0 > "$out/optimize.json"

fi
[[ $steps == *measure* ]] || { stamp "done (prep only)"; exit 0; }

# One process per role (and per variant when a role fails), so a crash in one configuration
# cannot take the others with it; stderr of each is kept.
for role in detector landmarks recognizer swapper enhancer; do
  stamp "model benchmark ($profile, $role): original vs fp16 vs cuda, CUDA graphs on/off"
  if ! "$fp" --json bench --profile "$profile" --scale "$scale" --role "$role" --variants original,fp16,cuda \
      --cuda-graph-ab --warmup 1s --time "$budget" --out "$out/bench-results" \
      > "$out/bench-$role.json" 2> "$out/bench-$role.err"; then
    stamp "FAILED: $role (see bench-$role.err); per variant:"
    for v in original fp16 cuda; do
      "$fp" --json bench --profile "$profile" --scale "$scale" --role "$role" --variants "$v" \
        --cuda-graph-ab --warmup 1s --time "$budget" --out "$out/bench-results" \
        > "$out/bench-$role-$v.json" 2> "$out/bench-$role-$v.err" || stamp "FAILED: $role $v"
    done
  fi
done

# The live pipeline; if the profile's settings crash, again without CUDA graphs on the detector
# (the real SCRFD-500M has symbolic dims, so ORT leaves its shape nodes on the CPU).
sed -e '/^\[roles.detector\]/,/^\[/ s/cuda_graph = true/cuda_graph = false/' "profiles/$profile.toml" > "$out/$profile-nodetgraph.toml" 2>/dev/null || true
for faces in 1 4; do
  for mode in swap enhance; do
    extra=()
    [ "$mode" = enhance ] && extra=(--enhance)
    tag="live-${mode}-${faces}f"
    stamp "live: synthetic 1920x1080, $faces face(s), $mode"
    for p in "$profile" "$out/$profile-nodetgraph.toml"; do
      if "$fp" --json live --profile "$p" --scale "$scale" --source synthetic --size 1920x1080 \
          --faces "$faces" --many-faces "${extra[@]}" --measure --frames "$frames" \
          --csv "$out/$tag.csv" > "$out/$tag.json" 2> "$out/$tag.err"; then
        break
      fi
      stamp "FAILED: $tag with profile $p"
    done
  done
done
stamp "done"
