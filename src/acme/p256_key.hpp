// An ECDSA P-256 key pair: the ACME account key (ES256) and every certificate key.
// Pure: no I/O (PEM/DER as strings). Immutable once made; copies share the key; thread-safe.
#pragma once

#include <boost/system/result.hpp>

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>

namespace mles::acme {

class p256_key {
 public:
  static boost::system::result<p256_key> generate();
  // PEM private key (PKCS#8 "PRIVATE KEY"; SEC1 "EC PRIVATE KEY" also read). Only P-256.
  static boost::system::result<p256_key> from_pem(std::string_view pem);
  // Raw PKCS#8 DER, the account key format of the reference server's cache.
  static boost::system::result<p256_key> from_pkcs8_der(std::string_view der);

  // PKCS#8 "PRIVATE KEY" PEM / DER of the private key.
  std::string to_pem() const;
  std::string to_pkcs8_der() const;

  // The public JWK in RFC 7638 canonical form: {"crv":"P-256","kty":"EC","x":..,"y":..},
  // members in this order, no whitespace, coordinates as 32-byte base64url.
  const std::string& jwk() const noexcept { return jwk_; }
  // RFC 7638 thumbprint: base64url(SHA-256(jwk())).
  const std::string& thumbprint() const noexcept { return thumbprint_; }

  EVP_PKEY* native() const noexcept { return key_.get(); }

 private:
  p256_key(std::shared_ptr<EVP_PKEY> key, std::string jwk, std::string thumbprint);
  static boost::system::result<p256_key> adopt(EVP_PKEY* key);

  std::shared_ptr<EVP_PKEY> key_;
  std::string jwk_;
  std::string thumbprint_;
};

// RFC 7638 §3: base64url(SHA-256(canonical JWK JSON)); the caller supplies the canonical text.
std::string jwk_thumbprint(std::string_view canonical_jwk);

}  // namespace mles::acme
