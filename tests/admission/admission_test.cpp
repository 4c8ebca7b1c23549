// Connection caps that answer (README, "Connection caps"): --max-connections answers 503 on
// plain HTTP and resets TLS connections at once instead of leaving them in the backlog;
// --max-handshakes bounds TLS handshakes in progress; out of descriptors (a real mles with a
// low open-file limit), clients are refused at once and static files answer 503, and the
// server serves again once clients leave.
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/mles_binary.hpp"
#include "support/server_fixture.hpp"
#include "support/test_certificate.hpp"

#include "http/path_resolver.hpp"
#include "net/admission.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;

constexpr millis generous{30'000};

std::size_t refused(const server_fixture& f, net::refusal why) {
  return f.stats().refused[static_cast<std::size_t>(why)];
}

// A client of the fixture that made one keep-alive request (so the server surely accepted it).
std::unique_ptr<http_client> served_client(server_fixture& f) {
  auto c = std::make_unique<http_client>();
  if (!c->connect(f.port(), f.client_options())) {
    ADD_FAILURE() << "connect: " << c->error();
    return c;
  }
  const http_reply r = c->exchange(http_request("GET", "/"), generous);
  if (!r.ok() || r.code == 503) ADD_FAILURE() << "expected to be served: " << r.describe() << " " << c->error();
  return c;
}

// A raw TCP client (no TLS) is closed by the server within the deadline: the reset may even
// arrive before connect() returns.
::testing::AssertionResult closed_at_once(std::uint16_t port, connect_options raw) {
  raw.tls_handshake = false;
  raw.timeout = generous;
  http_client c;
  if (!c.connect(port, raw)) {
    if (c.error().find("reset") != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "connect: " << c.error();
  }
  if (!c.wait_closed(generous)) return ::testing::AssertionFailure() << "left hanging";
  if (c.extra_bytes() != 0) return ::testing::AssertionFailure() << "answered with " << c.extra_bytes() << " bytes";
  return ::testing::AssertionSuccess();
}

// Retries (bounded in count and time) until a new client is served, not refused.
bool eventually_served(server_fixture& f) {
  const auto deadline = steady::now() + generous;
  for (int attempt = 0; attempt < 300 && steady::now() < deadline; ++attempt) {
    http_client c;
    if (c.connect(f.port(), f.client_options())) {
      const http_reply r = c.exchange(http_request("GET", "/"), 5s);
      if (r.ok() && r.code != 503) return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(max_connections, the_sixth_plain_connection_gets_503_then_a_freed_slot_serves_again) {
  server_fixture f(transport::plain, [](app::config& c) { c.max_connections = 5; });
  std::vector<std::unique_ptr<http_client>> five;
  for (int i = 0; i < 5; ++i) five.push_back(served_client(f));
  EXPECT_EQ(f.stats().connections, 5u);

  http_client sixth;
  ASSERT_TRUE(sixth.connect(f.port(), f.client_options())) << sixth.error();
  sixth.send(http_request("GET", "/"), generous);
  const http_reply r = sixth.read_response(false, generous);
  ASSERT_TRUE(r.ok()) << r.describe() << " " << sixth.error();
  EXPECT_EQ(r.code, 503);
  EXPECT_TRUE(r.header("Retry-After").has_value()) << r.describe();
  EXPECT_EQ(r.header("Connection").value_or(""), "close");
  EXPECT_TRUE(sixth.wait_closed(generous));
  EXPECT_GE(refused(f, net::refusal::connection_cap), 1u);

  // The five are still served.
  EXPECT_EQ(five[0]->exchange(http_request("GET", "/"), generous).code == 503, false);
  five.pop_back();
  EXPECT_TRUE(eventually_served(f));
}

TEST(max_connections, the_sixth_tls_connection_is_closed_at_once) {
  server_fixture f(transport::tls, [](app::config& c) { c.max_connections = 5; });
  std::vector<std::unique_ptr<http_client>> five;
  for (int i = 0; i < 5; ++i) five.push_back(served_client(f));

  EXPECT_TRUE(closed_at_once(f.port(), f.client_options()));
  EXPECT_GE(refused(f, net::refusal::connection_cap), 1u);

  five.erase(five.begin());
  EXPECT_TRUE(eventually_served(f));
}

TEST(max_handshakes, idle_tcp_connections_that_never_start_tls_fill_the_cap_and_the_next_is_closed) {
  server_fixture f(transport::tls, [](app::config& c) {
    c.max_handshakes = 3;
    c.handshake_timeout = std::chrono::milliseconds{120'000};  // the idle ones stay for the test
  });
  auto raw = f.client_options();
  raw.tls_handshake = false;
  std::vector<std::unique_ptr<http_client>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<http_client>());
    ASSERT_TRUE(idle.back()->connect(f.port(), raw)) << idle.back()->error();
  }
  // Accepted in order: by the time the fourth is accepted, the three hold the slots.
  EXPECT_TRUE(closed_at_once(f.port(), raw));
  EXPECT_GE(refused(f, net::refusal::handshake_cap), 1u);
  // A real TLS client is refused as well while the idle ones hold the slots.
  http_client tls;
  EXPECT_FALSE(tls.connect(f.port(), f.client_options()));
  // An idle one leaves: its slot frees and TLS clients are served again.
  idle.pop_back();
  EXPECT_TRUE(eventually_served(f));
  // A finished handshake gives its slot back: more sequential clients than the cap.
  std::vector<std::unique_ptr<http_client>> served;
  for (int i = 0; i < 4; ++i) served.push_back(served_client(f));
}

TEST(static_files, resource_shortages_are_503_and_missing_files_404) {
  EXPECT_TRUE(http::is_resource_shortage(EMFILE));
  EXPECT_TRUE(http::is_resource_shortage(ENFILE));
  EXPECT_TRUE(http::is_resource_shortage(ENOMEM));
  EXPECT_TRUE(http::is_resource_shortage(EAGAIN));
  EXPECT_FALSE(http::is_resource_shortage(ENOENT));
  EXPECT_FALSE(http::is_resource_shortage(ENOTDIR));
  EXPECT_FALSE(http::is_resource_shortage(EACCES));
}

TEST(descriptor_budget, default_cap_is_the_limit_minus_the_reserve) {
  EXPECT_EQ(net::descriptor_reserve(256, 0, 1), 64u + 5u + 256u);
  EXPECT_EQ(net::descriptor_reserve(256, 3, 2), 64u + 10u + 256u + 3u);
  // Each event loop holds five descriptors (Asio's epoll, wake-up and timer, its own epoll set, its io_uring).
  EXPECT_EQ(net::descriptor_reserve(256, 0, 16) - net::descriptor_reserve(256, 0, 15), 5u);
  EXPECT_EQ(net::default_max_connections(20'000, 320), 19'680u);
  // A reserve over half the limit leaves half the limit.
  EXPECT_EQ(net::default_max_connections(100, 320), 50u);
  EXPECT_EQ(net::default_max_connections(1, 320), 1u);
  EXPECT_EQ(net::default_max_connections(0, 320), 1u);
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  const std::uint64_t now = net::raise_open_file_limit();
  if (before.rlim_max != RLIM_INFINITY) {
    EXPECT_EQ(now, before.rlim_max);
  }
}

// ---- the real binary at a low open-file limit

int open_fds_of(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

TEST(out_of_descriptors, clients_are_refused_at_once_files_get_503_and_service_resumes) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // UBSan's vptr check probes memory through a pipe, which cannot be created while the
  // descriptor table is full: it then reports valid objects as having an invalid vptr and,
  // built with -fno-sanitize-recover, aborts the server. Run in the release build only.
  GTEST_SKIP() << "descriptor exhaustion defeats the sanitizers' own checks";
#endif
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  { std::ofstream(www.path() / "localhost" / "hello.txt") << "hello\n"; }
  started_binary s = start_binary({MLES_BINARY, "--port", "0", "--bind", "127.0.0.1", "--domains", "localhost",
                                   "--wwwroot", www.path().string(), "--no-tls", "--threads", "1",
                                   "--max-connections", "100000"});
  ASSERT_NE(s.port, 0);
  const pid_t pid = s.process->pid();
  // The server runs with this many descriptors; room for a handful of clients.
  const int base = open_fds_of(pid);
  ASSERT_GT(base, 0);
  const rlimit low{static_cast<rlim_t>(base + 6), static_cast<rlim_t>(base + 6)};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);

  connect_options plain;
  std::vector<std::unique_ptr<http_client>> served;
  int refusals = 0;
  const std::string get_hello = http_request("GET", "/hello.txt");
  for (int i = 0; i < 20; ++i) {
    auto c = std::make_unique<http_client>();
    ASSERT_TRUE(c->connect(s.port, plain)) << c->error();
    const http_reply r = c->exchange(get_hello, generous);
    // Every client gets an answer: served (200, or a 503 for the file on a connection kept
    // open), or refused with 503 and Connection: close, and closed.
    s.process->poll_output();
    ASSERT_TRUE(r.ok()) << "client " << i << " left without an answer: " << r.error << " " << c->error()
                        << "; server stderr:" << joined_lines(s.process->err_lines());
    if (r.code == 503 && r.header("Connection").value_or("") == "close") {
      ++refusals;
      EXPECT_TRUE(r.header("Retry-After").has_value());
      EXPECT_TRUE(c->wait_closed(generous));
    } else {
      EXPECT_TRUE(r.code == 200 || r.code == 503) << r.describe();
      served.push_back(std::move(c));
    }
    s.process->poll_output();
  }
  EXPECT_GE(refusals, 10);
  ASSERT_FALSE(served.empty());
  // The table is full (the spare descriptor was taken back): a file cannot be opened now,
  // which is a 503 with Retry-After on a connection that is already served, never a 404.
  const http_reply busy = served.front()->exchange(get_hello, generous);
  ASSERT_TRUE(busy.ok()) << served.front()->error();
  EXPECT_EQ(busy.code, 503) << busy.describe();
  EXPECT_TRUE(busy.header("Retry-After").has_value());
  // The refusals were logged, rate-limited.
  EXPECT_TRUE(s.process->wait_stderr_line("out of file descriptors", generous).has_value())
      << joined_lines(s.process->err_lines());

  // Clients leave: service resumes.
  served.clear();
  bool resumed = false;
  const auto deadline = steady::now() + generous;
  for (int attempt = 0; attempt < 300 && !resumed && steady::now() < deadline; ++attempt) {
    http_client c;
    if (c.connect(s.port, plain)) {
      const http_reply r = c.exchange(get_hello, 5s);
      resumed = r.ok() && r.code == 200 && r.body == "hello\n";
    }
    if (!resumed) std::this_thread::sleep_for(50ms);
    s.process->poll_output();
  }
  EXPECT_TRUE(resumed);
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait_exit(generous).value_or(-1), 0) << joined_lines(s.process->err_lines());
}

}  // namespace
}  // namespace mles::test
