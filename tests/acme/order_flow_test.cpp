// Tests for acme::order_flow without any network: scripted responses shaped like pebble's
// (strict mode), covering the full issuance, nonce handling and badNonce storms, account
// 200/201, authorization reuse, challenge choice, polling, and each failure path.
#include "acme/order_flow.hpp"

#include "acme/base64url.hpp"
#include "acme/error.hpp"
#include "openssl_test_support.hpp"
#include "pebble_responses.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <string>

namespace mles::acme {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string str(const json::value& v) { return std::string(v.as_string()); }

struct opened_jws {
  json::object header;
  std::string payload;
};

class order_flow_test : public ::testing::Test {
 protected:
  order_flow_test() { settings_.emails = {"admin@mles.test", "ops@mles.test"}; }

  order_flow& flow() {
    if (!flow_) flow_.emplace(settings_, account_key_);
    return *flow_;
  }

  // A response as pebble sends it: always a fresh Replay-Nonce unless told otherwise.
  action respond(unsigned status, std::string body, std::string location = {}, std::string retry_after = {},
                 bool with_nonce = true) {
    http_response r;
    r.status = status;
    r.body = std::move(body);
    r.location = std::move(location);
    r.retry_after = std::move(retry_after);
    if (with_nonce) {
      r.replay_nonce = "nonce-" + std::to_string(++nonces_);
      last_nonce_ = r.replay_nonce;
    }
    return flow().on_response(r, now_);
  }

  static http_request request(const action& a) {
    const auto* r = std::get_if<http_request>(&a);
    if (r == nullptr) {
      ADD_FAILURE() << "expected http_request, got action #" << a.index();
      return {};
    }
    return *r;
  }

  // Checks a signed POST (method, URL, content type, signature by the account key, header
  // nonce = the last Replay-Nonce handed out, header url) and returns its header and payload.
  opened_jws expect_post(const action& a, const std::string& url) {
    const http_request r = request(a);
    EXPECT_EQ(r.method, http_method::post);
    EXPECT_EQ(r.url, url);
    EXPECT_EQ(r.content_type, "application/jose+json");
    const json::object jws = json::parse(r.body).as_object();
    const std::string protected_b64(jws.at("protected").as_string());
    const std::string payload_b64(jws.at("payload").as_string());
    const std::string signature = base64url_decode(std::string(jws.at("signature").as_string())).value();
    EXPECT_TRUE(test::verify_es256(account_key_.native(), protected_b64 + "." + payload_b64, signature));
    opened_jws out{json::parse(base64url_decode(protected_b64).value()).as_object(),
                   base64url_decode(payload_b64).value()};
    EXPECT_EQ(str(out.header.at("nonce")), last_nonce_);
    EXPECT_EQ(str(out.header.at("url")), url);
    if (!account_url_seen_.empty()) {
      EXPECT_EQ(str(out.header.at("kid")), account_url_seen_);
    }
    return out;
  }

  void expect_post_as_get(const action& a, const std::string& url) {
    const opened_jws jws = expect_post(a, url);
    EXPECT_EQ(jws.payload, "");
  }

  static wait expect_wait(const action& a) {
    const auto* w = std::get_if<wait>(&a);
    if (w == nullptr) {
      ADD_FAILURE() << "expected wait, got action #" << a.index();
      return {};
    }
    return *w;
  }

  static failed expect_failed(const action& a) {
    const auto* f = std::get_if<failed>(&a);
    if (f == nullptr) {
      ADD_FAILURE() << "expected failed, got action #" << a.index();
      return {};
    }
    return *f;
  }

  // start → directory → HEAD newNonce → newAccount; returns the newAccount request.
  action to_new_account() {
    const http_request dir = request(flow().start());
    EXPECT_EQ(dir.method, http_method::get);
    EXPECT_EQ(dir.url, pebble::directory_url);
    const http_request head = request(respond(200, pebble::directory, {}, {}, false));
    EXPECT_EQ(head.method, http_method::head);
    EXPECT_EQ(head.url, pebble::nonce_url);
    return respond(200, "");
  }

  // ... → newAccount answered 201 → the newOrder request.
  action to_new_order() {
    const action account = to_new_account();
    expect_post(account, pebble::new_account_url);
    const action order = respond(201, pebble::account, pebble::account_url);
    account_url_seen_ = pebble::account_url;
    expect_post(order, pebble::new_order_url);
    return order;
  }

  // ... → newOrder answered with a pending two-name order → the first authorization fetch.
  action to_first_authorization() {
    to_new_order();
    const action a = respond(201, pebble::order("pending"), pebble::order_url);
    expect_post_as_get(a, pebble::authz_url(1));
    return a;
  }

  // Authorization i pending → provision → trigger {} → processing → wait → valid; returns the
  // action after the authorization became valid.
  action validate_authorization(int i, const std::string& type = "tls-alpn-01") {
    const action provision = respond(200, pebble::authorization(i, "pending"));
    const auto* p = std::get_if<provision_challenge>(&provision);
    EXPECT_NE(p, nullptr);
    if (p == nullptr) return provision;
    EXPECT_EQ(to_string(p->type), type);
    EXPECT_EQ(p->name, i == 1 ? "mles.test" : "www.mles.test");
    EXPECT_EQ(p->token, pebble::token(i));
    EXPECT_EQ(p->key_authorization, pebble::token(i) + "." + account_key_.thumbprint());

    const action trigger = flow().on_provisioned();
    const opened_jws jws = expect_post(trigger, pebble::challenge_url(i, type));
    EXPECT_EQ(jws.payload, "{}");  // pebble -strict: exactly {}
    expect_wait(respond(200, pebble::challenge(i, type, "processing")));
    const action poll = flow().on_waited();
    expect_post_as_get(poll, pebble::authz_url(i));
    return respond(200, pebble::authorization(i, "valid", "valid"));
  }

  // From "order fetched after the authorizations" through finalize to the certificate request.
  action finalize_to_certificate(const action& order_fetch) {
    expect_post_as_get(order_fetch, pebble::order_url);
    const action finalize = respond(200, pebble::order("ready"));
    const opened_jws jws = expect_post(finalize, pebble::finalize_url);
    csr_der_ = base64url_decode(std::string(json::parse(jws.payload).as_object().at("csr").as_string())).value();
    expect_wait(respond(200, pebble::order("processing")));
    const action poll = flow().on_waited();
    expect_post_as_get(poll, pebble::order_url);
    const action download = respond(200, pebble::order("valid", 2, true));
    expect_post_as_get(download, pebble::certificate_url);
    EXPECT_EQ(request(download).accept, "application/pem-certificate-chain");
    return download;
  }

  std::string chain() const { return leaf_ + intermediate_; }

  p256_key account_key_ = p256_key::generate().value();
  order_settings settings_{pebble::directory_url, {"mles.test", "www.mles.test"}, {}};
  std::optional<order_flow> flow_;
  std::chrono::system_clock::time_point now_ = std::chrono::sys_days{std::chrono::year{2025} / 1 / 1};
  int nonces_ = 0;
  std::string last_nonce_;
  std::string account_url_seen_;
  std::string csr_der_;
  std::string leaf_ = test::make_certificate("20250101000000Z", "20250401000000Z");
  std::string intermediate_ = test::make_certificate("20240101000000Z", "20300101000000Z");
};

TEST_F(order_flow_test, issues_certificate_for_all_names_through_tls_alpn01) {
  to_first_authorization();
  const action second = validate_authorization(1);
  expect_post_as_get(second, pebble::authz_url(2));
  const action order_fetch = validate_authorization(2);
  finalize_to_certificate(order_fetch);

  const action finished = respond(200, chain());
  const auto* d = std::get_if<done>(&finished);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->certificate_chain_pem, chain());
  EXPECT_EQ(d->not_before, std::chrono::sys_days{std::chrono::year{2025} / 1 / 1});
  EXPECT_EQ(d->not_after, std::chrono::sys_days{std::chrono::year{2025} / 4 / 1});
  // The certificate key is the CSR's key, and not the account key.
  const test::pkey_ptr key = test::read_private_key(d->key_pem);
  ASSERT_TRUE(key);
  const auto* p = reinterpret_cast<const unsigned char*>(csr_der_.data());
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der_.size()));
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_check_private_key(req, key.get()), 1);
  EXPECT_NE(EVP_PKEY_eq(key.get(), account_key_.native()), 1);
  X509_REQ_free(req);
  EXPECT_EQ(flow().account_url(), pebble::account_url);
}

TEST_F(order_flow_test, new_account_agrees_to_terms_with_mailto_contacts_and_jwk) {
  const action account = to_new_account();
  const opened_jws jws = expect_post(account, pebble::new_account_url);
  EXPECT_EQ(jws.header.at("jwk"), json::parse(account_key_.jwk()));
  EXPECT_FALSE(jws.header.contains("kid"));
  EXPECT_EQ(json::parse(jws.payload),
            json::parse(R"({"termsOfServiceAgreed":true,"contact":["mailto:admin@mles.test","mailto:ops@mles.test"]})"));
}

TEST_F(order_flow_test, new_account_without_emails_sends_no_contact) {
  settings_.emails.clear();
  const opened_jws jws = expect_post(to_new_account(), pebble::new_account_url);
  EXPECT_EQ(json::parse(jws.payload), json::parse(R"({"termsOfServiceAgreed":true})"));
}

TEST_F(order_flow_test, existing_account_answered_200_is_reused) {
  expect_post(to_new_account(), pebble::new_account_url);
  const action order = respond(200, pebble::account, pebble::account_url);
  account_url_seen_ = pebble::account_url;
  const opened_jws jws = expect_post(order, pebble::new_order_url);
  EXPECT_FALSE(jws.header.contains("jwk"));
  EXPECT_EQ(json::parse(jws.payload),
            json::parse(R"({"identifiers":[{"type":"dns","value":"mles.test"},{"type":"dns","value":"www.mles.test"}]})"));
}

TEST_F(order_flow_test, account_without_location_fails) {
  to_new_account();
  const failed f = expect_failed(respond(201, pebble::account));
  EXPECT_EQ(f.error, errc::missing_location);
}

TEST_F(order_flow_test, deactivated_account_fails) {
  to_new_account();
  const failed f = expect_failed(respond(200, R"({"status":"deactivated"})", pebble::account_url));
  EXPECT_EQ(f.error, errc::account_not_valid);
}

TEST_F(order_flow_test, order_without_location_fails) {
  to_new_order();
  const failed f = expect_failed(respond(201, pebble::order("pending")));
  EXPECT_EQ(f.error, errc::missing_location);
}

TEST_F(order_flow_test, rejected_identifier_on_new_order_fails_with_ca_problem_verbatim) {
  to_new_order();
  const failed f = expect_failed(respond(400, pebble::rejected_identifier));
  EXPECT_EQ(f.error, errc::ca_problem);
  EXPECT_EQ(f.problem_type, "urn:ietf:params:acme:error:rejectedIdentifier");
  EXPECT_EQ(f.detail, "Order included a blocked identifier: blocked.test");
}

TEST_F(order_flow_test, rate_limit_failure_carries_retry_after) {
  to_new_order();
  const failed f = expect_failed(respond(
      429, R"({"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates"})", {}, "3600"));
  EXPECT_EQ(f.problem_type, "urn:ietf:params:acme:error:rateLimited");
  EXPECT_EQ(f.retry_after, std::chrono::seconds{3600});
}

TEST_F(order_flow_test, malformed_json_order_fails) {
  to_new_order();
  const failed f = expect_failed(respond(201, R"({"status":"pending",)", pebble::order_url));
  EXPECT_EQ(f.error, errc::invalid_json);
  EXPECT_EQ(f.detail, "newOrder");
}

TEST_F(order_flow_test, malformed_directory_fails) {
  request(flow().start());
  EXPECT_EQ(expect_failed(respond(200, R"({"newNonce":"n"})")).error, errc::malformed_resource);
}

TEST_F(order_flow_test, directory_error_page_fails_with_status) {
  request(flow().start());
  const failed f = expect_failed(respond(503, "<html>down</html>"));
  EXPECT_EQ(f.error, errc::unexpected_status);
  EXPECT_EQ(f.detail, "directory: HTTP 503");
  EXPECT_TRUE(f.problem_type.empty());
}

TEST_F(order_flow_test, external_account_binding_requirement_fails) {
  request(flow().start());
  const failed f = expect_failed(
      respond(200, R"({"newNonce":"n","newAccount":"a","newOrder":"o","meta":{"externalAccountRequired":true}})"));
  EXPECT_EQ(f.error, errc::external_account_required);
}

TEST_F(order_flow_test, nonce_endpoint_without_replay_nonce_fails) {
  request(flow().start());
  request(respond(200, pebble::directory, {}, {}, false));
  EXPECT_EQ(expect_failed(respond(200, "", {}, {}, false)).error, errc::missing_nonce);
}

TEST_F(order_flow_test, each_response_nonce_signs_the_next_request_without_head) {
  // expect_post checks header nonce == the previous response's Replay-Nonce throughout.
  to_first_authorization();
  const action second = validate_authorization(1);
  EXPECT_EQ(request(second).method, http_method::post);
}

TEST_F(order_flow_test, bad_nonce_resends_the_same_request_with_the_fresh_nonce) {
  const action first = to_new_order();
  const opened_jws original = expect_post(first, pebble::new_order_url);
  const action retry = respond(400, pebble::bad_nonce);
  const opened_jws resent = expect_post(retry, pebble::new_order_url);  // signed with the error's nonce
  EXPECT_EQ(resent.payload, original.payload);
  EXPECT_NE(resent.header.at("nonce"), original.header.at("nonce"));
}

TEST_F(order_flow_test, bad_nonce_without_replay_nonce_fetches_one) {
  to_new_order();
  const http_request head = request(respond(400, pebble::bad_nonce, {}, {}, false));
  EXPECT_EQ(head.method, http_method::head);
  EXPECT_EQ(head.url, pebble::nonce_url);
  expect_post(respond(200, ""), pebble::new_order_url);
}

TEST_F(order_flow_test, bad_nonce_storm_within_bound_still_issues) {
  to_new_order();
  for (unsigned i = 0; i < settings_.max_bad_nonce_retries; ++i) {
    expect_post(respond(400, pebble::bad_nonce), pebble::new_order_url);
  }
  expect_post_as_get(respond(201, pebble::order("pending"), pebble::order_url), pebble::authz_url(1));
  // The bound counts in a row: a fresh storm on the next request is allowed again.
  for (unsigned i = 0; i < settings_.max_bad_nonce_retries; ++i) {
    expect_post_as_get(respond(400, pebble::bad_nonce), pebble::authz_url(1));
  }
  expect_post_as_get(validate_authorization(1), pebble::authz_url(2));
}

TEST_F(order_flow_test, bad_nonce_storm_beyond_bound_fails) {
  to_new_order();
  for (unsigned i = 0; i < settings_.max_bad_nonce_retries; ++i) respond(400, pebble::bad_nonce);
  const failed f = expect_failed(respond(400, pebble::bad_nonce));
  EXPECT_EQ(f.error, errc::too_many_bad_nonces);
  EXPECT_EQ(f.problem_type, "urn:ietf:params:acme:error:badNonce");
  EXPECT_EQ(f.detail, "JWS has an invalid anti-replay nonce: kXL3MrZUl-1dtgCbGJ-vgQ");
}

TEST_F(order_flow_test, already_valid_authorization_is_skipped) {
  to_first_authorization();
  const action next = respond(200, pebble::authorization(1, "valid", "valid"));
  expect_post_as_get(next, pebble::authz_url(2));
  const action order_fetch = validate_authorization(2);
  expect_post_as_get(order_fetch, pebble::order_url);
}

TEST_F(order_flow_test, order_ready_at_creation_goes_straight_to_finalize) {
  to_new_order();
  const action finalize = respond(201, pebble::order("ready"), pebble::order_url);
  expect_post(finalize, pebble::finalize_url);
}

TEST_F(order_flow_test, http01_first_preference_provisions_http01) {
  settings_.challenge_preference = {challenge_type::http_01, challenge_type::tls_alpn_01};
  to_first_authorization();
  expect_post_as_get(validate_authorization(1, "http-01"), pebble::authz_url(2));
}

TEST_F(order_flow_test, falls_back_to_next_preferred_type_offered) {
  to_first_authorization();
  const std::string only_http = R"({"status":"pending","identifier":{"type":"dns","value":"mles.test"},
    "challenges":[{"type":"http-01","url":"https://127.0.0.1:14000/chalZ/h","token":"abc","status":"pending"}]})";
  const action a = respond(200, only_http);
  const auto* p = std::get_if<provision_challenge>(&a);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->type, challenge_type::http_01);
}

TEST_F(order_flow_test, no_offered_type_enabled_fails) {
  settings_.challenge_preference = {challenge_type::tls_alpn_01};
  to_first_authorization();
  const std::string dns_only = R"({"status":"pending","identifier":{"type":"dns","value":"mles.test"},
    "challenges":[{"type":"dns-01","url":"https://127.0.0.1:14000/chalZ/d","token":"abc","status":"pending"}]})";
  const failed f = expect_failed(respond(200, dns_only));
  EXPECT_EQ(f.error, errc::no_usable_challenge);
  EXPECT_EQ(f.detail, "mles.test offers dns-01");
}

TEST_F(order_flow_test, token_outside_base64url_fails) {
  to_first_authorization();
  const std::string bad = R"({"status":"pending","identifier":{"type":"dns","value":"mles.test"},
    "challenges":[{"type":"tls-alpn-01","url":"https://127.0.0.1:14000/chalZ/t","token":"../../etc","status":"pending"}]})";
  EXPECT_EQ(expect_failed(respond(200, bad)).error, errc::malformed_resource);
}

TEST_F(order_flow_test, invalid_challenge_fails_with_its_error_verbatim) {
  to_first_authorization();
  respond(200, pebble::authorization(1, "pending"));
  flow().on_provisioned();
  expect_wait(respond(200, pebble::challenge(1, "tls-alpn-01", "processing")));
  flow().on_waited();
  const failed f = expect_failed(respond(200, pebble::authorization(1, "invalid", "invalid", pebble::tls_alpn_error)));
  EXPECT_EQ(f.error, errc::authorization_invalid);
  EXPECT_EQ(f.problem_type, "urn:ietf:params:acme:error:unauthorized");
  EXPECT_EQ(f.detail,
            "Incorrect validation certificate for tls-alpn-01 challenge. Missing acmeValidationV1 extension.");
}

TEST_F(order_flow_test, challenge_already_processing_is_polled_not_triggered) {
  to_first_authorization();
  expect_wait(respond(200, pebble::authorization(1, "pending", "processing")));
  expect_post_as_get(flow().on_waited(), pebble::authz_url(1));
}

TEST_F(order_flow_test, polling_honours_retry_after_else_backs_off_exponentially) {
  settings_.poll_initial = 500ms;
  settings_.poll_max = 2s;
  to_first_authorization();
  respond(200, pebble::authorization(1, "pending"));
  flow().on_provisioned();
  EXPECT_EQ(expect_wait(respond(200, pebble::challenge(1, "tls-alpn-01", "processing"))).duration, 500ms);
  flow().on_waited();
  EXPECT_EQ(expect_wait(respond(200, pebble::authorization(1, "pending"))).duration, 1000ms);
  flow().on_waited();
  EXPECT_EQ(expect_wait(respond(200, pebble::authorization(1, "pending"), {}, "7")).duration, 7s);
  flow().on_waited();
  EXPECT_EQ(expect_wait(respond(200, pebble::authorization(1, "pending"))).duration, 2s);
  flow().on_waited();
  EXPECT_EQ(expect_wait(respond(200, pebble::authorization(1, "pending"))).duration, 2s);  // capped
  flow().on_waited();
  // An HTTP-date Retry-After, relative to the now the driver passes; capped at retry_after_max.
  EXPECT_EQ(expect_wait(respond(200, pebble::authorization(1, "pending"), {}, "Wed, 01 Jan 2025 00:00:30 GMT"))
                .duration,
            30s);
  flow().on_waited();
  EXPECT_EQ(expect_wait(respond(200, pebble::authorization(1, "pending"), {}, "86400")).duration,
            settings_.retry_after_max);
}

TEST_F(order_flow_test, polling_is_bounded) {
  settings_.max_polls = 3;
  to_first_authorization();
  respond(200, pebble::authorization(1, "pending"));
  flow().on_provisioned();
  expect_wait(respond(200, pebble::challenge(1, "tls-alpn-01", "processing")));
  for (int i = 0; i < 2; ++i) {
    flow().on_waited();
    expect_wait(respond(200, pebble::authorization(1, "pending")));
  }
  flow().on_waited();
  EXPECT_EQ(expect_failed(respond(200, pebble::authorization(1, "pending"))).error, errc::too_many_polls);
}

TEST_F(order_flow_test, order_becoming_invalid_fails_with_its_error) {
  to_first_authorization();
  expect_post_as_get(validate_authorization(1), pebble::authz_url(2));
  const action order_fetch = validate_authorization(2);
  expect_post_as_get(order_fetch, pebble::order_url);
  const failed f = expect_failed(respond(
      200, R"({"status":"invalid","identifiers":[],"authorizations":[],"finalize":"f",
               "error":{"type":"urn:ietf:params:acme:error:badCSR","detail":"CSR is bad"}})"));
  EXPECT_EQ(f.error, errc::order_invalid);
  EXPECT_EQ(f.problem_type, "urn:ietf:params:acme:error:badCSR");
  EXPECT_EQ(f.detail, "CSR is bad");
}

TEST_F(order_flow_test, finalize_answered_valid_downloads_at_once) {
  to_new_order();
  expect_post(respond(201, pebble::order("ready"), pebble::order_url), pebble::finalize_url);
  expect_post_as_get(respond(200, pebble::order("valid", 2, true)), pebble::certificate_url);
}

TEST_F(order_flow_test, certificate_body_without_pem_fails) {
  to_first_authorization();
  expect_post_as_get(validate_authorization(1), pebble::authz_url(2));
  finalize_to_certificate(validate_authorization(2));
  EXPECT_EQ(expect_failed(respond(200, "not a certificate")).error, errc::invalid_pem);
}

TEST_F(order_flow_test, events_out_of_turn_fail) {
  EXPECT_EQ(expect_failed(flow().on_waited()).error, errc::unexpected_event);
  flow_.reset();
  EXPECT_EQ(expect_failed(flow().on_provisioned()).error, errc::unexpected_event);
  flow_.reset();
  EXPECT_EQ(expect_failed(respond(200, pebble::directory)).error, errc::unexpected_event);
  flow_.reset();
  request(flow().start());
  EXPECT_EQ(expect_failed(flow().start()).error, errc::unexpected_event);
}

TEST_F(order_flow_test, no_names_fails_at_start) {
  settings_.names.clear();
  expect_failed(flow().start());
}

}  // namespace
}  // namespace mles::acme
