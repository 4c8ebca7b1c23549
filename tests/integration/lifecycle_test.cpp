// Session lifetimes and server-wide behaviour against the real server: liveness pings,
// handshake/join timeouts, slow consumers, graceful stop, per-IP rate limit, TLS
// parameters, and a multi-threaded server under concurrent load.
#include "integration_test.hpp"

#include <openssl/ssl.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <thread>

namespace mles::test {
namespace {

std::string join_of(std::string_view uid, std::string_view channel) { return ws_client::join_text(uid, channel); }

millis since(steady::time_point t0) { return std::chrono::duration_cast<millis>(steady::now() - t0); }

// ---------------------------------------------------------------------------------------------
// Liveness with the interval shrunk to 1 s: a session is closed after three silent intervals,
// so the test client must answer within 3 s even when a sanitizer build on a busy box stalls
// it (a shorter interval made the "keeps" tests race the server's timer).

constexpr millis ping_interval{1000};

class mles_liveness : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_liveness);

TEST_P(mles_liveness, pings_a_silent_session_and_closes_it_after_three_intervals) {
  auto& s = start([](app::config& c) { c.ping_interval = ping_interval; });
  auto a = s.join_first("silent", "live");
  const auto t0 = steady::now();  // the sync ping in join_first was the last thing a sent
  std::size_t pings = 0;
  bool close_frame = false;
  for (;;) {
    read_result r = a->read_frame(5s);
    if (r.status == io_status::timeout) FAIL() << "a silent session is still open after " << since(t0).count() << " ms";
    if (!r.ok()) break;
    if (r.f.opcode == op::ping) ++pings;
    if (r.f.opcode == op::close) {
      close_frame = true;
      break;
    }
  }
  const millis elapsed = since(t0);
  EXPECT_GE(pings, 2u) << "the server sent too few pings before giving up";
  EXPECT_GE(elapsed, 2 * ping_interval) << "closed before three silent intervals (close frame: " << close_frame << ")";
  EXPECT_LE(elapsed, 4 * ping_interval + 3000ms) << "closed long after three silent intervals";
  EXPECT_TRUE(a->wait_closed()) << a->error();
}

TEST_P(mles_liveness, keeps_a_session_that_answers_pings) {
  auto& s = start([](app::config& c) { c.ping_interval = ping_interval; });
  auto a = s.join_first("awake", "live");
  const auto until = steady::now() + 5 * ping_interval;
  std::size_t pings = 0;
  while (steady::now() < until) {
    read_result r = a->read_frame(std::chrono::duration_cast<millis>(until - steady::now()));
    if (r.status == io_status::timeout) break;
    ASSERT_TRUE(r.ok()) << "a session answering pings was closed: " << to_string(r.status) << " " << a->error();
    ASSERT_NE(r.f.opcode, op::close) << "a session answering pings was closed: " << describe(r.f);
    if (r.f.opcode == op::ping) {
      ++pings;
      ASSERT_TRUE(a->send_pong(r.f.payload));
    }
  }
  EXPECT_GE(pings, 3u) << "pings every " << ping_interval.count() << " ms expected";
  EXPECT_LE(pings, 8u) << "pings far more often than every " << ping_interval.count() << " ms";
  auto b = s.join("b", "live");
  ASSERT_TRUE(receives_text(*b, join_of("awake", "live")));
  ASSERT_TRUE(b->send_text("still there?"));
  const message m = a->read_message(default_timeout, pong_policy::answer_pings);
  EXPECT_TRUE(m.ok() && m.payload == "still there?") << to_string(m.status) << " '" << m.payload << "'";
}

TEST_P(mles_liveness, keeps_a_session_that_sends_data_but_never_answers_pings) {
  auto& s = start([](app::config& c) { c.ping_interval = ping_interval; });
  auto a = s.join_first("talker", "live");
  auto b = s.join("b", "live");
  ASSERT_TRUE(receives_text(*b, join_of("talker", "live")));
  const auto until = steady::now() + 5 * ping_interval;
  int sent = 0;
  while (steady::now() < until) {
    ASSERT_TRUE(a->send_text("tick " + std::to_string(sent))) << a->error();
    // b answers its pings (it must stay alive too) and gets every tick.
    const message m = b->read_message(default_timeout, pong_policy::answer_pings);
    ASSERT_TRUE(m.ok() && m.payload == "tick " + std::to_string(sent))
        << sent << ": " << to_string(m.status) << " '" << m.payload << "' " << b->error();
    ++sent;
    // Half an interval of reading on a, pings ignored: the pacing of the talker.
    read_result r = a->read_frame(ping_interval / 2);
    if (r.status == io_status::timeout) continue;
    ASSERT_TRUE(r.ok()) << "a talking session was closed: " << to_string(r.status);
    ASSERT_NE(r.f.opcode, op::close) << "a talking session was closed: " << describe(r.f);
  }
  EXPECT_GE(sent, 5);
}

// ---------------------------------------------------------------------------------------------
// Handshake and join timeouts

constexpr millis short_timeout{300};

class mles_timeouts : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_timeouts);

TEST_P(mles_timeouts, closes_an_upgraded_session_that_never_joins) {
  auto& s = start([](app::config& c) { c.join_timeout = short_timeout; });
  auto c = s.open();
  const auto t0 = steady::now();
  ASSERT_TRUE(connection_ends(*c)) << "still open " << since(t0).count() << " ms after the upgrade";
  EXPECT_GE(since(t0), short_timeout - 50ms);
}

TEST_P(mles_timeouts, does_not_close_a_joined_session_at_the_join_timeout) {
  // The join must arrive before the timeout: 2 s leaves a busy sanitizer build time for it.
  static constexpr millis join_timeout{2000};
  auto& s = start([](app::config& c) { c.join_timeout = join_timeout; });
  auto c = s.join_first("u", "joined");
  read_result r = c->read_frame(2 * join_timeout);
  EXPECT_EQ(r.status, io_status::timeout) << "joined session ended: " << describe(r.f) << " " << c->error();
  EXPECT_TRUE(c->sync()) << c->error();
}

TEST_P(mles_timeouts, closes_a_connection_that_sends_nothing) {
  auto& s = start([](app::config& c) { c.handshake_timeout = short_timeout; });
  connect_options o = s.client_options();
  o.tls_handshake = false;  // not even a TLS ClientHello
  auto c = s.connect(o);
  const auto t0 = steady::now();
  ASSERT_TRUE(connection_ends(*c)) << "still open " << since(t0).count() << " ms after connect";
  EXPECT_GE(since(t0), short_timeout - 50ms);
}

TEST_P(mles_timeouts, closes_a_connection_whose_request_head_never_ends) {
  // The TLS handshake must finish before the timeout: 2 s leaves a busy sanitizer build time.
  static constexpr millis handshake_timeout{2000};
  auto& s = start([](app::config& c) { c.handshake_timeout = handshake_timeout; });
  auto c = s.connect();  // TLS handshake done in TLS mode
  ASSERT_TRUE(c->send_raw("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"));
  const auto t0 = steady::now();
  ASSERT_TRUE(connection_ends(*c)) << "still open " << since(t0).count() << " ms after a partial request";
}

// ---------------------------------------------------------------------------------------------
// Slow consumer (issue item 4): a member that never reads is disconnected; nobody else waits.

class mles_backpressure : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_backpressure);

TEST_P(mles_backpressure, disconnects_a_member_that_never_reads_while_the_others_get_everything) {
  auto& s = start([](app::config& c) { c.max_queue = 256 * 1024; });
  auto reader = s.join_first("reader", "flood");
  connect_options small = s.client_options();
  small.rcvbuf = 4096;
  auto slow = s.connect(small);
  ASSERT_EQ(slow->handshake().code, 101);
  ASSERT_TRUE(slow->join("slow", "flood"));
  ASSERT_TRUE(receives_text(*slow, join_of("reader", "flood")));
  auto pub = s.join("pub", "flood");
  ASSERT_TRUE(receives_all(*pub, {text(join_of("reader", "flood")), text(join_of("slow", "flood"))}));

  // The reader reads on its own thread while the publisher floods.
  std::string reader_failure;
  std::atomic<int> reader_count{0};
  std::atomic<bool> reader_stopped{false};
  bool reader_saw_end = false;
  std::thread reader_thread([&] {
    struct mark_stopped {
      std::atomic<bool>& flag;
      ~mark_stopped() { flag = true; }
    } guard{reader_stopped};
    for (;;) {
      const message m = reader->read_message(10s, pong_policy::answer_pings);
      if (!m.ok() || m.opcode == op::close) {
        reader_failure = "reader's session ended after " + std::to_string(reader_count.load()) +
                         " messages: " + to_string(m.status) + " close " + std::to_string(m.close_code);
        return;
      }
      if (m.opcode == op::text && m.payload == "END") {
        reader_saw_end = true;
        return;
      }
      const std::string expected_prefix = "seq " + std::to_string(reader_count.load()) + "|";
      if (m.payload.compare(0, expected_prefix.size(), expected_prefix) != 0) {
        reader_failure = "message " + std::to_string(reader_count.load()) + " is '" + shorten(m.payload) + "'";
        return;
      }
      ++reader_count;
    }
  });

  constexpr std::size_t message_size = 16 * 1024;
  constexpr int max_messages = 4096;  // 64 MiB at most
  // The publisher keeps at most `window` messages ahead of the reader (64 KiB, a quarter of
  // max_queue): the reader is never a slow consumer, the member that never reads is.
  constexpr int window = 4;
  int sent = 0;
  int after_close = -1;
  for (; sent < max_messages; ++sent) {
    if (!wait_until([&] { return reader_count.load() >= sent - window || reader_stopped.load(); }, 10s)) {
      ADD_FAILURE() << "the reader stalled at " << reader_count.load() << " of " << sent << " messages";
      break;
    }
    std::string payload = "seq " + std::to_string(sent) + "|";
    payload.resize(message_size, 'f');
    if (!pub->send_binary(payload)) {
      ADD_FAILURE() << "publisher blocked or closed after " << sent << " messages: " << pub->error();
      break;
    }
    if (after_close < 0 && sent % 16 == 0 && s.stats().slow_consumer_closes >= 1) after_close = 0;
    if (after_close >= 0 && ++after_close > 200) {
      ++sent;
      break;
    }
  }
  pub->send_text("END");
  reader_thread.join();

  EXPECT_TRUE(reader_failure.empty()) << reader_failure;
  EXPECT_TRUE(reader_saw_end) << "the reader did not get every message";
  EXPECT_EQ(reader_count.load(), sent);
  EXPECT_GE(s.stats().slow_consumer_closes, 1u) << "no slow-consumer disconnect after " << sent << " messages of "
                                                << message_size << " bytes";

  // The slow member finds, after what fitted in its buffers, a close 1008 or the end.
  std::optional<std::uint16_t> code;
  int slow_got = 0;
  for (;;) {
    read_result r = slow->read_frame(5s);
    if (r.status == io_status::timeout) {
      FAIL() << "the slow member is still connected after reading " << slow_got << " messages";
    }
    if (!r.ok()) break;
    if (r.f.opcode == op::close) {
      code = r.f.close_code();
      break;
    }
    if (r.f.is_data()) ++slow_got;
  }
  EXPECT_LT(slow_got, sent);
  if (code) {
    EXPECT_EQ(*code, 1008) << "the slow member's close code";
  }
  EXPECT_TRUE(wait_until([&] { return s.stats().sessions == 2; })) << "sessions: " << s.stats().sessions;
}

// The TCP state of a client socket (TCP_ESTABLISHED, TCP_CLOSE, ...).
int tcp_state(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
  return info.tcpi_state;
}

// A member dropped as a slow consumer cannot take its close frame either: its buffers are
// full. Once the close timeout passes the server resets the connection, so that the kernel
// drops what it still held for it. A plain close() left an orphaned socket retrying the
// delivery for minutes, the member's end still established, beyond every bound of ours.
TEST_P(mles_backpressure, resets_a_dropped_member_that_cannot_take_its_close_frame) {
  auto& s = start([](app::config& c) {
    // Larger than what one read of the publisher's can queue at once: the member's kernel
    // buffers fill first, then the queue overflows with the close frame stuck behind them.
    c.max_queue = 1024 * 1024;
    c.close_timeout = 1000ms;
  });
  connect_options small = s.client_options();
  small.rcvbuf = 4096;
  auto slow = s.connect(small);
  ASSERT_EQ(slow->handshake().code, 101);
  ASSERT_TRUE(slow->join("slow", "stall"));
  auto pub = s.join("pub", "stall");
  ASSERT_TRUE(receives_text(*pub, join_of("slow", "stall")));

  const std::string payload(16 * 1024, 's');
  int sent = 0;
  for (; sent < 4096 && s.stats().slow_consumer_closes == 0; ++sent) {
    ASSERT_TRUE(pub->send_binary(payload)) << "publisher blocked or closed after " << sent << " messages: " << pub->error();
  }
  ASSERT_TRUE(wait_until([&] { return s.stats().slow_consumer_closes >= 1; }, 10s))
      << "no slow-consumer disconnect after " << sent << " messages of 16 KiB";
  // The server gives the close frame 1 s, then resets: the member's end sees it.
  EXPECT_TRUE(wait_until([&] { return tcp_state(slow->fd()) == TCP_CLOSE; }, 30s))
      << "the slow member's connection is still in TCP state " << tcp_state(slow->fd())
      << " (1 = established: the server's end lingers with what it could not deliver)";
  EXPECT_TRUE(wait_until([&] { return s.stats().sessions == 1; })) << "sessions: " << s.stats().sessions;
}

// Accepted sockets take TCP_NODELAY (no Nagle delay on small frames) and SO_KEEPALIVE (a
// vanished peer is found) from the listening socket. The server runs in this process: its end
// of the client's connection is the socket whose addresses are the client's, swapped.
class mles_sockets : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_sockets);

TEST_P(mles_sockets, accepted_connections_have_nodelay_and_keepalive) {
  auto& s = start();
  auto a = s.join_first("ann", "sockets");
  sockaddr_storage client_local{}, client_peer{};
  socklen_t local_len = sizeof client_local, peer_len = sizeof client_peer;
  ASSERT_EQ(::getsockname(a->fd(), reinterpret_cast<sockaddr*>(&client_local), &local_len), 0);
  ASSERT_EQ(::getpeername(a->fd(), reinterpret_cast<sockaddr*>(&client_peer), &peer_len), 0);
  int server_end = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_storage local{}, peer{};
    socklen_t l1 = sizeof local, l2 = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &l1) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &l2) != 0)
      continue;
    if (l1 == peer_len && l2 == local_len && std::memcmp(&local, &client_peer, l1) == 0 &&
        std::memcmp(&peer, &client_local, l2) == 0) {
      server_end = fd;
      break;
    }
  }
  ASSERT_GE(server_end, 0) << "the server's end of the connection was not found among this process's descriptors";
  int nodelay = 0, keepalive = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(::getsockopt(server_end, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  len = sizeof keepalive;
  ASSERT_EQ(::getsockopt(server_end, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &len), 0);
  EXPECT_EQ(nodelay, 1) << "TCP_NODELAY is off on the accepted socket";
  EXPECT_EQ(keepalive, 1) << "SO_KEEPALIVE is off on the accepted socket";
}

// ---------------------------------------------------------------------------------------------
// History bounded by bytes, and idle channels forgotten (issue items 2 and 4)

TEST(mles_history, byte_limit_drops_the_oldest_messages) {
  server_fixture s(transport::plain, [](app::config& c) { c.history_bytes = 4000; });
  auto o = s.join_first("observer", "bytes");
  auto a = s.join("a", "bytes");
  ASSERT_TRUE(receives_text(*a, join_of("observer", "bytes")));
  auto payload = [](int i) { return "m" + std::to_string(i) + std::string(998, '.'); };
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(a->send_text(payload(i)));
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(receives_text(*o, payload(i)));

  auto b = s.join("b", "bytes");
  ASSERT_TRUE(b->sync()) << b->error();
  ASSERT_TRUE(a->send_text("live"));
  std::vector<std::string> history;
  for (;;) {
    const message m = b->read_message();
    ASSERT_TRUE(m.ok()) << to_string(m.status) << " " << b->error();
    if (m.payload == "live") break;
    history.push_back(m.payload);
  }
  std::size_t bytes = 0;
  for (const auto& h : history) bytes += h.size();
  EXPECT_LE(bytes, 4000u) << history.size() << " messages in the history";
  ASSERT_GE(history.size(), 3u) << "the byte limit dropped more than needed";
  // What is kept is the newest: m(7-n) .. m6, in order.
  const int first = 7 - static_cast<int>(history.size());
  for (std::size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(history[i], payload(first + static_cast<int>(i))) << "history entry " << i;
  }
}

TEST(mles_history, an_idle_channel_without_members_is_forgotten_after_the_ttl) {
  server_fixture s(transport::plain, [](app::config& c) { c.channel_ttl = std::chrono::seconds{1}; });
  auto a = s.join_first("a", "ttl");
  ASSERT_TRUE(a->send_text("old"));
  ASSERT_TRUE(a->send_close(1000));
  ASSERT_TRUE(session_closed(*a));
  ASSERT_TRUE(wait_until([&] { return s.stats().channels == 0; }, 5s))
      << "an idle channel with a 1 s TTL is still known: channels = " << s.stats().channels;

  auto b = s.join_first("b", "ttl");
  auto c = s.join("c", "ttl");
  EXPECT_TRUE(receives_text(*c, join_of("b", "ttl"))) << "the forgotten channel's history came back";
  ASSERT_TRUE(b->send_text("new"));
  EXPECT_TRUE(receives_text(*c, "new"));
}

// ---------------------------------------------------------------------------------------------
// Graceful stop

class mles_shutdown : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_shutdown);

TEST_P(mles_shutdown, stop_closes_every_session_with_1001_and_returns_within_the_deadline) {
  auto& s = start([](app::config& c) { c.shutdown_timeout = 3000ms; });
  auto a = s.join_first("a", "bye");
  auto b = s.join("b", "bye");
  ASSERT_TRUE(receives_text(*b, join_of("a", "bye")));
  auto unjoined = s.open();
  ASSERT_TRUE(unjoined->sync()) << unjoined->error();

  const auto t0 = steady::now();
  // stop()'s own duration: the clients below may answer slowly on a busy box.
  auto stopped = std::async(std::launch::async, [&] {
    s.stop();
    return since(t0);
  });
  for (ws_client* c : {a.get(), b.get(), unjoined.get()}) {
    const auto code = c->expect_close();
    EXPECT_EQ(code.value_or(0), 1001) << c->error();
    c->send_close(1001);  // the client's half of the close handshake
    EXPECT_TRUE(c->wait_closed()) << c->error();
  }
  ASSERT_EQ(stopped.wait_for(30s), std::future_status::ready) << "stop() did not return";
  EXPECT_LE(stopped.get(), s.config().shutdown_timeout + 2000ms);

  ws_client late;
  EXPECT_FALSE(late.connect(s.port(), s.client_options()) && late.handshake().code == 101)
      << "a stopped server still upgrades connections";
}

TEST_P(mles_shutdown, stop_returns_within_the_deadline_when_clients_never_answer) {
  auto& s = start([](app::config& c) { c.shutdown_timeout = 1000ms; });
  auto a = s.join_first("a", "deaf");
  auto b = s.join("b", "deaf");
  ASSERT_TRUE(b->sync()) << b->error();

  const auto t0 = steady::now();
  auto stopped = std::async(std::launch::async, [&] { s.stop(); });
  ASSERT_EQ(stopped.wait_for(30s), std::future_status::ready) << "stop() did not return";
  EXPECT_LE(since(t0), s.config().shutdown_timeout + 2000ms);
  for (ws_client* c : {a.get(), b.get()}) {
    EXPECT_EQ(c->expect_close().value_or(0), 1001) << c->error();
    EXPECT_TRUE(c->wait_closed()) << c->error();
  }
}

// ---------------------------------------------------------------------------------------------
// Per-IP rate limit (--rate-limit)

class mles_rate_limit : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_rate_limit);

TEST_P(mles_rate_limit, drops_connections_over_the_limit_before_any_tls_or_http) {
  auto& s = start([](app::config& c) {
    c.rate_limit = 3;
    c.handshake_timeout = 10'000ms;  // a drop must not be mistaken for a timeout
  });
  std::vector<std::unique_ptr<ws_client>> allowed;
  for (int i = 0; i < 3; ++i) {
    allowed.push_back(s.join("u" + std::to_string(i), "rate"));
    ASSERT_TRUE(allowed.back()->sync()) << "connection " << i + 1 << " of 3: " << allowed.back()->error();
  }
  connect_options tcp_only = s.client_options();
  tcp_only.tls_handshake = false;
  auto fourth = s.connect(tcp_only);
  // Closed well before the 10 s handshake timeout: dropped, not timed out.
  ASSERT_TRUE(fourth->wait_closed(8s)) << "the 4th connection within a minute is still open";
  EXPECT_EQ(fourth->bytes_received(), 0u) << "the server answered before dropping";

  ws_client fifth;
  const bool upgraded = fifth.connect(s.port(), s.client_options()) && fifth.handshake().code == 101;
  EXPECT_FALSE(upgraded) << "the 5th connection within a minute was served";
  for (auto& c : allowed) EXPECT_TRUE(c->sync()) << "an allowed session suffered: " << c->error();
}

// ---------------------------------------------------------------------------------------------
// TLS parameters (issue item 3): TLS 1.2/1.3 only, ALPN http/1.1, certificate for localhost

class mles_tls : public ::testing::Test {
 protected:
  server_fixture s{transport::tls};
};

TEST_F(mles_tls, negotiates_tls_1_2_or_1_3) {
  ws_client c;
  ASSERT_TRUE(c.connect(s.port(), s.client_options())) << c.error();
  EXPECT_TRUE(c.tls_version() == "TLSv1.3" || c.tls_version() == "TLSv1.2") << c.tls_version();

  connect_options o = s.client_options();
  o.tls.max_version = TLS1_2_VERSION;
  ws_client c12;
  ASSERT_TRUE(c12.connect(s.port(), o)) << "a TLS 1.2 client: " << c12.error();
  EXPECT_EQ(c12.tls_version(), "TLSv1.2");
  EXPECT_EQ(c12.handshake().code, 101);
}

TEST_F(mles_tls, refuses_tls_1_1_and_1_0_clients) {
  for (int version : {TLS1_1_VERSION, TLS1_VERSION}) {
    connect_options o = s.client_options();
    o.tls.min_version = version;
    o.tls.max_version = version;
    o.tls.allow_legacy = true;
    ws_client c;
    EXPECT_FALSE(c.connect(s.port(), o)) << "negotiated " << c.tls_version();
    // The refusal must come from the server, not from our own library refusing to try.
    EXPECT_EQ(c.error().find("no protocols available"), std::string::npos) << c.error();
    EXPECT_NE(c.error().find("alert"), std::string::npos) << "not refused by the server: " << c.error();
  }
}

TEST_F(mles_tls, offers_tls_1_2_only_forward_secret_aead_cipher_suites) {
  connect_options modern = s.client_options();
  modern.tls.max_version = TLS1_2_VERSION;
  modern.tls.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                       "ECDHE-RSA-CHACHA20-POLY1305";
  ws_client good;
  EXPECT_TRUE(good.connect(s.port(), modern)) << "a TLS 1.2 client offering ECDHE+AEAD: " << good.error();

  // Static RSA key exchange, CBC and SHA-1 MACs are not modern.
  connect_options legacy = s.client_options();
  legacy.tls.max_version = TLS1_2_VERSION;
  legacy.tls.ciphers = "AES128-SHA:AES256-SHA:AES128-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA";
  legacy.tls.allow_legacy = true;
  ws_client bad;
  const bool connected = bad.connect(s.port(), legacy);
  EXPECT_FALSE(connected) << "negotiated a legacy TLS 1.2 cipher suite";
  EXPECT_NE(bad.error().find("alert"), std::string::npos) << "not refused by the server: " << bad.error();
}

TEST_F(mles_tls, selects_alpn_http_1_1_when_offered) {
  for (const std::vector<std::string>& offer :
       {std::vector<std::string>{"http/1.1"}, std::vector<std::string>{"h2", "http/1.1"}}) {
    connect_options o = s.client_options();
    o.tls.alpn = offer;
    ws_client c;
    ASSERT_TRUE(c.connect(s.port(), o)) << c.error();
    EXPECT_EQ(c.alpn(), "http/1.1");
    EXPECT_EQ(c.handshake().code, 101);
  }
}

TEST_F(mles_tls, presents_a_certificate_for_localhost) {
  ws_client c;
  ASSERT_TRUE(c.connect(s.port(), s.client_options())) << c.error();
  EXPECT_TRUE(c.peer_certificate_matches("localhost"));
}

// ---------------------------------------------------------------------------------------------
// A multi-threaded server under concurrent load: exactly once, per-sender order.

class mles_threads : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_threads);

TEST_P(mles_threads, delivers_every_message_exactly_once_in_sender_order) {
  constexpr int channels = 4;
  constexpr int members = 4;
  constexpr int per_member = 200;
  auto& s = start([](app::config& c) { c.threads = 4; });

  struct member {
    std::string uid;
    std::string channel;
    std::unique_ptr<ws_client> client;
  };
  std::vector<member> all;
  for (int ch = 0; ch < channels; ++ch) {
    const std::string channel = "ch" + std::to_string(ch);
    std::vector<expected_message> history;
    for (int m = 0; m < members; ++m) {
      const std::string uid = "u" + std::to_string(ch) + "-" + std::to_string(m);
      auto c = m == 0 ? s.join_first(uid, channel) : s.join(uid, channel);
      ASSERT_TRUE(receives_all(*c, history)) << uid;
      history.push_back(text(join_of(uid, channel)));
      all.push_back({uid, channel, std::move(c)});
    }
  }

  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::latch go(static_cast<std::ptrdiff_t>(all.size()));
  std::vector<std::thread> threads;
  for (auto& mem : all) {
    threads.emplace_back([&, m = &mem] {
      auto fail = [&](std::string what) {
        std::lock_guard lock(failures_mutex);
        failures.push_back(m->uid + ": " + std::move(what));
      };
      go.arrive_and_wait();
      for (int i = 0; i < per_member; ++i) {
        if (!m->client->send_binary(m->uid + "#" + std::to_string(i))) return fail("send: " + m->client->error());
      }
      std::map<std::string, int> next;
      for (int i = 0; i < (members - 1) * per_member; ++i) {
        const message msg = m->client->read_message(10s);
        if (!msg.ok() || msg.opcode != op::binary) {
          return fail("after " + std::to_string(i) + " messages: " + to_string(msg.status) + " " + m->client->error());
        }
        const auto hash = msg.payload.find('#');
        const std::string from = msg.payload.substr(0, hash);
        if (from == m->uid) return fail("received its own message " + msg.payload);
        if (from.compare(0, 3, m->uid.substr(0, 3)) != 0) return fail("message from another channel: " + msg.payload);
        const int seq = std::stoi(msg.payload.substr(hash + 1));
        if (seq != next[from]) {
          return fail("from " + from + " got #" + std::to_string(seq) + ", expected #" + std::to_string(next[from]));
        }
        ++next[from];
      }
      if (!m->client->sync()) return fail("sync: " + m->client->error());
      read_result extra = m->client->read_frame(0ms);
      if (extra.ok()) fail("an extra message: " + describe(extra.f));
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) ADD_FAILURE() << f;
}

TEST_P(mles_threads, newcomers_joining_during_a_flood_get_every_message_once_across_history_and_live) {
  constexpr int total = 3000;
  constexpr int newcomers = 5;
  auto& s = start([](app::config& c) {
    c.threads = 4;
    c.history_limit = 100'000;
  });
  auto pub = s.join_first("pub", "flood");
  std::atomic<int> sent{0};
  std::atomic<int> joins_sent{0};
  std::atomic<bool> publisher_done{false};
  std::string pub_failure;
  std::thread publisher([&] {
    struct mark_done {
      std::atomic<bool>& flag;
      ~mark_done() { flag = true; }
    } guard{publisher_done};
    for (int i = 0; i < total; ++i) {
      // Before each threshold, wait until the next newcomer's join is on its way, so that
      // every join races with messages being published.
      const int threshold = (joins_sent.load() + 1) * (total / (newcomers + 1));
      if (i == threshold && joins_sent.load() < newcomers) {
        const int want = joins_sent.load() + 1;
        if (!wait_until([&] { return joins_sent.load() >= want; }, 10s)) {
          pub_failure = "newcomer " + std::to_string(want) + " never joined";
          return;
        }
      }
      if (!pub->send_text("seq " + std::to_string(i))) {
        pub_failure = "send: " + pub->error();
        return;
      }
      sent = i + 1;
    }
  });
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int k = 1; k <= newcomers; ++k) {
    const int threshold = k * (total / (newcomers + 1));
    if (!wait_until([&] { return sent.load() >= threshold || publisher_done.load(); }, 10s)) break;
    clients.push_back(s.join("n" + std::to_string(k), "flood"));
    joins_sent = k;
  }
  publisher.join();
  ASSERT_TRUE(pub_failure.empty()) << pub_failure;
  ASSERT_EQ(clients.size(), static_cast<std::size_t>(newcomers));

  for (std::size_t k = 0; k < clients.size(); ++k) {
    ws_client& c = *clients[k];
    ASSERT_TRUE(receives_text(c, join_of("pub", "flood"))) << "newcomer " << k + 1;
    int next = 0;
    while (next < total) {
      const message m = c.read_message();
      ASSERT_TRUE(m.ok()) << "newcomer " << k + 1 << " after seq " << next - 1 << ": " << to_string(m.status);
      if (m.payload.rfind("{\"uid\":\"n", 0) == 0) continue;  // an earlier newcomer's join frame
      ASSERT_EQ(m.payload, "seq " + std::to_string(next))
          << "newcomer " << k + 1 << ": a message lost, repeated or reordered across history and live";
      ++next;
    }
  }
}

TEST_P(mles_threads, exactly_one_of_several_simultaneous_joins_of_a_uid_survives) {
  constexpr int contenders = 8;
  auto& s = start([](app::config& c) { c.threads = 4; });
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int i = 0; i < contenders; ++i) clients.push_back(s.open());
  // All join frames leave at (nearly) the same time, on sessions spread over 4 loops.
  const std::string join = join_of("same", "race");
  std::vector<std::string> encoded;
  for (int i = 0; i < contenders; ++i) encoded.push_back(encode_frame(frame_spec{.opcode = op::text, .payload = join}));
  for (int i = 0; i < contenders; ++i) ASSERT_TRUE(clients[static_cast<std::size_t>(i)]->send_raw(encoded[static_cast<std::size_t>(i)]));
  int survivors = 0;
  for (auto& c : clients) {
    if (c->sync(2s)) {
      ++survivors;
    } else {
      EXPECT_TRUE(c->wait_closed()) << "neither joined nor closed: " << c->error();
    }
  }
  EXPECT_EQ(survivors, 1) << "sessions of one uid on one channel";
  auto other = s.join("other", "race");
  EXPECT_TRUE(receives_text(*other, join)) << "the survivor's join frame should be the whole history";
  ASSERT_TRUE(other->send_text("ping all"));
  ASSERT_TRUE(other->sync());
}

TEST(mles_ipv6, serves_sessions_on_the_ipv6_loopback) {
  server_fixture s(transport::plain, [](app::config& c) { c.bind = "::1"; });
  connect_options o = s.client_options();
  o.host = "::1";
  ws_client a;
  ASSERT_TRUE(a.connect(s.port(), o)) << a.error();
  ASSERT_EQ(a.handshake().code, 101);
  ASSERT_TRUE(a.join("a", "v6"));
  ASSERT_TRUE(a.sync()) << a.error();
  ws_client b;
  ASSERT_TRUE(b.connect(s.port(), o)) << b.error();
  ASSERT_EQ(b.handshake().code, 101);
  ASSERT_TRUE(b.join("b", "v6"));
  EXPECT_TRUE(receives_text(b, join_of("a", "v6")));
  ASSERT_TRUE(a.send_text("over ipv6"));
  EXPECT_TRUE(receives_text(b, "over ipv6"));
}

}  // namespace
}  // namespace mles::test
