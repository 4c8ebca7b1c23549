// ACME Renewal Information (RFC 9773): the certificate identifier a client asks about, and the
// CA's suggested renewal window. Pure: no I/O (the manager fetches, this parses and decides).
#pragma once

#include <boost/system/result.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace mles::acme {

// RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial number's DER INTEGER
// contents). nullopt when the leaf (first PEM certificate) has no authority key identifier.
std::optional<std::string> ari_certificate_id(std::string_view chain_pem);

struct renewal_window {
  std::chrono::system_clock::time_point start;
  std::chrono::system_clock::time_point end;
};

// The renewalInfo response body: {"suggestedWindow": {"start": RFC 3339, "end": RFC 3339}}.
boost::system::result<renewal_window> parse_renewal_info(std::string_view body);

// RFC 3339 date-time ("2025-01-02T04:00:00Z", fractions and numeric offsets allowed).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// RFC 9773 §4.2: a uniformly random time within the window (now, if it has passed).
std::chrono::system_clock::time_point choose_renewal_time(const renewal_window& window,
                                                          std::chrono::system_clock::time_point now,
                                                          std::mt19937_64& rng);

}  // namespace mles::acme
