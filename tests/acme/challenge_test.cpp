// Tests for acme challenge responses: key authorization (RFC 8555 §8.1), the HTTP-01 path,
// and the TLS-ALPN-01 certificate (RFC 8737 §3): one dNSName, critical acmeIdentifier with
// the exact DER bytes, self-signed, key matching.
#include "acme/challenge.hpp"

#include "openssl_test_support.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <string>

namespace mles::acme {
namespace {

constexpr const char* token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";

TEST(key_authorization, is_token_dot_thumbprint) {
  const p256_key key = p256_key::generate().value();
  EXPECT_EQ(key_authorization(token, key), std::string(token) + "." + key.thumbprint());
}

TEST(http01, path_is_well_known_acme_challenge_token) {
  EXPECT_EQ(http01_path(token), std::string("/.well-known/acme-challenge/") + token);
}

class tls_alpn01_certificate : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto made = make_tls_alpn01_certificate("mles.test", key_auth_);
    ASSERT_TRUE(made);
    made_ = *made;
    cert_ = test::read_certificate(made_.cert_pem);
    ASSERT_TRUE(cert_);
  }

  std::string key_auth_ = std::string(token) + ".thumbprint";
  challenge_certificate made_;
  test::x509_ptr cert_;
};

TEST_F(tls_alpn01_certificate, has_exactly_one_dns_san_with_the_name) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert_.get(), NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(sk_GENERAL_NAME_num(names), 1);
  const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, 0);
  ASSERT_EQ(name->type, GEN_DNS);
  const ASN1_IA5STRING* dns = name->d.dNSName;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                        static_cast<std::size_t>(ASN1_STRING_length(dns))),
            "mles.test");
  GENERAL_NAMES_free(names);
}

TEST_F(tls_alpn01_certificate, has_critical_acme_identifier_with_exact_der_value) {
  ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
  const int index = X509_get_ext_by_OBJ(cert_.get(), oid, -1);
  ASN1_OBJECT_free(oid);
  ASSERT_GE(index, 0);
  X509_EXTENSION* ext = X509_get_ext(cert_.get(), index);
  EXPECT_EQ(X509_EXTENSION_get_critical(ext), 1);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  const std::string bytes(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                          static_cast<std::size_t>(ASN1_STRING_length(value)));
  // extnValue = DER OCTET STRING: tag 0x04, length 0x20, SHA-256(key authorization).
  EXPECT_EQ(bytes, std::string("\x04\x20", 2) + test::sha256(key_auth_));
}

TEST_F(tls_alpn01_certificate, is_self_signed_by_the_returned_key) {
  const test::pkey_ptr key = test::read_private_key(made_.key_pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(cert_.get(), key.get()), 1);
  EXPECT_EQ(X509_verify(cert_.get(), key.get()), 1);
  EXPECT_EQ(X509_get_version(cert_.get()), X509_VERSION_3);
}

TEST_F(tls_alpn01_certificate, is_valid_now) {
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert_.get())), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert_.get())), 0);
}

TEST(tls_alpn01_certificate_names, keeps_a_comma_inside_the_one_dns_name) {
  // A name is never read as an OpenSSL config list ("DNS:a,DNS:b").
  const auto made = make_tls_alpn01_certificate("a.test,DNS:b.test", "k");
  ASSERT_TRUE(made);
  const test::x509_ptr cert = test::read_certificate(made->cert_pem);
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(sk_GENERAL_NAME_num(names), 1);
  GENERAL_NAMES_free(names);
}

TEST(tls_alpn01_certificate_keys, are_fresh_per_certificate) {
  const auto a = make_tls_alpn01_certificate("mles.test", "k");
  const auto b = make_tls_alpn01_certificate("mles.test", "k");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->key_pem, b->key_pem);
}

}  // namespace
}  // namespace mles::acme
