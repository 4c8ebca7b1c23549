#!/usr/bin/env bash
# Stands in for DIR/mles in run_standard.sh / run_alternating.sh so that the uWebSockets C++
# peer (../shared/peers/uws-cpp, not part of this project) is measured by the same scripts:
# takes mles's command line, starts $UWS_MLES (the peer's build/uws-mles) in its place.
#   mkdir /tmp/uws && ln -s "$PWD/bench/uws_as_mles.sh" /tmp/uws/mles
#   ln -s "$PWD/build/mles-bench" "$PWD/build/mles-raw-baseline" /tmp/uws/
#   UWS_MLES=/path/to/uws-mles bench/run_alternating.sh mles=build uws=/tmp/uws
# --self-signed makes a throw-away certificate; --port 0 picks a free port; --limit passes
# through; UWS_ARGS adds peer options (e.g. "--fanout pubsub"); the other mles options have
# no counterpart and are ignored.
set -euo pipefail
bin=${UWS_MLES:?set UWS_MLES to the uws-mles binary}
port=0 tls=0 limit=200
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --self-signed) tls=1; shift ;;
    --no-tls) shift ;;
    --threads|--domains|--wwwroot|--log-level|--bind) shift 2 ;;
    *) echo "uws_as_mles.sh: ignoring $1" >&2; shift ;;
  esac
done
if [[ "$port" == 0 ]]; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
args=(--port "$port" --host 127.0.0.1 --limit "$limit")
if [[ $tls == 1 ]]; then
  dir=$(mktemp -d /tmp/uws-cert.XXXXXX)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  args+=(--cert "$dir/cert.pem" --key "$dir/key.pem")
fi
# shellcheck disable=SC2086  # UWS_ARGS is a list of options
exec "$bin" "${args[@]}" ${UWS_ARGS:-}
