// RFC 6455 server-side frame encoder: minimal-length headers for unmasked frames, close
// frames, and the close-code rules for frames received from clients. Pure: no I/O.
#include "ws/frame.hpp"

#include <algorithm>
#include <cstring>

namespace mles::ws {

bool is_valid_received_close_code(std::uint16_t code) noexcept {
  // RFC 6455 §7.4.1/§7.4.2: 1004 is reserved, 1005/1006/1015 must never be on the wire,
  // 1016-2999 are reserved for future RFCs, 3000-4999 belong to libraries and applications.
  // 1012-1014 are IANA-registered (restart, try again later, bad gateway) and widely sent.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

std::size_t server_header_size(std::uint64_t payload_len) noexcept {
  if (payload_len < 126) return 2;
  if (payload_len <= 0xFFFF) return 4;
  return 10;
}

std::size_t write_server_header(std::uint8_t* out, opcode op, std::uint64_t payload_len,
                                bool fin) noexcept {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80u : 0x00u) | static_cast<std::uint8_t>(op));
  // RFC 6455 §5.2: the minimal number of bytes must be used to encode the length.
  if (payload_len < 126) {
    out[1] = static_cast<std::uint8_t>(payload_len);
    return 2;
  }
  if (payload_len <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<std::uint8_t>(payload_len >> 8);
    out[3] = static_cast<std::uint8_t>(payload_len);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) {
    out[2 + i] = static_cast<std::uint8_t>(payload_len >> (56 - 8 * i));
  }
  return 10;
}

std::vector<std::uint8_t> encode_server_frame(opcode op, std::span<const std::uint8_t> payload,
                                              bool fin) {
  std::vector<std::uint8_t> out(server_header_size(payload.size()) + payload.size());
  const std::size_t header = write_server_header(out.data(), op, payload.size(), fin);
  if (!payload.empty()) std::memcpy(out.data() + header, payload.data(), payload.size());
  return out;
}

namespace {

// Longest prefix of text, at most limit bytes, that does not end inside a UTF-8 sequence.
std::size_t utf8_prefix_length(std::string_view text, std::size_t limit) noexcept {
  if (text.size() <= limit) return text.size();
  std::size_t cut = limit;
  // text[cut] is the first byte dropped: back off while it continues a sequence.
  while (cut > 0 && (static_cast<std::uint8_t>(text[cut]) & 0xC0u) == 0x80u) --cut;
  return cut;
}

}  // namespace

std::vector<std::uint8_t> encode_close_frame(close_code code, std::string_view reason) {
  // close_code::none and no_status are not wire codes: they give a close frame without a
  // body (RFC 6455 §5.5.1 allows an empty close).
  if (code == close_code::none || code == close_code::no_status) {
    return encode_server_frame(opcode::close, {});
  }
  // RFC 6455 §5.5: control frames carry at most 125 bytes: 2-byte code + 123 of reason.
  const std::size_t reason_len = utf8_prefix_length(reason, 123);
  const std::size_t payload_len = 2 + reason_len;
  std::vector<std::uint8_t> out(2 + payload_len);
  write_server_header(out.data(), opcode::close, payload_len);
  const auto value = static_cast<std::uint16_t>(code);
  out[2] = static_cast<std::uint8_t>(value >> 8);
  out[3] = static_cast<std::uint8_t>(value);
  if (reason_len != 0) std::memcpy(out.data() + 4, reason.data(), reason_len);
  return out;
}

}  // namespace mles::ws
