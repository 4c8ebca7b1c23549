// Timing figures for the durable history store (store/history_db), not a test: records/s
// committed with 64-byte frames at a 1 s group commit, and with durable appends (sync 0)
// made one at a time from one thread and from 8 threads at once.
//   mles_history_db_throughput [DIR]   (DIR: where to make the scratch databases; default /tmp)
#include "store/history_db.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using mles::store::history_db;
using mles::store::history_db_options;
using mles::store::history_record;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

history_record record(int channel, std::uint64_t seq) {
  history_record r;
  r.channel = "channel-" + std::to_string(channel);
  r.seq = seq;
  r.frame.assign(64, 'x');
  r.time_ms = 1;
  return r;
}

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

fs::path scratch(const fs::path& base, const char* name) {
  std::random_device rd;
  const auto p = base / ("mles-history-throughput-" + std::to_string(rd()) + "-" + name);
  fs::remove_all(p);
  return p;
}

// The caller's cost of append() (the writer idle: no commit is due during the loop), then the
// writer's throughput in steady state: every channel already at --limit, so each group commit
// of `batch` records also deletes as many.
void group_commit(const fs::path& base, std::size_t channels, std::size_t batch, std::size_t limit) {
  const auto dir = scratch(base, "group");
  {
    history_db_options o;
    o.dir = dir;
    o.limit = limit;
    o.sync_interval = std::chrono::hours(1);
    o.max_queued_bytes = std::size_t{1} << 30;
    history_db db(o);
    std::uint64_t seq = 0;
    auto fill = [&](std::size_t n, std::vector<history_record>& out) {
      out.clear();
      for (std::size_t i = 0; i < n; ++i, ++seq) out.push_back(record(static_cast<int>(seq % channels), seq));
    };
    std::vector<history_record> records;
    records.reserve(batch);
    for (std::size_t done = 0; done < channels * limit; done += batch) {  // every channel at its limit
      fill(batch, records);
      for (auto& r : records) db.append(std::move(r));
      (void)db.flush(std::chrono::seconds(300));
    }
    double append_s = 0, commit_s = 0;
    const int rounds = 10;
    for (int k = 0; k < rounds; ++k) {
      fill(batch, records);
      const auto t0 = steady::now();
      for (auto& r : records) db.append(std::move(r));
      append_s += seconds_since(t0);
      const auto t1 = steady::now();
      if (!db.flush(std::chrono::seconds(300))) std::printf("flush failed\n");
      commit_s += seconds_since(t1);
    }
    const double n = static_cast<double>(batch) * rounds;
    std::printf("%zu channels at --limit %zu, group commits of %zu 64 B records: %.0f ns/append on the caller, "
                "%.1f ms per commit = %.0f records/s\n",
                channels, limit, batch, append_s * 1e9 / n, commit_s * 1e3 / rounds, n / commit_s);
  }
  fs::remove_all(dir);
}

// One thread appends at a steady rate for a while; the store commits every second.
void steady_rate(const fs::path& base, std::size_t per_second, std::chrono::seconds run_for) {
  const auto dir = scratch(base, "steady");
  {
    history_db_options o;
    o.dir = dir;
    history_db db(o);
    const auto start = steady::now();
    std::uint64_t seq = 0;
    double append_s = 0;
    for (auto tick = start; steady::now() - start < run_for; tick += std::chrono::milliseconds(10)) {
      const auto t0 = steady::now();
      for (std::size_t i = 0; i < per_second / 100; ++i, ++seq) db.append(record(static_cast<int>(seq % 100), seq));
      append_s += seconds_since(t0);
      std::this_thread::sleep_until(tick + std::chrono::milliseconds(10));
    }
    if (!db.flush(std::chrono::seconds(60))) std::printf("flush failed\n");
    const auto s = db.current_stats();
    std::printf("sync 1 s at %zu appends/s for %lld s: %.0f ns/append on the caller (record built inside), "
                "committed %llu, dropped %llu\n",
                per_second, static_cast<long long>(run_for.count()), append_s * 1e9 / static_cast<double>(seq),
                static_cast<unsigned long long>(s.committed), static_cast<unsigned long long>(s.dropped));
  }
  fs::remove_all(dir);
}

// threads threads, each making durable appends one at a time (waiting for each acknowledgement).
void durable(const fs::path& base, int threads, std::chrono::seconds run_for) {
  const auto dir = scratch(base, "durable");
  {
    history_db_options o;
    o.dir = dir;
    o.sync_interval = std::chrono::milliseconds(0);
    history_db db(o);
    std::atomic<std::uint64_t> acked{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    const auto start = steady::now();
    for (int k = 0; k < threads; ++k) {
      workers.emplace_back([&, k] {
        std::mutex m;
        std::condition_variable cv;
        for (std::uint64_t seq = 1; !stop; ++seq) {
          bool done = false, ok = false;
          db.append_durable(record(k, seq), [&](bool result) {
            std::lock_guard lk(m);
            done = true;
            ok = result;
            cv.notify_one();
          });
          std::unique_lock lk(m);
          cv.wait(lk, [&] { return done; });
          if (ok) ++acked;
        }
      });
    }
    std::this_thread::sleep_for(run_for);
    stop = true;
    for (auto& w : workers) w.join();
    const double s = seconds_since(start);
    std::printf("sync 0, append_durable one at a time, %d thread%s: %.0f records/s (%.2f ms per acknowledgement)\n",
                threads, threads == 1 ? "" : "s", static_cast<double>(acked) / s,
                1e3 * s * threads / static_cast<double>(acked));
  }
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  const fs::path base = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path();
  group_commit(base, 100, 10'000, 200);
  group_commit(base, 10'000, 10'000, 200);
  steady_rate(base, 50'000, std::chrono::seconds(5));
  durable(base, 1, std::chrono::seconds(3));
  durable(base, 8, std::chrono::seconds(3));
}
