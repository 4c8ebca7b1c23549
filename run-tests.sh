#!/usr/bin/env bash
# Builds everything and runs the whole test suite: unit tests, integration tests against the
# real server (plain and TLS), end-to-end tests of the binary, ACME against a real test CA
# (pebble), the demo page in a real browser (Chromium), fuzz-corpus replay. Then the same
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer (skip with --no-asan).
set -euo pipefail
cd "$(dirname "$0")"
asan=1
for arg in "$@"; do
  case "$arg" in
    --no-asan) asan=0 ;;
    *) echo "usage: $0 [--no-asan]" >&2; exit 2 ;;
  esac
done
scripts/install-deps.sh
scripts/install-browser.sh   # Chromium + playwright-core for the browser test
jobs=$(nproc)

run_suite() { # preset
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "$jobs"
  ctest --preset "$1" -j "$jobs"
}

run_suite release
if [ "$asan" = 1 ]; then
  run_suite asan
fi
