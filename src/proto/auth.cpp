// Join authentication: SipHash-2-4 (proto/siphash.hpp) over
// uid ‖ channel ‖ MLES_KEY with the all-zero key, compared in constant time. Pure: no I/O.
#include "proto/auth.hpp"


#include <charconv>
#include <stdexcept>

namespace mles::proto {

namespace {

constexpr std::array<std::uint8_t, 16> zero_key{};


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
  // Start-up self-test against the SipHash paper vector: a miscompiled hash fails here,
  // never in a session.
  std::array<std::uint8_t, 16> key{};
  std::array<std::uint8_t, 15> message{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::uint8_t>(i);
  if (siphash24(key, message) != 0xa129ca6149be45e5ull) {
    throw std::runtime_error("SipHash-2-4 self-test failed");
  }
}

std::uint64_t authenticator::hash(std::string_view uid, std::string_view channel) const {
  std::string message;
  message.reserve(uid.size() + channel.size() + (secret_ ? secret_->size() : 0));
  message.append(uid).append(channel);
  if (secret_) message.append(*secret_);
  return siphash24(zero_key, bytes_of(message));
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
