// Tests for reverse proxy rules: upstream URL validation and longest-prefix matching with
// the prefix stripped.
#include "http/proxy_rules.hpp"

#include <gtest/gtest.h>

namespace mles::http {
namespace {

TEST(parse_upstream, accepts_http_host_and_port) {
  auto u = parse_upstream("http://127.0.0.1:8080");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  u = parse_upstream("http://keeper.internal/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "keeper.internal");
  EXPECT_EQ(u->port, 80);
  u = parse_upstream("HTTP://[::1]:9000");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
}

TEST(parse_upstream, rejects_anything_but_plain_http_origins) {
  for (const char* bad : {"https://example.com", "ftp://example.com", "http://", "http://:80", "example.com:80",
                          "http://user:pw@example.com", "http://example.com/api", "http://example.com?x=1",
                          "http://example.com#f", "http://example.com:0", "http://example.com:65536",
                          "http://example.com:http", ""}) {
    EXPECT_FALSE(parse_upstream(bad)) << bad;
  }
}

TEST(proxy_table, longest_prefix_wins_and_is_stripped) {
  proxy_table table;
  ASSERT_TRUE(table.add("api", "http://127.0.0.1:8001"));
  ASSERT_TRUE(table.add("/api/keeper/", "http://127.0.0.1:8002"));
  auto m = table.match("/api/keeper/v1/items?limit=5");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target->port, 8002);
  EXPECT_EQ(m->forward_target, "/v1/items?limit=5");
  m = table.match("/api/other");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target->port, 8001);
  EXPECT_EQ(m->forward_target, "/other");
}

TEST(proxy_table, matches_whole_segments_only) {
  proxy_table table;
  ASSERT_TRUE(table.add("api", "http://127.0.0.1:8001"));
  EXPECT_FALSE(table.match("/apix"));
  EXPECT_FALSE(table.match("/"));
  EXPECT_FALSE(table.match("/static/api"));
  EXPECT_EQ(table.match("/api")->forward_target, "/");
  EXPECT_EQ(table.match("/api/")->forward_target, "/");
  EXPECT_EQ(table.match("/api?x=1")->forward_target, "/?x=1");
}

TEST(proxy_table, rejects_bad_or_duplicate_rules) {
  proxy_table table;
  EXPECT_FALSE(table.add("", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("/", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("a//b", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("a/../b", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("a%2fb", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("a?b", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("api", "https://127.0.0.1:1"));
  ASSERT_TRUE(table.add("api", "http://127.0.0.1:1"));
  EXPECT_FALSE(table.add("/api/", "http://127.0.0.1:2"));
}

}  // namespace
}  // namespace mles::http
