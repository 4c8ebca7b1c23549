// peer_wire: frames and envelopes on links between servers.
#include "net/peer_wire.hpp"

#include "proto/peer_envelope.hpp"
#include "ws/utf8.hpp"

#include <cstring>

namespace mles::net {

std::string peer_header_value(std::string_view server_id) { return "1; id=" + std::string(server_id); }

std::optional<std::string> parse_peer_header(std::string_view value) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  const auto semi = value.find(';');
  if (semi == std::string_view::npos || trim(value.substr(0, semi)) != "1") return std::nullopt;
  std::string_view rest = value.substr(semi + 1);
  while (!rest.empty()) {
    const auto next = rest.find(';');
    const std::string_view param = trim(rest.substr(0, next));
    if (param.substr(0, 3) == "id=") {
      const std::string_view id = param.substr(3);
      if (!proto::is_valid_server_id(id)) return std::nullopt;
      return std::string(id);
    }
    if (next == std::string_view::npos) break;
    rest.remove_prefix(next + 1);
  }
  return std::nullopt;
}

frame_view view_server_frame(const hub::shared_frame& frame) noexcept {
  const std::uint8_t* p = frame.data();
  const std::size_t n = frame.size();
  if (n < 2) return {ws::opcode::binary, {}};
  const std::uint8_t len7 = p[1] & 0x7Fu;
  const std::size_t header = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
  if (n < header) return {static_cast<ws::opcode>(p[0] & 0x0Fu), {}};
  return {static_cast<ws::opcode>(p[0] & 0x0Fu), {p + header, n - header}};
}

namespace {

// Room for header + body; returns the frame and where the body goes (filled by the caller,
// then masked for a client by finish_frame).
struct frame_builder {
  hub::shared_frame frame;
  std::size_t header = 0;
  std::array<std::uint8_t, 4> mask{};
  bool masked = false;

  frame_builder(ws::role role, ws::opcode op, std::size_t body, hub::sharing mode) {
    masked = role == ws::role::client;
    header = masked ? ws::client_header_size(body) : ws::server_header_size(body);
    frame = hub::shared_frame::allocate(header + body, mode);
    if (masked) {
      mask = ws::random_mask();
      ws::write_client_header(frame.writable().data(), op, body, mask);
    } else {
      ws::write_server_header(frame.writable().data(), op, body);
    }
  }
  std::uint8_t* body() noexcept { return frame.writable().data() + header; }
  hub::shared_frame finish() {
    if (masked) ws::apply_mask(frame.writable().subspan(header), mask);
    return std::move(frame);
  }
};

}  // namespace

hub::shared_frame encode_frame(ws::role role, ws::opcode op, std::span<const std::uint8_t> payload,
                               hub::sharing mode) {
  frame_builder b(role, op, payload.size(), mode);
  if (!payload.empty()) std::memcpy(b.body(), payload.data(), payload.size());
  return b.finish();
}

hub::shared_frame encode_enveloped(const hub::message& m, const hub::origin& self, ws::role role,
                                   hub::sharing mode) {
  const frame_view v = view_server_frame(m.frame);
  std::uint8_t flags = m.flags & (proto::envelope_flags::history | proto::envelope_flags::hashed);
  if (v.op == ws::opcode::text) flags |= proto::envelope_flags::text;
  const hub::origin& from = m.from ? *m.from : self;
  const std::string_view server = from.server;
  const std::uint64_t instance = from.instance;
  const std::size_t head = proto::envelope_header_size(server);
  frame_builder b(role, ws::opcode::binary, head + v.payload.size(), mode);
  proto::write_envelope_header(b.body(), flags, server, instance, m.seq);
  if (!v.payload.empty()) std::memcpy(b.body() + head, v.payload.data(), v.payload.size());
  return b.finish();
}

void append_envelope(std::string& out, const hub::message& m, const hub::origin& self) {
  const frame_view v = view_server_frame(m.frame);
  std::uint8_t flags = m.flags & (proto::envelope_flags::history | proto::envelope_flags::hashed);
  if (v.op == ws::opcode::text) flags |= proto::envelope_flags::text;
  const hub::origin& from = m.from ? *m.from : self;
  const std::size_t head = proto::envelope_header_size(from.server);
  const std::size_t at = out.size();
  out.resize(at + head + v.payload.size());
  auto* p = reinterpret_cast<std::uint8_t*>(out.data() + at);
  proto::write_envelope_header(p, flags, from.server, from.instance, m.seq);
  if (!v.payload.empty()) std::memcpy(p + head, v.payload.data(), v.payload.size());
}

boost::system::error_code decode_enveloped(std::span<const std::uint8_t> bytes, hub::origin_ptr& last,
                                           hub::message& out, hub::sharing mode) {
  proto::envelope e;
  if (auto ec = proto::parse_envelope(bytes, e)) return ec;
  // The hub keeps 56-bit sequence numbers (a server of this project sends no larger ones).
  if (e.seq > hub::max_sequence) return proto::errc::envelope_bad_sequence;
  if (!last || last->instance != e.instance || last->server != e.server)
    last = std::make_shared<const hub::origin>(hub::origin{std::string(e.server), e.instance});
  out.from = last;
  out.seq = e.seq & hub::max_sequence;
  out.flags = e.flags & (proto::envelope_flags::history | proto::envelope_flags::hashed);
  const auto op = (e.flags & proto::envelope_flags::text) ? ws::opcode::text : ws::opcode::binary;
  // Members must never receive a TEXT message that is not UTF-8 (RFC 6455 §8.1).
  if (op == ws::opcode::text && !ws::is_valid_utf8(e.payload)) return proto::errc::envelope_bad_flags;
  out.frame = encode_frame(ws::role::server, op, e.payload, mode);
  return {};
}

}  // namespace mles::net
