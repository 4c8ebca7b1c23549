// history mode: a publisher fills one channel with N messages, a witness member confirms
// they are stored, then a fresh client joins and times the replay of those N messages;
// the publisher tops the history up with N new messages before each next join.
// --joiner-port: the joiners connect to another server (cluster mode: one where the channel
// has no members, so its history comes from the cluster); --join-pause waits after each fill
// (longer than that server's linger: each join then attaches the channel afresh). With the
// joiner on another server, its join frame reaches the shared history concurrently with the
// next fill and may land among the fill's messages: give the servers a --limit of N + 1.
#include "client_loop.hpp"
#include "latency_histogram.hpp"
#include "modes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

namespace mles::bench {

namespace {

constexpr std::uint32_t publisher_pid = 0;
constexpr clock_ns probe_interval = ms_ns(10);
constexpr std::size_t queue_budget = 1u << 20;  // in-flight bytes to the witness

enum class step { connecting, barrier, fill, wait_fill, pausing, joining, done };

class history_worker final : public client_handler {
 public:
  history_worker(const history_options& opt, client_loop& loop, fatal_latch& latch, std::string nonce,
                 const endpoint* joiner_target, const std::string* joiner_host)
      : opt_(opt), loop_(loop), latch_(latch), nonce_(std::move(nonce)), joiner_target_(joiner_target),
        joiner_host_(joiner_host) {
    payload_.assign(opt.size, 'h');
    window_ = std::clamp<std::uint64_t>(queue_budget / (opt.size + 14), 1, 256);
    publisher_ = &loop_.create(0);
    witness_ = &loop_.create(1);
  }

  void start() {
    loop_.start_connect(*publisher_);
    loop_.start_connect(*witness_);
  }

  bool done() const noexcept { return done_.load(std::memory_order_acquire); }
  std::string progress() const {
    return fmt::format("join {} of {}", joins_done_.load(), opt_.warmup_joins + opt_.joins);
  }
  const latency_histogram& from_join() const noexcept { return from_join_; }
  const latency_histogram& from_connect() const noexcept { return from_connect_; }
  std::uint64_t history_frames() const noexcept { return history_frames_; }
  std::uint64_t history_bytes() const noexcept { return history_bytes_; }

  void on_open(connection& c, clock_ns now) override {
    std::string uid;
    if (&c == publisher_) {
      uid = fmt::format("hp{}", nonce_);
    } else if (&c == witness_) {
      uid = fmt::format("hw{}", nonce_);
    } else {
      uid = fmt::format("hj{}-{}", nonce_, c.id_);
      t_join_ = now;
    }
    const std::string join = fmt::format(R"({{"uid":"{}","channel":"hist-{}"}})", uid, nonce_);
    loop_.send_frame(c, ws_opcode::text, join.data(), join.size());
    ++opened_;
  }

  void on_message(connection& c, ws_opcode op, const char* data, std::size_t n, clock_ns read_time) override {
    if (&c == joiner_) {
      ++history_frames_;
      history_bytes_ += n;
    }
    if (op != ws_opcode::binary || n < payload_header_size) return;  // join frames
    std::uint32_t pid;
    std::uint32_t seq;
    std::memcpy(&pid, data, 4);
    std::memcpy(&seq, data + 4, 4);
    if ((pid & ~probe_flag) != publisher_pid || &c == publisher_) {
      latch_.set("a member received a message that no other member sent (echo or misrouting)");
      return;
    }
    if ((pid & probe_flag) != 0) {
      if (&c == witness_) witness_probed_ = true;
      return;
    }
    if (&c == witness_) {
      if (seq != witness_next_) {
        latch_.set(fmt::format("witness: expected message {}, got {} (lost or reordered)", witness_next_, seq));
        return;
      }
      ++witness_next_;
      return;
    }
    if (&c != joiner_ || seq < base_) return;  // older top-ups still in history
    if (seq != joiner_next_) {
      latch_.set(fmt::format("joiner {}: history message {} arrived when {} was expected", c.id_, seq,
                             joiner_next_));
      return;
    }
    if (++joiner_next_ == base_ + opt_.history) {
      const unsigned j = joins_done_.load(std::memory_order_relaxed);
      if (j >= opt_.warmup_joins) {
        from_join_.record(static_cast<std::uint64_t>(read_time - t_join_));
        from_connect_.record(static_cast<std::uint64_t>(read_time - c.t_connect_));
      }
      loop_.close(c);
      joiner_ = nullptr;
      base_ += opt_.history;
      joins_done_.store(j + 1, std::memory_order_relaxed);
      if (j + 1 >= opt_.warmup_joins + opt_.joins) {
        step_ = step::done;
        done_.store(true, std::memory_order_release);
      } else {
        step_ = step::fill;
      }
    }
  }

  void on_failure(connection& c, std::string_view why) override {
    const char* who = &c == publisher_ ? "publisher" : &c == witness_ ? "witness" : "joiner";
    latch_.set(fmt::format("{}: {}", who, why));
  }

  void on_round(clock_ns now) override {
    switch (step_) {
      case step::connecting:
        if (opened_ >= 2) step_ = step::barrier;
        break;
      case step::barrier:
        if (witness_probed_) {
          step_ = step::fill;
        } else if (now >= next_probe_) {
          next_probe_ = now + probe_interval;
          write_header(publisher_pid | probe_flag, probes_++, now);
          loop_.send_frame(*publisher_, ws_opcode::binary, payload_.data(), payload_.size());
        }
        break;
      case step::fill: {
        const std::uint64_t end = base_ + opt_.history;
        while (sent_ < end && sent_ - witness_next_ < window_) {
          write_header(publisher_pid, static_cast<std::uint32_t>(sent_), now);
          loop_.send_frame(*publisher_, ws_opcode::binary, payload_.data(), payload_.size());
          ++sent_;
        }
        if (sent_ == end) step_ = step::wait_fill;
        break;
      }
      case step::wait_fill:
        if (witness_next_ == base_ + opt_.history) {
          // Every message of this fill reached the witness, so it is in the history.
          join_at_ = now + s_ns(opt_.join_pause_s);
          step_ = step::pausing;
          start_join(now);
        }
        break;
      case step::pausing:
        start_join(now);
        break;
      case step::joining:
        if (now > join_deadline_)
          latch_.set(fmt::format("joiner {} received {} of the {} history messages within {} s "
                                 "(is the server's --limit below {}?)",
                                 joins_done_.load(), joiner_next_ - base_, opt_.history,
                                 opt_.join_timeout_s, opt_.history));
        break;
      case step::done:
        break;
    }
  }

  clock_ns next_wakeup(clock_ns now) override {
    if (step_ == step::barrier) return next_probe_;
    if (step_ == step::fill && sent_ - witness_next_ < window_) return now;
    if (step_ == step::pausing) return join_at_;
    return now + ms_ns(20);
  }

 private:
  void start_join(clock_ns now) {
    if (now < join_at_) return;
    joiner_ = &loop_.create(2 + joins_done_.load(std::memory_order_relaxed), joiner_target_, joiner_host_);
    joiner_next_ = base_;
    join_deadline_ = now + s_ns(opt_.join_timeout_s);
    step_ = step::joining;
    loop_.start_connect(*joiner_);
  }

  void write_header(std::uint32_t pid, std::uint32_t seq, clock_ns ts) {
    std::memcpy(payload_.data(), &pid, 4);
    std::memcpy(payload_.data() + 4, &seq, 4);
    std::memcpy(payload_.data() + 8, &ts, 8);
  }

  const history_options& opt_;
  client_loop& loop_;
  fatal_latch& latch_;
  std::string nonce_;
  const endpoint* joiner_target_;
  const std::string* joiner_host_;
  std::string payload_;
  std::uint64_t window_ = 0;
  connection* publisher_ = nullptr;
  connection* witness_ = nullptr;
  connection* joiner_ = nullptr;
  step step_ = step::connecting;
  unsigned opened_ = 0;
  bool witness_probed_ = false;
  std::uint32_t probes_ = 0;
  clock_ns next_probe_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t base_ = 0;          // first sequence number of the current fill
  std::uint64_t witness_next_ = 0;
  std::uint64_t joiner_next_ = 0;
  clock_ns t_join_ = 0;
  clock_ns join_deadline_ = 0;
  clock_ns join_at_ = 0;
  std::atomic<unsigned> joins_done_{0};
  std::atomic<bool> done_{false};
  latency_histogram from_join_;
  latency_histogram from_connect_;
  std::uint64_t history_frames_ = 0;
  std::uint64_t history_bytes_ = 0;
};

}  // namespace

int run_history(const common_options& common, const history_options& opt) {
  if (opt.size < payload_header_size) throw bench_failure{"--size must be at least 16"};
  if (opt.history == 0 || opt.joins == 0) throw bench_failure{"need --history and --joins >= 1"};
  raise_open_file_limit();
  SSL_CTX* tls = common.tls ? make_client_tls_context() : nullptr;
  const endpoint ep = resolve_loopback(common.host, common.port);
  const std::string host_header =
      common.host_header.empty() ? fmt::format("localhost:{}", common.port) : common.host_header;

  std::optional<endpoint> joiner_ep;
  std::string joiner_host;
  if (opt.joiner_port != 0) {
    joiner_ep = resolve_loopback(common.host, opt.joiner_port);
    joiner_host = fmt::format("localhost:{}", opt.joiner_port);
  }

  fatal_latch latch;
  auto loop = std::make_unique<client_loop>(ep, tls, host_header);
  auto worker = std::make_unique<history_worker>(opt, *loop, latch, run_nonce(), joiner_ep ? &*joiner_ep : nullptr,
                                                 joiner_ep ? &joiner_host : nullptr);
  loop->set_handler(worker.get());
  worker->start();
  std::atomic<bool> stop{false};
  std::thread th([&] { loop->run(stop); });
  auto stop_all = [&] {
    stop.store(true, std::memory_order_release);
    loop->wake();
    if (th.joinable()) th.join();
  };
  try {
    const double total_s =
        30.0 + (opt.warmup_joins + opt.joins) * (std::min(opt.join_timeout_s, 2.0) + opt.join_pause_s);
    wait_for(latch, "the history joins", now_ns() + s_ns(total_s), [&] { return worker->done(); },
             [&] { return worker->progress(); });
    stop_all();
  } catch (...) {
    stop_all();
    if (tls != nullptr) SSL_CTX_free(tls);
    throw;
  }

  const auto& hj = worker->from_join();
  const auto& hc = worker->from_connect();
  const double joins_total = opt.warmup_joins + opt.joins;
  result_record rec;
  rec.add("mode", std::string("history"));
  rec.add("target", ep.text);
  rec.add("joiner_target", joiner_ep ? joiner_ep->text : ep.text);
  rec.add("join_pause_s", opt.join_pause_s, 3);
  rec.add("tls", std::string(common.tls ? "yes" : "no"));
  rec.add("history", std::uint64_t{opt.history});
  rec.add("size", std::uint64_t{opt.size});
  rec.add("joins", hj.count());
  rec.add("join_p50_us", static_cast<double>(hj.percentile(0.50)) / 1e3, 1);
  rec.add("join_p99_us", static_cast<double>(hj.percentile(0.99)) / 1e3, 1);
  rec.add("join_p999_us", static_cast<double>(hj.percentile(0.999)) / 1e3, 1);
  rec.add("join_max_us", static_cast<double>(hj.max()) / 1e3, 1);
  rec.add("connect_p50_us", static_cast<double>(hc.percentile(0.50)) / 1e3, 1);
  rec.add("connect_p99_us", static_cast<double>(hc.percentile(0.99)) / 1e3, 1);
  rec.add("connect_p999_us", static_cast<double>(hc.percentile(0.999)) / 1e3, 1);
  rec.add("history_frames_per_join", static_cast<double>(worker->history_frames()) / joins_total, 1);
  rec.add("history_bytes_per_join", static_cast<double>(worker->history_bytes()) / joins_total, 0);
  worker.reset();
  loop.reset();
  if (tls != nullptr) SSL_CTX_free(tls);
  print_result(common, "history", rec);
  return exit_ok;
}

}  // namespace mles::bench
