#!/usr/bin/env python3
"""A WebSocket member for the ACME end-to-end test: joins a channel over wss:// on 127.0.0.1,
then for each line on stdin ("send TEXT" or "expect TEXT") sends or waits (bounded) for a
message, printing "ok" or exiting non-zero. Keeps one TLS session for its whole life, so a
certificate renewal in between must not disturb it."""
import base64, os, socket, ssl, struct, sys

port, uid, channel = int(sys.argv[1]), sys.argv[2], sys.argv[3]
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw, server_hostname="mles.test")
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET / HTTP/1.1\r\nHost: mles.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"Sec-WebSocket-Protocol: mles-websocket\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    if not d:
        sys.exit("closed during the upgrade")
    buf += d
head, buf = buf.split(b"\r\n\r\n", 1)
if b" 101 " not in head.split(b"\r\n")[0]:
    sys.exit("no 101: " + head.decode(errors="replace"))

def send(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    h = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    s.sendall(h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def frames():
    global buf
    while True:
        while len(buf) >= 2:
            op, n, off = buf[0] & 15, buf[1] & 127, 2
            if n == 126:
                n, off = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                n, off = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            payload, buf = buf[off:off + n], buf[off + n:]
            if op == 9:
                send(10, payload)
                continue
            yield op, payload
        d = s.recv(65536)
        if not d:
            sys.exit("connection closed")
        buf += d

send(1, f'{{"uid":"{uid}","channel":"{channel}"}}'.encode())
incoming = frames()
print("joined", flush=True)
for line in sys.stdin:
    verb, _, text = line.rstrip("\n").partition(" ")
    if verb == "send":
        send(1, text.encode())
        print("ok", flush=True)
    elif verb == "expect":
        for op, payload in incoming:
            if op == 8:
                sys.exit("server closed the session")
            if payload == text.encode():
                print("ok", flush=True)
                break
