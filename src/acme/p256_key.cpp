// ECDSA P-256 keys for the ACME client: generation, PKCS#8 PEM/DER, JWK and RFC 7638
// thumbprint. Pure: no I/O.
#include "acme/p256_key.hpp"

#include "acme/base64url.hpp"
#include "acme/error.hpp"
#include "acme/openssl_handles.hpp"

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <cstring>

namespace mles::acme {

namespace {

// A public coordinate as base64url of exactly 32 big-endian bytes (RFC 7518 §6.2.1.2).
std::string coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) return {};
  const openssl::bignum_ptr value(raw);
  unsigned char bytes[32];
  if (BN_bn2binpad(value.get(), bytes, sizeof bytes) != static_cast<int>(sizeof bytes)) return {};
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64];
  std::size_t length = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof group, &length) != 1) return false;
  return std::strcmp(group, SN_X9_62_prime256v1) == 0;
}

}  // namespace

p256_key::p256_key(std::shared_ptr<EVP_PKEY> key, std::string jwk, std::string thumbprint)
    : key_(std::move(key)), jwk_(std::move(jwk)), thumbprint_(std::move(thumbprint)) {}

boost::system::result<p256_key> p256_key::adopt(EVP_PKEY* raw) {
  openssl::pkey_ptr key(raw);
  if (!key) return errc::invalid_pem;
  if (!is_p256(key.get())) return errc::not_p256_key;
  const std::string x = coordinate(key.get(), OSSL_PKEY_PARAM_EC_PUB_X);
  const std::string y = coordinate(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
  if (x.empty() || y.empty()) return errc::crypto_failure;
  std::string jwk = R"({"crv":"P-256","kty":"EC","x":")" + x + R"(","y":")" + y + R"("})";
  std::string thumbprint = jwk_thumbprint(jwk);
  if (thumbprint.empty()) return errc::crypto_failure;
  return p256_key(std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free), std::move(jwk),
                  std::move(thumbprint));
}

boost::system::result<p256_key> p256_key::generate() {
  EVP_PKEY* key = EVP_EC_gen(SN_X9_62_prime256v1);
  if (key == nullptr) return errc::crypto_failure;
  return adopt(key);
}

boost::system::result<p256_key> p256_key::from_pem(std::string_view pem) {
  const openssl::bio_ptr bio = openssl::read_bio(pem);
  if (!bio) return errc::invalid_pem;
  return adopt(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

boost::system::result<p256_key> p256_key::from_pkcs8_der(std::string_view der) {
  if (der.size() > static_cast<std::size_t>(INT32_MAX)) return errc::invalid_pem;
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return adopt(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
}

std::string p256_key::to_pem() const {
  const openssl::bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return openssl::bio_contents(bio.get());
}

std::string p256_key::to_pkcs8_der() const {
  const openssl::bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || i2d_PKCS8PrivateKey_bio(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return openssl::bio_contents(bio.get());
}

std::string jwk_thumbprint(std::string_view canonical_jwk) {
  const std::string digest = openssl::sha256(canonical_jwk);
  return digest.empty() ? std::string() : base64url_encode(digest);
}

}  // namespace mles::acme
