// End-to-end tests of cluster mode (issue 10: `mles --nats URL[,URL...]`): real `mles`
// processes share channels through real `nats-server` processes on loopback (core NATS for
// the live flow, a JetStream stream for the history, a JetStream KV bucket for one session per
// (uid, channel) across the cluster). The harness: tests/support/nats_cluster (a single NATS
// node or a 3-node JetStream cluster with routes) and tests/support/mles_cluster (the mles
// processes, their members, exactly-once in-order delivery checks).
//
// Scenarios: three servers on a 3-node NATS cluster (replicas 3) deliver every message
// exactly once in per-sender order, and newcomers on every server replay the same history;
// kill -9 of a NATS node and an mles server mid-traffic loses and duplicates nothing for the
// members that stay, and after restarting both the history is whole; NATS down at start
// (local members are served, then NATS comes up and traffic crosses servers); the outgoing
// buffer bounded by --nats-buffer while NATS stays unreachable; a conflicting
// existing stream refuses the start; channel names with '.', '*', '>' and spaces stay
// distinct; --nats-prefix keeps deployments on one NATS apart; one session per (uid, channel)
// across servers, freed within --nats-session-ttl when its server crashes.
//
// Every client message is "msg:<uid>:<n>" or "warmup:<uid>:<k>"; join frames replayed from
// the history are JSON. On failure (or with MLES_CLUSTER_E2E_LOGS set) the command lines and
// logs of every mles and nats-server run are printed. The binary is $MLES_TEST_BINARY when
// set, else the mles built with the tests; nats-server is $MLES_TEST_NATS_SERVER or found in
// /usr/bin, /usr/sbin.
#include "support/http_client.hpp"
#include "support/mles_cluster.hpp"
#include "support/nats_cluster.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// What the server logs and answers in cluster mode, in one place: the wording may still shift.

namespace expect_log {
constexpr std::string_view connected = "cluster: connected to NATS";
constexpr std::string_view unreachable = "cluster: NATS not reachable";  // at start, warn
constexpr std::string_view lost = "cluster: NATS connection lost";
constexpr std::string_view restored = "cluster: NATS connection restored";
// A refused start because of an existing stream with other settings: stderr names the stream
// and says "conflict".
constexpr std::string_view conflict = "conflict";
}  // namespace expect_log

// The close of a second session of a uid on a channel (as for a local duplicate:
// src/proto/error.cpp, errc::duplicate_uid).
constexpr std::uint16_t duplicate_close_code = 1008;
constexpr std::string_view duplicate_reason = "already joined";

// Default stream name and prefix of the contract (--nats-prefix mles).
constexpr std::string_view stream_name = "mles";
// The stream behind the KV bucket mles-sessions (JetStream names a bucket's stream KV_<bucket>).
constexpr std::string_view session_bucket_stream = "KV_mles-sessions";

// Whether newcomers on different servers must replay the same history in the same order, not
// merely the same messages, each sender's in order. The server keeps a channel's history in
// memory in the order its members saw the messages (README, "Cluster mode on NATS": the
// interleaving of different senders may differ between servers), so this is off; the
// messages and every sender's order are still compared.
constexpr bool same_history_order_everywhere = false;

// Bounds for cluster traffic: connecting to NATS, a reconnect after a node is lost, a
// JetStream history replay. Generous (ASan, 2 busy cores); none is a performance claim.
constexpr millis nats_connect_timeout{90'000};
constexpr millis cluster_delivery_timeout{90'000};
constexpr millis history_timeout{60'000};
constexpr millis history_quiet{2'000};
constexpr millis session_ttl_slack{30'000};
constexpr int session_ttl_seconds = 3;
// History limit: every message of a test fits (warm-ups and join frames included).
constexpr int history_limit = 5'000;
// The stream reserves --history-total bytes on every node that holds a replica (README,
// "Sizing"); the default (a quarter of RAM, up to 1 GiB) would leave the test nodes'
// max_file_store of 1 GB no room for the session bucket.
constexpr std::string_view history_total = "64MiB";

bool line_has(std::string_view line, std::string_view what) { return line.find(what) != std::string_view::npos; }

std::function<bool(std::string_view)> log_has(std::string_view what) {
  return [what = std::string{what}](std::string_view line) { return line_has(line, what); };
}

// An mles server in cluster mode on the given NATS URLs.
server_options on_nats(std::string name, const nats_cluster& nats, int replicas, std::vector<std::string> more = {}) {
  server_options o;
  o.name = std::move(name);
  o.extra = {"--nats", nats.urls(), "--nats-replicas", std::to_string(replicas),
             "--nats-session-ttl", std::to_string(session_ttl_seconds), "--limit", std::to_string(history_limit),
             "--history-total", std::string{history_total}};
  o.extra.insert(o.extra.end(), more.begin(), more.end());
  return o;
}

// A join that may be refused: upgrade, join frame, then either the server's close (code and
// reason) or, when the session stays open for `settle`, no refusal. A refusal may take a round
// trip to the KV bucket, so an open session is then proven joined by join_proven.
struct join_attempt {
  std::unique_ptr<ws_client> ws;
  std::optional<std::pair<std::uint16_t, std::string>> refused;
  std::string error;  // anything else: no connection, no upgrade, an end without a close frame
};

join_attempt try_join(std::uint16_t port, const std::string& uid, const std::string& channel, millis settle) {
  join_attempt a;
  a.ws = std::make_unique<ws_client>();
  connect_options o;
  o.timeout = session_timeout;
  handshake_options h;
  h.timeout = session_timeout;
  if (!a.ws->connect(port, o)) {
    a.error = "connect: " + a.ws->error();
    return a;
  }
  if (const http_response r = a.ws->handshake(h); r.code != 101) {
    a.error = "upgrade: " + r.describe();
    return a;
  }
  if (!a.ws->join(uid, channel)) {
    a.error = "join: " + a.ws->error();
    return a;
  }
  const auto deadline = steady::now() + settle;
  for (int k = 0; k < 100'000; ++k) {
    const auto left = std::chrono::duration_cast<millis>(deadline - steady::now());
    if (left.count() <= 0) break;
    const read_result r = a.ws->read_frame(left);
    if (r.status == io_status::timeout) break;
    if (!r.ok()) {
      a.error = std::string{"session ended without a close frame: "} + to_string(r.status) + " " + a.ws->error();
      break;
    }
    if (r.f.opcode == op::close) {
      a.refused = std::pair{r.f.close_code(), r.f.close_reason()};
      break;
    }
    if (r.f.opcode == op::ping) a.ws->send_pong(r.f.payload);
  }
  return a;
}

// Whether an attempt that was not refused is a joined member: a message of `from` (a member
// of the channel on any server) reaches it. A late refusal (close) counts as not joined.
bool join_proven(join_attempt& a, member& from, int tag) {
  const std::string marker = payload_of("warmup", from, 100'000 + tag);
  const auto deadline = steady::now() + path_timeout;
  for (int round = 0; round < 200 && steady::now() < deadline; ++round) {
    if (!from.ws->send_text(marker)) return false;
    const auto round_end = std::min(deadline, steady::now() + millis{500});
    for (int k = 0; k < 10'000; ++k) {
      const auto left = std::chrono::duration_cast<millis>(round_end - steady::now());
      if (left.count() <= 0) break;
      const message m = a.ws->read_message(left, pong_policy::answer_pings);
      if (m.status == io_status::timeout) break;
      if (!m.ok() || m.opcode == op::close) {
        a.refused = std::pair{m.close_code, std::string{"(late close)"}};
        return false;
      }
      if (m.payload == marker) return true;
    }
    from.ws->read_message(0ms, pong_policy::answer_pings);  // keep from's socket moving
  }
  return false;
}

// The data payloads newcomers receive after joining until `done` holds for each (or the
// timeout), then during one quiet period: their history replays (nobody publishes meanwhile).
std::vector<std::vector<std::string>> read_histories(cluster& net, const std::vector<member*>& ms, millis timeout,
                                                     const std::function<bool(const std::vector<std::string>&)>& done) {
  std::vector<std::vector<std::string>> got(ms.size());
  auto record = [&](std::size_t r, const std::string& payload) { got[r].push_back(payload); };
  auto all_done = [&] { return std::all_of(got.begin(), got.end(), done); };
  if (!pump(net, ms, timeout, record, all_done)) {
    for (std::size_t r = 0; r < ms.size(); ++r) {
      if (!done(got[r])) {
        ADD_FAILURE() << ms[r]->uid << ": history incomplete after " << timeout.count() << " ms (" << got[r].size()
                      << " frames)";
      }
    }
  }
  pump(net, ms, history_quiet, record);
  return got;
}

std::vector<std::string> read_history(cluster& net, member& m, millis timeout,
                                      const std::function<bool(const std::vector<std::string>&)>& done) {
  return read_histories(net, {&m}, timeout, done).front();
}

// The history without the join frames of the newcomers ("late-*"), which differ by when each
// joined.
std::vector<std::string> without_newcomers(const std::vector<std::string>& history) {
  std::vector<std::string> out;
  for (const auto& p : history) {
    if (!p.empty() && p.front() == '{' && p.find("late-") != std::string::npos) continue;
    out.push_back(p);
  }
  return out;
}

// Expects two newcomers' histories (without the newcomers' join frames) to be the same
// sequence; names the first difference.
void expect_same_history(const std::string& who_a, const std::vector<std::string>& a, const std::string& who_b,
                         const std::vector<std::string>& b) {
  if (!same_history_order_everywhere || a == b) return;
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto at = [](const std::vector<std::string>& h, std::size_t k) {
    std::string out;
    for (std::size_t j = k; j < h.size() && j < k + 6; ++j) out += " " + printable_head(h[j]);
    return out.empty() ? std::string{" (end)"} : out;
  };
  ADD_FAILURE() << "the newcomers " << who_a << " and " << who_b << " replayed different histories (" << a.size()
                << " and " << b.size() << " frames), first difference at frame " << i << ":\n  " << who_a << ":"
                << at(a, i) << "\n  " << who_b << ":" << at(b, i);
}

// Whether history holds, per sender of senders, "msg:<uid>:<first..first+count-1>" exactly
// once and in order (adds failures naming what is wrong).
void expect_whole(const std::string& who, const std::vector<std::string>& history, const std::vector<member*>& senders,
                  int first, int count) {
  member reader;
  reader.uid = who;
  std::vector<member*> readers{&reader};
  delivery_checker checker(senders, readers, [](const member&, const member&) { return true; }, first, count);
  for (const auto& p : history) checker.record(0, p);
  SCOPED_TRACE("history of " + who);
  checker.verify();
}

// The number of "msg:<sender uid>:<n>" for n in [first, first+count) in history.
int count_of(const std::vector<std::string>& history, const member& sender, int first, int count) {
  int n = 0;
  for (const auto& p : history) {
    const auto parsed = parse_payload("msg", p);
    n += parsed && parsed->first == sender.uid && parsed->second >= first && parsed->second < first + count ? 1 : 0;
  }
  return n;
}

// Completion test for read_history: every sender's count messages present.
std::function<bool(const std::vector<std::string>&)> holds_all(const std::vector<member*>& senders, int first, int count) {
  return [senders, first, count](const std::vector<std::string>& got) {
    for (const member* s : senders) {
      if (count_of(got, *s, first, count) < count) return false;
    }
    return true;
  };
}

// The metrics port of server i from its "mles metrics on http://127.0.0.1:PORT/metrics" line
// (whether it comes before or after "listening on").
std::uint16_t metrics_port_of(cluster& net, std::size_t i) {
  const auto hit = net.wait_log(i, log_has("metrics on http://"), 0, 30s);
  if (!hit) {
    ADD_FAILURE() << "no metrics line; stderr:" << joined_lines(net.log(i).err_lines());
    return 0;
  }
  const auto from = hit->line.find("metrics on http://");
  const auto to = hit->line.find("/metrics", from + 18);
  const auto port = parse_port(hit->line.substr(from, to - from));
  if (!port) ADD_FAILURE() << "no port in: " << hit->line;
  return port.value_or(0);
}

// The value of an unlabelled sample in the server's /metrics; nullopt if absent.
std::optional<double> metric(std::uint16_t port, std::string_view name) {
  http_client c;
  connect_options o;
  o.timeout = 10s;
  if (!c.connect(port, o)) return std::nullopt;
  const http_reply r = c.exchange(http_request("GET", "/metrics"), 10s);
  if (!r.ok() || r.code != 200) return std::nullopt;
  const std::string prefix = std::string{name} + " ";
  std::size_t at = 0;
  for (int k = 0; k < 100'000 && at < r.body.size(); ++k) {
    std::size_t eol = r.body.find('\n', at);
    if (eol == std::string::npos) eol = r.body.size();
    const std::string line = r.body.substr(at, eol - at);
    if (line.rfind(prefix, 0) == 0) return std::strtod(line.c_str() + prefix.size(), nullptr);
    at = eol + 1;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Fixture: the NATS nodes (made by each test) and the mles servers; on teardown the members
// leave and every mles server gets SIGTERM and must exit 0 while NATS is still up, then NATS
// stops.

class cluster_mode : public ::testing::Test {
 protected:
  void TearDown() override {
    net_.stop_all();
    if (HasFailure() || std::getenv("MLES_CLUSTER_E2E_LOGS") != nullptr) {
      net_.dump_logs(std::cerr);
      if (nats_) nats_->dump_logs(std::cerr);
    }
    if (nats_) nats_->stop_all();
  }

  // Starts the NATS nodes, then the declared mles servers, and waits until each one says it is
  // connected to NATS.
  bool start_connected() {
    if (!nats_->start_all()) return false;
    if (!net_.start_all()) return false;
    for (std::size_t i = 0; i < net_.size(); ++i) {
      if (!wait_connected(i)) return false;
    }
    return true;
  }

  bool wait_connected(std::size_t i, std::size_t from = 0) {
    if (net_.wait_log(i, log_has(expect_log::connected), from, nats_connect_timeout)) return true;
    ADD_FAILURE() << "server " << net_.name(i) << " logged no '" << expect_log::connected << "' within "
                  << nats_connect_timeout.count() << " ms";
    return false;
  }

  void drain() {
    net_.drain_logs();
    if (nats_) nats_->drain_logs();
  }

  std::unique_ptr<nats_cluster> nats_;
  cluster net_{binary_under_test(MLES_BINARY), "room"};
};

#define MLES_ASSERT_NO_FAILURE_YET() ASSERT_FALSE(::testing::Test::HasFailure())

// ---------------------------------------------------------------------------------------------
// a, b: three servers on a 3-node NATS cluster with replicas 3, two members each.

TEST_F(cluster_mode, delivers_every_message_exactly_once_across_servers_and_newcomers_share_one_history) {
  nats_ = std::make_unique<nats_cluster>(3);
  server_options b = on_nats("b", *nats_, 3);
  b.threads = 2;  // members of one channel on two event loops
  net_.declare({on_nats("a", *nats_, 3), std::move(b), on_nats("c", *nats_, 3)});
  ASSERT_TRUE(start_connected());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  constexpr int count = 50;
  exchange(net_, members, members, everyone_else, 0, count);
  MLES_ASSERT_NO_FAILURE_YET();

  // The stream exists as the contract says: subjects mles.>, replicas 3.
  nats_client nc;
  ASSERT_TRUE(nc.connect(nats_->urls())) << nc.error();
  const auto info = nc.stream_info(std::string{stream_name});
  ASSERT_TRUE(info) << nc.error();
  EXPECT_EQ(info->replicas, 3);
  EXPECT_EQ(info->subjects, std::vector<std::string>{"mles.>"});
  EXPECT_FALSE(info->memory_storage);

  // b: a newcomer on each server replays the same history: every message, in one order.
  std::vector<member*> late;
  for (std::size_t i = 0; i < net_.size(); ++i) late.push_back(&net_.join(i, "late-" + net_.name(i)));
  MLES_ASSERT_NO_FAILURE_YET();
  auto histories = read_histories(net_, late, history_timeout, holds_all(members, 0, count));
  for (std::size_t i = 0; i < late.size(); ++i) {
    histories[i] = without_newcomers(histories[i]);
    expect_whole(late[i]->uid, histories[i], members, 0, count);
  }
  for (std::size_t i = 1; i < histories.size(); ++i) {
    expect_same_history("late-" + net_.name(0), histories[0], "late-" + net_.name(i), histories[i]);
  }
  // The join frames of the six first members are part of it.
  for (const member* m : members) {
    EXPECT_TRUE(std::any_of(histories[0].begin(), histories[0].end(), [&](const std::string& p) {
      return !p.empty() && p.front() == '{' && p.find("\"" + m->uid + "\"") != std::string::npos;
    })) << "no join frame of " << m->uid << " in the history";
  }
}

// ---------------------------------------------------------------------------------------------
// c: kill -9 one NATS node and one mles server mid-traffic.

TEST_F(cluster_mode, losing_a_nats_node_and_an_mles_server_mid_traffic_loses_and_duplicates_nothing) {
  nats_ = std::make_unique<nats_cluster>(3);
  net_.declare({on_nats("a", *nats_, 3), on_nats("b", *nats_, 3), on_nats("c", *nats_, 3)});
  ASSERT_TRUE(start_connected());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  await_paths(net_, members, members, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();

  // The members of a and b stay; c's are lost with their server.
  std::vector<member*> stay;
  std::vector<member*> lost;
  for (member* m : members) (m->server == 2 ? lost : stay).push_back(m);
  constexpr int count = 100;
  constexpr int kill_at = 30;
  // The NATS node that leads the stream: the hardest one to lose.
  nats_client nc;
  ASSERT_TRUE(nc.connect(nats_->urls())) << nc.error();
  // Replicated and current on all three nodes first: losing a node right after a stream's
  // creation, before a follower holds its copy, is not the case under test.
  ASSERT_TRUE(nc.wait_stream_current(std::string{stream_name}, 2)) << nc.error();
  if (const auto kv = nc.stream_info(std::string{session_bucket_stream}, 2s); kv && kv->replicas > 1) {
    ASSERT_TRUE(nc.wait_stream_current(std::string{session_bucket_stream}, static_cast<std::size_t>(kv->replicas - 1)))
        << nc.error();
  }
  const auto info = nc.stream_info(std::string{stream_name});
  ASSERT_TRUE(info) << nc.error();
  std::size_t victim = 0;
  for (std::size_t i = 0; i < nats_->size(); ++i) {
    if (nats_->node(i).name == info->leader) victim = i;
  }
  nc.close();

  delivery_checker checker(stay, stay, everyone_else, 0, count);
  // The lost members' messages: whatever got out before their server died, at most once each.
  std::map<std::pair<std::size_t, std::string>, int> from_lost;  // (receiver, payload) -> count
  auto record = [&](std::size_t r, const std::string& payload) {
    checker.record(r, payload);
    const auto p = parse_payload("msg", payload);
    if (p && (p->first == lost[0]->uid || p->first == lost[1]->uid)) ++from_lost[{r, payload}];
  };
  std::vector<std::size_t> log_from(net_.size(), 0);
  for (int i = 0; i < count; ++i) {
    if (i == kill_at) {
      for (std::size_t s = 0; s < net_.size(); ++s) {
        net_.drain_logs();
        log_from[s] = net_.log(s).err().size();
      }
      ASSERT_TRUE(nats_->kill(victim));
      ASSERT_TRUE(net_.kill(2));
    }
    for (member* s : members) {
      if (s->open) {
        EXPECT_TRUE(s->ws->send_text(payload_of("msg", *s, i))) << s->uid << ": " << s->ws->error();
      }
    }
    pump(net_, stay, 10ms, record);
    drain();
  }
  if (!pump(net_, stay, cluster_delivery_timeout, record, [&] { return checker.complete(); })) {
    ADD_FAILURE() << "not every message of the members that stayed arrived within "
                  << cluster_delivery_timeout.count() << " ms";
  }
  pump(net_, stay, quiet_period * 2, record);
  checker.verify();
  for (const auto& [key, n] : from_lost) {
    EXPECT_EQ(n, 1) << key.second << " reached " << stay[key.first]->uid << " " << n << " times";
  }

  // Restart both. The servers that were on the lost node said so, and that they are back.
  ASSERT_TRUE(nats_->start(victim));
  ASSERT_TRUE(net_.start(2));
  ASSERT_TRUE(wait_connected(2));
  for (std::size_t s = 0; s < 2; ++s) {
    if (net_.wait_log(s, log_has(expect_log::lost), log_from[s], 1ms)) {
      EXPECT_TRUE(net_.wait_log(s, log_has(expect_log::restored), log_from[s], nats_connect_timeout))
          << "server " << net_.name(s) << " lost its NATS connection and logged no '" << expect_log::restored << "'";
    }
  }

  // A newcomer on a restarted and on a surviving server: the whole history (every message of
  // the members that stayed, exactly once, in order), the same on both; the lost members'
  // messages at most once each.
  std::vector<member*> late{&net_.join(2, "late-c"), &net_.join(0, "late-a")};
  for (const member* m : late) ASSERT_TRUE(m->open) << m->uid;
  auto histories = read_histories(net_, late, history_timeout, holds_all(stay, 0, count));
  for (std::size_t k = 0; k < late.size(); ++k) {
    histories[k] = without_newcomers(histories[k]);
    expect_whole(late[k]->uid, histories[k], stay, 0, count);
    for (const member* m : lost) {
      for (int n = 0; n < count; ++n) {
        const auto p = payload_of("msg", *m, n);
        EXPECT_LE(std::count(histories[k].begin(), histories[k].end(), p), 1)
            << p << " more than once in the history of " << late[k]->uid;
      }
    }
  }
  expect_same_history("late-c (restarted server)", histories[0], "late-a", histories[1]);

  // And the restarted server carries live traffic again (whatever the histories showed).
  std::vector<member*> after{&net_.join(0, "a3"), &net_.join(1, "b3"), &net_.join(2, "c3")};
  for (const member* m : after) ASSERT_TRUE(m->open) << m->uid;
  exchange(net_, after, after, everyone_else, 0, 20);
}

// ---------------------------------------------------------------------------------------------
// d: NATS down at start, up later.

TEST_F(cluster_mode, serves_local_members_while_nats_is_down_and_joins_the_cluster_when_it_comes_up) {
  nats_ = std::make_unique<nats_cluster>(1);
  net_.declare({on_nats("a", *nats_, 1, {"--metrics", "127.0.0.1:0"}), on_nats("b", *nats_, 1)});
  ASSERT_TRUE(net_.start_all()) << "a server in cluster mode must start while NATS is unreachable";
  const std::uint16_t metrics = metrics_port_of(net_, 0);
  const auto down = net_.wait_log(0, log_has(expect_log::unreachable), 0, log_timeout);
  ASSERT_TRUE(down) << "no '" << expect_log::unreachable << "' line";
  EXPECT_TRUE(at_least_warn(down->line)) << down->line;
  std::vector<member*> local{&net_.join(0, "a1"), &net_.join(0, "a2")};
  MLES_ASSERT_NO_FAILURE_YET();
  constexpr int count = 20;
  exchange(net_, local, local, everyone_else, 0, count);
  MLES_ASSERT_NO_FAILURE_YET();
  EXPECT_EQ(net_.count_log(0, log_has(expect_log::connected)), 0u) << "connected to a NATS that is not running";
  if (metrics != 0) {
    EXPECT_EQ(metric(metrics, "mles_cluster_connected"), 0.0);
  }

  ASSERT_TRUE(nats_->start_all());
  ASSERT_TRUE(wait_connected(0));
  ASSERT_TRUE(wait_connected(1));
  if (metrics != 0) {
    std::optional<double> up;
    for (int pass = 0; pass < 300 && up != 1.0; ++pass) {
      up = metric(metrics, "mles_cluster_connected");
      if (up != 1.0) std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(up, 1.0) << "mles_cluster_connected after the connected log line";
  }

  // A member on the other server: the messages sent while NATS was down reach its history
  // (buffered, then published), then live traffic crosses servers.
  member& b1 = net_.join(1, "b1");
  MLES_ASSERT_NO_FAILURE_YET();
  const auto history = read_history(net_, b1, history_timeout, holds_all(local, 0, count));
  expect_whole(b1.uid, history, local, 0, count);
  std::vector<member*> all{local[0], local[1], &b1};
  exchange(net_, all, all, everyone_else, count, count);
  if (metrics != 0) {
    const auto published = metric(metrics, "mles_cluster_published_total");
    const auto received = metric(metrics, "mles_cluster_received_total");
    EXPECT_TRUE(published && *published >= 2 * count) << "mles_cluster_published_total " << published.value_or(-1);
    EXPECT_TRUE(received && *received >= count) << "mles_cluster_received_total " << received.value_or(-1);
    EXPECT_EQ(metric(metrics, "mles_cluster_dropped_total"), 0.0);
  }
}

// While NATS stays unreachable, the outgoing buffer is bounded by --nats-buffer: the oldest
// messages are dropped and counted, and local members still get every message.
TEST_F(cluster_mode, bounds_the_outgoing_buffer_while_nats_is_unreachable) {
  nats_ = std::make_unique<nats_cluster>(1);  // never started: its port has no listener
  constexpr int buffer_bytes = 65'536;
  net_.declare({on_nats("a", *nats_, 1, {"--metrics", "127.0.0.1:0", "--nats-buffer", std::to_string(buffer_bytes)})});
  ASSERT_TRUE(net_.start_all());
  const std::uint16_t metrics = metrics_port_of(net_, 0);
  ASSERT_NE(metrics, 0);
  member& a1 = net_.join(0, "a1");
  member& a2 = net_.join(0, "a2");
  MLES_ASSERT_NO_FAILURE_YET();
  std::vector<member*> pair{&a1, &a2};
  await_paths(net_, pair, pair, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();

  // Four times the buffer in distinct payloads ("same:<n>:<padding>").
  constexpr int count = 1'000;
  const std::string padding(4 * buffer_bytes / count, 'x');
  std::vector<int> got(count, 0);
  int received = 0;
  auto record = [&](std::size_t r, const std::string& payload) {
    if (r != 1 || payload.rfind("same:", 0) != 0) return;
    const std::size_t colon = payload.find(':', 5);
    const int n = std::atoi(payload.substr(5, colon - 5).c_str());
    if (n >= 0 && n < count) {
      ++got[static_cast<std::size_t>(n)];
      ++received;
    }
  };
  for (int n = 0; n < count; ++n) {
    ASSERT_TRUE(a1.ws->send_text("same:" + std::to_string(n) + ":" + padding)) << a1.ws->error();
    if (n % 50 == 49) pump(net_, pair, 0ms, record);
  }
  EXPECT_TRUE(pump(net_, pair, delivery_timeout, record, [&] { return received >= count; }))
      << received << " of " << count << " local messages arrived";
  pump(net_, pair, quiet_period, record);
  for (int n = 0; n < count; ++n) EXPECT_EQ(got[static_cast<std::size_t>(n)], 1) << "message " << n;

  std::optional<double> dropped;
  for (int pass = 0; pass < 300; ++pass) {
    dropped = metric(metrics, "mles_cluster_dropped_total");
    if (dropped && *dropped > 0) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(dropped && *dropped > 0) << "mles_cluster_dropped_total " << dropped.value_or(-1) << " after "
                                       << 4 * buffer_bytes << " bytes for a " << buffer_bytes << "-byte buffer";
  EXPECT_EQ(metric(metrics, "mles_cluster_connected"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// e: an existing stream with other settings refuses the start.

TEST_F(cluster_mode, refuses_to_start_over_a_conflicting_stream) {
  nats_ = std::make_unique<nats_cluster>(1);
  ASSERT_TRUE(nats_->start_all());
  nats_client nc;
  ASSERT_TRUE(nc.connect(nats_->urls())) << nc.error();
  net_.declare({on_nats("a", *nats_, 1)});

  struct conflict_case {
    const char* what;
    std::string name;  // the existing stream
    std::vector<std::string> subjects;
    bool memory;
  };
  const std::string ours{stream_name};
  for (const conflict_case& c : {conflict_case{"other subjects", ours, {"other.>"}, false},
                                 conflict_case{"memory storage", ours, {"mles.>"}, true},
                                 conflict_case{"another stream over mles.>", "taken", {"mles.>"}, false}}) {
    SCOPED_TRACE(c.what);
    ASSERT_TRUE(nc.add_stream(c.name, c.subjects, 1, c.memory)) << nc.error();
    child_process p(net_.at(0).argv);
    const auto code = p.wait_exit(nats_connect_timeout);
    if (!code) {
      p.signal(SIGKILL);
      p.wait_exit(stop_timeout);
    }
    ASSERT_TRUE(code) << "mles still running " << nats_connect_timeout.count()
                      << " ms after start over a stream with " << c.what << "; stderr:" << joined_lines(p.err_lines());
    EXPECT_NE(*code, 0) << "stderr:" << joined_lines(p.err_lines());
    const std::string& err = p.err();
    EXPECT_NE(err.find(expect_log::conflict), std::string::npos) << "stderr:" << joined_lines(p.err_lines());
    // The stream named as the README quotes it ("stream 'mles' ..."; every stderr line starts
    // with "mles:", so the bare name would prove nothing).
    EXPECT_NE(err.find("'" + ours + "'"), std::string::npos) << "stderr:" << joined_lines(p.err_lines());
    // The operator's stream is left as it was.
    const auto info = nc.stream_info(c.name);
    ASSERT_TRUE(info) << nc.error();
    EXPECT_EQ(info->subjects, c.subjects);
    EXPECT_EQ(info->memory_storage, c.memory);
    ASSERT_TRUE(nc.delete_stream(c.name)) << nc.error();
    // Nothing of ours was left behind either.
    EXPECT_FALSE(c.name != ours && nc.stream_info(ours, 1s)) << "a stream '" << ours << "' was created";
  }

  // Without the conflicting stream it starts and creates its own (a control for the above).
  ASSERT_TRUE(net_.start(0));
  ASSERT_TRUE(wait_connected(0));
  const auto info = nc.stream_info(std::string{stream_name});
  ASSERT_TRUE(info) << nc.error();
  EXPECT_EQ(info->subjects, std::vector<std::string>{"mles.>"});
}

// ---------------------------------------------------------------------------------------------
// f: channel names that are not NATS subject tokens.

TEST_F(cluster_mode, channel_names_with_subject_syntax_stay_distinct_across_servers) {
  nats_ = std::make_unique<nats_cluster>(1);
  net_.declare({on_nats("a", *nats_, 1), on_nats("b", *nats_, 1)});
  ASSERT_TRUE(start_connected());
  const std::vector<std::string> channels{"a.b", "a", "*", ">", "a b", "a.*", "mles.a"};
  std::vector<member*> members;
  for (std::size_t k = 0; k < channels.size(); ++k) {
    for (std::size_t i = 0; i < 2; ++i) {
      members.push_back(&net_.join(i, net_.name(i) + "-ch" + std::to_string(k), channels[k]));
    }
  }
  MLES_ASSERT_NO_FAILURE_YET();
  const expectation same_channel = [](const member& r, const member& s) { return &r != &s && r.channel == s.channel; };
  exchange(net_, members, members, same_channel, 0, 20);
  MLES_ASSERT_NO_FAILURE_YET();

  // Each channel's history holds its own messages only.
  std::vector<member*> late;
  for (std::size_t k = 0; k < channels.size(); ++k) {
    late.push_back(&net_.join(k % 2, "late-" + std::to_string(k), channels[k]));
  }
  MLES_ASSERT_NO_FAILURE_YET();
  // Complete when a history holds the 20 messages of both members of its channel (the uids
  // of channel k are <server>-ch<k>).
  const auto histories = read_histories(net_, late, history_timeout, [&](const std::vector<std::string>& got) {
    if (got.empty()) return false;
    int n = 0;
    for (const auto& p : got) n += parse_payload("msg", p) ? 1 : 0;
    return n >= 40;
  });
  for (std::size_t k = 0; k < channels.size(); ++k) {
    SCOPED_TRACE("channel '" + channels[k] + "'");
    std::vector<member*> own{members[2 * k], members[2 * k + 1]};
    const auto& history = histories[k];
    expect_whole(late[k]->uid, history, own, 0, 20);
    for (const auto& p : history) {
      const auto parsed = parse_payload("msg", p);
      if (!parsed) continue;
      EXPECT_TRUE(parsed->first == own[0]->uid || parsed->first == own[1]->uid)
          << "the history of '" << channels[k] << "' holds " << p;
    }
  }
}

// --nats-prefix: deployments with different prefixes share one NATS cluster without sharing
// channels; servers with the same prefix share them.
TEST_F(cluster_mode, deployments_with_different_prefixes_share_nothing) {
  nats_ = std::make_unique<nats_cluster>(1);
  net_.declare({on_nats("a", *nats_, 1), on_nats("b", *nats_, 1, {"--nats-prefix", "other"}),
                on_nats("c", *nats_, 1, {"--nats-prefix", "other"})});
  ASSERT_TRUE(start_connected());
  std::vector<member*> members{&net_.join(0, "a1"), &net_.join(1, "b1"), &net_.join(2, "c1")};
  MLES_ASSERT_NO_FAILURE_YET();
  // b and c share the channel; a (prefix mles) hears neither, and neither hears a.
  const expectation same_prefix = [](const member& r, const member& s) {
    return &r != &s && (r.server == 0) == (s.server == 0);
  };
  exchange(net_, members, members, same_prefix, 0, 20);

  nats_client nc;
  ASSERT_TRUE(nc.connect(nats_->urls())) << nc.error();
  const auto other = nc.stream_info("other");
  ASSERT_TRUE(other) << nc.error();
  EXPECT_EQ(other->subjects, std::vector<std::string>{"other.>"});
  EXPECT_TRUE(nc.stream_info(std::string{stream_name})) << nc.error();
  EXPECT_TRUE(nc.stream_info("KV_other-sessions")) << "no session bucket other-sessions: " << nc.error();
}

// ---------------------------------------------------------------------------------------------
// g: one session per (uid, channel) across the cluster.

TEST_F(cluster_mode, a_uid_joined_on_one_server_is_refused_on_another_until_it_leaves_or_its_server_dies) {
  nats_ = std::make_unique<nats_cluster>(1);
  net_.declare({on_nats("a", *nats_, 1), on_nats("b", *nats_, 1)});
  ASSERT_TRUE(start_connected());
  member& u = net_.join(0, "u");
  member& v = net_.join(1, "v");
  MLES_ASSERT_NO_FAILURE_YET();
  std::vector<member*> pair{&u, &v};
  await_paths(net_, pair, pair, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();

  // The duplicate on b is refused like a local one.
  auto dup = try_join(net_.at(1).port, "u", net_.channel(), 30s);
  ASSERT_EQ(dup.error, "");
  ASSERT_TRUE(dup.refused) << "a second session of u (on another server) stayed open";
  EXPECT_EQ(dup.refused->first, duplicate_close_code);
  EXPECT_NE(dup.refused->second.find(duplicate_reason), std::string::npos) << "close reason: " << dup.refused->second;
  // The same on a, where u is joined (the local check).
  auto local_dup = try_join(net_.at(0).port, "u", net_.channel(), 30s);
  ASSERT_TRUE(local_dup.refused);
  EXPECT_EQ(local_dup.refused->first, duplicate_close_code);
  // The first session is unaffected.
  exchange(net_, pair, pair, everyone_else, 0, 10);

  // u leaves a: u may join on b (at once, or after a moment for the key's deletion).
  net_.leave(u);
  bool joined = false;
  const auto deadline = steady::now() + session_ttl_slack;
  for (int pass = 0; pass < 200 && !joined && steady::now() < deadline; ++pass) {
    auto again = try_join(net_.at(1).port, "u", net_.channel(), 2s);
    ASSERT_EQ(again.error, "");
    joined = !again.refused && join_proven(again, v, pass);
    if (joined) again.ws->send_close(1000);
    if (!joined) std::this_thread::sleep_for(200ms);  // a refusal can be quick: pace the attempts
  }
  ASSERT_TRUE(joined) << "u still refused on b " << session_ttl_slack.count() << " ms after leaving a";

  // w joins on a; a crashes: the entry of w expires within the session TTL, then w may join
  // on b.
  member& w = net_.join(0, "w");
  MLES_ASSERT_NO_FAILURE_YET();
  // The protocol has no join acknowledgement and a claim takes a round trip to the bucket: w
  // holds its uid once traffic flows between w and v.
  std::vector<member*> vw{&v, &w};
  await_paths(net_, vw, vw, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();
  auto w_dup = try_join(net_.at(1).port, "w", net_.channel(), 30s);
  ASSERT_EQ(w_dup.error, "");
  ASSERT_TRUE(w_dup.refused) << "a second session of w (on another server) stayed open";
  ASSERT_TRUE(net_.kill(0));
  const auto expiry = steady::now() + std::chrono::seconds{session_ttl_seconds} + session_ttl_slack;
  bool rejoined = false;
  for (int pass = 0; pass < 200 && !rejoined && steady::now() < expiry; ++pass) {
    auto after = try_join(net_.at(1).port, "w", net_.channel(), 2s);
    ASSERT_EQ(after.error, "");
    rejoined = !after.refused && join_proven(after, v, 1'000 + pass);
    if (rejoined) after.ws->send_close(1000);
    if (!rejoined) std::this_thread::sleep_for(200ms);  // a refusal can be quick: pace the attempts
  }
  EXPECT_TRUE(rejoined) << "w still refused on b " << session_ttl_seconds << " s + " << session_ttl_slack.count()
                        << " ms after its server a was killed";
}

// ---------------------------------------------------------------------------------------------
// --nats with TLS (tls://, --nats-ca) and a user and password in the URL.

TEST_F(cluster_mode, reaches_nats_over_tls_with_a_password) {
  nats_ = std::make_unique<nats_cluster>(1);
  const auto cert = net_.dir() / "nats-cert.pem";
  const auto key = net_.dir() / "nats-key.pem";
  write_test_certificate(cert, key, "localhost");
  nats_->add_config("tls {\n  cert_file: \"" + cert.string() + "\"\n  key_file: \"" + key.string() +
                    "\"\n}\nauthorization {\n  user: mles\n  password: \"s3cret\"\n}\n");
  const std::string port = std::to_string(nats_->client_port(0));
  auto over_tls = [&](std::string name, std::string password) {
    server_options o;
    o.name = std::move(name);
    o.extra = {"--nats", "tls://mles:" + password + "@localhost:" + port, "--nats-ca", cert.string(),
               "--limit", std::to_string(history_limit)};
    return o;
  };
  // c has a wrong password.
  net_.declare({over_tls("a", "s3cret"), over_tls("b", "s3cret"), over_tls("c", "wrong")});
  ASSERT_TRUE(nats_->start_all());
  ASSERT_TRUE(net_.start_all());
  ASSERT_TRUE(wait_connected(0));
  ASSERT_TRUE(wait_connected(1));
  std::vector<member*> members{&net_.join(0, "a1"), &net_.join(1, "b1")};
  MLES_ASSERT_NO_FAILURE_YET();
  exchange(net_, members, members, everyone_else, 0, 20);
  // Refused credentials: the server runs (serving its own members) and says NATS is not reachable.
  EXPECT_TRUE(net_.wait_log(2, log_has(expect_log::unreachable), 0, nats_connect_timeout))
      << "server c (wrong password) did not log '" << expect_log::unreachable << "'";
  EXPECT_EQ(net_.count_log(2, log_has(expect_log::connected)), 0u);
  // Credentials never reach the log.
  for (std::size_t i = 0; i < net_.size(); ++i) {
    EXPECT_EQ(net_.count_log(i, log_has("s3cret")), 0u) << "server " << net_.name(i) << " logged the password";
    EXPECT_EQ(net_.count_log(i, log_has("wrong@")), 0u) << "server " << net_.name(i) << " logged the password";
  }
}

}  // namespace
}  // namespace mles::test
