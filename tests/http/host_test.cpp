// Tests for host routing: Host header normalisation and matching against --domains.
#include "http/host.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mles::http {
namespace {

TEST(normalise_host, strips_port_case_and_trailing_dot) {
  EXPECT_EQ(normalise_host("Example.COM:8443"), "example.com");
  EXPECT_EQ(normalise_host("example.com."), "example.com");
  EXPECT_EQ(normalise_host("example.com.:443"), "example.com");
  EXPECT_EQ(normalise_host("localhost:"), "localhost");
  EXPECT_EQ(normalise_host("127.0.0.1:80"), "127.0.0.1");
}

TEST(normalise_host, removes_ipv6_brackets) {
  EXPECT_EQ(normalise_host("[::1]"), "::1");
  EXPECT_EQ(normalise_host("[2001:DB8::1]:8443"), "2001:db8::1");
}

TEST(normalise_host, rejects_malformed_values) {
  for (const char* bad : {"", ":443", ".", "exa mple.com", "example.com:http", "example.com:65536",
                          "example.com:-1", "[::1", "[::1]x", "[]", "[::g]", "a/b", "a\\b", "a@b",
                          "example.com:1:2"}) {
    EXPECT_FALSE(normalise_host(bad)) << bad;
  }
}

TEST(domain_set, matches_configured_domain_ignoring_port_case_and_dot) {
  const std::vector<std::string> configured{"example.com", "Chat.Example.org"};
  const domain_set domains(configured);
  EXPECT_EQ(domains.match("EXAMPLE.com:443"), "example.com");
  EXPECT_EQ(domains.match("chat.example.org."), "Chat.Example.org");
}

TEST(domain_set, refuses_unknown_and_malformed_hosts) {
  const std::vector<std::string> configured{"example.com"};
  const domain_set domains(configured);
  EXPECT_FALSE(domains.match("evil.com"));
  EXPECT_FALSE(domains.match("www.example.com"));
  EXPECT_FALSE(domains.match("example.com/../x"));
  EXPECT_FALSE(domains.match(""));
}

}  // namespace
}  // namespace mles::http
