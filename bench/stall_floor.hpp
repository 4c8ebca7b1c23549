// What the CPUs' own stalls cost any process that runs on them: given the stalls seen by a
// thread that did nothing but read the clock on each CPU (host preemption of a virtual CPU,
// interrupts, the kernel's own work), how many instants would miss a deadline, and the
// latency quantile no relay crossing these CPUs can beat even at zero load.
//
// A message that needs a CPU at a uniformly random instant t and meets a stall running from s
// to s + L (s <= t < s + L) waits s + L - t. So over a window D, the share of instants at
// which the wait exceeds x is sum(max(0, L - x)) / D for that CPU. A message that needs each
// of several CPUs once is late if it is late on any of them; summing the CPUs' shares counts
// the rare instants where two CPUs stall together twice, a small over-count next to leaving
// out that a fan-out needs some CPU more than once. Under load the floor only rises: a stall
// also leaves a backlog that the following messages wait behind.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace mles::bench {

// Share of instants (0..1, summed over the CPUs whose stalls are given) at which a message
// would wait more than x_ns, over a window of window_ns per CPU.
inline double late_share(std::span<const std::int64_t> stalls_ns, std::int64_t x_ns, std::int64_t window_ns) {
  if (window_ns <= 0) return 0;
  double late = 0;
  for (const std::int64_t l : stalls_ns)
    if (l > x_ns) late += static_cast<double>(l - x_ns);
  return late / static_cast<double>(window_ns);
}

// The smallest wait x such that at most a share (1 - quantile) of instants waits more than x:
// the quantile's floor. late_share(x) falls linearly between stall lengths, so walk the
// stalls from the longest down: between the k longest stalls' lengths l[k] <= x < l[k-1],
// late(x) = (sum of the k longest - k·x) / window.
inline std::int64_t stall_floor_ns(std::vector<std::int64_t> stalls_ns, double quantile, std::int64_t window_ns) {
  if (window_ns <= 0 || stalls_ns.empty()) return 0;
  const double allowed = (1.0 - quantile) * static_cast<double>(window_ns);
  std::sort(stalls_ns.begin(), stalls_ns.end(), std::greater<>());
  double sum = 0;  // of the k longest stalls
  for (std::size_t k = 1; k <= stalls_ns.size(); ++k) {
    sum += static_cast<double>(stalls_ns[k - 1]);
    const double next = k < stalls_ns.size() ? static_cast<double>(stalls_ns[k]) : 0.0;
    // On [next, l[k-1]] the k longest are the only stalls over x: late(x) = sum - k·x.
    if (sum - static_cast<double>(k) * next > allowed) {
      const double x = (sum - allowed) / static_cast<double>(k);
      return static_cast<std::int64_t>(std::ceil(x));  // up: never more late than allowed
    }
  }
  return 0;  // even x = 0 keeps late(x) within the allowed share
}

}  // namespace mles::bench
