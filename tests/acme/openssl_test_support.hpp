// Test-only OpenSSL helpers for tests/acme: parse PEM/DER into objects, verify ES256, and make
// certificates with chosen validity, independently of the code under test.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

namespace mles::acme::test {

struct x509_free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};
struct pkey_free {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

x509_ptr read_certificate(std::string_view pem);
pkey_ptr read_private_key(std::string_view pem);

// ES256 check with OpenSSL: raw r||s turned back into DER, then EVP_DigestVerify.
bool verify_es256(EVP_PKEY* key, std::string_view input, std::string_view raw_signature);

std::string sha256(std::string_view bytes);

// A self-signed P-256 certificate PEM valid from not_before to not_after
// (ASN.1 GeneralizedTime text, e.g. "20250101000000Z").
std::string make_certificate(const char* not_before, const char* not_after);

}  // namespace mles::acme::test
