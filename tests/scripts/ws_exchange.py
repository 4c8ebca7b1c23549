#!/usr/bin/env python3
"""Two members on a plain ws:// mles at 127.0.0.1:PORT join CHANNEL and exchange a message
each way; exits 0 when both arrived, non-zero with a reason otherwise (every wait bounded).
Usage: ws_exchange.py PORT CHANNEL"""
import base64, os, socket, struct, sys

port, channel = int(sys.argv[1]), sys.argv[2]


class Member:
    def __init__(self, uid):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                        f"Sec-WebSocket-Protocol: mles-websocket\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                sys.exit(f"{uid}: closed during the upgrade")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            sys.exit(f"{uid}: no 101: " + head.decode(errors="replace"))
        self.send(f'{{"uid":"{uid}","channel":"{channel}"}}'.encode())

    def send(self, payload, op=1):
        mask = os.urandom(4)
        n = len(payload)
        h = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.s.sendall(h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def expect(self, text):
        for _ in range(1000):
            while len(self.buf) >= 2:
                op, n, off = self.buf[0] & 15, self.buf[1] & 127, 2
                if n == 126:
                    n, off = struct.unpack(">H", self.buf[2:4])[0], 4
                elif n == 127:
                    n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
                if len(self.buf) < off + n:
                    break
                payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
                if op == 9:
                    self.send(payload, 10)
                elif op == 8:
                    sys.exit(f"closed while waiting for {text!r}")
                elif payload == text.encode():
                    return
            d = self.s.recv(65536)
            if not d:
                sys.exit(f"connection closed while waiting for {text!r}")
            self.buf += d
        sys.exit(f"{text!r} never arrived")


a = Member("alice")
b = Member("bob")
b.expect(f'{{"uid":"alice","channel":"{channel}"}}')  # history: bob has joined
a.send(b"hello from alice")
b.expect("hello from alice")
b.send(b"hello from bob")
a.expect("hello from bob")
print("ok: message exchanged")
