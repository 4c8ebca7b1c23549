// listener: accept loop, rate limit, distribution of connections over the event loops.
#include "net/listener.hpp"

#include "net/connection.hpp"
#include "net/log_limit.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace mles::net {

namespace {
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// Without --takeover the port must be free as it would be without SO_REUSEPORT: a socket
// without it cannot bind where another one listens (with or without SO_REUSEPORT).
// SO_REUSEADDR as on the real socket, so that connections in TIME_WAIT do not count.
void probe_port_is_free(const boost::asio::ip::tcp::endpoint& at) {
  if (at.port() == 0) return;  // the kernel picks a free one
  const int fd = ::socket(at.address().is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;  // the real socket reports what is wrong
  const int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (at.address().is_v6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  const int rc = ::bind(fd, at.data(), static_cast<socklen_t>(at.size()));
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err == EADDRINUSE) {
    throw std::runtime_error("cannot listen on " + endpoint_text(at) +
                             ": Address already in use (to replace a running mles, start the new one with "
                             "--takeover; README, \"Upgrade without downtime\")");
  }
}

// New connections on the port go to the group's second socket, which is the newest listener
// when a --takeover successor joined this one (sockets join a SO_REUSEPORT group in order; a
// closed one's slot is taken by the last). An index beyond the group (no successor) makes
// the kernel pick by hash as before. The program belongs to the port's group and stays.
bool steer_to_successor(int fd) {
  sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 1)};
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0;
}
}  // namespace

listener::listener(event_loop& home, std::vector<event_loop*> loops,
                   const boost::asio::ip::tcp::endpoint& at, tls_registry* tls,
                   std::optional<std::uint32_t> rate_limit, listener_role role, bool takeover)
    : home_(home), loops_(std::move(loops)), acceptor_(home.io()), retry_timer_(home.io()), tls_(tls),
      role_(role), counters_(home.context().counters), trusted_proxies_(home.context().trusted_proxies),
      drain_timer_(home.io()) {
  if (rate_limit) limiter_.emplace(*rate_limit);
  boost::system::error_code ec;
  auto fail = [&](const char* what) {
    throw std::runtime_error("cannot listen on " + endpoint_text(at) + ": " + what +
                             (ec ? ": " + ec.message() : std::string{}));
  };
  acceptor_.open(at.protocol(), ec);
  if (ec) fail("socket");
  acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (at.address().is_v6()) {
    // Dual stack on [::]: IPv4 clients arrive as IPv4-mapped addresses.
    acceptor_.set_option(boost::asio::ip::v6_only(false), ec);
  }
  if (!takeover) probe_port_is_free(at);
  const int one = 1;
  if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    ec.assign(errno, boost::system::system_category());
    fail("SO_REUSEPORT");
  }
  acceptor_.bind(at, ec);
  if (ec) {
    const auto msg = ec.message();
    throw std::runtime_error("cannot listen on " + endpoint_text(at) + ": " + msg);
  }
  acceptor_.listen(4096, ec);
  if (ec) fail("listen");
  // Accepted sockets inherit these (see do_accept): no two setsockopt() calls per connection.
  acceptor_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
  if (ec) fail("TCP_NODELAY");
  acceptor_.set_option(boost::asio::socket_base::keep_alive(true), ec);
  if (ec) fail("SO_KEEPALIVE");
  acceptor_.non_blocking(true, ec);
  if (ec) fail("O_NONBLOCK");
  local_ = acceptor_.local_endpoint(ec);
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

listener::~listener() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

bool listener::refuse_on_spare() {
  if (spare_fd_ < 0) spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (spare_fd_ < 0) return false;
  ::close(spare_fd_);
  spare_fd_ = -1;
  const int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  const bool accepted = fd >= 0;
  if (accepted) note_refusal(counters_, refusal::out_of_descriptors);
  if (accepted) refuse_at_once(fd, tls_ == nullptr);
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return accepted;
}

void listener::start() {
  boost::asio::post(home_.io(), [this] { do_accept(); });
}

void listener::stop() {
  boost::asio::post(home_.io(), [this] {
    if (stopped_ || draining_) return;
    if (!steer_to_successor(acceptor_.native_handle()))
      spdlog::warn("{}: cannot steer new connections to a successor: {}", endpoint_text(local_), std::strerror(errno));
    draining_ = true;
    drain_start_ = last_accept_ = std::chrono::steady_clock::now();
    check_drained();
  });
}

void listener::check_drained() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_accept_ < drain_quiet && now - drain_start_ < drain_limit) {
    drain_timer_.expires_at(std::min(last_accept_ + drain_quiet, drain_start_ + drain_limit));
    drain_timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) check_drained();
    });
    return;
  }
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel();
  closed_ = true;
}

// Accepted sockets never pass through Asio: the loop waits for the listening socket to be
// readable, then takes the backlog with accept4() (non-blocking, close-on-exec, the peer's
// address in the same call), at most accept_batch per turn. Each accepted descriptor goes to
// the next loop's epoll set directly: no Asio socket registered with a reactor and released
// again (two epoll_ctl calls), no getpeername(). TCP_NODELAY and SO_KEEPALIVE come from the
// listening socket (Linux copies them to accepted sockets).
void listener::do_accept() {
  if (stopped_) return;
  acceptor_.async_wait(boost::asio::socket_base::wait_read, [this](const boost::system::error_code& ec) {
    if (stopped_ || ec == boost::asio::error::operation_aborted) return;
    if (ec) return pause_accepting(ec.message());
    accept_ready();
  });
}

void listener::pause_accepting(const std::string& why) {
  // Out of memory, or out of descriptors with no spare: pause instead of spinning, then go on.
  spdlog::warn("accept failed: {}; retrying in 100 ms", why);
  retry_timer_.expires_after(std::chrono::milliseconds(100));
  retry_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) do_accept();
  });
}

void listener::accept_ready() {
  for (int i = 0; i < accept_batch; ++i) {
    if (stopped_) return;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = ::accept4(acceptor_.native_handle(), reinterpret_cast<sockaddr*>(&peer), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      admit(fd, peer, len);
      continue;
    }
    const int e = errno;
    switch (e) {
      case EAGAIN:
#if EWOULDBLOCK != EAGAIN
      case EWOULDBLOCK:
#endif
        return do_accept();  // the backlog is empty
      // The connection failed before we took it, or a signal came (accept(2): retry these).
      case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
      case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case EPERM:
        continue;
      case EMFILE: case ENFILE:
        // Out of descriptors: the waiting client is accepted on the spare and closed at once
        // instead of being left in the backlog.
        if (refuse_on_spare()) continue;
        return pause_accepting(std::strerror(e));
      default:
        return pause_accepting(std::strerror(e));
    }
  }
  // More may be waiting: the loop's other work runs first.
  boost::asio::post(home_.io(), [this] { accept_ready(); });
}

void listener::admit(int fd, const sockaddr_storage& peer_address, socklen_t len) {
  if (draining_) last_accept_ = std::chrono::steady_clock::now();
  const bool at_connection_cap =
      limits_.max_connections && counters_.connections.load(std::memory_order_relaxed) >= limits_.max_connections;
  const bool at_handshake_cap =
      tls_ && limits_.max_handshakes && counters_.handshakes.load(std::memory_order_relaxed) >= limits_.max_handshakes;
  if (at_connection_cap || at_handshake_cap) {
    // Counted first: whoever sees the close may look at the counters.
    note_refusal(counters_, at_connection_cap ? refusal::connection_cap : refusal::handshake_cap);
    refuse_at_once(fd, tls_ == nullptr);
    return;
  }
  boost::asio::ip::tcp::endpoint peer;
  if (len <= peer.capacity()) {
    std::memcpy(peer.data(), &peer_address, len);
    peer.resize(len);
  }
  // Behind a load balancer the client's address comes later (PROXY header, X-Forwarded-For):
  // the limit is applied to it then (session_context::late_rate_limit), not to the balancer.
  const bool address_comes_later =
      limits_.proxy_protocol || (trusted_proxies_ && trusted_proxies_->contains(peer.address()));
  if (limiter_ && !address_comes_later && !limiter_->allow(peer.address(), event_loop::clock::now())) {
    if (problem_lines().allow(spdlog::level::info))
      spdlog::info("{}: over the rate limit, connection dropped", peer.address().to_string());
    home_.context().counters.rate_limited.fetch_add(1, std::memory_order_relaxed);
    ::close(fd);
    return;
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(nullptr, &SSL_free);
  if (tls_) {
    ssl.reset(tls_->new_ssl());
    if (!ssl) {
      spdlog::error("cannot create a TLS session; connection dropped");
      ::close(fd);
      return;
    }
  }
  counted_slot connection_slot(counters_.connections);
  counted_slot handshake_slot;
  if (tls_) handshake_slot = counted_slot(counters_.handshakes);
  event_loop& target = *loops_[next_loop_];
  next_loop_ = (next_loop_ + 1) % loops_.size();
  auto start = [&target, fd, peer, ssl = std::move(ssl), role = role_, cs = std::move(connection_slot),
                hs = std::move(handshake_slot), proxied = limits_.proxy_protocol]() mutable {
    auto c = std::make_shared<connection>(target, fd, peer, ssl.release(), tls_role::server);
    c->hold_slots(std::move(cs), std::move(hs));
    if (proxied) c->expect_proxy_header();
    auto first = std::make_unique<http_session>(*c, role);
    c->start(std::move(first), target.now() + target.context().settings.handshake_timeout);
  };
  // On this loop's own thread it starts here; another loop gets it posted.
  if (&target == &home_) start();
  else boost::asio::post(target.io(), std::move(start));
}

}  // namespace mles::net
