// base64url without padding (RFC 4648 §5, RFC 7515 §2): the encoding of every JWS part,
// JWK coordinate, thumbprint and CSR in ACME. Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mles::acme {

std::string base64url_encode(std::string_view bytes);

// Strict decode: no padding, no whitespace, only the url-safe alphabet, and unused trailing
// bits zero (so every byte string has exactly one accepted text). nullopt on anything else.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace mles::acme
