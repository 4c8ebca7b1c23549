// JWS for ACME requests (RFC 8555 §6.2, RFC 7515 flattened JSON serialization) signed ES256.
// Pure: no I/O. The output is the body of a POST with Content-Type application/jose+json.
#pragma once

#include "acme/p256_key.hpp"

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace mles::acme {

inline constexpr std::string_view jose_content_type = "application/jose+json";

// ES256 over input: SHA-256 + ECDSA P-256, returned as raw r||s (32 bytes each, RFC 7518
// §3.4), not the DER that OpenSSL produces.
boost::system::result<std::string> sign_es256(const p256_key& key, std::string_view input);

// {"protected","payload","signature"} with protected header {"alg":"ES256","nonce","url"} and
// either "kid" = kid or, when kid is empty (newAccount only, RFC 8555 §6.2), "jwk" = the key's
// JWK. payload is the request's JSON text; an empty payload gives a POST-as-GET (§6.3:
// "payload" is the empty string).
boost::system::result<std::string> make_jws(const p256_key& key, std::string_view kid, std::string_view nonce,
                                            std::string_view url, std::string_view payload);

}  // namespace mles::acme
