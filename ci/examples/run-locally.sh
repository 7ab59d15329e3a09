#!/usr/bin/env bash
# Runs every step of ci/examples/models.yml here, as a face-swap project's CI would, against a
# project folder with tiny replica models: everything but the hosted runner itself.
#
#   ci/examples/run-locally.sh [--project DIR] [--cache-store DIR] [--log FILE] [--set NAME=VALUE]...
#                              [--online] [--prebuilt BIN]
#
# - The project folder (default: a new temporary one) stands for the checkout; when it has no
#   models/, `faceperf models synth --scale tiny --roles $ROLES` fills it (default roles:
#   recognizer,swapper).
# - A fresh Python venv (system site-packages, no onnxruntime) stands for actions/setup-python.
#   The workflow's `pip install onnxruntime` step runs in it for real: from PyPI with --online,
#   otherwise offline from a wheel repacked from an installed one (beside ORT_DYLIB_PATH, in
#   .ort/site from ci/setup-ort.sh, or the system Python's), whose version then replaces ORT_VERSION.
# - `cargo install` builds this checkout (FACEPERF_PATH) into a folder of its own, reusing this
#   checkout's target/ (debug profile), and only that binary is on PATH. With --prebuilt BIN (the
#   quick test, tests/ci_example.rs) a `cargo` stand-in on PATH answers exactly the step's
#   `cargo install --locked --path <this checkout> ...` by copying BIN there instead of compiling
#   (minutes on a loaded 2-core machine); the rest of the step runs as written.
# - ORT_DYLIB_PATH, FACEPERF_ORT_DIR, FACEPERF_MODELS and FACEPERF_PYTHON are unset, so faceperf
#   must find ONNX Runtime the way a user's CI does: in the venv's onnxruntime package.
# - The cache store (default: inside the work folder) stands for the Actions cache; pass the same
#   --cache-store to a second run to see it restore and reuse the variants.
# Needs bash, python3 with PyYAML, cargo. FACEPERF (default: `cargo run --quiet --`) makes the
# replicas before faceperf is installed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/faceperf-ci-XXXXXX")
trap 'rm -rf "$work"' EXIT

project="" store="$work/cache-store" log="" online=0 prebuilt="" sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$2; shift 2 ;;
    --cache-store) store=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --online) online=1; shift ;;
    --prebuilt) prebuilt=$2; shift 2 ;;
    *) echo "error: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ -z "$project" ]; then
  project="$work/project"
fi
mkdir -p "$project" "$store"

if [ -n "${FACEPERF:-}" ]; then
  read -r -a fp <<<"$FACEPERF"
else
  fp=(cargo run --quiet --manifest-path "$repo/Cargo.toml" --)
fi
if ! ls "$project"/models/*.onnx >/dev/null 2>&1; then
  "${fp[@]}" models synth --scale tiny --dir "$project/models" --roles "${ROLES:-recognizer,swapper}" >/dev/null
fi

# actions/setup-python: a venv without onnxruntime (borrowing the system's pip when that is
# possible, else with its own pip when the system Python has onnxruntime itself).
python3 -m venv --without-pip --system-site-packages "$work/venv"
if "$work/venv/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  rm -rf "$work/venv"
  python3 -m venv "$work/venv"
fi

if [ "$online" = 0 ]; then
  site=""
  if [ -n "${ORT_DYLIB_PATH:-}" ]; then
    site=$(dirname "$(dirname "$(dirname "$ORT_DYLIB_PATH")")")
  fi
  if [ -z "$site" ] || ! ls "$site"/onnxruntime-*.dist-info >/dev/null 2>&1; then
    site="$repo/.ort/site"
  fi
  if ! ls "$site"/onnxruntime-*.dist-info >/dev/null 2>&1; then
    site=$(python3 -c 'import importlib.util, os; s = importlib.util.find_spec("onnxruntime"); print(os.path.dirname(os.path.dirname(s.origin)) if s and s.origin else "")' 2>/dev/null || true)
  fi
  if ! ls "$site"/onnxruntime-*.dist-info >/dev/null 2>&1; then
    echo "error: no installed onnxruntime wheel to install offline (looked beside ORT_DYLIB_PATH, in $repo/.ort/site and in python3's packages); run bash ci/setup-ort.sh, or pass --online" >&2
    exit 1
  fi
  mkdir -p "$work/wheelhouse"
  version=$(python3 - "$site" "$work/wheelhouse" <<'EOF'
import glob, os, sys, zipfile
site, out = sys.argv[1], sys.argv[2]
info = glob.glob(os.path.join(site, "onnxruntime-*.dist-info"))[0]
version = os.path.basename(info)[len("onnxruntime-"):-len(".dist-info")]
tag = [l.split(":", 1)[1].strip() for l in open(os.path.join(info, "WHEEL")) if l.startswith("Tag:")][0]
with zipfile.ZipFile(os.path.join(out, f"onnxruntime-{version}-{tag}.whl"), "w", zipfile.ZIP_STORED) as z:
    for top in ("onnxruntime", os.path.basename(info)):
        for root, dirs, files in os.walk(os.path.join(site, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                p = os.path.join(root, f)
                z.write(p, os.path.relpath(p, site))
print(version)
EOF
)
  export PIP_NO_INDEX=1 PIP_FIND_LINKS="$work/wheelhouse"
  sets=(--set "ORT_VERSION=$version" "${sets[@]}")
fi

if [ -n "$prebuilt" ]; then
  # A stand-in for the step's `cargo install --locked --path <this checkout> ...`; any other cargo
  # command goes to the real cargo.
  mkdir -p "$work/shim"
  printf '%s\n' '#!/usr/bin/env bash' \
    "if [ \"\$1 \$2 \$3 \$4\" = \"install --locked --path $repo\" ]; then" \
    "  mkdir -p \"\$CARGO_INSTALL_ROOT/bin\" && cp \"$prebuilt\" \"\$CARGO_INSTALL_ROOT/bin/faceperf\"" \
    "  echo \"  Installed faceperf: $prebuilt copied to \$CARGO_INSTALL_ROOT/bin (stand-in for: cargo \$*)\"" \
    '  exit 0' 'fi' "exec \"$(command -v cargo)\" \"\$@\"" >"$work/shim/cargo"
  chmod +x "$work/shim/cargo"
  export PATH="$work/shim:$PATH"
fi

unset ORT_DYLIB_PATH FACEPERF_ORT_DIR FACEPERF_MODELS FACEPERF_PYTHON FACEPERF_MIRROR
export VIRTUAL_ENV="$work/venv" CARGO_INSTALL_ROOT="$work/cargo" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export PATH="$work/venv/bin:$work/cargo/bin:$PATH"
args=(--workflow "$repo/ci/examples/models.yml" --project "$project" --cache-store "$store"
      --set "FACEPERF_PATH=$repo" --set "FACEPERF_CARGO_FLAGS=--debug --offline")
if [ -n "$log" ]; then
  args+=(--log "$log")
fi
python3 "$repo/ci/examples/run_workflow.py" "${args[@]}" "${sets[@]}"
