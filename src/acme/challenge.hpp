// What a challenge responder serves (RFC 8555 §8.1 key authorization, §8.3 HTTP-01,
// RFC 8737 TLS-ALPN-01). Pure: no I/O; the responders in net/ and http/ serve these values.
#pragma once

#include "acme/p256_key.hpp"

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace mles::acme {

// RFC 8737 §6.2: the ALPN protocol a validation ClientHello offers (alone).
inline constexpr std::string_view acme_tls_alpn_protocol = "acme-tls/1";

// RFC 8555 §8.1: token "." base64url(JWK thumbprint of the account key).
std::string key_authorization(std::string_view token, const p256_key& account_key);

// RFC 8555 §8.3: the HTTP-01 responder answers GET on this path (port 80) with the key
// authorization as the body.
std::string http01_path(std::string_view token);

struct challenge_certificate {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, a fresh P-256 key used for nothing else
};

// RFC 8737 §3: a self-signed certificate with exactly one dNSName SAN = name and the critical
// acmeIdentifier extension (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31) whose value is the DER
// OCTET STRING of SHA-256(key_authorization). Valid from an hour ago for 7 days.
boost::system::result<challenge_certificate> make_tls_alpn01_certificate(std::string_view name,
                                                                         std::string_view key_authorization);

}  // namespace mles::acme
