// stalls: how long the CPUs themselves stop a running thread. One thread per CPU, pinned,
// reads the clock in a loop for the whole window; every gap between two reads longer than
// the resolution (10 µs) is a stall that any process on that CPU would have waited through
// (on a virtual machine mostly the host running something else on the CPU). The figures say
// which latency no server can beat on this box (stall_floor.hpp); bench/run_latency.sh prints
// them beside its latency figures.
#include "modes.hpp"
#include "stall_floor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <sched.h>
#include <thread>

namespace mles::bench {

namespace {

constexpr clock_ns resolution = 10'000;     // gaps over 10 µs count as stalls
constexpr std::size_t max_stalls = 1 << 20;  // per CPU: 10 s at one stall every 10 µs

struct cpu_record {
  unsigned cpu = 0;
  std::vector<clock_ns> stalls;
  bool overflowed = false;
  clock_ns window = 0;
  std::string error;  // pinning failed
};

void spin(cpu_record& r, const std::atomic<unsigned>& ready, unsigned threads, clock_ns length) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(r.cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    r.error = fmt::format("cannot run on CPU {}: {}", r.cpu, std::strerror(errno));
    return;
  }
  r.stalls.reserve(max_stalls);
  while (ready.load(std::memory_order_acquire) < threads) {
  }
  const clock_ns start = now_ns();
  const clock_ns end = start + length;
  clock_ns prev = start;
  for (;;) {
    const clock_ns t = now_ns();
    if (t - prev > resolution) {
      if (r.stalls.size() < max_stalls) r.stalls.push_back(t - prev);
      else r.overflowed = true;
    }
    prev = t;
    if (t >= end) break;
  }
  r.window = prev - start;
}

std::vector<unsigned> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<unsigned> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

double per_s(std::size_t n, clock_ns window) { return window > 0 ? static_cast<double>(n) * 1e9 / static_cast<double>(window) : 0; }

}  // namespace

int run_stalls(const common_options& common, const stall_options& opt) {
  std::vector<unsigned> cpus = opt.cpus.empty() ? allowed_cpus() : opt.cpus;
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  if (cpus.empty()) throw bench_failure{"no CPU to measure"};

  std::vector<cpu_record> records(cpus.size());
  std::atomic<unsigned> ready{0};
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < cpus.size(); ++i) {
      records[i].cpu = cpus[i];
      threads.emplace_back([&, i] {
        cpu_record& r = records[i];
        // Counted before pinning, so a CPU that refuses does not hold the others forever.
        ready.fetch_add(1, std::memory_order_acq_rel);
        spin(r, ready, static_cast<unsigned>(cpus.size()), s_ns(opt.duration_s));
      });
    }
    for (auto& t : threads) t.join();
  }
  for (const auto& r : records)
    if (!r.error.empty()) throw bench_failure{r.error};

  result_record rec;
  rec.add("mode", std::string("stalls"));
  std::string list;
  for (const unsigned c : cpus) list += (list.empty() ? "" : ",") + std::to_string(c);
  rec.add("cpus", list);
  rec.add("duration_s", opt.duration_s, 1);
  std::vector<clock_ns> all;
  clock_ns window = 0;  // the shortest CPU's window: the shares below are per CPU, summed
  clock_ns longest = 0;
  std::size_t over_100us = 0;
  std::size_t over_1ms = 0;
  double stalled_ns = 0;
  bool overflowed = false;
  for (const auto& r : records) {
    window = window == 0 ? r.window : std::min(window, r.window);
    overflowed = overflowed || r.overflowed;
    std::size_t r_over_1ms = 0;
    double r_stalled = 0;
    for (const clock_ns l : r.stalls) {
      longest = std::max(longest, l);
      if (l > 100'000) ++over_100us;
      if (l > 1'000'000) ++r_over_1ms;
      r_stalled += static_cast<double>(l);
    }
    over_1ms += r_over_1ms;
    stalled_ns += r_stalled;
    rec.add(fmt::format("cpu{}_stalls_over_1ms_per_s", r.cpu), per_s(r_over_1ms, r.window), 1);
    rec.add(fmt::format("cpu{}_stalled_share", r.cpu), r.window > 0 ? r_stalled / static_cast<double>(r.window) : 0.0, 4);
    all.insert(all.end(), r.stalls.begin(), r.stalls.end());
  }
  rec.add("stalls_over_100us_per_s", per_s(over_100us, window), 1);
  rec.add("stalls_over_1ms_per_s", per_s(over_1ms, window), 1);
  rec.add("longest_stall_us", static_cast<double>(longest) / 1e3, 1);
  rec.add("stalled_share", window > 0 ? stalled_ns / (static_cast<double>(window) * static_cast<double>(records.size())) : 0.0, 4);
  const auto deadline = static_cast<clock_ns>(opt.deadline_us * 1e3);
  rec.add(fmt::format("late_share_at_{}us", static_cast<std::uint64_t>(opt.deadline_us)), late_share(all, deadline, window), 4);
  rec.add("floor_p50_us", static_cast<double>(stall_floor_ns(all, 0.50, window)) / 1e3, 1);
  rec.add("floor_p99_us", static_cast<double>(stall_floor_ns(all, 0.99, window)) / 1e3, 1);
  rec.add("floor_p999_us", static_cast<double>(stall_floor_ns(all, 0.999, window)) / 1e3, 1);
  rec.add("overflowed", std::string(overflowed ? "yes" : "no"));
  print_result(common, "stalls", rec);
  return exit_ok;
}

}  // namespace mles::bench
