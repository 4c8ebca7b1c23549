// fanout mode: C channels × (P publishers + S subscribers); publishers send sequenced,
// timestamped messages under a per-publisher in-flight window; every member checks loss,
// duplication, order and latency. Phases: connect → barrier (probes) → run → drain.
#include "client_loop.hpp"
#include "latency_histogram.hpp"
#include "modes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mles::bench {

namespace {

enum class phase : int { connect, barrier, run, drain, done };

constexpr clock_ns probe_interval = ms_ns(10);
constexpr clock_ns stall_poll_interval = ms_ns(5);

struct fanout_shared {
  fanout_options opt;
  unsigned members_per_channel = 0;  // P + S
  unsigned receivers = 0;            // P + S - 1: members that receive each publisher
  unsigned ack_stride = 0;           // P rounded up to a cache line of u64
  std::uint64_t window = 0;          // effective window
  std::string nonce;
  const endpoint* publisher_target = nullptr;    // --publisher-port: the publishers' server
  const std::string* publisher_host = nullptr;
  std::atomic<int> phase_{static_cast<int>(phase::connect)};
  std::atomic<clock_ns> run_start{0};
  std::atomic<clock_ns> measure_start{0};
  std::atomic<clock_ns> measure_end{0};
  // acks[(c * M + m) * stride + k]: next sequence member m of channel c expects from
  // publisher k (= data messages of k received in order). Written by m's loop only.
  std::unique_ptr<std::atomic<std::uint64_t>[]> acks;
  // Per publisher (global id c * P + k): data messages sent; receivers that saw its probe.
  std::unique_ptr<std::atomic<std::uint64_t>[]> sent;
  std::unique_ptr<std::atomic<std::uint32_t>[]> probed;
  std::vector<unsigned> loop_of_publisher;
  std::atomic<std::uint64_t> joined{0};
  std::atomic<std::uint32_t> publishers_ready{0};
  std::vector<client_loop*> loops;
  fatal_latch latch;
  // --stalled: members m >= members_per_channel - stalled of channel 0.
  // stalled_local[i]: the stalled member's local address (set on open); stalled_gone[i]: when
  // the server closed its side (0: not yet); stalled_open: stalled members not yet closed.
  std::unique_ptr<std::atomic<bool>[]> stalled_ready;
  std::vector<sockaddr_storage> stalled_local;
  std::unique_ptr<std::atomic<clock_ns>[]> stalled_gone;
  std::atomic<unsigned> stalled_open{0};

  std::size_t ack_index(unsigned c, unsigned m, unsigned k) const noexcept {
    return (static_cast<std::size_t>(c) * members_per_channel + m) * ack_stride + k;
  }
  bool is_stalled(unsigned c, unsigned m) const noexcept {
    return c == 0 && m + opt.stalled >= members_per_channel;
  }
  unsigned stalled_index(unsigned m) const noexcept { return m - (members_per_channel - opt.stalled); }
  // Members of channel c that receive (and acknowledge) each publisher's messages.
  unsigned receivers_of(unsigned c) const noexcept { return receivers - (c == 0 ? opt.stalled : 0u); }
  void mark_stalled_gone(unsigned i, clock_ns when) {
    clock_ns expected = 0;
    if (stalled_gone[i].compare_exchange_strong(expected, when, std::memory_order_acq_rel))
      stalled_open.fetch_sub(1, std::memory_order_acq_rel);
  }
};

struct recv_track {
  std::uint64_t expected = 0;  // next sequence number
  std::uint64_t missing = 0;   // skipped numbers not (yet) seen
};

struct member {
  connection* conn = nullptr;
  unsigned channel = 0;
  unsigned m = 0;  // index in channel; < P: publisher k = m
  std::vector<recv_track> tracks;
  std::vector<std::uint8_t> probe_seen;
  // publisher side
  std::uint64_t sent = 0;
  std::uint64_t min_ack = 0;  // lower bound of the slowest receiver's ack
  std::uint32_t probes = 0;
  clock_ns next_probe = 0;
  bool ready = false;
  std::string payload;  // template, size bytes
};

struct fanout_stats {
  latency_histogram latency;
  // --stalled: the measured window split at the moment the last stalled member was gone.
  latency_histogram latency_stalled;  // while some stalled member was still connected
  latency_histogram latency_after;    // after all were disconnected
  // Paced runs: how late this bench queued each message after its scheduled time (its own
  // rounds of reading delay its sends; the latency figures include that wait).
  latency_histogram send_lag;
  std::uint64_t delivered_stalled = 0;
  std::uint64_t delivered_after = 0;
  std::uint64_t delivered_window = 0;
  std::uint64_t published_window = 0;
  std::uint64_t delivered_total = 0;
  std::uint64_t published_total = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t misrouted = 0;  // from another channel, or our own message echoed back
  std::uint64_t malformed = 0;  // binary messages too short to be ours
};

class fanout_worker final : public client_handler {
 public:
  fanout_worker(fanout_shared& sh, client_loop& loop, unsigned index, unsigned concurrency)
      : sh_(sh), loop_(loop), index_(index), concurrency_(concurrency) {}

  void add_member(unsigned channel, unsigned m) {
    const unsigned P = sh_.opt.publishers;
    member& mb = members_.emplace_back();
    mb.channel = channel;
    mb.m = m;
    mb.tracks.resize(P);
    mb.probe_seen.resize(P);
    if (m < P) {
      mb.payload.assign(sh_.opt.size, 'm');
      publishers_.push_back(static_cast<std::uint32_t>(members_.size() - 1));
    }
  }

  void create_connections() {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const bool publisher = members_[i].m < sh_.opt.publishers;
      members_[i].conn = &loop_.create(static_cast<std::uint32_t>(i), publisher ? sh_.publisher_target : nullptr,
                                       publisher ? sh_.publisher_host : nullptr);
    }
  }

  fanout_stats& stats() noexcept { return stats_; }
  const std::vector<member>& members() const noexcept { return members_; }

  void on_open(connection& c, clock_ns /*now*/) override {
    const member& mb = members_[c.id_];
    const std::string join = fmt::format(R"({{"uid":"b{}-{}","channel":"bench-{}-{}"}})", sh_.nonce,
                                         mb.channel * sh_.members_per_channel + mb.m, sh_.nonce,
                                         mb.channel);
    loop_.send_frame(c, ws_opcode::text, join.data(), join.size());
    if (sh_.is_stalled(mb.channel, mb.m)) {
      const unsigned i = sh_.stalled_index(mb.m);
      socklen_t len = sizeof(sockaddr_storage);
      ::getsockname(c.fd_, reinterpret_cast<sockaddr*>(&sh_.stalled_local[i]), &len);
      sh_.stalled_ready[i].store(true, std::memory_order_release);
      loop_.pause_reading(c);  // the join frame still goes out: writes continue
    }
    sh_.joined.fetch_add(1, std::memory_order_relaxed);
  }

  void on_message(connection& c, ws_opcode op, const char* data, std::size_t n,
                  clock_ns read_time) override {
    if (op != ws_opcode::binary) return;  // earlier members' join frames replayed from history
    if (n < payload_header_size) {
      ++stats_.malformed;
      return;
    }
    std::uint32_t pid;
    std::uint32_t seq;
    std::int64_t ts;
    std::memcpy(&pid, data, 4);
    std::memcpy(&seq, data + 4, 4);
    std::memcpy(&ts, data + 8, 8);
    member& mb = members_[c.id_];
    if (sh_.is_stalled(mb.channel, mb.m)) return;  // what came with the 101: not counted
    const unsigned P = sh_.opt.publishers;
    const std::uint32_t gid = pid & ~probe_flag;
    const unsigned k = gid % P;
    if (gid / P != mb.channel || k == mb.m) {
      ++stats_.misrouted;
      return;
    }
    if ((pid & probe_flag) != 0) {
      if (mb.probe_seen[k] == 0) {
        mb.probe_seen[k] = 1;
        sh_.probed[gid].fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    recv_track& tr = mb.tracks[k];
    if (seq == tr.expected) {
      ++tr.expected;
    } else if (seq > tr.expected) {
      ++stats_.reordered;  // arrived ahead of the ones skipped
      tr.missing += seq - tr.expected;
      tr.expected = std::uint64_t{seq} + 1;
    } else if (tr.missing > 0) {
      --tr.missing;  // a late one (counted as reordered when the skip was seen)
    } else {
      ++stats_.duplicated;
    }
    sh_.acks[sh_.ack_index(mb.channel, mb.m, k)].store(tr.expected, std::memory_order_relaxed);
    const unsigned owner = sh_.loop_of_publisher[gid];
    if (owner != index_) touched_ |= std::uint64_t{1} << owner;
    ++stats_.delivered_total;
    if (read_time >= measure_start_ && read_time < measure_end_) {
      ++stats_.delivered_window;
      const auto lat = static_cast<std::uint64_t>(std::max<std::int64_t>(0, read_time - ts));
      stats_.latency.record(lat);
      if (sh_.opt.stalled > 0) {
        if (sh_.stalled_open.load(std::memory_order_relaxed) > 0) {
          ++stats_.delivered_stalled;
          stats_.latency_stalled.record(lat);
        } else {
          ++stats_.delivered_after;
          stats_.latency_after.record(lat);
        }
      }
    }
  }

  void on_failure(connection& c, std::string_view why) override {
    const member& mb = members_[c.id_];
    if (sh_.is_stalled(mb.channel, mb.m) && sh_.stalled_ready[sh_.stalled_index(mb.m)].load()) {
      sh_.mark_stalled_gone(sh_.stalled_index(mb.m), now_ns());  // a reset: the server dropped it
      return;
    }
    sh_.latch.set(fmt::format("member {} of channel bench-{}-{} ({}): {}", mb.m, sh_.nonce, mb.channel,
                              mb.m < sh_.opt.publishers ? "publisher" : "subscriber", why));
  }

  void on_round(clock_ns now) override {
    const auto ph = static_cast<phase>(sh_.phase_.load(std::memory_order_acquire));
    if (ph == phase::connect) {
      while (next_connect_ < members_.size() && loop_.handshakes_in_progress() < concurrency_)
        loop_.start_connect(*members_[next_connect_++].conn);
    } else if (ph == phase::barrier) {
      for (const std::uint32_t i : publishers_) barrier_step(members_[i], now);
    } else if (ph == phase::run) {
      pump_all(now);
    }
    if (touched_ != 0) {
      // Pairs with the fence in client_loop::run: our acks are visible before we look at
      // whether the publisher's loop sleeps.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      for (std::uint64_t t = touched_; t != 0; t &= t - 1)
        sh_.loops[static_cast<unsigned>(std::countr_zero(t))]->wake_if_sleeping();
      touched_ = 0;
    }
  }

  // Paced runs: the publishers send what became due while the round was reading.
  bool on_progress(clock_ns now) override {
    return sh_.opt.rate > 0 && static_cast<phase>(sh_.phase_.load(std::memory_order_acquire)) == phase::run &&
           pump_all(now);
  }

  clock_ns next_wakeup(clock_ns now) override {
    const auto ph = static_cast<phase>(sh_.phase_.load(std::memory_order_acquire));
    clock_ns next = now + ms_ns(20);
    if (ph == phase::barrier) {
      for (const std::uint32_t i : publishers_)
        if (!members_[i].ready) next = std::min(next, members_[i].next_probe);
    } else if (ph == phase::run && measure_end_ != 0 && now < measure_end_) {
      for (const std::uint32_t i : publishers_) {
        member& mb = members_[i];
        if (window_left(mb) == 0) continue;  // an ack will wake us
        next = std::min(next, sh_.opt.rate > 0 ? scheduled_time(mb.sent) : now);
      }
    }
    return next;
  }

 private:
  void barrier_step(member& mb, clock_ns now) {
    if (mb.ready) return;
    const std::uint32_t gid = mb.channel * sh_.opt.publishers + mb.m;
    if (sh_.probed[gid].load(std::memory_order_relaxed) >= sh_.receivers_of(mb.channel)) {
      mb.ready = true;
      sh_.publishers_ready.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (now < mb.next_probe) return;
    mb.next_probe = now + probe_interval;
    write_payload_header(mb, gid | probe_flag, mb.probes++, now);
    // Header only: probes go out every 10 ms outside the window; full-size 1 MiB probes
    // would fill a slow joiner's queue on the server past its limit before the run starts.
    loop_.send_frame(*mb.conn, ws_opcode::binary, mb.payload.data(), payload_header_size);
  }

  // Messages publisher mb may still send before its slowest receiver catches up.
  std::uint64_t window_left(member& mb) {
    if (mb.sent - mb.min_ack >= sh_.window) {
      std::uint64_t lo = std::numeric_limits<std::uint64_t>::max();
      for (unsigned r = 0; r < sh_.members_per_channel; ++r) {
        if (r == mb.m || sh_.is_stalled(mb.channel, r)) continue;
        lo = std::min(lo, sh_.acks[sh_.ack_index(mb.channel, r, mb.m)].load(std::memory_order_relaxed));
      }
      mb.min_ack = lo;
    }
    const std::uint64_t in_flight = mb.sent - std::min(mb.sent, mb.min_ack);
    return in_flight >= sh_.window ? 0 : sh_.window - in_flight;
  }

  clock_ns scheduled_time(std::uint64_t seq) const noexcept {
    return run_start_ + static_cast<clock_ns>(static_cast<double>(seq) * 1e9 / sh_.opt.rate);
  }

  // Run phase: every publisher queues what it may send now; true if any queued something.
  bool pump_all(clock_ns now) {
    if (measure_end_ == 0) {
      run_start_ = sh_.run_start.load(std::memory_order_relaxed);
      measure_start_ = sh_.measure_start.load(std::memory_order_relaxed);
      measure_end_ = sh_.measure_end.load(std::memory_order_relaxed);
    }
    if (now >= measure_end_) return false;
    bool queued = false;
    for (const std::uint32_t i : publishers_) queued = pump(members_[i], now) || queued;
    return queued;
  }

  // Queues what publisher mb may send now; true if it queued anything.
  bool pump(member& mb, clock_ns now) {
    std::uint64_t n = window_left(mb);
    if (n == 0) return false;
    const bool paced = sh_.opt.rate > 0;
    if (paced) {
      const auto due = static_cast<std::uint64_t>(static_cast<double>(now - run_start_) * sh_.opt.rate / 1e9) + 1;
      n = due > mb.sent ? std::min(n, due - mb.sent) : 0;
    }
    const std::uint32_t gid = mb.channel * sh_.opt.publishers + mb.m;
    for (std::uint64_t i = 0; i < n; ++i) {
      // Paced: stamp the intended send time, so a stalled server shows in the latency
      // (no coordinated omission). Max rate: the real time of this batch.
      const clock_ns ts = paced ? scheduled_time(mb.sent) : now;
      write_payload_header(mb, gid, static_cast<std::uint32_t>(mb.sent), ts);
      loop_.send_frame(*mb.conn, ws_opcode::binary, mb.payload.data(), mb.payload.size());
      ++mb.sent;
      ++stats_.published_total;
      if (ts >= measure_start_ && ts < measure_end_) {
        ++stats_.published_window;
        if (paced) stats_.send_lag.record(static_cast<std::uint64_t>(std::max<clock_ns>(0, now - ts)));
      }
    }
    sh_.sent[gid].store(mb.sent, std::memory_order_release);
    return n > 0;
  }

  static void write_payload_header(member& mb, std::uint32_t pid, std::uint32_t seq, clock_ns ts) {
    std::memcpy(mb.payload.data(), &pid, 4);
    std::memcpy(mb.payload.data() + 4, &seq, 4);
    std::memcpy(mb.payload.data() + 8, &ts, 8);
  }

  fanout_shared& sh_;
  client_loop& loop_;
  unsigned index_;
  std::size_t concurrency_;
  std::vector<member> members_;
  std::vector<std::uint32_t> publishers_;  // indices into members_
  std::size_t next_connect_ = 0;
  std::uint64_t touched_ = 0;  // loops owning publishers whose acks we advanced this round
  clock_ns run_start_ = 0;
  clock_ns measure_start_ = 0;
  clock_ns measure_end_ = 0;
  fanout_stats stats_;
};

// TCP state of the server's side of a connection (looked up with sock_diag by its exact
// 4-tuple; loopback, so both ends are in this network namespace): 1 = established, another
// tcp_states value once the server has closed it (an orphan in FIN_WAIT1 while its unsent bytes
// wait behind our zero window), 0 = gone, -1 = the lookup failed.
int server_side_state(int nl, const sockaddr_storage& server, const sockaddr_storage& client) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 r;
  } req{};
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST;
  req.r.sdiag_family = static_cast<std::uint8_t>(server.ss_family);
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = ~0u;
  req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (server.ss_family == AF_INET) {
    const auto& s4 = reinterpret_cast<const sockaddr_in&>(server);
    const auto& c4 = reinterpret_cast<const sockaddr_in&>(client);
    req.r.id.idiag_sport = s4.sin_port;
    req.r.id.idiag_dport = c4.sin_port;
    std::memcpy(req.r.id.idiag_src, &s4.sin_addr, 4);
    std::memcpy(req.r.id.idiag_dst, &c4.sin_addr, 4);
  } else {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(server);
    const auto& c6 = reinterpret_cast<const sockaddr_in6&>(client);
    req.r.id.idiag_sport = s6.sin6_port;
    req.r.id.idiag_dport = c6.sin6_port;
    std::memcpy(req.r.id.idiag_src, &s6.sin6_addr, 16);
    std::memcpy(req.r.id.idiag_dst, &c6.sin6_addr, 16);
  }
  if (::send(nl, &req, sizeof req, 0) != static_cast<ssize_t>(sizeof req)) return -1;
  alignas(nlmsghdr) char buf[8192];
  const ssize_t n = ::recv(nl, buf, sizeof buf, 0);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) return -1;
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  if (h->nlmsg_type == NLMSG_ERROR) {
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return e->error == -ENOENT ? 0 : -1;
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -1;
  return static_cast<const inet_diag_msg*>(NLMSG_DATA(h))->idiag_state;
}

}  // namespace

int run_fanout(const common_options& common, const fanout_options& opt) {
  if (opt.size < payload_header_size) throw bench_failure{"--size must be at least 16"};
  if (opt.channels == 0 || opt.publishers == 0 || opt.publishers + opt.subscribers < 2)
    throw bench_failure{"need at least one channel, one publisher and one other member"};
  if (opt.stalled > opt.subscribers || opt.publishers + opt.subscribers - opt.stalled < 2)
    throw bench_failure{"--stalled must leave at least one publisher and one reading member in the first channel"};
  if (opt.server_pid > 0 && process_cpu_seconds(opt.server_pid) < 0)
    throw bench_failure{fmt::format("cannot read the CPU time of --server-pid {}", opt.server_pid)};
  const unsigned T = std::clamp(common.threads, 1u, 64u);
  const unsigned M = opt.publishers + opt.subscribers;
  const std::uint64_t total = std::uint64_t{opt.channels} * M;
  const std::uint64_t fd_limit = raise_open_file_limit();
  if (total + 16 > fd_limit)
    throw bench_failure{fmt::format("{} connections exceed the open-file limit {}", total, fd_limit)};

  fanout_shared sh;
  sh.opt = opt;
  sh.members_per_channel = M;
  sh.receivers = M - 1;
  sh.ack_stride = (opt.publishers + 7) / 8 * 8;
  const std::size_t frame_bytes = opt.size + 14;
  sh.window = std::clamp<std::uint64_t>(opt.window_bytes / (std::uint64_t{opt.publishers} * frame_bytes), 1,
                                        std::max(1u, opt.window));
  sh.stalled_ready = std::make_unique<std::atomic<bool>[]>(std::max(1u, opt.stalled));
  sh.stalled_local.resize(opt.stalled);
  sh.stalled_gone = std::make_unique<std::atomic<clock_ns>[]>(std::max(1u, opt.stalled));
  sh.stalled_open.store(opt.stalled);
  sh.nonce = run_nonce();
  const std::size_t n_acks = std::size_t{opt.channels} * M * sh.ack_stride;
  const std::size_t n_pubs = std::size_t{opt.channels} * opt.publishers;
  sh.acks = std::make_unique<std::atomic<std::uint64_t>[]>(n_acks);
  sh.sent = std::make_unique<std::atomic<std::uint64_t>[]>(n_pubs);
  sh.probed = std::make_unique<std::atomic<std::uint32_t>[]>(n_pubs);
  sh.loop_of_publisher.resize(n_pubs);

  SSL_CTX* tls = common.tls ? make_client_tls_context() : nullptr;
  const endpoint ep = resolve_loopback(common.host, common.port);
  const std::string host_header =
      common.host_header.empty() ? fmt::format("localhost:{}", common.port) : common.host_header;
  std::optional<endpoint> publisher_ep;
  std::string publisher_host;
  if (opt.publisher_port != 0) {
    publisher_ep = resolve_loopback(common.host, opt.publisher_port);
    publisher_host = fmt::format("localhost:{}", opt.publisher_port);
    sh.publisher_target = &*publisher_ep;
    sh.publisher_host = &publisher_host;
  }

  std::vector<std::unique_ptr<client_loop>> loops;
  std::vector<std::unique_ptr<fanout_worker>> workers;
  const unsigned per_loop_concurrency = std::max(1u, common.connect_concurrency / T);
  for (unsigned t = 0; t < T; ++t) {
    loops.push_back(std::make_unique<client_loop>(ep, tls, host_header, common.io_uring));
    workers.push_back(std::make_unique<fanout_worker>(sh, *loops.back(), t, per_loop_concurrency));
    loops.back()->set_handler(workers.back().get());
    sh.loops.push_back(loops.back().get());
  }
  // Interleave so that every loop holds members of every channel.
  for (unsigned c = 0; c < opt.channels; ++c) {
    for (unsigned m = 0; m < M; ++m) {
      const unsigned t = static_cast<unsigned>((std::uint64_t{c} * M + m) % T);
      workers[t]->add_member(c, m);
      if (m < opt.publishers) sh.loop_of_publisher[c * opt.publishers + m] = t;
    }
  }
  for (auto& w : workers) w->create_connections();

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& l : loops) threads.emplace_back([&stop, lp = l.get()] { lp->run(stop); });
  // --stalled: notice when the server closes its side of a stalled member (it cannot be read,
  // so EOF never shows; a reset shows through on_failure).
  std::atomic<bool> diag_failed{false};
  if (opt.stalled > 0) {
    threads.emplace_back([&stop, &sh, &ep, &diag_failed] {
      const int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
      if (nl < 0) {
        diag_failed.store(true);
        return;
      }
      const timeval tv{1, 0};
      ::setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      while (!stop.load(std::memory_order_acquire) && sh.stalled_open.load() > 0) {
        for (unsigned i = 0; i < sh.opt.stalled; ++i) {
          if (!sh.stalled_ready[i].load(std::memory_order_acquire) || sh.stalled_gone[i].load() != 0) continue;
          const int st = server_side_state(nl, ep.addr, sh.stalled_local[i]);
          if (st < 0) {
            diag_failed.store(true);
          } else if (st != TCP_ESTABLISHED) {
            sh.mark_stalled_gone(i, now_ns());
          }
        }
        if (diag_failed.load()) break;
        std::this_thread::sleep_for(std::chrono::nanoseconds(stall_poll_interval));
      }
      ::close(nl);
    });
  }
  auto wake_all = [&] {
    for (auto& l : loops) l->wake();
  };
  auto stop_all = [&] {
    stop.store(true, std::memory_order_release);
    wake_all();
    for (auto& th : threads)
      if (th.joinable()) th.join();
  };

  result_record rec;
  bool drain_timed_out = false;
  clock_ns measure_start = 0;
  clock_ns measure_end = 0;
  double bench_cpu0 = 0, bench_cpu1 = 0, server_cpu0 = -1, server_cpu1 = -1;
  try {
    const double connect_s = common.connect_timeout_s > 0 ? common.connect_timeout_s
                                                          : 10.0 + static_cast<double>(total) / 1000.0;
    wait_for(sh.latch, fmt::format("{} members to connect and join", total), now_ns() + s_ns(connect_s),
             [&] { return sh.joined.load() >= total; },
             [&] { return fmt::format("{} of {} joined", sh.joined.load(), total); });

    sh.phase_.store(static_cast<int>(phase::barrier), std::memory_order_release);
    wake_all();
    wait_for(sh.latch, "the join barrier (every member has received a probe from every publisher)",
             now_ns() + s_ns(opt.barrier_timeout_s),
             [&] { return sh.publishers_ready.load() >= n_pubs; },
             [&] {
               std::uint64_t seen = 0;
               for (std::size_t i = 0; i < n_pubs; ++i) seen += sh.probed[i].load();
               return fmt::format("{} of {} publisher→member probes seen; the server may not be "
                                  "forwarding or a join was refused",
                                  seen, n_pubs * sh.receivers - std::uint64_t{opt.publishers} * opt.stalled);
             });

    const clock_ns run_start = now_ns();
    measure_start = run_start + s_ns(opt.warmup_s);
    measure_end = measure_start + s_ns(opt.duration_s);
    sh.run_start.store(run_start, std::memory_order_relaxed);
    sh.measure_start.store(measure_start, std::memory_order_relaxed);
    sh.measure_end.store(measure_end, std::memory_order_relaxed);
    sh.phase_.store(static_cast<int>(phase::run), std::memory_order_release);
    wake_all();
    // Who was busy while measuring: a share near 1.0 for the bench means it, not the server,
    // set the pace (the bench's own core; loops and this thread together).
    wait_for(sh.latch, "the start of the measurement", measure_start + s_ns(5),
             [&] { return now_ns() >= measure_start; });
    bench_cpu0 = own_cpu_seconds();
    if (opt.server_pid > 0) server_cpu0 = process_cpu_seconds(opt.server_pid);
    wait_for(sh.latch, "the end of the measurement", measure_end + s_ns(5),
             [&] { return now_ns() >= measure_end; });
    bench_cpu1 = own_cpu_seconds();
    if (opt.server_pid > 0) server_cpu1 = process_cpu_seconds(opt.server_pid);

    sh.phase_.store(static_cast<int>(phase::drain), std::memory_order_release);
    auto outstanding = [&] {
      std::uint64_t left = 0;
      for (unsigned c = 0; c < opt.channels; ++c)
        for (unsigned k = 0; k < opt.publishers; ++k) {
          const std::uint64_t s = sh.sent[c * opt.publishers + k].load(std::memory_order_acquire);
          for (unsigned r = 0; r < M; ++r) {
            if (r == k || sh.is_stalled(c, r)) continue;
            const std::uint64_t a = sh.acks[sh.ack_index(c, r, k)].load(std::memory_order_relaxed);
            if (a < s) left += s - a;
          }
        }
      return left;
    };
    try {
      wait_for(sh.latch, "every member to receive every message (drain)",
               now_ns() + s_ns(opt.drain_timeout_s), [&] { return outstanding() == 0; },
               [&] { return fmt::format("{} deliveries outstanding", outstanding()); });
    } catch (const bench_failure& f) {
      if (sh.latch.failed()) throw;
      drain_timed_out = true;
      fmt::print(stderr, "mles-bench: {}; counting them as lost\n", f.what);
    }
    sh.phase_.store(static_cast<int>(phase::done), std::memory_order_release);
    stop_all();
  } catch (...) {
    stop_all();
    if (tls != nullptr) SSL_CTX_free(tls);
    throw;
  }

  fanout_stats total_stats;
  std::uint64_t lost = 0;
  std::uint64_t read_calls = 0;
  std::uint64_t bytes_read = 0;
  for (unsigned t = 0; t < T; ++t) {
    const fanout_stats& s = workers[t]->stats();
    total_stats.latency.merge(s.latency);
    total_stats.latency_stalled.merge(s.latency_stalled);
    total_stats.latency_after.merge(s.latency_after);
    total_stats.send_lag.merge(s.send_lag);
    total_stats.delivered_stalled += s.delivered_stalled;
    total_stats.delivered_after += s.delivered_after;
    total_stats.delivered_window += s.delivered_window;
    total_stats.published_window += s.published_window;
    total_stats.delivered_total += s.delivered_total;
    total_stats.published_total += s.published_total;
    total_stats.duplicated += s.duplicated;
    total_stats.reordered += s.reordered;
    total_stats.misrouted += s.misrouted;
    total_stats.malformed += s.malformed;
    read_calls += loops[t]->read_calls();
    bytes_read += loops[t]->bytes_read();
    for (const member& mb : workers[t]->members()) {
      if (sh.is_stalled(mb.channel, mb.m)) continue;
      for (unsigned k = 0; k < opt.publishers; ++k) {
        if (k == mb.m) continue;
        const recv_track& tr = mb.tracks[k];
        const std::uint64_t s_k = sh.sent[mb.channel * opt.publishers + k].load();
        lost += tr.missing + (s_k > tr.expected ? s_k - tr.expected : 0);
      }
    }
  }
  workers.clear();
  loops.clear();
  if (tls != nullptr) SSL_CTX_free(tls);

  const double secs = static_cast<double>(measure_end - measure_start) / 1e9;
  const auto& h = total_stats.latency;
  rec.add("mode", std::string("fanout"));
  rec.add("target", ep.text);
  rec.add("tls", std::string(common.tls ? "yes" : "no"));
  rec.add("connections", total);
  rec.add("channels", std::uint64_t{opt.channels});
  rec.add("subscribers", std::uint64_t{opt.subscribers});
  rec.add("publishers", std::uint64_t{opt.publishers});
  rec.add("size", std::uint64_t{opt.size});
  rec.add("rate", opt.rate > 0 ? fmt::format("{}", opt.rate) : std::string("max"));
  rec.add("window", sh.window);
  rec.add("threads", std::uint64_t{T});
  rec.add("duration_s", secs, 2);
  rec.add("published_per_s", static_cast<double>(total_stats.published_window) / secs);
  rec.add("delivered_per_s", static_cast<double>(total_stats.delivered_window) / secs);
  rec.add("delivered_mib_per_s",
          static_cast<double>(total_stats.delivered_window) * static_cast<double>(opt.size) / secs / 1048576.0, 1);
  rec.add("delivered_bytes_per_s",
          static_cast<double>(total_stats.delivered_window) * static_cast<double>(opt.size) / secs);
  rec.add("latency_p50_us", static_cast<double>(h.percentile(0.50)) / 1e3, 1);
  rec.add("latency_p99_us", static_cast<double>(h.percentile(0.99)) / 1e3, 1);
  rec.add("latency_p999_us", static_cast<double>(h.percentile(0.999)) / 1e3, 1);
  rec.add("latency_max_us", static_cast<double>(h.max()) / 1e3, 1);
  if (opt.rate > 0) {
    rec.add("send_lag_p50_us", static_cast<double>(total_stats.send_lag.percentile(0.50)) / 1e3, 1);
    rec.add("send_lag_p99_us", static_cast<double>(total_stats.send_lag.percentile(0.99)) / 1e3, 1);
  }
  rec.add("published_total", total_stats.published_total);
  rec.add("delivered_total", total_stats.delivered_total);
  rec.add("lost", lost);
  rec.add("duplicated", total_stats.duplicated);
  rec.add("reordered", total_stats.reordered);
  rec.add("misrouted", total_stats.misrouted + total_stats.malformed);
  rec.add("bench_cpu_share", (bench_cpu1 - bench_cpu0) / secs, 2);
  if (opt.server_pid > 0 && server_cpu0 >= 0 && server_cpu1 >= 0)
    rec.add("server_cpu_share", (server_cpu1 - server_cpu0) / secs, 2);
  rec.add("bench_bytes_per_read", read_calls > 0 ? static_cast<double>(bytes_read) / static_cast<double>(read_calls) : 0.0);
  rec.add("drain_timed_out", std::string(drain_timed_out ? "yes" : "no"));
  if (opt.stalled > 0) {
    // Times since the measurement started (negative: during the warm-up).
    std::string when;
    unsigned gone = 0;
    clock_ns last = 0;
    for (unsigned i = 0; i < opt.stalled; ++i) {
      const clock_ns g = sh.stalled_gone[i].load();
      if (!when.empty()) when += ' ';
      if (g == 0) {
        when += "not-disconnected";
      } else {
        ++gone;
        last = std::max(last, g);
        when += fmt::format("{:.3f}", static_cast<double>(g - measure_start) / 1e9);
      }
    }
    const clock_ns split = gone == opt.stalled ? std::clamp(last, measure_start, measure_end) : measure_end;
    const double stalled_secs = static_cast<double>(split - measure_start) / 1e9;
    const double after_secs = secs - stalled_secs;
    rec.add("stalled", std::uint64_t{opt.stalled});
    rec.add("stalled_disconnected", std::uint64_t{gone});
    rec.add("stalled_disconnect_s", when);
    rec.add("stalled_watch", std::string(diag_failed.load() ? "sock_diag-failed" : "ok"));
    rec.add("while_stalled_s", stalled_secs, 3);
    rec.add("while_stalled_delivered_per_s",
            stalled_secs > 0 ? static_cast<double>(total_stats.delivered_stalled) / stalled_secs : 0.0);
    rec.add("while_stalled_p50_us", static_cast<double>(total_stats.latency_stalled.percentile(0.50)) / 1e3, 1);
    rec.add("while_stalled_p99_us", static_cast<double>(total_stats.latency_stalled.percentile(0.99)) / 1e3, 1);
    rec.add("after_stalled_s", after_secs, 3);
    rec.add("after_stalled_delivered_per_s",
            after_secs > 0 ? static_cast<double>(total_stats.delivered_after) / after_secs : 0.0);
    rec.add("after_stalled_p99_us", static_cast<double>(total_stats.latency_after.percentile(0.99)) / 1e3, 1);
  }
  print_result(common, "fanout", rec);
  const bool bad = lost + total_stats.duplicated + total_stats.reordered + total_stats.misrouted +
                       total_stats.malformed > 0;
  if (bad) fmt::print(stderr, "mles-bench: integrity check FAILED (lost/duplicated/reordered/misrouted)\n");
  return bad ? exit_integrity : exit_ok;
}

}  // namespace mles::bench
