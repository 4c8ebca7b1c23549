#!/usr/bin/env bash
# Runs Let's Encrypt's test ACME CA (pebble) and its mock DNS (pebble-challtestsrv) on
# 127.0.0.1 for the ACME integration tests (tests/acme/acme_driver_test.cpp), real validation.
#
#   start-pebble.sh [start] [TEMP_DIR]  start both in the background (no-op when running),
#                                       wait until the directory answers, print how to use it
#   start-pebble.sh env     [TEMP_DIR]  print shell exports: eval "$(start-pebble.sh env DIR)"
#   start-pebble.sh status  [TEMP_DIR]  exit 0 when running and answering
#   start-pebble.sh stop    [TEMP_DIR]  stop both, delete TEMP_DIR/pebble-run
#
# State lives in TEMP_DIR/pebble-run; TEMP_DIR is the argument, else $PEBBLE_TEMP_DIR, else
# ${TMPDIR:-/tmp}/mles-pebble-<uid>. Never inside the source tree. Several TEMP_DIRs can run
# side by side when their ports differ.
#
# Environment (start only; later verbs read the ports back from the run directory):
#   PEBBLE_PORT PEBBLE_MGMT_PORT CTS_DNS_PORT CTS_MGMT_PORT  pebble ACME / management,
#       challtestsrv DNS (udp+tcp) / management; default: free ports in 20000-32767
#   PEBBLE_HTTP_PORT PEBBLE_TLS_PORT  where pebble's VA dials http-01 / tls-alpn-01 on
#       127.0.0.1 (the code under test listens there); default: free ports as above
#   PEBBLE_WFE_NONCEREJECT=0     % of valid nonces rejected with badNonce (pebble default 5)
#   PEBBLE_AUTHZREUSE=0          % chance a new order reuses a valid authorization
#   PEBBLE_STRICT=1              -strict (a challenge POST body must be exactly {})
#   PEBBLE_CERT_VALIDITY=7776000 issued certificate lifetime, seconds
#   PEBBLE_BLOCKLIST="a.test b.test" names pebble refuses (rejectedIdentifier)
#   PEBBLE_VA_NOSLEEP=1          no random 0-5 s sleep before each validation
# Every name resolves to 127.0.0.1 (no AAAA, so the VA never dials ::1). pebble and
# pebble-challtestsrv come from Debian's `pebble` package (scripts/install-deps.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE_ROOT="$(cd "$HERE/../../.." && pwd)"
SELF="$HERE/start-pebble.sh"

VERB="${1:-start}"
TEMP_DIR="${2:-${PEBBLE_TEMP_DIR:-${TMPDIR:-/tmp}/mles-pebble-$(id -u)}}"

# Ports the caller chose (used as they are); the others are picked at start.
FIXED_PEBBLE="${PEBBLE_PORT:-}" FIXED_MGMT="${PEBBLE_MGMT_PORT:-}" FIXED_HTTP="${PEBBLE_HTTP_PORT:-}"
FIXED_TLS="${PEBBLE_TLS_PORT:-}" FIXED_DNS="${CTS_DNS_PORT:-}" FIXED_CTS="${CTS_MGMT_PORT:-}"
NONCEREJECT="${PEBBLE_WFE_NONCEREJECT:-0}"
AUTHZREUSE="${PEBBLE_AUTHZREUSE:-0}"
STRICT="${PEBBLE_STRICT:-1}"
VALIDITY="${PEBBLE_CERT_VALIDITY:-7776000}"
BLOCKLIST="${PEBBLE_BLOCKLIST:-}"
NOSLEEP="${PEBBLE_VA_NOSLEEP:-1}"

log() { printf '[start-pebble] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

TEMP_DIR="$(realpath -m "$TEMP_DIR")"
case "$TEMP_DIR/" in
  "$(realpath "$SOURCE_ROOT")/"*) die "TEMP_DIR $TEMP_DIR is inside the source tree; pass a temporary directory" ;;
esac
mkdir -p "$TEMP_DIR"
RUN="$TEMP_DIR/pebble-run"

# A port is taken when any local TCP/UDP socket (v4 or v6) has it; /proc/net lists them all,
# listening or not. Matching remote ports too only makes the check stricter.
port_taken() {
  local hex
  hex="$(printf '%04X' "$1")"
  grep -qs ":$hex " /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6
}

# Sets variable $1 to $2 when given, else to a free port below Linux's ephemeral range
# (32768-60999, so outgoing connections don't race it) not yet in $PICKED.
pick_port() {
  local p=$2 _
  if [ -z "$p" ]; then
    for _ in $(seq 1 200); do
      p=$((20000 + RANDOM % 12768))
      case " $PICKED " in *" $p "*) p="" && continue ;; esac
      if ! port_taken "$p"; then break; fi
      p=""
    done
  fi
  [ -n "$p" ] || die "no free port found in 20000-32767"
  printf -v "$1" '%s' "$p"
  PICKED="$PICKED $p"
}

load_settings() {
  # shellcheck disable=SC1091
  [ -f "$RUN/settings.env" ] && . "$RUN/settings.env"
  DIR_URL="https://127.0.0.1:${PEBBLE_PORT:-0}/dir"
  MGMT_URL="https://127.0.0.1:${PEBBLE_MGMT_PORT:-0}"
}

pid_alive() { # pidfile command-fragment
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

dir_answers() {
  [ -f "$RUN/pebble-https-ca.pem" ] &&
    curl -fsS --max-time 2 --cacert "$RUN/pebble-https-ca.pem" "$DIR_URL" >/dev/null 2>&1
}

is_running() {
  pid_alive "$RUN/pebble.pid" "pebble -config" && pid_alive "$RUN/challtestsrv.pid" "pebble-challtestsrv" &&
    dir_answers
}

stop_one() { # pidfile command-fragment
  local pid _
  if pid_alive "$1" "$2"; then
    pid="$(cat "$1")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$1" "$2" || break; sleep 0.1; done
    if pid_alive "$1" "$2"; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$1"
}

do_stop() {
  stop_one "$RUN/pebble.pid" "pebble -config"
  stop_one "$RUN/challtestsrv.pid" "pebble-challtestsrv"
  rm -rf "$RUN"
}

# Pebble serves its API over HTTPS only and Debian ships no certificate for it: a throw-away
# CA and a server certificate for 127.0.0.1 (clients trust pebble-https-ca.pem).
make_https_cert() {
  (
    cd "$RUN"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout pebble-https-ca.key -out pebble-https-ca.pem -days 30 \
      -subj "/CN=pebble test HTTPS CA (throw-away)" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout pebble-https.key -out pebble-https.csr -subj "/CN=localhost" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >pebble-https.ext
    openssl x509 -req -in pebble-https.csr -CA pebble-https-ca.pem -CAkey pebble-https-ca.key \
      -CAcreateserial -out pebble-https.pem -days 30 -extfile pebble-https.ext >/dev/null 2>&1
    rm -f pebble-https.csr pebble-https.ext pebble-https-ca.srl
  )
}

write_config() {
  # pebble 2.4.0's config struct (cmd/pebble/main.go); JSON keys match case-insensitively.
  local blocked="" name
  for name in $BLOCKLIST; do blocked="${blocked:+$blocked, }\"$name\""; done
  cat >"$RUN/pebble-config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:${PEBBLE_PORT}",
    "managementListenAddress": "127.0.0.1:${PEBBLE_MGMT_PORT}",
    "certificate": "pebble-https.pem",
    "privateKey": "pebble-https.key",
    "httpPort": ${PEBBLE_HTTP_PORT},
    "tlsPort": ${PEBBLE_TLS_PORT},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "certificateValidityPeriod": ${VALIDITY},
    "domainBlocklist": [${blocked}]
  }
}
EOF
}

print_env() {
  cat <<EOF
export PEBBLE_DIRECTORY_URL='${DIR_URL}'
export PEBBLE_MGMT_URL='${MGMT_URL}'
export PEBBLE_HTTPS_CA='${RUN}/pebble-https-ca.pem'
export PEBBLE_ROOT_PEM='${RUN}/pebble-root.pem'
export PEBBLE_HTTP_PORT='${PEBBLE_HTTP_PORT}'
export PEBBLE_TLS_PORT='${PEBBLE_TLS_PORT}'
export PEBBLE_RUN_DIR='${RUN}'
EOF
}

print_info() {
  cat <<EOF
ACME directory URL : ${DIR_URL}
CA cert to trust   : ${RUN}/pebble-https-ca.pem   (pebble's own HTTPS endpoints)
Issuing root       : ${RUN}/pebble-root.pem   (new at every start; verify issued chains against it)
Validation targets : http-01 -> 127.0.0.1:${PEBBLE_HTTP_PORT}, tls-alpn-01 -> 127.0.0.1:${PEBBLE_TLS_PORT}
Logs               : ${RUN}/pebble.log ${RUN}/challtestsrv.log
Stop               : ${SELF} stop ${TEMP_DIR}
EOF
}

# One start attempt with the ports in the environment; returns 1 when pebble did not come up
# (a port raced away, or pebble failed), after cleaning up.
start_once() {
  mkdir -p "$RUN"
  make_https_cert
  write_config
  printf '%s\n' "PEBBLE_PORT=${PEBBLE_PORT}" "PEBBLE_MGMT_PORT=${PEBBLE_MGMT_PORT}" \
    "PEBBLE_HTTP_PORT=${PEBBLE_HTTP_PORT}" "PEBBLE_TLS_PORT=${PEBBLE_TLS_PORT}" \
    "CTS_DNS_PORT=${CTS_DNS_PORT}" "CTS_MGMT_PORT=${CTS_MGMT_PORT}" >"$RUN/settings.env"
  load_settings

  local strict_flag=()
  [ "$STRICT" = 1 ] && strict_flag=(-strict)
  # Mock DNS: A=127.0.0.1 for every name, no AAAA; its own challenge responders disabled
  # (they would bind all interfaces on 5001-5003), so the code under test answers.
  (cd "$RUN" && exec setsid sh -c 'echo $$ >challtestsrv.pid; exec "$@"' sh \
    pebble-challtestsrv -dns01 "127.0.0.1:${CTS_DNS_PORT}" -management "127.0.0.1:${CTS_MGMT_PORT}" \
    -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    </dev/null >challtestsrv.log 2>&1) &
  (cd "$RUN" && exec env PEBBLE_VA_NOSLEEP="$NOSLEEP" PEBBLE_WFE_NONCEREJECT="$NONCEREJECT" \
    PEBBLE_AUTHZREUSE="$AUTHZREUSE" setsid sh -c 'echo $$ >pebble.pid; exec "$@"' sh \
    pebble -config pebble-config.json -dnsserver "127.0.0.1:${CTS_DNS_PORT}" "${strict_flag[@]}" \
    </dev/null >pebble.log 2>&1) &

  # Pebble generates its root and intermediate first: up to 20 s for the directory.
  local _
  for _ in $(seq 1 100); do
    dir_answers && break
    sleep 0.2
    [ -s "$RUN/pebble.pid" ] && ! pid_alive "$RUN/pebble.pid" "pebble -config" && break
  done
  if dir_answers && pid_alive "$RUN/challtestsrv.pid" "pebble-challtestsrv" &&
    curl -fsS --max-time 5 --cacert "$RUN/pebble-https-ca.pem" "$MGMT_URL/roots/0" -o "$RUN/pebble-root.pem" &&
    curl -fsS --max-time 5 --cacert "$RUN/pebble-https-ca.pem" "$MGMT_URL/intermediates/0" \
      -o "$RUN/pebble-intermediate.pem"; then
    return 0
  fi
  log "pebble did not come up at ${DIR_URL}; logs:"
  tail -n 20 "$RUN/pebble.log" "$RUN/challtestsrv.log" >&2 || true
  do_stop
  return 1
}

do_start() {
  load_settings
  if is_running; then
    log "already running"
    print_info
    return 0
  fi
  do_stop # half-started or stale state
  local tool
  for tool in pebble pebble-challtestsrv curl openssl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh installs it)"
  done

  local attempt
  for attempt in 1 2 3; do
    PICKED="$FIXED_PEBBLE $FIXED_MGMT $FIXED_HTTP $FIXED_TLS $FIXED_DNS $FIXED_CTS"
    pick_port PEBBLE_PORT "$FIXED_PEBBLE"
    pick_port PEBBLE_MGMT_PORT "$FIXED_MGMT"
    pick_port PEBBLE_HTTP_PORT "$FIXED_HTTP"
    pick_port PEBBLE_TLS_PORT "$FIXED_TLS"
    pick_port CTS_DNS_PORT "$FIXED_DNS"
    pick_port CTS_MGMT_PORT "$FIXED_CTS"
    if start_once; then
      log "started (strict=$STRICT nonce-reject=${NONCEREJECT}% authz-reuse=${AUTHZREUSE}% validity=${VALIDITY}s)"
      print_info
      return 0
    fi
    [ $attempt -lt 3 ] && log "retrying with other ports"
  done
  die "pebble could not be started"
}

case "$VERB" in
  start) do_start ;;
  stop) do_stop; log "stopped; removed $RUN" ;;
  env) load_settings; [ -f "$RUN/settings.env" ] || die "not started in $TEMP_DIR"; print_env ;;
  status) load_settings; if is_running; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 [start|stop|status|env] [TEMP_DIR]" >&2; exit 2 ;;
esac
