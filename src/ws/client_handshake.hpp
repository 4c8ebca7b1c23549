// Client side of the WebSocket opening handshake (RFC 6455 §4.1), for links we open to other
// servers: the key, the upgrade request, and an incremental check of the server's response.
// Pure: no I/O. data path: peer link connect ─► make_upgrade_request ─► upgrade_response_reader
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace mles::ws {

// A fresh Sec-WebSocket-Key: base64 of 16 bytes from OpenSSL's CSPRNG (RFC 6455 §4.1: a
// randomly selected nonce). Throws std::runtime_error if the CSPRNG fails.
std::string make_client_key();

// The upgrade request head, ending in CRLFCRLF:
//   GET <target> HTTP/1.1, Host, Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Key,
//   Sec-WebSocket-Version: 13, Sec-WebSocket-Protocol: mles-websocket, then extra_headers in
//   order. Throws std::invalid_argument if a field would break the head: a CR, LF or NUL in
//   any of them, a target not starting with '/', or a header name that is not an RFC 9110 token.
std::string make_upgrade_request(std::string_view host_header, std::string_view target, std::string_view key,
                                 std::span<const std::pair<std::string, std::string>> extra_headers);

// Largest response head the reader accepts (status line + headers + CRLFCRLF).
inline constexpr std::size_t max_upgrade_response_head = 16 * 1024;

enum class upgrade_state : std::uint8_t { need_more, accepted, refused };

// Reads the server's answer to make_upgrade_request byte by byte or in any chunks. Accepted
// only for status 101 with Upgrade: websocket (ASCII case-insensitive), a Connection header
// holding the upgrade token, the right Sec-WebSocket-Accept, Sec-WebSocket-Protocol exactly
// mles-websocket, and no Sec-WebSocket-Extensions (we offer none), per RFC 6455 §4.1.
// Not thread-safe; one per connection attempt, owned by the link that sent the request.
class upgrade_response_reader {
 public:
  struct result {
    upgrade_state state = upgrade_state::need_more;
    // Bytes of this feed's input that belonged to the response head. need_more: all of them.
    // accepted: the rest of the input is the first WebSocket frames and must be parsed.
    // refused: meaningless (the connection is to be closed).
    std::size_t consumed = 0;
    std::string error;  // refused only: one line, e.g. "peer answered HTTP 400"
  };

  // key: the Sec-WebSocket-Key sent in the request.
  explicit upgrade_response_reader(std::string key);
  ~upgrade_response_reader();
  upgrade_response_reader(upgrade_response_reader&&) noexcept;
  upgrade_response_reader& operator=(upgrade_response_reader&&) noexcept;

  // Reads more of the response. Once accepted or refused, further calls return the same state
  // (and error) with consumed 0.
  result feed(std::span<const std::uint8_t> bytes);

  // After the head was read (accepted, or refused by a check of its fields): the value of the
  // first header with this name (case-insensitive), or "" when absent or the head is unread.
  std::string header(std::string_view name) const;
  // The response status once the head was read, else 0.
  unsigned status() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mles::ws
