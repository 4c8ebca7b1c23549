// Client addresses behind trusted proxies (--trusted-proxy CIDR): IPv4/IPv6 CIDR ranges and
// the standard right-to-left walk of X-Forwarded-For. Pure: no I/O.
// data path: request headers ─► client_address ─► rate limit, logs.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace mles::http {

// An address range: "192.0.2.0/24", "2001:db8::/32"; a bare address is a /32 or /128. Host
// bits must be zero ("192.0.2.1/24" is refused: likely a mistake).
struct cidr {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 as IPv4-mapped IPv6
  unsigned prefix = 0;                   // over the 128 bits (an IPv4 /24 is 96 + 24)
};

std::optional<cidr> parse_cidr(std::string_view text);

class cidr_set {
 public:
  cidr_set() = default;
  explicit cidr_set(std::vector<cidr> ranges) : ranges_(std::move(ranges)) {}
  bool empty() const noexcept { return ranges_.empty(); }
  // IPv4-mapped IPv6 addresses match IPv4 ranges (and IPv4 addresses ::ffff:0:0/96 ranges).
  bool contains(const boost::asio::ip::address& a) const noexcept;

 private:
  std::vector<cidr> ranges_;
};

// The client address for a request that came from `peer`: when peer is trusted, the
// rightmost address of X-Forwarded-For (all header lines in order, comma-separated) that is
// not itself trusted; when every listed address is trusted, the leftmost. nullopt (keep the
// peer's address) when peer is not trusted, there is no header, or any element is not a
// plain IP address (malformed headers are ignored as a whole).
std::optional<boost::asio::ip::address> forwarded_client(const boost::asio::ip::address& peer,
                                                         std::span<const std::string_view> x_forwarded_for,
                                                         const cidr_set& trusted);

}  // namespace mles::http
