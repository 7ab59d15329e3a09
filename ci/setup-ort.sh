#!/usr/bin/env bash
# Makes an ONNX Runtime library available to faceperf, idempotently.
# 1. If ORT_DYLIB_PATH is set, or the active Python already has an onnxruntime package
#    (onnxruntime, onnxruntime-gpu or onnxruntime-silicon), nothing is installed.
# 2. Otherwise the official CPU wheel is installed (no dependencies: only its shared library is used)
#    into the project-local folder .ort/site, where faceperf looks for it.
# Override the version with FACEPERF_ORT_VERSION (1.30 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
version="${FACEPERF_ORT_VERSION:-1.32.0}"
python="${FACEPERF_PYTHON:-python3}"

if [ -n "${ORT_DYLIB_PATH:-}" ] && [ -f "$ORT_DYLIB_PATH" ]; then
  echo "setup-ort: using ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
  exit 0
fi
pkg=$("$python" -c 'import importlib.util, os; s = importlib.util.find_spec("onnxruntime"); print(os.path.dirname(s.origin) if s and s.origin else "")' 2>/dev/null || true)
if [ -n "$pkg" ] && ls "$pkg"/capi/libonnxruntime* >/dev/null 2>&1; then
  echo "setup-ort: using the onnxruntime package of $python at $pkg"
  exit 0
fi
if ls .ort/site/onnxruntime/capi/libonnxruntime* >/dev/null 2>&1; then
  echo "setup-ort: project-local ONNX Runtime already in .ort/site"
  exit 0
fi
echo "setup-ort: installing onnxruntime==$version into .ort/site"
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --target .ort/site "onnxruntime==$version"
ls .ort/site/onnxruntime/capi/libonnxruntime* >/dev/null
echo "setup-ort: done"
