// The PROXY protocol header (HAProxy, versions 1 and 2) a load balancer puts before the bytes
// of a connection, naming the client it accepted. Pure and incremental (Sans-I/O): the caller
// offers the bytes received so far (peeked, not consumed) and learns whether more are needed,
// the header is complete (how many bytes to consume, and the client address), or the bytes
// can never become a valid header. data path: socket (peek) ─► parse_proxy_header ─► the
// connection's client address ─► rate limit, TLS / HTTP.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace mles::proto {

// v1: "PROXY TCP4|TCP6|UNKNOWN ...\r\n", at most 107 bytes with the CRLF.
inline constexpr std::size_t proxy_v1_max = 107;
// v2: 16 bytes (12-byte signature, version/command, family/transport, length) plus the
// address block and TLVs. The length field allows 65535; we accept at most this much after
// the 16 bytes (addresses are at most 216 bytes; load balancers add a few short TLVs).
inline constexpr std::size_t proxy_v2_max_payload = 1024;
// Bytes a caller must be able to look at to parse any acceptable header.
inline constexpr std::size_t proxy_header_max = 16 + proxy_v2_max_payload;

enum class proxy_status : std::uint8_t {
  need_more,  // a valid prefix: offer more bytes (bounded: a header is never longer than proxy_header_max)
  done,       // a complete header of `consumed` bytes
  invalid,    // not a valid PROXY header (what: why)
};

struct proxy_source {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
};

struct proxy_result {
  proxy_status status = proxy_status::need_more;
  std::size_t consumed = 0;  // header length when done
  int version = 0;           // 1 or 2 once known
  // When done: the client's address, or nullopt when the header says to keep the
  // connection's own address (v2 LOCAL, v2 UNSPEC family, v1 UNKNOWN).
  std::optional<proxy_source> source;
  std::string_view what;  // when invalid: a short reason (static text)
};

proxy_result parse_proxy_header(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace mles::proto
