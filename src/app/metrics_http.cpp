// metrics_http: accept loop and the request/response loop of the --metrics listener.
#include "app/metrics_http.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace mles::app {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::asio::ip::tcp;

namespace {
class metrics_connection;
}  // namespace

struct metrics_http::state {
  state(boost::asio::io_context& ctx, const metrics_registry& r, std::function<bool()> is_ready, metrics_http_limits l)
      : io(ctx), acceptor(ctx), registry(r), ready(std::move(is_ready)), limits(l) {}
  boost::asio::io_context& io;
  tcp::acceptor acceptor;
  const metrics_registry& registry;
  std::function<bool()> ready;
  metrics_http_limits limits;
  std::unordered_set<metrics_connection*> open;  // io thread only
  bool stopped = false;
};

namespace {

std::string response(unsigned status, std::string_view reason, std::string_view content_type, const std::string& body,
                     bool head_only, bool keep_alive, std::string_view extra = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\nContent-Type: " +
                    std::string(content_type) + "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nCache-Control: no-store\r\n" + std::string(extra) +
                    (keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  if (!head_only) out += body;
  return out;
}

class metrics_connection : public std::enable_shared_from_this<metrics_connection> {
 public:
  metrics_connection(std::shared_ptr<metrics_http::state> st, tcp::socket socket)
      : st_(std::move(st)), stream_(std::move(socket)), buffer_(st_->limits.max_head + 1024) {
    st_->open.insert(this);
  }
  ~metrics_connection() { st_->open.erase(this); }

  void start() { read(); }
  void close() {
    beast::error_code ignore;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignore);
    stream_.socket().close(ignore);
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(st_->limits.max_head));
    parser_->body_limit(0);  // no route takes a body
    stream_.expires_after(st_->limits.timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      // Timeouts, the peer leaving and socket errors end the connection silently; a request
      // that breaks the bounds or the syntax gets its status first.
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
        return reply_and_close(431, "Request Header Fields Too Large", "request head too large\n");
      if (ec == bhttp::error::body_limit) return reply_and_close(413, "Payload Too Large", "no body expected\n");
      if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
          ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
        return reply_and_close(400, "Bad Request", "malformed request\n");
      return close();
    }
    const auto& req = parser_->get();
    ++served_;
    const bool keep_alive = req.keep_alive() && served_ < st_->limits.max_requests;
    const bool head = req.method() == bhttp::verb::head;
    std::string_view target(req.target());
    target = target.substr(0, target.find('?'));
    std::string out;
    if (req.method() != bhttp::verb::get && !head) {
      out = response(405, "Method Not Allowed", "text/plain; charset=utf-8", "method not allowed\n", false, keep_alive,
                     "Allow: GET, HEAD\r\n");
    } else if (target == "/metrics") {
      std::string body;
      try {
        body = st_->registry.render();
      } catch (const std::exception& e) {
        spdlog::error("metrics: cannot render: {}", e.what());
        out = response(500, "Internal Server Error", "text/plain; charset=utf-8", "metrics unavailable\n", head, false);
        return write(std::move(out), false);
      }
      out = response(200, "OK", metrics_content_type, body, head, keep_alive);
    } else if (target == "/healthz") {
      out = response(200, "OK", "text/plain; charset=utf-8", "ok\n", head, keep_alive);
    } else if (target == "/readyz") {
      if (st_->ready && st_->ready()) out = response(200, "OK", "text/plain; charset=utf-8", "ready\n", head, keep_alive);
      else out = response(503, "Service Unavailable", "text/plain; charset=utf-8", "not ready\n", head, keep_alive);
    } else {
      out = response(404, "Not Found", "text/plain; charset=utf-8", "not found\n", head, keep_alive);
    }
    write(std::move(out), keep_alive);
  }

  void reply_and_close(unsigned status, std::string_view reason, const std::string& body) {
    out_ = response(status, reason, "text/plain; charset=utf-8", body, false, false);
    stream_.expires_after(st_->limits.timeout);
    boost::asio::async_write(stream_, boost::asio::buffer(out_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      // Lingering close: the rest of the refused request is read and dropped until the client
      // closes (bounded in bytes and by the deadline), so that closing with unread bytes
      // does not reset the connection before the client read the answer.
      beast::error_code ignore;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignore);
      self->drain(0);
    });
  }

  void drain(std::size_t dropped) {
    if (dropped > (1u << 20) || st_->stopped) return close();
    stream_.async_read_some(boost::asio::buffer(discard_),
                            [self = shared_from_this(), dropped](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              self->drain(dropped + n);
                            });
  }

  void write(std::string out, bool keep_alive) {
    out_ = std::move(out);
    stream_.expires_after(st_->limits.timeout);
    boost::asio::async_write(stream_, boost::asio::buffer(out_),
                             [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                               if (ec) return self->close();
                               if (keep_alive && !self->st_->stopped) return self->read();
                               self->close();
                             });
  }

  std::shared_ptr<metrics_http::state> st_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string out_;
  std::array<char, 4096> discard_;
  std::size_t served_ = 0;
};

void do_accept(const std::shared_ptr<metrics_http::state>& st) {
  st->acceptor.async_accept(st->io, [st](const boost::system::error_code& ec, tcp::socket socket) {
    if (st->stopped || ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and the like: try again on the next turn of the loop, not in a tight spin.
      spdlog::warn("metrics: accept failed: {}", ec.message());
      boost::asio::post(st->io, [st] { do_accept(st); });
      return;
    }
    if (st->open.size() >= st->limits.max_connections) {
      boost::system::error_code ignore;
      socket.close(ignore);
    } else {
      std::make_shared<metrics_connection>(st, std::move(socket))->start();
    }
    do_accept(st);
  });
}

std::string where(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

metrics_http::metrics_http(boost::asio::io_context& io, const tcp::endpoint& at, const metrics_registry& registry,
                           std::function<bool()> ready, metrics_http_limits limits)
    : state_(std::make_shared<state>(io, registry, std::move(ready), limits)) {
  boost::system::error_code ec;
  auto& a = state_->acceptor;
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  if (!ec) a.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where(at) + " for --metrics: " + ec.message());
  local_ = a.local_endpoint(ec);
}

metrics_http::~metrics_http() {
  boost::system::error_code ignore;
  state_->stopped = true;
  state_->acceptor.close(ignore);
}

void metrics_http::start() {
  boost::asio::post(state_->io, [st = state_] { do_accept(st); });
}

void metrics_http::stop() {
  boost::asio::post(state_->io, [st = state_] {
    st->stopped = true;
    boost::system::error_code ignore;
    st->acceptor.close(ignore);
    // Copy: closing may end a connection's last handler only later, never here, but keep the
    // iteration independent of the set anyway.
    std::vector<metrics_connection*> open(st->open.begin(), st->open.end());
    for (auto* c : open) c->close();
  });
}

}  // namespace mles::app
