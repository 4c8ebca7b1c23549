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
  // peer links (proto/peer_envelope.hpp)
  envelope_truncated,      // shorter than its header says
  envelope_bad_magic,      // first byte is not 0xE1 (magic + version 1)
  envelope_bad_flags,      // a flag bit beyond text/history/hashed
  envelope_bad_server_id,  // origin id empty, over 64 bytes, or outside 0x21..0x7E
  envelope_bad_sequence,   // sequence 0
  too_many_channels,       // the server's channel cap is reached and every channel has members
};

const boost::system::error_category& mles_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), mles_category()};
}

}  // namespace mles::proto

template <>
struct boost::system::is_error_code_enum<mles::proto::errc> : std::true_type {};
