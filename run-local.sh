#!/usr/bin/env bash
# Builds mles (release) and runs it locally with a self-signed certificate on
# https://localhost:8443 / wss://localhost:8443. Extra arguments are passed to mles.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target mles
mkdir -p www/localhost
exec build/mles --self-signed --domains localhost --port 8443 --wwwroot www --log-level info "$@"
