// Tests for our TLS 1.3 record protection (net/tls13_records.hpp): the RFC 8448 §3 "Simple
// 1-RTT Handshake" trace (application traffic keys, the NewSessionTicket, the application data
// and close_notify records of both sides, byte for byte), KeyUpdate in both directions, every
// suite, record sizes and splitting, and the protocol errors of RFC 8446 §5.
// Records the layer must accept or produce are checked against a reference made here directly
// on OpenSSL's EVP (HMAC for HKDF-Expand-Label, the AEADs), not against the layer itself.
#include "net/tls13_records.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace mles::net::tls13;
using bytes = std::vector<std::uint8_t>;
using buffer = mles::net::byte_buffer;  // what seal() and open() write to
using status = record_layer::status;

bytes from_hex(std::string_view hex) {
  bytes out;
  int high = -1;
  for (const char c : hex) {
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0) continue;  // spaces, line breaks
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  return out;
}

bytes to_bytes(std::span<const std::uint8_t> b) { return bytes(b.begin(), b.end()); }

bytes of(std::string_view s) { return bytes(s.begin(), s.end()); }

bytes cat(std::initializer_list<std::span<const std::uint8_t>> parts) {
  bytes out;
  for (const auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <std::size_t N>
bytes first(const std::array<std::uint8_t, N>& a, std::size_t n) {
  return bytes(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n));
}

// ---- RFC 8448 §3, "Simple 1-RTT Handshake" (TLS_AES_128_GCM_SHA256)
const bytes rfc_client_secret =
    from_hex("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5");
const bytes rfc_server_secret =
    from_hex("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43");
const bytes rfc_client_key = from_hex("17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51");
const bytes rfc_client_iv = from_hex("5b 78 92 3d ee 08 57 90 33 e5 23 d9");
const bytes rfc_server_key = from_hex("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56");
const bytes rfc_server_iv = from_hex("cf 78 2b 88 dd 83 54 9a ad f1 e9 84");
// {server} send handshake record: NewSessionTicket, the first record under the server's
// application key (sequence 0).
const bytes rfc_server_ticket_record = from_hex(
    "17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d"
    "6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 8e"
    "fb cf 57 53 ad 8e f1 70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0 9c"
    "30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15 13 98 91 d5 e4 c5 b4 06 f1"
    "6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77 f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d"
    "86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc"
    "26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b f1 59 85"
    "68 4f");
// {client} send application_data record: client key, sequence 0.
const bytes rfc_client_app_record = from_hex(
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f"
    "2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6"
    "3a ee bb 21 69 49 15 e4");
// {server} send application_data record: server key, sequence 1 (after the ticket).
const bytes rfc_server_app_record = from_hex(
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36"
    "e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54"
    "0d d0 32 e1 67 c2 95 5d");
// {client} send alert record (close_notify, 01 00): client key, sequence 1.
const bytes rfc_client_alert_record =
    from_hex("17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3");
// {server} send alert record (close_notify, 01 00): server key, sequence 2.
const bytes rfc_server_alert_record =
    from_hex("17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9");
// The 50-byte application payload of both sides: 00 01 02 ... 31.
bytes rfc_payload() {
  bytes p(50);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i);
  return p;
}

// ---- the reference: HKDF-Expand-Label and record protection straight on EVP
const char* digest_name(suite s) { return s == suite::aes_256_gcm_sha384 ? "SHA384" : "SHA256"; }
std::size_t ref_hash_len(suite s) { return s == suite::aes_256_gcm_sha384 ? 48 : 32; }
std::size_t ref_key_len(suite s) { return s == suite::aes_128_gcm_sha256 ? 16 : 32; }
const EVP_CIPHER* ref_cipher(suite s) {
  switch (s) {
    case suite::aes_128_gcm_sha256:
      return EVP_aes_128_gcm();
    case suite::aes_256_gcm_sha384:
      return EVP_aes_256_gcm();
    case suite::chacha20_poly1305_sha256:
      return EVP_chacha20_poly1305();
  }
  return nullptr;
}

bytes hmac(suite s, std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  std::array<std::uint8_t, 64> out{};
  std::size_t n = 0;
  const auto* r = EVP_Q_mac(nullptr, "HMAC", nullptr, digest_name(s), nullptr, key.data(), key.size(), data.data(),
                            data.size(), out.data(), out.size(), &n);
  if (r == nullptr) ADD_FAILURE() << "EVP_Q_mac failed";
  return bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
}

// RFC 5869 HKDF-Expand with the RFC 8446 §7.1 HkdfLabel as info.
bytes ref_expand_label(suite s, std::span<const std::uint8_t> secret, std::string_view label,
                       std::span<const std::uint8_t> context, std::size_t length) {
  const std::string full = "tls13 " + std::string(label);
  bytes info{static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length),
             static_cast<std::uint8_t>(full.size())};
  info.insert(info.end(), full.begin(), full.end());
  info.push_back(static_cast<std::uint8_t>(context.size()));
  info.insert(info.end(), context.begin(), context.end());
  bytes okm, t;
  for (std::uint8_t i = 1; okm.size() < length; ++i) {
    bytes block = cat({t, info});
    block.push_back(i);
    t = hmac(s, secret, block);
    okm.insert(okm.end(), t.begin(), t.end());
  }
  okm.resize(length);
  return okm;
}

bytes next_secret(suite s, std::span<const std::uint8_t> secret) {
  return ref_expand_label(s, secret, "traffic upd", {}, ref_hash_len(s));
}

struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

bytes ref_nonce(suite s, std::span<const std::uint8_t> secret, std::uint64_t seq) {
  bytes nonce = ref_expand_label(s, secret, "iv", {}, 12);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<std::uint8_t>(seq >> (8 * i));
  return nonce;
}

// One TLSCiphertext: inner = content || inner_type || zeros(padding).
bytes ref_seal(suite s, std::span<const std::uint8_t> secret, std::uint64_t seq, std::uint8_t inner_type,
               std::span<const std::uint8_t> content, std::size_t padding = 0, std::uint8_t outer_type = 0x17) {
  bytes inner(content.begin(), content.end());
  inner.push_back(inner_type);
  inner.insert(inner.end(), padding, 0);
  const std::size_t len = inner.size() + 16;
  bytes rec{outer_type, 0x03, 0x03, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)};
  const bytes key = ref_expand_label(s, secret, "key", {}, ref_key_len(s));
  const bytes nonce = ref_nonce(s, secret, seq);
  std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free> c(EVP_CIPHER_CTX_new());
  int n = 0;
  bool ok = EVP_EncryptInit_ex(c.get(), ref_cipher(s), nullptr, key.data(), nonce.data()) == 1;
  bytes aad(rec);
  ok = ok && EVP_EncryptUpdate(c.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1;
  rec.resize(5 + len);
  ok = ok && EVP_EncryptUpdate(c.get(), rec.data() + 5, &n, inner.data(), static_cast<int>(inner.size())) == 1;
  ok = ok && EVP_EncryptFinal_ex(c.get(), rec.data() + 5 + n, &n) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_AEAD_GET_TAG, 16, rec.data() + 5 + inner.size()) == 1;
  if (!ok) ADD_FAILURE() << "reference seal failed";
  return rec;
}

// The inner plaintext (content, type, padding) of the one record in rec; nullopt if it does
// not authenticate or is not exactly one record.
std::optional<bytes> ref_open(suite s, std::span<const std::uint8_t> secret, std::uint64_t seq,
                              std::span<const std::uint8_t> rec) {
  if (rec.size() < 5 + 16) return std::nullopt;
  const std::size_t len = std::size_t{rec[3]} << 8 | rec[4];
  if (rec.size() != 5 + len || rec[0] != 0x17 || rec[1] != 3 || rec[2] != 3) return std::nullopt;
  const bytes key = ref_expand_label(s, secret, "key", {}, ref_key_len(s));
  const bytes nonce = ref_nonce(s, secret, seq);
  std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free> c(EVP_CIPHER_CTX_new());
  bytes inner(len - 16);
  bytes tag(rec.end() - 16, rec.end());
  int n = 0;
  bool ok = EVP_DecryptInit_ex(c.get(), ref_cipher(s), nullptr, key.data(), nonce.data()) == 1;
  ok = ok && EVP_DecryptUpdate(c.get(), nullptr, &n, rec.data(), 5) == 1;
  ok = ok && EVP_DecryptUpdate(c.get(), inner.data(), &n, rec.data() + 5, static_cast<int>(inner.size())) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_AEAD_SET_TAG, 16, tag.data()) == 1;
  ok = ok && EVP_DecryptFinal_ex(c.get(), inner.data() + n, &n) == 1;
  if (!ok) return std::nullopt;
  return inner;
}

// The fatal alert record the layer should have put in out, as its inner plaintext.
bytes fatal_alert_inner(alert a) { return {2, static_cast<std::uint8_t>(a), 21}; }

const bytes key_update_requested{24, 0, 0, 1, 1};
const bytes key_update_not_requested{24, 0, 0, 1, 0};

// Fixed, distinct secrets for the tests that are not the RFC trace.
bytes test_secret(suite s, std::uint8_t base) {
  bytes b(ref_hash_len(s));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(base + i);
  return b;
}

constexpr suite all_suites[] = {suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384, suite::chacha20_poly1305_sha256};

bytes pattern(std::size_t n, std::uint32_t seed = 1) {
  bytes b(n);
  std::uint32_t x = seed;
  for (auto& v : b) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<std::uint8_t>(x >> 24);
  }
  return b;
}

// A server and a client layer on the same test secrets, and the secrets.
struct pair_fixture {
  suite s;
  bytes cs, ss;
  record_layer server, client;
  explicit pair_fixture(suite su)
      : s(su),
        cs(test_secret(su, 0x10)),
        ss(test_secret(su, 0x80)),
        server(su, role::server, cs, ss),
        client(su, role::client, cs, ss) {}
};

// open() on a copy of in; returns the result and the plaintext.
struct opened {
  record_layer::open_result r;
  bytes plain;
  buffer out;
};
opened open_copy(record_layer& l, std::span<const std::uint8_t> in) {
  opened o;
  bytes buf(in.begin(), in.end());
  o.r = l.open(buf, o.out);
  EXPECT_LE(o.r.consumed, buf.size());
  EXPECT_LE(o.r.plaintext, buf.size());
  o.plain.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(std::min(o.r.plaintext, buf.size())));
  return o;
}

// ---------------------------------------------------------------- RFC 8448 and primitives

TEST(tls13_records, suite_parameters) {
  EXPECT_EQ(suite_from_id(0x1301), suite::aes_128_gcm_sha256);
  EXPECT_EQ(suite_from_id(0x1302), suite::aes_256_gcm_sha384);
  EXPECT_EQ(suite_from_id(0x1303), suite::chacha20_poly1305_sha256);
  EXPECT_FALSE(suite_from_id(0x1304).has_value());  // CCM: not implemented
  EXPECT_FALSE(suite_from_id(0x1305).has_value());
  EXPECT_FALSE(suite_from_id(0xc02f).has_value());
  EXPECT_FALSE(suite_from_id(0).has_value());
  EXPECT_EQ(hash_length(suite::aes_128_gcm_sha256), 32u);
  EXPECT_EQ(hash_length(suite::aes_256_gcm_sha384), 48u);
  EXPECT_EQ(hash_length(suite::chacha20_poly1305_sha256), 32u);
  EXPECT_EQ(key_length(suite::aes_128_gcm_sha256), 16u);
  EXPECT_EQ(key_length(suite::aes_256_gcm_sha384), 32u);
  EXPECT_EQ(key_length(suite::chacha20_poly1305_sha256), 32u);
  EXPECT_EQ(alert_name(0), "close_notify");
  EXPECT_EQ(alert_name(10), "unexpected_message");
  EXPECT_EQ(alert_name(20), "bad_record_mac");
  EXPECT_EQ(alert_name(22), "record_overflow");
  EXPECT_EQ(alert_name(50), "decode_error");
  EXPECT_EQ(alert_name(80), "internal_error");
}

TEST(tls13_records, application_secrets_from_key_log_lines) {
  const std::string random(64, 'a');
  const std::string c32 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  const std::string s32 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
  application_secrets a;
  EXPECT_FALSE(a.complete_for(suite::aes_128_gcm_sha256));
  // Handshake secrets, other labels and malformed lines are ignored.
  a.take_keylog_line("CLIENT_HANDSHAKE_TRAFFIC_SECRET " + random + " " + c32);
  a.take_keylog_line("SERVER_HANDSHAKE_TRAFFIC_SECRET " + random + " " + s32);
  a.take_keylog_line("CLIENT_TRAFFIC_SECRET_1 " + random + " " + c32);
  a.take_keylog_line("CLIENT_TRAFFIC_SECRET_0 " + random + " " + c32.substr(1));    // odd length
  a.take_keylog_line("CLIENT_TRAFFIC_SECRET_0 " + random + " " + c32 + "zz");       // not hex
  a.take_keylog_line("SERVER_TRAFFIC_SECRET_0 " + random + " " + s32 + s32);        // 64 bytes
  a.take_keylog_line("SERVER_TRAFFIC_SECRET_0");                                    // no fields
  a.take_keylog_line("");
  EXPECT_EQ(a.client_len, 0u);
  EXPECT_EQ(a.server_len, 0u);

  a.take_keylog_line("CLIENT_TRAFFIC_SECRET_0 " + random + " " + c32);
  EXPECT_FALSE(a.complete_for(suite::aes_128_gcm_sha256));
  a.take_keylog_line("SERVER_TRAFFIC_SECRET_0 " + random + " " + s32);
  EXPECT_TRUE(a.complete_for(suite::aes_128_gcm_sha256));
  EXPECT_TRUE(a.complete_for(suite::chacha20_poly1305_sha256));
  EXPECT_FALSE(a.complete_for(suite::aes_256_gcm_sha384));  // its secrets are 48 bytes
  EXPECT_EQ(to_bytes(a.client_secret()), from_hex(c32));
  EXPECT_EQ(to_bytes(a.server_secret()), from_hex(s32));

  // SHA-384 suites: 48-byte secrets.
  application_secrets b;
  b.take_keylog_line("CLIENT_TRAFFIC_SECRET_0 " + random + " " + c32 + c32.substr(0, 32));
  b.take_keylog_line("SERVER_TRAFFIC_SECRET_0 " + random + " " + s32 + s32.substr(0, 32));
  EXPECT_TRUE(b.complete_for(suite::aes_256_gcm_sha384));
  EXPECT_FALSE(b.complete_for(suite::aes_128_gcm_sha256));
}

TEST(tls13_records, rfc8448_application_traffic_keys) {
  const suite s = suite::aes_128_gcm_sha256;
  EXPECT_EQ(expand_label(s, rfc_client_secret, "key", {}, 16), rfc_client_key);
  EXPECT_EQ(expand_label(s, rfc_client_secret, "iv", {}, 12), rfc_client_iv);
  EXPECT_EQ(expand_label(s, rfc_server_secret, "key", {}, 16), rfc_server_key);
  EXPECT_EQ(expand_label(s, rfc_server_secret, "iv", {}, 12), rfc_server_iv);
  // The reference agrees with the RFC too (it checks the records below).
  EXPECT_EQ(ref_expand_label(s, rfc_server_secret, "key", {}, 16), rfc_server_key);
  EXPECT_EQ(ref_expand_label(s, rfc_client_secret, "iv", {}, 12), rfc_client_iv);

  traffic_keys k;
  k.seq = 7;
  k.derive(s, rfc_server_secret);
  EXPECT_EQ(first(k.secret, 32), rfc_server_secret);
  EXPECT_EQ(first(k.key, 16), rfc_server_key);
  EXPECT_EQ(first(k.iv, 12), rfc_server_iv);
  EXPECT_EQ(k.seq, 0u);
  EXPECT_EQ(first(k.nonce(), 12), rfc_server_iv);
  k.seq = 1;
  EXPECT_EQ(first(k.nonce(), 12), from_hex("cf 78 2b 88 dd 83 54 9a ad f1 e9 85"));
  k.seq = 0x0102030405060708;
  EXPECT_EQ(first(k.nonce(), 12), from_hex("cf 78 2b 88 dc 81 57 9e a8 f7 ee 8c"));
}

TEST(tls13_records, expand_label_with_context_and_sha384) {
  // Against the reference: a context, another length, and the SHA-384 suite.
  const bytes ctx = from_hex("00 11 22 33 44 55");
  for (const suite s : all_suites) {
    const bytes secret = test_secret(s, 3);
    EXPECT_EQ(expand_label(s, secret, "c ap traffic", ctx, ref_hash_len(s)),
              ref_expand_label(s, secret, "c ap traffic", ctx, ref_hash_len(s)));
    EXPECT_EQ(expand_label(s, secret, "key", {}, ref_key_len(s)),
              ref_expand_label(s, secret, "key", {}, ref_key_len(s)));
  }
}

TEST(tls13_records, traffic_key_update) {
  // Application traffic secret 1 of the trace (not in RFC 8448; Botan's RFC 8448 cipher state test
  // has the same values).
  const suite s = suite::aes_128_gcm_sha256;
  traffic_keys c;
  c.derive(s, rfc_client_secret);
  c.seq = 5;
  c.update(s);
  const bytes c1 =
      from_hex("fc df cc 72 72 5a ae e4 8b f6 4e 4f d8 b7 49 cd bd ba b3 9d 90 da 0b 26 e2 24 5c a6 ea 16 72 07");
  EXPECT_EQ(first(c.secret, 32), c1);
  EXPECT_EQ(first(c.key, 16), ref_expand_label(s, c1, "key", {}, 16));
  EXPECT_EQ(first(c.iv, 12), ref_expand_label(s, c1, "iv", {}, 12));
  EXPECT_EQ(c.seq, 0u);
  traffic_keys sk;
  sk.derive(s, rfc_server_secret);
  sk.update(s);
  EXPECT_EQ(
      first(sk.secret, 32),
      from_hex("51 92 1b 8a a3 00 19 76 eb 40 1d 0a 43 19 a8 51 64 16 a6 c5 60 01 a3 57 e5 d1 62 03 1e 84 f9 16"));
  // SHA-384: the whole 48 bytes.
  traffic_keys k;
  const bytes secret = test_secret(suite::aes_256_gcm_sha384, 9);
  k.derive(suite::aes_256_gcm_sha384, secret);
  k.update(suite::aes_256_gcm_sha384);
  EXPECT_EQ(first(k.secret, 48), next_secret(suite::aes_256_gcm_sha384, secret));
  EXPECT_EQ(first(k.key, 32), ref_expand_label(suite::aes_256_gcm_sha384, first(k.secret, 48), "key", {}, 32));
}

TEST(tls13_records, rfc8448_records_sealed_byte_for_byte) {
  const suite s = suite::aes_128_gcm_sha256;
  // The server sent the NewSessionTicket (sequence 0) before; the client has read it.
  record_layer server(s, role::server, rfc_client_secret, rfc_server_secret, 1, 0);
  record_layer client(s, role::client, rfc_client_secret, rfc_server_secret, 0, 1);
  const bytes payload = rfc_payload();
  buffer out;
  client.seal(payload, out);
  EXPECT_EQ(to_bytes(out), rfc_client_app_record);
  out.clear();
  server.seal(payload, out);
  EXPECT_EQ(to_bytes(out), rfc_server_app_record);
  out.clear();
  client.seal_alert(alert::close_notify, out);
  EXPECT_EQ(to_bytes(out), rfc_client_alert_record);
  out.clear();
  server.seal_alert(alert::close_notify, out);
  EXPECT_EQ(to_bytes(out), rfc_server_alert_record);
  EXPECT_EQ(record_layer::sealed_size(50), rfc_client_app_record.size());
  EXPECT_EQ(client.write_keys().seq, 2u);
  EXPECT_EQ(server.write_keys().seq, 3u);
}

TEST(tls13_records, rfc8448_records_opened) {
  const suite s = suite::aes_128_gcm_sha256;
  record_layer server(s, role::server, rfc_client_secret, rfc_server_secret, 1, 0);
  record_layer client(s, role::client, rfc_client_secret, rfc_server_secret, 0, 1);
  auto o = open_copy(server, rfc_client_app_record);
  EXPECT_EQ(o.r.st, status::ok) << server.what();
  EXPECT_EQ(o.r.consumed, rfc_client_app_record.size());
  EXPECT_EQ(o.plain, rfc_payload());
  EXPECT_TRUE(o.out.empty());
  o = open_copy(client, rfc_server_app_record);
  EXPECT_EQ(o.r.st, status::ok) << client.what();
  EXPECT_EQ(o.r.consumed, rfc_server_app_record.size());
  EXPECT_EQ(o.plain, rfc_payload());
  EXPECT_TRUE(o.out.empty());
  o = open_copy(server, rfc_client_alert_record);
  EXPECT_EQ(o.r.st, status::closed);
  EXPECT_EQ(o.r.plaintext, 0u);
  EXPECT_EQ(o.r.consumed, rfc_client_alert_record.size());
  o = open_copy(client, rfc_server_alert_record);
  EXPECT_EQ(o.r.st, status::closed);
  EXPECT_EQ(o.r.plaintext, 0u);
  EXPECT_EQ(server.read_keys().seq, 2u);
  EXPECT_EQ(client.read_keys().seq, 3u);
}

TEST(tls13_records, rfc8448_client_ignores_the_session_ticket) {
  // The whole server → client application flight of the trace in one buffer: ticket, data, alert.
  record_layer client(suite::aes_128_gcm_sha256, role::client, rfc_client_secret, rfc_server_secret);
  const bytes flight = cat({rfc_server_ticket_record, rfc_server_app_record, rfc_server_alert_record});
  const auto o = open_copy(client, flight);
  EXPECT_EQ(o.r.st, status::closed) << client.what();
  EXPECT_EQ(o.plain, rfc_payload());
  EXPECT_TRUE(o.out.empty());
  // Record by record, too.
  record_layer c2(suite::aes_128_gcm_sha256, role::client, rfc_client_secret, rfc_server_secret);
  auto t = open_copy(c2, rfc_server_ticket_record);
  EXPECT_EQ(t.r.st, status::ok) << c2.what();
  EXPECT_EQ(t.r.consumed, rfc_server_ticket_record.size());
  EXPECT_EQ(t.r.plaintext, 0u);
  t = open_copy(c2, rfc_server_app_record);
  EXPECT_EQ(t.r.st, status::ok) << c2.what();
  EXPECT_EQ(t.plain, rfc_payload());
}

TEST(tls13_records, server_refuses_a_session_ticket) {
  // Any post-handshake handshake message but KeyUpdate is unexpected at a server: the trace's
  // ticket sealed under the client key (same inner plaintext).
  const suite s = suite::aes_128_gcm_sha256;
  auto inner = ref_open(s, rfc_server_secret, 0, rfc_server_ticket_record);
  ASSERT_TRUE(inner.has_value());
  ASSERT_EQ(inner->back(), 22);
  inner->pop_back();
  record_layer server(s, role::server, rfc_client_secret, rfc_server_secret);
  const auto o = open_copy(server, ref_seal(s, rfc_client_secret, 0, 22, *inner));
  EXPECT_EQ(o.r.st, status::error);
  EXPECT_FALSE(server.what().empty());
  EXPECT_EQ(ref_open(s, rfc_server_secret, 0, o.out), fatal_alert_inner(alert::unexpected_message));
}

// ---------------------------------------------------------------- KeyUpdate

TEST(tls13_records, server_answers_a_requested_key_update) {
  for (const suite s : all_suites) {
    SCOPED_TRACE(static_cast<int>(s));
    pair_fixture p(s);
    // The peer client is played by the reference (its key changes behind the client layer's back).
    auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 23, of("hello")));
    ASSERT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(o.plain, of("hello"));
    buffer wire;
    p.server.seal(of("to client"), wire);
    o = open_copy(p.client, wire);
    EXPECT_EQ(o.plain, of("to client"));

    o = open_copy(p.server, ref_seal(s, p.cs, 1, 22, key_update_requested));
    ASSERT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(o.r.plaintext, 0u);
    // The answer: KeyUpdate(update_not_requested) under the old server key, sequence 1.
    const bytes ss1 = next_secret(s, p.ss), cs1 = next_secret(s, p.cs);
    EXPECT_EQ(ref_open(s, p.ss, 1, o.out), cat({key_update_not_requested, bytes{22}}));
    EXPECT_EQ(first(p.server.read_keys().secret, ref_hash_len(s)), cs1);
    EXPECT_EQ(p.server.read_keys().seq, 0u);
    EXPECT_EQ(first(p.server.write_keys().secret, ref_hash_len(s)), ss1);
    EXPECT_EQ(p.server.write_keys().seq, 0u);

    // The client layer takes the answer: its read key rotates, it answers nothing.
    const auto c = open_copy(p.client, o.out);
    EXPECT_EQ(c.r.st, status::ok) << p.client.what();
    EXPECT_EQ(c.r.plaintext, 0u);
    EXPECT_TRUE(c.out.empty());
    EXPECT_EQ(first(p.client.read_keys().secret, ref_hash_len(s)), ss1);

    // Both directions go on under the new keys.
    o = open_copy(p.server, ref_seal(s, cs1, 0, 23, of("after")));
    EXPECT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(o.plain, of("after"));
    wire.clear();
    p.server.seal(of("later"), wire);
    EXPECT_EQ(ref_open(s, ss1, 0, wire), cat({of("later"), bytes{23}}));
    const auto c2 = open_copy(p.client, wire);
    EXPECT_EQ(c2.r.st, status::ok) << p.client.what();
    EXPECT_EQ(c2.plain, of("later"));
    // The old client key is gone.
    o = open_copy(p.server, ref_seal(s, p.cs, 2, 23, of("stale")));
    EXPECT_EQ(o.r.st, status::error);
  }
}

TEST(tls13_records, client_answers_a_requested_key_update_and_the_server_follows) {
  const suite s = suite::aes_256_gcm_sha384;
  pair_fixture p(s);
  // The server's request is played by the reference; the client answers under its old key and
  // rotates its write key; the real server takes the answer.
  auto o = open_copy(p.client, ref_seal(s, p.ss, 0, 22, key_update_requested));
  ASSERT_EQ(o.r.st, status::ok) << p.client.what();
  EXPECT_EQ(o.r.plaintext, 0u);
  EXPECT_EQ(ref_open(s, p.cs, 0, o.out), cat({key_update_not_requested, bytes{22}}));
  const bytes cs1 = next_secret(s, p.cs);
  EXPECT_EQ(first(p.client.write_keys().secret, 48), cs1);
  EXPECT_EQ(first(p.client.read_keys().secret, 48), next_secret(s, p.ss));

  const auto sv = open_copy(p.server, o.out);
  EXPECT_EQ(sv.r.st, status::ok) << p.server.what();
  EXPECT_TRUE(sv.out.empty());  // update_not_requested: no answer
  EXPECT_EQ(first(p.server.read_keys().secret, 48), cs1);
  EXPECT_EQ(first(p.server.write_keys().secret, 48), p.ss);  // its own key unchanged

  buffer wire;
  p.client.seal(of("from the client"), wire);
  const auto s2 = open_copy(p.server, wire);
  EXPECT_EQ(s2.r.st, status::ok) << p.server.what();
  EXPECT_EQ(s2.plain, of("from the client"));
}

TEST(tls13_records, key_update_not_requested_and_split_across_records) {
  const suite s = suite::chacha20_poly1305_sha256;
  pair_fixture p(s);
  // update_not_requested: the read key rotates, nothing is sent.
  auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 22, key_update_not_requested));
  ASSERT_EQ(o.r.st, status::ok) << p.server.what();
  EXPECT_TRUE(o.out.empty());
  const bytes cs1 = next_secret(s, p.cs);
  EXPECT_EQ(first(p.server.read_keys().secret, 32), cs1);
  EXPECT_EQ(first(p.server.write_keys().secret, 32), p.ss);
  // A KeyUpdate in two records (the message ends at a record boundary, RFC 8446 §5.1), in one
  // buffer with data under the new key after it.
  const bytes cs2 = next_secret(s, cs1);
  const bytes buf = cat({ref_seal(s, cs1, 0, 22, bytes{24, 0}), ref_seal(s, cs1, 1, 22, bytes{0, 1, 1}),
                         ref_seal(s, cs2, 0, 23, of("new key"))});
  o = open_copy(p.server, buf);
  ASSERT_EQ(o.r.st, status::ok) << p.server.what();
  EXPECT_EQ(o.r.consumed, buf.size());
  EXPECT_EQ(o.plain, of("new key"));
  EXPECT_EQ(first(p.server.read_keys().secret, 32), cs2);
  EXPECT_EQ(ref_open(s, p.ss, 0, o.out), cat({key_update_not_requested, bytes{22}}));
}

TEST(tls13_records, malformed_key_updates_are_errors) {
  const suite s = suite::aes_128_gcm_sha256;
  const bytes bad[] = {
      {24, 0, 0, 1, 2},      // request_update neither 0 nor 1
      {24, 0, 0, 2, 1, 0},   // length 2
      {24, 0, 0, 0},         // length 0
      {24, 0, 0, 1, 1, 23},  // bytes after the message, before a key change
  };
  for (const auto& msg : bad) {
    pair_fixture p(s);
    const auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 22, msg));
    EXPECT_EQ(o.r.st, status::error) << "KeyUpdate " << msg.size();
    EXPECT_FALSE(p.server.what().empty());
  }
  // A handshake record then application data before the message is complete.
  pair_fixture p(s);
  const auto o = open_copy(p.server, cat({ref_seal(s, p.cs, 0, 22, bytes{24, 0}), ref_seal(s, p.cs, 1, 23, of("x"))}));
  EXPECT_EQ(o.r.st, status::error);
  // An empty handshake record (RFC 8446 §5.1: zero-length handshake fragments MUST NOT be sent).
  pair_fixture q(s);
  EXPECT_EQ(open_copy(q.server, ref_seal(s, q.cs, 0, 22, bytes{})).r.st, status::error);
}

// ---------------------------------------------------------------- sizes, suites, buffers

TEST(tls13_records, round_trips_every_suite_and_size) {
  const std::size_t sizes[] = {0, 1, 16383, 16384, 16385, 1u << 20};
  for (const suite s : all_suites) {
    for (const std::size_t n : sizes) {
      SCOPED_TRACE(testing::Message() << "suite " << static_cast<int>(s) << " size " << n);
      pair_fixture p(s);
      EXPECT_EQ(p.server.cipher_suite(), s);
      const bytes msg = pattern(n, static_cast<std::uint32_t>(n + 7));
      buffer wire;
      p.client.seal(msg, wire);
      ASSERT_EQ(wire.size(), record_layer::sealed_size(n));
      const std::size_t records = n == 0 ? wire.size() / 22 : (n + max_plaintext - 1) / max_plaintext;
      if (n == 0) {
        EXPECT_LE(records, 1u);  // none, or one empty record
      }
      EXPECT_EQ(wire.size(), n + records * (header_length + 1 + tag_length));
      // Walk the records: all full but the last, each the reference's.
      std::size_t pos = 0, count = 0, data = 0;
      while (pos < wire.size() && count <= records) {
        ASSERT_GE(wire.size() - pos, header_length);
        const std::size_t len = std::size_t{wire[pos + 3]} << 8 | wire[pos + 4];
        ASSERT_LE(pos + header_length + len, wire.size());
        const std::size_t chunk = std::min(max_plaintext, n - data);
        EXPECT_EQ(len, chunk + 1 + tag_length);
        if (count == 0 || pos + header_length + len == wire.size()) {
          const auto inner =
              ref_open(s, p.cs, count, std::span<const std::uint8_t>(wire).subspan(pos, header_length + len));
          ASSERT_TRUE(inner.has_value());
          EXPECT_EQ(inner->size(), chunk + 1);
          EXPECT_EQ(inner->back(), 23);
          EXPECT_TRUE(std::equal(inner->begin(), inner->end() - 1, msg.begin() + static_cast<std::ptrdiff_t>(data)));
        }
        data += chunk;
        pos += header_length + len;
        ++count;
      }
      EXPECT_EQ(count, records);
      EXPECT_EQ(p.client.write_keys().seq, records);

      const auto o = open_copy(p.server, wire);
      ASSERT_EQ(o.r.st, status::ok) << p.server.what();
      EXPECT_EQ(o.r.consumed, wire.size());
      EXPECT_EQ(o.plain, msg);
      EXPECT_TRUE(o.out.empty());
      EXPECT_EQ(p.server.read_keys().seq, records);

      // And the other way.
      wire.clear();
      p.server.seal(msg, wire);
      const auto back = open_copy(p.client, wire);
      ASSERT_EQ(back.r.st, status::ok) << p.client.what();
      EXPECT_EQ(back.plain, msg);
    }
  }
}

TEST(tls13_records, several_records_in_one_buffer) {
  pair_fixture p(suite::aes_128_gcm_sha256);
  buffer wire;
  p.client.seal(of("one "), wire);
  p.client.seal(of("two "), wire);
  p.client.seal(of("three"), wire);
  EXPECT_EQ(wire.size(), 3 * 22 + 13u);
  const auto o = open_copy(p.server, wire);
  ASSERT_EQ(o.r.st, status::ok) << p.server.what();
  EXPECT_EQ(o.r.consumed, wire.size());
  EXPECT_EQ(o.plain, of("one two three"));
  EXPECT_EQ(p.server.read_keys().seq, 3u);
}

TEST(tls13_records, partial_records_wait_for_more_bytes) {
  const suite s = suite::aes_128_gcm_sha256;
  const bytes cs = test_secret(s, 0x10), ss = test_secret(s, 0x80);
  const bytes r1 = ref_seal(s, cs, 0, 23, of("first record"));
  const bytes r2 = ref_seal(s, cs, 1, 23, of("second"));
  const bytes all = cat({r1, r2});
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    SCOPED_TRACE(cut);
    record_layer server(s, role::server, cs, ss);
    bytes buf(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(cut));
    buffer out;
    auto r = server.open(buf, out);
    ASSERT_EQ(r.st, status::ok) << server.what();
    const std::size_t whole = cut < r1.size() ? 0 : cut < all.size() ? r1.size() : all.size();
    ASSERT_EQ(r.consumed, whole);
    bytes got(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.plaintext));
    // The caller keeps the rest and adds the remaining bytes.
    bytes rest(buf.begin() + static_cast<std::ptrdiff_t>(r.consumed), buf.end());
    rest.insert(rest.end(), all.begin() + static_cast<std::ptrdiff_t>(cut), all.end());
    r = server.open(rest, out);
    ASSERT_EQ(r.st, status::ok) << server.what();
    EXPECT_EQ(r.consumed, rest.size());
    got.insert(got.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(r.plaintext));
    EXPECT_EQ(got, of("first recordsecond"));
    EXPECT_TRUE(out.empty());
  }
}

TEST(tls13_records, padding_is_accepted) {
  for (const suite s : all_suites) {
    pair_fixture p(s);
    // Some padding, padding up to the inner limit (2^14 + 1 with the type), and a record of
    // padding only (no data, type application_data).
    const bytes buf =
        cat({ref_seal(s, p.cs, 0, 23, of("pad"), 1), ref_seal(s, p.cs, 1, 23, of("ded"), 300),
             ref_seal(s, p.cs, 2, 23, of("max"), max_plaintext - 3), ref_seal(s, p.cs, 3, 23, bytes{}, 1000)});
    const auto o = open_copy(p.server, buf);
    ASSERT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(o.r.consumed, buf.size());
    EXPECT_EQ(o.plain, of("padded"
                          "max"));
    // Data ending in zero bytes keeps them (only zeros after the type are padding).
    pair_fixture q(s);
    const auto z = open_copy(q.server, ref_seal(s, q.cs, 0, 23, bytes{'a', 0, 0}, 2));
    ASSERT_EQ(z.r.st, status::ok) << q.server.what();
    EXPECT_EQ(z.plain, (bytes{'a', 0, 0}));
  }
}

TEST(tls13_records, all_zero_inner_plaintext_is_an_error) {
  const suite s = suite::aes_128_gcm_sha256;
  pair_fixture p(s);
  const auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 0, bytes{0, 0, 0}));
  EXPECT_EQ(o.r.st, status::error);
  EXPECT_FALSE(p.server.what().empty());
  EXPECT_EQ(ref_open(s, p.ss, 0, o.out), fatal_alert_inner(alert::unexpected_message));
  pair_fixture q(s);
  EXPECT_EQ(open_copy(q.server, ref_seal(s, q.cs, 0, 0, bytes{})).r.st, status::error);
}

TEST(tls13_records, unknown_inner_type_is_an_error) {
  const suite s = suite::aes_128_gcm_sha256;
  for (const std::uint8_t type : {std::uint8_t{20}, std::uint8_t{24}, std::uint8_t{99}}) {
    pair_fixture p(s);
    const auto o = open_copy(p.server, ref_seal(s, p.cs, 0, type, of("x")));
    EXPECT_EQ(o.r.st, status::error) << int{type};
    EXPECT_EQ(ref_open(s, p.ss, 0, o.out), fatal_alert_inner(alert::unexpected_message)) << int{type};
  }
}

TEST(tls13_records, every_tampered_byte_is_bad_record_mac) {
  const suite s = suite::aes_128_gcm_sha256;
  const bytes cs = test_secret(s, 0x10), ss = test_secret(s, 0x80);
  const bytes rec = ref_seal(s, cs, 0, 23, of("tamper with me"));
  for (std::size_t i = 0; i < rec.size(); ++i) {
    if (i == 3 || i == 4) continue;  // the length: another record boundary
    SCOPED_TRACE(i);
    record_layer server(s, role::server, cs, ss);
    bytes buf = rec;
    buf[i] ^= 0x01;
    buffer out;
    const auto r = server.open(buf, out);
    EXPECT_EQ(r.st, status::error);
    EXPECT_FALSE(server.what().empty());
    // The type byte is another error (unexpected_message); a changed legacy_record_version
    // may be refused before decryption: some fatal alert. The rest fails authentication.
    if (i >= 5) {
      EXPECT_EQ(ref_open(s, ss, 0, out), fatal_alert_inner(alert::bad_record_mac));
    } else if (i >= 1) {
      EXPECT_FALSE(out.empty());
    }
  }
  // A good record before the bad one in the same buffer: still an error, the alert follows.
  record_layer server(s, role::server, cs, ss);
  bytes buf = cat({ref_seal(s, cs, 0, 23, of("good")), ref_seal(s, cs, 1, 23, of("bad"))});
  buf.back() ^= 0x80;
  buffer out;
  EXPECT_EQ(server.open(buf, out).st, status::error);
  EXPECT_EQ(ref_open(s, ss, 0, out), fatal_alert_inner(alert::bad_record_mac));
}

TEST(tls13_records, wrong_outer_type_is_an_error) {
  const suite s = suite::aes_128_gcm_sha256;
  for (const std::uint8_t type :
       {std::uint8_t{20}, std::uint8_t{21}, std::uint8_t{22}, std::uint8_t{24}, std::uint8_t{0}, std::uint8_t{0xff}}) {
    SCOPED_TRACE(int{type});
    pair_fixture p(s);
    const auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 23, of("x"), 0, type));
    EXPECT_EQ(o.r.st, status::error);
    EXPECT_FALSE(p.server.what().empty());
    EXPECT_EQ(ref_open(s, p.ss, 0, o.out), fatal_alert_inner(alert::unexpected_message));
  }
}

TEST(tls13_records, record_overflow) {
  const suite s = suite::aes_128_gcm_sha256;
  {
    // Outer length 2^14 + 257, the whole record present.
    pair_fixture p(s);
    bytes rec = ref_seal(s, p.cs, 0, 23, bytes(max_ciphertext - 16), 0);  // length 2^14 + 257
    ASSERT_EQ(rec.size(), header_length + max_ciphertext + 1);
    const auto o = open_copy(p.server, rec);
    EXPECT_EQ(o.r.st, status::error);
    EXPECT_EQ(ref_open(s, p.ss, 0, o.out), fatal_alert_inner(alert::record_overflow));
  }
  {
    // The header alone says it: no need to wait for 16 KB that cannot be valid.
    pair_fixture p(s);
    const auto o = open_copy(p.server, bytes{0x17, 3, 3, 0x41, 0x01});
    EXPECT_EQ(o.r.st, status::error);
    EXPECT_EQ(ref_open(s, p.ss, 0, o.out), fatal_alert_inner(alert::record_overflow));
  }
  {
    // Outer length fine, inner plaintext 2^14 + 2 (data 2^14 + 1 and the type): too long.
    pair_fixture p(s);
    const auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 23, bytes(max_plaintext + 1, 'x')));
    EXPECT_EQ(o.r.st, status::error);
    EXPECT_EQ(ref_open(s, p.ss, 0, o.out), fatal_alert_inner(alert::record_overflow));
    // Padding counts too.
    pair_fixture q(s);
    const auto o2 = open_copy(q.server, ref_seal(s, q.cs, 0, 23, bytes(max_plaintext, 'x'), 1));
    EXPECT_EQ(o2.r.st, status::error);
    EXPECT_EQ(ref_open(s, q.ss, 0, o2.out), fatal_alert_inner(alert::record_overflow));
  }
  {
    // Exactly at the limits: fine.
    pair_fixture p(s);
    const auto o = open_copy(p.server, ref_seal(s, p.cs, 0, 23, bytes(max_plaintext, 'y')));
    EXPECT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(o.plain, bytes(max_plaintext, 'y'));
  }
}

TEST(tls13_records, too_short_to_hold_a_tag_is_an_error) {
  const suite s = suite::aes_128_gcm_sha256;
  for (std::uint8_t len : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{16}}) {
    pair_fixture p(s);
    bytes rec{0x17, 3, 3, 0, len};
    rec.resize(5 + len, 0xab);
    const auto o = open_copy(p.server, rec);
    EXPECT_EQ(o.r.st, status::error) << int{len};
    EXPECT_FALSE(o.out.empty());
  }
}

TEST(tls13_records, fatal_alert_from_the_peer_is_an_error_naming_it) {
  const suite s = suite::aes_128_gcm_sha256;
  pair_fixture p(s);
  buffer wire;
  p.client.seal(of("before"), wire);
  p.client.seal_alert(alert::internal_error, wire);
  // The client's alert is fatal internal_error.
  EXPECT_EQ(ref_open(s, p.cs, 1, std::span<const std::uint8_t>(wire).subspan(28)),
            fatal_alert_inner(alert::internal_error));
  auto o = open_copy(p.server, wire);
  EXPECT_EQ(o.r.st, status::error);
  EXPECT_NE(p.server.what().find("internal_error"), std::string::npos) << p.server.what();
  // Another one, sent by hand: handshake_failure (40), fatal.
  pair_fixture q(s);
  o = open_copy(q.server, ref_seal(s, q.cs, 0, 21, bytes{2, 40}));
  EXPECT_EQ(o.r.st, status::error);
  EXPECT_NE(q.server.what().find(alert_name(40)), std::string::npos) << q.server.what();
  EXPECT_FALSE(alert_name(40).empty());
  // A malformed alert (three bytes) is an error as well.
  pair_fixture m(s);
  EXPECT_EQ(open_copy(m.server, ref_seal(s, m.cs, 0, 21, bytes{1, 0, 0})).r.st, status::error);
}

TEST(tls13_records, close_notify_delivers_what_came_before) {
  const suite s = suite::aes_256_gcm_sha384;
  pair_fixture p(s);
  buffer wire;
  p.client.seal(of("last words"), wire);
  p.client.seal_alert(alert::close_notify, wire);
  EXPECT_EQ(ref_open(s, p.cs, 1, std::span<const std::uint8_t>(wire).subspan(wire.size() - 24)), (bytes{1, 0, 21}));
  const std::size_t alert_end = wire.size();
  // Anything after close_notify is ignored, even garbage.
  wire.insert(wire.end(), {0x17, 3, 3, 0, 20, 1, 2, 3});
  const auto o = open_copy(p.server, wire);
  EXPECT_EQ(o.r.st, status::closed) << p.server.what();
  EXPECT_EQ(o.plain, of("last words"));
  EXPECT_GE(o.r.consumed, alert_end);
  EXPECT_TRUE(o.out.empty());
}

TEST(tls13_records, release_contexts_between_records) {
  for (const suite s : all_suites) {
    pair_fixture p(s);
    buffer wire;
    p.client.release_contexts();  // before any use, too
    p.client.seal(of("a"), wire);
    p.client.release_contexts();
    p.client.seal(of("b"), wire);
    p.client.release_contexts();
    p.client.release_contexts();
    EXPECT_EQ(ref_open(s, p.cs, 1, std::span<const std::uint8_t>(wire).subspan(23)), (bytes{'b', 23}));
    auto o = open_copy(p.server, std::span<const std::uint8_t>(wire).first(23));
    EXPECT_EQ(o.plain, of("a"));
    p.server.release_contexts();
    o = open_copy(p.server, std::span<const std::uint8_t>(wire).subspan(23));
    EXPECT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(o.plain, of("b"));
    // Across a key update as well.
    p.server.release_contexts();
    o = open_copy(p.server, ref_seal(s, p.cs, 2, 22, key_update_requested));
    ASSERT_EQ(o.r.st, status::ok) << p.server.what();
    EXPECT_EQ(ref_open(s, p.ss, 0, o.out), cat({key_update_not_requested, bytes{22}}));
    p.server.release_contexts();
    o = open_copy(p.server, ref_seal(s, next_secret(s, p.cs), 0, 23, of("c")));
    EXPECT_EQ(o.plain, of("c"));
    wire.clear();
    p.server.seal(of("d"), wire);
    EXPECT_EQ(ref_open(s, next_secret(s, p.ss), 0, wire), (bytes{'d', 23}));
  }
}

TEST(tls13_records, sequence_numbers_from_the_constructor) {
  // write_seq / read_seq start the nonces where OpenSSL left them.
  const suite s = suite::chacha20_poly1305_sha256;
  const bytes cs = test_secret(s, 0x10), ss = test_secret(s, 0x80);
  record_layer server(s, role::server, cs, ss, 5, 9);
  EXPECT_EQ(server.write_keys().seq, 5u);
  EXPECT_EQ(server.read_keys().seq, 9u);
  EXPECT_EQ(first(server.write_keys().secret, 32), ss);
  EXPECT_EQ(first(server.read_keys().secret, 32), cs);
  buffer wire;
  server.seal(of("s"), wire);
  EXPECT_EQ(ref_open(s, ss, 5, wire), (bytes{'s', 23}));
  const auto o = open_copy(server, ref_seal(s, cs, 9, 23, of("c")));
  EXPECT_EQ(o.plain, of("c"));
  record_layer client(s, role::client, cs, ss, 3, 4);
  EXPECT_EQ(first(client.write_keys().secret, 32), cs);
  EXPECT_EQ(first(client.read_keys().secret, 32), ss);
  wire.clear();
  client.seal(of("k"), wire);
  EXPECT_EQ(ref_open(s, cs, 3, wire), (bytes{'k', 23}));
}

// Walks the records of wire as the peer reads them from (secret, seq): each must open there,
// a KeyUpdate moves to the next secret at sequence 0. Returns the inner plaintexts; stops
// (and fails) at the first record that does not open, so a reused nonce shows.
std::vector<bytes> walk(suite s, bytes secret, std::uint64_t seq, std::span<const std::uint8_t> wire) {
  std::vector<bytes> inners;
  std::size_t pos = 0;
  for (int guard = 0; pos + header_length <= wire.size() && guard < 1000; ++guard) {
    const std::size_t len = std::size_t{wire[pos + 3]} << 8 | wire[pos + 4];
    const auto inner = ref_open(s, secret, seq, wire.subspan(pos, std::min(wire.size() - pos, header_length + len)));
    if (!inner) {
      ADD_FAILURE() << "record " << inners.size() << " does not open at sequence " << seq;
      return inners;
    }
    inners.push_back(*inner);
    pos += header_length + len;
    if (inner->size() == 6 && inner->back() == 22 && (*inner)[0] == 24) {
      secret = next_secret(s, secret);
      seq = 0;
    } else {
      ++seq;
    }
  }
  EXPECT_EQ(pos, wire.size());
  return inners;
}

TEST(tls13_records, aes_gcm_key_is_updated_before_its_record_limit) {
  // RFC 8446 §5.5: at most 2^24.5 full-size records under one AES-GCM key. A layer that takes
  // over after 2^25 records (write_seq) must send a KeyUpdate before more data.
  for (const suite s : {suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384}) {
    const bytes cs = test_secret(s, 0x10), ss = test_secret(s, 0x80);
    const std::uint64_t start = std::uint64_t{1} << 25;
    record_layer server(s, role::server, cs, ss, start);
    buffer wire;
    server.seal(of("data"), wire);
    const auto inners = walk(s, ss, start, wire);
    ASSERT_EQ(inners.size(), 2u);
    EXPECT_EQ(inners[0], cat({key_update_not_requested, bytes{22}}));
    EXPECT_EQ(inners[1], cat({of("data"), bytes{23}}));
    EXPECT_EQ(first(server.write_keys().secret, ref_hash_len(s)), next_secret(s, ss));
    EXPECT_EQ(server.write_keys().seq, 1u);
    // The peer follows.
    record_layer client(s, role::client, cs, ss, 0, start);
    const auto o = open_copy(client, wire);
    EXPECT_EQ(o.r.st, status::ok) << client.what();
    EXPECT_EQ(o.plain, of("data"));
    EXPECT_TRUE(o.out.empty());
  }
  // Well below the limit, and ChaCha20-Poly1305 (no such limit): no KeyUpdate.
  for (const auto& [s, start] : {std::pair{suite::aes_128_gcm_sha256, std::uint64_t{1000}},
                                 std::pair{suite::chacha20_poly1305_sha256, std::uint64_t{1} << 25}}) {
    const bytes cs = test_secret(s, 0x10), ss = test_secret(s, 0x80);
    record_layer server(s, role::server, cs, ss, start);
    buffer wire;
    server.seal(of("data"), wire);
    EXPECT_EQ(ref_open(s, ss, start, wire), cat({of("data"), bytes{23}}));
  }
}

TEST(tls13_records, sequence_number_never_reused_near_its_end) {
  // RFC 8446 §5.3: a sequence number must not wrap; rekeying is the way out. Whatever the layer
  // does near 2^64 - 1, each (key, sequence number) is used once: the peer opens every record in
  // order.
  for (const suite s : all_suites) {
    SCOPED_TRACE(static_cast<int>(s));
    const bytes cs = test_secret(s, 0x10), ss = test_secret(s, 0x80);
    const std::uint64_t max = ~std::uint64_t{0};
    for (const std::uint64_t start : {max - 2, max - 1, max}) {
      SCOPED_TRACE(testing::Message() << "write_seq 2^64 - " << (max - start + 1));
      record_layer server(s, role::server, cs, ss, start);
      buffer wire;
      server.seal(of("a"), wire);
      server.seal(of("b"), wire);
      server.seal(of("c"), wire);
      const auto inners = walk(s, ss, start, wire);
      bytes data;
      for (const auto& inner : inners) {
        if (inner.back() == 23) data.insert(data.end(), inner.begin(), inner.end() - 1);
      }
      EXPECT_EQ(data, of("abc"));
    }
  }
}

}  // namespace
