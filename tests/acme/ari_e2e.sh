#!/usr/bin/env bash
# RFC 9773 end to end: mles serves a cached certificate (valid 30 days, so 2/3 of its lifetime
# is 20 days away), asks the CA's renewalInfo about it with the right certificate ID, and moves
# its renewal into the CA's suggested window (1-2 hours from now). The CA is a small HTTPS
# stand-in (ari_mock.py): pebble 2.4.0 has no renewalInfo. Usage: ari_e2e.sh <mles binary>
set -euo pipefail
MLES="$(readlink -f "$1")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mles-ari-e2e.XXXXXX")"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$WORK/mles.log" >&2 || true; exit 1; }
cd "$WORK"

# The stand-in CA's HTTPS certificate, and a certificate "issued" for mles.test with an AKI.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=ARI stand-in CA" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr \
  -subj "/CN=mles.test" >/dev/null 2>&1
printf '%s\n' "subjectAltName=DNS:mles.test" "authorityKeyIdentifier=keyid:always" >leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile leaf.ext \
  -out leaf.pem >/dev/null 2>&1
openssl pkcs8 -topk8 -nocrypt -in leaf.key -out leaf.p8 >/dev/null 2>&1

start=$(date -u -d "+1 hour" +%Y-%m-%dT%H:%M:%SZ)
end=$(date -u -d "+2 hours" +%Y-%m-%dT%H:%M:%SZ)
coproc MOCK { exec python3 "$HERE/ari_mock.py" ca.pem ca.key "$start" "$end"; }
PIDS+=("$MOCK_PID")
read -r -t 10 port <&"${MOCK[0]}" || fail "the stand-in CA did not start"
dir="https://127.0.0.1:$port/dir"

# The cache file, named as the reference layout does: H = b64url(SHA-256("mles.test" 0x00 dir)).
mkdir -m 700 cache
name=$(python3 -c 'import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()+b"\0"+sys.argv[2].encode()).digest()).rstrip(b"=").decode())' mles.test "$dir")
{ cat leaf.p8; echo; cat leaf.pem ca.pem; } >"cache/cached_cert_$name"
chmod 600 "cache/cached_cert_$name"

# The certificate ID the CA must be asked about (RFC 9773 §4.1), computed independently.
expected=$(python3 - leaf.pem <<'PY'
import base64, re, subprocess, sys
text = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-serial", "-ext", "authorityKeyIdentifier"],
                      capture_output=True, text=True, check=True).stdout
serial = bytes.fromhex(re.search(r"serial=([0-9A-F]+)", text).group(1))
if serial[0] & 0x80: serial = b"\0" + serial
keyid = bytes.fromhex(re.search(r"(?:keyid:)?((?:[0-9A-F]{2}:)+[0-9A-F]{2})", text.split("Authority Key Identifier:")[1]).group(1).replace(":", ""))
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
print(b(keyid) + "." + b(serial))
PY
)

"$MLES" --domains mles.test --port 0 --bind 127.0.0.1 --wwwroot "$WORK" --cache cache --acme-directory "$dir" \
  --acme-ca-cert ca.pem --log-level info 2>mles.log &
PIDS+=($!)
read -r -t 15 line <&"${MOCK[0]}" || fail "mles never asked the CA's renewalInfo"
[ "$line" = "ari $expected" ] || fail "asked about '$line', expected 'ari $expected'"
for _ in $(seq 1 50); do grep -q "suggests renewing" mles.log && break; sleep 0.1; done
grep -q "from cache installed" mles.log || fail "the cached certificate was not served"
planned=$(grep "suggests renewing" mles.log | sed 's/.*renewal planned for //')
[ -n "$planned" ] || fail "the renewal window did not move the renewal"
t=$(date -u -d "$planned" +%s); s=$(date -u -d "$start" +%s); e=$(date -u -d "$end" +%s)
[ "$t" -ge "$((s - 1))" ] && [ "$t" -le "$e" ] || fail "renewal planned for $planned, outside $start .. $end"
echo "ok: renewalInfo asked with the right certificate ID; renewal moved into the CA's window"
echo "1 passed, 0 failed"
