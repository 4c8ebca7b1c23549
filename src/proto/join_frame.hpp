// The Mles join frame: the first (TEXT) message of a session, {"uid","channel","auth"?}.
// Pure: no I/O. uid and channel required, non-empty, ASCII; unknown members ignored.
#pragma once

#include "proto/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace mles::proto {

struct join_frame {
  std::string uid;
  std::string channel;
  std::optional<std::string> auth;
};

// Parses and validates a join frame's text. On failure returns the reason and leaves
// out unspecified. Input that is not valid JSON, or a JSON value other than an object,
// gives join_not_json. Never throws.
boost::system::error_code parse_join_frame(std::string_view text, join_frame& out);

}  // namespace mles::proto
