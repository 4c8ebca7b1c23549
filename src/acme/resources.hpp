// ACME resources as the CA sends them (RFC 8555 §7.1, RFC 7807 problems), parsed from JSON
// bodies. Pure: no I/O. Parsers never throw: any input gives a value or an error code.
// Unknown members are ignored; strings (problem type and detail above all) are kept verbatim.
#pragma once

#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mles::acme {

// RFC 8555 §7.1.6: the statuses of accounts, orders, authorizations and challenges.
enum class status { pending, ready, processing, valid, invalid, deactivated, expired, revoked };

std::optional<status> parse_status(std::string_view text);

struct identifier {
  std::string type;  // "dns"
  std::string value;
};

// RFC 7807 / RFC 8555 §6.7. Subproblems (§6.7.1) are read one level deep.
struct problem {
  std::string type;  // e.g. urn:ietf:params:acme:error:badNonce
  std::string detail;
  std::optional<int> status;
  std::optional<acme::identifier> identifier;
  std::vector<problem> subproblems;
};

inline constexpr std::string_view problem_content_type = "application/problem+json";
inline constexpr std::string_view bad_nonce_problem = "urn:ietf:params:acme:error:badNonce";

struct directory {
  std::string new_nonce;
  std::string new_account;
  std::string new_order;
  std::optional<std::string> renewal_info;  // RFC 9773 ARI
  std::optional<std::string> terms_of_service;
  bool external_account_required = false;
};

struct account {
  acme::status status;
  std::vector<std::string> contact;
};

struct order {
  acme::status status;
  std::vector<acme::identifier> identifiers;
  std::vector<std::string> authorizations;
  std::string finalize;
  std::optional<std::string> certificate;
  std::optional<std::string> expires;  // RFC 3339, verbatim
  std::optional<problem> error;
};

struct challenge {
  std::string type;  // "tls-alpn-01", "http-01", "dns-01", ...
  std::string url;
  std::string token;  // empty when the type has none
  acme::status status;
  std::optional<problem> error;
};

struct authorization {
  acme::status status;
  acme::identifier identifier;
  std::vector<acme::challenge> challenges;
  bool wildcard = false;
  std::optional<std::string> expires;
};

boost::system::result<directory> parse_directory(std::string_view body);
boost::system::result<account> parse_account(std::string_view body);
boost::system::result<order> parse_order(std::string_view body);
boost::system::result<authorization> parse_authorization(std::string_view body);
boost::system::result<challenge> parse_challenge(std::string_view body);
// A problem document needs at least a string "type".
boost::system::result<problem> parse_problem(std::string_view body);

}  // namespace mles::acme
