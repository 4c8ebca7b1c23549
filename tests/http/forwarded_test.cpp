// Tests for http::parse_cidr, cidr_set and forwarded_client (--trusted-proxy).
#include "http/forwarded.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mles::http {
namespace {

using boost::asio::ip::make_address;

cidr_set set_of(std::initializer_list<const char*> texts) {
  std::vector<cidr> v;
  for (const char* t : texts) {
    auto c = parse_cidr(t);
    EXPECT_TRUE(c) << t;
    if (c) v.push_back(*c);
  }
  return cidr_set(std::move(v));
}

TEST(cidr, parses_ipv4_ipv6_and_bare_addresses) {
  for (const char* ok : {"10.0.0.0/8", "192.0.2.0/24", "192.0.2.7", "192.0.2.7/32", "0.0.0.0/0", "2001:db8::/32",
                         "::1", "::/0", "::ffff:0:0/96", "fd00::/8"})
    EXPECT_TRUE(parse_cidr(ok)) << ok;
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "2001:db8::/129", "10.0.0.1/8", "192.0.2.0/24x",
                          "10.0.0.0/-1", "10.0.0.0/0008", "example.com/8", "[::1]/128", "fe80::1%eth0", "10.0.0.0 /8",
                          "10.0.0.0/8/8", "1.2.3"})
    EXPECT_FALSE(parse_cidr(bad)) << bad;
}

TEST(cidr, membership_across_families) {
  const auto s = set_of({"192.0.2.0/24", "2001:db8::/32", "10.1.0.0/17"});
  EXPECT_TRUE(s.contains(make_address("192.0.2.1")));
  EXPECT_TRUE(s.contains(make_address("192.0.2.255")));
  EXPECT_FALSE(s.contains(make_address("192.0.3.1")));
  EXPECT_TRUE(s.contains(make_address("10.1.127.255")));
  EXPECT_FALSE(s.contains(make_address("10.1.128.0")));
  // IPv4-mapped IPv6 peers (a dual-stack listener) match IPv4 ranges.
  EXPECT_TRUE(s.contains(make_address("::ffff:192.0.2.9")));
  EXPECT_TRUE(s.contains(make_address("2001:db8:ffff::1")));
  EXPECT_FALSE(s.contains(make_address("2001:db9::1")));
  EXPECT_FALSE(cidr_set().contains(make_address("127.0.0.1")));
  // An IPv6 /0 does not make every IPv4 address trusted only by accident: it does (mapped).
  EXPECT_TRUE(set_of({"::/0"}).contains(make_address("127.0.0.1")));
  EXPECT_FALSE(set_of({"0.0.0.0/0"}).contains(make_address("::1")));
}

TEST(forwarded, the_rightmost_untrusted_address_from_a_trusted_peer) {
  const auto trusted = set_of({"127.0.0.0/8", "10.0.0.0/8"});
  const auto peer = make_address("127.0.0.1");
  std::vector<std::string_view> one{"203.0.113.9"};
  EXPECT_EQ(forwarded_client(peer, one, trusted)->to_string(), "203.0.113.9");
  // A client-supplied left part is not believed: the rightmost untrusted address wins.
  std::vector<std::string_view> chain{"198.51.100.66, 203.0.113.9, 10.0.0.2"};
  EXPECT_EQ(forwarded_client(peer, chain, trusted)->to_string(), "203.0.113.9");
  // Several header lines are one list, in order.
  std::vector<std::string_view> lines{"198.51.100.66", " 203.0.113.9 ,10.0.0.2"};
  EXPECT_EQ(forwarded_client(peer, lines, trusted)->to_string(), "203.0.113.9");
  // All trusted: the leftmost.
  std::vector<std::string_view> inner{"10.0.0.7, 10.0.0.2"};
  EXPECT_EQ(forwarded_client(peer, inner, trusted)->to_string(), "10.0.0.7");
  std::vector<std::string_view> v6{"2001:db8::5"};
  EXPECT_EQ(forwarded_client(peer, v6, trusted)->to_string(), "2001:db8::5");
  // A mapped loopback peer is trusted through the IPv4 range.
  EXPECT_TRUE(forwarded_client(make_address("::ffff:127.0.0.1"), one, trusted));
}

TEST(forwarded, untrusted_peers_and_malformed_headers_keep_the_peer_address) {
  const auto trusted = set_of({"127.0.0.0/8"});
  std::vector<std::string_view> one{"203.0.113.9"};
  EXPECT_FALSE(forwarded_client(make_address("192.0.2.1"), one, trusted));
  EXPECT_FALSE(forwarded_client(make_address("127.0.0.1"), {}, trusted));
  for (const char* bad : {"", "203.0.113.9,", ",203.0.113.9", "203.0.113.9:5000", "[2001:db8::5]", "unknown",
                          "203.0.113.9 198.51.100.1", "203.0.113.9;x", "fe80::1%eth0", "203.0.113.999"}) {
    std::vector<std::string_view> h{bad};
    EXPECT_FALSE(forwarded_client(make_address("127.0.0.1"), h, trusted)) << bad;
  }
  // Bounded: an absurdly long list is ignored as a whole.
  std::string many;
  for (int i = 0; i < 100; ++i) many += (i ? "," : "") + std::string("203.0.113.9");
  std::vector<std::string_view> h{many};
  EXPECT_FALSE(forwarded_client(make_address("127.0.0.1"), h, trusted));
}

}  // namespace
}  // namespace mles::http
