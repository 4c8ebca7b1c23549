// The ACME HTTPS transport (see https_client.hpp): one shared_ptr'd exchange per request,
// every handler on its strand, every step under a deadline.
#include "acme/https_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <optional>

namespace mles::acme {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::uint32_t response_header_limit = 16u << 10;
// RFC 8555 §6.1: ACME clients send a User-Agent.
constexpr std::string_view user_agent = "mles/" MLES_VERSION " (ACME client)";

// Where a request goes, from its https:// URL.
struct target {
  std::string host;            // name or IP address, no brackets
  std::string port;            // numeric
  std::string host_and_port;   // the Host header: as in the URL
  std::string path_and_query;  // request target
  bool is_name = false;        // a DNS name (gets SNI), not an IP literal
};

std::optional<target> parse_target(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->scheme_id() != boost::urls::scheme::https || !parsed->has_authority() ||
      parsed->has_userinfo())
    return std::nullopt;
  const auto& u = *parsed;
  target t;
  t.host = u.host_address();
  if (t.host.empty()) return std::nullopt;
  t.port = u.has_port() ? std::string(u.port()) : "443";
  if (t.port.empty()) t.port = "443";
  t.host_and_port = u.encoded_host_and_port();
  t.path_and_query = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) t.path_and_query += "?" + std::string(u.encoded_query());
  t.is_name = u.host_type() == boost::urls::host_type::name;
  return t;
}

bhttp::verb to_verb(http_method method) {
  switch (method) {
    case http_method::get:
      return bhttp::verb::get;
    case http_method::head:
      return bhttp::verb::head;
    case http_method::post:
      return bhttp::verb::post;
  }
  return bhttp::verb::get;
}

// The error OpenSSL queued for the call that just failed (a generic one if it queued none).
error_code last_ssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return boost::system::errc::make_error_code(boost::system::errc::protocol_error);
  return error_code(static_cast<int>(e), asio::error::get_ssl_category());
}

// The client policy: TLS 1.2 or newer, the peer's certificate verified.
boost::system::result<std::shared_ptr<asio::ssl::context>> make_client_context() {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  if (SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) return last_ssl_error();
  error_code ec;
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return ec;
  return context;
}

// One request/response exchange. Owned by its pending operations (shared_ptr `self`).
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(asio::any_io_executor ex, target to, http_request request, const client_tls& tls,
           const https_limits& limits, https_handler done)
      : ex_(ex),
        strand_(asio::make_strand(ex)),
        resolver_(strand_),
        resolve_timer_(strand_),
        tls_(tls),
        stream_(strand_, tls_.context()),
        to_(std::move(to)),
        limits_(limits),
        done_(std::move(done)) {
    request_.method(to_verb(request.method));
    request_.target(to_.path_and_query);
    request_.version(11);
    request_.set(bhttp::field::host, to_.host_and_port);
    request_.set(bhttp::field::user_agent, user_agent);
    request_.set(bhttp::field::connection, "close");
    if (!request.accept.empty()) request_.set(bhttp::field::accept, request.accept);
    if (!request.content_type.empty()) request_.set(bhttp::field::content_type, request.content_type);
    request_.body() = std::move(request.body);
    request_.prepare_payload();
  }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->do_resolve(); });
  }

 private:
  void do_resolve() {
    deadline_ = std::chrono::steady_clock::now() + limits_.connect_timeout;
    // getaddrinfo cannot be interrupted: at the deadline the timer ends the exchange and the
    // late resolution result is ignored.
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) self->finish(beast::error::timeout);
    });
    resolver_.async_resolve(to_.host, to_.port, tcp::resolver::numeric_service,
                            [self = shared_from_this()](const error_code& ec, const tcp::resolver::results_type& r) {
                              self->on_resolve(ec, r);
                            });
  }

  void on_resolve(const error_code& ec, const tcp::resolver::results_type& results) {
    if (finished_) return;
    resolve_timer_.cancel();
    if (ec) return finish(ec);
    beast::get_lowest_layer(stream_).expires_at(deadline_);
    beast::get_lowest_layer(stream_).async_connect(
        results, [self = shared_from_this()](const error_code& e, const tcp::endpoint&) { self->on_connect(e); });
  }

  void on_connect(const error_code& ec) {
    if (finished_) return;
    if (ec) return finish(ec);
    // RFC 6066 §3: SNI carries DNS names only, never IP literals.
    if (to_.is_name && SSL_set_tlsext_host_name(stream_.native_handle(), to_.host.c_str()) != 1)
      return finish(last_ssl_error());
    // Matches a DNS name against the certificate's names, an IP literal against its IP SANs.
    stream_.set_verify_callback(asio::ssl::host_name_verification(to_.host));
    stream_.async_handshake(asio::ssl::stream_base::client,
                            [self = shared_from_this()](const error_code& e) { self->on_handshake(e); });
  }

  void on_handshake(const error_code& ec) {
    if (finished_) return;
    if (ec) return finish(ec);
    // One deadline for the whole exchange: the write and every read below.
    beast::get_lowest_layer(stream_).expires_after(limits_.exchange_timeout);
    bhttp::async_write(stream_, request_,
                       [self = shared_from_this()](const error_code& e, std::size_t) { self->on_write(e); });
  }

  void on_write(const error_code& ec) {
    if (finished_) return;
    if (ec) return finish(ec);
    parser_.header_limit(response_header_limit);
    parser_.body_limit(limits_.max_body_bytes);
    // RFC 9110 §9.3.2: a response to HEAD has no content, whatever its Content-Length says.
    if (request_.method() == bhttp::verb::head) parser_.skip(true);
    bhttp::async_read(stream_, buffer_, parser_,
                      [self = shared_from_this()](const error_code& e, std::size_t) { self->on_read(e); });
  }

  void on_read(const error_code& ec) {
    if (finished_) return;
    if (ec) return finish(ec);
    const auto& message = parser_.get();
    http_response response;
    response.status = message.result_int();
    response.replay_nonce = std::string(message["Replay-Nonce"]);
    response.location = std::string(message[bhttp::field::location]);
    response.retry_after = std::string(message[bhttp::field::retry_after]);
    response.body = std::move(parser_.get().body());
    finish({}, std::move(response));
  }

  void finish(error_code ec, http_response response = {}) {
    if (finished_) return;
    finished_ = true;
    resolve_timer_.cancel();
    resolver_.cancel();
    // The response is complete (or abandoned): no close_notify exchange, just close.
    error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
    asio::post(ex_, [done = std::move(done_), ec, response = std::move(response)]() mutable {
      done(ec, std::move(response));
    });
  }

  asio::any_io_executor ex_;
  asio::strand<asio::any_io_executor> strand_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  client_tls tls_;  // keeps the context alive for stream_
  asio::ssl::stream<beast::tcp_stream> stream_;
  target to_;
  https_limits limits_;
  https_handler done_;
  bhttp::request<bhttp::string_body> request_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  std::chrono::steady_clock::time_point deadline_;
  bool finished_ = false;
};

}  // namespace

boost::system::result<client_tls> client_tls::system_trust() {
  auto context = make_client_context();
  if (!context) return context.error();
  error_code ec;
  (*context)->set_default_verify_paths(ec);
  if (ec) return ec;
  return client_tls(std::move(*context));
}

boost::system::result<client_tls> client_tls::from_ca_file(const std::string& pem_path) {
  auto context = make_client_context();
  if (!context) return context.error();
  error_code ec;
  (*context)->load_verify_file(pem_path, ec);
  if (ec) return ec;
  return client_tls(std::move(*context));
}

void request(boost::asio::any_io_executor ex, http_request req, const client_tls& tls, const https_limits& limits,
             https_handler done) {
  auto to = parse_target(req.url);
  if (!to) {
    asio::post(ex, [done = std::move(done)] {
      done(boost::system::errc::make_error_code(boost::system::errc::invalid_argument), {});
    });
    return;
  }
  std::make_shared<exchange>(ex, std::move(*to), std::move(req), tls, limits, std::move(done))->start();
}

}  // namespace mles::acme
