// The plain-HTTP port with --redirect: a GET/HEAD for a known domain is sent to
// https, except ACME http-01 challenges, which the ACME responder answers on this port.
#pragma once

#include "http/host.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mles::http {

// "https://<domain>[:<https_port> unless 443]<path>[?<query>]" for a Host naming one of the
// domains (its configured spelling; IPv6 literals bracketed) and a valid origin-form target,
// kept byte for byte; nullopt for an unknown host or a malformed target.
std::optional<std::string> https_redirect_target(const domain_set& domains, std::string_view host_header,
                                                 std::string_view target, std::uint16_t https_port);

// The token of an ACME http-01 request "/.well-known/acme-challenge/<token>" (RFC 8555
// §8.3; a token is base64url, no padding; a query is ignored), or nullopt.
std::optional<std::string_view> acme_challenge_token(std::string_view target);

}  // namespace mles::http
