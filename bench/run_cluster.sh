#!/usr/bin/env bash
# Cluster mode on NATS (issue 10) against standalone mode, alternating runs:
#   raw:         the raw baseline (mles-raw-baseline), fan-out at max rate only (--raw)
#   standalone:  one mles, publisher and subscribers on it
#   cluster-one: one mles --nats (one JetStream node), publisher and subscribers on it
#   cluster-two: two mles --nats sharing that node; publisher on A, subscribers on B: every
#                message goes A → JetStream publish → core NATS delivery to B → fan-out on B
# Scenarios (one channel × S subscribers × 1 publisher, BYTES payload):
#   max:     mles-bench fanout at max rate (closed loop, window 256): delivered msgs/s
#   rate:    mles-bench fanout --rate R (open loop): latency p50/p99 under a fixed load
#   history: mles-bench history: a newcomer joins a channel holding N × SIZE messages; in
#            cluster-two the joiner connects to B (--joiner-port), where the channel has no
#            member: B runs with --peer-linger 0.1 and the bench waits --join-pause between
#            joins, so every join attaches the channel afresh and reads its history from
#            JetStream (checked: B's mles_cluster_history_loaded_total is printed per run);
#            every server gets --limit N + 1 here (see run_once)
# Fresh servers and a fresh nats-server store per run; mles servers and nats-server pinned to
# --server-cpu / --nats-cpu (default both CPU 0: the cluster's whole server side gets the core
# a standalone server gets), mles-bench to --bench-cpu (CPU 1); medians of N runs; the load
# average after each run written beside the figures; per run the CPU seconds of each server
# process and the publishing server's mles_cluster_* counters (where the time goes).
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run_cluster.sh [--build DIR] [--runs N] [--duration S] [--subscribers N]
                            [--size BYTES] [--rate R] [--history N] [--history-size BYTES]
                            [--joins N] [--join-pause S] [--only "max rate history"] [--raw]
                            [--server-cpu N] [--nats-cpu N] [--bench-cpu N] [--out FILE]
  --build DIR       build directory holding mles, mles-bench (and mles-raw-baseline for --raw)
                    (default: build)
  --runs N          rounds, each runs every setup once per scenario; medians (default 5)
  --duration S      measured seconds per fan-out run (default 5; plus 1 s warmup)
  --subscribers N   subscribers (default 100); one channel, one publisher
  --size BYTES      fan-out payload bytes (default 64)
  --rate R          messages/s of the publisher in the rate scenario (default 2000)
  --history N       history messages a joiner receives (default 200 = the server's --limit)
  --history-size B  their payload bytes (default 1024)
  --joins N         measured joins per history run (default 100, plus 5 warmup joins)
  --join-pause S    seconds between a fill and the next join, every setup (default 0.25)
  --only LIST       scenarios to run (default "max rate history")
  --raw             also run the raw baseline in the max scenario (ratios then shown to it too)
  --server-cpu N    CPU of the mles servers (default 0)
  --nats-cpu N      CPU of nats-server (default 0, beside the mles servers)
  --bench-cpu N     CPU of mles-bench (default 1)
  --out FILE        Markdown output (default: bench/results/cluster.md); every run's figures
                    go to FILE with .md replaced by -runs.tsv
Exit status: 0 all runs passed, 1 some run failed, 2 usage error.
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
build=build
runs=5
duration=5
subscribers=100
size=64
rate=2000
history=200
history_size=1024
joins=100
join_pause=0.25
only="max rate history"
with_raw=0
out=
server_cpu=0
nats_cpu=0
bench_cpu=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --subscribers) subscribers=${2:?}; shift 2 ;;
    --size) size=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --history) history=${2:?}; shift 2 ;;
    --history-size) history_size=${2:?}; shift 2 ;;
    --joins) joins=${2:?}; shift 2 ;;
    --join-pause) join_pause=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --raw) with_raw=1; shift ;;
    --out) out=${2:?}; shift 2 ;;
    --server-cpu) server_cpu=${2:?}; shift 2 ;;
    --nats-cpu) nats_cpu=${2:?}; shift 2 ;;
    --bench-cpu) bench_cpu=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_cluster.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$build" = /* ]] || build="$PWD/$build"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run_cluster.sh: --runs must be a positive integer" >&2; exit 2; }
for s in $only; do
  [[ "$s" == max || "$s" == rate || "$s" == history ]] ||
    { echo "run_cluster.sh: --only takes max, rate, history" >&2; exit 2; }
done
bins=("$build/mles" "$build/mles-bench")
[[ "$with_raw" == 1 ]] && bins+=("$build/mles-raw-baseline")
for b in "${bins[@]}"; do
  [[ -x "$b" ]] || { echo "run_cluster.sh: $b not found (build it first)" >&2; exit 2; }
done
nats_bin=$(command -v nats-server) || { echo "run_cluster.sh: nats-server not found" >&2; exit 2; }
[[ -n "$out" ]] || out="$repo_dir/bench/results/cluster.md"
mkdir -p "$(dirname "$out")"
tsv="${out%.md}-runs.tsv"
tck=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/mles-cluster.XXXXXX)
pids=()      # every process started for the current run
declare -A pid_of
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  pids=()
  pid_of=()
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/www/localhost"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_log FILE PATTERN: up to 10 s
wait_log() {
  for _ in $(seq 100); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# These run in the script's own shell (not in $(...)): they record the pids they start, and
# return the port in $port_ret.
# start_nats: a fresh JetStream node with a fresh store
start_nats() {
  local port store="$work/js.$RANDOM$RANDOM"
  port_ret=
  port=$(free_port)
  mkdir -p "$store"
  : >"$work/nats.log"
  taskset -c "$nats_cpu" "$nats_bin" -js -sd "$store" -p "$port" -a 127.0.0.1 >"$work/nats.log" 2>&1 &
  pids+=($!)
  pid_of[nats]=$!
  wait_log "$work/nats.log" 'Server is ready' ||
    { echo "run_cluster.sh: nats-server did not start" >&2; sed 's/^/  | /' "$work/nats.log" >&2; return 1; }
  port_ret=$port
}

# start_server NAME BIN ARGS...: the log is $work/NAME.log
start_server() {
  local name=$1 bin=$2; shift 2
  port_ret=
  : >"$work/$name.log"
  taskset -c "$server_cpu" "$bin" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
  local line=
  for _ in $(seq 100); do
    line=$(grep -m1 'listening on ' "$work/$name.log" 2>/dev/null)
    [[ -n "$line" ]] && break
    sleep 0.1
  done
  [[ -n "$line" ]] || { echo "run_cluster.sh: $name did not start" >&2; sed 's/^/  | /' "$work/$name.log" >&2; return 1; }
  port_ret=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' <<<"$line")
  [[ -n "$port_ret" ]]
}

# start_mles NAME METRICS_PORT EXTRA_ARGS...
start_mles() {
  local name=$1 mport=$2; shift 2
  start_server "$name" "$build/mles" --no-tls --port 0 --bind 127.0.0.1 --threads 1 --domains localhost \
    --wwwroot "$work/www" --log-level info --metrics "127.0.0.1:$mport" "${mles_extra[@]}" "$@"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# metrics PORT: one scrape of a server's /metrics into $scraped
metrics() { scraped=$(curl -s --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null); }
# metric NAME: the value of one metric line of $scraped (0 if absent)
metric() { awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }' <<<"$scraped"; }

# run_once SCENARIO SETUP: sets $result to "key=value ..."; returns non-zero on a failure
run_once() {
  result=
  local scenario=$1 setup=$2 np pa pb ma mb
  local bench_args
  case "$scenario" in
    max) bench_args=(fanout --channels 1 --subscribers "$subscribers" --publishers 1 --size "$size"
                     --duration "$duration" --warmup 1 --json) ;;
    rate) bench_args=(fanout --channels 1 --subscribers "$subscribers" --publishers 1 --size "$size"
                      --rate "$rate" --duration "$duration" --warmup 1 --json) ;;
    history) bench_args=(history --history "$history" --size "$history_size" --joins "$joins"
                         --warmup-joins 5 --join-pause "$join_pause" --json) ;;
  esac
  # history: --limit N + 1 on every server, so that the last joiner's join frame, which in
  # cluster-two reaches the stream concurrently with the next fill, cannot push a message out
  mles_extra=()
  [[ "$scenario" == history ]] && mles_extra=(--limit "$((history + 1))")
  ma=$(free_port); mb=$(free_port)
  case "$setup" in
    raw)
      start_server a "$build/mles-raw-baseline" --port 0 || { stop_all; return 1; }
      pa=$port_ret
      bench_args+=(--port "$pa") ;;
    standalone)
      start_mles a "$ma" || { stop_all; return 1; }
      pa=$port_ret
      bench_args+=(--port "$pa") ;;
    cluster-one)
      start_nats || { stop_all; return 1; }
      np=$port_ret
      start_mles a "$ma" --nats "nats://127.0.0.1:$np" --server-id a || { stop_all; return 1; }
      pa=$port_ret
      bench_args+=(--port "$pa") ;;
    cluster-two)
      start_nats || { stop_all; return 1; }
      np=$port_ret
      start_mles a "$ma" --nats "nats://127.0.0.1:$np" --server-id a || { stop_all; return 1; }
      pa=$port_ret
      start_mles b "$mb" --nats "nats://127.0.0.1:$np" --server-id b --peer-linger 0.1 || { stop_all; return 1; }
      pb=$port_ret
      if [[ "$scenario" == history ]]; then bench_args+=(--port "$pa" --joiner-port "$pb")
      else bench_args+=(--port "$pb" --publisher-port "$pa"); fi ;;
  esac
  local -A t0
  local who
  for who in "${!pid_of[@]}"; do t0[$who]=$(cpu_ticks "${pid_of[$who]}"); done
  local s0 s1 json rc
  s0=$(date +%s.%N)
  json=$(timeout 180 taskset -c "$bench_cpu" "$build/mles-bench" "${bench_args[@]}" 2>"$work/bench.err" | tail -1)
  rc=${PIPESTATUS[0]}
  s1=$(date +%s.%N)
  local cpu=""
  for who in a b nats; do
    [[ -n "${pid_of[$who]:-}" ]] || continue
    cpu+=" cpu_$who=$(awk -v a="${t0[$who]}" -v b="$(cpu_ticks "${pid_of[$who]}")" -v t="$tck" -v w0="$s0" -v w1="$s1" \
      'BEGIN { printf "%.2f", (b - a) / t / (w1 - w0) }')"
  done
  local cl=""
  if [[ "$setup" == cluster-* ]]; then
    # Right after the bench: the outgoing queue to JetStream may still be draining (a backlog
    # shows as published - acknowledged and buffered bytes).
    metrics "$ma"
    cl+=" js_published=$(metric mles_cluster_published_total)"
    cl+=" js_acked=$(metric mles_cluster_acknowledged_total)"
    cl+=" js_dropped=$(metric mles_cluster_dropped_total)"
    cl+=" js_buffered=$(metric mles_cluster_buffered_bytes)"
    if [[ "$setup" == cluster-two ]]; then
      metrics "$mb"
      cl+=" b_received=$(metric mles_cluster_received_total)"
      cl+=" b_loaded=$(metric mles_cluster_history_loaded_total)"
      cl+=" b_load_failures=$(metric mles_cluster_history_load_failures_total)"
    fi
  fi
  stop_all
  if [[ "$rc" != 0 ]]; then
    echo "run_cluster.sh: mles-bench exit $rc:" >&2
    sed 's/^/  | /' "$work/bench.err" >&2
  fi
  result=$(python3 - "$json" "$cpu$cl" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
keys = ["delivered_per_s", "published_per_s", "latency_p50_us", "latency_p99_us", "lost", "duplicated",
        "reordered", "misrouted", "join_p50_us", "join_p99_us", "connect_p99_us", "history_frames_per_join"]
print(" ".join(f"{k}={r[k]}" for k in keys if k in r) + sys.argv[2])
PY
) || { sed 's/^/  | /' "$work/bench.err" >&2; result=; return 1; }
  return "$rc"
}

setups_for() {
  case "$1" in
    max) [[ "$with_raw" == 1 ]] && echo raw standalone cluster-one cluster-two || echo standalone cluster-one cluster-two ;;
    *) echo standalone cluster-one cluster-two ;;
  esac
}

declare -A col   # "scenario setup key" -> space-separated values over the runs
failed=0
loads=()
echo -e "run\tscenario\tsetup\tfigures\tload1" >"$tsv"
for i in $(seq "$runs"); do
  for scenario in $only; do
    for setup in $(setups_for "$scenario"); do
      run_once "$scenario" "$setup"
      ok=$?
      r=$result
      load=$(cut -d' ' -f1 /proc/loadavg)
      loads+=("$load")
      echo -e "$i\t$scenario\t$setup\t${r:-failed}\t$load" >>"$tsv"
      echo "run $i $scenario $setup: ${r:-failed} (load $load)" >&2
      if [[ $ok != 0 || -z "$r" ]]; then
        echo "run_cluster.sh: $scenario $setup run $i failed" >&2
        failed=1
      fi
      for kv in $r; do col["$scenario $setup ${kv%%=*}"]+="${kv#*=} "; done
      for k in lost duplicated reordered misrouted; do
        v=$(tr ' ' '\n' <<<"$r" | sed -n "s/^$k=//p")
        [[ -z "$v" || "$v" == 0 ]] || { echo "run_cluster.sh: $scenario $setup run $i: $k $v" >&2; failed=1; }
      done
    done
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "n/a"}'; }
med() { median "${col[$1 $2 $3]:-}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "n/a") printf "%.2f×", a / b; else print "n/a" }'; }
mega() { awk -v x="$1" 'BEGIN { if (x == "n/a") print x; else printf "%.2f M", x / 1e6 }'; }
kilo() { awk -v x="$1" 'BEGIN { if (x == "n/a") print x; else printf "%.1f k", x / 1e3 }'; }
us() { awk -v x="$1" 'BEGIN { if (x == "n/a") print x; else if (x >= 10000) printf "%.1f ms", x / 1e3; else printf "%.0f µs", x }'; }
label() {
  case "$1" in
    raw) echo "raw baseline (mles-raw-baseline)" ;;
    standalone) echo "standalone: one mles" ;;
    cluster-one) echo "cluster, one server: mles --nats, publisher and subscribers on it" ;;
    cluster-two) echo "cluster, two servers: publisher on A, subscribers on B, through NATS" ;;
  esac
}
cpus() {  # CPU share of each server process (cores) during the bench
  local s="" who v
  for who in a b nats; do
    v=$(med "$1" "$2" "cpu_$who")
    [[ "$v" == n/a ]] || s+="${s:+, }$who $v"
  done
  echo "${s:-n/a}"
}
{
  echo "Setup: 1 channel × $subscribers subscribers × 1 publisher, ${size} B, plain ws; mles --threads 1 on CPU $server_cpu,"
  echo "nats-server 2.9 (\`-js\`, fresh store per run) on CPU $nats_cpu, mles-bench on CPU $bench_cpu; medians of $runs alternating runs."
  echo
  if [[ " $only " == *" max "* ]]; then
    echo "| fan-out at max rate (${duration} s, window 256) | delivered msgs/s | published msgs/s | p50 / p99 latency | vs standalone | server CPU (cores: a, b, nats) |"
    echo "|---|---|---|---|---|---|"
    sd=$(med max standalone delivered_per_s)
    for setup in $(setups_for max); do
      d=$(med max "$setup" delivered_per_s)
      printf '| %s | %s | %s | %s / %s | %s | %s |\n' "$(label "$setup")" "$(mega "$d")" \
        "$(kilo "$(med max "$setup" published_per_s)")" "$(us "$(med max "$setup" latency_p50_us)")" \
        "$(us "$(med max "$setup" latency_p99_us)")" "$(ratio "$d" "$sd")" "$(cpus max "$setup")"
    done
    echo
  fi
  if [[ " $only " == *" rate "* ]]; then
    echo "| fan-out at $rate msgs/s (${duration} s) | delivered msgs/s | p50 latency | p99 latency | p99 vs standalone | server CPU (cores: a, b, nats) |"
    echo "|---|---|---|---|---|---|"
    sp=$(med rate standalone latency_p99_us)
    for setup in $(setups_for rate); do
      p=$(med rate "$setup" latency_p99_us)
      printf '| %s | %s | %s | %s | %s | %s |\n' "$(label "$setup")" "$(mega "$(med rate "$setup" delivered_per_s)")" \
        "$(us "$(med rate "$setup" latency_p50_us)")" "$(us "$p")" "$(ratio "$p" "$sp")" "$(cpus rate "$setup")"
    done
    echo
  fi
  if [[ " $only " == *" history "* ]]; then
    echo "| newcomer's join → ${history} × ${history_size} B history ($joins joins) | join p50 | join p99 | connect → history p99 | p99 vs standalone | history from |"
    echo "|---|---|---|---|---|---|"
    sp=$(med history standalone join_p99_us)
    for setup in $(setups_for history); do
      p=$(med history "$setup" join_p99_us)
      from="the server's memory"
      [[ "$setup" == cluster-one ]] && from="the server's memory (the join also claims its uid in the KV bucket)"
      [[ "$setup" == cluster-two ]] && from="JetStream (B: $(med history cluster-two b_loaded) messages loaded per run)"
      printf '| %s | %s | %s | %s | %s | %s |\n' "$(label "$setup")" "$(us "$(med history "$setup" join_p50_us)")" \
        "$(us "$p")" "$(us "$(med history "$setup" connect_p99_us)")" "$(ratio "$p" "$sp")" "$from"
    done
    echo
  fi
  echo "Publishing server's JetStream counters (medians per run; published / acknowledged / dropped):"
  for scenario in $only; do
    [[ "$scenario" == history ]] && continue
    for setup in cluster-one cluster-two; do
      echo "- $scenario $setup: $(med "$scenario" "$setup" js_published) / $(med "$scenario" "$setup" js_acked) / $(med "$scenario" "$setup" js_dropped)"
    done
  done
  echo
  echo "Load average (1 min) after each run: ${loads[*]}."
  echo "Every run's figures: $(basename "$tsv")."
} | tee "$out"
exit "$failed"
