// Tests for acme::make_jws / sign_es256: flattened JSON shape, the protected header's members
// (jwk vs kid), POST-as-GET, and ES256 signatures checked with OpenSSL's verifier.
#include "acme/jws.hpp"

#include "acme/base64url.hpp"
#include "openssl_test_support.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <string>

namespace mles::acme {
namespace {

namespace json = boost::json;

struct decoded_jws {
  json::object header;
  std::string payload;
  std::string signing_input;
  std::string signature;
};

decoded_jws decode(const std::string& text) {
  const json::object jws = json::parse(text).as_object();
  EXPECT_EQ(jws.size(), 3u);  // exactly protected, payload, signature
  decoded_jws out;
  const std::string protected_b64(jws.at("protected").as_string());
  const std::string payload_b64(jws.at("payload").as_string());
  out.header = json::parse(base64url_decode(protected_b64).value()).as_object();
  out.payload = base64url_decode(payload_b64).value();
  out.signing_input = protected_b64 + "." + payload_b64;
  out.signature = base64url_decode(std::string(jws.at("signature").as_string())).value();
  return out;
}

class jws_test : public ::testing::Test {
 protected:
  p256_key key_ = p256_key::generate().value();
};

TEST_F(jws_test, new_account_header_carries_jwk_and_no_kid) {
  const auto jws = make_jws(key_, "", "nonce-1", "https://ca.test/new-acct", R"({"termsOfServiceAgreed":true})");
  ASSERT_TRUE(jws);
  const decoded_jws d = decode(*jws);
  EXPECT_EQ(d.header.at("alg"), "ES256");
  EXPECT_EQ(d.header.at("nonce"), "nonce-1");
  EXPECT_EQ(d.header.at("url"), "https://ca.test/new-acct");
  EXPECT_EQ(d.header.at("jwk"), json::parse(key_.jwk()));
  EXPECT_FALSE(d.header.contains("kid"));
  EXPECT_EQ(d.payload, R"({"termsOfServiceAgreed":true})");
}

TEST_F(jws_test, later_requests_carry_kid_and_no_jwk) {
  const auto jws = make_jws(key_, "https://ca.test/acct/1", "n", "https://ca.test/order", "{}");
  ASSERT_TRUE(jws);
  const decoded_jws d = decode(*jws);
  EXPECT_EQ(d.header.at("kid"), "https://ca.test/acct/1");
  EXPECT_FALSE(d.header.contains("jwk"));
  EXPECT_EQ(d.header.size(), 4u);
}

TEST_F(jws_test, post_as_get_has_empty_payload) {
  const auto jws = make_jws(key_, "https://ca.test/acct/1", "n", "https://ca.test/authz/1", "");
  ASSERT_TRUE(jws);
  EXPECT_EQ(json::parse(*jws).as_object().at("payload"), "");
  const decoded_jws d = decode(*jws);
  // RFC 7515 §5.1: the signing input is "<protected>." with nothing after the dot.
  EXPECT_EQ(d.signing_input.back(), '.');
  EXPECT_TRUE(test::verify_es256(key_.native(), d.signing_input, d.signature));
}

TEST_F(jws_test, signature_is_raw_r_s_that_verifies) {
  const auto jws = make_jws(key_, "", "n", "https://ca.test/new-acct", R"({"a":1})");
  ASSERT_TRUE(jws);
  const decoded_jws d = decode(*jws);
  EXPECT_EQ(d.signature.size(), 64u);
  EXPECT_TRUE(test::verify_es256(key_.native(), d.signing_input, d.signature));
}

TEST_F(jws_test, signature_does_not_verify_for_other_key_or_input) {
  const auto jws = make_jws(key_, "", "n", "https://ca.test/new-acct", "{}");
  ASSERT_TRUE(jws);
  const decoded_jws d = decode(*jws);
  const p256_key other = p256_key::generate().value();
  EXPECT_FALSE(test::verify_es256(other.native(), d.signing_input, d.signature));
  EXPECT_FALSE(test::verify_es256(key_.native(), d.signing_input + "x", d.signature));
}

TEST_F(jws_test, escapes_header_values) {
  const auto jws = make_jws(key_, "https://ca.test/acct/\"1\"", "n\\", "https://ca.test/x", "");
  ASSERT_TRUE(jws);
  const decoded_jws d = decode(*jws);
  EXPECT_EQ(d.header.at("kid"), "https://ca.test/acct/\"1\"");
  EXPECT_EQ(d.header.at("nonce"), "n\\");
}

TEST_F(jws_test, sign_es256_output_verifies_many_times) {
  // r and s with leading zero bytes must still be padded to 32 bytes each.
  for (int i = 0; i < 64; ++i) {
    const std::string input = "input " + std::to_string(i);
    const auto sig = sign_es256(key_, input);
    ASSERT_TRUE(sig);
    ASSERT_EQ(sig->size(), 64u);
    EXPECT_TRUE(test::verify_es256(key_.native(), input, *sig));
  }
}

}  // namespace
}  // namespace mles::acme
