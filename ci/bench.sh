#!/usr/bin/env bash
# The README's main job: ONNX Runtime set-up, then the default benchmark on generated replicas.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup-ort.sh
cargo run --release --quiet -- bench --profile cpu "$@"
