// The "mles.net" error category: short messages for net::errc, used in logs and counters.
#include "net/error.hpp"

#include <string>

namespace mles::net {

namespace {

class net_error_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "mles.net"; }
  std::string message(int ev) const override { return describe(ev); }
  const char* message(int ev, char*, std::size_t) const noexcept override { return describe(ev); }

 private:
  static const char* describe(int ev) noexcept {
    switch (static_cast<errc>(ev)) {
      case errc::ok: return "ok";
      case errc::tls_handshake_timeout: return "TLS handshake timeout";
      case errc::tls_handshake_failed: return "TLS handshake failed";
      case errc::acme_validation_done: return "ACME tls-alpn-01 validation handshake";
      case errc::http_timeout: return "HTTP timeout";
      case errc::http_stalled: return "HTTP response stalled";
      case errc::http_closed: return "HTTP connection: close";
      case errc::http_refused: return "HTTP request refused";
      case errc::too_many_pipelined: return "too many pipelined requests";
      case errc::file_read_error: return "file read error while streaming";
      case errc::join_timeout: return "join timeout";
      case errc::join_refused: return "join refused";
      case errc::ping_timeout: return "ping timeout: nothing received";
      case errc::close_timeout: return "close timeout";
      case errc::slow_consumer: return "slow consumer";
      case errc::protocol_error: return "protocol error";
      case errc::invalid_utf8: return "invalid UTF-8";
      case errc::message_too_big: return "message too big";
      case errc::closed_by_peer: return "closed by peer";
      case errc::closed: return "closed";
      case errc::connection_lost: return "connection closed by peer";
      case errc::transport_error: return "transport error";
      case errc::server_stopping: return "server stopping";
      case errc::upgrade_refused: return "upgrade refused";
      case errc::connect_timeout: return "connect timeout";
      case errc::link_closed: return "link closed";
      case errc::channel_cap: return "too many channels";
      case errc::inflight_budget: return "server busy: in-flight message budget";
      case errc::message_timeout: return "message not received in time";
      case errc::proxy_header_refused: return "no valid PROXY protocol header";
      case errc::rate_limited: return "over the rate limit";
    }
    return "unknown net error";
  }
};

}  // namespace

const boost::system::error_category& net_category() noexcept {
  static const net_error_category category;
  return category;
}

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::tls_handshake_timeout: return "tls_handshake_timeout";
    case errc::tls_handshake_failed: return "tls_handshake_failed";
    case errc::acme_validation_done: return "acme_validation_done";
    case errc::http_timeout: return "http_timeout";
    case errc::http_stalled: return "http_stalled";
    case errc::http_closed: return "http_closed";
    case errc::http_refused: return "http_refused";
    case errc::too_many_pipelined: return "too_many_pipelined";
    case errc::file_read_error: return "file_read_error";
    case errc::join_timeout: return "join_timeout";
    case errc::join_refused: return "join_refused";
    case errc::ping_timeout: return "ping_timeout";
    case errc::close_timeout: return "close_timeout";
    case errc::slow_consumer: return "slow_consumer";
    case errc::protocol_error: return "protocol_error";
    case errc::invalid_utf8: return "invalid_utf8";
    case errc::message_too_big: return "message_too_big";
    case errc::closed_by_peer: return "closed_by_peer";
    case errc::closed: return "closed";
    case errc::connection_lost: return "connection_lost";
    case errc::transport_error: return "transport_error";
    case errc::server_stopping: return "server_stopping";
    case errc::upgrade_refused: return "upgrade_refused";
    case errc::connect_timeout: return "connect_timeout";
    case errc::link_closed: return "link_closed";
    case errc::channel_cap: return "channel_cap";
    case errc::inflight_budget: return "inflight_budget";
    case errc::message_timeout: return "message_timeout";
    case errc::proxy_header_refused: return "proxy_header_refused";
    case errc::rate_limited: return "rate_limited";
  }
  return "unknown";
}

}  // namespace mles::net
