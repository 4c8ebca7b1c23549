// The stall floor: which latency quantile the CPUs' own stalls leave to any server.
#include "stall_floor.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace mles::bench {
namespace {

constexpr std::int64_t ms = 1'000'000;

TEST(stall_floor, no_stalls_no_floor) {
  EXPECT_EQ(stall_floor_ns({}, 0.99, 1000 * ms), 0);
  EXPECT_EQ(late_share({}, ms, 1000 * ms), 0.0);
}

TEST(stall_floor, a_stall_shorter_than_the_allowed_share_leaves_no_floor) {
  // 10 ms stalled in 1 s: 1 % of instants wait at all, p99 may still be 0.
  const std::vector<std::int64_t> s{10 * ms};
  EXPECT_EQ(stall_floor_ns(s, 0.99, 1000 * ms), 0);
  // p99.9 allows 1 ms of late instants: those that wait more than 9 ms.
  EXPECT_EQ(stall_floor_ns(s, 0.999, 1000 * ms), 9 * ms);
  EXPECT_DOUBLE_EQ(late_share(s, 9 * ms, 1000 * ms), 0.001);
  EXPECT_DOUBLE_EQ(late_share(s, 10 * ms, 1000 * ms), 0.0);
}

TEST(stall_floor, the_longest_stall_alone_sets_it) {
  // 5 ms and 3 ms in 100 ms, p99 (1 ms allowed): only the 5 ms one reaches past 4 ms.
  EXPECT_EQ(stall_floor_ns({5 * ms, 3 * ms}, 0.99, 100 * ms), 4 * ms);
}

TEST(stall_floor, several_stalls_share_it) {
  // 5 ms and 4.5 ms in 100 ms: past 4.25 ms they leave 0.75 + 0.25 = 1 ms late.
  EXPECT_EQ(stall_floor_ns({4'500'000, 5 * ms}, 0.99, 100 * ms), 4'250'000);
}

TEST(stall_floor, is_the_smallest_wait_within_the_allowed_share) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> len(10'000, 8 * ms);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::int64_t> s(static_cast<std::size_t>(1 + round * 7));
    for (auto& l : s) l = len(rng);
    const std::int64_t window = 1000 * ms;
    for (const double q : {0.5, 0.99, 0.999}) {
      const std::int64_t x = stall_floor_ns(s, q, window);
      const double allowed = 1.0 - q;
      EXPECT_LE(late_share(s, x, window), allowed + 1e-12) << "round " << round << " q " << q;
      if (x > 0) {
        EXPECT_GT(late_share(s, x - 1, window), allowed) << "round " << round << " q " << q;
      }
    }
  }
}

}  // namespace
}  // namespace mles::bench
