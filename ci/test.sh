#!/usr/bin/env bash
# The project's test command (README): makes ONNX Runtime available, then runs every test.
# Tests that need the project's own test assets (`shared/` beside the checkout: the real SCRFD
# weights, which may not be redistributed) are named `needs_shared_*` and #[ignore]d: here they run
# when the assets are found and are otherwise listed by name as skipped. FACEPERF_REQUIRE_SHARED=1
# (set by .ci/run) makes missing assets an error, so CI always runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup-ort.sh
marker=models/real/scrfd_500m_bnkps.onnx
shared=""
for d in "${FACEPERF_SHARED:-}" shared ../shared; do
  if [ -n "$d" ] && [ -f "$d/$marker" ]; then shared=$d; break; fi
done
if [ -z "$shared" ] && [ "${FACEPERF_REQUIRE_SHARED:-0}" = 1 ]; then
  echo "ci/test.sh: FACEPERF_REQUIRE_SHARED=1 but the test assets ($marker) are not in \$FACEPERF_SHARED, ./shared or ../shared" >&2
  exit 1
fi
cargo test --all-targets "$@"
if [ -n "$shared" ]; then
  echo "ci/test.sh: test assets found in $shared: running the needs_shared_* tests"
  FACEPERF_SHARED="$(cd "$shared" && pwd)" cargo test --all-targets "$@" -- --ignored needs_shared_
else
  echo "ci/test.sh: SKIPPED (no test assets: shared/$marker not found beside the checkout); these tests did not run:"
  cargo test --all-targets "$@" -- --list --ignored 2>/dev/null | grep -o '[A-Za-z0-9_:]*needs_shared_[A-Za-z0-9_]*' | sed 's/^/  skipped: /'
fi
