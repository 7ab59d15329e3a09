#!/usr/bin/env bash
# The shipped `cuda` profile on the H100: model benchmark (original + fp16, graphs A/B) and live runs.
set -u
fp=/tmp/fp; out=/tmp/c5; rm -rf $out; mkdir -p "$out"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$out/stamps.txt" >&2; }
$fp --version > "$out/version.txt"
$fp doctor > "$out/doctor.txt" 2>&1
stamp prep; $fp models synth --scale full > /dev/null 2>&1
$fp --json optimize --target fp16,cuda --scale full > "$out/optimize.json" 2> "$out/optimize.err"
for role in detector landmarks recognizer swapper enhancer; do
  stamp "bench $role"
  $fp --json bench --profile cuda --scale full --role $role --variants original,fp16,cuda \
    --cuda-graph-ab --warmup 1s --time 2 --out "$out/bench-results" > "$out/bench-$role.json" 2> "$out/bench-$role.err" || stamp "FAILED $role"
  tar -C /tmp -czf $OUT/c5.tgz c5
done
for faces in 1 4; do for mode in enhance swap; do
  extra=(); [ "$mode" = enhance ] && extra=(--enhance)
  tag="live-cuda-$mode-${faces}f"; stamp "$tag"
  $fp --json live --profile cuda --scale full --source synthetic --size 1920x1080 \
    --faces $faces --many-faces "${extra[@]}" --measure --frames 600 --csv "$out/$tag.csv" > "$out/$tag.json" 2> "$out/$tag.err" || stamp "FAILED $tag"
  python3 -c "import json; d=json.load(open('$out/$tag.json')); print('$tag', 'fps %.1f' % d['fps'], 'rejected', d['rejected_outputs'], d['notes'])" | tee -a "$out/live-summary.txt"
  tar -C /tmp -czf $OUT/c5.tgz c5
done; done
stamp done
tar -C /tmp -czf $OUT/c5.tgz c5
