// Tests for the ACME resource parsers: pebble-shaped directory, account, order, authorization,
// challenge and problem documents; optional members; refusal of malformed JSON and shapes.
#include "acme/resources.hpp"

#include "acme/error.hpp"
#include "pebble_responses.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mles::acme {
namespace {

TEST(parse_directory, reads_pebble_directory) {
  const auto dir = parse_directory(pebble::directory);
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->new_nonce, pebble::nonce_url);
  EXPECT_EQ(dir->new_account, pebble::new_account_url);
  EXPECT_EQ(dir->new_order, pebble::new_order_url);
  EXPECT_FALSE(dir->renewal_info);
  EXPECT_EQ(dir->terms_of_service, "data:text/plain,Do%20what%20thou%20wilt");
  EXPECT_FALSE(dir->external_account_required);
}

TEST(parse_directory, reads_renewal_info_and_external_account_required) {
  const auto dir = parse_directory(
      R"({"newNonce":"n","newAccount":"a","newOrder":"o","renewalInfo":"https://ca/ari","meta":{"externalAccountRequired":true}})");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->renewal_info, "https://ca/ari");
  EXPECT_TRUE(dir->external_account_required);
  EXPECT_FALSE(dir->terms_of_service);
}

TEST(parse_directory, requires_nonce_account_and_order_urls) {
  EXPECT_EQ(parse_directory(R"({"newAccount":"a","newOrder":"o"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_directory(R"({"newNonce":"","newAccount":"a","newOrder":"o"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_directory(R"({"newNonce":1,"newAccount":"a","newOrder":"o"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_directory(R"({"newNonce":"n","newAccount":"a","newOrder":"o","meta":[]})").error(),
            errc::malformed_resource);
}

TEST(parse_directory, refuses_non_json_and_non_objects) {
  EXPECT_EQ(parse_directory("<html>").error(), errc::invalid_json);
  EXPECT_EQ(parse_directory("").error(), errc::invalid_json);
  EXPECT_EQ(parse_directory(R"({"newNonce":"n")").error(), errc::invalid_json);
  EXPECT_EQ(parse_directory("[]").error(), errc::malformed_resource);
  EXPECT_EQ(parse_directory("null").error(), errc::malformed_resource);
}

TEST(parse_directory, refuses_deep_nesting) {
  const std::string deep = R"({"newNonce":"n","newAccount":"a","newOrder":"o","x":)" + std::string(1000, '[') +
                           std::string(1000, ']') + "}";
  EXPECT_EQ(parse_directory(deep).error(), errc::invalid_json);
}

TEST(parse_account, reads_pebble_account) {
  const auto acct = parse_account(pebble::account);
  ASSERT_TRUE(acct);
  EXPECT_EQ(acct->status, status::valid);
  ASSERT_EQ(acct->contact.size(), 1u);
  EXPECT_EQ(acct->contact[0], "mailto:admin@mles.test");
}

TEST(parse_account, refuses_unknown_status) {
  EXPECT_EQ(parse_account(R"({"status":"happy"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_account(R"({"contact":[]})").error(), errc::malformed_resource);
}

TEST(parse_order, reads_pebble_pending_order) {
  const auto o = parse_order(pebble::order("pending"));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, status::pending);
  ASSERT_EQ(o->identifiers.size(), 2u);
  EXPECT_EQ(o->identifiers[1].type, "dns");
  EXPECT_EQ(o->identifiers[1].value, "www.mles.test");
  ASSERT_EQ(o->authorizations.size(), 2u);
  EXPECT_EQ(o->authorizations[0], pebble::authz_url(1));
  EXPECT_EQ(o->finalize, pebble::finalize_url);
  EXPECT_FALSE(o->certificate);
  EXPECT_EQ(o->expires, "2024-06-02T10:00:00Z");
  EXPECT_FALSE(o->error);
}

TEST(parse_order, reads_certificate_of_valid_order) {
  const auto o = parse_order(pebble::order("valid", 2, true));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, status::valid);
  EXPECT_EQ(o->certificate, pebble::certificate_url);
}

TEST(parse_order, reads_error_of_invalid_order) {
  const auto o = parse_order(
      R"({"status":"invalid","identifiers":[],"authorizations":[],"finalize":"f","error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"d"}})");
  ASSERT_TRUE(o);
  ASSERT_TRUE(o->error);
  EXPECT_EQ(o->error->type, "urn:ietf:params:acme:error:unauthorized");
}

TEST(parse_order, refuses_missing_or_mistyped_members) {
  EXPECT_EQ(parse_order(R"({"status":"pending","identifiers":[],"finalize":"f"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_order(R"({"status":"pending","identifiers":[],"authorizations":[1],"finalize":"f"})").error(),
            errc::malformed_resource);
  EXPECT_EQ(parse_order(R"({"status":"pending","identifiers":{},"authorizations":[],"finalize":"f"})").error(),
            errc::malformed_resource);
  EXPECT_EQ(parse_order(R"({"status":"pending","identifiers":[{"type":"dns"}],"authorizations":[],"finalize":"f"})")
                .error(),
            errc::malformed_resource);
  EXPECT_EQ(parse_order(R"({"status":"pending","identifiers":[],"authorizations":[],"finalize":"f","certificate":5})")
                .error(),
            errc::malformed_resource);
}

TEST(parse_authorization, reads_pebble_authorization_with_three_challenges) {
  const auto a = parse_authorization(pebble::authorization(1, "pending"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, status::pending);
  EXPECT_EQ(a->identifier.value, "mles.test");
  ASSERT_EQ(a->challenges.size(), 3u);
  EXPECT_EQ(a->challenges[1].type, "tls-alpn-01");
  EXPECT_EQ(a->challenges[1].url, pebble::challenge_url(1, "tls-alpn-01"));
  EXPECT_EQ(a->challenges[1].token, pebble::token(1));
  EXPECT_EQ(a->challenges[1].status, status::pending);
  EXPECT_FALSE(a->wildcard);
  EXPECT_EQ(a->expires, "2024-06-01T11:00:00Z");
}

TEST(parse_authorization, keeps_challenge_error_verbatim) {
  const auto a = parse_authorization(pebble::authorization(1, "invalid", "invalid", pebble::tls_alpn_error));
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->challenges[1].error);
  EXPECT_EQ(a->challenges[1].error->type, "urn:ietf:params:acme:error:unauthorized");
  EXPECT_EQ(a->challenges[1].error->detail,
            "Incorrect validation certificate for tls-alpn-01 challenge. Missing acmeValidationV1 extension.");
  EXPECT_EQ(a->challenges[1].error->status, 403);
}

TEST(parse_authorization, refuses_bad_challenges) {
  EXPECT_EQ(parse_authorization(R"({"status":"pending","identifier":{"type":"dns","value":"x"},"challenges":[1]})")
                .error(),
            errc::malformed_resource);
  EXPECT_EQ(parse_authorization(
                R"({"status":"pending","identifier":{"type":"dns","value":"x"},"challenges":[{"type":"http-01","status":"pending"}]})")
                .error(),
            errc::malformed_resource);
  EXPECT_EQ(parse_authorization(R"({"status":"pending","challenges":[]})").error(), errc::malformed_resource);
}

TEST(parse_challenge, reads_triggered_challenge) {
  const auto c = parse_challenge(pebble::challenge(1, "http-01", "processing"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->type, "http-01");
  EXPECT_EQ(c->status, status::processing);
}

TEST(parse_problem, keeps_type_and_detail_verbatim) {
  const auto p = parse_problem(pebble::bad_nonce);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, "urn:ietf:params:acme:error:badNonce");
  EXPECT_EQ(p->detail, "JWS has an invalid anti-replay nonce: kXL3MrZUl-1dtgCbGJ-vgQ");
  EXPECT_EQ(p->status, 400);
}

TEST(parse_problem, reads_subproblems_with_identifiers) {
  // RFC 8555 §6.7.1 example.
  const auto p = parse_problem(R"({
    "type": "urn:ietf:params:acme:error:malformed",
    "detail": "Some of the identifiers requested were rejected",
    "subproblems": [
      {"type": "urn:ietf:params:acme:error:malformed", "detail": "Invalid underscore in DNS name \"_example.org\"",
       "identifier": {"type": "dns", "value": "_example.org"}},
      {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
       "detail": "This CA will not issue for \"example.net\"",
       "identifier": {"type": "dns", "value": "example.net"}}
    ]})");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->subproblems.size(), 2u);
  EXPECT_EQ(p->subproblems[0].detail, "Invalid underscore in DNS name \"_example.org\"");
  ASSERT_TRUE(p->subproblems[1].identifier);
  EXPECT_EQ(p->subproblems[1].identifier->value, "example.net");
  EXPECT_FALSE(p->status);
}

TEST(parse_problem, needs_a_type) {
  EXPECT_EQ(parse_problem(R"({"detail":"d"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_problem(R"({"type":"t","status":"400"})").error(), errc::malformed_resource);
  EXPECT_EQ(parse_problem(R"({"type":"t","status":1000})").error(), errc::malformed_resource);
}

TEST(parse_status, knows_every_rfc8555_status) {
  for (const char* s : {"pending", "ready", "processing", "valid", "invalid", "deactivated", "expired", "revoked"}) {
    EXPECT_TRUE(parse_status(s)) << s;
  }
  EXPECT_FALSE(parse_status("Valid"));
  EXPECT_FALSE(parse_status(""));
}

}  // namespace
}  // namespace mles::acme
