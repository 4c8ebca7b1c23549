#!/usr/bin/env bash
# Static-file benchmark: mles against Debian's nginx serving the same files on the same machine,
# one core each, same load tool (wrk), keep-alive, plain HTTP and TLS. Prints a Markdown table
# (also written to --out).
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/web/run_web.sh [--build DIR] [--runs N] [--duration S] [--conns N] [--out FILE]
                            [--server-cpu N] [--bench-cpu N] [--only nginx|mles]

  --build DIR       build directory holding mles (default: build)
  --runs N          wrk runs per cell, median reported (default 3)
  --duration S      seconds per wrk run (default 5; plus a 1 s warm-up per cell and server)
  --conns N         keep-alive connections (default 32), one wrk thread
  --out FILE        Markdown output (default: bench/results/web.md)
  --server-cpu N    CPU for both servers (default 0); --bench-cpu N: CPU for wrk (default 1)
  --only S          benchmark only nginx or only mles

Files: 1k.bin (1 KiB) and 100k.bin (100 KiB) of random bytes in <tmp>/www/localhost/, served as
application/octet-stream (wrk sends no Accept-Encoding: no compression on either side).
nginx: its own config in the temp dir, 1 worker, worker_cpu_affinity + taskset on the server
CPU, sendfile on, gzip off, keep-alive (unbounded requests per connection), access log off.
mles:  --threads 1 --log-level warn, taskset on the server CPU; --no-tls for plain,
--tls-cert/--tls-key for TLS. Both use the same ECDSA P-256 self-signed certificate (openssl).
wrk:   taskset -c <bench-cpu> wrk -t1 -c<conns> -d<S>s --latency -H 'Host: localhost'
       http(s)://127.0.0.1:<port>/<file>. Runs of nginx and mles alternate (drift hits both).
A cell whose pre-check (curl: status 200, exact size, connection re-used) or any run fails shows
the reason instead of figures. Installs nginx-light, wrk, curl when missing (apt-get).
Exit status: 0 all cells measured, 1 some cell failed, 2 usage or setup error.
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/../.." && pwd)
build=build
runs=3
duration=5
conns=32
out=
server_cpu=0
bench_cpu=1
only=

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --conns) conns=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --server-cpu) server_cpu=${2:?}; shift 2 ;;
    --bench-cpu) bench_cpu=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_web.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
die() { echo "run_web.sh: $*" >&2; exit 2; }
for v in runs duration conns; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer"
done
for v in server_cpu bench_cpu; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v/_/-} must be a CPU number"
done
[[ -z "$only" || "$only" == nginx || "$only" == mles ]] || die "--only must be nginx or mles"
cd "$repo_dir" || exit 2
[[ "$build" = /* ]] || build="$repo_dir/$build"
mles_bin="$build/mles"
[[ "$only" == nginx || -x "$mles_bin" ]] || die "$mles_bin not found (build it first: cmake --build --preset release --target mles)"
[[ -n "$out" ]] || out="$repo_dir/bench/results/web.md"

# ---- tools ----------------------------------------------------------------------------------
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x "$nginx_bin" ]] || ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
  echo "run_web.sh: installing nginx-light wrk curl" >&2
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -o DPkg::Lock::Timeout=300 -q -y --no-install-recommends)
  pkgs=(wrk curl)
  [[ -x "$nginx_bin" ]] || pkgs+=(nginx-light)
  if ! as_root "${apt[@]}" install "${pkgs[@]}" >/dev/null 2>&1; then
    as_root apt-get -o DPkg::Lock::Timeout=300 -q update >/dev/null || die "apt-get update failed"
    as_root "${apt[@]}" install "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed"
  fi
  # Debian starts the packaged nginx service on install: it must not share the machine.
  if [[ -z "${MLES_KEEP_SYSTEM_NGINX:-}" ]] && [[ -f /run/nginx.pid ]]; then
    as_root "$(command -v nginx || echo /usr/sbin/nginx)" -s stop >/dev/null 2>&1 || true
  fi
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
fi
for tool in "$nginx_bin" wrk curl openssl taskset timeout python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
ncpu=$(nproc --all)
((server_cpu < ncpu && bench_cpu < ncpu)) || die "CPU $server_cpu or $bench_cpu does not exist ($ncpu CPUs)"

# ---- temp dir, cleanup ----------------------------------------------------------------------
work=$(mktemp -d /tmp/mles-web-bench.XXXXXX)
chmod 755 "$work"   # nginx's worker runs as nobody and must read the files
declare -A pids=()  # name -> pid of the servers this script started

# shellcheck disable=SC2317  # called from the trap
stop_pid() { # stop_pid PID: TERM, KILL after 5 s
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local name
  for name in "${!pids[@]}"; do stop_pid "${pids[$name]}"; done
  # nginx's worker is a child of its master: gone with it; a stray one would still hold the port.
  [[ -f "$work/nginx.pid" ]] && kill -KILL "$(cat "$work/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- files and certificate ------------------------------------------------------------------
www="$work/www"
mkdir -p "$www/localhost"
head -c 1024 /dev/urandom >"$www/localhost/1k.bin"
head -c $((100 * 1024)) /dev/urandom >"$www/localhost/100k.bin"
printf '<!doctype html><title>bench</title>\n' >"$www/localhost/index.html"
chmod -R a+rX "$www"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"

# ---- servers --------------------------------------------------------------------------------
declare -A ports=()  # nginx-plain, nginx-tls, mles-plain, mles-tls
nginx_worker=
start_nginx() {
  ports[nginx-plain]=$(free_port)
  ports[nginx-tls]=$(free_port)
  local mask
  mask=$(python3 -c "print(format(1 << $server_cpu, 'b'))")
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity $mask;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  types { text/html html; application/octet-stream bin; }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65s;
  keepalive_requests 100000000;
  gzip off;
  server_tokens off;
  server {
    listen 127.0.0.1:${ports[nginx-plain]};
    listen 127.0.0.1:${ports[nginx-tls]} ssl;
    server_name localhost;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $www/localhost;
  }
}
EOF
  "$nginx_bin" -t -q -p "$work/nginx" -c "$work/nginx.conf" 2>"$work/nginx-t.log" \
    || { sed 's/^/  | /' "$work/nginx-t.log" >&2; die "nginx rejects its config"; }
  taskset -c "$server_cpu" "$nginx_bin" -p "$work/nginx" -c "$work/nginx.conf" >"$work/nginx.log" 2>&1 &
  pids[nginx]=$!
  local _
  for _ in $(seq 100); do
    if curl -s -o /dev/null "http://127.0.0.1:${ports[nginx-plain]}/"; then
      nginx_worker=$(pgrep -P "${pids[nginx]}" | head -1)
      [[ -n "$nginx_worker" ]] && return 0
    fi
    kill -0 "${pids[nginx]}" 2>/dev/null || break
    sleep 0.1
  done
  sed 's/^/  | /' "$work/nginx.log" "$work/nginx-error.log" 2>/dev/null | head -20 >&2
  die "nginx did not start within 10 s"
}

start_mles() { # start_mles plain|tls
  local mode=$1 log="$work/mles-$1.log"
  local -a tls_args=(--no-tls)
  [[ "$mode" == tls ]] && tls_args=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  taskset -c "$server_cpu" "$mles_bin" "${tls_args[@]}" --port 0 --bind 127.0.0.1 --threads 1 \
    --domains localhost --wwwroot "$www" --log-level warn >"$log" 2>&1 &
  pids[mles-$mode]=$!
  local line='' _
  for _ in $(seq 100); do
    line=$(grep -m1 'listening on ' "$log" 2>/dev/null)
    [[ -n "$line" ]] && break
    kill -0 "${pids[mles-$mode]}" 2>/dev/null || break
    sleep 0.1
  done
  ports[mles-$mode]=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' <<<"$line")
  if [[ -z "${ports[mles-$mode]}" ]]; then
    sed 's/^/  | /' "$log" | head -20 >&2
    die "mles ($mode) did not report 'listening on <addr>:<port>' within 10 s"
  fi
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
[[ "$only" == mles ]] || start_nginx
if [[ "$only" != nginx ]]; then start_mles plain; start_mles tls; fi

url() { # url server mode file
  local scheme=http
  [[ "$2" == tls ]] && scheme=https
  echo "$scheme://127.0.0.1:${ports[$1-$2]}/$3"
}

# Pre-check: 200, the exact size, and the second request re-uses the connection (keep-alive).
# Prints nothing when fine, else the reason.
precheck() { # precheck server mode file
  local u size want
  u=$(url "$@")
  want=$(stat -c %s "$www/localhost/$3")
  local out_ code
  out_=$(timeout 10 curl -sk -H 'Host: localhost' -o /dev/null -o /dev/null -w '%{http_code} %{size_download} %{num_connects}\n' "$u" "$u" 2>&1)
  code=$(awk 'NR==1 {print $1}' <<<"$out_")
  size=$(awk 'NR==1 {print $2}' <<<"$out_")
  [[ "$code" == 200 ]] || { echo "HTTP ${code:-error}"; return; }
  [[ "$size" == "$want" ]] || { echo "size $size != $want"; return; }
  [[ "$(awk 'NR==2 {print $3}' <<<"$out_")" == 0 ]] || echo "no keep-alive"
}

server_pid() { # server_pid server mode: the process doing the work (nginx: its worker)
  if [[ "$1" == nginx ]]; then echo "$nginx_worker"; else echo "${pids[mles-$2]}"; fi
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }  # utime + stime
clk_tck=$(getconf CLK_TCK)

# One wrk run; prints "rps p99_us cpu_us_per_request" or "ERR reason".
wrk_run() { # wrk_run server mode file seconds
  local u o rc pid t0 t1
  u=$(url "$1" "$2" "$3")
  pid=$(server_pid "$1" "$2")
  t0=$(cpu_ticks "$pid")
  o=$(timeout -k 5 $(($4 + 20)) taskset -c "$bench_cpu" wrk -t1 -c"$conns" -d"$4"s --latency \
        -H 'Host: localhost' "$u" 2>&1)
  rc=$?
  t1=$(cpu_ticks "$pid")
  echo "$o" >>"$work/wrk-$1-$2-$3.log"
  if [[ $rc -ne 0 ]]; then echo "ERR wrk exit $rc"; return; fi
  local non2xx errors
  non2xx=$(sed -nE 's/.*Non-2xx or 3xx responses: ([0-9]+).*/\1/p' <<<"$o")
  errors=$(sed -nE 's/.*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+).*/\1+\2+\3+\4/p' <<<"$o")
  [[ -n "$non2xx" && "$non2xx" != 0 ]] && { echo "ERR $non2xx non-2xx responses"; return; }
  [[ -n "$errors" && $((errors)) -ne 0 ]] && { echo "ERR socket errors $errors"; return; }
  local rps p99
  rps=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$o")
  p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
                           f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : -1;
                           if (f > 0) printf "%.0f", v * f }' <<<"$o")
  local requests cpu
  requests=$(sed -nE 's/^ *([0-9]+) requests in .*/\1/p' <<<"$o")
  [[ -n "$rps" && -n "$p99" && -n "$requests" && "$requests" != 0 ]] || { echo "ERR unparsable wrk output"; return; }
  kill -0 "$pid" 2>/dev/null || { echo "ERR server $1 ($2) died"; return; }
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk_tck" -v n="$requests" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
  echo "$rps $p99 $cpu"
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

fmt_rps() { printf '%.0f' "$1" | sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta'; }
fmt_us() { awk -v v="$1" 'BEGIN { if (v >= 10000) printf "%.1f ms", v / 1000; else if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%d µs", v }'; }

servers=()
[[ "$only" == mles ]] || servers+=(nginx)
[[ "$only" == nginx ]] || servers+=(mles)

declare -A cell_rps=() cell_p99=() cell_cpu=() cell_err=() cell_runs=() cell_ratio=()
failures=0
for file in 1k.bin 100k.bin; do
  for mode in plain tls; do
    for s in "${servers[@]}"; do
      reason=$(precheck "$s" "$mode" "$file")
      if [[ -n "$reason" ]]; then
        cell_err[$s-$mode-$file]=$reason
        echo "[$file $mode $s] pre-check failed: $reason" >&2
        continue
      fi
      wrk_run "$s" "$mode" "$file" 1 >/dev/null   # warm-up (caches, TLS sessions, CPU clocks)
    done
    declare -A rlist=() plist=() clist=() this_run=()
    ratios=
    for r in $(seq "$runs"); do
      this_run=()
      for s in "${servers[@]}"; do
        [[ -n "${cell_err[$s-$mode-$file]:-}" ]] && continue
        res=$(wrk_run "$s" "$mode" "$file" "$duration")
        echo "[$file $mode $s run $r] $res" >&2
        if [[ "$res" == ERR* ]]; then
          cell_err[$s-$mode-$file]=${res#ERR }
          continue
        fi
        read -r rps p99 cpu <<<"$res"
        rlist[$s]+="$rps "
        plist[$s]+="$p99 "
        clist[$s]+="$cpu "
        cell_runs[$s-$mode-$file]+="$(fmt_rps "$rps") "
        this_run[$s]=$rps
      done
      # The ratio of the two runs made back to back: drift of the machine hits both alike.
      if [[ -n "${this_run[nginx]:-}" && -n "${this_run[mles]:-}" ]]; then
        ratios+="$(awk -v n="${this_run[nginx]}" -v m="${this_run[mles]}" 'BEGIN { print m / n }') "
      fi
    done
    [[ -n "$ratios" ]] && cell_ratio[$mode-$file]=$(tr ' ' '\n' <<<"$ratios" | grep . | median)
    for s in "${servers[@]}"; do
      k=$s-$mode-$file
      if [[ -n "${cell_err[$k]:-}" ]]; then failures=$((failures + 1)); continue; fi
      cell_rps[$k]=$(tr ' ' '\n' <<<"${rlist[$s]}" | grep . | median)
      cell_p99[$k]=$(tr ' ' '\n' <<<"${plist[$s]}" | grep . | median)
      cell_cpu[$k]=$(tr ' ' '\n' <<<"${clist[$s]}" | grep . | median)
    done
    unset rlist plist clist this_run
  done
done

# ---- table ----------------------------------------------------------------------------------
show() { # show server mode file: "req/s | p99 | CPU/req" or the error
  local k=$1-$2-$3
  if [[ -n "${cell_err[$k]:-}" ]]; then echo "error: ${cell_err[$k]} | – | –"
  elif [[ -n "${cell_rps[$k]:-}" ]]; then
    echo "$(fmt_rps "${cell_rps[$k]}") | $(fmt_us "${cell_p99[$k]}") | $(printf '%.1f µs' "${cell_cpu[$k]}")"
  else echo "– | – | –"; fi
}
{
  echo "| file | transport | nginx req/s | nginx p99 | nginx CPU/req | mles req/s | mles p99 | mles CPU/req | mles / nginx req/s | mles / nginx CPU/req |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for file in 1k.bin 100k.bin; do
    for mode in plain tls; do
      label="1 KiB"; [[ "$file" == 100k.bin ]] && label="100 KiB"
      t="plain HTTP"; [[ "$mode" == tls ]] && t="TLS"
      ratio="–"
      [[ -n "${cell_ratio[$mode-$file]:-}" && -z "${cell_err[nginx-$mode-$file]:-}${cell_err[mles-$mode-$file]:-}" ]] \
        && ratio=$(awk -v r="${cell_ratio[$mode-$file]}" 'BEGIN { printf "**%.0f %%**", 100 * r }')
      cpu_ratio="–"
      [[ -n "${cell_cpu[nginx-$mode-$file]:-}" && -n "${cell_cpu[mles-$mode-$file]:-}" ]] \
        && cpu_ratio=$(awk -v n="${cell_cpu[nginx-$mode-$file]}" -v m="${cell_cpu[mles-$mode-$file]}" 'BEGIN { if (n > 0) printf "%.2f ×", m / n; else print "–" }')
      echo "| $label | $t | $(show nginx "$mode" "$file") | $(show mles "$mode" "$file") | $ratio | $cpu_ratio |"
    done
  done
  echo
  echo "Median of $runs runs of \`taskset -c $bench_cpu wrk -t1 -c$conns -d${duration}s --latency\` (keep-alive)" \
       "per cell; servers pinned to CPU $server_cpu, one worker / event loop each, loopback." \
       "mles / nginx req/s: median over the runs of (mles req/s ÷ nginx req/s of the run just before it)." \
       "CPU/req: the server's user + system CPU time (nginx: its worker) during a run ÷ requests served, median;" \
       "it depends much less on other load on the machine than req/s does." \
       "Load average at the start: $load_start."
  [[ ${#cell_runs[@]} -eq 0 ]] || echo "Runs (req/s): $(for k in $(printf '%s\n' "${!cell_runs[@]}" | sort); do printf '%s: %s; ' "$k" "${cell_runs[$k]% }"; done | sed 's/; $//')."
  for s in "${servers[@]}"; do
    echo "TLS negotiated with $s: $(timeout 10 openssl s_client -connect "127.0.0.1:${ports[$s-tls]}" -servername localhost </dev/null 2>/dev/null \
      | sed -nE 's/^New, (.*), Cipher is (.*)/\1 \2/p' | head -1)."
  done
  echo "Machine: $(nproc --all) CPUs, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)," \
       "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $("$nginx_bin" -v 2>&1 | sed 's/.*: //')," \
       "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)$([[ "$only" == nginx ]] || echo ", $("$mles_bin" --version 2>&1 | head -1)");" \
       "$(openssl version | cut -d' ' -f1-2); $(date -u +%F)."
} >"$work/table.md"
mkdir -p "$(dirname "$out")"
cp "$work/table.md" "$out"
cat "$work/table.md"
[[ $failures -eq 0 ]] || { echo "run_web.sh: $failures cell(s) failed (see the table)" >&2; exit 1; }
exit 0
