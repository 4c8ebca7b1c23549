// Tests for the per-IP connection rate limit.
#include "net/rate_limiter.hpp"

#include <gtest/gtest.h>

using mles::net::rate_limiter;
using boost::asio::ip::make_address;
using namespace std::chrono_literals;

TEST(rate_limiter, allows_n_per_minute_then_refuses) {
  rate_limiter rl(3);
  const auto t = rate_limiter::clock::now();
  const auto ip = make_address("192.0.2.1");
  EXPECT_TRUE(rl.allow(ip, t));
  EXPECT_TRUE(rl.allow(ip, t));
  EXPECT_TRUE(rl.allow(ip, t));
  EXPECT_FALSE(rl.allow(ip, t + 1s));
  // Another address has its own budget.
  EXPECT_TRUE(rl.allow(make_address("192.0.2.2"), t + 1s));
  // A minute later the budget is back.
  EXPECT_TRUE(rl.allow(ip, t + 61s));
}

TEST(rate_limiter, counts_ipv4_mapped_ipv6_as_the_ipv4_address) {
  rate_limiter rl(2);
  const auto t = rate_limiter::clock::now();
  EXPECT_TRUE(rl.allow(make_address("198.51.100.7"), t));
  EXPECT_TRUE(rl.allow(make_address("::ffff:198.51.100.7"), t));
  EXPECT_FALSE(rl.allow(make_address("198.51.100.7"), t));
  EXPECT_FALSE(rl.allow(make_address("::ffff:198.51.100.7"), t));
  // A genuine IPv6 address is separate.
  EXPECT_TRUE(rl.allow(make_address("2001:db8::7"), t));
}

TEST(rate_limiter, remembers_a_bounded_number_of_addresses) {
  rate_limiter rl(1, 4);
  const auto t = rate_limiter::clock::now();
  for (int i = 1; i <= 4; ++i) EXPECT_TRUE(rl.allow(make_address("10.0.0." + std::to_string(i)), t));
  EXPECT_EQ(rl.tracked(), 4u);
  // Table full of addresses mid-burst: a newcomer is refused rather than remembered.
  EXPECT_FALSE(rl.allow(make_address("10.0.0.9"), t));
  EXPECT_EQ(rl.tracked(), 4u);
  // Once buckets refill, they are pruned and new addresses fit again.
  EXPECT_TRUE(rl.allow(make_address("10.0.0.9"), t + 2min));
  EXPECT_LE(rl.tracked(), 4u);
}
