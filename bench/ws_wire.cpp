// Accept key, random client key and header lookup for the bench and the raw baseline
// (OpenSSL SHA-1 + base64).
#include "ws_wire.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>
#include <stdexcept>

namespace mles::bench {

namespace {

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                      static_cast<int>(n));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

char lower(char c) noexcept {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

}  // namespace

std::string websocket_accept_key(std::string_view client_key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string buf;
  buf.reserve(client_key.size() + guid.size());
  buf.append(client_key).append(guid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(buf.data()), buf.size(), digest.data());
  return base64(digest.data(), digest.size());
}

std::string make_websocket_key() {
  std::array<unsigned char, 16> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return base64(raw.data(), raw.size());
}

std::size_t find_icase(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.empty()) return 0;
  if (haystack.size() < needle.size()) return std::string_view::npos;
  const char first = lower(needle[0]);
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (lower(haystack[i]) != first) continue;
    std::size_t j = 1;
    while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) ++j;
    if (j == needle.size()) return i;
  }
  return std::string_view::npos;
}

std::string_view header_value(std::string_view headers, std::string_view name) noexcept {
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t eol = headers.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = headers.size();
    const std::string_view line = headers.substr(pos, eol - pos);
    const std::size_t colon = line.find(':');
    if (colon == name.size() && find_icase(line.substr(0, colon), name) == 0) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    pos = eol + 2;
  }
  return {};
}

}  // namespace mles::bench
