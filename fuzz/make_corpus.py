#!/usr/bin/env python3
"""Writes the seed corpus for the libFuzzer targets (fuzz/corpus/<target>/seed_*).

frame_parser inputs: byte 0 = max_message index (bits 0-2) | chunking style << 3,
byte 1 = chunk seed, then the byte stream (parsed in the server and the client role: masked
client frames, or unmasked server frames for the client role). join_frame inputs: the text
of a first message. peer_envelope inputs: a whole peer-link message (envelope + payload).
proxy_header inputs: the first bytes of a connection (PROXY protocol v1/v2 header and more).
channel_token inputs: a channel name, also read as a NATS subject token.
Run from anywhere: python3 fuzz/make_corpus.py (existing seed_* files are replaced; files
added by libFuzzer -merge keep their hash names)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_1M, MAX_125, MAX_126, MAX_1000, MAX_64K = 7, 2, 3, 4, 6


def frame(b0, payload=b"", key=b"\x37\xfa\x21\x3d", form=None, masked=True):
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if form == 64 or (form is None and n > 0xFFFF):
        head = bytes([b0, mask_bit | 127]) + struct.pack(">Q", n)
    elif form == 16 or (form is None and n >= 126):
        head = bytes([b0, mask_bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mask_bit | n])
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close(code, reason=b""):
    return frame(0x88, struct.pack(">H", code) + reason)


FRAME_SEEDS = {
    "rfc_hello": (MAX_1M, 0, bytes([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])),
    "rfc_fragmented": (MAX_1M | 1 << 3, 7, frame(0x01, b"Hel") + frame(0x80, b"lo")),
    "ping_pong": (MAX_1M | 2 << 3, 1, frame(0x89, b"Hello") + frame(0x8A, b"Hello")),
    "ping_125": (MAX_1M | 3 << 3, 2, frame(0x89, bytes(range(125)))),
    "ping_126_bad": (MAX_1M, 3, frame(0x89, bytes(126))),
    "close_empty": (MAX_1M, 0, frame(0x88) + frame(0x81, b"after")),
    "close_reason": (MAX_1M | 1 << 3, 5, close(1000, b"bye \xe2\x82\xac")),
    "close_4999": (MAX_1M, 0, close(4999, b"app")),
    "close_one_byte": (MAX_1M, 0, frame(0x88, b"\x03")),
    "close_1005_bad": (MAX_1M, 0, close(1005)),
    "close_bad_utf8": (MAX_1M, 0, close(1000, b"\xc0\xaf")),
    "binary_126": (MAX_1M | 1 << 3, 9, frame(0x82, bytes(range(126)))),
    "binary_256": (MAX_1M | 3 << 3, 11, frame(0x82, bytes(i & 0xFF for i in range(256)))),
    "binary_64k_header_only": (MAX_64K, 0, frame(0x82, b"", form=64)[:2] + struct.pack(">Q", 65536) + b"\1\2\3\4"),
    "binary_64k_header_max_1m": (MAX_1M | 1 << 3, 4, bytes([0x82, 0xFF]) + struct.pack(">Q", 65536) + b"\1\2\3\4abcd"),
    "len16_nonminimal": (MAX_1M, 0, frame(0x82, b"abc", form=16)),
    "len64_nonminimal": (MAX_1M, 0, frame(0x82, bytes(200), form=64)),
    "len64_msb": (MAX_1M, 0, bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])),
    "unmasked": (MAX_1M, 0, frame(0x81, b"Hello", masked=False)),
    "rsv1": (MAX_1M, 0, frame(0xC1, b"x")),
    "rsv3": (MAX_1M, 0, frame(0x91, b"x")),
    "opcode_3": (MAX_1M, 0, frame(0x83, b"x")),
    "opcode_b": (MAX_1M, 0, frame(0x8B)),
    "fragmented_ping": (MAX_1M, 0, frame(0x09, b"p")),
    "cont_without_start": (MAX_1M, 0, frame(0x80, b"x")),
    "text_inside_fragments": (MAX_1M, 0, frame(0x02, b"a") + frame(0x81, b"b")),
    "empty_frames": (MAX_1M | 1 << 3, 13, frame(0x81) + frame(0x02) + frame(0x00) + frame(0x80) + frame(0x82)),
    "utf8_split_fragments": (MAX_1M | 0 << 3, 0,
                             frame(0x01, b"a\xe2") + frame(0x00, b"\x82") + frame(0x80, b"\xac\xf0\x9f\x98\x80")),
    "utf8_invalid_mid": (MAX_1M | 2 << 3, 17, frame(0x01, b"abc") + frame(0x00, b"de\xf8gh") + frame(0x80, b"x")),
    "utf8_truncated_end": (MAX_1M, 0, frame(0x81, b"ok\xe2\x82")),
    "utf8_surrogate": (MAX_1M, 0, frame(0x81, b"\xed\xa0\x80")),
    "interleaved_control": (MAX_1M | 1 << 3, 23,
                            frame(0x01, b"Hel") + frame(0x89, b"p1") + frame(0x00, b"l") + frame(0x8A)
                            + frame(0x80, b"o") + close(1001)),
    "too_big_single": (MAX_125, 0, frame(0x82, bytes(126))),
    "too_big_fragments": (MAX_126, 0, frame(0x02, bytes(100)) + frame(0x80, bytes(27))),
    "exactly_max": (MAX_126 | 1 << 3, 31, frame(0x02, bytes(100)) + frame(0x80, bytes(26))),
    "control_not_counted": (MAX_1000 | 2 << 3, 37, frame(0x02, b"ab") + frame(0x89, bytes(100)) + frame(0x80, b"c")),
    "mixed_stream": (MAX_1M | 3 << 3, 41,
                     frame(0x81, b"Hello", b"\1\2\3\4") + frame(0x01, b"gr\xc3\xbc", b"\x09\x08\x07\x06")
                     + frame(0x89, b"are you there", b"\xaa\xbb\xcc\xdd")
                     + frame(0x00, b"\xc3\x9fe \xe2\x82", b"\5\6\7\x08") + frame(0x80, b"\xac!", b"\x11\x22\x33\x44")
                     + frame(0x82, bytes(i * 7 & 0xFF for i in range(300)), b"\xde\xad\xbe\xef")
                     + frame(0x8A, b"", b"\0\0\0\0") + close(4000, b"ok")),
    "partial_header": (MAX_1M | 0 << 3, 0, frame(0x81, b"Hello")[:4]),
    "partial_payload": (MAX_1M | 1 << 3, 3, frame(0x82, bytes(300))[:150]),
    "join_frame_text": (MAX_1M | 2 << 3, 5, frame(0x81, b'{"uid":"alice","channel":"example"}')),
    # Server frames (unmasked), for the client role (peer links); the server role refuses them.
    "server_rfc_hello": (MAX_1M, 0, bytes([0x81, 0x05]) + b"Hello"),
    "server_rfc_fragmented": (MAX_1M | 0 << 3, 3, frame(0x01, b"Hel", masked=False) + frame(0x80, b"lo", masked=False)),
    "server_ping_pong": (MAX_1M | 1 << 3, 5, frame(0x89, b"Hello", masked=False) + frame(0x8A, b"", masked=False)),
    "server_binary_256": (MAX_1M | 2 << 3, 7, frame(0x82, bytes(i & 0xFF for i in range(256)), masked=False)),
    "server_binary_64k_partial": (MAX_1M | 3 << 3, 9, bytes([0x82, 0x7F]) + struct.pack(">Q", 65536) + b"abcd"),
    "server_too_big": (MAX_1000, 0, frame(0x02, bytes(600), masked=False) + frame(0x80, bytes(401), masked=False)),
    "server_len16_nonminimal": (MAX_1M, 0, frame(0x82, b"abc", form=16, masked=False)),
    "server_utf8_split": (MAX_1M | 1 << 3, 11, frame(0x01, b"a\xe2", masked=False) + frame(0x89, b"p", masked=False)
                          + frame(0x80, b"\x82\xac", masked=False)),
    "server_utf8_invalid": (MAX_1M, 0, frame(0x81, b"ok\xff", masked=False)),
    "server_close_reason": (MAX_1M | 2 << 3, 13, frame(0x88, struct.pack(">H", 1001) + b"going", masked=False)),
    "server_masked_after_good": (MAX_1M | 1 << 3, 17, frame(0x81, b"ok", masked=False) + frame(0x81, b"masked")),
    "server_rsv2": (MAX_1M, 0, frame(0xA2, b"x", masked=False)),
}

JOIN_SEEDS = {
    "basic": b'{"uid":"alice","channel":"example"}',
    "spec_example": b'{ "uid":"alice", "channel":"example" }\n',
    "with_auth": b'{"uid":"user1","channel":"chan1","auth":"a129ca6149be45e5"}',
    "auth_upper_plus": b'{"uid":"u","channel":"c","auth":"+00DEADBEEF"}',
    "auth_null": b'{"uid":"u","channel":"c","auth":null}',
    "auth_number": b'{"uid":"u","channel":"c","auth":12}',
    "auth_empty": b'{"uid":"u","channel":"c","auth":""}',
    "auth_overflow": b'{"uid":"u","channel":"c","auth":"10000000000000000"}',
    "unknown_members": b'{"v":2,"uid":"u","x":{"a":[1,2,{"b":null}]},"channel":"c","n":1.5e3,"t":true}',
    "escapes": b'{"uid":"a\\"b\\\\c\\/d\\u0041","channel":"\\t"}',
    "base64_like": b'{"uid":"q83vEjRWeJA+/w==","channel":"AAECAwQFBgcICQ=="}',
    "missing_uid": b'{"channel":"c"}',
    "empty_uid": b'{"uid":"","channel":"c"}',
    "uid_number": b'{"uid":1,"channel":"c"}',
    "missing_channel": b'{"uid":"u"}',
    "channel_array": b'{"uid":"u","channel":["c"]}',
    "non_ascii_raw": '{"uid":"bé","channel":"c"}'.encode(),
    "non_ascii_escaped": b'{"uid":"\\u00e9","channel":"c"}',
    "surrogate_pair": b'{"uid":"u","channel":"\\ud83d\\ude00"}',
    "lone_surrogate": b'{"uid":"u","channel":"\\ud83d"}',
    "invalid_utf8": b'{"uid":"\xff","channel":"c"}',
    "raw_nul": b'{"uid":"a\x00b","channel":"c"}',
    "duplicate_uid": b'{"uid":"first","channel":"c","uid":"second"}',
    "array": b'["uid","channel"]',
    "null": b"null",
    "number": b"42",
    "string": b'"uid"',
    "empty": b"",
    "truncated": b'{"uid":"u","channel":"c"',
    "trailing": b'{"uid":"u","channel":"c"}x',
    "trailing_comma": b'{"uid":"u","channel":"c",}',
    "comment": b'{"uid":"u","channel":"c"} // hi',
    "deep_31": b'{"uid":"u","channel":"c","x":' + b"[" * 31 + b"]" * 31 + b"}",
    "deep_40": b'{"uid":"u","channel":"c","x":' + b"[" * 40 + b"]" * 40 + b"}",
    "numbers": b'{"uid":"u","channel":"c","a":-0.0e-0,"b":1E400,"c":123456789012345678901234567890}',
}


def envelope(flags, server, instance, seq, payload=b""):
    return bytes([0xE1, flags, len(server)]) + server + struct.pack(">QQ", instance, seq) + payload


ENVELOPE_SEEDS = {
    "text_hi": envelope(1, b"alpha", 0x0102030405060708, 42, b"hi"),
    "binary_empty": envelope(0, b"b", 1, 1),
    "history_join": envelope(3, b"node-1.example:8443", 7, 1, b'{"uid":"alice","channel":"example"}'),
    "hashed_all_flags": envelope(7, b"~", 2**64 - 1, 2**64 - 1, bytes(range(256))),
    "server_id_64": envelope(0, b"z" * 64, 5, 9, b"x"),
    "nested_envelope": envelope(0, b"b", 1, 1, envelope(1, b"alpha", 2, 3, b"\x80")),
    "bad_magic": b"\xe2" + envelope(1, b"alpha", 1, 1, b"hi")[1:],
    "member_json": b'{"uid":"alice","channel":"example"}',
    "bad_flags": envelope(8, b"alpha", 1, 1),
    "bad_flags_high": envelope(0x81, b"alpha", 1, 1),
    "server_id_0": bytes([0xE1, 0, 0]) + bytes(16),
    "server_id_65": bytes([0xE1, 0, 65]) + b"y" * 65 + bytes(16),
    "server_id_space": envelope(0, b"a b", 1, 1),
    "server_id_del": envelope(0, b"a\x7f", 1, 1),
    "sequence_0": envelope(0, b"a", 1, 0),
    "truncated_header": envelope(1, b"alpha", 1, 1)[:20],
    "truncated_id": bytes([0xE1, 0, 10]) + b"abc",
    "empty": b"",
}

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(ver_cmd, fam, payload):
    return V2_SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(payload)) + payload


INET4 = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack(">HH", 51234, 443)
INET6 = bytes.fromhex("20010db8000000000000000000000005" "20010db8000000000000000000000001") + struct.pack(">HH", 4660, 443)

# proxy_header inputs: the first bytes of a connection behind a load balancer.
PROXY_SEEDS = {
    "v1_tcp4": b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET / HTTP/1.1\r\n",
    "v1_tcp6": b"PROXY TCP6 2001:db8::5 2001:db8::1 4660 443\r\n\x16\x03\x01",
    "v1_unknown": b"PROXY UNKNOWN\r\n",
    "v1_unknown_longest": b"PROXY UNKNOWN " + b":".join([b"ffff"] * 8) + b" " + b":".join([b"ffff"] * 8) + b" 65535 65535\r\n",
    "v1_too_long": b"PROXY UNKNOWN " + b"x" * 120,
    "v1_bad_port": b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
    "v1_lf_only": b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\n",
    "v1_partial": b"PROXY TCP4 192.0.2.7 198.5",
    "v2_inet": proxy_v2(0x21, 0x11, INET4) + b"\x16\x03\x01",
    "v2_inet_tlvs": proxy_v2(0x21, 0x11, INET4 + b"\x04\x00\x03abc\xee\x00\x00"),
    "v2_inet6": proxy_v2(0x21, 0x21, INET6),
    "v2_local": proxy_v2(0x20, 0x00, b""),
    "v2_unix": proxy_v2(0x21, 0x31, bytes(216)),
    "v2_dgram": proxy_v2(0x21, 0x12, INET4),
    "v2_short_block": proxy_v2(0x21, 0x21, INET4),
    "v2_oversized": V2_SIG + b"\x21\x11\xff\xff",
    "v2_partial": proxy_v2(0x21, 0x11, INET4)[:20],
    "tls_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "http_get": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "empty": b"",
}

# channel_token inputs: read both as a channel name and as a token.
CHANNEL_SEEDS = {
    "plain": b"general",
    "plain_all": b"ABCXYZabcxyz0189_-",
    "dots": b"a.b.c",
    "wildcards": b"foo.*.>",
    "star": b"*",
    "gt": b">",
    "spaces": b"my channel \t\r\n",
    "escape_char": b"=",
    "escape_lookalike": b"a=2Eb",
    "system": b"$JS.API.>",
    "all_ascii": bytes(range(128)),
    "high_bytes": b"\x80\xc3\xa9\xff",
    "token_escaped": b"foo=2E=2A=3D",
    "token_double_escape": b"==",
    "token_lower_hex": b"a=2eb",
    "token_plain_escaped": b"=41",
    "token_truncated": b"abc=3",
    "empty": b"",
}


def write(target, seeds, encode):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith("seed_"):
            os.remove(os.path.join(directory, name))
    for name, value in seeds.items():
        with open(os.path.join(directory, "seed_" + name), "wb") as f:
            f.write(encode(value))


write("frame_parser", FRAME_SEEDS, lambda v: bytes([v[0], v[1]]) + v[2])
write("join_frame", JOIN_SEEDS, lambda v: v)
write("peer_envelope", ENVELOPE_SEEDS, lambda v: v)
write("proxy_header", PROXY_SEEDS, lambda v: v)
write("channel_token", CHANNEL_SEEDS, lambda v: v)
