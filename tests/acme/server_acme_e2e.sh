#!/usr/bin/env bash
# End-to-end ACME test of the mles binary against a real CA (Debian's pebble) on 127.0.0.1:
# TLS-ALPN-01 issuance for two names verified with openssl against pebble's root; restart from
# --cache with no new order; HTTP-01 on the --redirect port; a badNonce storm; renewal of a
# short-lived certificate while a WebSocket session keeps exchanging messages; pebble down at
# start, then up: the certificate arrives after a retry.
# Usage: server_acme_e2e.sh <mles binary>   (exit 0 = all passed; 77 = pebble unavailable)
set -euo pipefail

MLES="$(readlink -f "$1")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEBBLE="$HERE/pebble/start-pebble.sh"
WWW="$(cd "$HERE/../.." && pwd)/www"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mles-acme-e2e.XXXXXX")"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "$WORK"/pebble-*; do [ -d "$d" ] && bash "$PEBBLE" stop "$d" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; for l in "$WORK"/*.log; do echo "--- $l" >&2; tail -n 15 "$l" >&2; done; exit 1; }
pass() { echo "ok: $*"; }

start_pebble() { # name [env assignments...]
  local dir="$WORK/pebble-$1"; shift
  mkdir -p "$dir"
  if ! env "$@" bash "$PEBBLE" start "$dir" >"$WORK/pebble-$(basename "$dir").start.log" 2>&1; then
    echo "pebble unavailable:" >&2; cat "$WORK/pebble-$(basename "$dir").start.log" >&2
    exit 77
  fi
  bash "$PEBBLE" env "$dir"
}

start_mles() { # log, then mles arguments
  local log="$1"; shift
  "$MLES" --bind 127.0.0.1 --wwwroot "$WWW" --log-level info --acme-directory "$PEBBLE_DIRECTORY_URL" \
    --acme-ca-cert "$PEBBLE_HTTPS_CA" "$@" 2>"$log" &
  PIDS+=($!)
  LAST_PID=$!
}

stop_mles() { kill -TERM "$1"; for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; fail "mles did not stop"; }

wait_for() { # file pattern count seconds
  local n=0
  for _ in $(seq 1 $(( $4 * 10 ))); do
    n=$(grep -c -- "$2" "$1" 2>/dev/null || true)
    [ "$n" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

verify() { # port name
  echo | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$2" -CAfile "$PEBBLE_ROOT_PEM" \
    -verify_return_error 2>&1 | grep -q "Verify return code: 0 (ok)"
}

orders() { grep -c "POST /order-plz" "$PEBBLE_RUN_DIR/pebble.log" || true; }

# 1. TLS-ALPN-01, two names, cache, restart without a new order.
eval "$(start_pebble alpn)"
start_mles "$WORK/alpn.log" --domains mles.test --domains www.mles.test --port "$PEBBLE_TLS_PORT" --cache "$WORK/cache-alpn"
wait_for "$WORK/alpn.log" "installed" 1 60 || fail "no certificate through tls-alpn-01"
verify "$PEBBLE_TLS_PORT" mles.test || fail "mles.test chain does not verify against pebble's root"
verify "$PEBBLE_TLS_PORT" www.mles.test || fail "www.mles.test chain does not verify"
[ "$(stat -c %a "$WORK/cache-alpn")" = 700 ] || fail "cache directory is not 0700"
for f in "$WORK"/cache-alpn/*; do [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not 0600"; done
pass "tls-alpn-01 issuance for two names, chain verified, cache 0700/0600"
stop_mles "$LAST_PID"
before=$(orders)
start_mles "$WORK/alpn-restart.log" --domains mles.test --domains www.mles.test --port "$PEBBLE_TLS_PORT" --cache "$WORK/cache-alpn"
wait_for "$WORK/alpn-restart.log" "from cache installed" 1 10 || fail "cached certificate not served at restart"
verify "$PEBBLE_TLS_PORT" mles.test || fail "cached chain does not verify"
[ "$(orders)" = "$before" ] || fail "a restart with --cache placed a new order"
pass "restart with --cache serves the cached certificate, no new order"
stop_mles "$LAST_PID"

# 2. HTTP-01 on the --redirect port.
start_mles "$WORK/http01.log" --domains mles.test --port 0 --redirect --http-port "$PEBBLE_HTTP_PORT" \
  --acme-challenge http-01 --cache "$WORK/cache-http01"
wait_for "$WORK/http01.log" "installed" 1 60 || fail "no certificate through http-01"
port=$(grep -o 'listening on [^ ]*:[0-9]*' "$WORK/http01.log" | grep -o '[0-9]*$')
verify "$port" mles.test || fail "http-01 chain does not verify"
pass "http-01 issuance on the redirect port"
stop_mles "$LAST_PID"
bash "$PEBBLE" stop "$WORK/pebble-alpn" >/dev/null

# 3. badNonce storm.
eval "$(start_pebble nonce PEBBLE_WFE_NONCEREJECT=50)"
start_mles "$WORK/nonce.log" --domains mles.test --port "$PEBBLE_TLS_PORT"
wait_for "$WORK/nonce.log" "installed" 1 90 || fail "no certificate under a badNonce storm"
verify "$PEBBLE_TLS_PORT" mles.test || fail "badNonce chain does not verify"
pass "issuance with 50 % of nonces rejected"
stop_mles "$LAST_PID"
bash "$PEBBLE" stop "$WORK/pebble-nonce" >/dev/null

# 4. Renewal of a 30 s certificate (renewed at 20 s) while a session stays connected.
eval "$(start_pebble renew PEBBLE_CERT_VALIDITY=30)"
start_mles "$WORK/renew.log" --domains mles.test --port "$PEBBLE_TLS_PORT"
wait_for "$WORK/renew.log" "installed" 1 60 || fail "no first certificate for the renewal test"
first=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:$PEBBLE_TLS_PORT" -servername mles.test 2>/dev/null | openssl x509 -noout -serial)
[ -n "$first" ] || fail "no certificate served before the renewal"
coproc A { exec python3 "$HERE/ws_probe.py" "$PEBBLE_TLS_PORT" alice renewal 2>&1; }
read -r -t 10 line <&"${A[0]}" && [ "$line" = joined ] || fail "alice could not join: $line"
coproc B { exec python3 "$HERE/ws_probe.py" "$PEBBLE_TLS_PORT" bob renewal 2>&1; }
read -r -t 10 line <&"${B[0]}" && [ "$line" = joined ] || fail "bob could not join: $line"
wait_for "$WORK/renew.log" "installed" 2 40 || fail "the certificate was not renewed"
serial() { echo | timeout 5 openssl s_client -connect "127.0.0.1:$PEBBLE_TLS_PORT" -servername mles.test 2>/dev/null | openssl x509 -noout -serial 2>/dev/null; }
second=$first
for _ in $(seq 1 50); do second=$(serial); [ -n "$second" ] && [ "$first" != "$second" ] && break; sleep 0.1; done
[ "$first" != "$second" ] || fail "the renewed certificate is not served to new handshakes"
echo "send after renewal" >&"${A[1]}"; read -r -t 10 line <&"${A[0]}" && [ "$line" = ok ] || fail "alice send: $line"
echo "expect after renewal" >&"${B[1]}"; read -r -t 10 line <&"${B[0]}" && [ "$line" = ok ] || fail "bob did not receive after the renewal: $line"
pass "renewal swapped the certificate; the live session kept exchanging messages"
kill "$A_PID" "$B_PID" 2>/dev/null || true
stop_mles "$LAST_PID"

# 5. The CA is down at start, then up on the same address: the certificate arrives after a retry.
# (The CA file is read again for every order, so the new pebble's HTTPS CA can replace it.)
bash "$PEBBLE" stop "$WORK/pebble-renew" >/dev/null
eval "$(start_pebble down)"
acme_port=$(echo "$PEBBLE_DIRECTORY_URL" | sed 's|.*:\([0-9]*\)/dir|\1|')
tls_port=$PEBBLE_TLS_PORT
cp "$PEBBLE_HTTPS_CA" "$WORK/ca.pem"
bash "$PEBBLE" stop "$WORK/pebble-down" >/dev/null
"$MLES" --bind 127.0.0.1 --wwwroot "$WWW" --log-level info --acme-directory "$PEBBLE_DIRECTORY_URL" \
  --acme-ca-cert "$WORK/ca.pem" --domains mles.test --port "$tls_port" --acme-retry 1 2>"$WORK/down.log" &
PIDS+=($!)
mles_pid=$!
wait_for "$WORK/down.log" "order failed" 1 20 || fail "no failure logged while the CA is down"
grep -q "next attempt at" "$WORK/down.log" || fail "the next attempt is not logged"
eval "$(start_pebble up PEBBLE_PORT="$acme_port" PEBBLE_TLS_PORT="$tls_port")"
cp "$PEBBLE_HTTPS_CA" "$WORK/ca.pem"
wait_for "$WORK/down.log" "installed" 1 60 || fail "no certificate after the CA came back"
kill -0 "$mles_pid" || fail "mles died while the CA was down"
verify "$tls_port" mles.test || fail "chain after the retry does not verify"
pass "CA down at start, up later: certificate after a retry, server never stopped"
stop_mles "$mles_pid"
bash "$PEBBLE" stop "$WORK/pebble-up" >/dev/null

# 6. A refused identifier: the CA's problem is logged verbatim, the server keeps serving.
eval "$(start_pebble blocked PEBBLE_BLOCKLIST=blocked.test)"
start_mles "$WORK/blocked.log" --domains blocked.test --port "$PEBBLE_TLS_PORT" --acme-retry 30
wait_for "$WORK/blocked.log" "order failed" 1 30 || fail "no failure logged for a refused identifier"
grep -q "urn:ietf:params:acme:error:rejectedIdentifier" "$WORK/blocked.log" || fail "the CA's problem type is not in the log"
kill -0 "$LAST_PID" || fail "mles stopped after a refused identifier"
echo | timeout 5 openssl s_client -connect "127.0.0.1:$PEBBLE_TLS_PORT" -servername blocked.test 2>/dev/null \
  | grep -q "BEGIN CERTIFICATE\|Server certificate" || fail "no TLS service while the CA refuses"
pass "refused identifier: CA's problem logged verbatim, server keeps serving"
stop_mles "$LAST_PID"
echo "7 passed, 0 failed"
