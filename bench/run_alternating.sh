#!/usr/bin/env bash
# Compares servers on the fan-out scenarios of run_standard.sh in alternating runs: each round
# runs the raw baseline, then every named mles build, one run each, so load on this shared
# machine hits them alike; medians over the rounds, each as a ratio of the raw baseline's
# median, with the load average of every round written beside them.
#   bench/run_alternating.sh --runs 5 before=/tmp/old-build after=build
#   bench/run_alternating.sh memory=build disk=build disk+="--history-dir /tmp/h"
#   bench/run_alternating.sh one=build two=build two@="--threads 2 --server-cpu 0,1 --bench-cpu 0,1"
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run_alternating.sh [--runs N] [--duration S] [--tls] [--only 1,2] [--out FILE]
                                NAME=BUILD_DIR [NAME=BUILD_DIR ...]
  NAME=BUILD_DIR  an mles build to measure (DIR/mles); the raw baseline and mles-bench come
                  from the last one
  NAME+=ARGS      extra server arguments for NAME (e.g. disk+="--history-dir /tmp/h")
  NAME@=ARGS      extra run_standard.sh options for NAME (e.g. two@="--threads 2 --server-cpu 0,1");
                  the raw baseline always runs with run_standard.sh's defaults (CPU 0 / CPU 1)
  --runs N        rounds (default 5)   --duration S  measured seconds per run (default 5)
  --tls           mles over TLS (the raw baseline stays plain, as in BENCHMARKS.md)
  --only LIST     fan-out scenarios, 1 and/or 2 (default 1,2)
  --out FILE      Markdown output (default: bench/results/alternating.md)
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
runs=5
duration=5
tls=--plain
only=1,2
out=
names=()
dirs=()
declare -A extra
declare -A runopts
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --tls) tls=--tls; shift ;;
    --only) only=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *+=*) extra[${1%%+=*}]=${1#*+=}; shift ;;
    *@=*) runopts[${1%%@=*}]=${1#*@=}; shift ;;
    *=*) names+=("${1%%=*}"); d=${1#*=}; [[ "$d" = /* ]] || d="$PWD/$d"; dirs+=("$d"); shift ;;
    *) echo "run_alternating.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ ${#names[@]} -gt 0 ]] || { usage >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run_alternating.sh: --runs must be a positive integer" >&2; exit 2; }
last=${dirs[-1]}
[[ -n "$out" ]] || out="$repo_dir/bench/results/alternating.md"
mkdir -p "$(dirname "$out")"
work=$(mktemp -d /tmp/mles-alternating.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One build dir per name holding its mles, with the last build's bench and raw baseline.
for i in "${!names[@]}"; do
  mkdir -p "$work/${names[$i]}"
  ln -s "${dirs[$i]}/mles" "$work/${names[$i]}/mles"
  ln -s "$last/mles-bench" "$work/${names[$i]}/mles-bench"
  ln -s "$last/mles-raw-baseline" "$work/${names[$i]}/mles-raw-baseline"
done

# delivered msgs/s of scenario S in a run_standard.sh table
figure() {  # figure FILE SCENARIO
  awk -F'|' -v s="$2" '$2 ~ "^ *"s" *$" && $4 ~ /delivered/ { gsub(/[* ]/, "", $5); print $5 }' "$1" |
    awk '{ v = $1; if (v ~ /M$/) { sub(/M$/, "", v); v *= 1e6 } else if (v ~ /k$/) { sub(/k$/, "", v); v *= 1e3 } print v }'
}

# A row of scenario S in a run_standard.sh table, by its label: e.g. the server's CPU seconds
# (the whole run: connects, warmup and measurement) or the CPU shares while measuring.
row_value() {  # row_value FILE SCENARIO LABEL_REGEX
  awk -F'|' -v s="$2" -v l="$3" '{ id = $2; gsub(/ /, "", id); if (id != "") cur = id }
    cur == s && $4 ~ l { gsub(/[* ]/, "", $5); print $5 }' "$1"
}

declare -A values
declare -A cpus
declare -A server_shares
declare -A bench_shares
loads=()
for r in $(seq "$runs"); do
  for who in raw "${names[@]}"; do
    if [[ "$who" == raw ]]; then
      "$script_dir/run_standard.sh" --build "$work/${names[-1]}" --target raw --plain --runs 1 \
        --duration "$duration" --only "$only" --out "$work/r.md" >/dev/null 2>"$work/err" ||
        { echo "run_alternating.sh: raw run $r failed:" >&2; tail -3 "$work/err" >&2; }
    else
      "$script_dir/run_standard.sh" --build "$work/$who" --target mles "$tls" --runs 1 \
        --duration "$duration" --only "$only" --out "$work/r.md" ${extra[$who]:+--server-args "${extra[$who]}"} ${runopts[$who]:-} >/dev/null 2>"$work/err" ||
        { echo "run_alternating.sh: $who run $r failed:" >&2; tail -3 "$work/err" >&2; }
    fi
    for s in ${only//,/ }; do
      v=$(figure "$work/r.md" "$s")
      c=$(row_value "$work/r.md" "$s" "server CPU s [(]whole")
      ss=$(row_value "$work/r.md" "$s" "server CPU share")
      bs=$(row_value "$work/r.md" "$s" "bench CPU share")
      values[$who,$s]+="${v:-} "
      cpus[$who,$s]+="${c:-} "
      server_shares[$who,$s]+="${ss:-} "
      bench_shares[$who,$s]+="${bs:-} "
      echo "round $r $who scenario $s: ${v:-failed} delivered/s, server CPU ${c:-?} s, CPU shares while measuring: server ${ss:-?}, bench ${bs:-?}" >&2
    done
  done
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
{
  echo "| scenario (delivered msgs/s, 64 B, $([[ $tls == --tls ]] && echo "mles TLS" || echo plain)) | raw baseline | $(printf '%s | ' "${names[@]}")"
  echo "|---|---|$(printf -- '---|%.0s' "${names[@]}")"
  for s in ${only//,/ }; do
    [[ "$s" == 1 ]] && title="1 channel × 100 subscribers × 1 publisher" || title="100 channels × 10 subscribers × 1 publisher"
    raw=$(median "${values[raw,$s]:-}")
    row="| $title | $(awk -v v="$raw" 'BEGIN{printf "%.2f M", v/1e6}') |"
    for n in "${names[@]}"; do
      m=$(median "${values[$n,$s]:-}")
      row+=" $(awk -v v="$m" -v b="$raw" 'BEGIN{ if (b > 0) printf "%.2f M (%.2f×)", v/1e6, v/b; else printf "%.2f M", v/1e6 }') |"
    done
    echo "$row"
  done
  echo
  echo "Medians of $runs alternating rounds (raw, then $(IFS=,; echo "${names[*]}")), ${duration} s each, server and bench pinned to separate CPUs unless stated; load average (1 min) after each round: ${loads[*]}."
  for n in "${names[@]}"; do
    [[ -n "${runopts[$n]:-}" ]] && echo "- $n: run_standard.sh ${runopts[$n]}"
  done
  echo
  echo "Server CPU seconds per run (median; each run is $((duration + 1)) s of traffic plus connects): raw $(for s in ${only//,/ }; do printf 'sc%s %s ' "$s" "$(median "${cpus[raw,$s]:-}")"; done)$(for n in "${names[@]}"; do printf '; %s ' "$n"; for s in ${only//,/ }; do printf 'sc%s %s ' "$s" "$(median "${cpus[$n,$s]:-}")"; done; done)"
  echo
  echo "Share of a CPU while measuring (median; server / bench: a bench near 1.00 set the pace, not the server): raw $(for s in ${only//,/ }; do printf 'sc%s %s/%s ' "$s" "$(median "${server_shares[raw,$s]:-}")" "$(median "${bench_shares[raw,$s]:-}")"; done)$(for n in "${names[@]}"; do printf '; %s ' "$n"; for s in ${only//,/ }; do printf 'sc%s %s/%s ' "$s" "$(median "${server_shares[$n,$s]:-}")" "$(median "${bench_shares[$n,$s]:-}")"; done; done)"
} | tee "$out"
