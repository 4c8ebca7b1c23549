// mles-abuse: replays the memory attacks of issue 9 against an Mles server over loopback
// (plain ws:// only) and reports what was sent and what the server answered (close codes,
// HTTP statuses). It measures nothing on the server itself: bench/run_abuse.sh samples the
// server's RSS around it. Blocking sockets with per-call timeouts, one thread per concurrent
// connection; every loop is bounded by a deadline.
//
//   mles-abuse a     --port P [--duration 25] [--concurrency 2] [--messages 32] [--size 1MiB] [--keep]
//   mles-abuse b     --port P [--duration 60] [--concurrency 32] [--size 64]
//   mles-abuse c     --port P [--connections 100] [--frame 16MiB] [--prefix 15MiB] [--hold 15]
//   mles-abuse d     --port P [--connections 60] [--frame 16MiB] [--prefix 1MiB] [--interval 2] [--hold 30]
//   mles-abuse e     --port P [--requests 500] [--body 1MiB] [--path /] [--method POST]
//   mles-abuse probe --port P [--timeout 5]
//
// Output: `key value` lines on stdout (the script greps them). Exit 0 unless the tool itself
// could not run (usage, nothing connected); a refused attack is the expected outcome.
#include "ws_wire.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace mles::bench;
using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

std::uint16_t g_port = 0;

// Outcome labels of one connection, counted by name ("close 1013", "reset", "eof", ...).
class tally {
 public:
  void add(const std::string& what, std::uint64_t n = 1) {
    std::lock_guard lock(mutex_);
    counts_[what] += n;
  }
  void print(const std::string& prefix) const {
    std::lock_guard lock(mutex_);
    std::string all;
    for (const auto& [k, v] : counts_) {
      fmt::print("{}{} {}\n", prefix, k, v);
      all += fmt::format("{}{}={}", all.empty() ? "" : ", ", k, v);
    }
    fmt::print("{}summary {}\n", prefix, all.empty() ? "none" : all);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> counts_;
};

void set_timeouts(int fd, double s) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>((s - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Connects to 127.0.0.1:port, from 127.0.0.<src_last> when src_last > 1 (more ephemeral
// ports for attack b). Returns -1 on failure (errno kept).
int dial(unsigned src_last = 0, double timeout_s = 5) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_timeouts(fd, timeout_s);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src_last > 1) {
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (src_last & 0xffu));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(g_port);
  dst.sin_addr.s_addr = htonl(0x7f000001u);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool send_all(int fd, const std::string& s) { return send_all(fd, s.data(), s.size()); }

// Reads an HTTP response head; returns its status code (0: none). Extra bytes go to rest.
int read_http_status(int fd, std::string& rest) {
  std::string buf;
  char tmp[4096];
  while (buf.find("\r\n\r\n") == std::string::npos && buf.size() < 65536) {
    const ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return 0;
    }
    buf.append(tmp, static_cast<std::size_t>(r));
  }
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos || buf.compare(0, 5, "HTTP/") != 0) return 0;
  rest = buf.substr(end + 4);
  const std::size_t sp = buf.find(' ');
  return sp == std::string::npos ? 0 : std::atoi(buf.c_str() + sp + 1);
}

std::string upgrade_request() {
  return fmt::format(
      "GET / HTTP/1.1\r\nHost: localhost:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
      g_port, make_websocket_key(), mles_subprotocol);
}

// A masked client frame (fixed mask: legal, and the attack needs no variety).
std::string client_frame(ws_opcode op, const char* payload, std::size_t n, bool fin = true,
                         std::size_t announced = 0) {
  const std::size_t len = announced ? announced : n;
  std::string f(14 + n, '\0');
  std::size_t h = write_header(f.data(), op, len, fin, true);
  const std::uint32_t mask = 0x5a3c96e1u;
  std::memcpy(f.data() + h, &mask, 4);
  h += 4;
  copy_masked(f.data() + h, payload, n, mask);
  f.resize(h + n);
  return f;
}

std::string join_frame(const std::string& uid, const std::string& channel) {
  const std::string j = fmt::format(R"({{"uid":"{}","channel":"{}"}})", uid, channel);
  return client_frame(ws_opcode::text, j.data(), j.size());
}

// Connects, upgrades and joins. Returns the fd, or -1 with why set.
int open_session(const std::string& uid, const std::string& channel, std::string& why,
                 unsigned src_last = 0, const std::string& extra_after_join = {}) {
  const int fd = dial(src_last, 15);
  if (fd < 0) {
    why = fmt::format("connect: {}", std::strerror(errno));
    return -1;
  }
  std::string rest;
  if (!send_all(fd, upgrade_request())) {
    why = "upgrade send failed";
    ::close(fd);
    return -1;
  }
  const int status = read_http_status(fd, rest);
  if (status != 101) {
    why = fmt::format("upgrade answered {}", status);
    ::close(fd);
    return -1;
  }
  std::string out = join_frame(uid, channel);
  out += extra_after_join;
  if (!send_all(fd, out)) {
    why = "join send failed";
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads server frames until a close frame, EOF, reset or the deadline; returns a label
// ("close 1013", "eof", "reset", "timeout"). Data frames are skipped (counted in *data).
std::string await_end(int fd, double timeout_s, std::string buf = {}, std::uint64_t* data = nullptr) {
  const auto deadline = steady::now() + std::chrono::duration<double>(timeout_s);
  char tmp[65536];
  for (;;) {
    for (;;) {
      frame_view f;
      if (buf.empty()) break;
      const auto r = parse_frame(buf.data(), buf.size(), f);
      if (r == parse_result::error) return "bad frame";
      if (r == parse_result::need_more) break;
      if (f.opcode == ws_opcode::close) {
        if (f.payload_len >= 2)
          return fmt::format("close {}", (static_cast<unsigned>(static_cast<unsigned char>(f.payload[0])) << 8) |
                                             static_cast<unsigned char>(f.payload[1]));
        return "close (no code)";
      }
      if (data && (f.opcode == ws_opcode::binary || f.opcode == ws_opcode::text)) ++*data;
      buf.erase(0, f.frame_len);
    }
    const double left = std::chrono::duration<double>(deadline - steady::now()).count();
    if (left <= 0) return "timeout";
    pollfd p{fd, POLLIN, 0};
    const int pr = ::poll(&p, 1, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
    if (pr < 0 && errno != EINTR) return "poll error";
    if (pr <= 0) continue;
    const ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
    if (r == 0) return "eof";
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno == ECONNRESET ? "reset" : fmt::format("recv {}", std::strerror(errno));
    }
    buf.append(tmp, static_cast<std::size_t>(r));
  }
}

// Non-blocking look at what the server sent so far: a close label, or empty if still open.
std::string peek_end(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return {};
  std::string end = await_end(fd, 0.2);
  return end == "timeout" ? std::string() : end;  // only a ping (the server pings every 24 s)
}

std::string nonce() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

void abortive_close(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// ---- attack a: fill channels with N x size messages ----------------------------------------
struct a_opts {
  double duration = 25;
  unsigned concurrency = 2;
  unsigned messages = 32;
  std::size_t size = 1 << 20;
  bool keep = false;  // keep every connection open to the end (channels keep a member)
  unsigned max_channels = 100000;
};

int attack_a(const a_opts& o) {
  const std::string tag = nonce();
  std::string payload(o.size, 'a');
  const std::string frame = client_frame(ws_opcode::binary, payload.data(), payload.size());
  std::atomic<unsigned> next{0};
  std::atomic<std::uint64_t> msgs{0}, bytes{0}, channels_done{0};
  tally outcome;
  const auto t0 = steady::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < o.concurrency; ++t) {
    threads.emplace_back([&] {
      std::vector<int> kept;
      while (seconds_since(t0) < o.duration) {
        const unsigned i = next.fetch_add(1);
        if (i >= o.max_channels) break;
        std::string why;
        const int fd = open_session(fmt::format("a{}", i), fmt::format("abuse-a-{}-{}", tag, i), why);
        if (fd < 0) {
          outcome.add(why);
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        bool ok = true;
        for (unsigned m = 0; m < o.messages && seconds_since(t0) < o.duration; ++m) {
          if (!send_all(fd, frame)) {
            ok = false;
            break;
          }
          msgs.fetch_add(1);
          bytes.fetch_add(o.size);
        }
        std::string end = peek_end(fd);
        if (!ok && end.empty()) end = await_end(fd, 2);
        if (ok && end.empty()) channels_done.fetch_add(1);
        if (o.keep && end.empty()) {
          kept.push_back(fd);
          continue;
        }
        if (end.empty()) {
          ::shutdown(fd, SHUT_WR);
          end = await_end(fd, 5);
          if (end == "eof") end = "closed by us (eof)";
        }
        outcome.add(end);
        ::close(fd);
      }
      for (int fd : kept) {
        std::string end = peek_end(fd);
        outcome.add(end.empty() ? "still open at end (kept)" : end);
        abortive_close(fd);
      }
    });
  }
  for (auto& th : threads) th.join();
  const double el = seconds_since(t0);
  fmt::print("attack a\nchannels_started {}\nchannels_filled {}\nmessages_sent {}\nbytes_sent {}\nseconds {:.1f}\n",
             std::min<unsigned>(next.load(), o.max_channels), channels_done.load(), msgs.load(), bytes.load(), el);
  fmt::print("sent_mib_per_s {:.0f}\n", static_cast<double>(bytes.load()) / 1048576.0 / el);
  outcome.print("outcome ");
  return 0;
}

// ---- attack b: one-message channels, as many as possible -----------------------------------
struct b_opts {
  double duration = 60;
  unsigned concurrency = 32;
  std::size_t size = 64;
};

int attack_b(const b_opts& o) {
  const std::string tag = nonce();
  std::string payload(o.size, 'b');
  const std::string msg = client_frame(ws_opcode::binary, payload.data(), payload.size());
  std::atomic<std::uint64_t> next{0}, made{0}, failed{0};
  tally outcome;
  const auto t0 = steady::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < o.concurrency; ++t) {
    threads.emplace_back([&, t] {
      unsigned src = 2 + t * 7;
      while (seconds_since(t0) < o.duration) {
        const std::uint64_t i = next.fetch_add(1);
        src = 2 + (src - 2 + 1) % 250;  // 127.0.0.2 .. 127.0.0.251
        std::string why;
        const int fd = open_session(fmt::format("b{}", i), fmt::format("b-{}-{}", tag, i), why, src, msg);
        if (fd < 0) {
          failed.fetch_add(1);
          outcome.add(why);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        // Half-close and wait for the server to end the session: it has then read the join
        // and the message (and our close leaves no unread data that would turn into a RST).
        ::shutdown(fd, SHUT_WR);
        std::string end = await_end(fd, 5);
        if (end == "eof") {
          made.fetch_add(1);
        } else {
          outcome.add(end);
        }
        ::close(fd);
      }
    });
  }
  for (auto& th : threads) th.join();
  const double el = seconds_since(t0);
  fmt::print("attack b\nchannels_made {}\nattempts {}\nfailed {}\nseconds {:.1f}\nchannels_per_s {:.0f}\n",
             made.load(), next.load(), failed.load(), el, static_cast<double>(made.load()) / el);
  outcome.print("outcome ");
  return 0;
}

// ---- attacks c and d: partial messages held (c) or dribbled (d) -----------------------------
struct cd_opts {
  unsigned connections = 100;
  std::size_t frame = 16u << 20;   // announced payload length
  std::size_t prefix = 15u << 20;  // payload bytes sent at once
  double interval = 0;             // d: seconds between dribbled bytes (0: hold silently)
  double hold = 15;                // seconds after the prefix, at most
};

int attack_cd(const char* name, const cd_opts& o) {
  const std::string tag = nonce();
  std::string prefix_payload(o.prefix, 'c');
  const std::string head_and_prefix =
      client_frame(ws_opcode::binary, prefix_payload.data(), prefix_payload.size(), true, o.frame);
  prefix_payload.clear();
  prefix_payload.shrink_to_fit();
  tally outcome;
  std::atomic<std::uint64_t> prefix_done{0}, bytes{0}, dribbled{0};
  std::mutex mu;
  std::map<std::string, std::vector<double>> close_times;  // per outcome: s from the first message byte to the close
  std::atomic<unsigned> opened{0}, settled{0};
  const auto t0 = steady::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.connections; ++i) {
    threads.emplace_back([&, i] {
      std::string why;
      const int fd = open_session(fmt::format("{}{}", name, i), fmt::format("abuse-{}-{}-{}", name, tag, i), why);
      if (fd >= 0) opened.fetch_add(1);
      settled.fetch_add(1);
      // Every connection joins first; then all send at once (at most 30 s of waiting).
      while (settled.load() < o.connections && seconds_since(t0) < 30)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (fd < 0) {
        outcome.add(why);
        return;
      }
      set_timeouts(fd, 30);
      const auto first = steady::now();
      // Send the prefix in 256 KiB pieces so a refusal is seen early.
      std::size_t off = 0;
      bool ok = true;
      while (off < head_and_prefix.size()) {
        const std::size_t n = std::min<std::size_t>(256 << 10, head_and_prefix.size() - off);
        if (!send_all(fd, head_and_prefix.data() + off, n)) {
          ok = false;
          break;
        }
        off += n;
        bytes.fetch_add(n);
      }
      std::string end;
      if (ok) {
        prefix_done.fetch_add(1);
        const auto hold_end = steady::now() + std::chrono::duration<double>(o.hold);
        if (o.interval > 0) {
          while (steady::now() < hold_end) {
            end = await_end(fd, o.interval);
            if (end != "timeout") break;
            end.clear();
            const char b = 'd';  // binary payload: its (un)masked value does not matter
            if (!send_all(fd, &b, 1)) {
              end = await_end(fd, 2);
              break;
            }
            ++off;
            dribbled.fetch_add(1);
          }
          if (end.empty()) end = "timeout";
        } else {
          end = await_end(fd, o.hold);
        }
      } else {
        end = await_end(fd, 3);
        end = "refused while sending: " + end;
      }
      if (end.find("timeout") != std::string::npos) end = "still open after hold";
      {
        std::lock_guard lock(mu);
        close_times[end].push_back(seconds_since(first));
      }
      outcome.add(end);
      abortive_close(fd);
    });
  }
  for (auto& th : threads) th.join();
  fmt::print("attack {}\nconnections {}\nprefix_complete {}\nbytes_sent {}\ndribbled_bytes {}\nseconds {:.1f}\n", name,
             o.connections, prefix_done.load(), bytes.load(), dribbled.load(), seconds_since(t0));
  fmt::print("joined {}\n", opened.load());
  std::string closed;
  for (auto& [label, v] : close_times) {
    std::sort(v.begin(), v.end());
    closed += fmt::format("{}{}: {:.1f}-{:.1f}", closed.empty() ? "" : ", ", label, v.front(), v.back());
  }
  if (!closed.empty()) fmt::print("closed_after_s {}\n", closed);
  outcome.print("outcome ");
  return 0;
}

// ---- attack e: requests announcing a body to a path that takes none -------------------------
struct e_opts {
  unsigned requests = 500;
  std::size_t body = 1 << 20;
  std::string path = "/";
  std::string method = "POST";
};

int attack_e(const e_opts& o) {
  tally outcome;
  std::vector<int> fds;
  const auto t0 = steady::now();
  const std::string head = fmt::format(
      "{} {} HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/octet-stream\r\n"
      "Content-Length: {}\r\n\r\n",
      o.method, o.path, g_port, o.body);
  for (unsigned i = 0; i < o.requests && seconds_since(t0) < 30; ++i) {
    const int fd = dial(0, 5);
    if (fd < 0) {
      outcome.add(fmt::format("connect: {}", std::strerror(errno)));
      continue;
    }
    if (!send_all(fd, head)) {
      outcome.add("head send failed");
      ::close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  // Every head is out: read each answer (5 s each at most, 60 s overall).
  std::vector<int> answered;
  for (int fd : fds) {
    std::string rest;
    const int status = seconds_since(t0) < 60 ? read_http_status(fd, rest) : 0;
    outcome.add(status ? fmt::format("HTTP {}", status) : std::string("no answer"));
    if (status) answered.push_back(fd);
    else abortive_close(fd);
  }
  // A second later: did the server close the connections it answered (no body read)?
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::uint64_t still_open = 0;
  for (int fd : answered) {
    char tmp[4096];
    ssize_t r = 0;
    for (int k = 0; k < 64; ++k) {  // skip any rest of the answer's body
      r = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (r <= 0) break;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ++still_open;
    abortive_close(fd);
  }
  fmt::print("attack e\nrequests {}\nannounced_bytes {}\nseconds {:.1f}\n", fds.size(),
             static_cast<std::uint64_t>(fds.size()) * o.body, seconds_since(t0));
  fmt::print("open_1s_after_answer {}\n", still_open);
  outcome.print("outcome ");
  return 0;
}

// ---- probe: a healthy member receives a healthy member's message within the timeout --------
int probe(double timeout_s) {
  const std::string ch = "probe-" + nonce();
  const auto t0 = steady::now();
  std::string why;
  const int b = open_session("probe-b", ch, why);
  if (b < 0) {
    fmt::print("probe fail (receiver: {})\n", why);
    return 1;
  }
  const int a = open_session("probe-a", ch, why);
  if (a < 0) {
    fmt::print("probe fail (sender: {})\n", why);
    ::close(b);
    return 1;
  }
  const std::string text = "probe-message-" + ch;
  const std::string frame = client_frame(ws_opcode::binary, text.data(), text.size());
  std::string buf;
  char tmp[65536];
  bool got = false;
  std::string fail;
  auto last_send = steady::now() - std::chrono::seconds(1);
  while (!got && seconds_since(t0) < timeout_s) {
    if (steady::now() - last_send > std::chrono::milliseconds(250)) {
      if (!send_all(a, frame)) {
        fail = "sender: send failed";
        break;
      }
      last_send = steady::now();
    }
    pollfd p{b, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t r = ::recv(b, tmp, sizeof tmp, 0);
    if (r <= 0) {
      fail = "receiver: connection ended";
      break;
    }
    buf.append(tmp, static_cast<std::size_t>(r));
    for (;;) {
      frame_view f;
      if (parse_frame(buf.data(), buf.size(), f) != parse_result::complete) break;
      if (f.opcode == ws_opcode::close) {
        fail = fmt::format("receiver: server closed ({})", f.payload_len >= 2
                                                               ? (static_cast<unsigned char>(f.payload[0]) << 8) |
                                                                     static_cast<unsigned char>(f.payload[1])
                                                               : 0);
        break;
      }
      if (f.opcode == ws_opcode::binary && std::string_view(f.payload, f.payload_len) == text) got = true;
      buf.erase(0, f.frame_len);
    }
    if (!fail.empty()) break;
  }
  ::close(a);
  ::close(b);
  if (got) {
    fmt::print("probe ok {:.0f} ms\n", seconds_since(t0) * 1000);
    return 0;
  }
  fmt::print("probe fail ({})\n", fail.empty() ? fmt::format("nothing received in {} s", timeout_s) : fail);
  return 1;
}

std::size_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  const double v = std::stod(s, &pos);
  std::string unit = s.substr(pos);
  double mul = 1;
  if (unit == "KiB" || unit == "K") mul = 1024;
  else if (unit == "MiB" || unit == "M") mul = 1048576;
  else if (unit == "GiB" || unit == "G") mul = 1073741824.0;
  else if (!unit.empty()) throw CLI::ValidationError("size", "unit must be KiB, MiB or GiB");
  return static_cast<std::size_t>(v * mul);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  CLI::App app{"mles-abuse: the memory attacks of issue 9, over loopback (plain ws://)"};
  app.require_subcommand(1);
  a_opts ao;
  b_opts bo;
  cd_opts co;
  cd_opts dop;
  dop.connections = 60;
  dop.prefix = 1u << 20;
  dop.interval = 2;
  dop.hold = 30;
  e_opts eo;
  double probe_timeout = 5;
  std::string a_size = "1MiB", c_frame = "16MiB", c_prefix = "15MiB", d_frame = "16MiB", d_prefix = "1MiB",
              e_body = "1MiB";
  auto port = [&](CLI::App* s) { s->add_option("--port", g_port, "server port on 127.0.0.1")->required(); };

  auto* a = app.add_subcommand("a", "fill channels with --messages x --size messages");
  port(a);
  a->add_option("--duration", ao.duration)->capture_default_str()->check(CLI::Range(0.1, 600.0));
  a->add_option("--concurrency", ao.concurrency)->capture_default_str()->check(CLI::Range(1u, 256u));
  a->add_option("--messages", ao.messages)->capture_default_str()->check(CLI::Range(1u, 100000u));
  a->add_option("--size", a_size)->capture_default_str();
  a->add_option("--max-channels", ao.max_channels)->capture_default_str();
  a->add_flag("--keep", ao.keep, "keep every connection (a member per channel) open to the end");

  auto* b = app.add_subcommand("b", "one-message channels, as many as possible");
  port(b);
  b->add_option("--duration", bo.duration)->capture_default_str()->check(CLI::Range(0.1, 600.0));
  b->add_option("--concurrency", bo.concurrency)->capture_default_str()->check(CLI::Range(1u, 1024u));
  b->add_option("--size", bo.size)->capture_default_str()->check(CLI::Range(std::size_t{1}, std::size_t{65536}));

  auto* c = app.add_subcommand("c", "connections each sending --prefix of a --frame message, then holding");
  port(c);
  c->add_option("--connections", co.connections)->capture_default_str()->check(CLI::Range(1u, 2000u));
  c->add_option("--frame", c_frame)->capture_default_str();
  c->add_option("--prefix", c_prefix)->capture_default_str();
  c->add_option("--hold", co.hold)->capture_default_str()->check(CLI::Range(0.0, 600.0));

  auto* d = app.add_subcommand("d", "connections dribbling one byte every --interval s into a half-sent message");
  port(d);
  d->add_option("--connections", dop.connections)->capture_default_str()->check(CLI::Range(1u, 2000u));
  d->add_option("--frame", d_frame)->capture_default_str();
  d->add_option("--prefix", d_prefix)->capture_default_str();
  d->add_option("--interval", dop.interval)->capture_default_str()->check(CLI::Range(0.1, 60.0));
  d->add_option("--hold", dop.hold)->capture_default_str()->check(CLI::Range(0.0, 600.0));

  auto* e = app.add_subcommand("e", "HTTP requests announcing a body to a path that takes none");
  port(e);
  e->add_option("--requests", eo.requests)->capture_default_str()->check(CLI::Range(1u, 10000u));
  e->add_option("--body", e_body)->capture_default_str();
  e->add_option("--path", eo.path)->capture_default_str();
  e->add_option("--method", eo.method)->capture_default_str();

  auto* p = app.add_subcommand("probe", "join, send, another member receives");
  port(p);
  p->add_option("--timeout", probe_timeout)->capture_default_str()->check(CLI::Range(0.1, 60.0));

  try {
    app.parse(argc, argv);
    ao.size = parse_size(a_size);
    co.frame = parse_size(c_frame);
    co.prefix = parse_size(c_prefix);
    dop.frame = parse_size(d_frame);
    dop.prefix = parse_size(d_prefix);
    eo.body = parse_size(e_body);
    if (co.prefix >= co.frame || dop.prefix >= dop.frame)
      throw CLI::ValidationError("--prefix", "must be smaller than --frame");
  } catch (const CLI::ParseError& err) {
    return app.exit(err) == 0 ? 0 : 2;
  } catch (const std::exception& err) {
    fmt::print(stderr, "mles-abuse: {}\n", err.what());
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (*a) return attack_a(ao);
  if (*b) return attack_b(bo);
  if (*c) return attack_cd("c", co);
  if (*d) return attack_cd("d", dop);
  if (*e) return attack_e(eo);
  return probe(probe_timeout);
}
