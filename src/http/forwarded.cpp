// forwarded: CIDR ranges and the X-Forwarded-For walk (see forwarded.hpp).
#include "http/forwarded.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace mles::http {

namespace {

std::array<std::uint8_t, 16> bytes_of(const boost::asio::ip::address& a) {
  if (a.is_v4()) return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()).to_bytes();
  return a.to_v6().to_bytes();
}

bool in_range(const std::array<std::uint8_t, 16>& b, const cidr& c) {
  const unsigned whole = c.prefix / 8;
  if (std::memcmp(b.data(), c.bytes.data(), whole) != 0) return false;
  const unsigned rest = c.prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (b[whole] & mask) == (c.bytes[whole] & mask);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A plain address: digits, hex, dots and colons only (no ports, brackets, scope ids, names).
std::optional<boost::asio::ip::address> plain_address(std::string_view s) {
  if (s.empty() || s.size() > 45) return std::nullopt;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':';
    if (!ok) return std::nullopt;
  }
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  return a;
}

}  // namespace

std::optional<cidr> parse_cidr(std::string_view text) {
  std::string_view addr = text;
  std::optional<unsigned> bits;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    unsigned v = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    bits = v;
  }
  const auto a = plain_address(addr);
  if (!a) return std::nullopt;
  cidr c;
  c.bytes = bytes_of(*a);
  const unsigned width = a->is_v4() ? 32 : 128;
  const unsigned n = bits.value_or(width);
  if (n > width) return std::nullopt;
  c.prefix = a->is_v4() ? 96 + n : n;
  // Host bits must be zero.
  for (unsigned bit = c.prefix; bit < 128; ++bit) {
    if (c.bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  }
  return c;
}

bool cidr_set::contains(const boost::asio::ip::address& a) const noexcept {
  if (ranges_.empty()) return false;
  const auto b = bytes_of(a);
  return std::any_of(ranges_.begin(), ranges_.end(), [&](const cidr& c) { return in_range(b, c); });
}

std::optional<boost::asio::ip::address> forwarded_client(const boost::asio::ip::address& peer,
                                                         std::span<const std::string_view> x_forwarded_for,
                                                         const cidr_set& trusted) {
  if (x_forwarded_for.empty() || !trusted.contains(peer)) return std::nullopt;
  constexpr std::size_t max_elements = 64;  // bounded work per request
  std::vector<boost::asio::ip::address> chain;
  for (const std::string_view line : x_forwarded_for) {
    std::size_t start = 0;
    while (start <= line.size()) {
      const std::size_t comma = line.find(',', start);
      const std::string_view part = trim(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start));
      const auto a = plain_address(part);
      if (!a || chain.size() == max_elements) return std::nullopt;
      chain.push_back(*a);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (chain.empty()) return std::nullopt;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!trusted.contains(*it)) return *it;
  }
  return chain.front();
}

}  // namespace mles::http
