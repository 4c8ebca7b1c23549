#!/usr/bin/env bash
# Installs what the browser test (tests/browser/) needs: Debian's chromium (only when
# /usr/bin/chromium is missing) and the pinned npm packages of tests/browser (npm ci, only when
# node_modules is missing or older than package-lock.json). Idempotent and quiet; any failure
# ends the script with a message and a non-zero status.
# Note: `npx playwright install` does not work here; the test uses /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "install-browser: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/chromium ]; then
  echo "install-browser: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -o DPkg::Lock::Timeout=300 -q -y --no-install-recommends)
  if ! as_root "${apt[@]}" install chromium >/dev/null 2>&1; then
    as_root apt-get -o DPkg::Lock::Timeout=300 -q update >/dev/null \
      || fail "apt-get update failed"
    as_root "${apt[@]}" install chromium >/dev/null || fail "apt-get install chromium failed"
  fi
  [ -x /usr/bin/chromium ] || fail "/usr/bin/chromium missing after install"
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-browser: installing nodejs and npm" >&2
  as_root apt-get -o DPkg::Lock::Timeout=300 -q -y --no-install-recommends install nodejs npm >/dev/null \
    || fail "apt-get install nodejs npm failed"
fi

dir=tests/browser
stamp="$dir/node_modules/.package-lock.json"   # written by npm ci
if [ ! -d "$dir/node_modules/playwright-core" ] || [ ! -f "$stamp" ] \
   || [ "$dir/package-lock.json" -nt "$stamp" ]; then
  echo "install-browser: npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm ci failed in $dir"
fi
[ -f "$dir/node_modules/playwright-core/package.json" ] || fail "playwright-core missing after npm ci"
