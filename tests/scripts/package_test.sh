#!/usr/bin/env bash
# The Debian package end to end (root only; exit 77 = skipped): build it with CPack from the
# build tree, install it with dpkg, check the user, files, modes and the unit, run the
# packaged binary as the packaged user on a loopback port (and the unit when systemd runs),
# exchange a WebSocket message, then purge the package and check that it is gone. Whatever
# fails, the trap purges the package and stops what was started.
# Usage: package_test.sh <build dir>
set -euo pipefail

BUILD="$(readlink -f "$1")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$(id -u)" -ne 0 ]; then echo "skipped: needs root (dpkg -i)"; exit 77; fi
for tool in dpkg dpkg-deb cpack setpriv python3 curl; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool missing"; exit 77; }
done
if dpkg-query -W -f='${Status}' mles 2>/dev/null | grep -q "ok installed"; then
  echo "skipped: a mles package is already installed here; not touching it"; exit 77
fi
if getent passwd mles >/dev/null; then echo "skipped: a user mles already exists here"; exit 77; fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mles-package.XXXXXX")"
PID=""
INSTALLED=0
SYSTEMD_UNIT_STARTED=0
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ "$SYSTEMD_UNIT_STARTED" = 1 ]; then systemctl stop mles.service >/dev/null 2>&1 || true; fi
  if [ "$INSTALLED" = 1 ]; then dpkg --purge mles >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for l in "$WORK"/*.log; do [ -f "$l" ] && { echo "--- $l" >&2; tail -n 20 "$l" >&2; }; done; exit 1; }
pass() { echo "ok: $*"; }

# 1. The package, as `cmake --build --preset release --target package` makes it (CPack).
(cd "$WORK" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1) ||
  fail "cpack"
DEB="$(ls "$WORK"/pkg/mles_*.deb 2>/dev/null | head -n 1)"
[ -n "$DEB" ] || fail "no .deb written"
pass "built $(basename "$DEB")"
depends="$(dpkg-deb -f "$DEB" Depends)"
for dep in libc6 libssl3 adduser libboost-json1.81.0; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
pass "Depends: $depends"
contents="$(dpkg-deb -c "$DEB")"
grep -q '^-rwxr-xr-x root/root .* \./usr/bin/mles$' <<<"$contents" || fail "/usr/bin/mles not 0755 root: $contents"
for f in ./lib/systemd/system/mles.service ./etc/default/mles ./usr/share/mles/www/localhost/index.html \
         ./usr/share/man/man1/mles.1.gz; do
  grep -q " $f\$" <<<"$contents" || fail "$f not in the package"
done
grep -v '\./usr/\|\./etc/default\|\./lib/systemd\|\./$\|\./etc/$\|\./lib/$' <<<"$contents" | grep -q . &&
  fail "unexpected paths in the package: $(grep -v '\./usr/\|\./etc/default\|\./lib/systemd' <<<"$contents")"
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/default/mles || fail "/etc/default/mles is not a conffile"

# 2. Install.
INSTALLED=1
dpkg -i "$DEB" >"$WORK/dpkg-install.log" 2>&1 || fail "dpkg -i (missing dependencies?)"
pass "installed"
entry="$(getent passwd mles)" || fail "no user mles after install"
uid="$(cut -d: -f3 <<<"$entry")"
[ "$uid" -lt 1000 ] || fail "mles is not a system user: $entry"
[[ "$(cut -d: -f7 <<<"$entry")" == */nologin ]] || fail "mles can log in: $entry"
getent group mles >/dev/null || fail "no group mles"
[ "$(stat -c '%a %U:%G' /usr/bin/mles)" = "755 root:root" ] || fail "/usr/bin/mles: $(stat -c '%a %U:%G' /usr/bin/mles)"
for f in /lib/systemd/system/mles.service /etc/default/mles /usr/share/mles/www/localhost/index.html \
         /usr/share/man/man1/mles.1.gz; do
  [ "$(stat -c '%a %U:%G' "$f")" = "644 root:root" ] || fail "$f: $(stat -c '%a %U:%G' "$f")"
done
zcat /usr/share/man/man1/mles.1.gz | grep -q -- 'takeover' || fail "man page lacks the options"
/usr/bin/mles --version | grep -q '^mles ' || fail "mles --version"
unit=/lib/systemd/system/mles.service
for line in "User=mles" "AmbientCapabilities=CAP_NET_BIND_SERVICE" "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" \
            "NoNewPrivileges=true" "ProtectSystem=strict" "ProtectHome=true" "PrivateTmp=true" \
            "StateDirectory=mles" "CacheDirectory=mles" "ExecReload=/bin/kill -HUP \$MAINPID" \
            "Restart=on-failure" "EnvironmentFile=/etc/default/mles"; do
  grep -qxF "$line" "$unit" || fail "unit lacks $line"
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no "$unit" >"$WORK/verify.log" 2>&1 || fail "systemd-analyze verify"
  pass "systemd-analyze verify"
fi
pass "user, files, modes, unit"

# 3. The packaged binary as the packaged user, plain WebSocket on a loopback port.
setpriv --reuid=mles --regid=mles --init-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
  /usr/bin/mles --no-tls --bind 127.0.0.1 --port 0 --domains localhost --wwwroot /usr/share/mles/www \
  --threads 1 2>"$WORK/mles.log" &
PID=$!
port=""
for _ in $(seq 1 300); do
  port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/mles.log")"
  [ -n "$port" ] && break
  kill -0 "$PID" 2>/dev/null || fail "mles exited at start"
  sleep 0.1
done
[ -n "$port" ] || fail "mles did not listen within 30 s"
[ "$(ps -o user= -p "$PID" | tr -d ' ')" = mles ] || fail "mles does not run as mles: $(ps -o user= -p "$PID")"
curl -sS --max-time 30 -H 'Host: localhost' "http://127.0.0.1:$port/" -o "$WORK/index.html" || fail "GET /"
cmp -s "$WORK/index.html" /usr/share/mles/www/localhost/index.html || fail "GET / is not the demo page"
timeout 60 python3 "$HERE/ws_exchange.py" "$port" package >"$WORK/ws.log" 2>&1 || fail "WebSocket exchange"
kill -TERM "$PID"
for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "mles still running 30 s after SIGTERM"
status=0; wait "$PID" || status=$?
PID=""
[ "$status" = 0 ] || fail "mles exited $status after SIGTERM"
pass "served as user mles on port $port: demo page and a WebSocket exchange; SIGTERM exit 0"

# 4. The unit itself, when systemd runs this machine.
if [ -d /run/systemd/system ] && [ "$(ps -p 1 -o comm=)" = systemd ]; then
  cp /etc/default/mles "$WORK/default.orig"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  echo "MLES_ARGS=\"--no-tls --bind 127.0.0.1 --port $port --domains localhost --wwwroot /usr/share/mles/www\"" \
    >/etc/default/mles
  systemctl daemon-reload
  SYSTEMD_UNIT_STARTED=1
  systemctl start mles.service || fail "systemctl start mles"
  for _ in $(seq 1 300); do
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
  done
  timeout 60 python3 "$HERE/ws_exchange.py" "$port" unit >"$WORK/ws-unit.log" 2>&1 || fail "WebSocket exchange (unit)"
  systemctl reload mles.service || fail "systemctl reload mles"
  systemctl is-active --quiet mles.service || fail "unit not active after reload"
  systemctl stop mles.service
  SYSTEMD_UNIT_STARTED=0
  cp "$WORK/default.orig" /etc/default/mles
  pass "the unit started, served, reloaded and stopped"
else
  echo "note: systemd is not PID 1 here; the unit was verified, not started"
fi

# 5. Purge: nothing left.
dpkg --purge mles >"$WORK/dpkg-purge.log" 2>&1 || fail "dpkg --purge"
INSTALLED=0
dpkg-query -W -f='${Status}' mles 2>/dev/null | grep -q "installed" && fail "still installed after purge"
for f in /usr/bin/mles /lib/systemd/system/mles.service /etc/default/mles /usr/share/mles /var/lib/mles /var/cache/mles; do
  [ -e "$f" ] && fail "$f left after purge"
done
getent passwd mles >/dev/null && fail "user mles left after purge"
pass "purged: files and user gone"
