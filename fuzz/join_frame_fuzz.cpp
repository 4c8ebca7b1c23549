// libFuzzer target for the join path: parse_join_frame on arbitrary bytes, then
// authenticator::verify with and without a key, checking the invariants of what is accepted.
#include "proto/auth.hpp"
#include "proto/join_frame.hpp"

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace {

using mles::proto::errc;

bool is_ascii_nonempty(const std::string& s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const mles::proto::authenticator keyless(std::nullopt);
  static const mles::proto::authenticator keyed(std::string("fuzz-secret"));
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // The auth parser on its own: whatever it accepts prints back ({:x}) to the same value.
  if (const auto value = mles::proto::parse_auth_hex(text)) {
    char hex[16];
    const auto printed = std::to_chars(hex, hex + sizeof hex, *value, 16);
    require(mles::proto::parse_auth_hex(std::string_view(hex, printed.ptr)) == value);
  }

  mles::proto::join_frame join;
  const boost::system::error_code ec = mles::proto::parse_join_frame(text, join);
  if (ec) {
    require(ec.category() == mles::proto::mles_category());
    require(ec == errc::join_not_json || ec == errc::join_missing_uid || ec == errc::join_missing_channel ||
            ec == errc::join_non_ascii || ec == errc::join_bad_auth_type);
    return 0;
  }
  require(is_ascii_nonempty(join.uid));
  require(is_ascii_nonempty(join.channel));

  const auto keyless_result = keyless.verify(join);
  const auto keyed_result = keyed.verify(join);
  if (!join.auth) {
    require(!keyless_result);
    require(keyed_result == errc::auth_required);
  } else {
    require(!keyless_result || keyless_result == errc::auth_mismatch);
    require(!keyed_result || keyed_result == errc::auth_mismatch);
  }

  // Round trip: the hex the server expects is accepted.
  join.auth = keyless.expected_auth(join.uid, join.channel);
  require(!keyless.verify(join));
  join.auth = keyed.expected_auth(join.uid, join.channel);
  require(!keyed.verify(join));
  return 0;
}
