// RFC 6455 framing vocabulary and the frame encoders for both roles. Pure: no I/O.
// Server-to-client frames are never masked (RFC 6455 §5.1), so one encoded frame can be shared
// by every recipient; client-to-server frames (our peer links) carry a fresh masking key each.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace mles::ws {

enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close status codes the server sends or checks (RFC 6455 §7.4.1).
enum class close_code : std::uint16_t {
  none = 0,  // not a wire code: "no error"
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  unsupported_data = 1003,
  no_status = 1005,  // never sent: a close frame without a body
  invalid_payload = 1007,
  policy_violation = 1008,
  message_too_big = 1009,
  internal_error = 1011,
  try_again_later = 1013,
};

// RFC 6455 §7.4: may this code appear in a close frame received from a peer?
bool is_valid_received_close_code(std::uint16_t code) noexcept;

// Largest header a server frame needs: 2 bytes + 8-byte extended length.
inline constexpr std::size_t max_server_header_size = 10;

// Header size of an unmasked frame with this payload length (2, 4 or 10).
std::size_t server_header_size(std::uint64_t payload_len) noexcept;

// Writes the minimal-length header of an unmasked frame into out (which must hold
// server_header_size(payload_len) bytes) and returns the number of bytes written.
std::size_t write_server_header(std::uint8_t* out, opcode op, std::uint64_t payload_len,
                                bool fin = true) noexcept;

// Convenience: header + payload in one vector (control frames, tests).
std::vector<std::uint8_t> encode_server_frame(opcode op, std::span<const std::uint8_t> payload,
                                              bool fin = true);

// A whole close frame (header + body): 2-byte code + reason, reason truncated so the payload
// stays <= 125 without splitting a UTF-8 sequence. none and no_status give an empty body.
std::vector<std::uint8_t> encode_close_frame(close_code code, std::string_view reason = {});

// ---- client role (RFC 6455 §5.1, §5.3): every frame to a server is masked ------------------

using masking_key = std::array<std::uint8_t, 4>;

// Largest header a client frame needs: 2 bytes + 8-byte extended length + 4-byte key.
inline constexpr std::size_t max_client_header_size = 14;

// Header size of a masked frame with this payload length (6, 8 or 14).
std::size_t client_header_size(std::uint64_t payload_len) noexcept;

// Writes the minimal-length header of a masked frame (MASK bit set, the key after the length)
// into out (which must hold client_header_size(payload_len) bytes) and returns its size.
// The payload that follows must be masked with the same key (apply_mask).
std::size_t write_client_header(std::uint8_t* out, opcode op, std::uint64_t payload_len, masking_key mask,
                                bool fin = true) noexcept;

// XORs bytes in place with the key (RFC 6455 §5.3: payload byte i is XORed with key[i % 4]);
// offset is the position of bytes[0] in the frame's payload, so a payload can be masked in
// pieces. Masking is an involution: the same call unmasks. Word at a time.
void apply_mask(std::span<std::uint8_t> bytes, masking_key mask, std::uint64_t offset = 0) noexcept;

// A fresh masking key. RFC 6455 §5.3: the key must be unpredictable, derived from a strong
// source of entropy; it comes from OpenSSL's CSPRNG (RAND_bytes), fetched in batches per
// thread. Throws std::runtime_error if the CSPRNG fails.
masking_key random_mask();

// Convenience: header + masked payload in one vector.
std::vector<std::uint8_t> encode_client_frame(opcode op, std::span<const std::uint8_t> payload, masking_key mask,
                                              bool fin = true);

// A whole masked close frame; the body follows the rules of encode_close_frame.
std::vector<std::uint8_t> encode_client_close_frame(close_code code, std::string_view reason, masking_key mask);

}  // namespace mles::ws
