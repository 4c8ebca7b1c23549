// RFC 6455 frame encoders: minimal-length headers for unmasked (server) and masked (client)
// frames, masking, close frames, and the close-code rule for received frames. Pure: no I/O.
#include "ws/frame.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

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

// A close frame's body (RFC 6455 §5.5.1): the 2-byte code then the reason, truncated so the
// payload stays <= 125 bytes (§5.5) without splitting a UTF-8 sequence. none and no_status
// are not wire codes: they give an empty body (an empty close is allowed).
struct close_body {
  std::array<std::uint8_t, 125> bytes{};
  std::size_t size = 0;

  close_body(close_code code, std::string_view reason) noexcept {
    if (code == close_code::none || code == close_code::no_status) return;
    const std::size_t reason_len = utf8_prefix_length(reason, bytes.size() - 2);
    const auto value = static_cast<std::uint16_t>(code);
    bytes[0] = static_cast<std::uint8_t>(value >> 8);
    bytes[1] = static_cast<std::uint8_t>(value);
    if (reason_len != 0) std::memcpy(bytes.data() + 2, reason.data(), reason_len);
    size = 2 + reason_len;
  }

  std::span<const std::uint8_t> view() const noexcept { return {bytes.data(), size}; }
};

}  // namespace

std::vector<std::uint8_t> encode_close_frame(close_code code, std::string_view reason) {
  return encode_server_frame(opcode::close, close_body(code, reason).view());
}

std::size_t client_header_size(std::uint64_t payload_len) noexcept {
  return server_header_size(payload_len) + 4;
}

std::size_t write_client_header(std::uint8_t* out, opcode op, std::uint64_t payload_len, masking_key mask,
                                bool fin) noexcept {
  const std::size_t n = write_server_header(out, op, payload_len, fin);
  out[1] = static_cast<std::uint8_t>(out[1] | 0x80u);  // RFC 6455 §5.2: MASK bit
  std::memcpy(out + n, mask.data(), mask.size());
  return n + mask.size();
}

void apply_mask(std::span<std::uint8_t> bytes, masking_key mask, std::uint64_t offset) noexcept {
  std::uint8_t* const p = bytes.data();
  const std::size_t n = bytes.size();
  if (n == 0) return;
  // The key rotated so that rotated[0] applies to p[0], repeated to fill a 64-bit word.
  const auto phase = static_cast<std::size_t>(offset & 3u);
  std::array<std::uint8_t, 8> rotated{};
  for (std::size_t i = 0; i < rotated.size(); ++i) rotated[i] = mask[(phase + i) & 3u];
  std::uint64_t mask_word;
  std::memcpy(&mask_word, rotated.data(), 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, 8);
    word ^= mask_word;
    std::memcpy(p + i, &word, 8);
  }
  // i is a multiple of 8, hence of 4: the rotated key still lines up.
  for (; i < n; ++i) p[i] ^= rotated[i & 7u];
}

masking_key random_mask() {
  // RAND_bytes is OpenSSL's CSPRNG; one call per 64 keys keeps its per-call cost off the
  // per-frame path. Each thread has its own batch, so no key is handed out twice.
  constexpr std::size_t batch_keys = 64;
  thread_local std::array<std::uint8_t, batch_keys * 4> batch{};
  thread_local std::size_t next = batch_keys;
  if (next == batch_keys) {
    if (RAND_bytes(batch.data(), static_cast<int>(batch.size())) != 1) {
      throw std::runtime_error("RAND_bytes failed: no masking key");
    }
    next = 0;
  }
  masking_key key;
  std::memcpy(key.data(), batch.data() + next * 4, 4);
  ++next;
  return key;
}

std::vector<std::uint8_t> encode_client_frame(opcode op, std::span<const std::uint8_t> payload, masking_key mask,
                                              bool fin) {
  std::vector<std::uint8_t> out(client_header_size(payload.size()) + payload.size());
  const std::size_t header = write_client_header(out.data(), op, payload.size(), mask, fin);
  if (!payload.empty()) {
    std::memcpy(out.data() + header, payload.data(), payload.size());
    apply_mask(std::span<std::uint8_t>(out).subspan(header), mask);
  }
  return out;
}

std::vector<std::uint8_t> encode_client_close_frame(close_code code, std::string_view reason, masking_key mask) {
  return encode_client_frame(opcode::close, close_body(code, reason).view(), mask);
}

}  // namespace mles::ws
