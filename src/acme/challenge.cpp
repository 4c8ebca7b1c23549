// Challenge responses: key authorization, HTTP-01 path, TLS-ALPN-01 certificate.
// Pure: no I/O.
#include "acme/challenge.hpp"

#include "acme/error.hpp"
#include "acme/openssl_handles.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

namespace mles::acme {

namespace {

constexpr const char* acme_identifier_oid = "1.3.6.1.5.5.7.1.31";
constexpr long not_before_slack_seconds = 60 * 60;
constexpr long lifetime_seconds = 7 * 24 * 60 * 60;

// The critical acmeIdentifier extension: extnValue = DER(OCTET STRING(SHA-256(key auth))).
openssl::x509_extension_ptr acme_identifier_extension(std::string_view key_authorization) {
  const std::string digest = openssl::sha256(key_authorization);
  if (digest.empty()) return nullptr;
  std::string der;
  der.push_back(0x04);  // OCTET STRING
  der.push_back(0x20);  // length 32
  der += digest;
  const openssl::asn1_object_ptr oid(OBJ_txt2obj(acme_identifier_oid, 1));
  const openssl::asn1_octet_string_ptr value(ASN1_OCTET_STRING_new());
  if (!oid || !value ||
      ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<const unsigned char*>(der.data()),
                            static_cast<int>(der.size())) != 1) {
    return nullptr;
  }
  return openssl::x509_extension_ptr(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
}

bool set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  bytes[0] &= 0x7f;  // a positive INTEGER
  const openssl::bignum_ptr serial(BN_bin2bn(bytes, sizeof bytes, nullptr));
  return serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr;
}

}  // namespace

std::string key_authorization(std::string_view token, const p256_key& account_key) {
  std::string out(token);
  out += '.';
  out += account_key.thumbprint();
  return out;
}

std::string http01_path(std::string_view token) {
  return "/.well-known/acme-challenge/" + std::string(token);
}

boost::system::result<challenge_certificate> make_tls_alpn01_certificate(std::string_view name,
                                                                         std::string_view key_authorization) {
  const auto key = p256_key::generate();
  if (!key) return key.error();

  const openssl::x509_ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 || !set_random_serial(cert.get()) ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -not_before_slack_seconds) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), lifetime_seconds) == nullptr ||
      X509_set_pubkey(cert.get(), key->native()) != 1) {
    return errc::crypto_failure;
  }
  // Subject and issuer stay empty: RFC 8737 checks only the SAN and the extension.
  const std::string names[] = {std::string(name)};
  const openssl::general_names_ptr san = openssl::dns_names(std::begin(names), std::end(names));
  const openssl::x509_extension_ptr acme_id = acme_identifier_extension(key_authorization);
  if (!san || !acme_id ||
      X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, san.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      X509_add_ext(cert.get(), acme_id.get(), -1) != 1 ||
      X509_sign(cert.get(), key->native(), EVP_sha256()) == 0) {
    return errc::crypto_failure;
  }

  const openssl::bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) return errc::crypto_failure;
  challenge_certificate out{openssl::bio_contents(bio.get()), key->to_pem()};
  if (out.key_pem.empty()) return errc::crypto_failure;
  return out;
}

}  // namespace mles::acme
