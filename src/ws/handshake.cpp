// WebSocket opening handshake helpers (RFC 6455 §4.2): accept key, client key check and
// comma-separated header token matching. Pure: no I/O; SHA-1 and base64 come from OpenSSL.
#include "ws/handshake.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace mles::ws {

namespace {

// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
constexpr std::string_view accept_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals(std::string_view a, std::string_view b, token_case cmp) noexcept {
  if (a.size() != b.size()) return false;
  if (cmp == token_case::sensitive) return a == b;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, client_key.data(), client_key.size()) == 1 &&
                  EVP_DigestUpdate(ctx, accept_guid.data(), accept_guid.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, digest.data(), &digest_len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("SHA-1 unavailable");
  // base64 of 20 bytes: 28 characters plus the NUL EVP_EncodeBlock writes.
  std::array<unsigned char, 32> encoded{};
  const int n = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_len));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(n));
}

bool is_valid_client_key(std::string_view key) noexcept {
  // RFC 6455 §4.1: base64 of a 16-byte nonce = 22 significant characters + "==".
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

bool header_has_token(std::string_view header_value, std::string_view token,
                      token_case cmp) noexcept {
  // RFC 9110 §5.6.1: #element lists, elements separated by commas with optional whitespace.
  while (!header_value.empty()) {
    const std::size_t comma = header_value.find(',');
    std::string_view element = header_value.substr(0, comma);
    header_value = comma == std::string_view::npos ? std::string_view{} : header_value.substr(comma + 1);
    while (!element.empty() && is_ows(element.front())) element.remove_prefix(1);
    while (!element.empty() && is_ows(element.back())) element.remove_suffix(1);
    if (!element.empty() && equals(element, token, cmp)) return true;
  }
  return false;
}

}  // namespace mles::ws
