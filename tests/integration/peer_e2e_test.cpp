// End-to-end tests of peer links between real `mles` processes on loopback: `--peer` makes a
// server join the same channel on another server as an ordinary Mles client (a peer "sees
// that link as one more client session on the channel"), so that linked servers share the
// channel's messages; chains, rings and meshes must neither lose, duplicate nor reorder a
// message, over plain WebSocket (RFC 6455) and over TLS with verified certificates
// (RFC 6125 host names, the peer's CA given by --peer-ca). Also: repeated payloads between
// peer-mode servers (deduplicated by origin, not by payload), links to a server without the
// peer mode (--no-peer-mode), a peer that is down at start or restarts, a peer that refuses the
// join (wrong MLES_KEY), a certificate that fails verification, and --peer-linger. Every test
// ends with SIGTERM to every server and expects exit 0 (README, "Exit codes").
//
// Every client message is "msg:<uid>:<n>"; everything else a client receives (history replay
// of join frames, warm-up messages) is ignored. The binary is $MLES_TEST_BINARY when set (to
// run these tests against another build), else the mles built with the tests.
#include "support/mles_cluster.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Fixture: on failure (or with MLES_PEER_E2E_LOGS set), the servers' command lines and logs go
// to the test's output.

class peer_links : public ::testing::Test {
 protected:
  void TearDown() override {
    net_.stop_all();
    if (HasFailure() || std::getenv("MLES_PEER_E2E_LOGS") != nullptr) net_.dump_logs(std::cerr);
  }

  cluster net_{binary_under_test(MLES_BINARY)};
};

#define MLES_ASSERT_NO_FAILURE_YET() ASSERT_FALSE(::testing::Test::HasFailure())

// ---------------------------------------------------------------------------------------------
// 1, 2: three servers, two members each, one channel; chain, ring and full mesh, plain and TLS.

struct topology {
  const char* name;
  std::vector<std::pair<std::size_t, std::size_t>> links;  // (from, to): from --peer to
};

struct topology_case {
  topology shape;
  transport mode;
};

void PrintTo(const topology_case& c, std::ostream* os) { *os << c.shape.name << "_" << to_string(c.mode); }

const topology chain{"chain", {{0, 1}, {1, 2}}};
const topology ring{"ring", {{0, 1}, {1, 2}, {2, 0}}};
const topology mesh{"mesh", {{0, 1}, {0, 2}, {1, 0}, {1, 2}, {2, 0}, {2, 1}}};

class peer_topology : public peer_links, public ::testing::WithParamInterface<topology_case> {};

TEST_P(peer_topology, delivers_every_message_exactly_once_in_sender_order) {
  const topology_case& c = GetParam();
  std::vector<server_options> servers(3);
  const char* names[] = {"a", "b", "c"};
  for (std::size_t i = 0; i < 3; ++i) {
    servers[i].name = names[i];
    servers[i].mode = c.mode;
    // a and b run two event loops: a message of one origin may then reach a member through
    // links served by different threads (ring, mesh) and must still keep its sender's order.
    servers[i].threads = i == 2 ? 1 : 2;
    servers[i].named_id = i != 1;  // b runs with the default id, localhost:<port>
  }
  for (const auto& [from, to] : c.shape.links) servers[from].peers.push_back(to);
  net_.declare(std::move(servers));
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("peer mode"));
  exchange(net_, members, members, everyone_else, 0, 50);
}

INSTANTIATE_TEST_SUITE_P(
    shapes, peer_topology,
    ::testing::Values(topology_case{chain, transport::plain}, topology_case{ring, transport::plain},
                      topology_case{mesh, transport::plain}, topology_case{chain, transport::tls},
                      topology_case{ring, transport::tls}, topology_case{mesh, transport::tls}),
    [](const ::testing::TestParamInfo<topology_case>& param_info) {
      return std::string{param_info.param.shape.name} + "_" + to_string(param_info.param.mode);
    });

// Between servers that both speak the peer mode, duplicates are recognised by origin, not by
// payload: a member that sends the same bytes several times has each of them delivered (Mles
// forwards every message), across a mesh with two links between every pair of servers.
TEST_F(peer_links, delivers_every_copy_of_a_repeated_payload_between_peer_mode_servers) {
  net_.declare({{.name = "a", .peers = {1, 2}}, {.name = "b", .threads = 2, .peers = {0, 2}}, {.name = "c", .peers = {0, 1}}});
  ASSERT_TRUE(net_.start_all());
  std::vector<member*> members{&net_.join(0, "a1"), &net_.join(1, "b1"), &net_.join(2, "c1")};
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("peer mode"));
  await_paths(net_, members, members, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();

  constexpr int copies = 10;
  std::map<std::pair<std::size_t, std::string>, int> got;  // (receiver, payload) -> count
  for (int i = 0; i < copies; ++i) {
    for (member* m : members) EXPECT_TRUE(m->ws->send_text("same:" + m->uid)) << m->ws->error();
  }
  auto record = [&](std::size_t r, const std::string& payload) {
    if (payload.rfind("same:", 0) == 0) ++got[{r, payload}];
  };
  auto all_arrived = [&] {
    for (std::size_t r = 0; r < members.size(); ++r) {
      for (member* s : members) {
        if (s != members[r] && got[{r, "same:" + s->uid}] < copies) return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(pump(net_, members, delivery_timeout, record, all_arrived))
      << "not every copy arrived within " << delivery_timeout.count() << " ms";
  pump(net_, members, quiet_period, record);
  for (std::size_t r = 0; r < members.size(); ++r) {
    for (member* s : members) {
      const int received = got[std::pair{r, "same:" + s->uid}];
      EXPECT_EQ(received, s == members[r] ? 0 : copies) << s->uid << " -> " << members[r]->uid;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3: a server without the peer mode (it behaves as the reference server): the link falls back
// to plain messages, deduplicated by payload.

TEST_F(peer_links, exchanges_messages_exactly_once_with_a_server_without_peer_mode) {
  net_.declare({{.name = "a", .threads = 2, .peers = {1}}, {.name = "r", .peer_mode = false}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_link_up(0, 1, "reference mode"));
  exchange(net_, members, members, everyone_else, 0, 40);
}

TEST_F(peer_links, exchanges_messages_exactly_once_in_a_loop_with_a_server_without_peer_mode) {
  net_.declare({{.name = "a", .threads = 2, .peers = {1}}, {.name = "r", .peer_mode = false, .peers = {0}}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("reference mode"));
  // Exactly once, but not per-sender order: in this loop each message reaches r over two
  // paths and hash dedup keeps whichever copy arrives first; a run under ASan once saw a
  // sender's first two messages arrive after its 16th (an open problem, see the closing note
  // of issue 7; peer-mode topologies check the order).
  exchange(net_, members, members, everyone_else, 0, 40, delivery_checker::order::any);
}

// ---------------------------------------------------------------------------------------------
// 4: the peer is down when the link is first tried; retries (backoff capped by
// --peer-retry-max) bring the link up once it listens.

TEST_F(peer_links, retries_a_peer_that_is_down_at_start_until_it_is_up) {
  net_.declare({{.name = "a", .peers = {1}, .extra = {"--peer-retry-max", "2"}}, {.name = "b", .threads = 2}});
  ASSERT_TRUE(net_.start(0));
  std::vector<member*> members{&net_.join(0, "a1"), &net_.join(0, "a2")};
  MLES_ASSERT_NO_FAILURE_YET();
  // A link exists only for a channel with local members: a1 and a2 make a try to link.
  const auto refused = net_.wait_log(0, net_.link_line(1, "cannot connect"), 0, log_timeout);
  ASSERT_TRUE(refused) << "no 'cannot connect' warning about the peer that is down";
  EXPECT_GE(net_.count_log(0, net_.link_line(1, "retrying in")), 1u);
  ASSERT_TRUE(net_.start(1));
  members.push_back(&net_.join(1, "b1"));
  members.push_back(&net_.join(1, "b2"));
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_link_up(0, 1, "peer mode", refused->next));
  exchange(net_, members, members, everyone_else, 0, 40);
}

// ---------------------------------------------------------------------------------------------
// 5: the peer is killed mid-traffic and restarted on the same port.

TEST_F(peer_links, relinks_after_the_peer_restarts_and_keeps_local_traffic_meanwhile) {
  net_.declare({{.name = "a", .threads = 2, .peers = {1}, .extra = {"--peer-retry-max", "2"}}, {.name = "b"}});
  ASSERT_TRUE(net_.start_all());
  std::vector<member*> on_a{&net_.join(0, "a1"), &net_.join(0, "a2")};
  std::vector<member*> on_b{&net_.join(1, "b1"), &net_.join(1, "b2")};
  MLES_ASSERT_NO_FAILURE_YET();
  const auto up = net_.wait_link_up(0, 1, "peer mode");
  ASSERT_TRUE(up);
  std::vector<member*> all{on_a[0], on_a[1], on_b[0], on_b[1]};
  exchange(net_, all, all, everyone_else, 0, 30);
  MLES_ASSERT_NO_FAILURE_YET();

  ASSERT_TRUE(net_.kill(1));
  for (member* m : on_b) net_.forget(*m);
  const auto lost = net_.wait_log(0, net_.link_line(1, "link lost"), up->next, log_timeout);
  ASSERT_TRUE(lost) << "no 'link lost' warning after the peer was killed";
  // While b is down, a's members still talk to each other.
  exchange(net_, on_a, on_a, everyone_else, 100, 30);

  ASSERT_TRUE(net_.start(1));
  on_b = {&net_.join(1, "b1"), &net_.join(1, "b2")};
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_link_up(0, 1, "peer mode", lost->next));
  all = {on_a[0], on_a[1], on_b[0], on_b[1]};
  exchange(net_, all, all, everyone_else, 200, 30);
}

// ---------------------------------------------------------------------------------------------
// 6: the peer refuses the link's join (another MLES_KEY): retried, never carries a message.

TEST_F(peer_links, keeps_retrying_a_peer_that_refuses_the_join_and_keeps_local_traffic) {
  net_.declare({{.name = "a", .key = "one", .peers = {1}, .extra = {"--peer-retry-max", "1"}},
                {.name = "b", .threads = 2, .key = "two"}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  EXPECT_TRUE(net_.wait_log(0, net_.link_line(1, "join refused"), 0, log_timeout)) << "no 'join refused' warning";
  // The link is retried: b refuses it again and again (README, "Logging": b warns about every
  // refused auth; its own members join with the right key). a itself need not repeat an
  // identical warning for every attempt.
  const auto refused_at_b = [](std::string_view line) { return line.find("join refused") != std::string_view::npos; };
  const auto again = net_.wait_log(1, refused_at_b, 0, log_timeout);
  ASSERT_TRUE(again) << "b refused no join";
  EXPECT_TRUE(net_.wait_log(1, refused_at_b, again->next, log_timeout)) << "the refused link was not retried";
  exchange(net_, members, members, same_server, 0, 20);
  EXPECT_EQ(net_.count_log(0, net_.link_line(1, "link up")), 0u);
}

// ---------------------------------------------------------------------------------------------
// 7: the peer's certificate does not verify (self-signed, no --peer-ca): no link.

TEST_F(peer_links, refuses_a_peer_whose_certificate_fails_verification) {
  net_.declare({{.name = "a", .peers = {1}, .extra = {"--peer-retry-max", "1"}},
                {.name = "b", .mode = transport::tls, .self_signed = true}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  EXPECT_TRUE(net_.wait_log(0, net_.link_line(1, "certificate"), 0, log_timeout))
      << "no warning naming the certificate";
  exchange(net_, members, members, same_server, 0, 20);
  EXPECT_EQ(net_.count_log(0, net_.link_line(1, "link up")), 0u);
}

// ---------------------------------------------------------------------------------------------
// 8: --peer-linger: the link closes that long after the channel's last local member left.

TEST_F(peer_links, closes_the_link_after_the_linger_once_the_last_local_member_left) {
  net_.declare({{.name = "a", .peers = {1}, .extra = {"--peer-linger", "1"}}, {.name = "b"}});
  ASSERT_TRUE(net_.start_all());
  member& a1 = net_.join(0, "a1");
  MLES_ASSERT_NO_FAILURE_YET();
  const auto up = net_.wait_link_up(0, 1, "peer mode");
  ASSERT_TRUE(up);
  net_.leave(a1);
  EXPECT_TRUE(net_.wait_log(0, net_.link_line(1, "link closed (no local members)"), up->next, log_timeout))
      << "the link was not closed after the last local member left";
}

}  // namespace
}  // namespace mles::test
