// Host routing: the first step of a non-upgrade request. A Host header names one of the
// configured --domains (port, case, one trailing dot and IPv6 brackets ignored) or none.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mles::http {

// The host part of a Host header (RFC 9110 §7.2, RFC 3986 §3.2.2): port dropped, ASCII
// lowercased, one trailing dot dropped, IPv6 literal brackets removed. nullopt when the value
// is malformed: empty host, bad port, unbalanced brackets, or a character no host may hold.
std::optional<std::string> normalise_host(std::string_view host_header);

// The configured domains, matched against Host headers. Immutable after construction, so
// any thread may call match() concurrently.
class domain_set {
 public:
  // Domains as configured; IPv6 addresses with or without brackets; malformed ones never match.
  explicit domain_set(std::span<const std::string> domains);

  // The configured spelling of the domain the Host header names (it is also the folder name
  // under --wwwroot), or nullopt for a malformed or unknown host.
  std::optional<std::string_view> match(std::string_view host_header) const;

 private:
  struct domain {
    std::string normalised;
    std::string configured;
  };
  std::vector<domain> domains_;
};

}  // namespace mles::http
