// mles-raw-baseline, the yardstick for "what the kernel allows": a single-threaded epoll fan-out
// server with just enough Mles for mles-bench (upgrade, first frame = join, later frames framed
// once and copied to the other members' buffers, one send per connection per round). No TLS.
#include "ws_wire.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mles::bench {

namespace {

constexpr std::size_t read_buffer_size = 1u << 20;
constexpr std::size_t max_request = 8u << 10;
constexpr int max_reads_per_event = 4;

struct channel;

// One accepted connection. Owned by raw_server (freed at the end of the round it closed in).
struct client {
  enum class phase : std::uint8_t { http, join, member, closed };
  int fd_ = -1;
  phase phase_ = phase::http;
  bool dirty_ = false;     // on the flush list
  bool want_out_ = false;  // EPOLLOUT registered (kernel buffer was full)
  bool slow_ = false;      // over max queue: to be closed after the fan-out
  std::string in_;         // unparsed tail of the last read
  std::string out_;        // frames not yet written
  std::size_t out_off_ = 0;
  channel* channel_ = nullptr;
  std::size_t slot_ = 0;   // index in channel_->members_

  std::size_t queued() const noexcept { return out_.size() - out_off_; }
};

struct channel {
  std::vector<client*> members_;
};

class raw_server {
 public:
  raw_server(int listen_fd, std::size_t max_queue) : listen_fd_(listen_fd), max_queue_(max_queue) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listener
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    rbuf_.resize(read_buffer_size);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  [[noreturn]] void run() {
    std::vector<epoll_event> events(1024);
    for (;;) {
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_wait");
        std::exit(1);
      }
      for (int i = 0; i < n; ++i) {
        const epoll_event& ev = events[static_cast<std::size_t>(i)];
        if (ev.data.ptr == nullptr) {
          accept_all();
          continue;
        }
        client& c = *static_cast<client*>(ev.data.ptr);
        if (c.phase_ == client::phase::closed) continue;
        if ((ev.events & EPOLLOUT) != 0) flush(c);
        if (c.phase_ != client::phase::closed && (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0)
          on_readable(c);
      }
      for (std::size_t i = 0; i < dirty_.size(); ++i) {
        client& c = *dirty_[i];
        c.dirty_ = false;
        if (c.phase_ != client::phase::closed && !c.want_out_) flush(c);
      }
      dirty_.clear();
      for (client* c : dead_) delete c;
      dead_.clear();
    }
  }

 private:
  void accept_all() {
    for (int i = 0; i < 1024; ++i) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: accept and drop one so the listener stops being readable.
          std::fprintf(stderr, "mles-raw-baseline: out of file descriptors, dropping a connection\n");
          ::close(spare_fd_);
          const int victim = ::accept(listen_fd_, nullptr, nullptr);
          if (victim >= 0) ::close(victim);
          spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        return;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new client;
      c->fd_ = fd;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.ptr = c;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    }
  }

  void on_readable(client& c) {
    for (int iter = 0; iter < max_reads_per_event; ++iter) {
      const std::size_t have = c.in_.size();
      if (rbuf_.size() < have + (64u << 10)) rbuf_.resize(have * 2 + (64u << 10));
      if (have > 0) std::memcpy(rbuf_.data(), c.in_.data(), have);
      c.in_.clear();
      const std::size_t space = rbuf_.size() - have;
      ssize_t r;
      do {
        r = ::read(c.fd_, rbuf_.data() + have, space);
      } while (r < 0 && errno == EINTR);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          if (have > 0) c.in_.assign(rbuf_.data(), have);
          return;
        }
        close_client(c);  // EOF or error
        return;
      }
      const auto got = static_cast<std::size_t>(r);
      if (!consume(c, have + got)) return;
      if (got < space) return;
    }
  }

  // Parses rbuf_[0, n). Returns false when c was closed.
  bool consume(client& c, std::size_t n) {
    char* p = rbuf_.data();
    std::size_t pos = 0;
    if (c.phase_ == client::phase::http) {
      const std::string_view all(p, n);
      const std::size_t end = all.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (n > max_request) {
          close_client(c);
          return false;
        }
        c.in_.assign(p, n);
        return true;
      }
      const std::string_view key = header_value(all.substr(0, end + 2), "Sec-WebSocket-Key");
      if (key.empty()) {
        close_client(c);
        return false;
      }
      c.out_ += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: ";
      c.out_ += websocket_accept_key(key);
      c.out_ += "\r\nSec-WebSocket-Protocol: mles-websocket\r\n\r\n";
      mark_dirty(c);
      c.phase_ = client::phase::join;
      pos = end + 4;
    }
    while (pos < n) {
      frame_view f;
      const parse_result r = parse_frame(p + pos, n - pos, f);
      if (r == parse_result::need_more) break;
      if (r == parse_result::error || !f.masked) {  // RFC 6455 §5.1: client frames are masked
        close_client(c);
        return false;
      }
      pos += f.frame_len;
      if (f.opcode == ws_opcode::close) {
        close_client(c);
        return false;
      }
      if (f.opcode == ws_opcode::ping || f.opcode == ws_opcode::pong) continue;
      apply_mask(f.payload, f.payload_len, f.mask_key);
      if (c.phase_ == client::phase::join) {
        if (!join(c, std::string_view(f.payload, f.payload_len))) {
          close_client(c);
          return false;
        }
        continue;
      }
      // Frame once, in place: the server header is 4 bytes shorter than the client's (no
      // mask key), so it fits right before the payload.
      const std::size_t h = server_header_size(f.payload_len);
      char* frame = f.payload - h;
      write_header(frame, f.opcode, f.payload_len, f.fin, false);
      fan_out(c, frame, h + f.payload_len);
    }
    if (pos < n) c.in_.assign(p + pos, n - pos);
    return true;
  }

  // First frame: {"uid":"...","channel":"..."}; the channel is found by a plain search.
  bool join(client& c, std::string_view json) {
    std::size_t k = json.find("\"channel\"");
    if (k == std::string_view::npos) return false;
    k = json.find(':', k + 9);
    if (k == std::string_view::npos) return false;
    const std::size_t q1 = json.find('"', k + 1);
    if (q1 == std::string_view::npos) return false;
    const std::size_t q2 = json.find('"', q1 + 1);
    if (q2 == std::string_view::npos || q2 == q1 + 1) return false;
    auto& ch = channels_[std::string(json.substr(q1 + 1, q2 - q1 - 1))];
    if (!ch) ch = std::make_unique<channel>();
    c.channel_ = ch.get();
    c.slot_ = ch->members_.size();
    ch->members_.push_back(&c);
    c.phase_ = client::phase::member;
    return true;
  }

  void fan_out(client& from, const char* frame, std::size_t len) {
    bool any_slow = false;
    for (client* m : from.channel_->members_) {
      if (m == &from) continue;
      m->out_.append(frame, len);
      if (m->queued() > max_queue_) {
        m->slow_ = true;
        any_slow = true;
      }
      mark_dirty(*m);
    }
    if (any_slow) {
      std::vector<client*> slow;
      for (client* m : from.channel_->members_)
        if (m->slow_) slow.push_back(m);
      for (client* m : slow) {
        ++slow_closes_;
        std::fprintf(stderr, "mles-raw-baseline: closing a slow member (%zu bytes queued)\n", m->queued());
        close_client(*m);
      }
    }
  }

  void mark_dirty(client& c) {
    if (!c.dirty_) {
      c.dirty_ = true;
      dirty_.push_back(&c);
    }
  }

  void flush(client& c) {
    while (c.out_off_ < c.out_.size()) {
      const ssize_t r = ::send(c.fd_, c.out_.data() + c.out_off_, c.out_.size() - c.out_off_, MSG_NOSIGNAL);
      if (r > 0) {
        c.out_off_ += static_cast<std::size_t>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_client(c);
      return;
    }
    const bool pending = c.out_off_ < c.out_.size();
    if (!pending) {
      c.out_.clear();
      c.out_off_ = 0;
    } else if (c.out_off_ > (256u << 10) && c.out_off_ * 2 > c.out_.size()) {
      c.out_.erase(0, c.out_off_);
      c.out_off_ = 0;
    }
    if (pending != c.want_out_) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (pending ? EPOLLOUT : 0u);
      ev.data.ptr = &c;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd_, &ev);
      c.want_out_ = pending;
    }
  }

  void close_client(client& c) {
    if (c.phase_ == client::phase::closed) return;
    if (c.channel_ != nullptr) {
      auto& members = c.channel_->members_;
      client* last = members.back();
      members[c.slot_] = last;
      last->slot_ = c.slot_;
      members.pop_back();
      c.channel_ = nullptr;
    }
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd_, nullptr);
    ::close(c.fd_);
    c.fd_ = -1;
    c.phase_ = client::phase::closed;
    dead_.push_back(&c);
  }

  int listen_fd_;
  int epoll_fd_ = -1;
  int spare_fd_ = -1;
  std::size_t max_queue_;
  std::string rbuf_;
  std::unordered_map<std::string, std::unique_ptr<channel>> channels_;
  std::vector<client*> dirty_;
  std::vector<client*> dead_;
  std::uint64_t slow_closes_ = 0;
};

}  // namespace
}  // namespace mles::bench

int main(int argc, char** argv) {
  using namespace mles::bench;
  std::signal(SIGPIPE, SIG_IGN);
  std::uint16_t port = 0;
  std::string bind_addr = "127.0.0.1";
  std::size_t max_queue = 4u << 20;
  CLI::App app{"mles-raw-baseline: minimal single-threaded epoll fan-out server (plain ws, no history)"};
  app.add_option("--port", port, "port, 0 = ephemeral")->capture_default_str();
  app.add_option("--bind", bind_addr, "address to listen on")->capture_default_str();
  app.add_option("--max-queue", max_queue, "bytes queued per member before it is closed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }

  sockaddr_storage ss{};
  socklen_t ss_len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, bind_addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ss_len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, bind_addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ss_len = sizeof(sockaddr_in6);
  } else {
    fmt::print(stderr, "mles-raw-baseline: --bind {}: not a numeric address\n", bind_addr);
    return 2;
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), ss_len) != 0 || ::listen(fd, 4096) != 0) {
    fmt::print(stderr, "mles-raw-baseline: cannot listen on {}:{}: {}\n", bind_addr, port, std::strerror(errno));
    return 1;
  }
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &ss_len);
  const unsigned bound = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  fmt::print("listening on {}{}{}:{}\n", ss.ss_family == AF_INET6 ? "[" : "", bind_addr,
             ss.ss_family == AF_INET6 ? "]" : "", bound);
  std::fflush(stdout);
  raw_server server(fd, max_queue);
  server.run();
}
