#!/usr/bin/env python3
"""Black-box tests of the real `mles` binary's TLS with real TLS clients on loopback:
Debian's `openssl s_client` and Python's `ssl` (OpenSSL underneath, driven through a MemoryBIO
so that the test controls every byte on the wire). Written to catch a broken TLS record layer
(the server's own TLS 1.3 records after the handshake, issue 11): every payload is checked byte
for byte, in both directions, for every TLS 1.3 suite and for TLS 1.2.

  tls_clients.py --mles build/mles --www www CASE      (ctest runs one CASE per test)
  tls_clients.py --list                                (the cases)

Each case starts its own server (--self-signed, --port 0, 127.0.0.1) on a temporary wwwroot
holding a copy of the demo page (www/localhost) and a 3 MiB random file, and stops it at the
end; a case fails if the server died or logged a sanitizer report. Every wait is bounded
(STEP seconds, generous for ASan builds); nothing here waits on a timer for something to
happen. Exit status 0: passed; 1: failed (the reason on stderr)."""
import argparse
import base64
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

STEP = 60.0          # bound of every single wait (a message arriving, a connection ending)
START = 30.0         # bound of the server's start-up
SUITES13 = {
    "aes128": "TLS_AES_128_GCM_SHA256",
    "aes256": "TLS_AES_256_GCM_SHA384",
    "chacha20": "TLS_CHACHA20_POLY1305_SHA256",
}
# The server's --self-signed certificate is ECDSA P-256.
SUITES12 = {
    "aes128": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "aes256": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "chacha20": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
MAX_MESSAGE = 16 * 1024 * 1024   # the server's --max-message default (README)
# s_client reads its stdin in chunks and treats a chunk starting with one of these as a command
# (Q quit, R renegotiate, k/K key update): bytes piped to it never contain them.
SCLIENT_COMMAND_BYTES = frozenset(b"QRkK")


class Fail(Exception):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cipher_spec(spec):
    """'tls13-aes128' -> ('1.3', 'TLS_AES_128_GCM_SHA256'); 'tls12-chacha20' -> ('1.2', ...)."""
    version, name = spec.split("-", 1)
    if version == "tls13":
        return "1.3", SUITES13[name]
    if version == "tls12":
        return "1.2", SUITES12[name]
    raise SystemExit(f"unknown cipher spec {spec}")


def setup_openssl_conf(tmp, spec):
    """Python 3.11's ssl cannot choose TLS 1.3 suites (no set_ciphersuites): an OpenSSL config
    with Ciphersuites in system_default does it for every SSL_CTX of this process. Must run
    before `import ssl`."""
    version, suite = cipher_spec(spec) if spec else ("", "")
    path = os.path.join(tmp, "openssl.cnf")
    with open(path, "w") as f:
        f.write("openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n"
                "[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\n"
                "MinProtocol = TLSv1.2\n")
        if version == "1.3":
            f.write(f"Ciphersuites = {suite}\n")
    os.environ["OPENSSL_CONF"] = path


# ---- the server -----------------------------------------------------------------------------

class Server:
    def __init__(self, binary, wwwroot, extra=()):
        self.args = [binary, "--self-signed", "--port", "0", "--bind", "127.0.0.1",
                     "--domains", "localhost", "--wwwroot", wwwroot, "--log-level", "info", *extra]
        env = {k: v for k, v in os.environ.items()
               if k not in ("MLES_KEY", "MLES_LOG", "RUST_LOG", "OPENSSL_CONF")}
        self.p = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
        self.lines = []
        self.lock = threading.Lock()
        self.port = None
        started = threading.Event()

        def drain():  # keeps the pipe empty (a server blocked on stderr stops serving)
            for raw in self.p.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                with self.lock:
                    self.lines.append(line)
                m = re.search(r" listening on \S*:(\d+)\b", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    started.set()
            started.set()

        threading.Thread(target=drain, daemon=True).start()
        if not started.wait(START) or self.port is None:
            self.stop()
            raise Fail("server did not report its port:" + self.log_text())

    def log_text(self):
        with self.lock:
            return "".join("\n  | " + l for l in self.lines[-60:])

    def alive(self):
        return self.p.poll() is None

    def check_alive(self):
        if not self.alive():
            raise Fail(f"server exited with {self.p.returncode}:" + self.log_text())

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(STEP)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(STEP)
        return self.p.returncode


# ---- transports: Python ssl through a MemoryBIO, and openssl s_client ---------------------------

class PyTls:
    """TLS client (Python ssl) over a non-blocking socket, through a MemoryBIO: the test sees and
    controls the bytes on the wire (chunked writes, raw garbage). Driven by pump()."""

    def __init__(self, port, version="", ciphers=None, record=None, rcvbuf=0):
        import ssl
        self.ssl = ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if version == "1.3":
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        elif version == "1.2":
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            if ciphers:
                ctx.set_ciphers(ciphers)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect(), so that the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(STEP)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.inc, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.outb, server_hostname="localhost")
        self.wire_out = bytearray()   # TLS bytes not yet written to the socket
        self.chunk = None             # (size, pause): write the wire in pieces
        self.plain_in = bytearray()   # decrypted bytes from the server
        self.handshaken = False
        self.raw_eof = False          # TCP FIN (or reset) from the server
        self.ended = None             # 'close_notify', 'eof', 'reset', 'alert: ...' once over
        self.record = record          # max plaintext per SSL write (None: whole writes)
        self.early = []               # plaintext written before the handshake finished
        self._flush_bio()
        self._try_handshake()

    def _flush_bio(self):
        while self.outb.pending:
            self.wire_out += self.outb.read()

    def _try_handshake(self):
        if self.handshaken or self.ended:
            return
        try:
            self.obj.do_handshake()
            self.handshaken = True
            for d in self.early:
                self.send_plain(d)
            self.early = []
        except self.ssl.SSLWantReadError:
            pass
        except self.ssl.SSLError as e:
            self.ended = f"handshake: {e}"
        self._flush_bio()

    def send_plain(self, data):
        if not self.handshaken:
            self.early.append(bytes(data))
            return
        view = memoryview(bytes(data))
        step = self.record or 1 << 20
        for i in range(0, len(view), step):
            self.obj.write(view[i:i + step])
            self._flush_bio()

    def send_raw(self, data):
        self.wire_out += data

    def close_notify(self):
        try:
            self.obj.unwrap()
        except self.ssl.SSLWantReadError:
            pass
        self._flush_bio()

    def read_fds(self):
        return [] if self.raw_eof else [self.sock]

    def write_fds(self):
        return [self.sock] if self.wire_out else []

    def on_writable(self, fd):
        n = len(self.wire_out) if not self.chunk else self.chunk[0]
        try:
            sent = self.sock.send(self.wire_out[:min(n, 1 << 18)])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:  # reset or broken pipe: the server has gone
            self.wire_out.clear()
            self.raw_eof = True
            self.ended = self.ended or f"reset ({e.strerror})"
            return
        del self.wire_out[:sent]
        if self.chunk and self.chunk[1]:
            time.sleep(self.chunk[1])

    def on_readable(self, fd):
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            data = None
            self.ended = self.ended or f"reset ({e.strerror})"
        if not data:
            self.raw_eof = True
            self.inc.write_eof()
        else:
            self.inc.write(data)
        self._process()

    def _process(self):
        if not self.handshaken:
            self._try_handshake()
            if not self.handshaken:
                if self.raw_eof and not self.ended:
                    self.ended = "eof during the handshake"
                return
        while self.ended is None:
            try:
                d = self.obj.read(1 << 20)
            except self.ssl.SSLWantReadError:
                break
            except self.ssl.SSLZeroReturnError:
                self.ended = "close_notify"
                break
            except self.ssl.SSLEOFError:
                self.ended = "eof without close_notify"
                break
            except self.ssl.SSLError as e:
                self.ended = f"alert: {e.reason or e}"
                break
            if not d:  # SSLObject.read returns b"" for a close_notify (SSL_ERROR_ZERO_RETURN)
                self.ended = "close_notify"
                break
            self.plain_in += d
        self._flush_bio()  # a KeyUpdate answer, for instance
        if self.raw_eof and self.ended is None:
            self.ended = "eof without close_notify"

    def cipher(self):
        c = self.obj.cipher()
        return (self.obj.version(), c[0] if c else None)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class SClient:
    """`openssl s_client` with -quiet -no_ign_eof: stdout carries only application data, stdin
    lines 'k'/'K' are key update commands (stderr shows KEYUPDATE), -msg goes to a file where
    the KeyUpdate handshake messages of both directions can be counted."""

    def __init__(self, port, version, suite, msgfile):
        args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                "-quiet", "-no_ign_eof", "-msg", "-msgfile", msgfile]
        if version == "1.3":
            args += ["-tls1_3", "-ciphersuites", suite]
        else:
            args += ["-tls1_2", "-cipher", suite]
        self.msgfile = msgfile
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, bufsize=0)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            os.set_blocking(f.fileno(), False)
        self.wire_out = bytearray()   # bytes for its stdin
        self.plain_in = bytearray()
        self.err = bytearray()
        self.err_eof = False
        self.raw_eof = False
        self.ended = None

    def send_plain(self, data, head=False):
        """Bytes for s_client to send. Unless head: none may be a command letter (s_client may
        read a big write in pieces that start anywhere). head: an HTTP request head, written in
        one atomic pipe write (< PIPE_BUF) on an empty pipe, so only its first byte counts."""
        if head:
            assert not self.wire_out and len(data) < 4096 and data[0] not in SCLIENT_COMMAND_BYTES
        else:
            assert not (SCLIENT_COMMAND_BYTES & set(data)), "bytes s_client would read as a command"
        self.wire_out += data

    def command(self, letter):
        """Types a command line; the caller waits for its effect before writing more (a
        chunk read together with the command would be dropped)."""
        self.wire_out += letter.encode() + b"\n"

    def keyupdates_typed(self):
        return self.err.count(b"KEYUPDATE")

    def read_fds(self):
        fds = [] if self.err_eof else [self.p.stderr]
        if not self.raw_eof:
            fds.append(self.p.stdout)
        return fds

    def write_fds(self):
        return [self.p.stdin] if self.wire_out and self.ended is None and not self.p.stdin.closed else []

    def on_writable(self, fd):
        try:
            n = os.write(self.p.stdin.fileno(), self.wire_out[:65536])
        except BlockingIOError:
            return
        except BrokenPipeError:
            self.wire_out.clear()
            self.ended = self.ended or "s_client exited"
            return
        del self.wire_out[:n]

    def on_readable(self, fd):
        try:
            d = os.read(fd.fileno(), 1 << 18)
        except BlockingIOError:
            return
        if fd is self.p.stderr:
            if d:
                self.err += d
            else:
                self.err_eof = True
            return
        if d:
            self.plain_in += d
        else:
            self.raw_eof = True
            self.ended = self.ended or "eof"

    def finish(self, others, server):
        """Closes s_client's stdin: it sends close_notify, ends, flushes its -msg file. Fails
        unless it exits 0 (its stdout ends once the server closed)."""
        pump(others, lambda: not self.wire_out, "s_client's stdin drained", server=server)
        self.p.stdin.close()
        pump(others + [self], lambda: self.raw_eof, "s_client's end after stdin EOF", server=server)
        try:
            code = self.p.wait(STEP)
        except subprocess.TimeoutExpired:
            raise Fail("s_client still running after its stdout ended")
        if code != 0:
            raise Fail(f"s_client exited with {code}: {bytes(self.err)[-1000:]!r}")

    def msg_keyupdates(self):
        """(sent, received) KeyUpdate messages as -msg logged them: lists of request_update
        bytes (0 update_not_requested, 1 update_requested)."""
        try:
            text = open(self.msgfile, errors="replace").read()
        except FileNotFoundError:
            return [], []
        sent, received = [], []
        for m in re.finditer(r"^(>>>|<<<) TLS 1\.3, Handshake \[length 0005\], KeyUpdate\n\s*18 00 00 01 (0[01])",
                             text, re.M):
            (sent if m.group(1) == ">>>" else received).append(int(m.group(2)))
        return sent, received

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(STEP)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f.closed:
                continue
            try:
                f.close()
            except OSError:
                pass


def pump(transports, until, what, timeout=STEP, server=None):
    """Moves bytes for every transport until until() holds; Fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not until():
        now = time.monotonic()
        if now >= deadline:
            if server:
                server.check_alive()
            raise Fail(f"timed out after {timeout:.0f} s waiting for {what}")
        rmap, wmap = {}, {}
        for t in transports:
            for f in t.read_fds():
                rmap[f] = t
            for f in t.write_fds():
                wmap[f] = t
        if not rmap and not wmap:
            if until():
                break
            raise Fail(f"every connection ended while waiting for {what}: "
                       + ", ".join(str(t.ended) for t in transports))
        r, w, _ = select.select(list(rmap), list(wmap), [], min(0.05, deadline - now))
        for f in w:
            wmap[f].on_writable(f)
        for f in r:
            rmap[f].on_readable(f)
        for m in transports:
            if isinstance(m, Member):
                m.parse()


# ---- WebSocket over a transport -----------------------------------------------------------------

def mask_bytes(payload, mask):
    n = len(payload)
    if n == 0:
        return b""
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")


def ws_frame(payload, op=2, fin=True, mask=None):
    mask = mask if mask is not None else os.urandom(4)
    n = len(payload)
    h = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        h += bytes([0x80 | n])
    elif n < 65536:
        h += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        h += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return h + mask + mask_bytes(payload, mask)


def sclient_safe_frame(n, rng, op=2):
    """A masked frame of a random payload of n bytes (n + a few when n's length bytes hold
    a command letter) none of whose wire bytes is an s_client command letter (header, mask
    and masked bytes); returns (frame, payload)."""
    allowed = bytes(b for b in range(256) if b not in SCLIENT_COMMAND_BYTES)
    while SCLIENT_COMMAND_BYTES & set(ws_frame(b"", op, mask=b"\0\0\0\0")[:2] + (
            struct.pack(">H", n) if 126 <= n < 65536 else struct.pack(">Q", n) if n >= 65536 else b"")):
        n += 1
    while True:
        mask = bytes(rng.choice(allowed) for _ in range(4))
        masked = bytes(rng.choice(allowed) for _ in range(n)) if n < 4096 else \
            bytes(allowed[b % len(allowed)] for b in rng.randbytes(n))
        payload = mask_bytes(masked, mask)
        f = ws_frame(payload, op, mask=mask)
        if not (SCLIENT_COMMAND_BYTES & set(f)):
            return f, payload


class Member:
    """A WebSocket client of the mles protocol over a transport (PyTls or SClient)."""

    def __init__(self, transport, name):
        self.t = transport
        self.name = name
        self.buf = bytearray()   # plaintext not yet parsed (after the HTTP head)
        self.upgraded = False
        self.head = None
        self.messages = []       # (opcode, payload) of data messages, in order
        self.frag = None
        self.close_frame = None  # payload of the server's close frame
        self.pongs = []
        self._expect_base = 0    # messages[:_expect_base] were checked or skipped
        self.answer_pings = isinstance(transport, PyTls)

    # transport interface for pump()
    def read_fds(self):
        return self.t.read_fds()

    def write_fds(self):
        return self.t.write_fds()

    def on_readable(self, f):
        self.t.on_readable(f)

    def on_writable(self, f):
        self.t.on_writable(f)

    @property
    def ended(self):
        return self.t.ended

    def parse(self):
        if self.t.plain_in:
            self.buf += self.t.plain_in
            self.t.plain_in.clear()
        if not self.upgraded:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = bytes(self.buf[:i]).decode(errors="replace")
            del self.buf[:i + 4]
            self.upgraded = True
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            op, n, off = b0 & 15, b1 & 127, 2
            if b1 & 0x80:
                raise Fail(f"{self.name}: the server sent a masked frame")
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, off = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < off + n:
                return
            payload = bytes(self.buf[off:off + n])
            del self.buf[:off + n]
            fin = bool(b0 & 0x80)
            if op == 9:
                if self.answer_pings:
                    self.t.send_plain(ws_frame(payload, 10))
            elif op == 10:
                self.pongs.append(payload)
            elif op == 8:
                self.close_frame = payload
            elif op == 0:
                if self.frag is None:
                    raise Fail(f"{self.name}: continuation without a first fragment")
                self.frag[1].extend(payload)
                if fin:
                    self.messages.append((self.frag[0], bytes(self.frag[1])))
                    self.frag = None
            elif op in (1, 2):
                if fin:
                    self.messages.append((op, payload))
                else:
                    self.frag = (op, bytearray(payload))
            else:
                raise Fail(f"{self.name}: unexpected opcode {op}")

    def upgrade(self, others=()):
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mles-websocket\r\n\r\n").encode()
        if isinstance(self.t, SClient):
            self.t.send_plain(req, head=True)
        else:
            self.t.send_plain(req)
        pump([self, *others], lambda: self.upgraded or self.ended, f"{self.name}: upgrade response")
        if not self.upgraded:
            raise Fail(f"{self.name}: connection ended ({self.ended}) during the upgrade")
        status = self.head.split("\r\n")[0]
        if " 101 " not in status + " ":
            raise Fail(f"{self.name}: no 101: {self.head!r}")
        import hashlib  # not at the top: its OpenSSL would read the config before OPENSSL_CONF is set
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if f"sec-websocket-accept: {accept}".lower() not in self.head.lower():
            raise Fail(f"{self.name}: wrong Sec-WebSocket-Accept: {self.head!r}")

    def join_frame(self, channel):
        return f'{{"uid":"{self.name}","channel":"{channel}"}}'.encode()

    def join(self, channel, others=()):
        self.upgrade(others)
        if isinstance(self.t, SClient):
            f, _ = sclient_safe_text(self.join_frame(channel))
            self.t.send_plain(f)
        else:
            self.t.send_plain(ws_frame(self.join_frame(channel), 1))

    def send(self, payload, op=2):
        self.t.send_plain(ws_frame(payload, op))

    def barrier(self, others, server):
        """Ping, then wait for its pong: the server has handled everything sent before."""
        token = ("sync%d" % random.randrange(10**8)).encode()
        if isinstance(self.t, SClient):
            f, _ = sclient_safe_text(token, op=9)
            self.t.send_plain(f)
        else:
            self.t.send_plain(ws_frame(token, 9))
        pump([self, *others], lambda: token in self.pongs or self.ended, f"{self.name}: pong", server=server)
        if token not in self.pongs:
            raise Fail(f"{self.name}: no pong; connection ended: {self.ended}")

    def skip_received(self):
        self._expect_base = len(self.messages)


def sclient_safe_text(text, op=1):
    """A frame of this payload for s_client: retries masks until no wire byte is a command
    letter (the payload must not contain them either)."""
    assert not (SCLIENT_COMMAND_BYTES & set(text)), text
    for _ in range(10000):
        mask = os.urandom(4)
        f = ws_frame(text, op, mask=mask)
        if not (SCLIENT_COMMAND_BYTES & set(f)):
            return f, text
    raise Fail("no mask found")


def expect_messages(receiver, expected, everyone, what, server, timeout=STEP):
    """Waits for the next len(expected) data messages of receiver (after those already
    checked or skipped) and compares them exactly with expected [(opcode, payload)]."""
    need = len(expected)
    base = receiver._expect_base
    pump(everyone, lambda: len(receiver.messages) - base >= need or receiver.ended or receiver.close_frame is not None,
         f"{what} ({len(receiver.messages) - base}/{need} so far)", timeout, server)
    got = receiver.messages[base:base + need]
    if len(got) < need:
        raise Fail(f"{what}: {receiver.name} got {len(got)}/{need} messages, then "
                   f"{'close frame ' + repr(receiver.close_frame) if receiver.close_frame is not None else receiver.ended}")
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            raise Fail(f"{what}: message {i} differs: got op {g[0]} {len(g[1])} bytes {g[1][:40]!r}..., "
                       f"expected op {e[0]} {len(e[1])} bytes {e[1][:40]!r}..."
                       + (f" (first difference at byte {next((j for j in range(min(len(g[1]), len(e[1]))) if g[1][j] != e[1][j]), min(len(g[1]), len(e[1])))})" if g[0] == e[0] else ""))
    receiver._expect_base = base + need


def no_more_messages(receiver):
    base = receiver._expect_base
    if len(receiver.messages) > base:
        raise Fail(f"{receiver.name} got unexpected messages: {[(o, p[:40]) for o, p in receiver.messages[base:]]}")


def pair(server, a, b, channel):
    """a joins channel, then b; b receives a's join frame (history). Messages start after."""
    a.join(channel, [b])
    a.barrier([b], server)  # a is in the channel before b joins (as tests/integration do)
    b.join(channel, [a])
    expect_messages(b, [(1, a.join_frame(channel))], [a, b], f"{b.name}: {a.name}'s join frame in the history", server)


# ---- cases ------------------------------------------------------------------------------------

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def http_get_sclient(port, version, suite, path):
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-quiet"]
    args += ["-tls1_3", "-ciphersuites", suite] if version == "1.3" else ["-tls1_2", "-cipher", suite]
    req = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    r = subprocess.run(args, input=req, capture_output=True, timeout=STEP)
    return r.stdout, r.stderr


def parse_http(raw, what):
    i = raw.find(b"\r\n\r\n")
    if i < 0:
        raise Fail(f"{what}: no complete response head in {raw[:300]!r}")
    head = raw[:i].decode(errors="replace")
    body = raw[i + 4:]
    status = head.split("\r\n")[0]
    headers = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def check_file_response(raw, expected, what):
    status, headers, body = parse_http(raw, what)
    if not status.startswith("HTTP/1.1 200"):
        raise Fail(f"{what}: status {status!r}")
    if headers.get("content-length") != str(len(expected)):
        raise Fail(f"{what}: Content-Length {headers.get('content-length')!r}, file has {len(expected)} bytes")
    if body != expected:
        raise Fail(f"{what}: body differs from the file ({len(body)} bytes received, {len(expected)} expected)")


def case_s_client_http(ctx, spec):
    version, suite = cipher_spec(spec)
    for path, rel in (("/", "index.html"), ("/app.js", "app.js"), ("/big.bin", "big.bin")):
        expected = open(os.path.join(ctx.site, rel), "rb").read()
        out, err = http_get_sclient(ctx.server.port, version, suite, path)
        try:
            check_file_response(out, expected, f"s_client {spec} GET {path}")
        except Fail as e:
            raise Fail(f"{e}\ns_client stderr: {err.decode(errors='replace')[-2000:]}")
    ctx.server.check_alive()


def start_sclient(ctx, version, suite, tag):
    sc = SClient(ctx.server.port, version, suite, os.path.join(ctx.tmp, f"msg-{tag}.txt"))
    ctx.cleanup.append(sc.close)
    return sc


def sclient_exchange(ctx, sc_member, py_member, rng, sizes, label):
    """Both directions, each size: py -> s_client and s_client -> py, byte for byte."""
    everyone = [sc_member, py_member]
    for n in sizes:
        f, payload = sclient_safe_frame(n, rng)
        sc_member.t.send_plain(f)
        expect_messages(py_member, [(2, payload)], everyone, f"{label}: {n} bytes s_client -> python", ctx.server)
        p2 = rng.randbytes(n)
        py_member.send(p2)
        expect_messages(sc_member, [(2, p2)], everyone, f"{label}: {n} bytes python -> s_client", ctx.server)


def case_s_client_ws(ctx, spec):
    version, suite = cipher_spec(spec)
    rng = random.Random(spec)
    sc = Member(start_sclient(ctx, version, suite, "ws"), "sclient")
    py = Member(PyTls(ctx.server.port), "python")
    ctx.cleanup.append(py.t.close)
    pair(ctx.server, sc, py, "sclient-" + spec)
    # text both ways
    f, text = sclient_safe_text(b"hello from s_client")
    sc.t.send_plain(f)
    expect_messages(py, [(1, text)], [sc, py], "text s_client -> python", ctx.server)
    py.send(b"hello from python", 1)
    expect_messages(sc, [(1, b"hello from python")], [sc, py], "text python -> s_client", ctx.server)
    sclient_exchange(ctx, sc, py, rng, SIZES + [3 << 20], spec)
    # several messages in a row each way, concurrently
    batch_sc = [sclient_safe_frame(rng.randrange(0, 3000), rng) for _ in range(200)]
    batch_py = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(200)]
    for f, _ in batch_sc:
        sc.t.send_plain(f)
    for p in batch_py:
        py.send(p)
    expect_messages(py, [(2, p) for _, p in batch_sc], [sc, py], "200 messages s_client -> python", ctx.server)
    expect_messages(sc, [(2, p) for p in batch_py], [sc, py], "200 messages python -> s_client", ctx.server)
    no_more_messages(sc)
    no_more_messages(py)
    sc.t.finish([py], ctx.server)  # close_notify from s_client, then the server ends the session
    py.send(b"after s_client left")
    py.barrier([], ctx.server)
    ctx.server.check_alive()


def keyupdate(ctx, sc, py, letter, rng, label):
    t = sc.t
    assert not t.wire_out  # everything before was delivered: s_client's stdin pipe is empty
    before = t.keyupdates_typed()
    t.command(letter)
    pump([sc, py], lambda: t.keyupdates_typed() > before or t.ended, f"{label}: s_client typing {letter}", server=ctx.server)
    if t.keyupdates_typed() <= before:
        raise Fail(f"{label}: s_client ended ({t.ended}) before its KeyUpdate: {bytes(t.err)[-500:]!r}")
    # The KeyUpdate leaves with s_client's next write, ahead of this message.
    sclient_exchange(ctx, sc, py, rng, [rng.choice([0, 1, 200, 5000, 40000])], f"{label} after {letter}")


def case_s_client_keyupdate(ctx, spec):
    version, suite = cipher_spec(spec)
    if version != "1.3":
        raise SystemExit("KeyUpdate is TLS 1.3")
    rng = random.Random("ku" + spec)
    sc = Member(start_sclient(ctx, version, suite, "ku"), "sclient")
    py = Member(PyTls(ctx.server.port), "python")
    ctx.cleanup.append(py.t.close)
    pair(ctx.server, sc, py, "rotation-" + spec)
    sclient_exchange(ctx, sc, py, rng, [10], "before any KeyUpdate")
    letters = ["K", "k", "K", "K", "k", "k", "K"] + ["K", "k"] * 6
    for i, letter in enumerate(letters):
        keyupdate(ctx, sc, py, letter, rng, f"KeyUpdate {i + 1}/{len(letters)}")
    # A session that sat idle, then a requested update.
    time.sleep(3)
    keyupdate(ctx, sc, py, "K", rng, "KeyUpdate after 3 s idle")
    # A big message right after an update (many records under the new keys both ways).
    keyupdate(ctx, sc, py, "K", rng, "KeyUpdate before 1 MiB")
    sclient_exchange(ctx, sc, py, rng, [1 << 20], "1 MiB after KeyUpdate")
    n_requested = sum(1 for l in letters if l == "K") + 2
    sc.t.finish([py], ctx.server)  # flushes the -msg file
    sent, received = sc.t.msg_keyupdates()
    if len(sent) != len(letters) + 2:
        raise Fail(f"s_client logged {len(sent)} KeyUpdates sent, {len(letters) + 2} typed")
    if sent != [1 if l == "K" else 0 for l in letters + ["K", "K"]]:
        raise Fail(f"s_client's KeyUpdates {sent} do not follow the typed letters")
    # RFC 8446 4.6.3: after update_requested the server sends its own KeyUpdate (update_not_
    # requested) before its next application data; every K above was followed by a message
    # to s_client, which s_client decrypted with the server's next key.
    if len(received) < n_requested:
        raise Fail(f"the server answered {len(received)} KeyUpdates, {n_requested} were requested")
    if any(r != 0 for r in received):
        raise Fail(f"the server's KeyUpdates requested an update back: {received}")
    no_more_messages(sc)
    no_more_messages(py)
    ctx.server.check_alive()
    log(f"KeyUpdates: s_client sent {sent}, server sent {received}")


def py_member(ctx, name, spec=None, **kw):
    version, suite = cipher_spec(spec) if spec else ("", None)
    t = PyTls(ctx.server.port, version, suite if version == "1.2" else None, **kw)
    ctx.cleanup.append(t.close)
    m = Member(t, name)
    return m


def check_negotiated(m, spec):
    version, suite = cipher_spec(spec)
    v, c = m.t.cipher()
    want_v = "TLSv1.3" if version == "1.3" else "TLSv1.2"
    if v != want_v or c != suite:
        raise Fail(f"negotiated {v} {c}, wanted {want_v} {suite}")


def case_python_sizes(ctx, spec):
    rng = random.Random("sizes" + spec)
    a, b = py_member(ctx, "alice", spec), py_member(ctx, "bob", spec)
    pair(ctx.server, a, b, "sizes")
    check_negotiated(a, spec)
    check_negotiated(b, spec)
    sizes = SIZES + [MAX_MESSAGE - 4096]
    for n in sizes:
        pa, pb = rng.randbytes(n), rng.randbytes(n)
        a.send(pa)
        b.send(pb)  # both directions at once
        expect_messages(b, [(2, pa)], [a, b], f"{n} bytes alice -> bob", ctx.server)
        expect_messages(a, [(2, pb)], [a, b], f"{n} bytes bob -> alice", ctx.server)
    # a text message of every size class too
    for n in (0, 125, 126, 70000):
        t = bytes(rng.choice(b"abcdefghij ") for _ in range(n))
        a.send(t, 1)
        expect_messages(b, [(1, t)], [a, b], f"{n} bytes text", ctx.server)
    no_more_messages(a)
    no_more_messages(b)
    ctx.server.check_alive()


def case_python_burst(ctx, spec):
    """Thousands of messages each way at once, without waiting: order and no loss."""
    rng = random.Random("burst" + spec)
    a, b = py_member(ctx, "alice", spec), py_member(ctx, "bob", spec)
    pair(ctx.server, a, b, "burst")
    check_negotiated(a, spec)
    n = 5000
    pa = [struct.pack(">I", i) + rng.randbytes(rng.randrange(0, 400)) for i in range(n)]
    pb = [struct.pack(">I", i) + rng.randbytes(rng.randrange(0, 400)) for i in range(n)]
    wire_a = b"".join(ws_frame(p) for p in pa)
    wire_b = b"".join(ws_frame(p) for p in pb)
    # in pieces that cut frames, so that TLS records and frames do not line up
    for i in range(0, max(len(wire_a), len(wire_b)), 7001):
        a.t.send_plain(wire_a[i:i + 7001])
        b.t.send_plain(wire_b[i:i + 7001])
    expect_messages(b, [(2, p) for p in pa], [a, b], f"{n} messages alice -> bob", ctx.server)
    expect_messages(a, [(2, p) for p in pb], [a, b], f"{n} messages bob -> alice", ctx.server)
    no_more_messages(a)
    no_more_messages(b)
    ctx.server.check_alive()


def case_python_backpressure(ctx, spec):
    """A receiver with a tiny TCP window that does not read for 2 s while ~12 MiB are sent to
    it (more than the kernel's 4 MiB send buffer; the server runs with --max-queue 64MiB so
    that it queues them): the server's writes stop part way through records and resume;
    everything arrives intact and in order. (Reads of records in small pieces: python_records.)"""
    rng = random.Random("bp" + spec)
    a = py_member(ctx, "alice", spec)
    b = py_member(ctx, "bob", spec, rcvbuf=4096)
    pair(ctx.server, a, b, "backpressure")
    for round_ in range(2):
        msgs = [rng.randbytes(rng.randrange(1, 800000)) for _ in range(30)]
        msgs += [rng.randbytes(rng.randrange(0, 100)) for _ in range(200)]
        for p in msgs:
            a.send(p)
        pump([a], lambda: not a.t.wire_out, "alice's messages written", server=ctx.server)
        a.barrier([], ctx.server)  # the server has them all; bob has read none
        t_end = time.monotonic() + 2
        pump([a], lambda: time.monotonic() >= t_end, "bob not reading", server=ctx.server)
        expect_messages(b, [(2, p) for p in msgs], [a, b], f"round {round_ + 1}: {len(msgs)} messages to a slow reader", ctx.server)
        b.send(b"read them all")
        expect_messages(a, [(2, b"read them all")], [a, b], "the slow reader answers", ctx.server)
    no_more_messages(a)
    no_more_messages(b)
    ctx.server.check_alive()


case_python_backpressure.server_args = ["--max-queue", "64MiB"]


def case_python_records(ctx, spec):
    """Odd record and segment boundaries: one plaintext byte per TLS record; TLS bytes written
    to the socket one and seven at a time (records split across reads); many records in one
    write. The server must reassemble all of them."""
    rng = random.Random("records" + spec)
    a, b = py_member(ctx, "alice", spec), py_member(ctx, "bob", spec)
    pair(ctx.server, a, b, "records")
    p1 = rng.randbytes(300)
    a.t.record = 1          # 306 records of one byte
    a.send(p1)
    a.t.record = None
    expect_messages(b, [(2, p1)], [a, b], "one byte per record", ctx.server)
    b.send(p1)
    expect_messages(a, [(2, p1)], [a, b], "reply after one byte per record", ctx.server)
    for size, n in ((1, 3000), (7, 30000), (16384 + 22 + 3, 200000)):
        a.t.chunk = (size, 0)
        p = rng.randbytes(n)
        a.send(p)
        pump([a, b], lambda: not a.t.wire_out, f"writing in {size}-byte pieces", server=ctx.server)
        a.t.chunk = None
        expect_messages(b, [(2, p)], [a, b], f"TLS bytes in {size}-byte pieces", ctx.server)
    # a record header alone, then its body 2 s later
    a.send(b"x" * 100)
    wire = bytes(a.t.wire_out)
    a.t.wire_out.clear()
    a.t.sock.setblocking(True)
    a.t.sock.sendall(wire[:3])
    time.sleep(1)
    a.t.sock.sendall(wire[3:5])
    time.sleep(1)
    a.t.sock.sendall(wire[5:])
    a.t.sock.setblocking(False)
    expect_messages(b, [(2, b"x" * 100)], [a, b], "a record delivered in three pieces over 2 s", ctx.server)
    b.send(b"done")
    expect_messages(a, [(2, b"done")], [a, b], "reply", ctx.server)
    no_more_messages(a)
    no_more_messages(b)
    ctx.server.check_alive()


def case_python_http(ctx, spec):
    """Keep-alive GETs over Python TLS: pipelined requests, a 3 MiB file, exact bodies."""
    a = py_member(ctx, "http", spec)
    site = ctx.site
    files = [("/", "index.html"), ("/big.bin", "big.bin"), ("/style.css", "style.css"), ("/app.js", "app.js")]
    req = b"".join(f"GET {p} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() for p, _ in files)
    a.t.send_plain(req)
    for path, rel in files:
        expected = open(os.path.join(site, rel), "rb").read()

        def complete():
            i = a.t.plain_in.find(b"\r\n\r\n")
            if i < 0:
                return bool(a.t.ended)
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", bytes(a.t.plain_in[:i]))
            return bool(a.t.ended) or (m is not None and len(a.t.plain_in) >= i + 4 + int(m.group(1)))

        pump([a.t], complete, f"GET {path}", server=ctx.server)
        i = a.t.plain_in.find(b"\r\n\r\n")
        if i < 0:
            raise Fail(f"GET {path}: connection ended ({a.t.ended}) before a response")
        status, headers, _ = parse_http(bytes(a.t.plain_in[:i + 4]), path)
        n = int(headers.get("content-length", "-1"))
        raw = bytes(a.t.plain_in[:i + 4 + n])
        del a.t.plain_in[:i + 4 + n]
        check_file_response(raw, expected, f"python {spec} GET {path}")
    ctx.server.check_alive()


def wait_end(ctx, m, what, others=()):
    pump([m, *others], lambda: m.t.ended is not None, what, server=ctx.server)
    return m.t.ended


def serves_new_client(ctx, tag):
    a, b = py_member(ctx, f"after-{tag}-a"), py_member(ctx, f"after-{tag}-b")
    pair(ctx.server, a, b, f"after-{tag}")
    a.send(b"still serving")
    expect_messages(b, [(2, b"still serving")], [a, b], f"a new session after {tag}", ctx.server)
    b.send(b"yes")
    expect_messages(a, [(2, b"yes")], [a, b], f"a new session after {tag}", ctx.server)


def case_close_notify(ctx, spec):
    # 1. WebSocket close, then close_notify: the server's close frame, then its close_notify
    #    (or a TCP close): no error, no reset.
    a, b = py_member(ctx, "alice", spec), py_member(ctx, "bob", spec)
    pair(ctx.server, a, b, "close")
    a.send(b"bye")
    expect_messages(b, [(2, b"bye")], [a, b], "before close", ctx.server)
    a.t.send_plain(ws_frame(struct.pack(">H", 1000), 8))
    pump([a, b], lambda: a.close_frame is not None or a.t.ended, "the server's close frame", server=ctx.server)
    if a.close_frame is None:
        raise Fail(f"no close frame; connection ended: {a.t.ended}")
    if a.close_frame[:2] != struct.pack(">H", 1000):
        raise Fail(f"close frame {a.close_frame!r}, wanted 1000")
    try:
        a.t.close_notify()
    except Exception as e:
        raise Fail(f"close_notify after the close frame: {e!r} (connection: {a.t.ended})")
    end = wait_end(ctx, a, "the end after close_notify", [b])
    if end != "close_notify":  # the server answers with its own close_notify (today's behaviour)
        raise Fail(f"after WebSocket close + close_notify the connection ended with {end!r}")
    log(f"WebSocket close + close_notify: connection ended with {end}")
    # 2. close_notify in the middle of a session (no WebSocket close): the server ends the
    #    session, so that the same uid can join again; bob is unaffected.
    c = py_member(ctx, "carol", spec)
    c.join("close", [b])
    pump([c, b], lambda: len(c.messages) >= 3, "carol's history", server=ctx.server)
    c.barrier([b], ctx.server)
    c.t.close_notify()
    end = wait_end(ctx, c, "the end after a bare close_notify", [b])
    # TLS 1.3 (the server's own record layer) answers with its own close_notify (RFC 8446
    # §6.1); OpenSSL's TLS 1.2 sessions close TCP without one here: either end, not a hang.
    wanted = ("close_notify",) if spec.startswith("tls13") else ("close_notify", "eof without close_notify")
    if end not in wanted:
        raise Fail(f"after a bare close_notify the connection ended with {end!r}")
    log(f"bare close_notify: connection ended with {end}")
    deadline = time.monotonic() + STEP
    for attempt in range(1000):
        c2 = py_member(ctx, "carol", spec)
        c2.join("close", [b])
        got = lambda: c2.close_frame is not None or c2.t.ended or len(c2.messages) >= 4
        pump([c2, b], got, "carol's second join", server=ctx.server)
        if c2.close_frame is None and not c2.t.ended:
            c2.skip_received()
            break
        if time.monotonic() > deadline:
            raise Fail(f"carol cannot join again after close_notify: {c2.close_frame!r} {c2.t.ended}")
        time.sleep(0.1)
    b.send(b"bob still here")
    expect_messages(c2, [(2, b"bob still here")], [c2, b], "bob -> carol after her rejoin", ctx.server)
    # 3. A client that drops TCP without close_notify (abortive) does not disturb anyone.
    d = py_member(ctx, "dave", spec)
    d.join("close", [b])
    pump([d, b], lambda: len(d.messages) >= 4, "dave's history", server=ctx.server)
    d.barrier([b], ctx.server)
    d.t.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    d.t.close()
    b.send(b"after reset")
    expect_messages(c2, [(2, b"after reset")], [c2, b], "after another member's reset", ctx.server)
    ctx.server.check_alive()


def tls_record(ctype, body, version=b"\x03\x03"):
    return bytes([ctype]) + version + struct.pack(">H", len(body)) + body


def sealed(t, plaintext):
    """The TLS bytes of plaintext under t's current keys, taken away from its output (the
    sequence number advances as if they had been sent)."""
    assert not t.outb.pending
    t.obj.write(plaintext)
    return t.outb.read()


def flipped(rng, t):
    r = bytearray(sealed(t, ws_frame(b"flip", 9)))
    r[-1] ^= 0x01  # the last byte of the tag
    return bytes(r)


def replayed(rng, t):
    r = sealed(t, ws_frame(b"once", 9))  # a ping: answered, nothing reaches the channel
    return r + r


def reordered(rng, t):
    r1 = sealed(t, ws_frame(b"one", 9))
    r2 = sealed(t, ws_frame(b"two", 9))
    return r2 + r1


# What a misbehaving client sends after its handshake: (bytes from (rng, PyTls), the alert
# the server must answer with (None: any alert), whether it only makes sense after the join).
GARBAGE = {
    # random bytes where a record header is expected
    "random": (lambda rng, t: rng.randbytes(2000), None, False),
    # an application_data record that does not decrypt
    "bad_mac": (lambda rng, t: tls_record(23, rng.randbytes(200)), "BAD_RECORD_MAC", False),
    # a record longer than 2^14 + 256 (TLS 1.3) / 2^14 + 2048 (TLS 1.2)
    "overflow": (lambda rng, t: tls_record(23, rng.randbytes(18500)), "RECORD_OVERFLOW", False),
    # a record of no known content type
    "unknown_type": (lambda rng, t: tls_record(99, rng.randbytes(40)), None, False),
    # a plaintext handshake record after the handshake
    "plain_handshake": (lambda rng, t: tls_record(22, b"\x01\x00\x00\x04\x03\x03\x00\x00"), None, False),
    # a plaintext warning alert (close_notify) where records must be protected
    "plain_alert": (lambda rng, t: tls_record(21, b"\x01\x00"), None, False),
    # a change_cipher_spec record after the handshake (TLS 1.3: only allowed before Finished)
    "ccs": (lambda rng, t: tls_record(20, b"\x01"), None, False),
    # a real record with one bit of its tag flipped
    "flipped_tag": (flipped, "BAD_RECORD_MAC", True),
    # a real record sent twice (the second under the wrong sequence number)
    "replayed": (replayed, "BAD_RECORD_MAC", True),
    # two real records swapped
    "reordered": (reordered, "BAD_RECORD_MAC", True),
    # a record cut short, then the TCP write side closed
    "truncated_then_fin": (lambda rng, t: tls_record(23, rng.randbytes(300))[:100], "", False),
}


def case_garbage(ctx, spec_kind):
    spec, kind = spec_kind.rsplit(":", 1)
    rng = random.Random(spec_kind)
    # bob sits in the channel throughout and must not notice anything
    a, b = py_member(ctx, "alice", spec), py_member(ctx, "bob", spec)
    pair(ctx.server, a, b, "garbage")
    make, want_alert, join_only = GARBAGE[kind]
    for when in ("after the join",) if join_only else ("after the join", "before the upgrade"):
        g = py_member(ctx, "mallory", spec)
        if when == "after the join":
            g.join("garbage", [a, b])
            pump([g, a, b], lambda: len(g.messages) >= 2, "mallory's history", server=ctx.server)
        else:
            pump([g], lambda: g.t.handshaken or g.t.ended, "mallory's handshake", server=ctx.server)
        g.t.send_raw(make(rng, g.t))
        if kind == "truncated_then_fin":
            pump([g], lambda: not g.t.wire_out, "writing", server=ctx.server)
            g.t.sock.shutdown(socket.SHUT_WR)
        end = wait_end(ctx, g, f"the server to close a connection sending {kind} {when}", [a, b])
        log(f"{kind} {when}: the connection ended with {end}")
        if want_alert is None and not end.startswith("alert:"):
            raise Fail(f"{kind} {when}: the server closed without an alert ({end})")
        if want_alert and not (end.startswith("alert:") and want_alert in end):
            raise Fail(f"{kind} {when}: the server ended the connection with {end}, wanted alert {want_alert}")
        # the server must not have delivered anything from mallory
        no_more_messages(b)
        a.send(b"unaffected " + when.encode())
        expect_messages(b, [(2, b"unaffected " + when.encode())], [a, b], f"alice -> bob after {kind} {when}", ctx.server)
        b.send(b"ok")
        expect_messages(a, [(2, b"ok")], [a, b], f"bob -> alice after {kind} {when}", ctx.server)
    serves_new_client(ctx, kind)
    ctx.server.check_alive()


def case_idle(ctx, spec):
    """Sessions that sat idle (3 s) still work both ways, several times, and after the idle a
    big message (many records) too."""
    rng = random.Random("idle" + spec)
    a, b = py_member(ctx, "alice", spec), py_member(ctx, "bob", spec)
    pair(ctx.server, a, b, "idle")
    for round_ in range(3):
        t_end = time.monotonic() + 3
        pump([a, b], lambda: time.monotonic() >= t_end, "idle time", server=ctx.server)  # answers pings
        p, q = rng.randbytes(100), rng.randbytes(300000)
        a.send(p)
        expect_messages(b, [(2, p)], [a, b], f"alice -> bob after idle {round_ + 1}", ctx.server)
        b.send(q)
        expect_messages(a, [(2, q)], [a, b], f"bob -> alice after idle {round_ + 1}", ctx.server)
    # one side idle while the other talks
    for i in range(20):
        a.send(struct.pack(">I", i))
    t_end = time.monotonic() + 3
    pump([a, b], lambda: time.monotonic() >= t_end, "idle time", server=ctx.server)
    expect_messages(b, [(2, struct.pack(">I", i)) for i in range(20)], [a, b], "twenty after idle", ctx.server)
    b.send(b"back")
    expect_messages(a, [(2, b"back")], [a, b], "bob talks after idle", ctx.server)
    no_more_messages(a)
    no_more_messages(b)
    ctx.server.check_alive()


SPECS13 = [f"tls13-{k}" for k in SUITES13]
SPECS12 = ["tls12-aes128", "tls12-chacha20"]


def all_cases():
    cases = {}
    for s in SPECS13 + SPECS12 + ["tls12-aes256"]:
        cases[f"s_client_http.{s}"] = (case_s_client_http, s)
    for s in SPECS13 + SPECS12:
        cases[f"s_client_ws.{s}"] = (case_s_client_ws, s)
        cases[f"python_sizes.{s}"] = (case_python_sizes, s)
        cases[f"python_burst.{s}"] = (case_python_burst, s)
    for s in SPECS13:
        cases[f"s_client_keyupdate.{s}"] = (case_s_client_keyupdate, s)
    for s in ["tls13-aes128", "tls12-aes128"]:
        cases[f"python_records.{s}"] = (case_python_records, s)
        cases[f"python_backpressure.{s}"] = (case_python_backpressure, s)
        cases[f"python_http.{s}"] = (case_python_http, s)
        cases[f"close_notify.{s}"] = (case_close_notify, s)
        cases[f"idle.{s}"] = (case_idle, s)
        for k in GARBAGE:
            cases[f"garbage.{s}.{k}"] = (case_garbage, f"{s}:{k}")
    cases["idle.tls13-chacha20"] = (case_idle, "tls13-chacha20")
    cases["python_backpressure.tls13-chacha20"] = (case_python_backpressure, "tls13-chacha20")
    cases["python_backpressure.tls13-aes256"] = (case_python_backpressure, "tls13-aes256")
    return cases


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mles")
    ap.add_argument("--www", help="the repository's www (the demo page is www/localhost)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="?")
    args = ap.parse_args()
    cases = all_cases()
    if args.list:
        print("\n".join(cases))
        return 0
    if args.case not in cases:
        raise SystemExit(f"unknown case {args.case!r}; --list shows them")
    fn, spec = cases[args.case]
    tmp = tempfile.mkdtemp(prefix="mles-tls-clients-")
    ctx = Ctx()
    ctx.tmp, ctx.cleanup, ctx.server = tmp, [], None
    t0 = time.monotonic()
    try:
        setup_openssl_conf(tmp, spec.split(":")[0])
        www = os.path.join(tmp, "www")
        ctx.site = os.path.join(www, "localhost")
        shutil.copytree(os.path.join(args.www, "localhost"), ctx.site)
        with open(os.path.join(ctx.site, "big.bin"), "wb") as f:
            f.write(random.Random(1).randbytes(3 << 20))
        ctx.server = Server(args.mles, www, getattr(fn, "server_args", ()))
        fn(ctx, spec)
        for c in reversed(ctx.cleanup):
            c()
        ctx.cleanup = []
        code = ctx.server.stop()
        if code != 0:
            raise Fail(f"server exited with {code} on SIGTERM:" + ctx.server.log_text())
        text = ctx.server.log_text()
        if "Sanitizer" in text or "runtime error" in text:
            raise Fail("sanitizer report in the server's log:" + text)
        log(f"ok: {args.case} ({time.monotonic() - t0:.1f} s)")
        return 0
    except Fail as e:
        log(f"FAIL: {args.case}: {e}")
        if ctx.server:
            log("server log:" + ctx.server.log_text())
        return 1
    finally:
        for c in reversed(ctx.cleanup):
            try:
                c()
            except Exception:
                pass
        if ctx.server:
            ctx.server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
