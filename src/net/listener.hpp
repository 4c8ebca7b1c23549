// The TCP listener: accepts on one loop, applies the per-IP rate limit before any TLS work,
// and hands each connection to the next event loop (round robin), starting its HTTP phase.
// Thread-safety: start/stop post to the listener's loop; local_endpoint() after start.
#pragma once

#include "net/event_loop.hpp"
#include "net/rate_limiter.hpp"
#include "net/http_session.hpp"
#include "net/tls_context.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <sys/socket.h>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mles::net {

// Admission caps of a listener (0: no cap). Counted over all listeners and loops in
// server_counters (connections, handshakes).
struct listener_limits {
  std::size_t max_connections = 0;  // --max-connections
  std::size_t max_handshakes = 0;   // --max-handshakes (TLS listeners)
  bool proxy_protocol = false;      // --proxy-protocol: connections start with a PROXY header
};

class listener {
 public:
  // Binds and listens at once; throws std::runtime_error("cannot listen on [::]:443:
  // Permission denied") on failure. tls may be null (plain). Loops must outlive the listener.
  // The socket has SO_REUSEPORT so that a successor can take the port over (README, "Upgrade
  // without downtime"); unless takeover is set, a port another socket already listens on is
  // refused first ("Address already in use"), as without SO_REUSEPORT.
  listener(event_loop& home, std::vector<event_loop*> loops, const boost::asio::ip::tcp::endpoint& at,
           tls_registry* tls, std::optional<std::uint32_t> rate_limit, listener_role role = listener_role::main,
           bool takeover = false);

  ~listener();
  // Before start().
  void set_limits(const listener_limits& limits) noexcept { limits_ = limits; }
  void start();
  // Stops accepting without resetting anyone (asynchronously, on its loop): new connections
  // are steered to the newest other listener on the port (a --takeover successor), what is
  // already queued is still accepted until nothing arrived for drain_quiet (at most
  // drain_limit), then the acceptor closes and closed() becomes true.
  void stop();
  bool closed() const noexcept { return closed_.load(); }
  static constexpr std::chrono::milliseconds drain_quiet{100};
  static constexpr std::chrono::milliseconds drain_limit{1000};
  boost::asio::ip::tcp::endpoint local_endpoint() const { return local_; }

 private:
  void do_accept();
  void accept_ready();
  void pause_accepting(const std::string& why);
  // A descriptor accept4() gave: refused at a cap or over the rate limit, else handed to the
  // next loop as a connection.
  void admit(int fd, const sockaddr_storage& peer, socklen_t len);
  void check_drained();
  // Accept failed for lack of descriptors: accept on the spare descriptor and refuse.
  bool refuse_on_spare();

  event_loop& home_;
  std::vector<event_loop*> loops_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::ip::tcp::endpoint local_;
  tls_registry* tls_;
  listener_role role_;
  std::optional<rate_limiter> limiter_;
  listener_limits limits_;
  server_counters& counters_;
  const http::cidr_set* trusted_proxies_;  // --trusted-proxy: exempt from the accept-time limit
  int spare_fd_ = -1;  // an open /dev/null, given up at EMFILE to accept and refuse
  std::size_t next_loop_ = 0;
  // Accepts per loop turn: the loop's own connections wait while a turn starts new ones.
  static constexpr int accept_batch = 8;
  bool stopped_ = false;
  // stop(): accepting what is queued until the drain ends.
  bool draining_ = false;
  boost::asio::steady_timer drain_timer_;
  std::chrono::steady_clock::time_point drain_start_, last_accept_;
  std::atomic<bool> closed_{false};
};

}  // namespace mles::net
