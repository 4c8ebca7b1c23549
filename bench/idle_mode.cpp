// idle mode: opens N connections, joins them (K members per channel), confirms every join
// through an anchor probe, then reads the server's RSS growth per idle joined connection.
#include "client_loop.hpp"
#include "modes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <thread>

namespace mles::bench {

namespace {

struct idle_shared {
  idle_options opt;
  std::string nonce;
  std::atomic<std::uint64_t> tcp_connected{0};
  std::atomic<std::uint64_t> opened{0};     // upgrades done = join frames sent
  std::atomic<std::uint64_t> confirmed{0};  // non-anchor members that received the anchor probe
  std::atomic<clock_ns> last_tcp{0};
  std::atomic<clock_ns> last_open{0};
  std::atomic<clock_ns> last_confirm{0};
  // Per channel: members whose join frame is sent; members that received the anchor probe.
  std::unique_ptr<std::atomic<std::uint32_t>[]> ch_opened;
  std::unique_ptr<std::atomic<std::uint32_t>[]> ch_confirmed;
  fatal_latch latch;

  std::uint32_t channel_size(std::uint32_t channel) const noexcept {
    const std::uint64_t first = std::uint64_t{channel} * opt.per_channel;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(opt.per_channel, opt.connections - first));
  }
};

constexpr clock_ns anchor_check_interval = ms_ns(2);
constexpr clock_ns reprobe_interval = ms_ns(20);

void store_max(std::atomic<clock_ns>& a, clock_ns v) noexcept {
  clock_ns cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

class idle_worker final : public client_handler {
 public:
  idle_worker(idle_shared& sh, client_loop& loop, unsigned concurrency)
      : sh_(sh), loop_(loop), concurrency_(concurrency) {}

  void add_member(std::uint32_t global) {
    conns_.push_back(&loop_.create(static_cast<std::uint32_t>(globals_.size())));
    if (global % sh_.opt.per_channel == 0 && sh_.opt.per_channel > 1)
      anchors_.push_back({static_cast<std::uint32_t>(globals_.size()), 0});
    globals_.push_back(global);
    confirmed_.push_back(0);
  }

  void on_tcp_connected(connection&, clock_ns now) override {
    sh_.tcp_connected.fetch_add(1, std::memory_order_relaxed);
    store_max(sh_.last_tcp, now);
  }

  void on_open(connection& c, clock_ns now) override {
    const std::uint32_t g = globals_[c.id_];
    const std::uint32_t channel = g / sh_.opt.per_channel;
    const std::string join =
        fmt::format(R"({{"uid":"i{}-{}","channel":"idle-{}-{}"}})", sh_.nonce, g, sh_.nonce, channel);
    loop_.send_frame(c, ws_opcode::text, join.data(), join.size());
    sh_.ch_opened[channel].fetch_add(1, std::memory_order_relaxed);
    sh_.opened.fetch_add(1, std::memory_order_relaxed);
    store_max(sh_.last_open, now);
  }

  void on_message(connection& c, ws_opcode op, const char* data, std::size_t n, clock_ns read_time) override {
    if (op != ws_opcode::binary || n < payload_header_size) return;
    const std::uint32_t g = globals_[c.id_];
    std::uint32_t pid;
    std::memcpy(&pid, data, 4);
    if (pid != ((g / sh_.opt.per_channel) | probe_flag)) {
      sh_.latch.set(fmt::format("connection {} received a message from another channel", g));
      return;
    }
    if (g % sh_.opt.per_channel == 0) {
      sh_.latch.set(fmt::format("connection {} received its own message back (echo)", g));
      return;
    }
    if (confirmed_[c.id_] == 0) {
      confirmed_[c.id_] = 1;
      sh_.confirmed.fetch_add(1, std::memory_order_relaxed);
      sh_.ch_confirmed[g / sh_.opt.per_channel].fetch_add(1, std::memory_order_relaxed);
      store_max(sh_.last_confirm, read_time);
    }
  }

  void on_failure(connection& c, std::string_view why) override {
    sh_.latch.set(fmt::format("connection {}: {}", globals_[c.id_], why));
  }

  void on_round(clock_ns now) override {
    while (next_connect_ < conns_.size() && loop_.handshakes_in_progress() < concurrency_)
      loop_.start_connect(*conns_[next_connect_++]);
    if (now >= next_anchor_check_) {
      next_anchor_check_ = now + anchor_check_interval;
      for (auto& a : anchors_) probe_if_needed(a, now);
    }
  }

  clock_ns next_wakeup(clock_ns now) override {
    return anchors_.empty() ? now + ms_ns(20) : std::max(now, next_anchor_check_);
  }

 private:
  struct anchor {
    std::uint32_t local;       // index in conns_
    clock_ns next_probe;       // 0: never probed
  };

  // An anchor probes once every member of its channel has sent its join frame, and again
  // every 20 ms while some have not received a probe. Every member receives a probe, live or
  // replayed from history, only once the server has processed its join; servers without
  // history (the raw baseline) need the repeat for joins processed after the first probe.
  // A few probes per channel at most: they barely add to the history being measured.
  void probe_if_needed(anchor& a, clock_ns now) {
    const std::uint32_t g = globals_[a.local];
    const std::uint32_t channel = g / sh_.opt.per_channel;
    const std::uint32_t size = sh_.channel_size(channel);
    if (size < 2 || now < a.next_probe) return;
    if (sh_.ch_opened[channel].load(std::memory_order_relaxed) < size) return;
    if (sh_.ch_confirmed[channel].load(std::memory_order_relaxed) >= size - 1) {
      a.next_probe = std::numeric_limits<clock_ns>::max();
      return;
    }
    a.next_probe = now + reprobe_interval;
    char probe[payload_header_size] = {};
    const std::uint32_t pid = channel | probe_flag;
    std::memcpy(probe, &pid, 4);
    std::memcpy(probe + 8, &now, 8);
    loop_.send_frame(*conns_[a.local], ws_opcode::binary, probe, sizeof probe);
  }

  idle_shared& sh_;
  client_loop& loop_;
  std::size_t concurrency_;
  std::vector<connection*> conns_;
  std::vector<std::uint32_t> globals_;
  std::vector<std::uint8_t> confirmed_;
  std::vector<anchor> anchors_;
  std::size_t next_connect_ = 0;
  clock_ns next_anchor_check_ = 0;
};

// VmRSS of a process in bytes, 0 if unreadable.
std::uint64_t read_rss(int pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

}  // namespace

int run_idle(const common_options& common, const idle_options& opt) {
  if (opt.connections == 0 || opt.per_channel == 0) throw bench_failure{"need --connections and --per-channel >= 1"};
  const unsigned T = std::clamp(common.threads, 1u, 64u);
  const std::uint64_t N = opt.connections;
  const std::uint64_t fd_limit = raise_open_file_limit();
  if (N + 16 > fd_limit)
    throw bench_failure{fmt::format("{} connections exceed the open-file limit {}", N, fd_limit)};
  if (opt.server_pid > 0 && read_rss(opt.server_pid) == 0)
    throw bench_failure{fmt::format("cannot read VmRSS of --server-pid {}", opt.server_pid)};

  idle_shared sh;
  sh.opt = opt;
  sh.nonce = run_nonce();
  const std::uint64_t channels = (N + opt.per_channel - 1) / opt.per_channel;
  sh.ch_opened = std::make_unique<std::atomic<std::uint32_t>[]>(channels);
  sh.ch_confirmed = std::make_unique<std::atomic<std::uint32_t>[]>(channels);
  // Members that can confirm their join: all but the anchors (a lone member cannot).
  std::uint64_t to_confirm = 0;
  for (std::uint32_t c = 0; c < channels; ++c)
    if (sh.channel_size(c) > 1) to_confirm += sh.channel_size(c) - 1;

  SSL_CTX* tls = common.tls ? make_client_tls_context() : nullptr;
  const endpoint ep = resolve_loopback(common.host, common.port);
  const std::string host_header =
      common.host_header.empty() ? fmt::format("localhost:{}", common.port) : common.host_header;

  std::vector<std::unique_ptr<client_loop>> loops;
  std::vector<std::unique_ptr<idle_worker>> workers;
  const unsigned per_loop_concurrency = std::max(1u, common.connect_concurrency / T);
  for (unsigned t = 0; t < T; ++t) {
    loops.push_back(std::make_unique<client_loop>(ep, tls, host_header));
    workers.push_back(std::make_unique<idle_worker>(sh, *loops.back(), per_loop_concurrency));
    loops.back()->set_handler(workers.back().get());
  }
  for (std::uint32_t g = 0; g < N; ++g) workers[g % T]->add_member(g);

  const std::uint64_t rss_before = opt.server_pid > 0 ? read_rss(opt.server_pid) : 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const clock_ns t0 = now_ns();
  for (auto& l : loops) threads.emplace_back([&stop, lp = l.get()] { lp->run(stop); });
  auto stop_all = [&] {
    stop.store(true, std::memory_order_release);
    for (auto& l : loops) l->wake();
    for (auto& th : threads)
      if (th.joinable()) th.join();
  };

  std::uint64_t rss_after = 0;
  bool settled = false;
  try {
    const double per_conn_s = common.tls ? 0.002 : 0.001;
    const double connect_s = common.connect_timeout_s > 0
                                 ? common.connect_timeout_s
                                 : 10.0 + static_cast<double>(N) * per_conn_s;
    wait_for(sh.latch, fmt::format("{} connections to join", N), t0 + s_ns(connect_s),
             [&] { return sh.opened.load() >= N && sh.confirmed.load() >= to_confirm; },
             [&] {
               return fmt::format("{} TCP connected, {} upgraded and joined, {} of {} joins confirmed",
                                  sh.tcp_connected.load(), sh.opened.load(), sh.confirmed.load(), to_confirm);
             });
    if (opt.server_pid > 0) {
      // Wait for RSS to settle: three samples 200 ms apart within 64 KiB / 0.2% of each other.
      std::uint64_t prev = read_rss(opt.server_pid);
      int stable = 0;
      const clock_ns deadline = now_ns() + s_ns(opt.settle_timeout_s);
      while (now_ns() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (sh.latch.failed()) throw bench_failure{sh.latch.what()};
        const std::uint64_t cur = read_rss(opt.server_pid);
        if (cur == 0) throw bench_failure{"the server process disappeared"};
        const std::uint64_t diff = cur > prev ? cur - prev : prev - cur;
        stable = diff <= std::max<std::uint64_t>(64 << 10, cur / 500) ? stable + 1 : 0;
        prev = cur;
        if (stable >= 2) {
          settled = true;
          break;
        }
      }
      rss_after = prev;
    }
    if (opt.hold_s > 0) {
      const clock_ns until = now_ns() + s_ns(opt.hold_s);
      wait_for(sh.latch, "the hold time", until + s_ns(5), [&] { return now_ns() >= until; });
    }
    stop_all();
  } catch (...) {
    stop_all();
    if (tls != nullptr) SSL_CTX_free(tls);
    throw;
  }
  workers.clear();
  loops.clear();  // closes every connection (RST: no TIME_WAIT pile-up between runs)
  if (tls != nullptr) SSL_CTX_free(tls);

  auto rate = [&](clock_ns t) { return t > t0 ? static_cast<double>(N) / (static_cast<double>(t - t0) / 1e9) : 0.0; };
  const clock_ns joined_at = to_confirm > 0 ? std::max(sh.last_confirm.load(), sh.last_open.load()) : sh.last_open.load();
  result_record rec;
  rec.add("mode", std::string("idle"));
  rec.add("target", ep.text);
  rec.add("tls", std::string(common.tls ? "yes" : "no"));
  rec.add("connections", N);
  rec.add("channels", channels);
  rec.add("per_channel", std::uint64_t{opt.per_channel});
  rec.add("threads", std::uint64_t{T});
  rec.add("tcp_connects_per_s", rate(sh.last_tcp.load()));
  rec.add("upgrades_per_s", rate(sh.last_open.load()));
  rec.add("joins_per_s", rate(joined_at));
  rec.add("joins_confirmed", std::string(to_confirm > 0 ? "yes" : "no (one member per channel)"));
  rec.add("all_joined_s", static_cast<double>(joined_at - t0) / 1e9, 3);
  if (opt.server_pid > 0) {
    rec.add("server_rss_before_kib", rss_before / 1024);
    rec.add("server_rss_after_kib", rss_after / 1024);
    rec.add("bytes_per_connection",
            rss_after > rss_before ? static_cast<double>(rss_after - rss_before) / static_cast<double>(N) : 0.0);
    rec.add("rss_settled", std::string(settled ? "yes" : "no"));
  }
  print_result(common, "idle", rec);
  return exit_ok;
}

}  // namespace mles::bench
