// The --metrics listener: a small plain-HTTP/1.1 responder of its own (Beast parser, Beast
// tcp_stream deadlines), separate from the public listener and its phases, running on one
// io_context (the server's event loop 0). GET or HEAD of /metrics (the registry's text
// format), /healthz (200 while the process serves), /readyz (200 when the ready function says
// so, else 503); any other path 404, any other method 405. Requests are bounded (head
// max_head bytes: 431; a body: 413; malformed: 400, each then closed), every read and write
// has a deadline, idle keep-alive connections close after it, at most max_connections are
// served at once (further ones are closed at accept).
// Thread-safety: construct, start and stop from the controlling thread (they post to the
// io_context); everything else runs on the io_context's thread.
#pragma once

#include "app/metrics.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace mles::app {

struct metrics_http_limits {
  std::size_t max_head = 8 * 1024;
  std::chrono::milliseconds timeout{10'000};  // per request (read) and per response (write)
  std::size_t max_connections = 32;
  std::size_t max_requests = 1000;  // per connection, then Connection: close
};

class metrics_http {
 public:
  // Binds and listens at once; throws std::runtime_error("cannot listen on 127.0.0.1:9090 for
  // --metrics: Address already in use") on failure. registry and ready must outlive this.
  metrics_http(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& at, const metrics_registry& registry,
               std::function<bool()> ready, metrics_http_limits limits = {});
  ~metrics_http();
  metrics_http(const metrics_http&) = delete;
  metrics_http& operator=(const metrics_http&) = delete;

  void start();
  // Closes the acceptor and every open connection (posted to the io_context).
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const { return local_; }

  struct state;  // shared with the connections (public for them only)

 private:
  std::shared_ptr<state> state_;
  boost::asio::ip::tcp::endpoint local_;
};

}  // namespace mles::app
