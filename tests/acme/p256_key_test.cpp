// Tests for acme::p256_key and jwk_thumbprint: RFC 7638 §3.1 vector, a P-256 vector computed
// with the openssl command line, PEM/DER round trips, refusal of other key types.
#include "acme/p256_key.hpp"

#include "acme/base64url.hpp"
#include "acme/error.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

namespace mles::acme {
namespace {

// Generated and checked independently of this code with:
//   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem
//   XY=$(openssl pkey -in k.pem -pubout -outform DER | tail -c 64 | xxd -p -c 64)
//   X=$(echo ${XY:0:64} | xxd -r -p | basenc --base64url | tr -d =)    # likewise Y from ${XY:64:64}
//   printf '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' $X $Y |
//     openssl dgst -sha256 -binary | basenc --base64url | tr -d =
constexpr const char* vector_key_pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0sSR3jr53yW3nAGH\n"
    "OOPmT5YEr3/pABo7oCNs5MnJb5ehRANCAARayd1P5QRdKqr8PW+FqvdkNnqEMqB1\n"
    "O+1srAbpIr7nZju3/+SVoSQ4FeBheHxF0NRWv9E6ol9cS0GhwlGkeXyZ\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* vector_x = "WsndT-UEXSqq_D1vhar3ZDZ6hDKgdTvtbKwG6SK-52Y";
constexpr const char* vector_y = "O7f_5JWhJDgV4GF4fEXQ1Fa_0TqiX1xLQaHCUaR5fJk";
constexpr const char* vector_thumbprint = "yYDg9wOl74UaI0NsojDPrLFL1QhRXGZytCL3mkvNE1Y";

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return out;
}

TEST(jwk_thumbprint, matches_rfc7638_section_3_1_example) {
  // RFC 7638 §3.1: the RSA key's canonical JSON (members e, kty, n in order, no whitespace).
  const std::string canonical =
      R"({"e":"AQAB","kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"})";
  EXPECT_EQ(jwk_thumbprint(canonical), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(p256_key, jwk_is_canonical_rfc7638_form) {
  const auto key = p256_key::from_pem(vector_key_pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->jwk(), std::string(R"({"crv":"P-256","kty":"EC","x":")") + vector_x + R"(","y":")" + vector_y +
                            R"("})");
}

TEST(p256_key, thumbprint_matches_openssl_cli_vector) {
  const auto key = p256_key::from_pem(vector_key_pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->thumbprint(), vector_thumbprint);
}

TEST(p256_key, generated_keys_differ_and_have_32_byte_coordinates) {
  const auto a = p256_key::generate();
  const auto b = p256_key::generate();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->thumbprint(), b->thumbprint());
  // {"crv":"P-256","kty":"EC","x":"<43>","y":"<43>"}: 32 bytes → 43 base64url characters.
  EXPECT_EQ(a->jwk().size(), std::string(R"({"crv":"P-256","kty":"EC","x":"","y":""})").size() + 86);
}

TEST(p256_key, pem_round_trip_keeps_the_key) {
  const auto key = p256_key::generate();
  ASSERT_TRUE(key);
  const std::string pem = key->to_pem();
  EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);  // PKCS#8
  const auto loaded = p256_key::from_pem(pem);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->jwk(), key->jwk());
}

TEST(p256_key, pkcs8_der_round_trip_keeps_the_key) {
  const auto key = p256_key::from_pem(vector_key_pem);
  ASSERT_TRUE(key);
  const std::string der = key->to_pkcs8_der();
  // The PEM body is this very DER in standard base64.
  const std::string body = std::string("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0sSR3jr53yW3nAGH") +
                           "OOPmT5YEr3/pABo7oCNs5MnJb5ehRANCAARayd1P5QRdKqr8PW+FqvdkNnqEMqB1" +
                           "O+1srAbpIr7nZju3/+SVoSQ4FeBheHxF0NRWv9E6ol9cS0GhwlGkeXyZ";
  unsigned char decoded[256];
  const int size = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(body.data()),
                                   static_cast<int>(body.size()));
  ASSERT_EQ(size, 138);  // 184 base64 characters, no padding
  EXPECT_EQ(der, std::string(reinterpret_cast<const char*>(decoded), 138));
  const auto loaded = p256_key::from_pkcs8_der(der);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->thumbprint(), vector_thumbprint);
}

TEST(p256_key, refuses_other_curves_and_key_types) {
  EVP_PKEY* p384 = EVP_EC_gen("P-384");
  ASSERT_NE(p384, nullptr);
  EXPECT_EQ(p256_key::from_pem(pem_of(p384)).error(), errc::not_p256_key);
  EVP_PKEY_free(p384);

  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  EXPECT_EQ(p256_key::from_pem(pem_of(ed)).error(), errc::not_p256_key);
  EVP_PKEY_free(ed);
}

TEST(p256_key, refuses_garbage) {
  EXPECT_EQ(p256_key::from_pem("").error(), errc::invalid_pem);
  EXPECT_EQ(p256_key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").error(),
            errc::invalid_pem);
  EXPECT_EQ(p256_key::from_pkcs8_der("not der").error(), errc::invalid_pem);
}

}  // namespace
}  // namespace mles::acme
