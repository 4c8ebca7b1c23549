#!/usr/bin/env bash
# run-local.sh: the user's arguments override the script's defaults (no duplicate flag reaches
# mles), and the resulting command line starts the real binary.
# Usage: run_local_args_test.sh <mles binary>   (exit 0 = all passed)
set -euo pipefail

MLES="$(readlink -f "$1")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mles-run-local.XXXXXX")"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

argv_of() { MLES_RUN_LOCAL_DRY_RUN=1 "$ROOT/run-local.sh" "$@"; }
count() { # flag, argv text: how many times the flag appears as an argument
  grep -c -x -- "$1" <<<"$2" || true
}

# Defaults alone.
out="$(argv_of)"
[[ "$(count --port "$out")" == 1 ]] || fail "defaults: one --port expected: $out"
grep -qx 8443 <<<"$out" || fail "defaults: port 8443 expected: $out"
grep -qx -- --self-signed <<<"$out" || fail "defaults: --self-signed expected"

# The user's port replaces the default, in every spelling.
for spelling in "--port 9443" "--port=9443" "-p 9443" "-p9443"; do
  # shellcheck disable=SC2086
  out="$(argv_of $spelling)"
  grep -qx 8443 <<<"$out" && fail "$spelling: default 8443 kept: $out"
  [[ "$(count --port "$out")" -le 1 ]] || fail "$spelling: --port twice: $out"
done

# Other defaults: domains, wwwroot, log level; TLS flags replace --self-signed.
out="$(argv_of --domains example.test --wwwroot /srv/www --log-level=debug)"
grep -qx localhost <<<"$out" && fail "--domains: default kept: $out"
grep -qx www <<<"$out" && fail "--wwwroot: default kept: $out"
grep -qx info <<<"$out" && fail "--log-level: default kept: $out"
for tls in --no-tls "--tls-cert c.pem --tls-key k.pem" --self-signed; do
  # shellcheck disable=SC2086
  out="$(argv_of $tls)"
  [[ "$(count --self-signed "$out")" -le 1 ]] || fail "$tls: --self-signed twice: $out"
  if [[ "$tls" != --self-signed ]]; then
    grep -qx -- --self-signed <<<"$out" && fail "$tls: --self-signed kept (conflicts): $out"
  fi
done
# Arguments the script has no default for pass through untouched.
out="$(argv_of --threads 2)"
grep -qx -- --threads <<<"$out" || fail "--threads not passed: $out"

# The command line the script builds is accepted by the real binary: it starts and listens.
mapfile -t argv < <(argv_of --port 0 --bind 127.0.0.1 --threads 1 --log-level warn)
[[ "${argv[0]}" == build/mles ]] || fail "argv[0]: ${argv[0]}"
(cd "$ROOT" && exec "$MLES" "${argv[@]:1}") 2>"$WORK/mles.log" &
PID=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$WORK/mles.log" && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/mles.log" >&2; fail "mles exited"; }
  sleep 0.1
done
grep -q "listening on 127.0.0.1:" "$WORK/mles.log" || { cat "$WORK/mles.log" >&2; fail "mles did not listen in 60 s"; }
echo "ok: run-local.sh arguments override its defaults"
