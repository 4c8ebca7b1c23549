// The NATS test harness itself (tests/support/nats_cluster): real nats-server processes with
// JetStream on loopback. A single node serves JetStream; a 3-node cluster elects a meta
// leader, places a stream with 3 replicas and acknowledges publishes through any node; a node
// killed with SIGKILL and started again on the same ports and store rejoins and catches up
// (proven by then losing another node: the stream keeps every acknowledged message only if
// the restarted node holds them). On failure the nodes' configs and logs are printed.
#include "support/nats_cluster.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>

namespace mles::test {
namespace {

class nats_fixture : public ::testing::Test {
 protected:
  void TearDown() override {
    if (nats_ && (HasFailure() || std::getenv("MLES_NATS_TEST_LOGS") != nullptr)) nats_->dump_logs(std::cerr);
  }

  std::unique_ptr<nats_cluster> nats_;
};

TEST_F(nats_fixture, single_node_serves_jetstream) {
  nats_ = std::make_unique<nats_cluster>(1);
  EXPECT_EQ(nats_->node(0).cluster_port, 0);
  ASSERT_TRUE(nats_->start_all());
  EXPECT_EQ(nats_->urls(), "nats://127.0.0.1:" + std::to_string(nats_->client_port(0)));

  nats_client c;
  ASSERT_TRUE(c.connect(nats_->urls())) << c.error();
  ASSERT_TRUE(c.add_stream("fixture", {"fixture.>"}, 1)) << c.error();
  for (int i = 1; i <= 5; ++i) {
    const auto seq = c.js_publish("fixture.a", "m" + std::to_string(i));
    ASSERT_TRUE(seq) << c.error();
    EXPECT_EQ(*seq, static_cast<std::uint64_t>(i));
  }
  const auto info = c.stream_info("fixture");
  ASSERT_TRUE(info) << c.error();
  EXPECT_EQ(info->messages, 5u);
  ASSERT_EQ(info->subjects.size(), 1u);
  EXPECT_EQ(info->subjects[0], "fixture.>");
  EXPECT_FALSE(info->memory_storage);

  // A publish to a subject outside every stream is not acknowledged by JetStream.
  EXPECT_FALSE(c.js_publish("elsewhere.a", "x", millis{1'000})) << "JetStream acknowledged a subject no stream has";
  EXPECT_FALSE(c.stream_info("missing", millis{1'000}));
}

TEST_F(nats_fixture, three_node_cluster_replicates_and_a_killed_node_rejoins) {
  nats_ = std::make_unique<nats_cluster>(3);
  ASSERT_TRUE(nats_->start_all());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(nats_->not_ready_reason(i), "") << nats_->node(i).name;

  nats_client c;
  ASSERT_TRUE(c.connect(nats_->urls())) << c.error();
  ASSERT_TRUE(c.add_stream("fixture", {"fixture.>"}, 3)) << c.error();
  std::uint64_t sent = 0;
  for (int i = 0; i < 20; ++i, ++sent) ASSERT_TRUE(c.js_publish("fixture.a", "before:" + std::to_string(i))) << c.error();
  ASSERT_TRUE(c.wait_stream_current("fixture", 2)) << c.error();
  auto info = c.stream_info("fixture");
  ASSERT_TRUE(info) << c.error();
  EXPECT_EQ(info->replicas, 3);
  EXPECT_EQ(info->messages, sent);

  // Kill the node leading the stream (the hardest case for the publisher): a new leader is
  // elected among the two left and publishes are acknowledged again.
  std::size_t victim = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (nats_->node(i).name == info->leader) victim = i;
  }
  ASSERT_TRUE(nats_->kill(victim));
  EXPECT_FALSE(nats_->running(victim));
  ASSERT_TRUE(nats_->wait_ready());
  for (int i = 0; i < 20; ++i, ++sent) ASSERT_TRUE(c.js_publish("fixture.a", "during:" + std::to_string(i))) << c.error();

  // Back on the same ports and store: it rejoins (routes to both others, current with the
  // meta leader).
  ASSERT_TRUE(nats_->start(victim));
  EXPECT_EQ(nats_->not_ready_reason(victim), "");
  for (int i = 0; i < 20; ++i, ++sent) ASSERT_TRUE(c.js_publish("fixture.a", "after:" + std::to_string(i))) << c.error();
  ASSERT_TRUE(c.wait_stream_current("fixture", 2)) << "the restarted node's copy of the stream: " << c.error();

  // Lose another node: with replicas 3, the stream still has a quorum (the restarted node and
  // the third) and keeps every acknowledged message. The restarted node must have caught up
  // for that. Its stream replica may lag a moment behind the node's own readiness, so the
  // info is asked again until it counts every message or the deadline passes (a lost message
  // never comes back).
  const std::size_t second = (victim + 1) % 3;
  ASSERT_TRUE(nats_->kill(second));
  ASSERT_TRUE(nats_->wait_ready());
  std::optional<stream_facts> after;
  const auto deadline = steady::now() + nats_ready_timeout;
  for (int pass = 0; pass < 1'000 && steady::now() < deadline; ++pass) {
    after = c.stream_info("fixture", millis{5'000});
    if (after && after->messages == sent) break;
  }
  ASSERT_TRUE(after) << c.error();
  EXPECT_EQ(after->messages, sent);
  EXPECT_EQ(after->last_seq, sent);
  EXPECT_NE(after->leader, nats_->node(second).name);
  ASSERT_TRUE(nats_->start(second));
}

TEST(nats_json, reads_flat_fields_of_the_monitoring_json) {
  const std::string jsz = R"({"server_id": "X", "leader": "outer", "meta_cluster": {"name": "c", "leader": "n2"}})";
  EXPECT_EQ(json_string_after(jsz, "\"meta_cluster\"", "leader"), "n2");
  EXPECT_EQ(json_string_after(jsz, "", "leader"), "outer");
  EXPECT_FALSE(json_string_after(jsz, "\"missing\"", "leader"));
  EXPECT_FALSE(json_string_after(R"({"meta_cluster": {"leader": 3}})", "\"meta_cluster\"", "leader"));
  EXPECT_EQ(json_number_after(R"({"num_routes": 2, "routes": []})", "", "num_routes"), 2u);
  EXPECT_FALSE(json_number_after(R"({"num_routes": "x"})", "", "num_routes"));
}

}  // namespace
}  // namespace mles::test
