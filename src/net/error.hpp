// Why a connection ended, as an error_code category ("mles.net"): every end of a connection
// is one of these (or a system/OpenSSL error carried as text beside it), so each can be
// counted and logged the same way. Pure: no I/O.
#pragma once

#include <boost/system/error_code.hpp>

#include <cstddef>
#include <type_traits>

namespace mles::net {

enum class errc {
  ok = 0,
  tls_handshake_timeout = 1,  // no finished TLS handshake within handshake_timeout
  tls_handshake_failed,       // the handshake failed (detail: OpenSSL's reason)
  acme_validation_done,       // RFC 8737 validation connection: ends after the handshake
  http_timeout,               // no (complete) request within the idle/header deadline
  http_stalled,               // a response in progress made no progress in time
  http_closed,                // response with Connection: close written
  http_refused,               // a malformed or refused request answered with an error
  too_many_pipelined,         // pipelined requests over the buffer bound
  file_read_error,            // a file body could not be read to its promised length
  join_timeout,               // no join frame in time after the upgrade
  join_refused,               // the join frame was refused (detail: the mles error)
  ping_timeout,               // nothing received for three ping intervals
  close_timeout,              // the close handshake did not finish in time
  slow_consumer,              // the send queue went over its ceiling
  protocol_error,             // RFC 6455 rule broken (1002)
  invalid_utf8,               // text that is not UTF-8 (1007)
  message_too_big,            // message over the limit (1009)
  closed_by_peer,             // the peer sent a close frame (detail: its code)
  closed,                     // our close handshake completed
  connection_lost,            // EOF or reset without a close handshake
  transport_error,            // socket or TLS error (detail: the system's/OpenSSL's text)
  server_stopping,            // graceful stop
  upgrade_refused,            // (client role) the peer did not accept the WebSocket upgrade
  connect_timeout,            // (client role) connect + handshakes took too long
  link_closed,                // (client role) the link is no longer needed
  channel_cap,                // a join would create a channel over --max-channels (1013)
  inflight_budget,            // a partly received message would go over --max-inflight (1013)
  message_timeout,            // a message did not arrive whole within --message-timeout
  proxy_header_refused,       // --proxy-protocol: no valid PROXY header (in time)
  rate_limited,               // --rate-limit for a client address learnt after accept
};

// Number of errc values (for per-reason counters).
inline constexpr std::size_t errc_count = static_cast<std::size_t>(errc::rate_limited) + 1;

const boost::system::error_category& net_category() noexcept;

// The value's identifier ("slow_consumer", "join_refused", ...): stable, for metric labels
// and structured logs. "unknown" outside the enumeration.
const char* errc_name(errc e) noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), net_category()};
}

}  // namespace mles::net

template <>
struct boost::system::is_error_code_enum<mles::net::errc> : std::true_type {};
