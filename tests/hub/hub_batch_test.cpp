// Tests for the hub's batched fan-out (publish_batched / end_batch): a burst of one client's
// messages reaches each other member as one frame, and nothing anyone sees changes order,
// goes missing or comes twice.
#include "hub/hub.hpp"
#include "hub_test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

using namespace mles::hub;
using namespace mles::hub::test;

namespace {

struct fixture {
  hub h{hub_limits{200, 1 << 20}};
  boost::system::error_code ec;
  membership join(std::string_view uid, std::shared_ptr<member> m) {
    auto ms = h.join("ch", uid, frame_of(std::string("join:") + std::string(uid)), std::move(m), ec);
    EXPECT_FALSE(ec);
    return ms;
  }
};

}  // namespace

TEST(hub_batch, a_burst_reaches_each_other_member_as_one_frame_at_the_end_of_the_batch) {
  fixture f;
  auto alice = std::make_shared<recording_member>(), bob = std::make_shared<recording_member>(),
       carol = std::make_shared<recording_member>();
  auto a = f.join("alice", alice);
  f.join("bob", bob);
  f.join("carol", carol);
  bob->got.clear();
  carol->got.clear();
  std::size_t recipients = 0;
  f.h.publish_batched(a, frame_of("one|"), clock::now(), &recipients);
  EXPECT_EQ(recipients, 2u);
  f.h.publish_batched(a, frame_of("two|"), clock::now());
  f.h.publish_batched(a, frame_of("three"), clock::now());
  EXPECT_TRUE(bob->received().empty());  // waits for the end of the batch
  f.h.end_batch(a);
  EXPECT_THAT(bob->received(), testing::ElementsAre("one|two|three"));
  EXPECT_THAT(carol->received(), testing::ElementsAre("one|two|three"));
  // Several loops may deliver a batch: it takes the recipients' locked queue.
  EXPECT_EQ(bob->kinds.back(), delivery_kind::relayed);
  EXPECT_TRUE(alice->received().empty());  // never back to the sender
  // The history keeps every message on its own.
  auto dave = std::make_shared<recording_member>();
  f.join("dave", dave);
  EXPECT_THAT(dave->received(), testing::ElementsAre("join:alice", "join:bob", "join:carol", "one|", "two|", "three"));
  // Nothing is left to deliver twice.
  f.h.end_batch(a);
  EXPECT_EQ(bob->received().size(), 1u);
}

TEST(hub_batch, a_single_message_goes_as_it_is_and_links_get_every_message_at_once) {
  fixture f;
  auto link = std::make_shared<recording_relay>();
  f.h.join("ch", {}, {}, link, f.ec, clock::now(), member_role::peer_link);
  auto bob = std::make_shared<recording_member>();
  auto a = f.join("alice", std::make_shared<recording_member>());
  f.join("bob", bob);
  link->got.clear();
  bob->got.clear();
  f.h.publish_batched(a, frame_of("x"), clock::now());
  f.h.publish_batched(a, frame_of("y"), clock::now());
  EXPECT_THAT(link->texts(), testing::ElementsAre("x", "y"));  // relays are not batched
  f.h.end_batch(a);
  EXPECT_THAT(bob->received(), testing::ElementsAre("xy"));
  f.h.publish_batched(a, frame_of("z"), clock::now());
  f.h.end_batch(a);
  EXPECT_THAT(bob->received(), testing::ElementsAre("xy", "z"));
}

TEST(hub_batch, a_join_leave_or_other_sender_delivers_the_pending_batch_first) {
  fixture f;
  auto alice = std::make_shared<recording_member>(), bob = std::make_shared<recording_member>(),
       carol = std::make_shared<recording_member>();
  auto a = f.join("alice", alice);
  auto b = f.join("bob", bob);
  f.join("carol", carol);
  bob->got.clear();
  carol->got.clear();
  alice->got.clear();
  // Another member's message: alice's batch goes out before it.
  f.h.publish_batched(a, frame_of("a1"), clock::now());
  f.h.publish_batched(a, frame_of("a2"), clock::now());
  f.h.publish(b, frame_of("b1"));
  EXPECT_THAT(carol->received(), testing::ElementsAre("a1a2", "b1"));
  EXPECT_THAT(alice->received(), testing::ElementsAre("b1"));
  // A join: the members present get the batch; the newcomer finds it in the history, once.
  f.h.publish_batched(a, frame_of("a3"), clock::now());
  auto dave = std::make_shared<recording_member>();
  f.join("dave", dave);
  EXPECT_THAT(carol->received(), testing::ElementsAre("a1a2", "b1", "a3"));
  f.h.end_batch(a);
  EXPECT_THAT(dave->received(), testing::ElementsAre("join:alice", "join:bob", "join:carol", "a1", "a2", "b1", "a3"));
  // The sender leaves mid-batch: what it published is still delivered.
  f.h.publish_batched(a, frame_of("a4"), clock::now());
  f.h.leave(a);
  EXPECT_THAT(carol->received(), testing::ElementsAre("a1a2", "b1", "a3", "a4"));
  EXPECT_THAT(dave->received().back(), "a4");
  f.h.end_batch(a);  // an empty membership: nothing
  EXPECT_EQ(carol->received().size(), 4u);
}

TEST(hub_batch, a_large_message_goes_alone_and_a_batch_stays_within_its_byte_bound) {
  fixture f;
  auto bob = std::make_shared<recording_member>();
  auto a = f.join("alice", std::make_shared<recording_member>());
  f.join("bob", bob);
  bob->got.clear();
  const std::string big(batch_frame_max + 1, 'B');
  f.h.publish_batched(a, frame_of("s1"), clock::now());
  f.h.publish_batched(a, frame_of(big), clock::now());
  f.h.publish_batched(a, frame_of("s2"), clock::now());
  f.h.end_batch(a);
  EXPECT_THAT(bob->received(), testing::ElementsAre("s1", big, "s2"));
  // A burst larger than the bound arrives in several frames, each within it, nothing lost.
  bob->got.clear();
  const std::string chunk(1000, 'c');
  const std::size_t n = 2 * batch_bytes_max / chunk.size() + 3;
  for (std::size_t i = 0; i < n; ++i) f.h.publish_batched(a, frame_of(chunk), clock::now());
  f.h.end_batch(a);
  const auto got = bob->received();
  ASSERT_GE(got.size(), 3u);
  std::size_t total = 0;
  for (const auto& g : got) {
    EXPECT_LE(g.size(), batch_bytes_max);
    EXPECT_EQ(g.size() % chunk.size(), 0u);
    total += g.size();
  }
  EXPECT_EQ(total, n * chunk.size());
}

TEST(hub_batch, with_one_thread_batches_are_delivered_as_live_messages) {
  hub_limits limits{200, 1 << 20};
  limits.one_thread = true;
  hub h(limits);
  boost::system::error_code ec;
  auto bob = std::make_shared<recording_member>();
  auto a = h.join("ch", "alice", frame_of("join:alice"), std::make_shared<recording_member>(), ec);
  h.join("ch", "bob", frame_of("join:bob"), bob, ec);
  bob->got.clear();
  h.publish_batched(a, shared_frame::copy_of({reinterpret_cast<const std::uint8_t*>("p"), 1}, sharing::one_thread),
                    clock::now());
  h.publish_batched(a, shared_frame::copy_of({reinterpret_cast<const std::uint8_t*>("q"), 1}, sharing::one_thread),
                    clock::now());
  h.end_batch(a);
  EXPECT_THAT(bob->received(), testing::ElementsAre("pq"));
  EXPECT_EQ(bob->kinds.back(), delivery_kind::live);  // one loop: the lock-free queue
}
