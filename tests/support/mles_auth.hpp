// The Mles join `auth` value a test client must send, computed independently of
// the server's src/proto: SipHash-2-4 (OpenSSL EVP_MAC, 8-byte output) with the all-zero key
// over uid ‖ channel ‖ secret, written as lowercase hex without leading zeros.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mles::test {

// SipHash-2-4 as the 64-bit value (the 8 output bytes read little-endian).
std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::string_view data);

std::string mles_auth(std::string_view uid, std::string_view channel,
                      const std::optional<std::string>& secret = std::nullopt);

}  // namespace mles::test
