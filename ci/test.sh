#!/usr/bin/env bash
# The project's test command (README): makes ONNX Runtime available, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup-ort.sh
cargo test --all-targets "$@"
