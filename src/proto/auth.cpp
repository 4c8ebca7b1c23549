// Join authentication: SipHash-2-4 (OpenSSL EVP_MAC "SIPHASH") over
// uid ‖ channel ‖ MLES_KEY with the all-zero key, compared in constant time. Pure: no I/O.
#include "proto/auth.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <initializer_list>
#include <memory>
#include <stdexcept>

namespace mles::proto {

namespace {

constexpr std::array<std::uint8_t, 16> zero_key{};

// The algorithm is fetched once per process and kept (EVP_MAC_fetch is costly).
EVP_MAC* siphash_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  return mac;
}

struct mac_ctx_free {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};

// One context per thread, re-keyed by EVP_MAC_init on every use.
EVP_MAC_CTX* thread_mac_context() {
  thread_local const std::unique_ptr<EVP_MAC_CTX, mac_ctx_free> ctx{
      siphash_algorithm() != nullptr ? EVP_MAC_CTX_new(siphash_algorithm()) : nullptr};
  return ctx.get();
}

// SipHash-2-4 with a 64-bit output over the concatenation of parts.
std::uint64_t siphash24_parts(const std::array<std::uint8_t, 16>& key,
                              std::initializer_list<std::span<const std::uint8_t>> parts) {
  EVP_MAC_CTX* ctx = thread_mac_context();
  if (ctx == nullptr) throw std::runtime_error("OpenSSL has no SIPHASH MAC");
  // OpenSSL's SipHash defaults to a 128-bit output: ask for the 64-bit variant (c=2, d=4
  // are the defaults).
  unsigned int out_size = 8;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &out_size),
      OSSL_PARAM_construct_end(),
  };
  bool ok = EVP_MAC_init(ctx, key.data(), key.size(), params) == 1;
  for (const auto part : parts) {
    ok = ok && EVP_MAC_update(ctx, part.data(), part.size()) == 1;
  }
  std::array<std::uint8_t, 8> out{};
  std::size_t out_len = 0;
  ok = ok && EVP_MAC_final(ctx, out.data(), &out_len, out.size()) == 1 && out_len == 8;
  if (!ok) throw std::runtime_error("SipHash computation failed");
  // The digest bytes are the little-endian encoding of the 64-bit value.
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value |= std::uint64_t{out[i]} << (8 * i);
  return value;
}

std::span<const std::uint8_t> bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// a == b without a data-dependent branch on the value.
bool equal_constant_time(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t diff = a ^ b;
  diff |= diff >> 32;
  diff |= diff >> 16;
  diff |= diff >> 8;
  diff |= diff >> 4;
  diff |= diff >> 2;
  diff |= diff >> 1;
  return (diff & 1u) == 0;
}

}  // namespace

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::span<const std::uint8_t> data) {
  return siphash24_parts(key, {data});
}

std::optional<std::uint64_t> parse_auth_hex(std::string_view text) noexcept {
  // As Rust's u64::from_str_radix(text, 16): one optional '+', then hex digits only.
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    const int digit = hex_digit(c);
    if (digit < 0) return std::nullopt;
    if ((value >> 60) != 0) return std::nullopt;  // a 17th significant digit overflows
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  return value;
}

authenticator::authenticator(std::optional<std::string> secret) : secret_(std::move(secret)) {
  // Start-up self-test against the SipHash paper vector: a missing or misconfigured
  // OpenSSL SIPHASH fails here, never in a session.
  std::array<std::uint8_t, 16> key{};
  std::array<std::uint8_t, 15> message{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::uint8_t>(i);
  if (siphash24(key, message) != 0xa129ca6149be45e5ull) {
    throw std::runtime_error("SipHash-2-4 self-test failed");
  }
}

std::uint64_t authenticator::hash(std::string_view uid, std::string_view channel) const {
  if (secret_) return siphash24_parts(zero_key, {bytes_of(uid), bytes_of(channel), bytes_of(*secret_)});
  return siphash24_parts(zero_key, {bytes_of(uid), bytes_of(channel)});
}

boost::system::error_code authenticator::verify(const join_frame& join) const {
  if (!join.auth) {
    if (secret_) return errc::auth_required;
    return {};
  }
  // The reference does from_str_radix(auth, 16).unwrap_or(0): unparseable auth counts as 0.
  const std::uint64_t provided = parse_auth_hex(*join.auth).value_or(0);
  if (!equal_constant_time(hash(join.uid, join.channel), provided)) return errc::auth_mismatch;
  return {};
}

std::string authenticator::expected_auth(std::string_view uid, std::string_view channel) const {
  std::array<char, 16> text{};
  const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), hash(uid, channel), 16);
  (void)ec;  // 16 hex digits always fit
  return std::string(text.data(), end);
}

}  // namespace mles::proto
