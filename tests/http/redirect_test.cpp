// Tests for the --redirect target builder and ACME http-01 path detection.
#include "http/redirect.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mles::http {
namespace {

const std::vector<std::string> configured{"example.com", "::1"};

TEST(https_redirect_target, keeps_path_and_query_and_omits_port_443) {
  const domain_set domains(configured);
  EXPECT_EQ(https_redirect_target(domains, "Example.com:80", "/a/b?x=1&y=%20", 443),
            "https://example.com/a/b?x=1&y=%20");
  EXPECT_EQ(https_redirect_target(domains, "example.com", "/", 443), "https://example.com/");
}

TEST(https_redirect_target, adds_a_non_default_port) {
  const domain_set domains(configured);
  EXPECT_EQ(https_redirect_target(domains, "example.com:8080", "/x", 8443), "https://example.com:8443/x");
  EXPECT_EQ(https_redirect_target(domains, "[::1]:8080", "/x", 8443), "https://[::1]:8443/x");
}

TEST(https_redirect_target, refuses_unknown_hosts_and_malformed_targets) {
  const domain_set domains(configured);
  EXPECT_FALSE(https_redirect_target(domains, "evil.com", "/", 443));
  EXPECT_FALSE(https_redirect_target(domains, "", "/", 443));
  EXPECT_FALSE(https_redirect_target(domains, "example.com", "//evil.com/x\r\nSet-Cookie: a", 443));
  EXPECT_FALSE(https_redirect_target(domains, "example.com", "http://evil.com/", 443));
  EXPECT_FALSE(https_redirect_target(domains, "example.com", "", 443));
}

TEST(acme_challenge_token, extracts_base64url_tokens) {
  EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"),
            "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0");
  EXPECT_EQ(acme_challenge_token("/.well-known/acme-challenge/ab-_9?x=1"), "ab-_9");
}

TEST(acme_challenge_token, rejects_other_paths) {
  for (const char* target : {"/", "/.well-known/acme-challenge/", "/.well-known/acme-challenge/a/b",
                             "/.well-known/acme-challenge/..", "/.well-known/acme-challenge/a%2fb",
                             "/x/.well-known/acme-challenge/abc", "/.well-known/acme-challenge"}) {
    EXPECT_FALSE(acme_challenge_token(target)) << target;
  }
}

}  // namespace
}  // namespace mles::http
