// Mles protocol errors: why a join was refused or a session ended, as an error_code category.
// Pure: no I/O. Used by proto/, hub/ and net/ for logs and close reasons.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace mles::proto {

enum class errc {
  ok = 0,
  join_not_text = 1,     // first message was binary
  join_not_json,         // not a JSON object
  join_missing_uid,      // uid absent, not a string, or empty
  join_missing_channel,  // channel absent, not a string, or empty
  join_non_ascii,        // uid or channel holds a non-ASCII byte
  join_bad_auth_type,    // auth present but not a string
  auth_required,         // server has MLES_KEY, join has no auth
  auth_mismatch,         // auth does not match the expected SipHash
  duplicate_uid,         // (uid, channel) already joined
  join_timeout,          // no join frame in time
};

const boost::system::error_category& mles_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), mles_category()};
}

}  // namespace mles::proto

template <>
struct boost::system::is_error_code_enum<mles::proto::errc> : std::true_type {};
