#!/usr/bin/env bash
# Issue 11, items 4 and 5: latency under load (with and without a subscriber that never reads)
# and large messages, in alternating rounds: raw baseline, mles plain, mles TLS, one run each
# per round, fresh server per run (CPU 0), mles-bench on CPU 1, load average after each round;
# before each latency round, the latency floor the two CPUs' own stalls set (mles-bench stalls).
#   bench/run_latency.sh --runs 5                       # both parts
#   bench/run_latency.sh --runs 5 --only large --large-window-bytes 3145728
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run_latency.sh [--build DIR] [--runs N] [--duration S] [--only latency,large]
                            [--setups raw,plain,tls] [--large-window-bytes B] [--sizes "65536 1048576"]
                            [--stall-warmup S] [--stall-probe S] [--max-load L] [--max-waits N] [--out FILE]
  --build DIR       build with mles, mles-bench, mles-raw-baseline (default build)
  --runs N          alternating rounds (default 5)
  --duration S      measured seconds per run (default 5)
  --only LIST       latency (1 ch x 100 sub x 1 pub, 64 B: max rate, half of it, half of it with
                    --stalled 1) and/or large (1 ch x 10 sub x 1 pub, --sizes, max rate)
  --setups LIST     raw (plain baseline), plain (mles), tls (mles over TLS); default all three
  --large-window-bytes B  mles-bench --window-bytes for the large runs (default 3 MiB: a
                    1 MiB message then has 2 in flight, a 64 KiB one 47; the server's per-member
                    queue limit is 4 MiB)
  --stall-warmup S  warm-up of the half-rate runs (default 0.25: the stalled member is dropped
                    about a second after the start, the split window must start before that)
  --stall-probe S   seconds of mles-bench stalls on CPUs 0 and 1 before each latency round
                    (default 3): the latency floor the CPUs' own stalls set
  --max-load L      before each round wait (at most --max-waits times 30 s, default 10) while
                    the 1-minute load average is above L (default 3)
  --out FILE        Markdown output (default bench/results/latency.md); every run's figures go
                    to FILE with .tsv instead of .md
Exit status: 0 every run passed, 1 some run failed, 2 usage error.
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
build=build
runs=5
duration=5
only=latency,large
setups=raw,plain,tls
large_window_bytes=$((3 << 20))
sizes="65536 1048576"
stall_warmup=0.25
stall_probe_s=3
max_load=3
max_waits=10
out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --setups) setups=${2:?}; shift 2 ;;
    --large-window-bytes) large_window_bytes=${2:?}; shift 2 ;;
    --sizes) sizes=${2:?}; shift 2 ;;
    --stall-warmup) stall_warmup=${2:?}; shift 2 ;;
    --stall-probe) stall_probe_s=${2:?}; shift 2 ;;
    --max-load) max_load=${2:?}; shift 2 ;;
    --max-waits) max_waits=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_latency.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$build" = /* ]] || build="$repo_dir/$build"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run_latency.sh: --runs must be a positive integer" >&2; exit 2; }
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "run_latency.sh: --duration must be a number" >&2; exit 2; }
[[ "$stall_probe_s" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v s="$stall_probe_s" 'BEGIN { exit !(s >= 0.1 && s <= 600) }' ||
  { echo "run_latency.sh: --stall-probe must be a number of seconds from 0.1 to 600" >&2; exit 2; }
[[ "$large_window_bytes" =~ ^[0-9]+$ ]] || { echo "run_latency.sh: --large-window-bytes must be an integer" >&2; exit 2; }
for s in ${setups//,/ }; do
  [[ "$s" =~ ^(raw|plain|tls)$ ]] || { echo "run_latency.sh: unknown setup $s (raw, plain, tls)" >&2; exit 2; }
done
for p in ${only//,/ }; do
  [[ "$p" =~ ^(latency|large)$ ]] || { echo "run_latency.sh: unknown part $p (latency, large)" >&2; exit 2; }
done
for b in mles mles-bench mles-raw-baseline; do
  [[ -x "$build/$b" ]] || { echo "run_latency.sh: $build/$b not found (build it first)" >&2; exit 2; }
done
for tool in taskset timeout; do
  command -v "$tool" >/dev/null || { echo "run_latency.sh: $tool is required" >&2; exit 2; }
done
[[ -n "$out" ]] || out="$repo_dir/bench/results/latency.md"
mkdir -p "$(dirname "$out")"
tsv="${out%.md}.tsv"

work=$(mktemp -d /tmp/mles-latency.XXXXXX)
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
# shellcheck disable=SC2317
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# mles's --max-message default (16 MiB, `mles --help`) already takes 1 MiB messages; sizes
# above it would need --max-message here.
mles_extra=
server_cmd() {  # server_cmd SETUP
  case "$1" in
    raw) echo "$build/mles-raw-baseline --port 0" ;;
    plain) echo "$build/mles --no-tls --port 0 --threads 1 --domains localhost --wwwroot $work/www --log-level warn $mles_extra" ;;
    tls) echo "$build/mles --self-signed --port 0 --threads 1 --domains localhost --wwwroot $work/www --log-level warn $mles_extra" ;;
  esac
}

start_server() {  # start_server SETUP; sets server_pid, server_port
  mkdir -p "$work/www/localhost"
  : >"$work/server.log"
  # shellcheck disable=SC2046
  taskset -c 0 $(server_cmd "$1") >"$work/server.log" 2>&1 &
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
    echo "run_latency.sh: $1 server did not start:" >&2
    sed 's/^/  | /' "$work/server.log" | head -5 >&2
    stop_server
    return 1
  fi
}

server_cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server_pid/stat" 2>/dev/null || echo 0
}

json_get() { sed -nE "s/.*\"$1\":\"?([^,\"}]*).*/\1/p"; }

# bench SETUP ARGS...: one run on a fresh server; prints the JSON line (empty on failure) and
# appends ",server_cpu_s" to it.
failures=0
bench() {
  local setup=$1; shift
  start_server "$setup" || { failures=$((failures + 1)); return 0; }
  local tls_flag=
  [[ "$setup" == tls ]] && tls_flag=--tls
  local cpu0 cpu1 rc json
  cpu0=$(server_cpu_seconds)
  # shellcheck disable=SC2086
  timeout -k 5 120 taskset -c 1 "$build/mles-bench" fanout "$@" --port "$server_port" $tls_flag --json \
    >"$work/bench.out" 2>"$work/bench.err"
  rc=$?
  cpu1=$(server_cpu_seconds)
  kill -0 "$server_pid" 2>/dev/null || { echo "run_latency.sh: $setup server died" >&2; rc=99; }
  stop_server
  json=$(grep '^{' "$work/bench.out" | tail -n 1)
  if [[ $rc -ne 0 || -z "$json" ]]; then
    echo "run_latency.sh: $setup run failed (exit $rc): $(grep -m1 . "$work/bench.err")" >&2
    failures=$((failures + 1))
    [[ $rc -eq 1 && -n "$json" ]] || return 0  # integrity failures keep their figures
  fi
  echo "${json%\}},\"server_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')}"
}

wait_for_quiet() {
  local i
  for i in $(seq "$max_waits"); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$max_load" 'BEGIN { exit !(l > m) }' || return 0
    echo "run_latency.sh: load average $(cut -d' ' -f1-3 /proc/loadavg) > $max_load, waiting 30 s ($i/$max_waits)" >&2
    sleep 30
  done
  echo "run_latency.sh: load still high, measuring anyway" >&2
}

declare -A vals   # vals[setup,key] = "v1 v2 ..."
add() { vals[$1,$2]+="${3:-nan} "; }
printf 'round\tsetup\tpart\tfigures\n' >"$tsv"
loads=()
lat_warm=(--channels 1 --subscribers 100 --publishers 1 --size 64)
for r in $(seq "$runs"); do
  wait_for_quiet
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  if [[ ",$only," == *",latency,"* ]]; then
    # What the two CPUs' own stalls (host preemption, interrupts) leave to any relay, measured
    # with nothing else running: the floor under every latency figure of this round.
    j=$(timeout -k 5 60 "$build/mles-bench" stalls --cpus 0,1 --duration "$stall_probe_s" --json 2>"$work/stalls.err" | grep '^{' | tail -n 1)
    if [[ -z "$j" ]]; then
      echo "run_latency.sh: mles-bench stalls failed: $(grep -m1 . "$work/stalls.err")" >&2
      failures=$((failures + 1))
    fi
    printf '%s\t%s\t%s\t%s\n' "$r" cpus stalls "$j" >>"$tsv"
    add cpus floor_p50 "$(json_get floor_p50_us <<<"$j")"
    add cpus floor_p99 "$(json_get floor_p99_us <<<"$j")"
    add cpus floor_p999 "$(json_get floor_p999_us <<<"$j")"
    add cpus late_1ms "$(json_get late_share_at_1000us <<<"$j")"
    add cpus over_1ms "$(json_get stalls_over_1ms_per_s <<<"$j")"
    add cpus longest "$(json_get longest_stall_us <<<"$j")"
  fi
  for setup in ${setups//,/ }; do
    if [[ ",$only," == *",latency,"* ]]; then
      j=$(bench "$setup" "${lat_warm[@]}" --warmup 1 --duration "$duration")
      printf '%s\t%s\tmax\t%s\n' "$r" "$setup" "$j" >>"$tsv"
      pub=$(json_get published_per_s <<<"$j")
      add "$setup" max_delivered "$(json_get delivered_per_s <<<"$j")"
      add "$setup" max_published "$pub"
      add "$setup" max_p99 "$(json_get latency_p99_us <<<"$j")"
      if [[ -n "$pub" ]]; then
        half=$(awk -v p="$pub" 'BEGIN { printf "%.0f", p / 2 }')
        add "$setup" half_rate "$half"
        j=$(bench "$setup" "${lat_warm[@]}" --rate "$half" --warmup "$stall_warmup" --duration "$duration")
        printf '%s\t%s\thalf\t%s\n' "$r" "$setup" "$j" >>"$tsv"
        add "$setup" half_delivered "$(json_get delivered_per_s <<<"$j")"
        add "$setup" half_p50 "$(json_get latency_p50_us <<<"$j")"
        add "$setup" half_p99 "$(json_get latency_p99_us <<<"$j")"
        add "$setup" half_p999 "$(json_get latency_p999_us <<<"$j")"
        add "$setup" half_lag99 "$(json_get send_lag_p99_us <<<"$j")"
        add "$setup" half_cpu "$(json_get server_cpu_s <<<"$j")"
        # Long enough for the stalled member to be dropped: ~8.5 MB (4 MiB server queue, ~4 MiB
        # kernel send buffer, 128 KiB receive buffer) of 66-byte frames, with a margin, plus 2 s;
        # at most 60 s.
        dur_st=$(awk -v d="$duration" -v h="$half" 'BEGIN { t = 11e6 / (66 * h) + 2; if (t < d) t = d; if (t > 60) t = 60; printf "%.1f", t }')
        j=$(bench "$setup" "${lat_warm[@]}" --rate "$half" --warmup "$stall_warmup" --duration "$dur_st" --stalled 1)
        printf '%s\t%s\tstalled\t%s\n' "$r" "$setup" "$j" >>"$tsv"
        add "$setup" st_disc "$(json_get stalled_disconnect_s <<<"$j")"
        add "$setup" st_win "$(json_get while_stalled_s <<<"$j")"
        add "$setup" st_delivered "$(json_get while_stalled_delivered_per_s <<<"$j")"
        add "$setup" st_p50 "$(json_get while_stalled_p50_us <<<"$j")"
        add "$setup" st_p99 "$(json_get while_stalled_p99_us <<<"$j")"
        add "$setup" st_after_delivered "$(json_get after_stalled_delivered_per_s <<<"$j")"
        add "$setup" st_after_p99 "$(json_get after_stalled_p99_us <<<"$j")"
        add "$setup" st_lost "$(( $(json_get lost <<<"$j" || echo 0) + 0 ))"
      fi
      echo "round $r $setup latency: done (p99 at half rate so far: ${vals[$setup,half_p99]:-none})" >&2
    fi
    if [[ ",$only," == *",large,"* ]]; then
      for size in $sizes; do
        j=$(bench "$setup" --channels 1 --subscribers 10 --publishers 1 --size "$size" --window 100000 \
              --window-bytes "$large_window_bytes" --warmup 1 --duration "$duration")
        printf '%s\t%s\tlarge-%s\t%s\n' "$r" "$setup" "$size" "$j" >>"$tsv"
        add "$setup" "large${size}_bytes" "$(json_get delivered_bytes_per_s <<<"$j")"
        add "$setup" "large${size}_p50" "$(json_get latency_p50_us <<<"$j")"
        add "$setup" "large${size}_p99" "$(json_get latency_p99_us <<<"$j")"
        add "$setup" "large${size}_window" "$(json_get window <<<"$j")"
        add "$setup" "large${size}_cpu" "$(json_get server_cpu_s <<<"$j")"
        echo "round $r $setup large $size: $(json_get delivered_mib_per_s <<<"$j") MiB/s" >&2
      done
    fi
  done
  loads+=("$load_before→$(cut -d' ' -f1 /proc/loadavg)")
done

median() { tr ' ' '\n' <<<"$1" | grep -E '^-?[0-9.]+$' | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "nan"}'; }
m() { median "${vals[$1,$2]:-}"; }
runs_of() { sed 's/ $//; s/ /, /g' <<<"${vals[$1,$2]:-}"; }
rate() { awk -v v="$1" 'BEGIN { if (v == "nan") print "–"; else if (v >= 1e6) printf "%.2f M", v / 1e6; else if (v >= 1e3) printf "%.1f k", v / 1e3; else printf "%.0f", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "–"; else printf "%.2f×", a / b }'; }
label() { case "$1" in raw) echo "raw baseline" ;; plain) echo "mles plain" ;; tls) echo "mles TLS" ;; esac; }

commit=$(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "## Latency under load and large messages ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit)"
  echo
  echo "Alternating rounds ($runs): $(sed 's/,/, /g' <<<"$setups"), one run each per round, fresh server per run on CPU 0, mles-bench on CPU 1, ${duration} s measured. Load average (1 min) before→after each round: ${loads[*]}."
  if [[ ",$only," == *",latency,"* ]]; then
    echo
    echo "### Latency: 1 channel × 100 subscribers × 1 publisher, 64 B"
    echo
    echo "| setup | max rate: published msgs/s | delivered msgs/s | half rate (msgs/s per publisher) | p50 µs | p99 µs | p99.9 µs | bench's send lag p99 µs | server CPU s |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for s in ${setups//,/ }; do
      echo "| $(label "$s") | $(rate "$(m "$s" max_published)") | $(rate "$(m "$s" max_delivered)") | $(rate "$(m "$s" half_rate)") | **$(m "$s" half_p50)** | **$(m "$s" half_p99)** | $(m "$s" half_p999) | $(m "$s" half_lag99) | $(m "$s" half_cpu) |"
    done
    echo "| CPU stalls alone: floor (no server, no load) | | | | $(m cpus floor_p50) | **$(m cpus floor_p99)** | $(m cpus floor_p999) | | |"
    echo
    echo "Half-rate runs: p99 per run: $(for s in ${setups//,/ }; do printf '%s: %s; ' "$(label "$s")" "$(runs_of "$s" half_p99)"; done)"
    echo
    echo "CPU stalls (\`mles-bench stalls --cpus 0,1 --duration $stall_probe_s\` before each round, nothing else running): stalls over 1 ms per s (both CPUs): $(runs_of cpus over_1ms); longest µs: $(runs_of cpus longest); share of instants a 1 ms deadline is missed by the stalls alone: $(runs_of cpus late_1ms); p99 floor µs: $(runs_of cpus floor_p99). No relay whose messages cross both CPUs has a lower p99 than the floor, even at zero load; under load a stall also leaves a backlog."
    echo
    echo "### One of the 100 subscribers never reads (--stalled 1, same half rate)"
    echo
    echo "Figures of the 99 others while the stalled one was connected (from the start of the measured window to its disconnection), then after; delivered msgs/s per receiving member relative to the run without the stalled member (99 vs 100 receivers)."
    echo
    echo "| setup | disconnected after (s since measuring started, runs) | window while stalled (s, median) | others' p99 µs while stalled | vs no stall | others' delivered/s per member while stalled | vs no stall | p99 µs after | lost |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for s in ${setups//,/ }; do
      per_st=$(awk -v v="$(m "$s" st_delivered)" 'BEGIN { if (v == "nan") print "nan"; else print v / 99 }')
      per_half=$(awk -v v="$(m "$s" half_delivered)" 'BEGIN { if (v == "nan") print "nan"; else print v / 100 }')
      echo "| $(label "$s") | $(runs_of "$s" st_disc) | $(m "$s" st_win) | **$(m "$s" st_p99)** | $(ratio "$(m "$s" st_p99)" "$(m "$s" half_p99)") | $(rate "$per_st") | $(ratio "$per_st" "$per_half") | $(m "$s" st_after_p99) | $(runs_of "$s" st_lost) |"
    done
  fi
  if [[ ",$only," == *",large,"* ]]; then
    echo
    echo "### Large messages: 1 channel × 10 subscribers × 1 publisher, max rate, --window-bytes $large_window_bytes"
    echo
    echo "| size | setup | window (msgs) | delivered MB/s (median) | vs raw | p50 µs | p99 µs | server CPU s | runs (MB/s) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for size in $sizes; do
      raw_b=$(m raw "large${size}_bytes")
      for s in ${setups//,/ }; do
        b=$(m "$s" "large${size}_bytes")
        runs_mb=$(tr ' ' '\n' <<<"${vals[$s,large${size}_bytes]:-}" | grep -E '^[0-9.]+$' | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 / 1e6 }')
        echo "| $size | $(label "$s") | $(m "$s" "large${size}_window") | **$(awk -v v="$b" 'BEGIN { if (v == "nan") print "–"; else printf "%.0f", v / 1e6 }')** | $(ratio "$b" "$raw_b") | $(m "$s" "large${size}_p50") | $(m "$s" "large${size}_p99") | $(m "$s" "large${size}_cpu") | $runs_mb |"
      done
    done
  fi
} | tee "$out"
echo "run_latency.sh: written to $out (every run: $tsv)" >&2
[[ $failures -eq 0 ]] || { echo "run_latency.sh: $failures run(s) failed" >&2; exit 1; }
exit 0
