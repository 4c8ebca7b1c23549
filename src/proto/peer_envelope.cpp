// The peer envelope codec: writes and checks the header that precedes each message on a link
// between two servers of this project. Pure: no I/O, no allocation.
#include "proto/peer_envelope.hpp"

#include <cassert>
#include <cstring>

namespace mles::proto {

namespace {

void write_u64(std::uint8_t* out, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
}

std::uint64_t read_u64(const std::uint8_t* in) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

bool is_server_id_byte(std::uint8_t b) noexcept { return b >= 0x21 && b <= 0x7E; }

}  // namespace

bool is_valid_server_id(std::string_view server) noexcept {
  if (server.empty() || server.size() > max_server_id_size) return false;
  for (const char c : server) {
    if (!is_server_id_byte(static_cast<std::uint8_t>(c))) return false;
  }
  return true;
}

std::size_t envelope_header_size(std::string_view server) noexcept {
  return envelope_fixed_size + server.size();
}

std::size_t write_envelope_header(std::uint8_t* out, std::uint8_t flags, std::string_view server,
                                  std::uint64_t instance, std::uint64_t seq) noexcept {
  assert(is_valid_server_id(server) && (flags & ~envelope_flags::all) == 0 && seq >= 1);
  out[0] = envelope_magic;
  out[1] = flags;
  out[2] = static_cast<std::uint8_t>(server.size());
  std::memcpy(out + 3, server.data(), server.size());
  write_u64(out + 3 + server.size(), instance);
  write_u64(out + 11 + server.size(), seq);
  return envelope_header_size(server);
}

boost::system::error_code parse_envelope(std::span<const std::uint8_t> message, envelope& out) noexcept {
  // Each field is checked as soon as it is present, so a bad field wins over a short message.
  const std::uint8_t* const p = message.data();
  const std::size_t size = message.size();
  if (size < 1) return errc::envelope_truncated;
  if (p[0] != envelope_magic) return errc::envelope_bad_magic;
  if (size < 2) return errc::envelope_truncated;
  if ((p[1] & ~envelope_flags::all) != 0) return errc::envelope_bad_flags;
  if (size < 3) return errc::envelope_truncated;
  const std::size_t n = p[2];
  if (n == 0 || n > max_server_id_size) return errc::envelope_bad_server_id;
  if (size < envelope_fixed_size + n) return errc::envelope_truncated;
  const std::string_view server(reinterpret_cast<const char*>(p + 3), n);
  if (!is_valid_server_id(server)) return errc::envelope_bad_server_id;
  const std::uint64_t seq = read_u64(p + 11 + n);
  if (seq == 0) return errc::envelope_bad_sequence;
  out.flags = p[1];
  out.server = server;
  out.instance = read_u64(p + 3 + n);
  out.seq = seq;
  out.payload = message.subspan(envelope_fixed_size + n);
  return {};
}

}  // namespace mles::proto
