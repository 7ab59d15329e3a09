#!/usr/bin/env bash
# Measures the NVIDIA path on a CUDA machine (used for bench-results/h100): full replicas, fp16 and
# cuda variants (proven equivalent on ORT CPU first), the model benchmark fp32 vs fp16 vs cuda with and
# without CUDA graphs, A/B runs of the CUDA EP options that change the fp16 ratio (TF32, NHWC), and
# the live pipeline on a synthetic 1920x1080 source (swap-only and swap+enhance, 1 and 4 faces) with
# the profile as it is (`_cuda` variants: 8-bit I/O fused into the models; CUDA graphs), the same
# without CUDA graphs, and with the `_fp16` variants (pre/post-processing on the CPU). Everything
# lands in $OUT.
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
steps=${STEPS:-prep,bench,ab,live}   # split across calls on a lent machine (each call has a time limit)
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
if [[ $steps == *bench* ]]; then
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

fi

if [[ $steps == *ab* ]]; then
# The CUDA EP options that move the fp16/fp32 ratio, one change at a time against the profile.
sed -e 's/tf32 = true/tf32 = false/' "profiles/$profile.toml" > "$out/$profile-notf32.toml"
sed -e 's/prefer_nhwc = true/prefer_nhwc = false/' "profiles/$profile.toml" > "$out/$profile-nchw.toml"
for p in notf32 nchw; do
  for role in swapper enhancer; do
    stamp "A/B ($p, $role): original vs fp16 vs cuda"
    "$fp" --json bench --profile "$out/$profile-$p.toml" --scale "$scale" --role "$role" --variants original,fp16,cuda \
      --warmup 1s --time "$budget" --out "$out/bench-results-$p" \
      > "$out/ab-$p-$role.json" 2> "$out/ab-$p-$role.err" || stamp "FAILED: A/B $p $role"
  done
done
fi

[[ $steps == *live* ]] || { stamp "done"; exit 0; }
# The live pipeline with the profile as it is (its variants, CUDA graphs where it asks for them),
# the same without CUDA graphs, and with the `_fp16` swapper/enhancer and original detector/landmarks
# (pre/post-processing on the CPU) for comparison. A graph whose replay disagrees with a plain run
# falls back at load; the run's notes say so.
sed -e 's/cuda_graph = true/cuda_graph = false/' "profiles/$profile.toml" > "$out/$profile-nographs.toml"
sed -e '/^\[roles.swapper\]/,/^\[/ s/variant = "cuda"/variant = "fp16"/' \
    -e '/^\[roles.enhancer\]/,/^\[/ s/variant = "cuda"/variant = "fp16"/' \
    -e 's/variant = "cuda"/variant = "original"/' "profiles/$profile.toml" > "$out/$profile-fp16io.toml"
for faces in 1 4; do
  for mode in swap enhance; do
    extra=()
    [ "$mode" = enhance ] && extra=(--enhance)
    for variant in "$profile" nographs fp16io; do
      tag="live-${mode}-${faces}f"
      pfile="profiles/$profile.toml"
      if [ "$variant" != "$profile" ]; then tag="$tag-$variant"; pfile="$out/$profile-$variant.toml"; fi
      stamp "live: synthetic 1920x1080, $faces face(s), $mode, $variant"
      "$fp" --json live --profile "$pfile" --scale "$scale" --source synthetic --size 1920x1080 \
          --faces "$faces" --many-faces "${extra[@]}" --measure --frames "$frames" \
          --csv "$out/$tag.csv" > "$out/$tag.json" 2> "$out/$tag.err" || stamp "FAILED: $tag"
    done
  done
done
stamp "done"
