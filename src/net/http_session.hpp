// The HTTP phase of a server connection: a request loop (keep-alive, pipelined requests
// answered in order) serving static files, --proxy prefixes, ACME HTTP-01 answers and, on the
// --redirect port, redirects; a WebSocket upgrade hands the connection to a ws_session.
// data path: connection bytes ─► Beast request parser ─► file_server.respond ─► send queue
//            upgrade ─► 101 ─► connection.replace_handler(ws_session)
// Thread-safety: the connection's loop only; work finished elsewhere (compression, a file
// slot, the proxy's answer) is posted back to the loop.
#pragma once

#include "http/file_server.hpp"
#include "http/proxy_rules.hpp"
#include "net/connection.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mles::net {

// What a listener's connections serve: the TLS port (WebSocket + HTTPS) or the plain port
// 80 with --redirect (redirects to HTTPS, nothing else).
enum class listener_role : std::uint8_t { main, redirect };

class http_session final : public connection_handler {
 public:
  http_session(connection& c, listener_role role);
  ~http_session() override;

  // connection_handler
  void on_ready() override;
  void on_bytes(std::span<std::uint8_t> bytes) override;
  void on_drained() override;
  void on_sweep(event_loop::clock::time_point now) override;
  void on_go_away() override;
  void on_finished(const boost::system::error_code& why, std::string_view detail) override;

 private:
  // Posted work comes back through the connection: the session it finds there, if it is
  // still this phase.
  static http_session* current(const std::weak_ptr<connection>& weak);

  void parse_requests();
  void dispatch_request();
  // --trusted-proxy: the client named by X-Forwarded-For becomes the connection's address and
  // is charged to --rate-limit; false when it was refused (429).
  bool apply_forwarded_for();
  void accept_upgrade();
  void serve_file();
  void serve_redirect();
  void serve_proxy(http::proxy_match match);
  void on_proxied(std::string head_fields, unsigned status, std::string body);
  void on_compressed(std::shared_ptr<const std::string> body);
  void send_response(http::file_response r);
  bool open_file_body();
  void on_file_slot();
  bool streaming() const noexcept { return fd_ >= 0; }
  void stream_next_chunk();
  void end_body() noexcept;
  void response_finished();
  // An error that ends the connection (malformed or refused request).
  void respond_error(unsigned status, std::string_view body, std::string_view extra_headers = {});
  bool active() const noexcept { return !done_ && !conn_.closing() && !conn_.closed(); }
  // The head of a request with a body is in: false (answered 413 or 503) when the route takes
  // no body or the body would go over --max-inflight.
  bool admit_body();

  listener_role role_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  std::string buffer_;             // received bytes not parsed yet (pipelined requests wait here)
  std::size_t head_consumed_ = 0;  // bytes of the current request head the parser has taken
  bool busy_ = false;              // a response is being produced or streamed
  bool keep_alive_ = true;
  bool done_ = false;              // closing or upgraded: this phase takes no more requests
  http::file_response pending_;    // a file response waiting for a file slot, or for compression
  bool waiting_for_slot_ = false;
  bool has_slot_ = false;
  int fd_ = -1;
  std::uint64_t offset_ = 0;
  std::uint64_t remaining_ = 0;
  event_loop::clock::time_point deadline_{};
  inflight_charge body_charge_;    // the request body's share of --max-inflight
  std::optional<boost::asio::ip::address> via_;               // the address the requests come from
  std::optional<boost::asio::ip::address> forwarded_client_;  // last client charged on this connection
};

}  // namespace mles::net
