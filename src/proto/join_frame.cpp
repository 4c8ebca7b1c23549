// Join frame parsing: the session's first TEXT message, checked before the hub
// sees anything. Pure: no I/O. Boost.JSON with a depth limit; never throws.
#include "proto/join_frame.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>

namespace mles::proto {

namespace {

// Nesting allowed inside a join frame. The frame itself needs depth 1; unknown members may
// hold some structure, but deep nesting is only ever an attack on the parser.
constexpr std::size_t max_join_depth = 32;

bool is_ascii(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// A required member: present, a JSON string, not empty.
const boost::json::string* required_string(const boost::json::object& obj, std::string_view key) {
  const boost::json::value* v = obj.if_contains(key);
  if (v == nullptr) return nullptr;
  const boost::json::string* s = v->if_string();
  if (s == nullptr || s->empty()) return nullptr;
  return s;
}

boost::system::error_code parse_checked(std::string_view text, join_frame& out) {
  // Join frames are small: parse into a stack buffer, spill to the heap only if needed.
  unsigned char buffer[2048];
  boost::json::monotonic_resource resource(buffer, sizeof buffer);
  boost::json::parse_options options;
  options.max_depth = max_join_depth;
  boost::system::error_code ec;
  const boost::json::value root = boost::json::parse(text, ec, &resource, options);
  if (ec) return errc::join_not_json;
  const boost::json::object* obj = root.if_object();
  if (obj == nullptr) return errc::join_not_json;

  const boost::json::string* uid = required_string(*obj, "uid");
  if (uid == nullptr) return errc::join_missing_uid;
  const boost::json::string* channel = required_string(*obj, "channel");
  if (channel == nullptr) return errc::join_missing_channel;
  if (!is_ascii(*uid) || !is_ascii(*channel)) return errc::join_non_ascii;

  // The reference reads auth as Option<String>: absent and null both mean "no auth".
  std::optional<std::string> auth;
  if (const boost::json::value* a = obj->if_contains("auth"); a != nullptr && !a->is_null()) {
    const boost::json::string* s = a->if_string();
    if (s == nullptr) return errc::join_bad_auth_type;
    auth.emplace(s->data(), s->size());
  }

  out.uid.assign(uid->data(), uid->size());
  out.channel.assign(channel->data(), channel->size());
  out.auth = std::move(auth);
  return {};
}

}  // namespace

boost::system::error_code parse_join_frame(std::string_view text, join_frame& out) {
  try {
    return parse_checked(text, out);
  } catch (...) {
    // bad_alloc (or anything else from the JSON library) must not end the process: the
    // frame is simply refused.
    return errc::join_not_json;
  }
}

}  // namespace mles::proto
