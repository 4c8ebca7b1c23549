// Tests for ACME Renewal Information (RFC 9773): certificate identifier, window, the pick.
#include "acme/renewal_info.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>

using namespace mles::acme;
using namespace std::chrono_literals;

namespace {

// A certificate with the AKI and serial of RFC 9773 §4.1's example.
std::string example_certificate() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  const unsigned char serial[] = {0x00, 0x87, 0x65, 0x43, 0x21};
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_authority_key_identifier, "keyid:always");
  // keyid:always needs the issuer's SKI; set the AKI bytes directly instead.
  if (ext) X509_EXTENSION_free(ext);
  AUTHORITY_KEYID* aki = AUTHORITY_KEYID_new();
  const unsigned char id[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                              0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
  aki->keyid = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(aki->keyid, id, sizeof id);
  X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT);
  AUTHORITY_KEYID_free(aki);
  X509_sign(cert.get(), key.get(), EVP_sha256());
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_X509(out.get(), cert.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::chrono::system_clock::time_point utc(int y, unsigned m, unsigned d, int h, int mi, int s) {
  return std::chrono::sys_days(std::chrono::year(y) / m / d) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(s);
}

}  // namespace

TEST(renewal_info, certificate_id_matches_the_rfc_9773_example) {
  EXPECT_EQ(ari_certificate_id(example_certificate()), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  EXPECT_FALSE(ari_certificate_id("not a certificate"));
}

TEST(renewal_info, parses_rfc_3339_times) {
  EXPECT_EQ(parse_rfc3339("2025-01-02T04:00:00Z"), utc(2025, 1, 2, 4, 0, 0));
  EXPECT_EQ(parse_rfc3339("2025-01-02T04:00:00.5Z"), utc(2025, 1, 2, 4, 0, 0) + 500ms);
  EXPECT_EQ(parse_rfc3339("2025-01-02T06:30:00+02:30"), utc(2025, 1, 2, 4, 0, 0));
  EXPECT_FALSE(parse_rfc3339("2025-13-02T04:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-01-02 04:00:00"));
  EXPECT_FALSE(parse_rfc3339("2025-02-30T04:00:00Z"));
}

TEST(renewal_info, parses_the_suggested_window) {
  const auto w = parse_renewal_info(
      R"({"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},"explanationURL":"x"})");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->start, utc(2025, 1, 2, 4, 0, 0));
  EXPECT_EQ(w->end, utc(2025, 1, 3, 4, 0, 0));
  EXPECT_FALSE(parse_renewal_info(R"({"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}})"));
  EXPECT_FALSE(parse_renewal_info(R"({"suggestedWindow":{}})"));
  EXPECT_FALSE(parse_renewal_info("[]"));
}

TEST(renewal_info, picks_a_time_inside_the_window_or_now_when_it_passed) {
  std::mt19937_64 rng(7);
  const renewal_window w{utc(2025, 1, 2, 0, 0, 0), utc(2025, 1, 3, 0, 0, 0)};
  for (int i = 0; i < 100; ++i) {
    const auto t = choose_renewal_time(w, utc(2025, 1, 1, 0, 0, 0), rng);
    EXPECT_GE(t, w.start);
    EXPECT_LE(t, w.end);
  }
  const auto late = utc(2025, 1, 4, 0, 0, 0);
  EXPECT_EQ(choose_renewal_time(w, late, rng), late);
  const auto inside = utc(2025, 1, 2, 12, 0, 0);
  EXPECT_GE(choose_renewal_time(w, inside, rng), inside);
}
