#!/usr/bin/env bash
# The installed-binary check (issue 15): `cargo install --path .` into a scratch root, then from an
# empty folder with no checkout around it: doctor, bench --profile cpu, live --measure, report.
# Nothing may be read from or written into the checkout; models go to a scratch user cache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup-ort.sh >/dev/null
if [ -z "${ORT_DYLIB_PATH:-}" ] && ls .ort/site/onnxruntime/capi/libonnxruntime.so.* >/dev/null 2>&1; then
  # The project-local copy is found from a checkout; an installed binary run elsewhere is told.
  ORT_DYLIB_PATH="$(ls "$PWD"/.ort/site/onnxruntime/capi/libonnxruntime.so.* | head -1)"
  export ORT_DYLIB_PATH
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo install --quiet --locked --path . --root "$scratch/root" --target-dir "${CARGO_TARGET_DIR:-target}"
bin="$scratch/root/bin/faceperf"
mkdir -p "$scratch/empty" "$scratch/cache"
cd "$scratch/empty"
export XDG_CACHE_HOME="$scratch/cache"
unset FACEPERF_MODELS FACEPERF_SHARED
"$bin" doctor >/dev/null
"$bin" bench --profile cpu
"$bin" live --source synthetic --measure --frames 60
"$bin" report
test -f reports/performance.md
ls bench-results/cpu/*.json >/dev/null
ls "$XDG_CACHE_HOME"/faceperf/models/replica-tiny/replicas.json >/dev/null
echo "installed-binary: doctor, bench, live and report ran from an empty folder"
