#!/usr/bin/env bash
# Builds mles (release) and runs it locally with a self-signed certificate on
# https://localhost:8443 / wss://localhost:8443. Extra arguments are passed to mles and
# override the script's defaults: `./run-local.sh --port 9443` listens on 9443, `--no-tls` or
# `--tls-cert/--tls-key` replace --self-signed.
# MLES_RUN_LOCAL_DRY_RUN=1 prints the mles command line (one argument per line) instead of
# building and running it.
set -euo pipefail
cd "$(dirname "$0")"

# The flag an argument names ("--port=9443" -> "--port"; short aliases -> long names), or
# nothing for a value.
flag_of() {
  local a="${1%%=*}"
  [[ "$a" =~ ^-[A-Za-z] ]] && a="${a:0:2}"  # -p9443
  case "$a" in
    -d) a=--domains ;; -p) a=--port ;; -w) a=--wwwroot ;;
  esac
  [[ "$a" == -* ]] && printf '%s' "$a"
  return 0
}

declare -A given=()
for arg in "$@"; do
  f="$(flag_of "$arg")"
  [[ -n "$f" ]] && given["$f"]=1
done

args=()
if [[ -z "${given[--self-signed]:-}${given[--no-tls]:-}${given[--tls-cert]:-}${given[--tls-key]:-}" ]]; then
  args+=(--self-signed)
fi
[[ -n "${given[--domains]:-}" ]] || args+=(--domains localhost)
[[ -n "${given[--port]:-}" ]] || args+=(--port 8443)
default_wwwroot=0
if [[ -z "${given[--wwwroot]:-}" ]]; then
  args+=(--wwwroot www)
  default_wwwroot=1
fi
[[ -n "${given[--log-level]:-}" ]] || args+=(--log-level info)
args+=("$@")

if [[ "${MLES_RUN_LOCAL_DRY_RUN:-}" == 1 ]]; then
  printf '%s\n' build/mles "${args[@]}"
  exit 0
fi

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target mles
if [[ "$default_wwwroot" == 1 ]]; then mkdir -p www/localhost; fi
exec build/mles "${args[@]}"
