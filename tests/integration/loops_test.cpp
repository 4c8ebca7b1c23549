// Two event loops (issue 11, item 7): a message published on one loop reaches members on both
// loops exactly once and, per publisher, in order; a newcomer joining mid-stream gets the
// history, then live traffic, with no gap, duplicate or reordering per publisher.
//
// Where connections land: the listener hands each accepted socket to the next loop, round
// robin (net/listener.cpp), and nothing else connects while the members are opened one after
// the other here. With 2 loops, consecutive connections therefore alternate between the loops
// whatever loop the first one got. The server does not expose which loop a connection is on,
// so the layout below relies on that rule: each channel's members are opened consecutively,
// publishers first, so a channel's 3 publishers sit on both loops (2 + 1) and so do its
// subscribers (3 + 2, after the publishers), and the two newcomers of a channel are opened
// with an odd number of connections between them (one per loop). Every recipient thus gets
// one publisher's messages from its own loop (local queue) and another's from the other loop
// (the locked remote queue and its posted flush).
#include "integration_test.hpp"

#include <array>
#include <atomic>
#include <latch>
#include <mutex>
#include <thread>

namespace mles::test {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

constexpr int channels = 2;
constexpr int publishers = 3;   // per channel
constexpr int subscribers = 5;  // per channel, besides the publishers (who receive too)
constexpr int newcomers = 2;    // per channel, joining mid-stream
// Messages per publisher. A sanitizer build on this 2-core box runs ~10x slower.
constexpr int per_publisher = sanitized ? 5'000 : 20'000;
// Generous: the suite runs under ASan on a busy 2-core box. A lost message shows as this wait.
constexpr millis read_deadline{60'000};

// Message seq of publisher p on channel c: "c<c>p<p>#<seq>|" padded to size_of(seq) with one
// letter. Mostly small (coalesced into the loop's write buffer), some of 5 KiB (sent from their
// own buffer, more than one TLS record with the header) and some of 70 KiB (more than the
// loop's 64 KiB read buffer: received in pieces).
std::size_t size_of(int seq) {
  if (seq % 500 == 499) return 70 * 1024;
  if (seq % 100 == 50) return 5 * 1024;
  return 24 + static_cast<std::size_t>(seq % 40);
}
char fill_of(int seq) { return static_cast<char>('a' + seq % 26); }

std::string payload_of(int c, int p, int seq) {
  std::string s = "c" + std::to_string(c) + "p" + std::to_string(p) + "#" + std::to_string(seq) + "|";
  s.resize(std::max(s.size(), size_of(seq)), fill_of(seq));
  return s;
}

// What one member has seen so far: the next sequence number expected from each publisher of
// its channel. Anything else (another channel, a number out of turn, a wrong size or body) is
// a failure described in words.
struct tally {
  int channel = 0;
  int self = -1;  // this member's publisher index, -1 for a subscriber
  std::array<int, publishers> next{};

  bool complete() const {
    for (int p = 0; p < publishers; ++p) {
      if (p != self && next[static_cast<std::size_t>(p)] != per_publisher) return false;
    }
    return true;
  }
  int received() const {
    int n = 0;
    for (int v : next) n += v;
    return n;
  }
  // Empty when m is the next message of its publisher.
  std::string check(const message& m) {
    const std::string& s = m.payload;
    int c = -1, p = -1, seq = -1;
    char bar = 0;
    if (std::sscanf(s.c_str(), "c%dp%d#%d%c", &c, &p, &seq, &bar) != 4 || bar != '|') {
      return "unexpected message '" + shorten(s) + "'";
    }
    if (c != channel) return "a message of channel " + std::to_string(c) + ": " + shorten(s);
    if (p < 0 || p >= publishers) return "from an unknown publisher: " + shorten(s);
    if (p == self) return "its own message came back: " + shorten(s);
    int& want = next[static_cast<std::size_t>(p)];
    if (seq != want) {
      return "from publisher " + std::to_string(p) + " got #" + std::to_string(seq) + ", expected #" +
             std::to_string(want) + (seq < want ? " (a duplicate or reordering)" : " (a gap or reordering)");
    }
    if (s != payload_of(c, p, seq)) {
      return "publisher " + std::to_string(p) + " #" + std::to_string(seq) + ": " + std::to_string(s.size()) +
             " bytes, body differs from the " + std::to_string(size_of(seq)) + " sent";
    }
    ++want;
    return {};
  }
};

class mles_two_loops : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_two_loops);

TEST_P(mles_two_loops, cross_loop_delivery_keeps_each_publishers_order_and_loses_nothing) {
  const auto t0 = steady::now();
  auto& s = start([](app::config& c) {
    c.threads = 2;
    c.history_limit = publishers * per_publisher + 100;  // a newcomer gets every message from #0
    c.history_total = std::size_t{1} << 30;
    // Publishers send everything before they read: their queues hold the others' messages.
    c.max_queue = std::size_t{256} << 20;
  });

  struct member {
    std::string uid;
    tally seen;
    std::unique_ptr<ws_client> client;
  };
  std::vector<member> members;  // publishers and subscribers, joined before the flood
  for (int c = 0; c < channels; ++c) {
    const std::string channel = "loops" + std::to_string(c);
    for (int k = 0; k < publishers + subscribers; ++k) {
      const bool pub = k < publishers;
      std::string uid = (pub ? "pub" : "sub") + std::to_string(c) + "-" + std::to_string(pub ? k : k - publishers);
      auto client = k == 0 ? s.join_first(uid, channel) : s.join(uid, channel);
      ASSERT_TRUE(client->connected()) << uid;
      // The join is processed (the pong follows it) before the next connection is opened.
      ASSERT_TRUE(client->sync(read_deadline)) << uid << ": " << client->error();
      members.push_back({std::move(uid), tally{c, pub ? k : -1, {}}, std::move(client)});
    }
  }
  // Each member got the earlier members' join frames as its history (skipped below).

  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::atomic<bool> failed{false};
  auto fail = [&](const std::string& who, std::string what) {
    failed = true;
    std::lock_guard lock(failures_mutex);
    failures.push_back(who + ": " + std::move(what));
  };
  // Reads until the tally is complete, then checks that nothing more is queued.
  auto drain = [&](const std::string& who, ws_client& client, tally& seen) {
    while (!seen.complete()) {
      if (failed) return;
      const message m = client.read_message(read_deadline, pong_policy::answer_pings);
      if (!m.ok() || m.opcode == op::close) {
        return fail(who, "after " + std::to_string(seen.received()) + " messages: " +
                             (m.opcode == op::close ? "close " + std::to_string(m.close_code) : to_string(m.status)) +
                             " " + client.error());
      }
      // Join frames come only in the history replayed at join (earlier members', the first
      // newcomer's for the second); they are never delivered live.
      if (m.opcode == op::text && m.payload.rfind("{\"uid\":", 0) == 0) continue;
      if (m.opcode != op::binary) return fail(who, "a " + std::string(opcode_name(m.opcode)) + " message");
      if (std::string why = seen.check(m); !why.empty()) return fail(who, why);
    }
    if (!client.sync(read_deadline)) return fail(who, "sync: " + client.error());
    for (;;) {
      const read_result extra = client.read_frame(0ms);
      if (!extra.ok()) break;
      if (extra.f.opcode == op::ping || extra.f.opcode == op::pong) continue;  // liveness
      // A newcomer's history may end with a later newcomer's join (should a join be processed
      // after the whole flood on a stalled box); anything else is one message too many.
      if (extra.f.opcode == op::text && extra.f.payload.rfind("{\"uid\":", 0) == 0) continue;
      return fail(who, "an extra message after all: " + describe(extra.f));
    }
  };

  std::array<std::atomic<int>, channels> sent0{};   // publisher 0's progress per channel
  std::array<std::atomic<int>, channels> joined{};  // newcomers whose join frame is sent
  // Newcomer r of a channel joins when its publishers reach r/(newcomers + 1) of their flood:
  // each publisher waits there until that join frame is on its way, then goes on, so the join
  // races with a flood from both loops and every newcomer gets part of every publisher's
  // messages from the history and the rest live. (Waiting until the join was processed would
  // hide an ordering fault: nothing live would be queued beside the history.)
  auto threshold_of = [](int round) { return round * per_publisher / (newcomers + 1); };
  std::latch go(static_cast<std::ptrdiff_t>(members.size()));
  std::vector<std::thread> threads;
  for (auto& mem : members) {
    threads.emplace_back([&, m = &mem] {
      go.arrive_and_wait();
      if (m->seen.self >= 0) {
        const auto c = static_cast<std::size_t>(m->seen.channel);
        for (int i = 0, round = 1; i < per_publisher; ++i) {
          if (failed) return;
          if (round <= newcomers && i == threshold_of(round)) {
            if (!wait_until([&] { return joined[c].load() >= round || failed.load(); }, read_deadline)) {
              return fail(m->uid, "newcomer " + std::to_string(round) + " never joined");
            }
            ++round;
          }
          if (!m->client->send_binary(payload_of(m->seen.channel, m->seen.self, i))) {
            return fail(m->uid, "send #" + std::to_string(i) + ": " + m->client->error());
          }
          if (m->seen.self == 0) sent0[c] = i + 1;
        }
      }
      drain(m->uid, *m->client, m->seen);
    });
  }

  // Newcomers, one per loop per channel: at a third of the flood channel 0's then channel 1's,
  // at two thirds channel 1's then channel 0's (each channel's two are 3 or 1 connections
  // apart: one on each loop).
  struct newcomer {
    std::string uid;
    tally seen;
    std::unique_ptr<ws_client> client;
  };
  std::vector<newcomer> late;
  late.reserve(channels * newcomers);
  std::vector<std::thread> late_threads;
  for (int round = 1; round <= newcomers && !failed; ++round) {
    const int threshold = threshold_of(round);
    for (int k = 0; k < channels; ++k) {
      const int c = round % 2 == 1 ? k : channels - 1 - k;
      const bool reached = wait_until(
          [&] { return sent0[static_cast<std::size_t>(c)].load() >= threshold || failed.load(); }, read_deadline);
      if (!reached) {
        fail("main", "publisher 0 of channel " + std::to_string(c) + " never reached #" + std::to_string(threshold));
        break;
      }
      std::string uid = "new" + std::to_string(c) + "-" + std::to_string(round);
      auto client = s.join(uid, "loops" + std::to_string(c));
      joined[static_cast<std::size_t>(c)] = round;
      // The pong comes after the join is processed (what is read meanwhile is kept): the next
      // connection is opened only then, so the round robin puts it on the other loop.
      if (!client->sync(read_deadline)) fail(uid, "sync after the join: " + client->error());
      late.push_back({std::move(uid), tally{c, -1, {}}, std::move(client)});
      newcomer* n = &late.back();
      late_threads.emplace_back([&, n] { drain(n->uid, *n->client, n->seen); });
    }
  }

  for (auto& t : threads) t.join();
  for (auto& t : late_threads) t.join();
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(late.size(), static_cast<std::size_t>(channels * newcomers));
  EXPECT_EQ(s.stats().slow_consumer_closes, 0u);
  std::printf("[ info ] %d channels x (%d publishers x %d messages, %d subscribers, %d newcomers), 2 loops: %lld ms\n",
              channels, publishers, per_publisher, subscribers, newcomers,
              static_cast<long long>(std::chrono::duration_cast<millis>(steady::now() - t0).count()));
}

}  // namespace
}  // namespace mles::test
