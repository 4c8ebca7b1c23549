// Tests for --peer URL parsing: schemes, default ports, IPv6, targets, and refusals.
#include "peer/peer_url.hpp"

#include <gtest/gtest.h>

using mles::peer::parse_peer_url;

TEST(peer_url, wss_defaults_to_port_443_and_the_root_target) {
  std::string why;
  auto u = parse_peer_url("wss://mles.example.org", why);
  ASSERT_TRUE(u) << why;
  EXPECT_TRUE(u->secure);
  EXPECT_EQ(u->host, "mles.example.org");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header(), "mles.example.org");
  EXPECT_FALSE(u->host_is_address());
}

TEST(peer_url, ws_with_port_path_and_query) {
  std::string why;
  auto u = parse_peer_url("ws://127.0.0.1:8080/mles?x=1", why);
  ASSERT_TRUE(u) << why;
  EXPECT_FALSE(u->secure);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/mles?x=1");
  EXPECT_EQ(u->host_header(), "127.0.0.1:8080");
  EXPECT_TRUE(u->host_is_address());
}

TEST(peer_url, ipv6_literal_is_unbracketed_for_connecting_and_bracketed_in_host) {
  std::string why;
  auto u = parse_peer_url("wss://[::1]:9443", why);
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9443);
  EXPECT_EQ(u->host_header(), "[::1]:9443");
  EXPECT_TRUE(u->host_is_address());
}

TEST(peer_url, refuses_what_cannot_be_a_peer) {
  for (const char* bad : {"", "mles.example.org", "http://a.example", "wss://", "wss://a.example:0",
                          "wss://a.example:70000", "wss://user@a.example", "ws://a.example/#frag",
                          "wss://a.example:port"}) {
    std::string why;
    EXPECT_FALSE(parse_peer_url(bad, why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}
