// Reverse proxy rule parsing and longest-prefix matching (see proxy_rules.hpp). Pure.
#include "http/proxy_rules.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>

namespace mles::http {

namespace {

// RFC 3986 pchar without pct-encoded: what a prefix segment may hold.
bool is_prefix_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
}

// "/a/b" from "a/b", "/a/b/" or "/a/b"; nullopt for an empty or malformed prefix.
std::optional<std::string> normalise_prefix(std::string_view prefix) {
  while (prefix.starts_with('/')) prefix.remove_prefix(1);
  while (prefix.ends_with('/')) prefix.remove_suffix(1);
  if (prefix.empty()) return std::nullopt;
  std::string out;
  while (!prefix.empty()) {
    const auto slash = prefix.find('/');
    const std::string_view segment = prefix.substr(0, slash);
    prefix = slash == std::string_view::npos ? std::string_view{} : prefix.substr(slash + 1);
    if (segment.empty() || segment == "." || segment == ".." ||
        !std::all_of(segment.begin(), segment.end(), is_prefix_char)) {
      return std::nullopt;
    }
    out += '/';
    out += segment;
  }
  return out;
}

}  // namespace

std::optional<upstream> parse_upstream(std::string_view url) {
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->scheme_id() != boost::urls::scheme::http || !parsed->has_authority() ||
      parsed->has_userinfo() || parsed->has_query() || parsed->has_fragment()) {
    return std::nullopt;
  }
  const std::string_view path = parsed->encoded_path();
  if (!path.empty() && path != "/") return std::nullopt;
  upstream result;
  result.host = parsed->host_address();
  if (result.host.empty()) return std::nullopt;
  if (parsed->has_port()) {
    const std::string_view port = parsed->port();
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), result.port);
    if (ec != std::errc{} || end != port.data() + port.size() || result.port == 0) return std::nullopt;
  }
  return result;
}

bool proxy_table::add(std::string_view prefix, std::string_view upstream_url) {
  auto normalised = normalise_prefix(prefix);
  auto target = parse_upstream(upstream_url);
  if (!normalised || !target) return false;
  const auto same = [&](const rule& r) { return r.prefix == *normalised; };
  if (std::any_of(rules_.begin(), rules_.end(), same)) return false;
  rules_.push_back({std::move(*normalised), std::move(*target)});
  std::stable_sort(rules_.begin(), rules_.end(),
                   [](const rule& a, const rule& b) { return a.prefix.size() > b.prefix.size(); });
  return true;
}

std::optional<proxy_match> proxy_table::match(std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  for (const auto& r : rules_) {
    // Whole segments only: "/api" matches "/api", "/api/..." and "/api?q", not "/apix".
    if (!path.starts_with(r.prefix)) continue;
    const std::string_view rest = target.substr(r.prefix.size());
    if (!rest.empty() && rest[0] != '/' && rest[0] != '?') continue;
    std::string forward;
    if (!rest.starts_with('/')) forward += '/';
    forward += rest;
    return proxy_match{&r.target, std::move(forward)};
  }
  return std::nullopt;
}

}  // namespace mles::http
