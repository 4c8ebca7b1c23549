#!/usr/bin/env bash
# Fan-out through one peer link against the same fan-out on one server, alternating runs:
#   one:    publisher and subscribers on one server
#   linked: publisher on server A (--peer B), subscribers on server B; every message crosses
#           the one link A→B (peer mode), then fans out on B
# Servers pinned to one CPU (both of them in the linked case), mles-bench to another, fresh
# servers per run, medians of N runs, the load average written beside the figures.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run_link.sh [--build DIR] [--plain|--tls] [--runs N] [--duration S]
                         [--subscribers N] [--size BYTES] [--out FILE]
                         [--server-cpu N] [--bench-cpu N]
  --build DIR       build directory holding mles and mles-bench (default: build)
  --plain | --tls   ws:// (default) or wss:// (self-signed servers; the link trusts B's
                    certificate through --peer-ca)
  --runs N          runs per setup, alternating, median reported (default 5)
  --duration S      measured seconds per run (default 5; plus 1 s warmup)
  --subscribers N   subscribers (default 100); one channel, one publisher
  --size BYTES      payload bytes (default 64)
  --out FILE        Markdown output (default: bench/results/link-<plain|tls>.md)
Exit status: 0 all runs passed, 1 some run failed, 2 usage error.
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
build=build
tls=plain
runs=5
duration=5
subscribers=100
size=64
out=
server_cpu=0
bench_cpu=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --tls) tls=tls; shift ;;
    --plain) tls=plain; shift ;;
    --runs) runs=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --subscribers) subscribers=${2:?}; shift 2 ;;
    --size) size=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --server-cpu) server_cpu=${2:?}; shift 2 ;;
    --bench-cpu) bench_cpu=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_link.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$build" = /* ]] || build="$PWD/$build"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run_link.sh: --runs must be a positive integer" >&2; exit 2; }
for b in "$build/mles" "$build/mles-bench"; do
  [[ -x "$b" ]] || { echo "run_link.sh: $b not found (build it first)" >&2; exit 2; }
done
[[ -n "$out" ]] || out="$repo_dir/bench/results/link-$tls.md"
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/mles-link.XXXXXX)
pids=()
stop_servers() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  pids=()
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/www/localhost"
if [[ "$tls" == tls ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null ||
    { echo "run_link.sh: openssl could not make a test certificate" >&2; exit 1; }
fi

# start_server NAME EXTRA_ARGS...: sets $port_ret; the log is $work/NAME.log. Called in the
# shell that stops the servers (not in $(...), where the pid it records would be lost and the
# server left running).
start_server() {
  local name=$1; shift
  port_ret=
  local tls_args=(--no-tls)
  [[ "$tls" == tls ]] && tls_args=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  : >"$work/$name.log"
  taskset -c "$server_cpu" "$build/mles" "${tls_args[@]}" --port 0 --bind 127.0.0.1 --threads 1 \
    --domains localhost --wwwroot "$work/www" --log-level info "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  local line=
  for _ in $(seq 100); do
    line=$(grep -m1 'listening on ' "$work/$name.log" 2>/dev/null)
    [[ -n "$line" ]] && break
    sleep 0.1
  done
  port_ret=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' <<<"$line")
}

# run_once SETUP: prints "delivered_per_s p99_us lost duplicated" or returns 1
run_once() {
  local setup=$1 pb pa
  local bench_args=(fanout --channels 1 --subscribers "$subscribers" --publishers 1 --size "$size"
                    --duration "$duration" --warmup 1 --json)
  [[ "$tls" == tls ]] && bench_args+=(--tls)
  start_server b
  pb=$port_ret
  [[ -n "$pb" ]] || { echo "run_link.sh: server b did not start" >&2; sed 's/^/  | /' "$work/b.log" >&2; stop_servers; return 1; }
  if [[ "$setup" == linked ]]; then
    local scheme=ws peer_args=()
    [[ "$tls" == tls ]] && { scheme=wss; peer_args=(--peer-ca "$work/cert.pem"); }
    start_server a --peer "$scheme://localhost:$pb" "${peer_args[@]}"
    pa=$port_ret
    [[ -n "$pa" ]] || { echo "run_link.sh: server a did not start" >&2; stop_servers; return 1; }
    bench_args+=(--port "$pb" --publisher-port "$pa")
  else
    bench_args+=(--port "$pb")
  fi
  local json
  json=$(timeout 120 taskset -c "$bench_cpu" "$build/mles-bench" "${bench_args[@]}" 2>"$work/bench.err" | tail -1)
  stop_servers
  python3 - "$json" <<'PY' || { sed 's/^/  | /' "$work/bench.err" >&2; return 1; }
import json, sys
r = json.loads(sys.argv[1])
print(r["delivered_per_s"], r["latency_p99_us"], r["lost"], r["duplicated"])
PY
}

declare -A delivered p99
failed=0
loads=()
for i in $(seq "$runs"); do
  for setup in one linked; do
    if r=$(run_once "$setup"); then
      read -r d p l dup <<<"$r"
      delivered[$setup]+="$d "
      p99[$setup]+="$p "
      if [[ "$l" != 0 || "$dup" != 0 ]]; then
        echo "run_link.sh: $setup run $i lost $l and duplicated $dup messages" >&2
        failed=1
      fi
      echo "run $i $setup: $d delivered/s, p99 $p us" >&2
    else
      echo "run_link.sh: $setup run $i failed" >&2
      failed=1
    fi
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "n/a"}'; }
d1=$(median "${delivered[one]:-}"); d2=$(median "${delivered[linked]:-}")
p1=$(median "${p99[one]:-}"); p2=$(median "${p99[linked]:-}")
ratio=$(awk -v a="$d2" -v b="$d1" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
{
  echo "| setup ($tls, 1 channel × $subscribers subscribers × 1 publisher, $size B) | delivered msgs/s | p99 latency | vs one server |"
  echo "|---|---|---|---|"
  printf '| one server | %.2f M | %.0f µs | 1.00× |\n' "$(awk -v x="$d1" 'BEGIN{print x/1e6}')" "$p1"
  printf '| publisher on A, subscribers on B, one link A→B | %.2f M | %.0f µs | %s× |\n' \
    "$(awk -v x="$d2" 'BEGIN{print x/1e6}')" "$p2" "$ratio"
  echo
  echo "Medians of $runs alternating runs of ${duration} s; load average (1 min) during the runs: ${loads[*]}."
} | tee "$out"
exit "$failed"
