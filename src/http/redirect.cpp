// HTTP → HTTPS redirect targets and http-01 path detection (see redirect.hpp). Pure.
#include "http/redirect.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>

namespace mles::http {

std::optional<std::string> https_redirect_target(const domain_set& domains, std::string_view host_header,
                                                 std::string_view target, std::uint16_t https_port) {
  const auto domain = domains.match(host_header);
  // Boost.URL's origin-form grammar admits no space, CR, LF or other byte that could split
  // the Location header.
  if (!domain || !boost::urls::parse_origin_form(target)) return std::nullopt;
  std::string location = "https://";
  const bool ipv6 = domain->find(':') != std::string_view::npos && !domain->starts_with('[');
  if (ipv6) location += '[';
  location += *domain;
  if (ipv6) location += ']';
  if (https_port != 443) {
    location += ':';
    location += std::to_string(https_port);
  }
  location += target;
  return location;
}

std::optional<std::string_view> acme_challenge_token(std::string_view target) {
  constexpr std::string_view prefix = "/.well-known/acme-challenge/";
  if (!target.starts_with(prefix)) return std::nullopt;
  std::string_view token = target.substr(prefix.size());
  token = token.substr(0, token.find('?'));
  const bool base64url = std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  if (token.empty() || !base64url) return std::nullopt;
  return token;
}

}  // namespace mles::http
