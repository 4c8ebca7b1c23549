// End-to-end tests of operating the real `mles` binary (issue 9, item 6): SIGHUP re-reads
// --tls-cert/--tls-key without dropping sessions, and a --takeover successor takes the port
// over while the old process drains (README, "Upgrade without downtime").
#include "support/child_process.hpp"
#include "support/mles_binary.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Generous for a sanitizer build on a busy 2-core box.
constexpr millis patience{30'000};

std::vector<std::string> base_args(const temp_dir& www, const std::string& port) {
  return {MLES_BINARY, "--port", port, "--bind", "127.0.0.1", "--domains", "localhost", "--wwwroot",
          www.path().string(), "--threads", "2"};
}

std::unique_ptr<ws_client> member(std::uint16_t port, transport mode, const std::string& uid,
                                  const std::string& channel) {
  auto c = std::make_unique<ws_client>();
  connect_options o;
  o.mode = mode;
  o.timeout = patience;
  if (!c->connect(port, o)) {
    ADD_FAILURE() << uid << ": connect to " << port << ": " << c->error();
    return c;
  }
  const http_response r = c->handshake();
  if (r.code != 101) ADD_FAILURE() << uid << ": upgrade: " << r.describe();
  if (!c->join(uid, channel)) ADD_FAILURE() << uid << ": join: " << c->error();
  return c;
}

::testing::AssertionResult receives_text(ws_client& c, const std::string& payload) {
  const message m = c.read_message(patience);
  if (m.ok() && m.opcode == op::text && m.payload == payload) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected '" << payload << "', got " << to_string(m.status) << " "
                                       << opcode_name(m.opcode) << " '" << m.payload << "' " << c.error();
}

// Reads messages (history first) until this one; bounded.
::testing::AssertionResult reads_until(ws_client& c, const std::string& payload) {
  for (int i = 0; i < 100; ++i) {
    const message m = c.read_message(patience);
    if (!m.ok() || m.opcode == op::close)
      return ::testing::AssertionFailure() << "waiting for '" << payload << "': " << to_string(m.status) << " "
                                           << opcode_name(m.opcode) << " " << c.error();
    if (m.opcode == op::text && m.payload == payload) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "'" << payload << "' not among 100 messages";
}

// a joined first (and was confirmed), then b: b's history starts with a's join (SPEC: members
// present do not see a join); then a message each way.
::testing::AssertionResult exchange(ws_client& a, ws_client& b, const std::string& a_uid, const std::string& channel) {
  if (auto r = receives_text(b, ws_client::join_text(a_uid, channel)); !r) return r << " (a's join in b's history)";
  if (!a.send_text("from a")) return ::testing::AssertionFailure() << "a send: " << a.error();
  if (auto r = receives_text(b, "from a"); !r) return r << " (at b)";
  if (!b.send_text("from b")) return ::testing::AssertionFailure() << "b send: " << b.error();
  if (auto r = receives_text(a, "from b"); !r) return r << " (at a)";
  return ::testing::AssertionSuccess();
}

// A fresh TLS connection: which certificate does the server present now?
bool new_connection_presents(std::uint16_t port, const fs::path& cert) {
  ws_client c;
  connect_options o;
  o.mode = transport::tls;
  o.timeout = patience;
  if (!c.connect(port, o)) {
    ADD_FAILURE() << "TLS connect: " << c.error();
    return false;
  }
  return c.peer_certificate_is(cert.string());
}

TEST(mles_reload, sighup_serves_the_new_certificate_to_new_connections_and_keeps_sessions) {
  temp_dir www, certs;
  const fs::path cert = certs.path() / "cert.pem", key = certs.path() / "key.pem";
  const fs::path first = certs.path() / "first.pem", first_key = certs.path() / "first.key";
  write_test_certificate(first, first_key, "localhost");
  fs::copy_file(first, cert);
  fs::copy_file(first_key, key);
  auto args = base_args(www, "0");
  args.insert(args.end(), {"--tls-cert", cert.string(), "--tls-key", key.string(), "--log-level", "info"});
  started_binary s = start_binary(args, {}, patience);
  ASSERT_NE(s.port, 0);

  auto a = member(s.port, transport::tls, "alice", "reload");
  ASSERT_TRUE(a->peer_certificate_is(first.string()));
  ASSERT_TRUE(a->sync()) << a->error();

  // A new certificate and key in place of the old ones, then SIGHUP.
  write_test_certificate(cert, key, "localhost");
  ASSERT_FALSE(new_connection_presents(s.port, cert)) << "new certificate served before SIGHUP";
  s.process->signal(SIGHUP);
  ASSERT_TRUE(s.process->wait_stderr_line("reload: certificate", patience)) << joined_lines(s.process->err_lines());
  EXPECT_TRUE(new_connection_presents(s.port, cert));
  auto b = member(s.port, transport::tls, "bob", "reload");
  EXPECT_TRUE(b->peer_certificate_is(cert.string()));
  EXPECT_TRUE(a->peer_certificate_is(first.string()));  // the open session keeps its TLS state
  EXPECT_TRUE(exchange(*a, *b, "alice", "reload"));

  // A broken key: an error, and the certificate served stays the last good one.
  const fs::path good = certs.path() / "good.pem";
  fs::copy_file(cert, good);
  { std::ofstream(key, std::ios::trunc) << "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"; }
  write_test_certificate(cert, certs.path() / "unused.key", "localhost");  // a certificate without its key
  s.process->signal(SIGHUP);
  const auto error = s.process->wait_stderr_line("still serving the previous certificate", patience);
  ASSERT_TRUE(error) << joined_lines(s.process->err_lines());
  EXPECT_NE(error->find("error"), std::string::npos) << *error;
  EXPECT_NE(error->find("reload: "), std::string::npos) << *error;
  EXPECT_TRUE(new_connection_presents(s.port, good));
  auto c = member(s.port, transport::tls, "carol", "reload");
  ASSERT_TRUE(reads_until(*c, "from b"));  // the end of the history: carol has joined
  ASSERT_TRUE(c->send_text("after the failed reload"));
  EXPECT_TRUE(receives_text(*a, "after the failed reload"));
  EXPECT_TRUE(receives_text(*b, "after the failed reload"));

  s.process->signal(SIGTERM);
  EXPECT_EQ(a->expect_close(patience).value_or(0), 1001);
  EXPECT_EQ(s.process->wait_exit(patience).value_or(-1), 0) << joined_lines(s.process->err_lines());
}

TEST(mles_reload, sighup_without_certificate_files_changes_nothing) {
  temp_dir www;
  auto args = base_args(www, "0");
  args.insert(args.end(), {"--no-tls", "--log-level", "info"});
  started_binary s = start_binary(args, {}, patience);
  ASSERT_NE(s.port, 0);
  auto a = member(s.port, transport::plain, "alice", "hup");
  ASSERT_TRUE(a->sync()) << a->error();
  s.process->signal(SIGHUP);
  ASSERT_TRUE(s.process->wait_stderr_line("reload: no --tls-cert", patience)) << joined_lines(s.process->err_lines());
  auto b = member(s.port, transport::plain, "bob", "hup");
  EXPECT_TRUE(exchange(*a, *b, "alice", "hup"));
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait_exit(patience).value_or(-1), 0);
}

TEST(mles_takeover, a_second_start_on_a_taken_port_fails_without_takeover) {
  temp_dir www;
  const auto port = std::to_string(free_loopback_ports(1).front());
  auto args = base_args(www, port);
  args.push_back("--no-tls");
  started_binary first = start_binary(args, {}, patience);
  ASSERT_NE(first.port, 0);
  child_process second(args);
  const auto code = second.wait_exit(patience);
  ASSERT_TRUE(code) << "a second mles on a taken port is still running";
  EXPECT_EQ(*code, 1);
  EXPECT_NE(second.err().find("Address already in use"), std::string::npos) << second.err();
  EXPECT_NE(second.err().find("--takeover"), std::string::npos) << second.err();
  // The first one is unharmed.
  auto a = member(first.port, transport::plain, "alice", "first");
  EXPECT_TRUE(a->sync()) << a->error();
  first.process->signal(SIGTERM);
  EXPECT_EQ(first.process->wait_exit(patience).value_or(-1), 0);
}

// Clients connecting again and again (TCP, then the WebSocket upgrade) from a few threads at
// once until told to stop; counts what a client would see as an outage. Several at once so
// that connections are in the old server's accept queue when it stops.
struct connect_loop {
  std::uint16_t port;
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0}, refused{0}, reset{0}, ended{0}, upgraded{0};
  std::mutex mutex;
  std::string first_error;
  std::vector<std::thread> threads;

  explicit connect_loop(std::uint16_t p, int parallel = 4) : port(p) {
    for (int t = 0; t < parallel; ++t) threads.emplace_back([this] { run(); });
  }
  ~connect_loop() { finish(); }
  void finish() {
    stop = true;
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }

 private:
  void note(const std::string& what) {
    std::lock_guard lock(mutex);
    if (first_error.empty()) first_error = what;
  }
  void run() {
    const auto limit = steady::now() + 4 * patience;
    for (int i = 0; i < 20'000 && !stop && steady::now() < limit; ++i) {
      ws_client c;
      connect_options o;
      o.timeout = patience;
      ++attempts;
      if (!c.connect(port, o)) {
        note("connect: " + c.error());
        ++refused;
        continue;
      }
      const http_response r = c.handshake();
      if (r.code == 101) {
        ++upgraded;
      } else if (r.status == io_status::error) {  // a reset: a connection lost in a closed queue
        note("upgrade: " + r.describe() + " " + c.error());
        ++reset;
      } else {
        ++ended;  // answered or ended cleanly by the stopping server
      }
      std::this_thread::sleep_for(1ms);
    }
  }
};

TEST(mles_takeover, a_successor_takes_the_port_while_the_old_one_drains) {
  temp_dir www;
  const auto port = free_loopback_ports(1).front();
  auto args = base_args(www, std::to_string(port));
  args.push_back("--no-tls");
  started_binary old = start_binary(args, {}, patience);
  ASSERT_EQ(old.port, port);
  auto a = member(port, transport::plain, "alice", "upgrade");
  ASSERT_TRUE(a->sync()) << a->error();
  auto b = member(port, transport::plain, "bob", "upgrade");
  ASSERT_TRUE(exchange(*a, *b, "alice", "upgrade"));

  connect_loop loop(port);
  auto successor_args = args;
  successor_args.push_back("--takeover");
  started_binary successor = start_binary(successor_args, {}, patience);
  ASSERT_EQ(successor.port, port) << joined_lines(successor.process->err_lines());

  // Both listen now; the old one stops: its members get 1001, it exits 0.
  old.process->signal(SIGTERM);
  EXPECT_EQ(a->expect_close(patience).value_or(0), 1001) << a->error();
  EXPECT_EQ(b->expect_close(patience).value_or(0), 1001) << b->error();
  EXPECT_EQ(old.process->wait_exit(patience).value_or(-1), 0) << joined_lines(old.process->err_lines());

  // A few more connections after the old one is gone, then the loop ends.
  const int seen = loop.attempts.load();
  for (int i = 0; i < 3000 && loop.attempts.load() < seen + 80; ++i) std::this_thread::sleep_for(10ms);
  loop.finish();
  EXPECT_EQ(loop.refused.load(), 0) << loop.refused.load() << " of " << loop.attempts.load()
                                    << " connections failed during the switch, first: " << loop.first_error;
  EXPECT_EQ(loop.reset.load(), 0) << loop.reset.load() << " of " << loop.attempts.load()
                                  << " connections were reset during the switch, first: " << loop.first_error;
  EXPECT_GE(loop.attempts.load(), seen + 80);
  std::printf("switch: %d connections, %d upgraded, %d ended by the stopping server\n", loop.attempts.load(),
              loop.upgraded.load(), loop.ended.load());
  EXPECT_GT(loop.upgraded.load(), 0);

  // New clients reach the successor (the old process is gone).
  auto c = member(port, transport::plain, "carol", "upgrade");
  ASSERT_TRUE(c->sync()) << c->error();
  auto d = member(port, transport::plain, "dave", "upgrade");
  EXPECT_TRUE(exchange(*c, *d, "carol", "upgrade"));
  successor.process->signal(SIGTERM);
  EXPECT_EQ(successor.process->wait_exit(patience).value_or(-1), 0) << joined_lines(successor.process->err_lines());
}

}  // namespace
}  // namespace mles::test
