// Mles join authentication: SipHash-2-4 with the all-zero 128-bit key over
// uid ‖ channel ‖ MLES_KEY, written as hex. Pure: no I/O.
#pragma once

#include "proto/error.hpp"
#include "proto/join_frame.hpp"
#include "proto/siphash.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mles::proto {

// Parses the auth field as the reference does (u64::from_str_radix(auth, 16)): an optional
// leading '+', then 1+ hex digits of either case, value fitting 64 bits. nullopt otherwise.
std::optional<std::uint64_t> parse_auth_hex(std::string_view text) noexcept;

// Thread-safe after construction (immutable).
class authenticator {
 public:
  // secret: the server's MLES_KEY, if any (an empty string counts as a key, as in the reference
  // only when set; callers pass nullopt when the variable is unset).
  explicit authenticator(std::optional<std::string> secret);

  // ok, auth_required or auth_mismatch. With a secret, auth is required and must match
  // hash(uid‖channel‖secret); without one, a missing auth is accepted and a present auth must
  // match hash(uid‖channel). The comparison runs in constant time.
  boost::system::error_code verify(const join_frame& join) const;

  // The hex a client must send (lowercase, no leading zeros, like Rust's {:x}).
  std::string expected_auth(std::string_view uid, std::string_view channel) const;

  bool has_secret() const noexcept { return secret_.has_value(); }

 private:
  std::uint64_t hash(std::string_view uid, std::string_view channel) const;
  std::optional<std::string> secret_;
};

}  // namespace mles::proto
