#!/usr/bin/env bash
# One lent-H100 call (issue 17's GPU check, issue 15's live provenance on a GPU): the CUDA build of ORT
# 1.31.1 from ../shared/ort-gpu (its 52 MB provider arrives in two parts: the device call carries at most
# 64 MiB with the checkout), the release binary built here, full replicas, then the live pipeline on a
# 1920x1080 synthetic source under the h100 profile with GPU sampling and the bottleneck verdict:
# swap + GFPGAN and swap only, one face, 600 frames, detection every frame. Everything lands in $OUT/h100.tgz.
set -u
o=/tmp/o; rm -rf $o; mkdir -p $o
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $o/stamps.txt >&2; }
save() { tar -C $o -czf "$OUT/h100.tgz" .; }
cat /tmp/cuda.part1 .device/b/cuda.part2 > .device/b/ort-gpu/libonnxruntime_providers_cuda.so.xz
eval "$(bash .device/b/ort-gpu/unpack.sh /tmp/ortgpu)"
xz -dc .device/b/faceperf.xz > /tmp/fp && chmod +x /tmp/fp
fp=/tmp/fp
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > $o/nvidia-smi.txt 2>&1
$fp --version > $o/version.txt 2>&1
$fp --json doctor > $o/doctor.json 2> $o/doctor.err
stamp "synth full"
$fp models synth --scale full > /dev/null 2> $o/synth.err
save
for mode in enhance swap; do
  extra=(); [ $mode = enhance ] && extra=(--enhance)
  stamp "live $mode 1 face"
  $fp --json live --profile h100 --scale full --source synthetic --size 1920x1080 "${extra[@]}" \
    --detect-every 1 --measure --frames 600 --csv $o/live-$mode-1f.csv > $o/live-$mode-1f.json 2> $o/live-$mode-1f.err \
    || stamp "FAILED live $mode"
  save
done
stamp done
save
