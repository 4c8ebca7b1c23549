// Host header normalisation and domain matching (see host.hpp). Pure: no I/O.
#include "http/host.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace mles::http {

namespace {

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// reg-name / IPv4: letters, digits, '-', '.', and '_' (seen in the wild in service names).
bool is_name_char(char c) noexcept { return is_alnum(c) || c == '-' || c == '.' || c == '_'; }

// Inside brackets: hex digits, ':' and '.' (an embedded IPv4 tail).
bool is_ipv6_char(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// RFC 3986 §3.2.3: port = *DIGIT; an empty port is allowed and means the default.
bool is_valid_port(std::string_view port) noexcept {
  if (port.empty()) return true;
  std::uint16_t value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc{} && end == port.data() + port.size();
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

}  // namespace

std::optional<std::string> normalise_host(std::string_view host_header) {
  std::string_view host = host_header;
  std::string_view port;
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && !port.starts_with(':')) return std::nullopt;
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_char)) return std::nullopt;
  } else {
    const auto colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon);
      host = host.substr(0, colon);
    }
    if (host.ends_with('.')) host.remove_suffix(1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_name_char)) return std::nullopt;
  }
  if (!port.empty() && !is_valid_port(port.substr(1))) return std::nullopt;
  return lowercase(host);
}

domain_set::domain_set(std::span<const std::string> domains) {
  domains_.reserve(domains.size());
  for (const auto& configured : domains) {
    // A bare IPv6 address ("::1") is configured without the brackets a Host header needs.
    const bool bare_ipv6 = std::count(configured.begin(), configured.end(), ':') > 1 && !configured.starts_with('[');
    if (auto normalised = normalise_host(bare_ipv6 ? "[" + configured + "]" : configured)) {
      domains_.push_back({std::move(*normalised), configured});
    }
  }
}

std::optional<std::string_view> domain_set::match(std::string_view host_header) const {
  const auto host = normalise_host(host_header);
  if (!host) return std::nullopt;
  for (const auto& d : domains_) {
    if (d.normalised == *host) return std::string_view(d.configured);
  }
  return std::nullopt;
}

}  // namespace mles::http
