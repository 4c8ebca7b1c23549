#!/usr/bin/env bash
# Replays the memory attacks of issue 9 against build/mles started with the global memory
# bounds, one fresh server per attack, and prints what was sent, the server's peak and end
# RSS against the configured budget, what it refused, and whether a healthy client could still
# join, publish and receive during and after the attack. See bench/README.md ("run_abuse.sh").
#
#   bench/run_abuse.sh [--build build] [--only "a b c d e a-unbounded"] [--out FILE]
#                      [--settle 62] [--a-duration 25] [--b-duration 60] [--unbounded-cap-mib 2048]
#                      [--unbounded-seconds 30] [--server-env "MALLOC_ARENA_MAX=2"]
#
# Every wait has a deadline; the server is stopped (TERM, KILL after 5 s) on any exit.
set -u -o pipefail

BUILD=build
ONLY="a a-keep b c d e a-unbounded"
OUT=""
SETTLE=62          # keep the server up this long after its start: the "memory bounds:" warning
                   # comes at most once a minute, the second one carries the rest of the counts
A_DURATION=25
B_DURATION=60
UNB_CAP_MIB=2048
UNB_SECONDS=30
SERVER_ENV=""
BOUNDS="--history-total 256MiB --max-channels 100000 --max-inflight 128MiB --message-timeout 10 --max-message 16MiB"
HISTORY_TOTAL_MIB=256
INFLIGHT_MIB=128
BASE_MIB=30
PER_CONN_KIB=2     # README: about 1.1 KB per idle plain connection (2 KiB: with a margin)

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --settle) SETTLE="$2"; shift 2 ;;
    --a-duration) A_DURATION="$2"; shift 2 ;;
    --b-duration) B_DURATION="$2"; shift 2 ;;
    --unbounded-cap-mib) UNB_CAP_MIB="$2"; shift 2 ;;
    --unbounded-seconds) UNB_SECONDS="$2"; shift 2 ;;
    --server-env) SERVER_ENV="$2"; shift 2 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "run_abuse.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

MLES="$BUILD/mles"
TOOL="$BUILD/mles-abuse"
for b in "$MLES" "$TOOL"; do
  [[ -x "$b" ]] || { echo "run_abuse.sh: $b not built (cmake --build --preset release --target mles mles-abuse)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/mles-abuse.XXXXXX)
mkdir -p "$WORK/www/localhost"
echo "<p>abuse</p>" > "$WORK/www/localhost/index.html"
SERVER_PID=""
SAMPLER_PID=""

stop_server() {
  [[ -n "$SAMPLER_PID" ]] && { kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""; }
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  [[ -n "$SERVER_PID" ]] && wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

# start_server NAME ARGS...: fresh server, sets SERVER_PID and PORT; log in $WORK/NAME.log
start_server() {
  local name="$1"; shift
  local log="$WORK/$name.log"
  : > "$log"
  # shellcheck disable=SC2086
  env $SERVER_ENV "$MLES" --no-tls --bind 127.0.0.1 --port 0 --threads 1 --domains localhost \
      --wwwroot "$WORK/www" --log-level warn "$@" 2> "$log" > /dev/null &
  SERVER_PID=$!
  SERVER_START=$(date +%s.%N)
  PORT=""
  for _ in $(seq 100); do
    PORT=$(grep -o 'listening on [^ ]*' "$log" | head -1 | grep -o ':[0-9]*$' | tr -d :)
    [[ -n "$PORT" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$PORT" ]] || { echo "run_abuse.sh: server did not start:" >&2; cat "$log" >&2; exit 1; }
}

# sampler FILE CAP_KIB: VmRSS and VmHWM (KiB) every 250 ms; kills the server over CAP_KIB (0: no cap)
start_sampler() {
  local file="$1" cap="$2" pid="$SERVER_PID"
  : > "$file"
  (
    t0=$(date +%s%N)
    while kill -0 "$pid" 2>/dev/null; do
      rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      [[ -n "$rss" ]] || break
      echo "$(( ($(date +%s%N) - t0) / 1000000 )) $rss $hwm" >> "$file"
      if [[ "$cap" -gt 0 && "$rss" -gt "$cap" ]]; then
        echo "KILLED at ${rss} KiB" >> "$file"
        kill -KILL "$pid" 2>/dev/null
        break
      fi
      sleep 0.25
    done
  ) &
  SAMPLER_PID=$!
}

rss_now() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# probe LABEL: a healthy pair joins a fresh channel, one publishes, the other must receive in 5 s
probe() {
  local out
  out=$(timeout 15 "$TOOL" probe --port "$PORT" --timeout 5 2>&1) || true
  echo "$1: ${out:-probe fail (no output)}"
}

# The server warns at most once a minute: after the first "memory bounds:" line, wait for the
# second (it carries the rest of the counts) until 62 s after the first; without any, until the
# server has been up SETTLE s. Never more than SETTLE + 5 s.
settle() {
  local log="$WORK/$1.log" start; start=$(date +%s)
  while (( $(date +%s) - start < SETTLE + 5 )); do
    kill -0 "$SERVER_PID" 2>/dev/null || return
    local n; n=$(grep -c 'memory bounds:' "$log")
    [[ "$n" -ge 2 ]] && return
    local until_s
    if [[ "$n" -ge 1 ]]; then
      local first; first=$(grep -m1 'memory bounds:' "$log" | cut -d' ' -f1)
      until_s=$(awk -v f="$(date -d "$first" +%s.%N 2>/dev/null || echo 0)" -v w="$SETTLE" 'BEGIN { printf "%d", f + w + 1 }')
    else
      until_s=$(awk -v s="$SERVER_START" -v w="$SETTLE" 'BEGIN { printf "%d", s + w }')
    fi
    (( $(date +%s) >= until_s )) && return
    sleep 1
  done
}

ROWS=()
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# run_attack ID DESCRIPTION CONNS BOUNDED(1/0) TOOL_TIMEOUT TOOL_ARGS...
run_attack() {
  local id="$1" desc="$2" conns="$3" bounded="$4" ttimeout="$5"; shift 5
  local dir="$WORK/$id"; mkdir -p "$dir"
  echo
  echo "=== attack $id: $desc"
  if [[ "$bounded" == 1 ]]; then
    # shellcheck disable=SC2086
    start_server "$id" $BOUNDS
    start_sampler "$dir/rss.txt" 0
  else
    start_server "$id" --history-total 1TiB --max-message 16MiB
    start_sampler "$dir/rss.txt" $(( UNB_CAP_MIB * 1024 ))
  fi
  sleep 0.5
  local rss0; rss0=$(rss_now)
  echo "server pid $SERVER_PID port $PORT, RSS before: $(mib "$rss0") MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
  local probe_mid_file="$dir/probe-mid.txt"
  ( sleep "$(awk -v t="$ttimeout" 'BEGIN { printf "%.1f", t / 3 }')"; probe "probe during" > "$probe_mid_file" ) &
  local probe_pid=$!
  timeout "$ttimeout" "$TOOL" "$@" --port "$PORT" > "$dir/tool.txt" 2>&1
  local trc=$?
  wait "$probe_pid" 2>/dev/null
  cat "$dir/tool.txt"
  [[ $trc -ne 0 ]] && echo "(tool exit status $trc)"
  local alive=yes
  kill -0 "$SERVER_PID" 2>/dev/null || alive=no
  local rss_after=0
  [[ "$alive" == yes ]] && rss_after=$(rss_now)
  local probe_mid; probe_mid=$(cat "$probe_mid_file")
  local probe_after="probe after: server gone"
  [[ "$alive" == yes ]] && probe_after=$(probe "probe after")
  echo "$probe_mid"
  echo "$probe_after"
  [[ "$alive" == yes && "$bounded" == 1 ]] && settle "$id"
  local rss_end=0
  kill -0 "$SERVER_PID" 2>/dev/null && rss_end=$(rss_now)
  local hwm; hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
  local peak; peak=$(awk '$2 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { print m + 0 }' "$dir/rss.txt")
  [[ -n "$hwm" && "$hwm" -gt "$peak" ]] && peak=$hwm
  local killed; killed=$(grep -o 'KILLED.*' "$dir/rss.txt" || true)
  stop_server
  local warn; warn=$(grep -h 'memory bounds:' "$WORK/$id.log" | sed 's/.*memory bounds: //' || true)
  local crash; crash=$(grep -hiE 'terminate|abort|segmentation|std::bad_alloc' "$WORK/$id.log" || true)
  local budget_kib=$(( (HISTORY_TOTAL_MIB + INFLIGHT_MIB + BASE_MIB) * 1024 + conns * PER_CONN_KIB ))
  echo "peak RSS $(mib "$peak") MiB (VmHWM), RSS right after the attack $(mib "$rss_after") MiB, at the end $(mib "$rss_end") MiB (server up $(awk -v s="$SERVER_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.0f", n - s }') s)"
  if [[ "$bounded" == 1 ]]; then
    echo "budget: history-total ${HISTORY_TOTAL_MIB} + max-inflight ${INFLIGHT_MIB} + base ${BASE_MIB} MiB + ${conns} connections x ${PER_CONN_KIB} KiB = $(mib "$budget_kib") MiB: $([[ "$peak" -le "$budget_kib" ]] && echo held || echo "EXCEEDED by $(mib $(( peak - budget_kib ))) MiB")"
  else
    echo "no bounds (--history-total 1TiB); ${killed:-not killed} (cap ${UNB_CAP_MIB} MiB, ${UNB_SECONDS} s)"
  fi
  echo "server warnings (memory bounds):"; [[ -n "$warn" ]] && echo "$warn" | sed 's/^/  /' || echo "  none"
  [[ -n "$crash" ]] && echo "SERVER CRASH LINES: $crash"
  [[ "$alive" == no && -z "$killed" ]] && echo "SERVER DIED DURING THE ATTACK"
  grep -h 'exit\|error' "$WORK/$id.log" | grep -v 'memory bounds' | head -5 | sed 's/^/  server log: /'
  # Table row
  local sent refusals
  sent=$(awk '/^channels_filled|^channels_made|^messages_sent|^bytes_sent|^requests|^prefix_complete|^dribbled_bytes|^channels_per_s|^sent_mib_per_s|^seconds/ { printf "%s%s %s", sep, $1, $2; sep = ", " }' "$dir/tool.txt")
  refusals=$(sed -n 's/^outcome summary //p' "$dir/tool.txt")
  local closed; closed=$(sed -n 's/^closed_after_s //p' "$dir/tool.txt")
  [[ -n "$closed" ]] && refusals="$refusals; closed after (s): $closed"
  local budget_cell
  if [[ "$bounded" == 1 ]]; then budget_cell="$(mib "$budget_kib") MiB"; else budget_cell="none (cap ${UNB_CAP_MIB} MiB kill)"; fi
  ROWS+=("| $id | $desc | $sent | $(mib "$peak") MiB | $(mib "$rss_after") / $(mib "$rss_end") MiB | $budget_cell | ${refusals:-none}${warn:+; server: ${warn//$'\n'/ + }}${killed:+; $killed} | ${probe_mid#probe during: } / ${probe_after#probe after: } |")
}

for id in $ONLY; do
  case "$id" in
    a) run_attack a "1 client, channels of 32 x 1 MiB, leaves each" 2 1 $(( A_DURATION + 30 )) \
         a --duration "$A_DURATION" --concurrency 2 ;;
    a-keep) run_attack a-keep "as a, but stays in every channel" 64 1 $(( A_DURATION + 30 )) \
         a --duration "$A_DURATION" --concurrency 2 --keep ;;
    b) run_attack b "one-message channels, 32 connections churning" 32 1 $(( B_DURATION + 30 )) \
         b --duration "$B_DURATION" --concurrency 32 ;;
    c) run_attack c "100 x 15 MiB of a 16 MiB message, held" 100 1 60 \
         c --connections 100 --hold 15 ;;
    d) run_attack d "60 x 1 MiB of a 16 MiB message + 1 B every 2 s" 60 1 60 \
         d --connections 60 --interval 2 --hold 30 ;;
    e) run_attack e "500 POST / announcing 1 MiB" 500 1 90 \
         e --requests 500 ;;
    a-unbounded) run_attack a-unbounded "as a, WITHOUT bounds" 2 0 $(( UNB_SECONDS + 5 )) \
         a --duration "$UNB_SECONDS" --concurrency 2 ;;
    *) echo "run_abuse.sh: unknown attack $id" >&2 ;;
  esac
done

TABLE=$(
  echo "Load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg). Server env: ${SERVER_ENV:-none}."
  echo
  echo "| attack | what | sent | peak RSS | RSS after / end | budget + overhead | refusals (tool; server warning) | probe during / after |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
)
echo
echo "$TABLE"
if [[ -n "$OUT" ]]; then echo "$TABLE" > "$OUT"; echo "written to $OUT"; fi
echo "logs in $WORK"
