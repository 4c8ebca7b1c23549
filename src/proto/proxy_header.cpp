// PROXY protocol v1/v2 parser (see proxy_header.hpp and haproxy's proxy-protocol.txt).
#include "proto/proxy_header.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

namespace mles::proto {

namespace {

constexpr std::array<std::uint8_t, 12> v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view v1_prefix = "PROXY ";

proxy_result invalid(int version, std::string_view what) {
  proxy_result r;
  r.status = proxy_status::invalid;
  r.version = version;
  r.what = what;
  return r;
}

// A decimal port: 1 to 5 digits, no leading zero (but "0" itself), at most 65535.
std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::optional<boost::asio::ip::address> parse_address(std::string_view s, bool v6) {
  // Only the characters of the family's text form, so nothing else (scope ids, names) passes.
  if (s.empty() || s.size() > 45) return std::nullopt;
  for (char c : s) {
    const bool ok = v6 ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
                          c == '.')
                       : ((c >= '0' && c <= '9') || c == '.');
    if (!ok) return std::nullopt;
  }
  boost::system::error_code ec;
  if (v6) {
    auto a = boost::asio::ip::make_address_v6(std::string(s), ec);
    if (ec) return std::nullopt;
    return boost::asio::ip::address(a);
  }
  auto a = boost::asio::ip::make_address_v4(std::string(s), ec);
  if (ec) return std::nullopt;
  return boost::asio::ip::address(a);
}

proxy_result parse_v1(std::span<const std::uint8_t> in) {
  const std::size_t prefix = std::min(in.size(), v1_prefix.size());
  if (std::memcmp(in.data(), v1_prefix.data(), prefix) != 0) return invalid(1, "not a PROXY header");
  const std::size_t window = std::min(in.size(), proxy_v1_max);
  const auto* begin = reinterpret_cast<const char*>(in.data());
  const std::string_view seen(begin, window);
  const std::size_t lf = seen.find('\n');
  if (lf == std::string_view::npos) {
    if (in.size() >= proxy_v1_max) return invalid(1, "v1 header longer than 107 bytes");
    // Nothing but printable text may come before the CRLF.
    for (char c : seen) {
      if (c != '\r' && (c < 0x20 || c > 0x7E)) return invalid(1, "v1 header with a control character");
    }
    if (const auto cr = seen.find('\r'); cr != std::string_view::npos && cr + 1 < seen.size())
      return invalid(1, "v1 header: CR without LF");
    return {};
  }
  if (lf == 0 || seen[lf - 1] != '\r') return invalid(1, "v1 header not ended by CRLF");
  const std::string_view line = seen.substr(0, lf - 1);
  for (char c : line) {
    if (c < 0x20 || c > 0x7E) return invalid(1, "v1 header with a control character");
  }
  proxy_result r;
  r.version = 1;
  r.consumed = lf + 1;
  std::string_view rest = line.substr(v1_prefix.size());
  if (rest.substr(0, 7) == "UNKNOWN") {
    // "UNKNOWN" and anything up to the CRLF: keep the connection's own address.
    if (rest.size() > 7 && rest[7] != ' ') return invalid(1, "v1 header: bad protocol");
    r.status = proxy_status::done;
    return r;
  }
  bool v6 = false;
  if (rest.substr(0, 5) == "TCP4 ") v6 = false;
  else if (rest.substr(0, 5) == "TCP6 ") v6 = true;
  else return invalid(1, "v1 header: protocol must be TCP4, TCP6 or UNKNOWN");
  rest.remove_prefix(5);
  // Exactly four fields separated by single spaces.
  std::array<std::string_view, 4> f;
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t sp = rest.find(' ');
    if (i < 3) {
      if (sp == std::string_view::npos) return invalid(1, "v1 header: missing fields");
      f[i] = rest.substr(0, sp);
      rest.remove_prefix(sp + 1);
    } else {
      if (sp != std::string_view::npos) return invalid(1, "v1 header: extra fields");
      f[i] = rest;
    }
  }
  const auto src = parse_address(f[0], v6);
  const auto dst = parse_address(f[1], v6);
  const auto sport = parse_port(f[2]);
  const auto dport = parse_port(f[3]);
  if (!src || !dst) return invalid(1, "v1 header: bad address");
  if (!sport || !dport) return invalid(1, "v1 header: bad port");
  r.status = proxy_status::done;
  r.source = proxy_source{*src, *sport};
  return r;
}

proxy_result parse_v2(std::span<const std::uint8_t> in) {
  const std::size_t prefix = std::min(in.size(), v2_signature.size());
  if (std::memcmp(in.data(), v2_signature.data(), prefix) != 0) return invalid(2, "not a PROXY header");
  if (in.size() < 16) return {};
  const std::uint8_t ver_cmd = in[12];
  const std::uint8_t fam = in[13];
  const std::size_t len = (std::size_t{in[14]} << 8) | in[15];
  if ((ver_cmd >> 4) != 2) return invalid(2, "v2 header: version is not 2");
  const std::uint8_t command = ver_cmd & 0x0F;
  if (command > 1) return invalid(2, "v2 header: unknown command");
  if (len > proxy_v2_max_payload) return invalid(2, "v2 header longer than accepted");
  const std::uint8_t family = fam >> 4;
  const std::uint8_t transport = fam & 0x0F;
  if (family > 3 || transport > 2) return invalid(2, "v2 header: unknown family or transport");
  const std::size_t needed = family == 1 ? 12 : family == 2 ? 36 : family == 3 ? 216 : 0;
  if (len < needed) return invalid(2, "v2 header: address block shorter than its family");
  if (in.size() < 16 + len) return {};
  proxy_result r;
  r.version = 2;
  r.status = proxy_status::done;
  r.consumed = 16 + len;
  // LOCAL (health checks of the balancer itself): the connection's own address; the family
  // and addresses are ignored. PROXY with UNSPEC or UNIX: the same (nothing usable).
  if (command == 0 || family == 0 || family == 3) return r;
  if (transport != 1) return invalid(2, "v2 header: not a stream (TCP) connection");
  const std::uint8_t* a = in.data() + 16;
  if (family == 1) {
    boost::asio::ip::address_v4::bytes_type b{};
    std::memcpy(b.data(), a, 4);
    r.source = proxy_source{boost::asio::ip::address(boost::asio::ip::address_v4(b)),
                            static_cast<std::uint16_t>((a[8] << 8) | a[9])};
  } else {
    boost::asio::ip::address_v6::bytes_type b{};
    std::memcpy(b.data(), a, 16);
    r.source = proxy_source{boost::asio::ip::address(boost::asio::ip::address_v6(b)),
                            static_cast<std::uint16_t>((a[32] << 8) | a[33])};
  }
  // TLVs after the addresses: skipped.
  return r;
}

}  // namespace

proxy_result parse_proxy_header(std::span<const std::uint8_t> bytes) noexcept {
  try {
    if (bytes.empty()) return {};
    if (bytes[0] == 'P') return parse_v1(bytes);
    if (bytes[0] == 0x0D) return parse_v2(bytes);
    return invalid(0, "not a PROXY header");
  } catch (...) {
    // Address parsing allocates; out of memory is an invalid header, never an escape.
    return invalid(0, "cannot parse the PROXY header");
  }
}

}  // namespace mles::proto
