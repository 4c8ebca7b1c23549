// The peer envelope: the header every message on a link between two servers of this project
// starts with (origin, sequence, flags), before the member's payload. Pure: no I/O; members
// never see it. data path: peer link frame ─► parse_envelope ─► dedup ─► hub.publish
#pragma once

#include "proto/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace mles::proto {

// Wire layout (one BINARY WebSocket message, all integers big-endian):
//   byte 0     0xE1: magic and version 1
//   byte 1     flags (envelope_flags); bits 3-7 must be 0
//   byte 2     n, length of the origin server id, 1..64
//   n bytes    origin server id, bytes 0x21..0x7E only
//   8 bytes    origin instance (random per process start)
//   8 bytes    sequence, >= 1
//   rest       the member's payload, byte for byte (may be empty)
inline constexpr std::uint8_t envelope_magic = 0xE1;
inline constexpr std::size_t max_server_id_size = 64;
// Header size without the server id: magic, flags, n, instance, sequence.
inline constexpr std::size_t envelope_fixed_size = 3 + 8 + 8;

struct envelope_flags {
  static constexpr std::uint8_t text = 1;     // the member's message was TEXT, else BINARY
  static constexpr std::uint8_t history = 2;  // store in the channel history, do not deliver
                                              // (join frames, replayed history)
  static constexpr std::uint8_t hashed = 4;   // entered the mesh from a link without envelopes
  static constexpr std::uint8_t all = text | history | hashed;
};

// A parsed envelope: views into the message it was parsed from.
struct envelope {
  std::uint8_t flags = 0;
  std::string_view server;
  std::uint64_t instance = 0;
  std::uint64_t seq = 0;
  std::span<const std::uint8_t> payload;
};

// 1..64 bytes, each 0x21..0x7E (printable ASCII without space).
bool is_valid_server_id(std::string_view server) noexcept;

// Bytes before the payload for this origin server id.
std::size_t envelope_header_size(std::string_view server) noexcept;

// Writes the header into out (envelope_header_size(server) bytes) and returns its size; the
// payload goes right after it. Precondition: is_valid_server_id(server), flags within
// envelope_flags::all, seq >= 1 (otherwise the result does not parse).
std::size_t write_envelope_header(std::uint8_t* out, std::uint8_t flags, std::string_view server,
                                  std::uint64_t instance, std::uint64_t seq) noexcept;

// Parses a whole peer message. On success out views into message; on failure returns one of
// errc::envelope_* and leaves out unspecified. Never throws.
boost::system::error_code parse_envelope(std::span<const std::uint8_t> message, envelope& out) noexcept;

}  // namespace mles::proto
