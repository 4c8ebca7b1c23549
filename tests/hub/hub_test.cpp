// Tests for the hub: membership, history replay and limits, fan-out, expiry.
#include "hub/hub.hpp"
#include "hub_test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

using namespace mles::hub;
using namespace mles::hub::test;
using namespace std::chrono_literals;

namespace {

membership join(hub& h, std::string_view ch, std::string_view uid, std::shared_ptr<recording_member> m,
                boost::system::error_code& ec) {
  return h.join(ch, uid, frame_of(std::string("join:") + std::string(uid)), std::move(m), ec);
}

}  // namespace

TEST(hub, replays_history_oldest_first_then_stores_the_join_frame) {
  hub h({200, 1 << 20});
  auto alice = std::make_shared<recording_member>();
  boost::system::error_code ec;
  auto a = join(h, "ch", "alice", alice, ec);
  ASSERT_FALSE(ec);
  h.publish(a, frame_of("one"));
  h.publish(a, frame_of("two"));

  auto bob = std::make_shared<recording_member>();
  auto b = join(h, "ch", "bob", bob, ec);
  ASSERT_FALSE(ec);
  EXPECT_THAT(bob->received(), testing::ElementsAre("join:alice", "one", "two"));
  EXPECT_THAT(bob->kinds, testing::Each(delivery_kind::history));
  // The newcomer's join frame is not sent to members already present...
  EXPECT_TRUE(alice->received().empty());
  // ...but is in the history for the next one.
  auto carol = std::make_shared<recording_member>();
  join(h, "ch", "carol", carol, ec);
  EXPECT_THAT(carol->received(), testing::ElementsAre("join:alice", "one", "two", "join:bob"));
}

TEST(hub, forwards_to_every_other_member_never_back_to_the_sender) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  auto m1 = std::make_shared<recording_member>(), m2 = std::make_shared<recording_member>(),
       m3 = std::make_shared<recording_member>();
  auto a = join(h, "ch", "a", m1, ec);
  join(h, "ch", "b", m2, ec);
  join(h, "ch", "c", m3, ec);
  m2->got.clear();
  m3->got.clear();
  h.publish(a, frame_of("hi"));
  EXPECT_TRUE(m1->received().empty());
  EXPECT_THAT(m2->received(), testing::ElementsAre("hi"));
  EXPECT_THAT(m3->received(), testing::ElementsAre("hi"));
  EXPECT_EQ(m2->kinds.back(), delivery_kind::live);
}

TEST(hub, refuses_a_second_session_of_the_same_uid_on_a_channel) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  auto first = std::make_shared<recording_member>();
  auto a = join(h, "ch", "alice", first, ec);
  ASSERT_FALSE(ec);
  auto second = std::make_shared<recording_member>();
  auto dup = join(h, "ch", "alice", second, ec);
  EXPECT_EQ(ec, mles::proto::errc::duplicate_uid);
  EXPECT_FALSE(dup);
  EXPECT_TRUE(second->received().empty());  // no history given to a refused join
  // Same uid on another channel is fine; after leaving, the uid may rejoin.
  auto other = join(h, "other", "alice", std::make_shared<recording_member>(), ec);
  EXPECT_FALSE(ec);
  h.leave(a);
  auto again = join(h, "ch", "alice", std::make_shared<recording_member>(), ec);
  EXPECT_FALSE(ec);
  // The refused join stored nothing: history holds one join frame per accepted join.
  auto probe = std::make_shared<recording_member>();
  join(h, "ch", "probe", probe, ec);
  EXPECT_THAT(probe->received(), testing::ElementsAre("join:alice", "join:alice"));
}

TEST(hub, history_keeps_the_last_limit_frames) {
  hub h({3, 1 << 20});
  boost::system::error_code ec;
  auto a = join(h, "ch", "a", std::make_shared<recording_member>(), ec);
  for (int i = 0; i < 10; ++i) h.publish(a, frame_of(std::to_string(i)));
  auto late = std::make_shared<recording_member>();
  join(h, "ch", "late", late, ec);
  EXPECT_THAT(late->received(), testing::ElementsAre("7", "8", "9"));
}

TEST(hub, history_is_bounded_by_bytes_but_keeps_the_newest_frame) {
  hub h({200, 10});
  boost::system::error_code ec;
  auto a = join(h, "ch", "a", std::make_shared<recording_member>(), ec);
  h.publish(a, frame_of("aaaa"));
  h.publish(a, frame_of("bbbb"));
  h.publish(a, frame_of("cccc"));
  auto late = std::make_shared<recording_member>();
  join(h, "ch", "late", late, ec);
  EXPECT_THAT(late->received(), testing::ElementsAre("bbbb", "cccc"));
  h.publish(a, frame_of(std::string(50, 'x')));
  auto later = std::make_shared<recording_member>();
  join(h, "ch", "later", later, ec);
  EXPECT_THAT(later->received(), testing::ElementsAre(std::string(50, 'x')));
}

TEST(hub, channels_are_independent) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  auto x = std::make_shared<recording_member>(), y = std::make_shared<recording_member>();
  auto a = join(h, "one", "a", std::make_shared<recording_member>(), ec);
  join(h, "one", "x", x, ec);
  join(h, "two", "y", y, ec);
  h.publish(a, frame_of("for one"));
  EXPECT_THAT(x->received(), testing::Contains("for one"));
  EXPECT_THAT(y->received(), testing::Not(testing::Contains("for one")));
}

TEST(hub, history_outlives_members_and_idle_channels_expire) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  const auto t0 = clock::now();
  auto a = h.join("ch", "a", frame_of("join:a"), std::make_shared<recording_member>(), ec, t0);
  h.publish(a, frame_of("kept"), t0);
  h.leave(a);
  EXPECT_EQ(h.channel_count(), 1u);
  EXPECT_EQ(h.expire(t0 + 24h, 30 * 24h), 0u);
  auto b = std::make_shared<recording_member>();
  auto mb = h.join("ch", "b", frame_of("join:b"), b, ec, t0 + 24h);
  EXPECT_THAT(b->received(), testing::ElementsAre("join:a", "kept"));
  h.leave(mb);
  // 30 days without traffic: forgotten.
  EXPECT_EQ(h.expire(t0 + 24h + 30 * 24h, 30 * 24h), 1u);
  EXPECT_EQ(h.channel_count(), 0u);
  auto c = std::make_shared<recording_member>();
  h.join("ch", "c", frame_of("join:c"), c, ec, t0 + 32 * 24h);
  EXPECT_TRUE(c->received().empty());
}

TEST(hub, idle_channel_with_members_loses_history_but_keeps_members) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  const auto t0 = clock::now();
  auto am = std::make_shared<recording_member>();
  auto a = h.join("ch", "a", frame_of("join:a"), am, ec, t0);
  EXPECT_EQ(h.expire(t0 + 31 * 24h, 30 * 24h), 0u);
  auto b = std::make_shared<recording_member>();
  auto mb = h.join("ch", "b", frame_of("join:b"), b, ec, t0 + 31 * 24h);
  EXPECT_TRUE(b->received().empty());
  h.publish(mb, frame_of("still here"));
  EXPECT_THAT(am->received(), testing::ElementsAre("still here"));
}

TEST(hub, concurrent_publishers_keep_per_sender_order) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  auto sink = std::make_shared<recording_member>();
  join(h, "ch", "sink", sink, ec);
  constexpr int senders = 4, per_sender = 2000;
  std::vector<membership> ms;
  for (int s = 0; s < senders; ++s)
    ms.push_back(join(h, "ch", "s" + std::to_string(s), std::make_shared<recording_member>(), ec));
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s)
    threads.emplace_back([&, s] {
      for (int i = 0; i < per_sender; ++i) h.publish(ms[s], frame_of(std::to_string(s) + ":" + std::to_string(i)));
    });
  for (auto& t : threads) t.join();
  std::vector<int> next(senders, 0);
  for (const auto& m : sink->received()) {
    const int s = std::stoi(m.substr(0, m.find(':')));
    const int i = std::stoi(m.substr(m.find(':') + 1));
    ASSERT_EQ(i, next[s]) << "sender " << s << " out of order";
    ++next[s];
  }
  for (int s = 0; s < senders; ++s) EXPECT_EQ(next[s], per_sender);
}

TEST(hub, one_thread_mode_behaves_the_same_without_channel_locks) {
  hub h({2, 1 << 20, /*one_thread=*/true});
  boost::system::error_code ec;
  auto a = std::make_shared<recording_member>();
  auto ma = join(h, "ch", "a", a, ec);
  auto b = std::make_shared<recording_member>();
  auto mb = join(h, "ch", "b", b, ec);
  h.publish(ma, frame_of("x"));
  h.publish(mb, frame_of("y"));
  EXPECT_THAT(b->received(), testing::ElementsAre("join:a", "x"));
  EXPECT_THAT(a->received(), testing::ElementsAre("y"));
  join(h, "ch", "b", std::make_shared<recording_member>(), ec);
  EXPECT_EQ(ec, mles::proto::errc::duplicate_uid);
  h.leave(mb);
  auto c = std::make_shared<recording_member>();
  join(h, "ch", "c", c, ec);
  EXPECT_THAT(c->received(), testing::ElementsAre("x", "y"));  // limit 2
}

// ---------------------------------------------------------------- links between servers

namespace {

// Records when channels gain their first and lose their last client.
struct recording_observer final : interest_observer {
  void on_interest(const std::string& channel, bool has_clients) override {
    events.push_back(channel + (has_clients ? ":on" : ":off"));
  }
  std::vector<std::string> events;
};

message from_peer(std::string_view text, const origin_ptr& o, std::uint64_t seq, std::uint8_t flags = 0) {
  return message{frame_of(text), o, seq & max_sequence, flags};
}

}  // namespace

TEST(hub, stamps_local_messages_with_this_server_and_a_per_channel_sequence) {
  hub h({200, 1 << 20}, origin{"a.example:443", 7});
  boost::system::error_code ec;
  auto link = std::make_shared<recording_relay>();
  h.join("ch", {}, {}, link, ec, clock::now(), member_role::peer_link);
  auto m = join(h, "ch", "alice", std::make_shared<recording_member>(), ec);
  h.publish(m, frame_of("one"));
  h.publish(m, frame_of("two"));
  ASSERT_EQ(link->got.size(), 3u);
  // The join goes to links as history-only (flag join), then the messages, numbered in order.
  EXPECT_EQ(link->got[0].text, "join:alice");
  EXPECT_EQ(link->got[0].flags & message_flags::join, message_flags::join);
  EXPECT_EQ(link->got[1].text, "one");
  EXPECT_EQ(link->got[2].text, "two");
  for (const auto& g : link->got) EXPECT_EQ(g.server, "(self)");  // no origin: this server
  EXPECT_LT(link->got[0].seq, link->got[1].seq);
  EXPECT_LT(link->got[1].seq, link->got[2].seq);
}

TEST(hub, a_message_from_a_link_reaches_members_and_other_links_never_back) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto l1 = std::make_shared<recording_relay>(), l2 = std::make_shared<recording_relay>();
  auto m1 = h.join("ch", {}, {}, l1, ec, clock::now(), member_role::peer_link);
  h.join("ch", {}, {}, l2, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  join(h, "ch", "alice", alice, ec);
  l1->got.clear();
  l2->got.clear();
  auto b = std::make_shared<const origin>(origin{"b", 9});
  EXPECT_EQ(h.publish(m1, from_peer("hello", b, 1)), publish_result::delivered);
  EXPECT_THAT(alice->received(), testing::ElementsAre("hello"));
  EXPECT_TRUE(l1->got.empty());
  ASSERT_EQ(l2->got.size(), 1u);
  EXPECT_EQ(l2->got[0].server, "b");  // the origin travels on unchanged
  EXPECT_EQ(l2->got[0].seq, 1u);
}

TEST(hub, drops_a_message_that_arrives_twice_over_two_paths) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto l1 = std::make_shared<recording_relay>(), l2 = std::make_shared<recording_relay>();
  auto m1 = h.join("ch", {}, {}, l1, ec, clock::now(), member_role::peer_link);
  auto m2 = h.join("ch", {}, {}, l2, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  join(h, "ch", "alice", alice, ec);
  auto b = std::make_shared<const origin>(origin{"b", 9});
  auto c = std::make_shared<const origin>(origin{"c", 3});
  EXPECT_EQ(h.publish(m1, from_peer("x1", b, 1)), publish_result::delivered);
  EXPECT_EQ(h.publish(m2, from_peer("x1", b, 1)), publish_result::duplicate);
  // Reordered across paths: 3 before 2 is still delivered once each.
  EXPECT_EQ(h.publish(m2, from_peer("x3", b, 3)), publish_result::delivered);
  EXPECT_EQ(h.publish(m1, from_peer("x2", b, 2)), publish_result::delivered);
  EXPECT_EQ(h.publish(m1, from_peer("x3", b, 3)), publish_result::duplicate);
  // Identical payloads from another origin are different messages.
  EXPECT_EQ(h.publish(m1, from_peer("x1", c, 1)), publish_result::delivered);
  // Our own message come back is dropped.
  EXPECT_EQ(h.publish(m2, from_peer("mine", h.self(), 1)), publish_result::own);
  EXPECT_THAT(alice->received(), testing::ElementsAre("x1", "x3", "x2", "x1"));
  // A restarted peer (new instance) numbers from 1 again: new messages.
  auto b2 = std::make_shared<const origin>(origin{"b", 10});
  EXPECT_EQ(h.publish(m1, from_peer("after restart", b2, 1)), publish_result::delivered);
}

TEST(hub, a_reference_link_puts_the_channel_in_hash_mode) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto ref = std::make_shared<recording_relay>();
  auto mr = h.join("ch", {}, {}, ref, ec, clock::now(), member_role::reference_link);
  auto peer = std::make_shared<recording_relay>();
  auto mp = h.join("ch", {}, {}, peer, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  auto ma = join(h, "ch", "alice", alice, ec);
  auto bob = std::make_shared<recording_member>();
  join(h, "ch", "bob", bob, ec);
  bob->got.clear();
  // alice's message goes out to the reference server and comes back over it: dropped by hash.
  EXPECT_EQ(h.publish(ma, frame_of("hi")), publish_result::delivered);
  EXPECT_EQ(h.publish(mr, frame_of("hi")), publish_result::duplicate);
  // A message first seen from the reference link is marked hashed for peer links.
  EXPECT_EQ(h.publish(mr, frame_of("from ref")), publish_result::delivered);
  ASSERT_FALSE(peer->got.empty());
  EXPECT_EQ(peer->got.back().text, "from ref");
  EXPECT_EQ(peer->got.back().flags & message_flags::hashed, message_flags::hashed);
  // ...and the same payload arriving from a peer with another origin is a duplicate.
  auto b = std::make_shared<const origin>(origin{"b", 2});
  EXPECT_EQ(h.publish(mp, from_peer("from ref", b, 5, message_flags::hashed)), publish_result::duplicate);
  EXPECT_THAT(bob->received(), testing::ElementsAre("hi", "from ref"));
  // The trade-off: the same payload again inside the window counts as one.
  EXPECT_EQ(h.publish(ma, frame_of("hi")), publish_result::duplicate);
}

TEST(hub, joins_from_links_are_history_only) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto link = std::make_shared<recording_relay>();
  auto ml = h.join("ch", {}, {}, link, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  join(h, "ch", "alice", alice, ec);
  auto b = std::make_shared<const origin>(origin{"b", 2});
  h.publish(ml, from_peer("join:remote", b, 1, message_flags::join));
  EXPECT_TRUE(alice->received().empty());
  auto late = std::make_shared<recording_member>();
  join(h, "ch", "late", late, ec);
  EXPECT_THAT(late->received(), testing::ElementsAre("join:alice", "join:remote"));
}

TEST(hub, a_peer_session_gets_the_history_with_origins_and_its_join_is_not_stored) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto m = join(h, "ch", "alice", std::make_shared<recording_member>(), ec);
  h.publish(m, frame_of("one"));
  auto peer = std::make_shared<recording_relay>();
  auto mp = h.join("ch", "mles-peer:b", frame_of("join:peer"), peer, ec, clock::now(), member_role::peer_session);
  ASSERT_FALSE(ec);
  EXPECT_THAT(peer->texts(), testing::ElementsAre("join:alice", "one"));
  for (const auto& g : peer->got) {
    EXPECT_EQ(g.kind, delivery_kind::history);
    EXPECT_EQ(g.server, "(self)");
  }
  auto late = std::make_shared<recording_member>();
  join(h, "ch", "late", late, ec);
  EXPECT_THAT(late->received(), testing::ElementsAre("join:alice", "one"));
  // The peer's uid is taken while its session is joined.
  h.join("ch", "mles-peer:b", frame_of("x"), std::make_shared<recording_relay>(), ec, clock::now(),
         member_role::peer_session);
  EXPECT_EQ(ec, mles::proto::errc::duplicate_uid);
  h.leave(mp);
}

TEST(hub, tells_the_observer_when_a_channel_gains_its_first_and_loses_its_last_client) {
  hub h({200, 1 << 20}, origin{"a", 1});
  recording_observer obs;
  h.set_observer(&obs);
  boost::system::error_code ec;
  // Links and peer sessions are not local interest.
  auto ml = h.join("ch", {}, {}, std::make_shared<recording_relay>(), ec, clock::now(), member_role::peer_link);
  auto mp = h.join("ch", "mles-peer:b", frame_of("j"), std::make_shared<recording_relay>(), ec, clock::now(),
                   member_role::peer_session);
  EXPECT_TRUE(obs.events.empty());
  auto a = join(h, "ch", "a", std::make_shared<recording_member>(), ec);
  auto b = join(h, "ch", "b", std::make_shared<recording_member>(), ec);
  h.leave(a);
  EXPECT_THAT(obs.events, testing::ElementsAre("ch:on"));
  h.leave(b);
  EXPECT_THAT(obs.events, testing::ElementsAre("ch:on", "ch:off"));
  EXPECT_THAT(h.channels_with_clients(), testing::IsEmpty());
  auto c = join(h, "ch", "c", std::make_shared<recording_member>(), ec);
  EXPECT_THAT(h.channels_with_clients(), testing::ElementsAre("ch"));
  h.leave(ml);
  h.leave(mp);
  h.leave(c);
  EXPECT_THAT(obs.events, testing::ElementsAre("ch:on", "ch:off", "ch:on", "ch:off"));
}

// ---------------------------------------------------------------- durable history

TEST(hub, restored_history_is_served_to_newcomers_and_not_delivered_twice_by_a_peer) {
  hub h({200, 1 << 20}, origin{"a", 2});
  auto old_run = std::make_shared<const origin>(origin{"a", 1});  // this server, before a restart
  auto b = std::make_shared<const origin>(origin{"b", 7});
  h.restore("ch", {message{frame_of("join:x"), old_run, 1, message_flags::join}, message{frame_of("one"), old_run, 2, 0},
                   message{frame_of("from b"), b, 1, 0}},
            clock::now());
  boost::system::error_code ec;
  auto link = std::make_shared<recording_relay>();
  auto ml = h.join("ch", {}, {}, link, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  join(h, "ch", "alice", alice, ec);
  EXPECT_THAT(alice->received(), testing::ElementsAre("join:x", "one", "from b"));
  alice->got.clear();
  // A peer replays the same messages at resynchronisation: all known.
  EXPECT_EQ(h.publish(ml, message{frame_of("one"), old_run, 2, 0}), publish_result::duplicate);
  EXPECT_EQ(h.publish(ml, message{frame_of("from b"), b, 1, 0}), publish_result::duplicate);
  EXPECT_EQ(h.publish(ml, message{frame_of("new from b"), b, 2, 0}), publish_result::delivered);
  EXPECT_THAT(alice->received(), testing::ElementsAre("new from b"));
}

TEST(hub, replay_relays_the_history_to_one_link_only) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto m = join(h, "ch", "alice", std::make_shared<recording_member>(), ec);
  h.publish(m, frame_of("one"));
  auto l1 = std::make_shared<recording_relay>(), l2 = std::make_shared<recording_relay>();
  auto m1 = h.join("ch", {}, {}, l1, ec, clock::now(), member_role::peer_link);
  h.join("ch", {}, {}, l2, ec, clock::now(), member_role::peer_link);
  h.replay(m1);
  EXPECT_THAT(l1->texts(), testing::ElementsAre("join:alice", "one"));
  for (const auto& g : l1->got) EXPECT_EQ(g.kind, delivery_kind::history);
  EXPECT_TRUE(l2->got.empty());
}

namespace {

// A durable store that records what it is told and what it collects.
struct recording_store final : history_store {
  void forget(const std::string& channel) override { forgotten.push_back(channel); }
  bool durable_before_forward() const noexcept override { return false; }
  void append(const std::string&, const message&) override { ADD_FAILURE() << "only with --history-sync 0"; }
  void append_durable(const std::string&, const message&, std::function<void(bool)> done) override { done(true); }
  void collect(hub& h) {
    h.collect([&](const std::string& channel, std::vector<message>&& added) {
      for (const auto& m : added) collected.push_back(channel + ":" + text_of(m.frame));
    });
  }
  std::vector<std::string> collected, forgotten;
};

}  // namespace

TEST(hub, the_durable_store_collects_what_changed_once_and_hears_of_forgotten_channels) {
  hub h({3, 1 << 20}, origin{"a", 1});
  recording_store store;
  h.set_history_store(&store);
  boost::system::error_code ec;
  const auto t0 = clock::now();
  auto m = h.join("ch", "alice", frame_of("join:alice"), std::make_shared<recording_member>(), ec, t0);
  h.publish(m, frame_of("one"), t0);
  h.publish(m, message{frame_of("kept already"), nullptr, 0, 0}, t0, persisted::already);  // --history-sync 0
  auto link = std::make_shared<recording_relay>();
  auto ml = h.join("ch", {}, {}, link, ec, t0, member_role::peer_link);
  auto b = std::make_shared<const origin>(origin{"b", 1});
  h.publish(ml, message{frame_of("from b"), b, 1, 0}, t0);
  h.publish(ml, message{frame_of("from b"), b, 1, 0}, t0);  // duplicate: not stored
  store.collect(h);
  // The history keeps 3: "join:alice" left the ring before it was collected (past the bounds
  // on disk too); "kept already" is in the store already.
  EXPECT_THAT(store.collected, testing::ElementsAre("ch:one", "ch:from b"));
  store.collect(h);
  EXPECT_EQ(store.collected.size(), 2u);  // nothing changed since
  h.publish(m, frame_of("two"), t0);
  h.join("other", "bob", frame_of("join:bob"), std::make_shared<recording_member>(), ec, t0);
  store.collect(h);
  EXPECT_THAT(store.collected, testing::ElementsAre("ch:one", "ch:from b", "ch:two", "other:join:bob"));
  h.leave(m);
  h.leave(ml);
  h.expire(t0 + 31 * 24h, 30 * 24h);
  EXPECT_THAT(store.forgotten, testing::UnorderedElementsAre("ch", "other"));
}

TEST(hub, a_sequence_taken_before_the_disk_is_the_one_the_message_carries) {
  hub h({200, 1 << 20}, origin{"a", 1});
  boost::system::error_code ec;
  auto link = std::make_shared<recording_relay>();
  h.join("ch", {}, {}, link, ec, clock::now(), member_role::peer_link);
  auto m = join(h, "ch", "alice", std::make_shared<recording_member>(), ec);
  const auto seq = h.next_sequence(m);  // --history-sync 0: numbered, stored, then published
  h.publish(m, frame_of("later"));
  h.publish(m, message{frame_of("durable"), nullptr, seq & max_sequence, 0}, clock::now(), persisted::already);
  ASSERT_EQ(link->got.size(), 3u);  // join, "later", "durable"
  EXPECT_EQ(link->got[2].seq, seq);
  EXPECT_EQ(link->got[1].seq, seq + 1);
}

// Metrics: publish reports its number of recipients; the histories' totals are summed.
TEST(hub, publish_reports_recipients_and_history_totals_add_up) {
  hub h({200, 1 << 20});
  boost::system::error_code ec;
  auto m1 = std::make_shared<recording_member>(), m2 = std::make_shared<recording_member>(),
       m3 = std::make_shared<recording_member>();
  auto a = join(h, "ch", "a", m1, ec);
  join(h, "ch", "b", m2, ec);
  join(h, "ch", "c", m3, ec);
  auto lone = join(h, "other", "d", std::make_shared<recording_member>(), ec);
  std::size_t recipients = 99;
  h.publish(a, message{frame_of("hello"), nullptr, 0, 0}, clock::now(), persisted::no, &recipients);
  EXPECT_EQ(recipients, 2u);
  h.publish(lone, message{frame_of("x"), nullptr, 0, 0}, clock::now(), persisted::no, &recipients);
  EXPECT_EQ(recipients, 0u);
  const auto held = h.history_held();
  EXPECT_EQ(held.messages, 3u + 1u + 2u);  // four joins, two messages
  EXPECT_EQ(held.bytes, std::string("join:a").size() * 4 + 5 + 1);
}

// Cluster mode: the store's history replaces a stale one while nobody is there, and only
// fills what members missed once they are.
TEST(hub, reload_replaces_the_history_of_a_channel_without_clients) {
  hub h({200, 1 << 20}, origin{"a", 5});
  boost::system::error_code ec;
  auto alice = std::make_shared<recording_member>();
  auto ma = join(h, "ch", "alice", alice, ec);
  h.publish(ma, frame_of("stale"));  // ours, sequence 2 (the join was 1)
  h.leave(ma);
  auto cluster = std::make_shared<recording_relay>();
  auto mc = h.join("ch", {}, {}, cluster, ec, clock::now(), member_role::peer_link);
  auto b = std::make_shared<const origin>(origin{"b", 7});
  auto self = h.self();
  EXPECT_EQ(h.reload(mc, {message{frame_of("join:bob"), b, 1, message_flags::join}, message{frame_of("b1"), b, 2, 0},
                          message{frame_of("mine"), self, 7, 0}, message{frame_of("b1"), b, 2, 0}}),
            3u);
  EXPECT_TRUE(cluster->got.empty());  // nothing goes back to the store
  auto carol = std::make_shared<recording_member>();
  auto mcarol = join(h, "ch", "carol", carol, ec);
  EXPECT_THAT(carol->received(), testing::ElementsAre("join:bob", "b1", "mine"));
  // Our own message from the store is ours again: the next one continues its numbering, and
  // the store's copy of a message from b is not delivered again.
  EXPECT_EQ(h.publish(mc, message{frame_of("b1"), b, 2, 0}), publish_result::duplicate);
  cluster->got.clear();
  h.publish(mcarol, frame_of("next"));
  ASSERT_EQ(cluster->got.size(), 1u);
  EXPECT_GT(cluster->got[0].seq, 7u);
}

TEST(hub, reload_delivers_only_what_present_members_missed) {
  hub h({200, 1 << 20}, origin{"a", 5});
  boost::system::error_code ec;
  auto cluster = std::make_shared<recording_relay>();
  auto mc = h.join("ch", {}, {}, cluster, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  join(h, "ch", "alice", alice, ec);
  auto b = std::make_shared<const origin>(origin{"b", 7});
  EXPECT_EQ(h.publish(mc, from_peer("b1", b, 1)), publish_result::delivered);
  EXPECT_EQ(h.publish(mc, from_peer("b3", b, 3)), publish_result::delivered);
  EXPECT_EQ(h.reload(mc, {from_peer("b1", b, 1), from_peer("b2", b, 2), from_peer("b3", b, 3)}), 1u);
  EXPECT_THAT(alice->received(), testing::ElementsAre("b1", "b3", "b2"));
  auto carol = std::make_shared<recording_member>();
  join(h, "ch", "carol", carol, ec);
  EXPECT_THAT(carol->received(), testing::ElementsAre("join:alice", "b1", "b3", "b2"));
}

TEST(hub, with_a_sequence_floor_a_channel_made_again_never_reuses_its_sequences) {
  hub_limits limits{200, 1 << 20};
  limits.sequence_floor = true;
  hub h(limits, origin{"a", 5});
  boost::system::error_code ec;
  auto link = std::make_shared<recording_relay>();
  auto ml = h.join("ch", {}, {}, link, ec, clock::now(), member_role::peer_link);
  auto alice = std::make_shared<recording_member>();
  auto ma = join(h, "ch", "alice", alice, ec);
  h.publish(ma, frame_of("one"));
  h.publish(ma, frame_of("two"));
  ASSERT_EQ(link->got.size(), 3u);  // the join, then two messages, consecutive
  const std::uint64_t first = link->got[0].seq;
  EXPECT_EQ(link->got[1].seq, first + 1);
  EXPECT_EQ(link->got[2].seq, first + 2);
  h.leave(ma);
  h.leave(ml);
  // Forgotten (idle), then joined again: numbering starts above everything used before.
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(h.expire(clock::now() + 1h, 1min), 1u);
  auto link2 = std::make_shared<recording_relay>();
  h.join("ch", {}, {}, link2, ec, clock::now(), member_role::peer_link);
  join(h, "ch", "alice", alice, ec);
  ASSERT_EQ(link2->got.size(), 1u);
  EXPECT_GT(link2->got[0].seq, first + 2);
}
