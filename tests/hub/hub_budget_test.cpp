// Tests for the hub's global bounds: the history budget over all channels (--history-total)
// and the channel cap (--max-channels).
#include "hub/hub.hpp"
#include "hub_test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace mles::hub;
using namespace mles::hub::test;
using namespace std::chrono_literals;

namespace {

hub_limits limits(std::size_t total, std::size_t max_channels = 0) {
  hub_limits l;
  l.history_limit = 1000;
  l.history_bytes = 1 << 30;
  l.history_total = total;
  l.max_channels = max_channels;
  return l;
}

// Joins `uid` to `channel`, publishes the messages, and leaves (the channel stays, memberless).
void fill(hub& h, const std::string& channel, const std::vector<std::string>& messages, bool stay = false,
          std::vector<membership>* kept = nullptr, clock::time_point now = clock::now()) {
  boost::system::error_code ec;
  auto m = h.join(channel, "writer", frame_of("j"), std::make_shared<recording_member>(), ec, now);
  ASSERT_FALSE(ec) << ec.message();
  for (const auto& text : messages) h.publish(m, frame_of(text), now);
  if (stay && kept) kept->push_back(m);
  else h.leave(m);
}

std::vector<std::string> history_of(hub& h, const std::string& channel) {
  boost::system::error_code ec;
  auto reader = std::make_shared<recording_member>();
  auto m = h.join(channel, "reader", frame_of("r"), reader, ec);
  EXPECT_FALSE(ec) << ec.message();
  h.leave(m);
  return reader->got;
}

}  // namespace

TEST(hub_budget, counts_frames_and_overheads) {
  hub h(limits(0));
  EXPECT_EQ(h.budget().history_cost, 0u);
  fill(h, "ch", {std::string(1000, 'x')});
  // The join frame "j" and the message, each with the per-message overhead, and the channel.
  EXPECT_EQ(h.budget().history_cost, channel_overhead + 2 + 1 + 1000 + 2 * message_overhead);
}

TEST(hub_budget, unbounded_when_zero) {
  hub h(limits(0));
  for (int i = 0; i < 50; ++i) fill(h, "ch" + std::to_string(i), {std::string(10'000, 'x')});
  EXPECT_EQ(h.channel_count(), 50u);
  EXPECT_EQ(h.budget().evicted_messages, 0u);
}

TEST(hub_budget, forgets_idle_channels_least_recently_active_first) {
  const std::size_t budget = 100'000;
  hub h(limits(budget));
  const auto t0 = clock::now();
  // Ten memberless channels of ~10 KB each: the eleventh goes over the budget.
  for (int i = 0; i < 12; ++i) fill(h, "old" + std::to_string(i), {std::string(9'000, 'x')}, false, nullptr, t0 + i * 1s);
  const auto b = h.budget();
  EXPECT_LE(b.history_cost, budget);
  EXPECT_GT(b.evicted_channels, 0u);
  // The most recent channels survive, the oldest are gone entirely.
  EXPECT_THAT(history_of(h, "old11"), testing::Contains(std::string(9'000, 'x')));
  EXPECT_THAT(history_of(h, "old0"), testing::IsEmpty());
}

TEST(hub_budget, members_channels_lose_their_oldest_messages_after_idle_channels_are_gone) {
  const std::size_t budget = 50'000;
  hub h(limits(budget));
  std::vector<membership> kept;
  const auto t0 = clock::now();
  fill(h, "quiet", {"q1", "q2"}, true, &kept, t0);
  std::vector<std::string> many;
  for (int i = 0; i < 20; ++i) many.push_back(std::to_string(i) + std::string(4'000, 'x'));
  fill(h, "busy", many, true, &kept, t0 + 1s);
  EXPECT_LE(h.budget().history_cost, budget);
  EXPECT_GT(h.budget().evicted_messages, 0u);
  // The least recently active channel lost its history first; the busy one keeps its newest.
  EXPECT_THAT(history_of(h, "quiet"), testing::IsEmpty());
  const auto busy = history_of(h, "busy");
  ASSERT_FALSE(busy.empty());
  EXPECT_EQ(busy.back(), many.back());
  EXPECT_EQ(h.channel_count(), 2u);  // channels with members are never removed
  for (auto& m : kept) h.leave(m);
}

TEST(hub_budget, a_single_channel_over_the_budget_keeps_its_newest_messages) {
  hub h(limits(40'000));
  std::vector<membership> kept;
  std::vector<std::string> many;
  for (int i = 0; i < 100; ++i) many.push_back(std::to_string(i) + std::string(1'000, 'y'));
  fill(h, "only", many, true, &kept);
  const auto got = history_of(h, "only");
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), many.back());
  EXPECT_LT(got.size(), many.size());
  EXPECT_LE(h.budget().history_cost, 40'000u);
  for (auto& m : kept) h.leave(m);
}

TEST(hub_budget, channel_cap_makes_room_by_forgetting_idle_channels) {
  hub h(limits(0, 4));
  const auto t0 = clock::now();
  for (int i = 0; i < 4; ++i) fill(h, "c" + std::to_string(i), {"m"}, false, nullptr, t0 + i * 1s);
  EXPECT_EQ(h.channel_count(), 4u);
  fill(h, "new", {"n"}, false, nullptr, t0 + 10s);
  EXPECT_LE(h.channel_count(), 4u);
  EXPECT_EQ(h.budget().capped_channels, 1u);
  EXPECT_EQ(h.budget().refused_channels, 0u);
  EXPECT_THAT(history_of(h, "c3"), testing::Contains("m"));  // the oldest went, not the newest
}

TEST(hub_budget, channel_cap_refuses_when_every_channel_has_members) {
  hub h(limits(0, 3));
  std::vector<membership> kept;
  for (int i = 0; i < 3; ++i) fill(h, "c" + std::to_string(i), {"m"}, true, &kept);
  boost::system::error_code ec;
  auto m = h.join("c3", "someone", frame_of("j"), std::make_shared<recording_member>(), ec);
  EXPECT_EQ(ec, mles::proto::errc::too_many_channels);
  EXPECT_FALSE(m);
  EXPECT_EQ(h.budget().refused_channels, 1u);
  // Joining an existing channel still works at the cap.
  auto other = std::make_shared<recording_member>();
  auto j = h.join("c0", "second", frame_of("j2"), other, ec);
  EXPECT_FALSE(ec);
  h.leave(j);
  // Once a channel has no members it can make room.
  h.leave(kept[1]);
  m = h.join("c3", "someone", frame_of("j"), std::make_shared<recording_member>(), ec);
  EXPECT_FALSE(ec);
  h.leave(m);
  h.leave(kept[0]);
  h.leave(kept[2]);
}

TEST(hub_budget, restore_stops_at_the_channel_cap) {
  hub h(limits(0, 2));
  const std::vector<message> msgs{message{frame_of("z"), nullptr, 0, 0}};
  EXPECT_TRUE(h.restore("a", msgs, clock::now()));
  EXPECT_TRUE(h.restore("b", msgs, clock::now()));
  EXPECT_FALSE(h.restore("c", msgs, clock::now()));
  EXPECT_EQ(h.channel_count(), 2u);
}

TEST(hub_budget, restore_respects_the_budget) {
  hub h(limits(20'000));
  std::vector<message> msgs;
  for (int i = 0; i < 10; ++i) msgs.push_back(message{frame_of(std::string(3'000, 'z')), nullptr, 0, 0});
  const auto t0 = clock::now();
  EXPECT_TRUE(h.restore("a", msgs, t0));
  EXPECT_TRUE(h.restore("b", msgs, t0 + 1s));
  EXPECT_LE(h.budget().history_cost, 20'000u);
  EXPECT_GT(h.budget().evicted_messages, 0u);
}

TEST(hub_budget, expire_returns_the_cost) {
  hub h(limits(0));
  const auto t0 = clock::now();
  fill(h, "ch", {std::string(5'000, 'x')}, false, nullptr, t0);
  EXPECT_GT(h.budget().history_cost, 5'000u);
  EXPECT_EQ(h.expire(t0 + 2h, 1h), 1u);
  EXPECT_EQ(h.budget().history_cost, 0u);
}

TEST(hub_budget, one_thread_mode_keeps_the_same_bounds) {
  hub_limits l = limits(30'000, 8);
  l.one_thread = true;
  hub h(l);
  for (int i = 0; i < 40; ++i) fill(h, "c" + std::to_string(i), {std::string(2'000, 'x')});
  EXPECT_LE(h.channel_count(), 8u);
  EXPECT_LE(h.budget().history_cost, 30'000u);
}
