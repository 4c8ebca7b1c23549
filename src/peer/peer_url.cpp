// peer_url: --peer URL parsing with Boost.URL.
#include "peer/peer_url.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace mles::peer {

std::optional<peer_url> parse_peer_url(const std::string& text, std::string& why) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) {
    why = "not a URL";
    return std::nullopt;
  }
  const auto& u = *parsed;
  peer_url out;
  out.text = text;
  const auto scheme = u.scheme();
  if (scheme == "wss") out.secure = true;
  else if (scheme == "ws") out.secure = false;
  else {
    why = "scheme must be wss:// or ws://";
    return std::nullopt;
  }
  if (u.has_userinfo()) {
    why = "user information is not allowed";
    return std::nullopt;
  }
  if (u.has_fragment()) {
    why = "a fragment is not allowed";
    return std::nullopt;
  }
  switch (u.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4: out.host = u.encoded_host().decode(); break;
    case boost::urls::host_type::ipv6: out.host = u.host_ipv6_address().to_string(); break;
    default: why = "missing or unsupported host"; return std::nullopt;
  }
  if (out.host.empty()) {
    why = "missing host";
    return std::nullopt;
  }
  if (u.has_port()) {
    const auto p = u.port();
    unsigned v = 0;
    const auto r = std::from_chars(p.data(), p.data() + p.size(), v);
    if (r.ec != std::errc{} || r.ptr != p.data() + p.size() || v == 0 || v > 65535) {
      why = "bad port";
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(v);
  } else {
    out.port = out.secure ? 443 : 80;
  }
  out.target = std::string(u.encoded_path());
  if (out.target.empty()) out.target = "/";
  if (u.has_query()) out.target += "?" + std::string(u.encoded_query());
  return out;
}

bool peer_url::host_is_address() const {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(host, ec);
  return !ec;
}

std::string peer_url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (secure ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

}  // namespace mles::peer
