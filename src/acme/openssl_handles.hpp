// Owning handles for the OpenSSL objects the ACME building blocks create (unique_ptr with the
// matching free function), plus memory-BIO helpers. Internal to src/acme; pure: no I/O.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace mles::acme::openssl {

template <auto Free>
struct deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using bio_ptr = std::unique_ptr<BIO, deleter<BIO_free_all>>;
using bignum_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, deleter<ECDSA_SIG_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, deleter<EVP_MD_CTX_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using x509_req_ptr = std::unique_ptr<X509_REQ, deleter<X509_REQ_free>>;
using x509_extension_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, deleter<GENERAL_NAMES_free>>;
using asn1_object_ptr = std::unique_ptr<ASN1_OBJECT, deleter<ASN1_OBJECT_free>>;
using asn1_octet_string_ptr = std::unique_ptr<ASN1_OCTET_STRING, deleter<ASN1_OCTET_STRING_free>>;

// A read-only memory BIO over text (OpenSSL reads it in place; text must outlive the BIO).
inline bio_ptr read_bio(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT32_MAX)) return nullptr;
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Everything written to a memory BIO so far.
inline std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

// A GENERAL_NAMES with one dNSName per name, built field by field (never via the config
// string "DNS:..." syntax, where a comma in a name would smuggle in another entry).
general_names_ptr dns_names(const std::string* first, const std::string* last);

// SHA-256 of bytes, raw 32 bytes; empty on failure.
std::string sha256(std::string_view bytes);

}  // namespace mles::acme::openssl
