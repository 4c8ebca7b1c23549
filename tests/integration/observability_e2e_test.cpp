// End-to-end tests of what an operator sees (issue 9, item 4), with real mles processes:
// --metrics (Prometheus text at /metrics, checked by a strict parser; /healthz, /readyz;
// bounds and deadlines of the metrics port), --log-format json, and the volume and
// visibility of the log at info (session lines rate-limited with an exact count of what was
// held back, refused joins visible, a warning for a missing domain folder).
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/mles_binary.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto patience = 60s;  // for anything that only has to happen eventually

std::vector<std::string> base_args(const temp_dir& www) {
  return {binary_under_test(MLES_BINARY), "--port", "0", "--bind", "127.0.0.1", "--domains", "localhost",
          "--wwwroot", www.path().string(), "--threads", "2"};
}

std::vector<std::string> with(std::vector<std::string> args, std::initializer_list<std::string> more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// The metrics port from "mles metrics on http://127.0.0.1:PORT/metrics" (text or JSON line).
std::uint16_t metrics_port_of(child_process& p) {
  const auto line = p.wait_stderr_line("metrics on http://", 30s);
  if (!line) {
    ADD_FAILURE() << "no metrics line; stderr:" << joined_lines(p.err_lines());
    return 0;
  }
  const auto from = line->find("metrics on http://");
  const auto to = line->find("/metrics", from + 18);
  const auto port = parse_port(line->substr(from, to - from));
  if (!port) ADD_FAILURE() << "no port in: " << *line;
  return port.value_or(0);
}

http_reply request(std::uint16_t port, const std::string& method, const std::string& target) {
  http_client c;
  connect_options o;
  o.timeout = 30s;
  if (!c.connect(port, o)) {
    http_reply r;
    r.error = "connect: " + c.error();
    return r;
  }
  return c.exchange(http_request(method, target), 30s);
}

// A strict reader of the Prometheus text format 0.0.4: every line is a HELP, TYPE or
// sample line; every sample's metric has exactly one TYPE line before its first sample;
// names, labels, escapes and values are well-formed; no series appears twice.
struct exposition {
  std::map<std::string, std::string> types;   // name -> counter|gauge|...
  std::map<std::string, double> samples;      // 'name{labels}' as written -> value
  std::string error;                          // empty when the text is valid

  double value(const std::string& series) const {
    const auto it = samples.find(series);
    return it == samples.end() ? std::nan("") : it->second;
  }
};

exposition parse_exposition(const std::string& text) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")"
      R"((?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? ([^ ]+)( -?[0-9]+)?)");
  exposition e;
  std::set<std::string> helped, sampled;
  if (text.empty() || text.back() != '\n') {
    e.error = "the text does not end with a newline";
    return e;
  }
  std::size_t start = 0, line_no = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    std::smatch m;
    auto fail = [&](const std::string& why) {
      e.error = "line " + std::to_string(line_no) + ": " + why + ": '" + line + "'";
      return e;
    };
    if (line.rfind("# HELP ", 0) == 0) {
      if (!std::regex_match(line, m, help)) return fail("malformed HELP");
      if (!helped.insert(m[1]).second) return fail("second HELP");
    } else if (line.rfind("# TYPE ", 0) == 0) {
      if (!std::regex_match(line, m, type)) return fail("malformed TYPE");
      if (e.types.count(m[1])) return fail("second TYPE");
      if (sampled.count(m[1])) return fail("TYPE after samples");
      e.types[m[1]] = m[2];
    } else if (!line.empty() && line[0] == '#') {
      continue;  // a comment
    } else {
      if (!std::regex_match(line, m, sample)) return fail("malformed sample");
      const std::string name = m[1];
      if (!e.types.count(name)) return fail("sample without a TYPE line before it");
      sampled.insert(name);
      const std::string v = m[3];
      double value = 0;
      if (v == "NaN") value = std::nan("");
      else if (v == "+Inf") value = HUGE_VAL;
      else if (v == "-Inf") value = -HUGE_VAL;
      else {
        char* stop = nullptr;
        value = std::strtod(v.c_str(), &stop);
        if (stop != v.c_str() + v.size()) return fail("malformed value");
      }
      const std::string series = name + std::string(m[2]);
      if (e.samples.count(series)) return fail("series twice");
      e.samples[series] = value;
    }
  }
  return e;
}

exposition scrape(std::uint16_t port) {
  const http_reply r = request(port, "GET", "/metrics");
  exposition e;
  if (!r.ok() || r.code != 200) {
    e.error = "scrape: " + r.describe() + " " + r.error;
    return e;
  }
  e = parse_exposition(r.body);
  return e;
}

// Scrapes until ok(exposition) holds (or patience runs out); returns the last scrape.
template <class Pred>
exposition scrape_until(std::uint16_t port, Pred ok) {
  const auto deadline = steady::now() + patience;
  exposition e;
  for (int i = 0; i < 3000 && steady::now() < deadline; ++i) {
    e = scrape(port);
    if (e.error.empty() && ok(e)) return e;
    std::this_thread::sleep_for(20ms);
  }
  return e;
}

std::string dump(const exposition& e) {
  std::string s = e.error.empty() ? "" : "error: " + e.error + "\n";
  for (const auto& [k, v] : e.samples) s += "  " + k + " " + std::to_string(v) + "\n";
  return s;
}

std::unique_ptr<ws_client> session(std::uint16_t port, transport mode) {
  auto c = std::make_unique<ws_client>();
  connect_options o;
  o.mode = mode;
  o.timeout = 30s;
  if (!c->connect(port, o)) {
    ADD_FAILURE() << "connect: " << c->error();
    return c;
  }
  const http_response r = c->handshake();
  if (r.code != 101) ADD_FAILURE() << "upgrade: " << r.describe();
  return c;
}

TEST(metrics_e2e, counts_traffic_and_is_valid_prometheus_text) {
  temp_dir www;
  write_file(www.path() / "localhost" / "index.html", "<p>hello</p>\n");
  auto s = start_binary(with(base_args(www), {"--self-signed", "--metrics", "0", "--log-level", "info"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::uint16_t mport = metrics_port_of(*s.process);
  ASSERT_NE(mport, 0);

  // Before any traffic: valid, every family declared, nothing counted.
  const exposition first = scrape(mport);
  ASSERT_TRUE(first.error.empty()) << dump(first);
  for (const char* name :
       {"mles_open_connections", "mles_joined_sessions", "mles_channels", "mles_messages_received_total",
        "mles_received_bytes_total", "mles_messages_delivered_total", "mles_delivered_bytes_total",
        "mles_history_messages", "mles_history_bytes", "mles_connection_ends_total",
        "mles_tls_handshake_failures_total", "mles_rate_limited_connections_total", "mles_http_responses_total",
        "mles_certificate_expiry_timestamp_seconds", "mles_process_resident_memory_bytes", "mles_process_open_fds",
        "mles_process_start_time_seconds", "mles_process_cpu_seconds_total"}) {
    EXPECT_TRUE(first.types.count(name)) << name << "\n" << dump(first);
  }
  for (const auto& [name, type] : first.types) {
    EXPECT_EQ(name.rfind("mles_", 0), 0u) << name;
    EXPECT_EQ(type == "counter", name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
  }
  EXPECT_EQ(first.value("mles_joined_sessions"), 0);
  EXPECT_EQ(first.value("mles_messages_received_total"), 0);
  EXPECT_EQ(first.value(R"(mles_connection_ends_total{reason="join_refused"})"), 0);
  const auto now_s = static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_GT(first.value(R"(mles_certificate_expiry_timestamp_seconds{domain="default"})"), now_s);
  EXPECT_GT(first.value("mles_process_resident_memory_bytes"), 1e6);
  EXPECT_GT(first.value("mles_process_open_fds"), 3);
  EXPECT_LE(first.value("mles_process_start_time_seconds"), now_s);
  EXPECT_GT(first.value("mles_process_start_time_seconds"), now_s - 600);

  // Two members, three messages of 5 bytes from alice to bob.
  auto alice = session(s.port, transport::tls);
  ASSERT_TRUE(alice->join("alice", "metrics"));
  ASSERT_TRUE(alice->sync(30s)) << alice->error();
  auto bob = session(s.port, transport::tls);
  ASSERT_TRUE(bob->join("bob", "metrics"));
  ASSERT_TRUE(bob->read_message(30s).ok());  // alice's join from the history
  ASSERT_TRUE(bob->sync(30s)) << bob->error();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(alice->send_text("hello"));
  for (int i = 0; i < 3; ++i) {
    const message m = bob->read_message(30s);
    ASSERT_TRUE(m.ok() && m.payload == "hello") << bob->error();
  }
  // A refused join (not a join frame): close 1008.
  auto carol = session(s.port, transport::tls);
  ASSERT_TRUE(carol->send_text("not a join"));
  EXPECT_EQ(carol->expect_close(30s), 1008);
  // Static files: one 200, one 404.
  {
    http_client web;
    connect_options o;
    o.mode = transport::tls;
    o.timeout = 30s;
    ASSERT_TRUE(web.connect(s.port, o)) << web.error();
    EXPECT_EQ(web.exchange(http_request("GET", "/"), 30s).code, 200);
    EXPECT_EQ(web.exchange(http_request("GET", "/missing.html"), 30s).code, 404);
  }
  // A TLS handshake that fails: plain bytes on the TLS port.
  {
    ws_client raw;
    connect_options o;
    o.mode = transport::tls;
    o.tls_handshake = false;
    o.timeout = 30s;
    ASSERT_TRUE(raw.connect(s.port, o)) << raw.error();
    ASSERT_TRUE(raw.send_raw("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 30s));
    EXPECT_TRUE(raw.wait_closed(30s));
  }

  const exposition busy = scrape_until(mport, [](const exposition& e) {
    return e.value("mles_messages_delivered_total") == 3 &&
           e.value(R"(mles_connection_ends_total{reason="join_refused"})") == 1 &&
           e.value(R"(mles_tls_handshake_failures_total{reason="failed"})") == 1 &&
           e.value(R"(mles_http_responses_total{code="404"})") == 1;
  });
  ASSERT_TRUE(busy.error.empty()) << dump(busy);
  EXPECT_EQ(busy.value("mles_joined_sessions"), 2) << dump(busy);
  EXPECT_EQ(busy.value("mles_channels"), 1);
  EXPECT_EQ(busy.value("mles_messages_received_total"), 3);
  EXPECT_EQ(busy.value("mles_received_bytes_total"), 15);
  EXPECT_EQ(busy.value("mles_messages_delivered_total"), 3);
  EXPECT_EQ(busy.value("mles_delivered_bytes_total"), 3 * (5 + 2));  // frame header + payload
  EXPECT_EQ(busy.value("mles_history_messages"), 5);  // two joins, three messages
  EXPECT_GT(busy.value("mles_history_bytes"), 15);
  EXPECT_EQ(busy.value(R"(mles_connection_ends_total{reason="join_refused"})"), 1);
  EXPECT_EQ(busy.value(R"(mles_tls_handshake_failures_total{reason="failed"})"), 1);
  EXPECT_EQ(busy.value(R"(mles_connection_ends_total{reason="tls_handshake_failed"})"), 1);
  EXPECT_EQ(busy.value(R"(mles_http_responses_total{code="200"})"), 1);
  EXPECT_EQ(busy.value(R"(mles_http_responses_total{code="404"})"), 1);
  EXPECT_EQ(busy.value("mles_rate_limited_connections_total"), 0);
  EXPECT_GE(busy.value("mles_open_connections"), 2);

  // Members leave: the gauge follows.
  alice.reset();
  bob.reset();
  const exposition after = scrape_until(mport, [](const exposition& e) { return e.value("mles_joined_sessions") == 0; });
  EXPECT_EQ(after.value("mles_joined_sessions"), 0) << dump(after);
  EXPECT_EQ(after.value("mles_channels"), 1);  // a channel stays with its history

  // The refused join and then the TLS failure are visible at info.
  EXPECT_TRUE(s.process->wait_stderr_line("join refused", patience)) << joined_lines(s.process->err_lines());
  EXPECT_TRUE(s.process->wait_stderr_line("TLS handshake failed", patience)) << joined_lines(s.process->err_lines());
}

TEST(metrics_e2e, routes_methods_and_health) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--metrics", "127.0.0.1:0"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::uint16_t mport = metrics_port_of(*s.process);
  ASSERT_NE(mport, 0);

  const http_reply m = request(mport, "GET", "/metrics?x=1");
  EXPECT_EQ(m.code, 200) << m.describe();
  EXPECT_EQ(m.header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
  http_client head_client;
  connect_options o;
  o.timeout = 30s;
  ASSERT_TRUE(head_client.connect(mport, o));
  ASSERT_TRUE(head_client.send(http_request("HEAD", "/metrics"), 30s));
  const http_reply head = head_client.read_response(true, 30s);
  EXPECT_EQ(head.code, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_GT(std::stoul(head.header("Content-Length").value_or("0")), 100u);
  // The same connection serves the next request (keep-alive).
  EXPECT_EQ(head_client.exchange(http_request("GET", "/healthz"), 30s).code, 200);

  const http_reply health = request(mport, "GET", "/healthz");
  EXPECT_EQ(health.code, 200);
  const http_reply ready = request(mport, "GET", "/readyz");
  EXPECT_EQ(ready.code, 200) << ready.describe();
  EXPECT_EQ(request(mport, "GET", "/").code, 404);
  EXPECT_EQ(request(mport, "GET", "/metrics/extra").code, 404);
  const http_reply post = request(mport, "POST", "/metrics");
  EXPECT_EQ(post.code, 405);
  EXPECT_EQ(post.header("Allow").value_or(""), "GET, HEAD");
  EXPECT_EQ(request(mport, "DELETE", "/healthz").code, 405);
}

TEST(metrics_e2e, refuses_oversized_requests_and_closes_slow_ones) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--metrics", "0"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::uint16_t mport = metrics_port_of(*s.process);
  ASSERT_NE(mport, 0);
  connect_options o;
  o.timeout = 30s;

  // A slow client: half a request, then nothing. The port keeps serving others meanwhile,
  // and the slow one is closed at the deadline (10 s).
  http_client slow;
  ASSERT_TRUE(slow.connect(mport, o));
  ASSERT_TRUE(slow.send("GET /metrics HTTP/1.1\r\nHost: x\r\n", 30s));

  // Over the head bound: 431, then closed.
  http_client big;
  ASSERT_TRUE(big.connect(mport, o));
  const http_reply r = big.exchange(http_request("GET", "/metrics", "localhost", {{"X-Big", std::string(20000, 'a')}}), 30s);
  EXPECT_EQ(r.code, 431) << r.describe() << " " << r.error;
  EXPECT_TRUE(big.wait_closed(30s));
  // A body where none is taken: 413, then closed.
  http_client body;
  ASSERT_TRUE(body.connect(mport, o));
  const http_reply b = body.exchange(http_request("GET", "/metrics", "localhost", {{"Content-Length", "5"}}, "abcde"), 30s);
  EXPECT_EQ(b.code, 413) << b.describe();
  // Garbage: 400.
  http_client junk;
  ASSERT_TRUE(junk.connect(mport, o));
  EXPECT_EQ(junk.exchange("NOT HTTP AT ALL\r\n\r\n", 30s).code, 400);

  EXPECT_EQ(request(mport, "GET", "/healthz").code, 200);
  EXPECT_TRUE(slow.wait_closed(patience)) << "a slow request was not closed";
}

TEST(metrics_e2e, readyz_is_503_while_acme_serves_only_the_temporary_certificate) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  // A CA nobody answers for: every order fails (connection refused), retried.
  const auto ports = free_loopback_ports(1);
  auto s = start_binary(with(base_args(www), {"--metrics", "0", "--acme-directory",
                                              "https://127.0.0.1:" + std::to_string(ports[0]) + "/directory",
                                              "--acme-retry", "3600"}),
                        {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::uint16_t mport = metrics_port_of(*s.process);
  ASSERT_NE(mport, 0);
  EXPECT_EQ(request(mport, "GET", "/healthz").code, 200);
  EXPECT_EQ(request(mport, "GET", "/readyz").code, 503);
  const exposition e = scrape_until(mport, [](const exposition& x) {
    return x.value("mles_acme_last_result_timestamp_seconds") > 0;
  });
  ASSERT_TRUE(e.error.empty()) << dump(e);
  EXPECT_GT(e.value("mles_acme_last_result_timestamp_seconds"), 0) << dump(e);
  EXPECT_EQ(e.value("mles_acme_last_result_success"), 0);
  EXPECT_EQ(e.value("mles_acme_certificate_ready"), 0);
  EXPECT_EQ(request(mport, "GET", "/readyz").code, 503);
}

TEST(metrics_e2e, a_busy_metrics_port_fails_the_start_with_one_line) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto first = start_binary(with(base_args(www), {"--no-tls", "--metrics", "0"}), {}, 30s);
  ASSERT_NE(first.port, 0);
  const std::uint16_t mport = metrics_port_of(*first.process);
  ASSERT_NE(mport, 0);
  child_process second(with(base_args(www), {"--no-tls", "--metrics", std::to_string(mport)}));
  EXPECT_EQ(second.wait_exit(patience), 1);
  EXPECT_NE(second.err().find("--metrics"), std::string::npos) << second.err();
}

TEST(log_e2e, a_start_up_failure_is_one_json_line_with_json_format) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto first = start_binary(with(base_args(www), {"--no-tls"}), {}, 30s);
  ASSERT_NE(first.port, 0);
  auto args = with(base_args(www), {"--no-tls", "--log-format", "json"});
  args[2] = std::to_string(first.port);  // --port: taken
  child_process second(args);
  EXPECT_EQ(second.wait_exit(patience), 1);
  const auto lines = second.err_lines();
  ASSERT_EQ(lines.size(), 1u) << joined_lines(lines);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(lines[0], ec);
  ASSERT_FALSE(ec) << lines[0];
  EXPECT_EQ(std::string(v.at("level").as_string()), "error");
  EXPECT_NE(std::string(v.at("msg").as_string()).find("cannot listen"), std::string::npos) << lines[0];
}

TEST(metrics_e2e, peer_link_states_and_the_history_store_are_shown_when_configured) {
  temp_dir www, history;
  std::filesystem::create_directories(www.path() / "localhost");
  auto b = start_binary(with(base_args(www), {"--no-tls"}), {}, 30s);
  ASSERT_NE(b.port, 0);
  auto a = start_binary(with(base_args(www), {"--no-tls", "--metrics", "0", "--history-dir", history.path().string(),
                                              "--peer", "ws://127.0.0.1:" + std::to_string(b.port)}),
                        {}, 30s);
  ASSERT_NE(a.port, 0);
  const std::uint16_t mport = metrics_port_of(*a.process);
  ASSERT_NE(mport, 0);
  const exposition before = scrape(mport);
  ASSERT_TRUE(before.error.empty()) << dump(before);
  EXPECT_EQ(before.value(R"(mles_peer_links{state="up"})"), 0);
  EXPECT_EQ(before.value("mles_history_store_write_failures_total"), 0);

  // A member on A: A links the channel to B.
  auto c = session(a.port, transport::plain);
  ASSERT_TRUE(c->join("alice", "linked"));
  ASSERT_TRUE(c->send_text("kept on disk"));
  const exposition up = scrape_until(mport, [](const exposition& e) {
    return e.value(R"(mles_peer_links{state="up"})") == 1 && e.value("mles_history_store_healthy") == 1;
  });
  EXPECT_EQ(up.value(R"(mles_peer_links{state="up"})"), 1) << dump(up);
  EXPECT_EQ(up.value(R"(mles_peer_links{state="retrying"})"), 0);
  EXPECT_EQ(up.value("mles_history_store_healthy"), 1);
  EXPECT_EQ(up.value("mles_history_store_write_failures_total"), 0);
  EXPECT_GE(up.value("mles_history_store_queued_bytes"), 0);
}

// --- logs ---

TEST(log_e2e, session_churn_at_info_writes_a_bounded_number_of_lines_and_counts_the_rest) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--metrics", "0", "--log-level", "info"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::uint16_t mport = metrics_port_of(*s.process);
  ASSERT_NE(mport, 0);

  constexpr int sessions = 300;
  const auto t0 = steady::now();
  for (int i = 0; i < sessions; ++i) {
    auto c = session(s.port, transport::plain);
    ASSERT_TRUE(c->join("u" + std::to_string(i), "churn"));
    ASSERT_TRUE(c->sync(30s)) << c->error();
    c->close_socket();
    if (i % 50 == 0) s.process->poll_output();  // keep the pipe drained
  }
  const exposition idle = scrape_until(mport, [](const exposition& e) { return e.value("mles_joined_sessions") == 0; });
  ASSERT_EQ(idle.value("mles_joined_sessions"), 0) << dump(idle);
  const double seconds = std::chrono::duration<double>(steady::now() - t0).count();
  // A new second: the next session line first reports what the last ones held back.
  std::this_thread::sleep_for(1500ms);
  auto probe = session(s.port, transport::plain);
  ASSERT_TRUE(probe->join("probe", "churn"));
  ASSERT_TRUE(s.process->wait_stderr_line("uid=probe", patience)) << joined_lines(s.process->err_lines());

  std::size_t written = 0, suppressed = 0, lines = 0;
  static const std::regex report(R"(suppressed ([0-9]+) session line)");
  for (const auto& line : s.process->err_lines()) {
    ++lines;
    std::smatch m;
    if (std::regex_search(line, m, report)) suppressed += std::stoul(m[1]);
    else if (line.find(" uid=u") != std::string::npos &&
             (line.find(": joined") != std::string::npos || line.find("session ended") != std::string::npos))
      ++written;
  }
  RecordProperty("session_lines_written", static_cast<int>(written));
  RecordProperty("session_lines_suppressed", static_cast<int>(suppressed));
  RecordProperty("churn_seconds", std::to_string(seconds));
  // Every session line is either written or counted as held back.
  EXPECT_EQ(written + suppressed, 2u * sessions) << written << " written, " << suppressed << " suppressed";
  // At most 20 a second get through (plus one window at each end).
  EXPECT_LE(static_cast<double>(written), 20 * (seconds + 3)) << "in " << seconds << " s";
  EXPECT_LE(static_cast<double>(lines), 21 * (seconds + 3) + 20) << joined_lines(s.process->err_lines());
}

// The session's last line names its channel, which it left before the line is written (the
// session keeps no copy of the name: its membership still names the channel).
TEST(log_e2e, a_session_end_line_names_the_channel_it_left) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--log-level", "info"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::string channel = "a-channel-name-longer-than-fifteen-characters";
  auto c = session(s.port, transport::plain);
  ASSERT_TRUE(c->join("ann", channel));
  ASSERT_TRUE(c->sync(30s)) << c->error();
  c->close_socket();
  const auto line = s.process->wait_stderr_line("session ended", patience);
  ASSERT_TRUE(line) << joined_lines(s.process->err_lines());
  EXPECT_NE(line->find("uid=ann channel=" + channel), std::string::npos) << *line;
}

// The server learns the client's address from accept4() itself: a session's lines name the
// client's own address and port (what an operator matches against a firewall or a complaint).
TEST(log_e2e, session_lines_name_the_clients_address_and_port) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--log-level", "info"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  auto c = session(s.port, transport::plain);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(::getsockname(c->fd(), reinterpret_cast<sockaddr*>(&local), &len), 0);
  const std::string client = "127.0.0.1:" + std::to_string(ntohs(local.sin_port)) + " ";
  ASSERT_TRUE(c->join("ann", "addresses"));
  ASSERT_TRUE(c->sync(30s)) << c->error();
  c->close_socket();
  const auto line = s.process->wait_stderr_line("session ended", patience);
  ASSERT_TRUE(line) << joined_lines(s.process->err_lines());
  EXPECT_NE(line->find(client), std::string::npos) << "no '" << client << "' in: " << *line;
}

TEST(log_e2e, refused_joins_show_at_info_and_a_missing_domain_folder_is_warned_at_start) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--domains", "missing.example", "--log-level", "info"}),
                        {}, 30s);
  ASSERT_NE(s.port, 0);
  const std::string& err = s.process->err();
  EXPECT_NE(err.find("missing.example"), std::string::npos) << err;
  EXPECT_NE(err.find("not a directory"), std::string::npos) << err;
  EXPECT_EQ(err.find((www.path() / "localhost").string() + " is not"), std::string::npos) << err;

  auto c = session(s.port, transport::plain);
  ASSERT_TRUE(c->send_text(R"({"uid":"mallory"})"));  // no channel
  EXPECT_EQ(c->expect_close(30s), 1008);
  EXPECT_TRUE(s.process->wait_stderr_line("join refused", patience)) << joined_lines(s.process->err_lines());
}

TEST(log_e2e, json_format_writes_one_escaped_object_per_line) {
  temp_dir www;
  std::filesystem::create_directories(www.path() / "localhost");
  auto s = start_binary(with(base_args(www), {"--no-tls", "--log-format", "json", "--log-level", "info"}), {}, 30s);
  ASSERT_NE(s.port, 0);
  // A uid with a quote, a backslash and a control character (ASCII, so accepted).
  const std::string uid = std::string("q\"b\\s") + '\x01' + "e";
  auto c = session(s.port, transport::plain);
  ASSERT_TRUE(c->send_text(R"({"uid":"q\"b\\s\u0001e","channel":"json"})"));
  ASSERT_TRUE(c->sync(30s)) << c->error();
  auto bad = session(s.port, transport::plain);
  ASSERT_TRUE(bad->send_text("{"));
  EXPECT_EQ(bad->expect_close(30s), 1008);
  ASSERT_TRUE(s.process->wait_stderr_line("join refused", patience)) << joined_lines(s.process->err_lines());

  static const std::regex ts(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  bool saw_uid = false, saw_listening = false, saw_refused = false;
  for (const auto& line : s.process->err_lines()) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    ASSERT_TRUE(v.is_object()) << line;
    const auto& o = v.as_object();
    ASSERT_TRUE(o.contains("ts") && o.at("ts").is_string()) << line;
    EXPECT_TRUE(std::regex_match(std::string(o.at("ts").as_string()), ts)) << line;
    ASSERT_TRUE(o.contains("level") && o.at("level").is_string()) << line;
    ASSERT_TRUE(o.contains("msg") && o.at("msg").is_string()) << line;
    const std::string msg(o.at("msg").as_string());
    if (msg.find("listening on") != std::string::npos) saw_listening = true;
    if (o.contains("uid") && o.at("uid").is_string() && std::string(o.at("uid").as_string()) == uid) {
      saw_uid = true;
      EXPECT_EQ(std::string(o.at("channel").as_string()), "json");
    }
    if (msg.find("join refused") != std::string::npos) {
      saw_refused = true;
      EXPECT_TRUE(o.contains("remote")) << line;
      EXPECT_EQ(o.contains("reason") ? std::string(o.at("reason").as_string()) : "", "join_refused") << line;
    }
  }
  EXPECT_TRUE(saw_listening);
  EXPECT_TRUE(saw_uid) << joined_lines(s.process->err_lines());
  EXPECT_TRUE(saw_refused);
}

}  // namespace
}  // namespace mles::test
