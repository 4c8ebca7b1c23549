// A --peer URL: ws://host[:port][/path] or wss://host[:port][/path]. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mles::peer {

struct peer_url {
  bool secure = true;      // wss://
  std::string host;        // name or address, without IPv6 brackets
  std::uint16_t port = 0;  // given, else 443 (wss) / 80 (ws)
  std::string target;      // path + query, "/" when empty
  std::string text;        // as given, for logs
  // Host header value: host, bracketed for IPv6, with :port unless the default.
  std::string host_header() const;
  bool host_is_address() const;
};

// nullopt with `why` set when the URL is not a usable peer URL.
std::optional<peer_url> parse_peer_url(const std::string& text, std::string& why);

}  // namespace mles::peer
