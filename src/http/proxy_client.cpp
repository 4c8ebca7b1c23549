// Reverse proxy forwarding client (see proxy_client.hpp): resolve ─► connect ─► write ─►
// read, one shared_ptr'd operation per request, every step under a deadline.
#include "http/proxy_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string_view>

namespace mles::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::uint32_t response_header_limit = 64u << 10;

// RFC 9110 §7.6.1: hop-by-hop fields, plus the obsolete Keep-Alive and Proxy-Connection.
constexpr std::array<std::string_view, 7> hop_by_hop = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"};

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9110 §5.1/§5.5: a field name is a token; a value may not hold CR, LF or NUL.
bool is_valid_field(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name)
    if (!is_token_char(c)) return false;
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Adds the field names a Connection header value lists (RFC 9110 §7.6.1): hop-by-hop too.
void add_connection_options(std::string_view value, std::vector<std::string>& names) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    const auto token = trim_ows(value.substr(0, comma));
    if (!token.empty()) names.emplace_back(token);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
  }
}

// Whether a field is dropped in either direction: hop-by-hop, named in Connection, or
// Content-Length (recomputed for the upstream, set by the caller for the client).
bool is_dropped(std::string_view name, const std::vector<std::string>& options) {
  if (beast::iequals(name, "content-length")) return true;
  for (auto h : hop_by_hop)
    if (beast::iequals(name, h)) return true;
  for (const auto& o : options)
    if (beast::iequals(name, o)) return true;
  return false;
}

proxy_response generated(unsigned status, std::string body) {
  proxy_response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

proxy_response bad_gateway(std::string_view reason) {
  return generated(502, "bad gateway: " + std::string(reason) + "\n");
}

proxy_response gateway_timeout() { return generated(504, "gateway timeout\n"); }

// The 502 reason for a failed write or read (timeouts are handled before).
std::string_view exchange_failure(const beast::error_code& ec) {
  if (ec == bhttp::error::body_limit) return "response too large";
  if (ec == bhttp::error::header_limit) return "response header too large";
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
    return "upstream closed the connection";
  if (ec.category() == make_error_code(bhttp::error::bad_version).category()) return "malformed response";
  return "upstream connection failed";
}

// One forwarded exchange. Owned by the pending operation's handler (shared_ptr `self`);
// every handler runs on strand_, so no locking.
class forward_op : public std::enable_shared_from_this<forward_op> {
 public:
  forward_op(asio::any_io_executor ex, const upstream& to, proxy_request req, const proxy_limits& limits,
             std::function<void(proxy_response)> done)
      : ex_(ex),
        strand_(asio::make_strand(ex)),
        resolver_(strand_),
        resolve_timer_(strand_),
        stream_(strand_),
        to_(to),
        limits_(limits),
        done_(std::move(done)) {
    build_request(std::move(req));
  }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->do_resolve(); });
  }

 private:
  void build_request(proxy_request req) {
    request_.method(req.method);
    request_.target(req.target);
    request_.version(11);
    std::vector<std::string> options;
    for (const auto& [name, value] : req.headers)
      if (beast::iequals(name, "connection")) add_connection_options(value, options);
    for (const auto& [name, value] : req.headers) {
      if (beast::iequals(name, "host") || is_dropped(name, options) || !is_valid_field(name, value)) continue;
      request_.insert(name, value);
    }
    // RFC 9112 §3.2: Host carries the port when it is not the scheme's default; always
    // sending it is allowed and keeps the upstream's view unambiguous.
    const bool ipv6 = to_.host.find(':') != std::string::npos;
    request_.set(bhttp::field::host,
                 (ipv6 ? "[" + to_.host + "]" : to_.host) + ":" + std::to_string(to_.port));
    request_.set(bhttp::field::connection, "close");
    request_.body() = std::move(req.body);
    request_.prepare_payload();
  }

  void do_resolve() {
    deadline_ = std::chrono::steady_clock::now() + limits_.connect_timeout;
    // getaddrinfo runs on Asio's resolver thread and cannot be interrupted: the timer answers
    // 504 at the deadline and the late resolution result is then ignored.
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      if (!ec) self->finish(gateway_timeout());
    });
    resolver_.async_resolve(to_.host, std::to_string(to_.port), tcp::resolver::numeric_service,
                            [self = shared_from_this()](const beast::error_code& ec,
                                                        const tcp::resolver::results_type& results) {
                              self->on_resolve(ec, results);
                            });
  }

  void on_resolve(const beast::error_code& ec, const tcp::resolver::results_type& results) {
    if (finished_) return;
    resolve_timer_.cancel();
    if (ec) return finish(bad_gateway("cannot resolve upstream"));
    stream_.expires_at(deadline_);
    stream_.async_connect(results, [self = shared_from_this()](const beast::error_code& e, const tcp::endpoint&) {
      self->on_connect(e);
    });
  }

  void on_connect(const beast::error_code& ec) {
    if (finished_) return;
    if (ec == beast::error::timeout) return finish(gateway_timeout());
    if (ec) return finish(bad_gateway("upstream unreachable"));
    // One deadline for the whole exchange: it applies to the write and every read below.
    stream_.expires_after(limits_.response_timeout);
    bhttp::async_write(stream_, request_, [self = shared_from_this()](const beast::error_code& e, std::size_t) {
      self->on_write(e);
    });
  }

  void on_write(const beast::error_code& ec) {
    if (finished_) return;
    if (ec) return fail_exchange(ec);
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(response_header_limit);
    parser_->body_limit(limits_.max_response_bytes);
    // RFC 9110 §9.3.2: a response to HEAD has no content, whatever its Content-Length says.
    if (request_.method() == bhttp::verb::head) parser_->skip(true);
    bhttp::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](const beast::error_code& e, std::size_t) {
      self->on_read(e);
    });
  }

  void on_read(const beast::error_code& ec) {
    if (finished_) return;
    if (ec) return fail_exchange(ec);
    auto message = parser_->release();
    // RFC 9110 §15.2: interim responses are not relayed; the final one follows. No Upgrade
    // is forwarded, so a 101 cannot be meant for us either.
    if (message.result_int() < 200) return do_read();
    proxy_response r;
    r.status = message.result_int();
    std::vector<std::string> options;
    for (const auto& field : message)
      if (field.name() == bhttp::field::connection) add_connection_options(field.value(), options);
    for (const auto& field : message) {
      if (is_dropped(field.name_string(), options)) continue;
      r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    r.body = std::move(message.body());
    finish(std::move(r));
  }

  void fail_exchange(const beast::error_code& ec) {
    if (ec == beast::error::timeout) return finish(gateway_timeout());
    finish(bad_gateway(exchange_failure(ec)));
  }

  void finish(proxy_response r) {
    if (finished_) return;
    finished_ = true;
    resolve_timer_.cancel();
    resolver_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (!done_) return;
    asio::post(ex_, [done = std::move(done_), r = std::move(r)]() mutable { done(std::move(r)); });
  }

  asio::any_io_executor ex_;
  asio::strand<asio::any_io_executor> strand_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  beast::tcp_stream stream_;
  upstream to_;
  proxy_limits limits_;
  std::function<void(proxy_response)> done_;
  bhttp::request<bhttp::string_body> request_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  std::chrono::steady_clock::time_point deadline_;
  bool finished_ = false;
};

}  // namespace

void forward(boost::asio::any_io_executor ex, const upstream& to, proxy_request req, const proxy_limits& limits,
             std::function<void(proxy_response)> done) {
  std::make_shared<forward_op>(std::move(ex), to, std::move(req), limits, std::move(done))->start();
}

}  // namespace mles::http
