#!/usr/bin/env bash
# How a deployment's CI keeps its optimized model variants current with `faceperf optimize`.
#
#   ci/regenerate-models.sh [MODELS_DIR]     # default: the tiny replicas (generated if missing)
#
# 1. `faceperf optimize --check` exits non-zero naming every variant that is missing, stale (the
#    source model, the recipe or faceperf changed) or no longer equivalent.
# 2. With CHECK_ONLY=1 that fails the job (a pull request must ship current variants); otherwise
#    the variants are regenerated: rewritten, proven equivalent on ORT CPU, written atomically with
#    their JSON sidecars. A rewrite that fails its equivalence check is never written, and the job
#    fails naming the first diverging node.
# 3. The JSON report is kept as a build artifact; a final --check proves the result.
#
# Environment: FACEPERF (the binary, default: `cargo run --release --`), TARGETS (default: all),
# CHECK_ONLY=1, REPORT (default: optimize-report.json). Concurrent jobs on one models folder are
# safe: each variant has a lock, a second writer waits and then reuses the first one's variant.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${FACEPERF:-}" ]; then
  read -r -a fp <<<"$FACEPERF"
else
  fp=(cargo run --quiet --release --)
fi
targets=${TARGETS:-all}
report=${REPORT:-optimize-report.json}

models=${1:-}
if [ -z "$models" ]; then
  "${fp[@]}" models synth --scale tiny >/dev/null
  models=models/replica-tiny
fi

if "${fp[@]}" optimize --check --target "$targets" "$models"; then
  echo "regenerate-models: every variant in $models is current"
  exit 0
fi
if [ "${CHECK_ONLY:-0}" = 1 ]; then
  echo "regenerate-models: variants are missing or stale; run ci/regenerate-models.sh $models and commit them" >&2
  exit 1
fi

echo "regenerate-models: regenerating"
status=0
"${fp[@]}" --json optimize --target "$targets" "$models" >"$report" || status=$?
echo "regenerate-models: report in $report"
if [ "$status" != 0 ]; then
  echo "regenerate-models: some variants were refused (see the first diverging node above and in $report)" >&2
  exit "$status"
fi
"${fp[@]}" optimize --check --quick --target "$targets" "$models"
