// WebSocket opening handshake helpers (RFC 6455 §4.2). Pure: no I/O; the HTTP request is
// parsed by Beast in net/, these functions check its fields.
#pragma once

#include <string>
#include <string_view>

namespace mles::ws {

inline constexpr std::string_view mles_subprotocol = "mles-websocket";

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). RFC 6455 §1.3 vector:
// "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
std::string accept_key(std::string_view client_key);

// A Sec-WebSocket-Key must be base64 of exactly 16 bytes (24 chars ending in "==").
bool is_valid_client_key(std::string_view key) noexcept;

// Does a comma-separated header value (e.g. Sec-WebSocket-Protocol: "chat, mles-websocket"
// or Connection: "keep-alive, Upgrade") contain token, compared case-sensitively for
// subprotocols (RFC 6455 §4.1) or ASCII-case-insensitively when icase is true?
enum class token_case : bool { sensitive, insensitive };
bool header_has_token(std::string_view header_value, std::string_view token,
                      token_case cmp) noexcept;

}  // namespace mles::ws
