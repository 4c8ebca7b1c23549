// The few RFC 6455 pieces the bench and the raw baseline need: frame headers both ways,
// fast masking, in-place frame parsing, accept key. Self-contained: the bench must not
// depend on the server's src/ libraries (it measures them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mles::bench {

enum class ws_opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

inline constexpr std::string_view mles_subprotocol = "mles-websocket";

// Frames larger than this are treated as a protocol error (common stacks stop at 16 MiB/frame).
inline constexpr std::uint64_t max_frame_payload = 64ull << 20;

// A frame located in a byte range. payload points into the parsed bytes (in place).
struct frame_view {
  bool fin = false;
  bool masked = false;
  ws_opcode opcode = ws_opcode::continuation;
  std::uint32_t mask_key = 0;   // as the 4 wire bytes, loaded little-endian
  char* payload = nullptr;
  std::size_t payload_len = 0;
  std::size_t header_len = 0;   // bytes before payload
  std::size_t frame_len = 0;    // header_len + payload_len
};

enum class parse_result { complete, need_more, error };

// Parses one frame header at p[0..n). On complete, the whole frame (header + payload) is in
// range. error: reserved bits set, unknown opcode, oversized or non-minimal control frame.
inline parse_result parse_frame(char* p, std::size_t n, frame_view& f) noexcept {
  if (n < 2) return parse_result::need_more;
  const auto b0 = static_cast<std::uint8_t>(p[0]);
  const auto b1 = static_cast<std::uint8_t>(p[1]);
  if ((b0 & 0x70) != 0) return parse_result::error;  // RSV1-3: no extension negotiated
  f.fin = (b0 & 0x80) != 0;
  f.opcode = static_cast<ws_opcode>(b0 & 0x0f);
  f.masked = (b1 & 0x80) != 0;
  std::uint64_t len = b1 & 0x7f;
  std::size_t h = 2;
  if (len == 126) {
    if (n < 4) return parse_result::need_more;
    len = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(p[2])) << 8) |
          static_cast<std::uint8_t>(p[3]);
    h = 4;
  } else if (len == 127) {
    if (n < 10) return parse_result::need_more;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(p[2 + i]);
    h = 10;
  }
  const auto op = static_cast<std::uint8_t>(f.opcode);
  if (op >= 0x8) {
    // RFC 6455 §5.5: control frames carry at most 125 bytes and are never fragmented.
    if (len > 125 || !f.fin || op > 0xA) return parse_result::error;
  } else if (op > 0x2) {
    return parse_result::error;
  }
  if (len > max_frame_payload) return parse_result::error;
  if (f.masked) {
    if (n < h + 4) return parse_result::need_more;
    std::memcpy(&f.mask_key, p + h, 4);
    h += 4;
  }
  if (n - h < len) return parse_result::need_more;
  f.header_len = h;
  f.payload = p + h;
  f.payload_len = static_cast<std::size_t>(len);
  f.frame_len = h + f.payload_len;
  return parse_result::complete;
}

// XORs data with the 4-byte mask (given as loaded from the wire, little-endian), 8 bytes at
// a time. Masking is an involution: the same call masks and unmasks.
inline void apply_mask(char* data, std::size_t n, std::uint32_t mask_key) noexcept {
  const std::uint64_t m64 = (static_cast<std::uint64_t>(mask_key) << 32) | mask_key;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, data + i, 8);
    v ^= m64;
    std::memcpy(data + i, &v, 8);
  }
  const auto* mk = reinterpret_cast<const unsigned char*>(&m64);
  for (; i < n; ++i) data[i] = static_cast<char>(data[i] ^ static_cast<char>(mk[i & 7]));
}

// Masked copy: dst[i] = src[i] ^ mask (client frames).
inline void copy_masked(char* dst, const char* src, std::size_t n, std::uint32_t mask_key) noexcept {
  const std::uint64_t m64 = (static_cast<std::uint64_t>(mask_key) << 32) | mask_key;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= m64;
    std::memcpy(dst + i, &v, 8);
  }
  const auto* mk = reinterpret_cast<const unsigned char*>(&m64);
  for (; i < n; ++i) dst[i] = static_cast<char>(src[i] ^ static_cast<char>(mk[i & 7]));
}

// Header size of an unmasked (server) frame; a masked (client) frame adds 4.
inline constexpr std::size_t server_header_size(std::size_t payload_len) noexcept {
  return payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;
}

// Writes a minimal-length header without mask bit or key; returns its size.
inline std::size_t write_header(char* out, ws_opcode op, std::size_t len, bool fin, bool masked) noexcept {
  out[0] = static_cast<char>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(op));
  const char mbit = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    out[1] = static_cast<char>(mbit | static_cast<char>(len));
    return 2;
  }
  if (len <= 0xffff) {
    out[1] = static_cast<char>(mbit | 126);
    out[2] = static_cast<char>((len >> 8) & 0xff);
    out[3] = static_cast<char>(len & 0xff);
    return 4;
  }
  out[1] = static_cast<char>(mbit | 127);
  const auto l = static_cast<std::uint64_t>(len);
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<char>((l >> (56 - 8 * i)) & 0xff);
  return 10;
}

// Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
std::string websocket_accept_key(std::string_view client_key);

// base64 of 16 random bytes: a fresh Sec-WebSocket-Key.
std::string make_websocket_key();

// ASCII case-insensitive search; returns npos when absent.
std::size_t find_icase(std::string_view haystack, std::string_view needle) noexcept;

// Value of an HTTP header in a header block (case-insensitive name, trimmed), or empty.
std::string_view header_value(std::string_view headers, std::string_view name) noexcept;

}  // namespace mles::bench
