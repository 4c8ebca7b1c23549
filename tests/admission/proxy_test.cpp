// Real client addresses behind a load balancer (README, "Behind a load balancer"):
// --proxy-protocol (PROXY v1/v2 before TLS or HTTP) and --trusted-proxy (X-Forwarded-For),
// through real sockets to the in-process server, plain and TLS.
#include "support/http_client.hpp"
#include "support/server_fixture.hpp"

#include "net/admission.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <string>

namespace mles::test {
namespace {

using namespace std::chrono_literals;

constexpr millis generous{30'000};

std::string v1_tcp4(const std::string& src, std::uint16_t port = 5555) {
  return "PROXY TCP4 " + src + " 127.0.0.1 " + std::to_string(port) + " 443\r\n";
}

std::string v2(std::uint8_t ver_cmd, std::uint8_t fam, const std::string& payload) {
  std::string h("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>(payload.size() >> 8);
  h += static_cast<char>(payload.size() & 0xFF);
  return h + payload;
}

std::string v2_inet6(const std::string& src) {
  std::string p(36, '\0');
  in6_addr a{};
  EXPECT_EQ(::inet_pton(AF_INET6, src.c_str(), &a), 1);
  std::memcpy(p.data(), &a, 16);
  ::inet_pton(AF_INET6, "::1", &a);
  std::memcpy(p.data() + 16, &a, 16);
  p[32] = '\x12';
  p[33] = '\x34';
  p[34] = '\x01';
  p[35] = '\xBB';
  // A TLV after the addresses (skipped by the server).
  return v2(0x21, 0x21, p + std::string("\x04\x00\x02ok", 5));
}

std::size_t refused(const server_fixture& f, net::refusal why) {
  return f.stats().refused[static_cast<std::size_t>(why)];
}

// Joins a channel through a connection that starts with `preamble`, and checks that the
// session works (a ping round trip after the join).
::testing::AssertionResult joins_with(server_fixture& f, const std::string& preamble, const std::string& uid) {
  ws_client c;
  auto o = f.client_options();
  o.preamble = preamble;
  o.timeout = generous;
  if (!c.connect(f.port(), o)) return ::testing::AssertionFailure() << "connect: " << c.error();
  handshake_options h;
  h.timeout = generous;
  const http_response r = c.handshake(h);
  if (r.code != 101) return ::testing::AssertionFailure() << "upgrade: " << r.describe();
  if (!c.join(uid, "proxied")) return ::testing::AssertionFailure() << "join: " << c.error();
  if (!c.sync(generous)) return ::testing::AssertionFailure() << "sync after join: " << c.error();
  return ::testing::AssertionSuccess();
}

class proxy_protocol : public ::testing::TestWithParam<transport> {};

TEST_P(proxy_protocol, v1_and_v2_headers_then_a_websocket_join_works) {
  server_fixture f(GetParam(), [](app::config& c) { c.proxy_protocol = true; });
  EXPECT_TRUE(joins_with(f, v1_tcp4("203.0.113.9"), "v1-tcp4"));
  EXPECT_TRUE(joins_with(f, "PROXY TCP6 2001:db8::5 ::1 4660 443\r\n", "v1-tcp6"));
  EXPECT_TRUE(joins_with(f, "PROXY UNKNOWN\r\n", "v1-unknown"));
  EXPECT_TRUE(joins_with(f, v2(0x21, 0x11, std::string("\xCB\x00\x71\x09\x7F\x00\x00\x01\x15\xB3\x01\xBB", 12)),
                         "v2-inet"));
  EXPECT_TRUE(joins_with(f, v2_inet6("2001:db8::7"), "v2-inet6"));
  EXPECT_TRUE(joins_with(f, v2(0x20, 0x00, ""), "v2-local"));
  EXPECT_EQ(refused(f, net::refusal::proxy_header), 0u);
}

TEST_P(proxy_protocol, connections_without_a_valid_header_are_closed_without_hanging) {
  server_fixture f(GetParam(), [](app::config& c) { c.proxy_protocol = true; });
  auto raw = f.client_options();
  raw.tls_handshake = false;
  raw.timeout = generous;
  const std::string garbage[] = {
      GetParam() == transport::tls ? std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)
                                   : http_request("GET", "/"),
      "PROXY " + std::string(200, 'x'),                     // oversized v1
      "PROXY TCP4 203.0.113.9 127.0.0.1 70000 443\r\n",     // bad port
      v2(0x21, 0x11, std::string(2000, '\0')),              // oversized v2
      std::string(64, '\0'),                                // garbage
  };
  std::size_t n = 0;
  for (const auto& g : garbage) {
    http_client c;
    auto o = raw;
    o.preamble = g;
    ASSERT_TRUE(c.connect(f.port(), o)) << c.error();
    EXPECT_TRUE(c.wait_closed(generous)) << "left hanging after " << n;
    EXPECT_EQ(c.extra_bytes(), 0u) << "answered instead of closed: " << n;
    ++n;
  }
  // A partial header and then silence: closed at the handshake deadline.
  http_client partial;
  auto o = raw;
  o.preamble = "PROXY TCP4 203.0.1";
  ASSERT_TRUE(partial.connect(f.port(), o)) << partial.error();
  EXPECT_TRUE(partial.wait_closed(generous));
  // A client that does not know about the proxy at all is refused (no TLS, no HTTP).
  ws_client direct;
  auto d = f.client_options();
  d.timeout = generous;
  if (direct.connect(f.port(), d)) {
    EXPECT_NE(direct.handshake().code, 101);
  }
  EXPECT_GE(refused(f, net::refusal::proxy_header), n);
  // And the server still serves proxied clients.
  EXPECT_TRUE(joins_with(f, v1_tcp4("203.0.113.10"), "after"));
}

TEST_P(proxy_protocol, the_rate_limit_counts_the_address_from_the_header) {
  server_fixture f(GetParam(), [](app::config& c) {
    c.proxy_protocol = true;
    c.rate_limit = 1;  // one connection per minute per address
  });
  EXPECT_TRUE(joins_with(f, v1_tcp4("203.0.113.1"), "one"));
  EXPECT_TRUE(joins_with(f, v1_tcp4("203.0.113.2"), "two"));  // same loopback peer, another client
  // 203.0.113.1 again: over its limit, closed (without an answer).
  http_client again;
  auto o = f.client_options();
  o.tls_handshake = false;
  o.preamble = v1_tcp4("203.0.113.1");
  ASSERT_TRUE(again.connect(f.port(), o)) << again.error();
  EXPECT_TRUE(again.wait_closed(generous));
  EXPECT_EQ(again.extra_bytes(), 0u);
  EXPECT_TRUE(joins_with(f, v2_inet6("2001:db8::1"), "three"));
}

INSTANTIATE_TEST_SUITE_P(transports, proxy_protocol, ::testing::Values(transport::plain, transport::tls),
                         [](const auto& p) { return p.param == transport::tls ? "tls" : "plain"; });

http_reply get_with_xff(server_fixture& f, const std::string& xff) {
  http_client c;
  auto o = f.client_options();
  o.timeout = generous;
  if (!c.connect(f.port(), o)) return {};
  return c.exchange(http_request("GET", "/", "localhost", {{"X-Forwarded-For", xff}}), generous);
}

TEST(trusted_proxy, x_forwarded_for_from_a_trusted_peer_is_the_client_for_the_rate_limit) {
  server_fixture f(transport::plain, [](app::config& c) {
    c.trusted_proxies = {"127.0.0.0/8", "::1"};
    c.rate_limit = 1;
  });
  // The loopback peer is trusted: each forwarded client has its own budget...
  EXPECT_EQ(get_with_xff(f, "198.51.100.1").code, 404);
  EXPECT_EQ(get_with_xff(f, "198.51.100.2").code, 404);
  // ...the rightmost untrusted address counts, not what the client wrote on the left...
  EXPECT_EQ(get_with_xff(f, "192.0.2.99, 198.51.100.3, 127.0.0.5").code, 404);
  // ...and a client over its budget is refused with 429.
  const http_reply over = get_with_xff(f, "10.9.9.9, 198.51.100.1");
  EXPECT_EQ(over.code, 429) << over.describe();
  EXPECT_TRUE(over.header("Retry-After").has_value());
  // The WebSocket upgrade is an HTTP request like the others.
  ws_client c;
  auto o = f.client_options();
  ASSERT_TRUE(c.connect(f.port(), o)) << c.error();
  handshake_options h;
  h.extra_headers = {{"X-Forwarded-For", "198.51.100.2"}};
  EXPECT_EQ(c.handshake(h).code, 429);
  ws_client d;
  ASSERT_TRUE(d.connect(f.port(), o)) << d.error();
  h.extra_headers = {{"X-Forwarded-For", "198.51.100.4"}};
  EXPECT_EQ(d.handshake(h).code, 101);
  // A malformed header: ignored, the peer (trusted, exempt from the per-connection limit) is served.
  EXPECT_EQ(get_with_xff(f, "198.51.100.1:5000").code, 404);
  EXPECT_EQ(get_with_xff(f, "not an address").code, 404);
}

TEST(trusted_proxy, x_forwarded_for_from_an_untrusted_peer_is_ignored) {
  server_fixture f(transport::plain, [](app::config& c) {
    c.trusted_proxies = {"10.0.0.0/8"};
    c.rate_limit = 1;
  });
  EXPECT_EQ(get_with_xff(f, "198.51.100.1").code, 404);
  // A different X-Forwarded-For does not give the loopback peer a new budget.
  http_client c;
  auto o = f.client_options();
  ASSERT_TRUE(c.connect(f.port(), o)) << c.error();
  c.send(http_request("GET", "/", "localhost", {{"X-Forwarded-For", "198.51.100.2"}}), generous);
  EXPECT_TRUE(c.wait_closed(generous));
  EXPECT_EQ(c.extra_bytes(), 0u);
}

}  // namespace
}  // namespace mles::test
