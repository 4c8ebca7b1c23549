#!/usr/bin/env bash
# The benchmark tools against real servers: every mode the bench scripts use runs, exits 0 and
# reports figures that make sense. mles-bench fan-out (one loop and two, plain and TLS, against
# mles and against mles-raw-baseline) must deliver messages with none lost, duplicated,
# reordered or misrouted; idle must confirm its joins and read the server's RSS; history must
# time its joins. BENCHMARKS.md's figures come from these tools: a broken bench must not pass.
# Usage: bench_smoke_test.sh <mles> <mles-bench> <mles-raw-baseline>   (exit 0 = all passed)
set -euo pipefail

MLES="$(readlink -f "$1")"
BENCH="$(readlink -f "$2")"
RAW="$(readlink -f "$3")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mles-bench-smoke.XXXXXX")"
PID=""
PORT=""
stop_server() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  PID=""
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -f "$WORK/server.log" ]] && sed 's/^/  server | /' "$WORK/server.log" >&2
  exit 1
}

# start_server CMD...: starts it, waits (bounded) for "listening on <addr>:<port>", sets PORT.
start_server() {
  : >"$WORK/server.log"
  "$@" >"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do
    PORT="$(grep -o 'listening on [^ ]*:[0-9]*' "$WORK/server.log" | head -1 | grep -o '[0-9]*$' || true)"
    [[ -n "$PORT" ]] && return 0
    kill -0 "$PID" 2>/dev/null || fail "server exited at start: $*"
    sleep 0.1
  done
  fail "server did not listen within 30 s: $*"
}

# check NAME JSON PYTHON-CONDITION...: each condition is evaluated with r = the JSON record.
check() {
  local name=$1 json=$2
  shift 2
  python3 - "$name" "$json" "$@" <<'EOF' || fail "$name"
import json, sys
name, line, conds = sys.argv[1], sys.argv[2], sys.argv[3:]
r = json.loads(line)
bad = [c for c in conds if not eval(c, {}, {"r": r})]
if bad:
    print(f"{name}: not true: {bad}\n  record: {line}", file=sys.stderr)
    sys.exit(1)
print(f"ok  {name}")
EOF
}

# run_bench NAME ARGS...: runs mles-bench (bounded in time), returns its JSON line.
run_bench() {
  local name=$1
  shift
  local out
  out="$(timeout 120 "$BENCH" "$@" --json 2>"$WORK/bench.err")" || {
    cat "$WORK/bench.err" >&2
    fail "$name: mles-bench $* exited with $?"
  }
  grep '^{' <<<"$out" | tail -1
}

FANOUT_OK=('r["delivered_total"] > 0' 'r["published_total"] > 0' 'r["lost"] == 0' 'r["duplicated"] == 0'
           'r["reordered"] == 0' 'r["misrouted"] == 0' 'r["drain_timed_out"] == "no"' 'r["latency_p50_us"] > 0')
# Every message reaches every other member of its channel (all of them read).
EVERY_COPY='r["delivered_total"] == r["published_total"] * (r["subscribers"] + r["publishers"] - 1)'
fanout=(fanout --channels 3 --subscribers 4 --publishers 2 --size 64 --warmup 0.2 --duration 1 --drain-timeout 60)

mkdir -p "$WORK/www"
for tls in plain tls; do
  flag=--no-tls
  bench_tls=()
  if [[ "$tls" == tls ]]; then
    flag=--self-signed
    bench_tls=(--tls)
  fi
  for threads in 1 2; do
    start_server "$MLES" "$flag" --port 0 --threads "$threads" --domains localhost --wwwroot "$WORK/www" \
      --log-level warn
    rec="$(run_bench "fanout $tls threads $threads" "${fanout[@]}" --threads "$threads" --port "$PORT" "${bench_tls[@]}" \
      --server-pid "$PID")"
    # Both processes were busy while measuring, and neither used more CPUs than it has threads.
    check "mles $tls, $threads loop(s): fan-out" "$rec" "${FANOUT_OK[@]}" "$EVERY_COPY" "r['tls'] == '$([[ $tls == tls ]] && echo yes || echo no)'" \
      '0 < r["bench_cpu_share"] < 4' '0 < r["server_cpu_share"] < 4'
    # Paced, with a member that never reads: the others still get everything.
    rec="$(run_bench "fanout paced $tls" fanout --channels 1 --subscribers 5 --publishers 1 --size 64 --rate 2000 \
      --stalled 1 --warmup 0.2 --duration 1 --drain-timeout 60 --port "$PORT" "${bench_tls[@]}")"
    check "mles $tls, $threads loop(s): paced fan-out with a stalled member" "$rec" "${FANOUT_OK[@]}" \
      '0 <= r["send_lag_p50_us"] <= r["send_lag_p99_us"]'
    rec="$(run_bench "idle $tls" idle --connections 200 --per-channel 10 --server-pid "$PID" --port "$PORT" "${bench_tls[@]}")"
    check "mles $tls, $threads loop(s): idle" "$rec" 'r["connections"] == 200' 'r["joins_confirmed"] == "yes"' \
      'r["server_rss_after_kib"] > 0' 'r["joins_per_s"] > 0'
    rec="$(run_bench "history $tls" history --history 20 --size 256 --joins 10 --port "$PORT" "${bench_tls[@]}")"
    check "mles $tls, $threads loop(s): history" "$rec" 'r["joins"] == 10' 'r["join_p50_us"] > 0' \
      'r["history_bytes_per_join"] >= 20 * 256'
    stop_server
  done
done

start_server "$RAW" --port 0
rec="$(run_bench "fanout raw" "${fanout[@]}" --port "$PORT")"
check "raw baseline: fan-out" "$rec" "${FANOUT_OK[@]}" "$EVERY_COPY"
stop_server

# A server that is not there: the bench says so and fails.
if timeout 60 "$BENCH" fanout --channels 1 --subscribers 2 --publishers 1 --duration 1 --port "$PORT" \
  >/dev/null 2>"$WORK/bench.err"; then
  fail "mles-bench succeeded against a closed port"
fi
grep -qi "refused\|fail" "$WORK/bench.err" || fail "mles-bench failed against a closed port without saying why"
echo "ok  closed port: mles-bench fails with: $(head -c 200 "$WORK/bench.err")"

# stalls: a spinning thread per CPU; its shares and floors are consistent.
rec="$(run_bench "stalls" stalls --duration 0.3)"
check "stalls" "$rec" 'r["mode"] == "stalls"' 'len(r["cpus"]) > 0' 'r["overflowed"] == "no"' \
  '0 <= r["stalled_share"] < 1' '0 <= r["late_share_at_1000us"] <= 2' 'r["longest_stall_us"] >= 0' \
  '0 <= r["floor_p50_us"] <= r["floor_p99_us"] <= r["floor_p999_us"] <= r["longest_stall_us"]'
# A CPU this process may not run on is refused with its number, not measured.
if timeout 60 "$BENCH" stalls --cpus 1023 --duration 0.1 >/dev/null 2>"$WORK/bench.err"; then
  fail "mles-bench stalls measured CPU 1023"
fi
grep -q "CPU 1023" "$WORK/bench.err" || fail "mles-bench stalls refused CPU 1023 without naming it: $(cat "$WORK/bench.err")"
echo "ok  stalls: an unusable CPU is refused: $(head -c 200 "$WORK/bench.err")"
echo "all passed"
