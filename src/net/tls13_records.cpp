// tls13_records: TLS 1.3 record protection (RFC 8446 §5) over OpenSSL's EVP AEADs and HKDF.
#include "net/tls13_records.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace mles::net::tls13 {
namespace {

constexpr std::uint8_t type_alert = 21;
constexpr std::uint8_t type_handshake = 22;
constexpr std::uint8_t type_application_data = 23;
constexpr std::uint8_t hs_new_session_ticket = 4;
constexpr std::uint8_t hs_key_update = 24;
// RFC 8446 §5.5: AES-GCM may protect at most 2^24.5 full-size records per key; we rotate
// well before. ChaCha20-Poly1305's limit is beyond any sequence number; the key is updated
// only before the sequence number itself would wrap.
constexpr std::uint64_t aes_gcm_record_limit = std::uint64_t{1} << 24;
// A post-handshake message split over records is gathered up to this size (a server only
// accepts the 5-byte KeyUpdate; a client skips NewSessionTickets, a few hundred bytes).
constexpr std::size_t max_handshake_message = 64 * 1024;

const char* digest_name(suite s) noexcept { return s == suite::aes_256_gcm_sha384 ? "SHA384" : "SHA256"; }

// The AEADs and the KDF, fetched from the default provider once (an implicit fetch per
// EVP call costs a provider lookup).
struct algorithms {
  EVP_CIPHER* aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  EVP_CIPHER* aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  EVP_CIPHER* chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  EVP_KDF* hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  static const algorithms& get() {
    static const algorithms a;  // process lifetime: never freed
    return a;
  }
  const EVP_CIPHER* cipher(suite s) const noexcept {
    switch (s) {
      case suite::aes_128_gcm_sha256: return aes128;
      case suite::aes_256_gcm_sha384: return aes256;
      case suite::chacha20_poly1305_sha256: return chacha;
    }
    return nullptr;
  }
};

}  // namespace

std::optional<suite> suite_from_id(std::uint16_t id) noexcept {
  switch (id) {
    case 0x1301: return suite::aes_128_gcm_sha256;
    case 0x1302: return suite::aes_256_gcm_sha384;
    case 0x1303: return suite::chacha20_poly1305_sha256;
    default: return std::nullopt;
  }
}

std::size_t hash_length(suite s) noexcept { return s == suite::aes_256_gcm_sha384 ? 48 : 32; }
std::size_t key_length(suite s) noexcept { return s == suite::aes_128_gcm_sha256 ? 16 : 32; }

std::vector<std::uint8_t> expand_label(suite s, std::span<const std::uint8_t> secret, std::string_view label,
                                       std::span<const std::uint8_t> context, std::size_t length) {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255>; }
  constexpr std::string_view prefix = "tls13 ";
  if (prefix.size() + label.size() > 255 || context.size() > 255 || length > 0xffff)
    throw std::invalid_argument("HKDF-Expand-Label: label, context or length too long");
  std::vector<std::uint8_t> info;
  info.reserve(4 + prefix.size() + label.size() + context.size());
  info.push_back(static_cast<std::uint8_t>(length >> 8));
  info.push_back(static_cast<std::uint8_t>(length));
  info.push_back(static_cast<std::uint8_t>(prefix.size() + label.size()));
  info.insert(info.end(), prefix.begin(), prefix.end());
  info.insert(info.end(), label.begin(), label.end());
  info.push_back(static_cast<std::uint8_t>(context.size()));
  info.insert(info.end(), context.begin(), context.end());

  std::vector<std::uint8_t> out(length);
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(algorithms::get().hkdf);
  if (!kctx) throw std::runtime_error("HKDF unavailable");
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest_name(s)), 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  const int ok = EVP_KDF_derive(kctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(kctx);
  if (ok != 1) throw std::runtime_error("HKDF-Expand-Label failed");
  return out;
}

void traffic_keys::derive(suite s, std::span<const std::uint8_t> traffic_secret) {
  const std::size_t hl = hash_length(s);
  if (traffic_secret.size() != hl) throw std::invalid_argument("TLS 1.3 traffic secret of the wrong length");
  std::copy(traffic_secret.begin(), traffic_secret.end(), secret.begin());
  const auto k = expand_label(s, traffic_secret, "key", {}, key_length(s));
  const auto v = expand_label(s, traffic_secret, "iv", {}, iv_length);
  std::copy(k.begin(), k.end(), key.begin());
  std::copy(v.begin(), v.end(), iv.begin());
  seq = 0;
}

void traffic_keys::update(suite s) {
  const std::size_t hl = hash_length(s);
  auto next = expand_label(s, std::span<const std::uint8_t>(secret.data(), hl), "traffic upd", {}, hl);
  derive(s, next);
  OPENSSL_cleanse(next.data(), next.size());
}

std::array<std::uint8_t, iv_length> traffic_keys::nonce() const noexcept {
  std::array<std::uint8_t, iv_length> n = iv;
  for (std::size_t i = 0; i < 8; ++i) n[iv_length - 1 - i] ^= static_cast<std::uint8_t>(seq >> (8 * i));
  return n;
}

namespace {

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<label> <client random hex> <secret hex>" → the secret, if the label is `label`.
std::size_t parse_secret(std::string_view line, std::string_view label, std::array<std::uint8_t, 48>& out) noexcept {
  if (!line.starts_with(label) || line.size() <= label.size() || line[label.size()] != ' ') return 0;
  const auto last = line.rfind(' ');
  const std::string_view hex = line.substr(last + 1);
  if (hex.size() % 2 || hex.size() / 2 > out.size()) return 0;
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    const int hi = hex_digit(hex[2 * i]);
    const int lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return hex.size() / 2;
}

}  // namespace

application_secrets::~application_secrets() {
  OPENSSL_cleanse(client.data(), client.size());
  OPENSSL_cleanse(server.data(), server.size());
}

void application_secrets::take_keylog_line(std::string_view line) noexcept {
  if (const std::size_t n = parse_secret(line, "CLIENT_TRAFFIC_SECRET_0", client)) {
    client_len = n;
  } else if (const std::size_t m = parse_secret(line, "SERVER_TRAFFIC_SECRET_0", server)) {
    server_len = m;
  }
}

bool application_secrets::complete_for(suite s) const noexcept {
  return client_len == hash_length(s) && server_len == hash_length(s);
}

std::string_view alert_name(std::uint8_t d) noexcept {
  switch (d) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 113: return "bad_certificate_status_response";
    case 115: return "unknown_psk_identity";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown alert";
  }
}

record_layer::record_layer(suite s, role r, std::span<const std::uint8_t> client_secret,
                           std::span<const std::uint8_t> server_secret, std::uint64_t write_seq,
                           std::uint64_t read_seq)
    : suite_(s), role_(r) {
  const bool server = r == role::server;
  write_.derive(s, server ? server_secret : client_secret);
  read_.derive(s, server ? client_secret : server_secret);
  write_.seq = write_seq;
  read_.seq = read_seq;
  records_since_update_ = write_seq;
}

record_layer::~record_layer() {
  release_contexts();
  OPENSSL_cleanse(&write_, sizeof write_);
  OPENSSL_cleanse(&read_, sizeof read_);
}

void record_layer::release_contexts() noexcept {
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
  enc_ = dec_ = nullptr;
}

// The slot's context, keyed with k (made on first use after a release or a key change).
evp_cipher_ctx_st* record_layer::context(evp_cipher_ctx_st*& slot, const traffic_keys& k, bool encrypt) {
  if (slot) return slot;
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  if (!c || EVP_CipherInit_ex2(c, algorithms::get().cipher(suite_), k.key.data(), nullptr, encrypt ? 1 : 0,
                               nullptr) != 1) {
    EVP_CIPHER_CTX_free(c);
    throw std::runtime_error("cannot set up the TLS record cipher");
  }
  slot = c;
  return slot;
}

std::size_t record_layer::sealed_size(std::size_t n) noexcept {
  const std::size_t records = n == 0 ? 1 : (n + max_plaintext - 1) / max_plaintext;
  return n + records * (header_length + 1 + tag_length);
}

void record_layer::seal_record(std::uint8_t inner_type, std::span<const std::uint8_t> plaintext,
                               byte_buffer& out) {
  // Our key moves on before the AES-GCM limit, and for any suite before the sequence number
  // would run out (the KeyUpdate itself takes the last one left). Never for the KeyUpdate.
  const bool aes = suite_ != suite::chacha20_poly1305_sha256;
  if (inner_type != type_handshake &&
      ((aes && records_since_update_ >= aes_gcm_record_limit) ||
       write_.seq >= std::numeric_limits<std::uint64_t>::max() - 1)) {
    rotate_write(out, false);
  }
  const std::size_t n = plaintext.size();
  const std::size_t length = n + 1 + tag_length;
  const std::size_t pos = out.size();
  out.resize(pos + header_length + length);
  std::uint8_t* h = out.data() + pos;
  h[0] = type_application_data;
  h[1] = 0x03;
  h[2] = 0x03;
  h[3] = static_cast<std::uint8_t>(length >> 8);
  h[4] = static_cast<std::uint8_t>(length);
  std::uint8_t* body = h + header_length;
  EVP_CIPHER_CTX* c = context(enc_, write_, true);
  const auto nonce = write_.nonce();
  int len = 0;
  const bool ok = EVP_CipherInit_ex2(c, nullptr, nullptr, nonce.data(), 1, nullptr) == 1 &&
                  EVP_CipherUpdate(c, nullptr, &len, h, header_length) == 1 &&
                  (n == 0 || EVP_CipherUpdate(c, body, &len, plaintext.data(), static_cast<int>(n)) == 1) &&
                  EVP_CipherUpdate(c, body + n, &len, &inner_type, 1) == 1 &&
                  EVP_CipherFinal_ex(c, body + n + 1, &len) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, tag_length, body + n + 1) == 1;
  if (!ok) {
    out.resize(pos);
    throw std::runtime_error("TLS record encryption failed");
  }
  ++write_.seq;
  ++records_since_update_;
}

void record_layer::seal(std::span<const std::uint8_t> plaintext, byte_buffer& out) {
  out.reserve(out.size() + sealed_size(plaintext.size()));
  do {
    const std::size_t take = std::min(plaintext.size(), max_plaintext);
    seal_record(type_application_data, plaintext.first(take), out);
    plaintext = plaintext.subspan(take);
  } while (!plaintext.empty());
}

void record_layer::seal_alert(alert a, byte_buffer& out) {
  const std::uint8_t body[2] = {static_cast<std::uint8_t>(a == alert::close_notify ? 1 : 2),
                                static_cast<std::uint8_t>(a)};
  seal_record(type_alert, body, out);
}

// Sends a KeyUpdate under the current key, then moves our key on.
void record_layer::rotate_write(byte_buffer& out, bool request_update) {
  const std::uint8_t msg[5] = {hs_key_update, 0, 0, 1, static_cast<std::uint8_t>(request_update ? 1 : 0)};
  // One more record under the old key (seal_record rotates before seq reaches 2^64 - 1).
  seal_record(type_handshake, msg, out);
  write_.update(suite_);
  records_since_update_ = 0;
  EVP_CIPHER_CTX_free(enc_);
  enc_ = nullptr;
}

record_layer::open_result record_layer::fail(alert a, std::string why, open_result r, byte_buffer& out) {
  what_ = std::move(why);
  try {
    seal_alert(a, out);
  } catch (const std::exception&) {
    // The alert is a courtesy; the connection ends either way.
  }
  r.st = status::error;
  return r;
}

// One complete post-handshake message (type, 24-bit length, body): nullopt when handled,
// else the alert to send (what_ says why).
std::optional<alert> record_layer::handle_handshake(std::span<const std::uint8_t> msg, byte_buffer& out) {
  const std::uint8_t type = msg[0];
  const auto body = msg.subspan(4);
  if (type == hs_key_update) {
    if (body.size() != 1) {
      what_ = "malformed KeyUpdate";
      return alert::decode_error;
    }
    if (body[0] > 1) {
      what_ = "KeyUpdate with an illegal request_update";
      return alert::illegal_parameter;
    }
    read_.update(suite_);
    EVP_CIPHER_CTX_free(dec_);
    dec_ = nullptr;
    // Asked to update ours: answer before any further application data, never asking back.
    if (body[0] == 1) rotate_write(out, false);
    return std::nullopt;
  }
  if (type == hs_new_session_ticket && role_ == role::client) return std::nullopt;  // no resumption here
  what_ = "unexpected post-handshake message of type " + std::to_string(type);
  return alert::unexpected_message;
}

record_layer::open_result record_layer::open(std::span<std::uint8_t> buf, byte_buffer& out) {
  open_result r;
  std::size_t pos = 0;
  std::size_t wr = 0;
  while (buf.size() - pos >= header_length) {
    std::uint8_t* h = buf.data() + pos;
    const std::size_t length = (std::size_t{h[3]} << 8) | h[4];
    if (h[0] != type_application_data) {
      return fail(alert::unexpected_message, "TLS record of type " + std::to_string(h[0]) + " after the handshake",
                  r, out);
    }
    if (length > max_ciphertext) return fail(alert::record_overflow, "TLS record too long", r, out);
    if (length < tag_length + 1) return fail(alert::decode_error, "TLS record too short", r, out);
    if (buf.size() - pos < header_length + length) break;  // incomplete: wait for the rest

    std::uint8_t* body = h + header_length;
    const std::size_t clen = length - tag_length;
    EVP_CIPHER_CTX* c = context(dec_, read_, false);
    const auto nonce = read_.nonce();
    int len = 0;
    const bool ok = EVP_CipherInit_ex2(c, nullptr, nullptr, nonce.data(), 0, nullptr) == 1 &&
                    EVP_CipherUpdate(c, nullptr, &len, h, header_length) == 1 &&
                    EVP_CipherUpdate(c, body, &len, body, static_cast<int>(clen)) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, tag_length, body + clen) == 1 &&
                    EVP_CipherFinal_ex(c, body + clen, &len) == 1;
    if (!ok) return fail(alert::bad_record_mac, "TLS record authentication failed", r, out);
    if (read_.seq == std::numeric_limits<std::uint64_t>::max())
      return fail(alert::unexpected_message, "TLS record sequence number exhausted", r, out);
    ++read_.seq;
    pos += header_length + length;
    r.consumed = pos;

    // TLSInnerPlaintext: content, then the real type, then zero padding; 2^14 + 1 bytes at
    // most, padding included (RFC 8446 §5.4).
    if (clen > max_plaintext + 1) return fail(alert::record_overflow, "TLS record plaintext too long", r, out);
    std::size_t i = clen;
    while (i > 0 && body[i - 1] == 0) --i;
    if (i == 0) return fail(alert::unexpected_message, "TLS record without a content type", r, out);
    const std::uint8_t inner = body[i - 1];
    const std::size_t plen = i - 1;

    if (inner == type_application_data) {
      if (!handshake_.empty())
        return fail(alert::unexpected_message, "application data inside a split handshake message", r, out);
      if (plen) std::memmove(buf.data() + wr, body, plen);
      wr += plen;
      r.plaintext = wr;
    } else if (inner == type_alert) {
      if (plen != 2) return fail(alert::decode_error, "malformed TLS alert", r, out);
      const std::uint8_t description = body[1];
      if (description == static_cast<std::uint8_t>(alert::close_notify)) {
        r.st = status::closed;
        return r;
      }
      if (description == 90) continue;  // user_canceled: a close_notify follows
      what_ = "TLS alert received: " + std::string(alert_name(description));
      r.st = status::error;
      return r;
    } else if (inner == type_handshake) {
      if (plen == 0) return fail(alert::unexpected_message, "empty handshake record", r, out);
      if (handshake_.size() + plen > max_handshake_message)
        return fail(alert::unexpected_message, "post-handshake message too long", r, out);
      handshake_.insert(handshake_.end(), body, body + plen);
      std::size_t at = 0;
      while (handshake_.size() - at >= 4) {
        const std::size_t mlen = (std::size_t{handshake_[at + 1]} << 16) | (std::size_t{handshake_[at + 2]} << 8) |
                                 handshake_[at + 3];
        if (mlen > max_handshake_message)
          return fail(alert::unexpected_message, "post-handshake message too long", r, out);
        if (handshake_.size() - at < 4 + mlen) break;
        const std::uint8_t type = handshake_[at];
        if (const auto a = handle_handshake(std::span<const std::uint8_t>(handshake_).subspan(at, 4 + mlen), out)) {
          handshake_.clear();
          return fail(*a, what_, r, out);
        }
        at += 4 + mlen;
        // A KeyUpdate changes the read key: it must end its record (RFC 8446 §5.1).
        if (type == hs_key_update && (at != handshake_.size())) {
          handshake_.clear();
          return fail(alert::unexpected_message, "KeyUpdate not at a record boundary", r, out);
        }
      }
      handshake_.erase(handshake_.begin(), handshake_.begin() + static_cast<std::ptrdiff_t>(at));
      if (handshake_.empty()) std::vector<std::uint8_t>().swap(handshake_);
    } else {
      return fail(alert::unexpected_message, "TLS record of inner type " + std::to_string(inner), r, out);
    }
  }
  return r;
}

}  // namespace mles::net::tls13
