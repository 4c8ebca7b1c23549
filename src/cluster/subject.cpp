// Channel name <-> NATS subject token; the scheme is described in subject.hpp.
#include "cluster/subject.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <stdexcept>

namespace mles::cluster {

namespace {

constexpr char hex_digits[] = "0123456789ABCDEF";

// Bytes that stand for themselves in a token.
constexpr bool is_plain(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Upper-case hex digit value, or -1 (lower case is not canonical).
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string channel_token(std::string_view channel) {
  if (channel.empty()) return std::string(1, token_escape);
  std::size_t size = 0;
  for (const char ch : channel) size += is_plain(static_cast<unsigned char>(ch)) ? 1 : 3;
  std::string token;
  token.reserve(size);
  for (const char ch : channel) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_plain(c)) {
      token.push_back(ch);
    } else {
      token.push_back(token_escape);
      token.push_back(hex_digits[c >> 4]);
      token.push_back(hex_digits[c & 0x0F]);
    }
  }
  return token;
}

std::optional<std::string> channel_from_token(std::string_view token) {
  if (token.empty()) return std::nullopt;
  if (token.size() == 1 && token[0] == token_escape) return std::string();
  std::string channel;
  channel.reserve(token.size());
  for (std::size_t i = 0; i < token.size();) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (is_plain(c)) {
      channel.push_back(token[i]);
      ++i;
      continue;
    }
    if (token[i] != token_escape || token.size() - i < 3) return std::nullopt;
    const int high = hex_value(token[i + 1]);
    const int low = hex_value(token[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    const auto byte = static_cast<unsigned char>(high << 4 | low);
    if (is_plain(byte)) return std::nullopt;  // the encoder never escapes these
    channel.push_back(static_cast<char>(byte));
    i += 3;
  }
  return channel;
}

std::string bounded_token(std::string_view name) {
  std::string token = channel_token(name);
  if (token.size() <= max_token_size) return token;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(name.data(), name.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 || size != 32)
    throw std::runtime_error("SHA-256 failed");
  constexpr char lower[] = "0123456789abcdef";
  std::string hashed;
  hashed.reserve(2 + 64);
  hashed.push_back(token_escape);
  hashed.push_back('H');
  for (unsigned int i = 0; i < size; ++i) {
    hashed.push_back(lower[digest[i] >> 4]);
    hashed.push_back(lower[digest[i] & 0x0F]);
  }
  return hashed;
}

std::string channel_subject(std::string_view prefix, std::string_view channel) {
  std::string token = bounded_token(channel);
  std::string subject;
  subject.reserve(prefix.size() + 1 + token.size());
  subject.append(prefix);
  subject.push_back('.');
  subject.append(token);
  return subject;
}

bool is_subject_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || c == '.' || c == '*' || c == '>') return false;
  }
  return true;
}

}  // namespace mles::cluster
