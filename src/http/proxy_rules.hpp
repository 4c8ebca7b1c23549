// Reverse proxy routing (--proxy prefix=http://host:port): which configured upstream, if any,
// a request target goes to, and the target it is forwarded with (prefix stripped).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mles::http {

struct upstream {
  std::string host;  // name or address, IPv6 without brackets
  std::uint16_t port = 80;
};

// "http://host[:port][/]": http only, a host, a port 1-65535 (80 when absent), no
// userinfo, path, query or fragment. nullopt otherwise.
std::optional<upstream> parse_upstream(std::string_view url);

struct proxy_match {
  const upstream* target;      // owned by the proxy_table
  std::string forward_target;  // origin-form: "/" + rest of the path after the prefix + query
};

// The configured rules. Built at start-up, then immutable: any thread may call match().
class proxy_table {
 public:
  // Adds "prefix=upstream". The prefix is one or more path segments ("api" or "api/keeper";
  // surrounding '/' ignored) of unreserved and sub-delim characters, ':' and '@' (no '%', "."
  // or ".." segments). false for a bad prefix or upstream, or a prefix already present.
  bool add(std::string_view prefix, std::string_view upstream_url);

  // The rule whose prefix matches the most leading path segments of an origin-form target
  // (compared as sent, before percent-decoding), or nullopt: then the proxy is not involved.
  std::optional<proxy_match> match(std::string_view target) const;

 private:
  struct rule {
    std::string prefix;  // "/api/keeper"
    upstream target;
  };
  std::vector<rule> rules_;  // longest prefix first
};

}  // namespace mles::http
