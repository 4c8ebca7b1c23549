#!/usr/bin/env python3
"""Writes the seed corpus of the tls13_record fuzz target (fuzz/corpus/tls13_record/seed_*).

Input format (see fuzz/tls13_record_fuzz.cpp): byte 0 = mode (bits 0-1) | suite (bits 2-3:
0 AES-128-GCM with the RFC 8448 secrets, 1 AES-256-GCM, 2 ChaCha20-Poly1305, fixed pattern
secrets), byte 1 = chunking seed, then the mode's bytes. Records are sealed here with Python's
cryptography package (python3-cryptography), independently of the C++ layer, so a seed that
stops opening means the layer changed, not the corpus.
Run from anywhere: python3 fuzz/corpus/make_tls13_corpus.py (existing seed_* files are replaced)."""
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tls13_record")

AES128, AES256, CHACHA = 0, 1, 2
RAW_SERVER, RAW_CLIENT, SEAL, STRUCT = 0, 1, 2, 3

RFC_CLIENT = bytes.fromhex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
RFC_SERVER = bytes.fromhex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
# RFC 8448 §3 records: NewSessionTicket (server key, seq 0), application data (client seq 0,
# server seq 1), close_notify (client seq 1, server seq 2).
RFC_TICKET = bytes.fromhex(
    "170303 00de 3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63c758db289a01"
    "5940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b9fa1b6c0d4a3d03f75e09c30ba"
    "1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f16e3fc181a77ca475840025db2f0a77f81b5ab0"
    "5b94c01346755f69232c86519d86cbeeac87aac347d143f9605d64f650db4d023e70e952ca49fe5137121c74bc2697687e"
    "248746d6df353005f3bce18696129c8153556b3b6c6779b37bf15985684f")
RFC_CLIENT_APP = bytes.fromhex(
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b6297"
    "4e1f5a6292a2977014bd1e3deae63aeebb21694915e4")
RFC_SERVER_APP = bytes.fromhex(
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc4"
    "9c4bf2e5f0a21c0047c2abf332540dd032e167c2955d")
RFC_CLIENT_ALERT = bytes.fromhex("1703030013c9872760655666b74d7ff1153efd6db6d0b0e3")
RFC_SERVER_ALERT = bytes.fromhex("1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9")


def hash_of(suite):
    return hashlib.sha384 if suite == AES256 else hashlib.sha256


def secret(suite, client):
    if suite == AES128:
        return RFC_CLIENT if client else RFC_SERVER
    n = hash_of(suite)().digest_size
    return bytes(((0x10 if client else 0x80) + i) & 0xFF for i in range(n))


def expand_label(suite, secret_, label, length):
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret_, t + info + bytes([i]), hash_of(suite)).digest()
        out += t
        i += 1
    return out[:length]


class Sender:
    """One direction's keys and sequence number, as the peer has them."""

    def __init__(self, suite, secret_):
        self.suite, self.secret, self.seq = suite, secret_, 0

    def seal(self, inner_type, content, padding=0):
        key = expand_label(self.suite, self.secret, b"key", 16 if self.suite == AES128 else 32)
        iv = expand_label(self.suite, self.secret, b"iv", 12)
        nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + struct.pack(">Q", self.seq)))
        inner = content + bytes([inner_type]) + bytes(padding)
        header = b"\x17\x03\x03" + struct.pack(">H", len(inner) + 16)
        aead = ChaCha20Poly1305(key) if self.suite == CHACHA else AESGCM(key)
        self.seq += 1
        return header + aead.encrypt(nonce, inner, header)

    def update(self):
        self.secret = expand_label(self.suite, self.secret, b"traffic upd", hash_of(self.suite)().digest_size)
        self.seq = 0


KU_REQUESTED = bytes([24, 0, 0, 1, 1])
KU_NOT_REQUESTED = bytes([24, 0, 0, 1, 0])


def head(mode, suite, seed):
    return bytes([mode | suite << 2, seed])


def item(inner_type, content, padding=0):
    assert len(content) < 256 and padding < 256
    return bytes([inner_type, len(content)]) + content + bytes([padding])


def keyupdate_flight(suite):
    c = Sender(suite, secret(suite, True))
    out = c.seal(23, b"hello") + c.seal(22, KU_REQUESTED)
    c.update()
    return out + c.seal(23, b"under the new key", 7) + c.seal(21, b"\x01\x00")


def seeds():
    c256 = Sender(AES256, secret(AES256, True))
    padded = c256.seal(23, b"padded", 40) + c256.seal(21, b"\x02\x50")  # then fatal internal_error
    tampered = bytearray(Sender(AES128, RFC_CLIENT).seal(23, b"tampered"))
    tampered[-1] ^= 1
    ku_split = Sender(CHACHA, secret(CHACHA, True))
    split = ku_split.seal(22, KU_REQUESTED[:2]) + ku_split.seal(22, KU_REQUESTED[2:])
    ku_split.update()
    split += ku_split.seal(23, b"after a split KeyUpdate")
    return {
        "rfc_client_flight": head(RAW_SERVER, AES128, 0) + RFC_CLIENT_APP + RFC_CLIENT_ALERT,
        "rfc_client_flight_chunked": head(RAW_SERVER, AES128, 5) + RFC_CLIENT_APP + RFC_CLIENT_ALERT,
        "rfc_server_flight": head(RAW_CLIENT, AES128, 3) + RFC_TICKET + RFC_SERVER_APP + RFC_SERVER_ALERT,
        "keyupdate_chacha": head(RAW_SERVER, CHACHA, 0) + keyupdate_flight(CHACHA),
        "keyupdate_aes256": head(RAW_SERVER, AES256, 9) + keyupdate_flight(AES256),
        "keyupdate_split": head(RAW_SERVER, CHACHA, 2) + split,
        "padding_fatal_alert": head(RAW_SERVER, AES256, 0) + padded,
        "tampered": head(RAW_SERVER, AES128, 0) + bytes(tampered),
        "overflow_header": head(RAW_SERVER, AES128, 0) + bytes([0x17, 3, 3, 0x41, 0x01]),
        "wrong_outer_type": head(RAW_SERVER, AES128, 0) + bytes([0x16]) + RFC_CLIENT_APP[1:],
        "seal_hello_close": head(SEAL, AES128, 1) + b"hello, world",
        "seal_chunks": head(SEAL, CHACHA, 0x36) + bytes(i * 7 & 0xFF for i in range(600)),
        "seal_empty": head(SEAL, AES256, 0),
        "struct_keyupdate": head(STRUCT, AES128, 0)
        + item(23, b"abc")
        + item(22, KU_REQUESTED)
        + item(23, b"def", 3)
        + item(21, b"\x01\x00"),
        "struct_not_requested": head(STRUCT, AES256, 4) + item(22, KU_NOT_REQUESTED) + item(23, b"x", 200),
        "struct_bad": head(STRUCT, CHACHA, 0) + item(23, b"ok") + item(0, b"", 5) + item(23, b"never"),
        "struct_alert": head(STRUCT, AES128, 7) + item(23, b"bye") + item(21, b"\x02\x28"),
    }


def check_rfc8448():
    """The sealer reproduces the trace's records (and so the trace is copied right)."""
    c, s = Sender(AES128, RFC_CLIENT), Sender(AES128, RFC_SERVER)
    assert c.seal(23, bytes(range(50))) == RFC_CLIENT_APP
    assert c.seal(21, b"\x01\x00") == RFC_CLIENT_ALERT
    ticket = AESGCM(expand_label(AES128, RFC_SERVER, b"key", 16)).decrypt(
        expand_label(AES128, RFC_SERVER, b"iv", 12), RFC_TICKET[5:], RFC_TICKET[:5])
    assert ticket[0] == 4 and ticket[-1] == 22 and len(RFC_TICKET) == 5 + 0xDE
    s.seq = 1
    assert s.seal(23, bytes(range(50))) == RFC_SERVER_APP
    assert s.seal(21, b"\x01\x00") == RFC_SERVER_ALERT


def main():
    check_rfc8448()
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.startswith("seed_"):
            os.remove(os.path.join(OUT, name))
    for name, data in seeds().items():
        with open(os.path.join(OUT, "seed_" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
