// Tests for the link retry backoff: doubling with jitter, a ceiling, and reset.
#include "peer/backoff.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace std::chrono_literals;
using mles::peer::backoff;

TEST(backoff, doubles_within_jitter_up_to_the_ceiling) {
  backoff b(1000ms, 8000ms);
  const std::chrono::milliseconds bases[] = {1000ms, 2000ms, 4000ms, 8000ms, 8000ms, 8000ms};
  for (auto base : bases) {
    const auto d = b.next();
    EXPECT_GE(d, base / 2);
    EXPECT_LE(d, base);
  }
}

TEST(backoff, starts_again_from_the_first_delay_after_a_reset) {
  backoff b(1000ms, 60000ms);
  for (int i = 0; i < 10; ++i) (void)b.next();
  b.reset();
  EXPECT_LE(b.next(), 1000ms);
}

TEST(backoff, jitter_spreads_servers_that_fail_together) {
  // Twenty independent backoffs at the same step do not all pick the same delay.
  std::set<long long> seen;
  for (int i = 0; i < 20; ++i) {
    backoff b(1000ms, 60000ms);
    (void)b.next();
    seen.insert(b.next().count());
  }
  EXPECT_GT(seen.size(), 1u);
}
