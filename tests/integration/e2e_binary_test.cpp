// End-to-end tests of the real `mles` binary (issue item 1): start-up on an ephemeral port,
// a session over plain and TLS, SIGTERM/SIGINT with close 1001 and exit 0, usage errors
// (exit 2 with the --help hint), start-up failures (exit 1 with one line), --version.
#include "support/child_process.hpp"
#include "support/mles_binary.hpp"
#include "support/mles_auth.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;

std::string join_of(std::string_view uid, std::string_view channel, std::optional<std::string> auth = std::nullopt) {
  return ws_client::join_text(uid, channel, std::move(auth));
}

std::vector<std::string> base_args(const temp_dir& www) {
  return {MLES_BINARY, "--port", "0", "--bind", "127.0.0.1", "--domains", "localhost", "--wwwroot", www.path().string()};
}

std::vector<std::string> with(std::vector<std::string> args, std::initializer_list<std::string> more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

::testing::AssertionResult receives_text(ws_client& c, const std::string& payload) {
  const message m = c.read_message();
  if (m.ok() && m.opcode == op::text && m.payload == payload) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected '" << payload << "', got " << to_string(m.status) << " "
                                       << opcode_name(m.opcode) << " '" << m.payload << "' " << c.error();
}

std::unique_ptr<ws_client> open_session(std::uint16_t port, transport mode) {
  auto c = std::make_unique<ws_client>();
  connect_options o;
  o.mode = mode;
  if (!c->connect(port, o)) {
    ADD_FAILURE() << "connect to port " << port << ": " << c->error();
    return c;
  }
  const http_response r = c->handshake();
  if (r.code != 101) ADD_FAILURE() << "upgrade: " << r.describe();
  return c;
}

// Two members exchange a message; then the signal stops the server: both get close 1001,
// and the process exits 0 within 5 s.
void run_session_then_stop(started_binary& s, transport mode, int sig) {
  ASSERT_NE(s.port, 0);
  auto a = open_session(s.port, mode);
  ASSERT_TRUE(a->join("alice", "e2e"));
  ASSERT_TRUE(a->sync()) << a->error();
  auto b = open_session(s.port, mode);
  ASSERT_TRUE(b->join("bob", "e2e"));
  ASSERT_TRUE(receives_text(*b, join_of("alice", "e2e")));
  ASSERT_TRUE(a->send_text("hello from alice"));
  EXPECT_TRUE(receives_text(*b, "hello from alice"));
  ASSERT_TRUE(b->send_binary(std::string("\x00\x01\xfe\xff", 4)));
  const message m = a->read_message();
  EXPECT_TRUE(m.ok() && m.opcode == op::binary && m.payload == std::string("\x00\x01\xfe\xff", 4));

  const auto t0 = steady::now();
  s.process->signal(sig);
  for (ws_client* c : {a.get(), b.get()}) {
    EXPECT_EQ(c->expect_close().value_or(0), 1001) << c->error();
    c->send_close(1001);
    EXPECT_TRUE(c->wait_closed()) << c->error();
  }
  const auto code = s.process->wait_exit(5s);
  ASSERT_TRUE(code.has_value()) << "still running 5 s after signal " << sig;
  EXPECT_EQ(*code, 0) << "stderr:" << joined_lines(s.process->err_lines());
  EXPECT_LE(steady::now() - t0, 5s);
}

TEST(mles_binary, serves_plain_sessions_and_exits_0_on_sigterm_after_closing_them_with_1001) {
  temp_dir www;
  started_binary s = start_binary(with(base_args(www), {"--no-tls"}));
  run_session_then_stop(s, transport::plain, SIGTERM);
}

// Where the kernel refuses io_uring (a container's seccomp profile), the server says so once
// and serves with its own sendmsg() per connection; --no-io-uring asks for that quietly.
TEST(mles_binary, serves_without_io_uring_when_the_kernel_refuses_it_and_warns_once) {
  temp_dir www;
  {
    std::vector<std::string> args = with(base_args(www), {"--no-tls", "--threads", "2"});
    args.insert(args.begin(), WITHOUT_IO_URING);
    started_binary s = start_binary(args);
    run_session_then_stop(s, transport::plain, SIGTERM);
    const auto lines = s.process->err_lines();
    const auto warned = std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
      return l.find("warning io_uring unavailable (Operation not permitted)") != std::string::npos;
    });
    EXPECT_EQ(warned, 1) << joined_lines(lines);
  }
  {
    std::vector<std::string> args = with(base_args(www), {"--no-tls", "--no-io-uring"});
    args.insert(args.begin(), WITHOUT_IO_URING);
    started_binary s = start_binary(args);
    run_session_then_stop(s, transport::plain, SIGTERM);
    const std::string err = joined_lines(s.process->err_lines());
    EXPECT_EQ(err.find("io_uring"), std::string::npos) << err;
  }
}

TEST(mles_binary, exits_0_on_sigint) {
  temp_dir www;
  started_binary s = start_binary(with(base_args(www), {"--no-tls"}));
  run_session_then_stop(s, transport::plain, SIGINT);
}

TEST(mles_binary, serves_tls_sessions_with_a_self_signed_certificate) {
  temp_dir www;
  started_binary s = start_binary(with(base_args(www), {"--self-signed"}));
  ASSERT_NE(s.port, 0);
  ws_client probe;
  connect_options o;
  o.mode = transport::tls;
  ASSERT_TRUE(probe.connect(s.port, o)) << probe.error();
  EXPECT_TRUE(probe.peer_certificate_matches("localhost"));
  probe.close_socket();
  run_session_then_stop(s, transport::tls, SIGTERM);
}

TEST(mles_binary, serves_tls_sessions_with_a_certificate_from_files) {
  temp_dir www;
  temp_dir certs;
  const auto cert = certs.path() / "cert.pem";
  const auto key = certs.path() / "key.pem";
  write_test_certificate(cert, key, "localhost");
  started_binary s = start_binary(with(base_args(www), {"--tls-cert", cert.string(), "--tls-key", key.string()}));
  run_session_then_stop(s, transport::tls, SIGTERM);
}

TEST(mles_binary, requires_the_keyed_auth_when_MLES_KEY_is_set) {
  temp_dir www;
  started_binary s = start_binary(with(base_args(www), {"--no-tls"}), {"MLES_KEY=e2e-secret"});
  ASSERT_NE(s.port, 0);
  auto refused = open_session(s.port, transport::plain);
  ASSERT_TRUE(refused->join("alice", "keyed"));
  EXPECT_TRUE(refused->wait_closed()) << "a join without auth was accepted: " << refused->error();
  refused->close_socket();  // as a real client does on EOF

  const std::string auth = mles_auth("alice", "keyed", std::string{"e2e-secret"});
  auto a = open_session(s.port, transport::plain);
  ASSERT_TRUE(a->join("alice", "keyed", auth));
  ASSERT_TRUE(a->sync()) << a->error();
  auto b = open_session(s.port, transport::plain);
  ASSERT_TRUE(b->join("bob", "keyed", mles_auth("bob", "keyed", std::string{"e2e-secret"})));
  EXPECT_TRUE(receives_text(*b, join_of("alice", "keyed", auth)));
  s.process->signal(SIGTERM);
  for (ws_client* c : {a.get(), b.get()}) {
    EXPECT_EQ(c->expect_close().value_or(0), 1001) << c->error();
    c->send_close(1001);
  }
  EXPECT_EQ(s.process->wait_exit(5s).value_or(-1), 0);
}

// ---------------------------------------------------------------------------------------------
// Usage errors and start-up failures

struct usage_error {
  const char* name;
  std::vector<std::string> extra;
};

void PrintTo(const usage_error& u, std::ostream* os) { *os << u.name; }

class mles_binary_usage : public ::testing::TestWithParam<usage_error> {};

TEST_P(mles_binary_usage, exits_2_with_one_line_and_the_help_hint) {
  temp_dir www;
  std::vector<std::string> args = with(base_args(www), {"--no-tls"});
  args.insert(args.end(), GetParam().extra.begin(), GetParam().extra.end());
  child_process p(args);
  const auto code = p.wait_exit(5s);
  ASSERT_TRUE(code.has_value()) << "still running: a usage error was accepted";
  EXPECT_EQ(*code, 2) << "stderr:" << joined_lines(p.err_lines());
  const auto lines = p.err_lines();
  EXPECT_GE(lines.size(), 1u);
  EXPECT_LE(lines.size(), 2u) << "one clear line (and the --help hint) expected:" << joined_lines(lines);
  EXPECT_NE(p.err().find("--help"), std::string::npos) << "no --help hint:" << joined_lines(lines);
  EXPECT_EQ(p.err().find("listening on"), std::string::npos) << "started despite the usage error";
}

INSTANTIATE_TEST_SUITE_P(
    cases, mles_binary_usage,
    ::testing::Values(usage_error{"limit_zero", {"--limit", "0"}}, usage_error{"limit_not_a_number", {"--limit", "abc"}},
                      usage_error{"limit_too_big", {"--limit", "1000000"}},
                      usage_error{"unknown_flag", {"--no-such-flag"}},
                      usage_error{"port_out_of_range", {"--port", "70000"}},
                      usage_error{"threads_not_a_number", {"--threads", "many"}}),
    [](const ::testing::TestParamInfo<usage_error>& param_info) { return std::string{param_info.param.name}; });

TEST(mles_binary, exits_2_without_the_required_domains_or_wwwroot) {
  temp_dir www;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{MLES_BINARY, "--no-tls", "--port", "0", "--wwwroot", www.path().string()},
        std::vector<std::string>{MLES_BINARY, "--no-tls", "--port", "0", "--domains", "localhost"}}) {
    child_process p(args);
    EXPECT_EQ(p.wait_exit(5s).value_or(-1), 2) << "stderr:" << joined_lines(p.err_lines());
    EXPECT_NE(p.err().find("--help"), std::string::npos) << joined_lines(p.err_lines());
  }
}

TEST(mles_binary, exits_1_with_one_line_when_the_tls_key_cannot_be_read) {
  temp_dir www;
  temp_dir certs;
  write_test_certificate(certs.path() / "cert.pem", certs.path() / "key.pem");
  child_process p(with(base_args(www), {"--tls-cert", (certs.path() / "cert.pem").string(), "--tls-key", "/nonexistent"}));
  const auto code = p.wait_exit(5s);
  ASSERT_TRUE(code.has_value()) << "still running without a readable key";
  EXPECT_EQ(*code, 1) << "stderr:" << joined_lines(p.err_lines());
  // One clear line naming the file, last (start-up notices about inactive features may precede it).
  const auto lines = p.err_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("/nonexistent"), std::string::npos) << "the last line does not name the key file:"
                                                                  << joined_lines(lines);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return l.find("/nonexistent") != std::string::npos; }),
            1)
      << joined_lines(lines);
}

TEST(mles_binary, exits_1_with_one_line_when_the_port_is_taken) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  temp_dir www;
  child_process p({MLES_BINARY, "--no-tls", "--port", port, "--bind", "127.0.0.1", "--domains", "localhost",
                   "--wwwroot", www.path().string()});
  const auto code = p.wait_exit(5s);
  ::close(fd);
  ASSERT_TRUE(code.has_value()) << "still running on a port that is taken";
  EXPECT_EQ(*code, 1) << "stderr:" << joined_lines(p.err_lines());
  const auto lines = p.err_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find(":" + port), std::string::npos) << "the last line does not name the port:" << joined_lines(lines);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [&](const std::string& l) { return l.find(":" + port) != std::string::npos; }),
            1)
      << joined_lines(lines);
}

TEST(mles_binary, keeps_serving_with_a_temporary_certificate_while_the_ca_is_down) {
  temp_dir www;
  temp_dir cache;
  // No --no-tls/--self-signed/--tls-cert: certificates come from ACME. The directory is a
  // closed port, so every order fails; the server must keep serving and say why.
  started_binary s = start_binary(with(base_args(www), {"--acme-directory", "https://127.0.0.1:1/dir", "--cache",
                                                 (cache.path() / "acme").string(), "--log-level", "info"}));
  ASSERT_NE(s.port, 0);
  EXPECT_TRUE(s.process->wait_stderr_line("ACME: order failed", 5s)) << joined_lines(s.process->err_lines());
  EXPECT_TRUE(s.process->wait_stderr_line("next attempt at", 5s)) << joined_lines(s.process->err_lines());
  // The account key was created and stored privately.
  std::size_t accounts = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache.path() / "acme")) {
    accounts += e.path().filename().string().rfind("cached_account_", 0) == 0 ? 1 : 0;
    EXPECT_EQ(std::filesystem::status(e.path()).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  EXPECT_EQ(accounts, 1u);
  run_session_then_stop(s, transport::tls, SIGTERM);
}

TEST(mles_binary, prints_its_version_and_exits_0) {
  child_process p({MLES_BINARY, "--version"});
  EXPECT_EQ(p.wait_exit(5s).value_or(-1), 0) << "stderr:" << joined_lines(p.err_lines());
  EXPECT_NE((p.out() + p.err()).find(MLES_VERSION), std::string::npos) << "stdout: " << p.out();
}

TEST(mles_binary, prints_help_and_exits_0) {
  child_process p({MLES_BINARY, "--help"});
  EXPECT_EQ(p.wait_exit(5s).value_or(-1), 0) << "stderr:" << joined_lines(p.err_lines());
  const std::string all = p.out() + p.err();
  for (const char* flag : {"--domains", "--wwwroot", "--limit", "--port", "--rate-limit", "--no-tls", "--tls-cert"}) {
    EXPECT_NE(all.find(flag), std::string::npos) << flag << " missing from --help";
  }
}

}  // namespace
}  // namespace mles::test
