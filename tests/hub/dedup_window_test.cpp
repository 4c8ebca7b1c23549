// Tests for the peer-link dedup windows: per-origin anti-replay windows, the payload-hash FIFO,
// and SipHash-2-4 against the paper's vector and OpenSSL.
#include "hub/dedup_window.hpp"

#include "proto/siphash.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace mles::hub {
namespace {

using enum origin_verdict;

// ---- origin_window ----------------------------------------------------------------------------

TEST(origin_window, in_order_sequences_are_fresh) {
  origin_window w;
  for (std::uint64_t seq = 1; seq <= 5000; ++seq) ASSERT_EQ(w.check_and_record("a", 7, seq), fresh) << seq;
  EXPECT_EQ(w.origins(), 1u);
}

TEST(origin_window, a_repeated_sequence_is_a_duplicate) {
  origin_window w;
  EXPECT_EQ(w.check_and_record("a", 7, 1), fresh);
  EXPECT_EQ(w.check_and_record("a", 7, 1), duplicate);  // the highest itself
  EXPECT_EQ(w.check_and_record("a", 7, 2), fresh);
  EXPECT_EQ(w.check_and_record("a", 7, 3), fresh);
  EXPECT_EQ(w.check_and_record("a", 7, 2), duplicate);  // inside the window
  EXPECT_EQ(w.check_and_record("a", 7, 1), duplicate);
  EXPECT_EQ(w.check_and_record("a", 7, 3), duplicate);
}

TEST(origin_window, reordering_within_the_window_never_drops_an_unseen_message) {
  // Every sequence 1..20000 arrives once, each displaced by less than the window, then all
  // again: the first pass is all fresh, the second pass never fresh.
  std::mt19937_64 rng(4303);
  std::vector<std::uint64_t> order(20000);
  std::iota(order.begin(), order.end(), 1);
  for (std::size_t start = 0; start < order.size(); start += 500) {  // shuffle blocks of 500 < 1024
    std::shuffle(order.begin() + static_cast<std::ptrdiff_t>(start),
                 order.begin() + static_cast<std::ptrdiff_t>(std::min(start + 500, order.size())), rng);
  }
  origin_window w;
  for (const auto seq : order) ASSERT_EQ(w.check_and_record("a", 1, seq), fresh) << seq;
  for (const auto seq : order) ASSERT_NE(w.check_and_record("a", 1, seq), fresh) << seq;
  // The last window's worth is remembered exactly.
  for (std::uint64_t seq = 20000 - 1023; seq <= 20000; ++seq) EXPECT_EQ(w.check_and_record("a", 1, seq), duplicate);
}

TEST(origin_window, out_of_order_within_window_is_fresh_once) {
  origin_window w(64, 1024);
  EXPECT_EQ(w.check_and_record("a", 1, 1000), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 10), fresh);  // 990 below: inside the window
  EXPECT_EQ(w.check_and_record("a", 1, 10), duplicate);
  EXPECT_EQ(w.check_and_record("a", 1, 999), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 1001), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 999), duplicate);
}

TEST(origin_window, at_or_below_highest_minus_window_is_too_old) {
  origin_window w(64, 1024);
  EXPECT_EQ(w.check_and_record("a", 1, 2000), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 976), too_old);  // 2000 - 1024
  EXPECT_EQ(w.check_and_record("a", 1, 1), too_old);
  EXPECT_EQ(w.check_and_record("a", 1, 977), fresh);  // the oldest tracked sequence
  EXPECT_EQ(w.check_and_record("a", 1, 977), duplicate);
  EXPECT_EQ(w.check_and_record("a", 1, 976), too_old);  // still too old, never fresh
}

TEST(origin_window, window_that_is_not_a_multiple_of_64_is_exact) {
  origin_window w(4, 100);
  EXPECT_EQ(w.window(), 100u);
  EXPECT_EQ(w.check_and_record("a", 1, 500), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 400), too_old);  // 500 - 100
  EXPECT_EQ(w.check_and_record("a", 1, 401), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 401), duplicate);
}

TEST(origin_window, slides_over_gaps_of_a_million) {
  origin_window w(64, 1024);
  EXPECT_EQ(w.check_and_record("a", 1, 1), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 1'000'001), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 1'000'001), duplicate);
  EXPECT_EQ(w.check_and_record("a", 1, 1), too_old);
  EXPECT_EQ(w.check_and_record("a", 1, 1'000'000), fresh);  // just below: inside the new window
  EXPECT_EQ(w.check_and_record("a", 1, 999'000), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 998'978), fresh);    // 1'000'001 - 1024 + 1
  EXPECT_EQ(w.check_and_record("a", 1, 998'977), too_old);  // 1'000'001 - 1024
  EXPECT_EQ(w.check_and_record("a", 1, 2'000'001), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 1'000'000), too_old);
}

TEST(origin_window, sliding_clears_stale_bits_of_sequences_sharing_a_position) {
  // window 64 = one bitmap word: seq s and s + 64 share a bit.
  origin_window w(4, 64);
  for (std::uint64_t seq = 1; seq <= 64; ++seq) ASSERT_EQ(w.check_and_record("a", 1, seq), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 100), fresh);  // slides by 36: 1..36 leave the window
  for (std::uint64_t seq = 37; seq <= 64; ++seq) EXPECT_EQ(w.check_and_record("a", 1, seq), duplicate) << seq;
  for (std::uint64_t seq = 65; seq <= 99; ++seq) EXPECT_EQ(w.check_and_record("a", 1, seq), fresh) << seq;
  for (std::uint64_t seq = 1; seq <= 36; ++seq) EXPECT_EQ(w.check_and_record("a", 1, seq), too_old) << seq;
  // A slide by exactly the bitmap size clears everything.
  EXPECT_EQ(w.check_and_record("a", 1, 164), fresh);
  for (std::uint64_t seq = 101; seq <= 163; ++seq) EXPECT_EQ(w.check_and_record("a", 1, seq), fresh) << seq;
}

TEST(origin_window, handles_sequences_near_the_top_of_u64) {
  origin_window w(4, 1024);
  const std::uint64_t top = ~std::uint64_t{0};
  EXPECT_EQ(w.check_and_record("a", 1, top - 5), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, top), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, top - 5), duplicate);
  EXPECT_EQ(w.check_and_record("a", 1, top - 1), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, top - 1024), too_old);
  EXPECT_EQ(w.check_and_record("a", 1, 1), too_old);
}

TEST(origin_window, sequence_0_is_too_old_and_tracks_nothing) {
  origin_window w;
  EXPECT_EQ(w.check_and_record("a", 1, 0), too_old);
  EXPECT_EQ(w.origins(), 0u);
}

TEST(origin_window, origins_are_independent) {
  origin_window w;
  EXPECT_EQ(w.check_and_record("a", 1, 5), fresh);
  EXPECT_EQ(w.check_and_record("b", 1, 5), fresh);  // other server
  EXPECT_EQ(w.check_and_record("a", 2, 5), fresh);  // other instance
  EXPECT_EQ(w.check_and_record("ab", 1, 5), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 5), duplicate);
  EXPECT_EQ(w.check_and_record("b", 1, 5), duplicate);
  EXPECT_EQ(w.origins(), 4u);
}

TEST(origin_window, a_restarted_server_is_fresh_from_sequence_1) {
  origin_window w;
  for (std::uint64_t seq = 1; seq <= 5000; ++seq) ASSERT_EQ(w.check_and_record("alpha", 111, seq), fresh);
  // Restart: new random instance, sequence starts again at 1.
  for (std::uint64_t seq = 1; seq <= 10; ++seq) EXPECT_EQ(w.check_and_record("alpha", 222, seq), fresh) << seq;
  // Late copies from the old instance are still recognised.
  EXPECT_EQ(w.check_and_record("alpha", 111, 5000), duplicate);
  EXPECT_EQ(w.check_and_record("alpha", 111, 1), too_old);
}

TEST(origin_window, forgets_the_least_recently_used_origin) {
  origin_window w(3, 1024);
  EXPECT_EQ(w.check_and_record("a", 1, 1), fresh);
  EXPECT_EQ(w.check_and_record("b", 1, 1), fresh);
  EXPECT_EQ(w.check_and_record("c", 1, 1), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 2), fresh);  // a is now the most recently used
  EXPECT_EQ(w.check_and_record("d", 1, 1), fresh);  // evicts b
  EXPECT_EQ(w.origins(), 3u);
  EXPECT_EQ(w.check_and_record("a", 1, 1), duplicate);
  EXPECT_EQ(w.check_and_record("c", 1, 1), duplicate);
  EXPECT_EQ(w.check_and_record("d", 1, 1), duplicate);
  // b was forgotten: its next message counts as fresh (and evicts a, least recent now).
  EXPECT_EQ(w.check_and_record("b", 1, 1), fresh);
  EXPECT_EQ(w.check_and_record("a", 1, 1), fresh);
  EXPECT_EQ(w.origins(), 3u);
}

TEST(origin_window, many_origins_stay_bounded) {
  origin_window w(64, 1024);
  for (int i = 0; i < 1000; ++i) {
    const std::string server = "server-with-a-rather-long-name-" + std::to_string(i);
    ASSERT_EQ(w.check_and_record(server, static_cast<std::uint64_t>(i), 1), fresh);
  }
  EXPECT_EQ(w.origins(), 64u);
  // The 64 most recent are remembered, the rest forgotten.
  for (int i = 936; i < 1000; ++i) {
    EXPECT_EQ(w.check_and_record("server-with-a-rather-long-name-" + std::to_string(i), static_cast<std::uint64_t>(i), 1),
              duplicate)
        << i;
  }
  EXPECT_EQ(w.check_and_record("server-with-a-rather-long-name-0", 0, 1), fresh);
}

TEST(origin_window, memory_grows_with_origins_and_is_bounded) {
  origin_window w(64, 1024);
  const std::size_t empty = w.memory_bytes();
  EXPECT_GE(empty, sizeof(origin_window));
  w.check_and_record("a", 1, 1);
  const std::size_t one = w.memory_bytes();
  EXPECT_GE(one - empty, 1024u / 8);  // at least the bitmap
  for (std::uint64_t i = 0; i < 500; ++i) w.check_and_record("s", i, 1);
  const std::size_t full = w.memory_bytes();
  EXPECT_GE(full, 64 * (1024u / 8));
  EXPECT_LT(full, 64 * 1024u);  // about 200 bytes per origin with a 1024-bit window
}

// ---- hash_window --------------------------------------------------------------------------

TEST(hash_window, records_then_reports_duplicates) {
  hash_window w(4);
  EXPECT_FALSE(w.contains(42));
  EXPECT_FALSE(w.seen_or_record(42));
  EXPECT_TRUE(w.contains(42));
  EXPECT_TRUE(w.seen_or_record(42));
  EXPECT_EQ(w.size(), 1u);
}

TEST(hash_window, contains_does_not_record) {
  hash_window w(4);
  EXPECT_FALSE(w.contains(7));
  EXPECT_FALSE(w.contains(7));
  EXPECT_EQ(w.size(), 0u);
}

TEST(hash_window, evicts_oldest_first) {
  hash_window w(3);
  w.record(1);
  w.record(2);
  w.record(3);
  EXPECT_EQ(w.size(), 3u);
  w.record(4);  // 1 leaves
  EXPECT_FALSE(w.contains(1));
  EXPECT_TRUE(w.contains(2) && w.contains(3) && w.contains(4));
  w.record(5);  // then 2
  EXPECT_FALSE(w.contains(2));
  EXPECT_TRUE(w.contains(3) && w.contains(4) && w.contains(5));
  EXPECT_FALSE(w.seen_or_record(1));  // forgotten: fresh again, evicts 3
  EXPECT_FALSE(w.contains(3));
  EXPECT_EQ(w.size(), 3u);
}

TEST(hash_window, recording_a_held_hash_neither_duplicates_nor_refreshes_it) {
  hash_window w(3);
  w.record(1);
  w.record(2);
  w.record(1);  // no-op
  EXPECT_EQ(w.size(), 2u);
  w.record(3);
  EXPECT_EQ(w.size(), 3u);
  w.record(4);  // 1 is still the oldest: it leaves
  EXPECT_FALSE(w.contains(1));
  EXPECT_TRUE(w.contains(2) && w.contains(3) && w.contains(4));
}

TEST(hash_window, long_run_keeps_exactly_the_last_capacity_hashes) {
  hash_window w(1024);
  for (std::uint64_t h = 0; h < 10'000; ++h) ASSERT_FALSE(w.seen_or_record(h * 0x9e3779b97f4a7c15ull));
  EXPECT_EQ(w.size(), 1024u);
  for (std::uint64_t h = 0; h < 10'000; ++h) {
    ASSERT_EQ(w.contains(h * 0x9e3779b97f4a7c15ull), h >= 10'000 - 1024) << h;
  }
  EXPECT_GT(w.memory_bytes(), 1024u * 8);
}

TEST(hash_window, capacity_one_holds_the_last_hash) {
  hash_window w(1);
  EXPECT_FALSE(w.seen_or_record(1));
  EXPECT_TRUE(w.seen_or_record(1));
  EXPECT_FALSE(w.seen_or_record(2));
  EXPECT_FALSE(w.contains(1));
}

TEST(payload_hash, is_stable_within_the_process_and_keyed) {
  const std::vector<std::uint8_t> a{'h', 'i'};
  const std::vector<std::uint8_t> b{'h', 'o'};
  EXPECT_EQ(payload_hash(a), payload_hash(a));
  EXPECT_NE(payload_hash(a), payload_hash(b));
  // Not the hash under a fixed, guessable key (fails with probability 2^-64).
  std::array<std::uint8_t, 16> counting{};
  std::iota(counting.begin(), counting.end(), std::uint8_t{0});
  EXPECT_NE(payload_hash(a), proto::siphash24(std::array<std::uint8_t, 16>{}, a));
  EXPECT_NE(payload_hash(a), proto::siphash24(counting, a));
}

}  // namespace
}  // namespace mles::hub
