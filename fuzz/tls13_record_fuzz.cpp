// libFuzzer target for net::tls13::record_layer::open (our TLS 1.3 record protection), with
// fixed traffic secrets (TLS_AES_128_GCM_SHA256: those of RFC 8448 §3, so the trace's records
// are seeds). Input: byte 0 = mode (bits 0-1) | suite (bits 2-3, 3 = the first), byte 1 =
// chunking seed (0: all at once), then by mode:
//   0  ciphertext opened by a server layer, fed in chunks as from a socket
//   1  the same, by a client layer (reads the server's key; NewSessionTicket path)
//   2  the rest is application data: a client layer seals it (in several calls; seed bit 0:
//      then close_notify), a server layer opens it; the plaintext must come back exactly
//   3  records sealed here under the client key, items [inner type][length][content][padding
//      length], so authentic records reach the inner parsing (KeyUpdate, alerts, padding); the
//      sender follows its own KeyUpdates. What the server delivers must be a prefix of the
//      application data of the records (RFC 8446 §5.4 inner parsing), what it answers while
//      status ok must open cleanly at a client layer.
// Invariants in all modes: consumed/plaintext bounded, a complete record is never left behind,
// errors say why.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "net/tls13_records.hpp"

namespace {

using namespace mles::net::tls13;
using bytes = std::vector<std::uint8_t>;
using mles::net::byte_buffer;
using status = record_layer::status;

void require(bool condition) {
  if (!condition) std::abort();
}

// RFC 8448 §3 application traffic secrets; other suites: fixed patterns.
constexpr std::array<std::uint8_t, 32> rfc_client = {0x9e, 0x40, 0x64, 0x6c, 0xe7, 0x9a, 0x7f, 0x9d, 0xc0, 0x5a, 0xf8,
                                                     0x88, 0x9b, 0xce, 0x65, 0x52, 0x87, 0x5a, 0xfa, 0x0b, 0x06, 0xdf,
                                                     0x00, 0x87, 0xf7, 0x92, 0xeb, 0xb7, 0xc1, 0x75, 0x04, 0xa5};
constexpr std::array<std::uint8_t, 32> rfc_server = {0xa1, 0x1a, 0xf9, 0xf0, 0x55, 0x31, 0xf8, 0x56, 0xad, 0x47, 0x11,
                                                     0x6b, 0x45, 0xa9, 0x50, 0x32, 0x82, 0x04, 0xb4, 0xf4, 0x4b, 0xfb,
                                                     0x6b, 0x3a, 0x4b, 0x4f, 0x1f, 0x3f, 0xcb, 0x63, 0x16, 0x43};

bytes secret_of(suite s, bool client) {
  if (s == suite::aes_128_gcm_sha256) {
    const auto& a = client ? rfc_client : rfc_server;
    return bytes(a.begin(), a.end());
  }
  bytes b(hash_length(s));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>((client ? 0x10 : 0x80) + i);
  return b;
}

// Chunk sizes from the seed: 0 = everything at once.
struct chunker {
  std::uint32_t x;
  std::size_t next(std::size_t left) {
    if (x == 0) return left;
    x = x * 1103515245u + 12345u;
    const std::size_t limit = (x >> 16 & 1) != 0 ? 7 : 700;
    return std::min(left, 1 + (x >> 8) % limit);
  }
};

// Feeds in to l in chunks as a connection would; returns the last status and appends the
// delivered plaintext and whatever l wants sent.
status feed(record_layer& l, std::span<const std::uint8_t> in, std::uint8_t seed, bytes& plain, byte_buffer& out) {
  chunker ch{seed};
  bytes pending;
  std::size_t pos = 0;
  for (int rounds = 0; pos < in.size() && rounds < 100000; ++rounds) {
    const std::size_t n = ch.next(in.size() - pos);
    pending.insert(pending.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                   in.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    const auto r = l.open(pending, out);
    require(r.consumed <= pending.size());
    require(r.plaintext <= r.consumed);
    if (r.st == status::error) {
      require(!l.what().empty());
      return status::error;
    }
    plain.insert(plain.end(), pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(r.plaintext));
    if (r.st == status::closed) return status::closed;
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(r.consumed));
    // Whole records are always taken.
    if (pending.size() >= header_length) {
      const std::size_t len = std::size_t{pending[3]} << 8 | pending[4];
      if (len <= max_ciphertext) require(pending.size() < header_length + len);
    }
  }
  return status::ok;
}

// A record under k (then k.seq + 1), sealed here with EVP.
void seal_by_hand(suite s, traffic_keys& k, std::span<const std::uint8_t> inner, byte_buffer& out) {
  const std::size_t len = inner.size() + tag_length;
  const std::array<std::uint8_t, header_length> header{0x17, 3, 3, static_cast<std::uint8_t>(len >> 8),
                                                       static_cast<std::uint8_t>(len)};
  const std::size_t at = out.size();
  out.insert(out.end(), header.begin(), header.end());
  out.resize(at + header_length + len);
  const EVP_CIPHER* cipher = s == suite::aes_128_gcm_sha256   ? EVP_aes_128_gcm()
                             : s == suite::aes_256_gcm_sha384 ? EVP_aes_256_gcm()
                                                              : EVP_chacha20_poly1305();
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  const auto nonce = k.nonce();
  int n = 0;
  bool ok = c != nullptr && EVP_EncryptInit_ex(c, cipher, nullptr, k.key.data(), nonce.data()) == 1;
  ok = ok && EVP_EncryptUpdate(c, nullptr, &n, header.data(), static_cast<int>(header.size())) == 1;
  ok = ok &&
       EVP_EncryptUpdate(c, out.data() + at + header_length, &n, inner.data(), static_cast<int>(inner.size())) == 1;
  ok = ok && EVP_EncryptFinal_ex(c, out.data() + at + header_length + n, &n) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag_length),
                                 out.data() + at + header_length + inner.size()) == 1;
  EVP_CIPHER_CTX_free(c);
  require(ok);
  ++k.seq;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] & 3;
  const int suite_index = data[0] >> 2 & 3;
  const suite s = suite_index == 1   ? suite::aes_256_gcm_sha384
                  : suite_index == 2 ? suite::chacha20_poly1305_sha256
                                     : suite::aes_128_gcm_sha256;
  const std::uint8_t seed = data[1];
  const std::span<const std::uint8_t> in(data + 2, size - 2);
  const bytes cs = secret_of(s, true), ss = secret_of(s, false);
  record_layer server(s, role::server, cs, ss);
  record_layer client(s, role::client, cs, ss);
  bytes plain;
  byte_buffer out;

  switch (mode) {
    case 0:
      feed(server, in, seed, plain, out);
      break;
    case 1:
      feed(client, in, seed, plain, out);
      break;
    case 2: {
      byte_buffer wire;
      chunker ch{seed};
      std::size_t pos = 0;
      for (int rounds = 0; pos < in.size() && rounds < 100000; ++rounds) {
        const std::size_t n = ch.next(in.size() - pos);
        client.seal(in.subspan(pos, n), wire);
        pos += n;
        if ((rounds & 3) == 1) client.release_contexts();
      }
      const bool close = (seed & 1) != 0;
      if (close) client.seal_alert(alert::close_notify, wire);
      const status st = feed(server, wire, static_cast<std::uint8_t>(seed >> 1), plain, out);
      require(st == (close ? status::closed : status::ok));
      require(plain.size() == in.size() && std::equal(plain.begin(), plain.end(), in.begin()));
      require(out.empty());
      break;
    }
    case 3: {
      traffic_keys k;
      k.derive(s, cs);
      byte_buffer wire;
      bytes expected;
      std::size_t pos = 0;
      while (pos + 2 <= in.size()) {
        const std::uint8_t type = in[pos];
        const std::size_t len = std::min<std::size_t>(in[pos + 1], in.size() - pos - 2);
        const auto content = in.subspan(pos + 2, len);
        pos += 2 + len;
        const std::size_t padding = pos < in.size() ? in[pos++] : 0;
        bytes inner(content.begin(), content.end());
        inner.push_back(type);
        inner.resize(inner.size() + padding, 0);
        seal_by_hand(s, k, inner, wire);
        // RFC 8446 §5.4: the type is the last non-zero byte.
        while (!inner.empty() && inner.back() == 0) inner.pop_back();
        if (inner.empty()) continue;
        const std::uint8_t real_type = inner.back();
        inner.pop_back();
        if (real_type == 23) expected.insert(expected.end(), inner.begin(), inner.end());
        if (real_type == 22 && inner.size() == 5 && inner[0] == 24 && inner[1] == 0 && inner[2] == 0 && inner[3] == 1 &&
            inner[4] <= 1) {
          k.update(s);
        }
      }
      const status st = feed(server, wire, seed, plain, out);
      require(plain.size() <= expected.size() && std::equal(plain.begin(), plain.end(), expected.begin()));
      if (st != status::error && !out.empty()) {
        // Only KeyUpdates: they open at the client, with nothing to deliver and nothing to answer.
        byte_buffer reply(out), none;
        const auto r = client.open(reply, none);
        require(r.st == status::ok && r.consumed == reply.size() && r.plaintext == 0 && none.empty());
      }
      break;
    }
    default:
      break;
  }
  return 0;
}
