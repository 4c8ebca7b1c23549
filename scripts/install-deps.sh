#!/usr/bin/env bash
# Installs the Debian 12 packages mles needs to build and test (only the missing ones).
# Boost is pinned to the 1.81 packages; never mix them with the unversioned 1.74 ones.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libcli11-dev libspdlog-dev libfmt-dev
  libbrotli-dev libzstd-dev zlib1g-dev libsqlite3-dev liburing-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libnats-dev nats-server
  python3 procps util-linux pebble curl
  dpkg-dev file help2man adduser
)
[ "${MLES_WITH_CLANG:-0}" = 1 ] && packages+=(clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -o DPkg::Lock::Timeout=300 -q -y --no-install-recommends)
if ! as_root "${apt[@]}" install "${missing[@]}" >/dev/null; then
  as_root apt-get -o DPkg::Lock::Timeout=300 -q update >/dev/null
  as_root "${apt[@]}" install "${missing[@]}" >/dev/null
fi
