#!/usr/bin/env bash
# Runs the standard mles benchmark set against one server (mles or mles-raw-baseline), server
# pinned to one CPU and mles-bench to another, a fresh server per run, median of N runs,
# and prints a Markdown table (also written to --out).
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run_standard.sh [--build DIR] [--target mles|raw] [--plain|--tls] [--out FILE]
                             [--runs N] [--duration S] [--only 1,2,3,4]
                             [--server-cpu N] [--bench-cpu N] [--server-args "..."]
                             [--threads N] [--bench-threads N] [--window N]

  --build DIR       build directory holding mles, mles-bench, mles-raw-baseline (default: build)
  --target T        mles: DIR/mles --no-tls|--self-signed --port 0 --threads N --domains localhost
                          --wwwroot <tmp> --log-level warn
                    raw:  DIR/mles-raw-baseline --port 0 (plain only; no history scenario)
  --plain | --tls   plain ws:// (default) or TLS (mles only: --self-signed)
  --out FILE        Markdown output (default: bench/results/standard-<target>-<plain|tls>.md)
  --runs N          runs per scenario, median reported (default 3)
  --duration S      measured seconds per fanout run (default 5; plus 1 s warmup)
  --only LIST       scenarios to run, comma separated (default 1,2,3,4)
  --server-cpu N    CPU for the server (default 0); --bench-cpu N: CPU for the bench (default 1);
                    both are taskset CPU lists ("0,1": either core, the scheduler decides)
  --server-args S   extra arguments appended to the server command line
  --threads N       mles event loops (default 1; the raw baseline is single-threaded)
  --bench-threads N mles-bench event loops for the fan-out and idle scenarios (default 1)
  --window N        mles-bench fan-out window (messages in flight per publisher; default 256)

Scenarios: 1 fanout 1 channel x 100 subscribers x 1 publisher, 64 B, max rate
           2 fanout 100 channels x 10 subscribers x 1 publisher, 64 B, max rate
           3 idle 10,000 joined connections (server bytes per connection, joins/s)
           4 history 200 x 1 KiB, 200 joins (join latency p50/p99)
The server must print a line containing "listening on <addr>:<port>" on stdout or stderr.
Exit status: 0 all runs passed, 1 some run failed, 2 usage error.
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
build=build
target=mles
tls=plain
out=
runs=3
duration=5
only=1,2,3,4
server_cpu=0
bench_cpu=1
server_args=
threads=1
bench_threads=1
window=

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --target) target=${2:?}; shift 2 ;;
    --tls) tls=tls; shift ;;
    --plain) tls=plain; shift ;;
    --out) out=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --server-cpu) server_cpu=${2:?}; shift 2 ;;
    --bench-cpu) bench_cpu=${2:?}; shift 2 ;;
    --server-args) server_args=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --bench-threads) bench_threads=${2:?}; shift 2 ;;
    --window) window=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_standard.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

[[ "$build" = /* ]] || build="$PWD/$build"
bench_bin="$build/mles-bench"
case "$target" in
  mles) server_bin="$build/mles" ;;
  raw) server_bin="$build/mles-raw-baseline" ;;
  *) echo "run_standard.sh: --target must be mles or raw" >&2; exit 2 ;;
esac
if [[ "$target" == raw && "$tls" == tls ]]; then
  echo "run_standard.sh: the raw baseline speaks plain ws only (use --plain)" >&2; exit 2
fi
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run_standard.sh: --runs must be a positive integer" >&2; exit 2; }
[[ "$threads" =~ ^[1-9][0-9]*$ && "$bench_threads" =~ ^[1-9][0-9]*$ ]] ||
  { echo "run_standard.sh: --threads and --bench-threads must be positive integers" >&2; exit 2; }
[[ -z "$window" || "$window" =~ ^[1-9][0-9]*$ ]] || { echo "run_standard.sh: --window must be a positive integer" >&2; exit 2; }
for b in "$bench_bin" "$server_bin"; do
  [[ -x "$b" ]] || { echo "run_standard.sh: $b not found (build it first)" >&2; exit 2; }
done
for tool in taskset timeout; do
  command -v "$tool" >/dev/null || { echo "run_standard.sh: $tool is required" >&2; exit 2; }
done
[[ -n "$out" ]] || out="$repo_dir/bench/results/standard-$target-$tls.md"
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/mles-standard.XXXXXX)
server_pid=
server_port=

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  server_pid=
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_cmd() {
  if [[ "$target" == raw ]]; then
    echo "$server_bin --port 0 $server_args"
  else
    local tls_flag=--no-tls
    [[ "$tls" == tls ]] && tls_flag=--self-signed
    echo "$server_bin $tls_flag --port 0 --threads $threads --domains localhost --wwwroot $work/www --log-level warn $server_args"
  fi
}

# Starts a fresh server pinned to server_cpu; sets server_pid and server_port.
start_server() {
  mkdir -p "$work/www/localhost"
  : >"$work/server.log"
  # shellcheck disable=SC2046
  taskset -c "$server_cpu" $(server_cmd) >"$work/server.log" 2>&1 &
  server_pid=$!
  local line=
  for _ in $(seq 100); do
    line=$(grep -m1 'listening on ' "$work/server.log" 2>/dev/null)
    [[ -n "$line" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  server_port=$(sed -nE 's/.*:([0-9]+).*/\1/p' <<<"$line")
  if [[ -z "$server_port" ]]; then
    echo "run_standard.sh: the server did not report 'listening on <addr>:<port>' within 10 s:" >&2
    sed 's/^/  | /' "$work/server.log" | head -20 >&2
    stop_server
    return 1
  fi
}

server_cpu_seconds() {  # utime + stime of the server, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server_pid/stat" 2>/dev/null || echo 0
}

json_get() {  # json_get KEY <<< '{"k":1,...}'  (flat JSON from mles-bench)
  sed -nE "s/.*\"$1\":\"?([^,\"}]*).*/\1/p"
}

# run_scenario ID TITLE TIMEOUT "FIGURE_LABEL:json_key[:format]..." -- bench args...
declare -a table_rows=()
failures=0
run_scenario() {
  local id=$1 title=$2 limit=$3 figures=$4
  shift 5
  [[ ",$only," == *",$id,"* ]] || return 0
  local -a keys=() labels=() formats=()
  local spec
  IFS=';' read -ra specs <<<"$figures"
  for spec in "${specs[@]}"; do
    IFS=':' read -r l k f <<<"$spec"
    labels+=("$l"); keys+=("$k"); formats+=("${f:-int}")
  done
  declare -A values=()
  local r ok=0 err=
  for r in $(seq "$runs"); do
    echo "[$id/$r] $title" >&2
    if ! start_server; then err="server did not start"; continue; fi
    local -a args=("$@")
    local i
    for i in "${!args[@]}"; do args[i]=${args[i]//@PID@/$server_pid}; done
    local cpu0 cpu1 rc
    cpu0=$(server_cpu_seconds)
    # shellcheck disable=SC2046  # the optional --tls flag must vanish when empty
    timeout -k 5 "$limit" taskset -c "$bench_cpu" "$bench_bin" "${args[@]}" --port "$server_port" \
      $([[ "$tls" == tls ]] && echo --tls) --json >"$work/bench.out" 2>"$work/bench.err"
    rc=$?
    cpu1=$(server_cpu_seconds)
    if ! kill -0 "$server_pid" 2>/dev/null; then
      err="server died: $(tail -n 3 "$work/server.log" | tr '\n' ' ')"
      rc=99
    fi
    stop_server
    local json
    json=$(grep '^{' "$work/bench.out" | tail -n 1)
    if [[ $rc -eq 1 && -n "$json" ]]; then
      echo "  integrity check FAILED (figures kept)" >&2
      failures=$((failures + 1))
    elif [[ $rc -ne 0 || -z "$json" ]]; then
      [[ $rc -eq 124 || $rc -eq 137 ]] && err="bench timed out after ${limit}s"
      [[ $rc -ne 99 && $rc -ne 124 && $rc -ne 137 ]] && err="$(grep -m1 . "$work/bench.err" || echo "mles-bench exit $rc")"
      echo "  FAILED: $err" >&2
      failures=$((failures + 1))
      continue
    fi
    ok=$((ok + 1))
    for i in "${!keys[@]}"; do
      local v
      if [[ "${keys[$i]}" == server_cpu ]]; then
        v=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
      elif [[ "${keys[$i]}" == integrity ]]; then
        v=$(( $(json_get lost <<<"$json") + $(json_get duplicated <<<"$json") + $(json_get reordered <<<"$json") + $(json_get misrouted <<<"$json") ))
      else
        v=$(json_get "${keys[$i]}" <<<"$json")
      fi
      values[$i]="${values[$i]:-}${values[$i]:+ }$v"
      echo "  ${labels[$i]}: $(fmt_value "$v" "${formats[$i]}")" >&2
    done
  done
  local first=1
  if [[ $ok -eq 0 ]]; then
    table_rows+=("| $id | $title | FAILED | – | ${err//|/\\|} |")
    return 0
  fi
  for i in "${!keys[@]}"; do
    local med runs_txt=
    med=$(tr ' ' '\n' <<<"${values[$i]}" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    local v
    for v in ${values[$i]}; do runs_txt+="${runs_txt:+, }$(fmt_value "$v" "${formats[$i]}")"; done
    [[ $ok -lt $runs ]] && runs_txt+=" ($((runs - ok)) failed: ${err//|/\\|})"
    if [[ $first -eq 1 ]]; then
      table_rows+=("| $id | $title | ${labels[$i]} | **$(fmt_value "$med" "${formats[$i]}")** | $runs_txt |")
      first=0
    else
      table_rows+=("| | | ${labels[$i]} | **$(fmt_value "$med" "${formats[$i]}")** | $runs_txt |")
    fi
  done
}

fmt_value() {  # fmt_value VALUE FORMAT  (rate: 1.23 M / 45.6 k; us: 1 decimal; int)
  awk -v v="$1" -v f="$2" 'BEGIN {
    if (f == "rate") { if (v >= 1e6) printf "%.2f M", v / 1e6; else if (v >= 1e3) printf "%.1f k", v / 1e3; else printf "%.0f", v }
    else if (f == "us" || f == "s") printf "%.1f", v
    else if (f == "share") printf "%.2f", v
    else printf "%.0f", v }'
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
fan=(--warmup 1 --duration "$duration" --threads "$bench_threads")
[[ -n "$window" ]] && fan+=(--window "$window")
run_scenario 1 "fanout 1 ch × 100 sub × 1 pub, 64 B, max rate" 120 \
  "delivered msgs/s:delivered_per_s:rate;published msgs/s:published_per_s:rate;latency p50 (µs):latency_p50_us:us;latency p99 (µs):latency_p99_us:us;lost+dup+reordered:integrity;server CPU s (whole run):server_cpu:s;server CPU share (measured):server_cpu_share:share;bench CPU share (measured):bench_cpu_share:share" -- \
  fanout --channels 1 --subscribers 100 --publishers 1 --size 64 --server-pid @PID@ "${fan[@]}"
run_scenario 2 "fanout 100 ch × 10 sub × 1 pub, 64 B, max rate" 120 \
  "delivered msgs/s:delivered_per_s:rate;published msgs/s:published_per_s:rate;latency p50 (µs):latency_p50_us:us;latency p99 (µs):latency_p99_us:us;lost+dup+reordered:integrity;server CPU s (whole run):server_cpu:s;server CPU share (measured):server_cpu_share:share;bench CPU share (measured):bench_cpu_share:share" -- \
  fanout --channels 100 --subscribers 10 --publishers 1 --size 64 --server-pid @PID@ "${fan[@]}"
run_scenario 3 "idle 10,000 joined connections (100 per channel)" 180 \
  "server bytes/connection:bytes_per_connection;joins/s:joins_per_s:rate;bench TCP connects/s:tcp_connects_per_s:rate" -- \
  idle --connections 10000 --per-channel 100 --server-pid @PID@ --threads "$bench_threads"
if [[ "$target" == raw ]]; then
  [[ ",$only," == *",4,"* ]] && table_rows+=("| 4 | history 200 × 1 KiB | skipped | – | the raw baseline keeps no history |")
else
  run_scenario 4 "history 200 × 1 KiB, 200 joins" 180 \
    "join → history p50 (µs):join_p50_us:us;join → history p99 (µs):join_p99_us:us;connect → history p50 (µs):connect_p50_us:us;connect → history p99 (µs):connect_p99_us:us" -- \
    history --history 200 --size 1024 --joins 200
fi

{
  echo "## mles standard benchmark: $target ($tls)"
  echo
  echo "- $started; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); kernel $(uname -r)"
  echo "- server on CPU $server_cpu: \`$(server_cmd | sed "s|$work|<tmp>|; s|$repo_dir/||g")\`"
  echo "- bench on CPU $bench_cpu ($bench_threads thread(s) in fan-out and idle): \`${bench_bin#"$repo_dir"/} <mode> ... --port <port>$([[ "$tls" == tls ]] && echo " --tls") --json\`; fresh server per run; median of $runs$([[ -n "$window" ]] && echo "; fan-out window $window")"
  echo "- load average at start: $load_start (other work on the machine skews the figures)"
  echo
  echo "| # | scenario | figure | median | runs |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${table_rows[@]}"
} >"$out"
cat "$out"
echo "run_standard.sh: written to $out" >&2
[[ $failures -eq 0 ]] || { echo "run_standard.sh: $failures run(s) failed" >&2; exit 1; }
exit 0
