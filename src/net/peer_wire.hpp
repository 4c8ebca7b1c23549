// How messages look on the wire of a link between servers: plain frames for members and
// reference servers, and the peer envelope (proto/peer_envelope.hpp) between two servers of
// this project, in either WebSocket role. Also the Mles-Peer upgrade header that negotiates
// the peer mode. Pure: no I/O.
// data path: hub::message ─► encode_enveloped / encode_frame ─► link or peer session queue
//            link bytes ─► frame parser ─► decode_enveloped ─► hub.publish
#pragma once

#include "hub/message.hpp"
#include "hub/shared_frame.hpp"
#include "ws/frame.hpp"
#include "ws/frame_parser.hpp"

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mles::net {

// The upgrade request/response header of the peer mode: "Mles-Peer: 1; id=<server id>".
inline constexpr std::string_view peer_header_name = "Mles-Peer";
std::string peer_header_value(std::string_view server_id);
// The server id in a Mles-Peer value of version 1; nullopt when absent or malformed.
std::optional<std::string> parse_peer_header(std::string_view value);

// The opcode and payload of an encoded server frame (header + payload, unfragmented).
struct frame_view {
  ws::opcode op;
  std::span<const std::uint8_t> payload;
};
frame_view view_server_frame(const hub::shared_frame& frame) noexcept;

// One frame in `role` (server: unmasked; client: masked with a fresh key) carrying payload.
hub::shared_frame encode_frame(ws::role role, ws::opcode op, std::span<const std::uint8_t> payload,
                               hub::sharing mode);
// A hub message in the peer envelope, as one binary frame in `role`; a message without
// origin is this server's (`self`).
hub::shared_frame encode_enveloped(const hub::message& m, const hub::origin& self, ws::role role,
                                   hub::sharing mode);
// The same envelope and payload without a WebSocket frame around it (cluster mode: one NATS
// message), appended to out.
void append_envelope(std::string& out, const hub::message& m, const hub::origin& self);
// An enveloped message received from a link: the hub message (with the server frame members
// receive), or the envelope's error. `last` caches the origin of the previous message so a
// stream from one origin shares one allocation.
boost::system::error_code decode_enveloped(std::span<const std::uint8_t> bytes, hub::origin_ptr& last,
                                           hub::message& out, hub::sharing mode);

}  // namespace mles::net
