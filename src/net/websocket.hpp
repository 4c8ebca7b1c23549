// The WebSocket phase of a connection, in either role (RFC 6455): frames in through the
// incremental parser, pings every interval and the idle rule, ping answers, the close
// handshake, and the slow-consumer close. Subclasses give messages their meaning: the
// server's Mles session (net/ws_session) and an outbound peer link (peer/link_session).
// data path: connection bytes ─► ws::frame_parser ─► on_data (subclass)
// Thread-safety: the connection's loop only.
#pragma once

#include "hub/shared_frame.hpp"
#include "net/connection.hpp"
#include "ws/frame.hpp"
#include "ws/frame_parser.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mles::net {

class websocket : public connection_handler {
 public:
  // The first frames may already have arrived behind the HTTP head.
  void begin(std::span<std::uint8_t> early_bytes);

  // connection_handler
  void on_bytes(std::span<std::uint8_t> bytes) override;
  void on_overflow() override;
  void on_sweep(event_loop::clock::time_point now) override;
  void on_go_away() override;

 protected:
  websocket(connection& c, ws::role role, std::size_t max_message);
  ~websocket() override;

  // A data message (text or binary), fragments joined. Return false to stop parsing (the
  // session is closing).
  virtual bool on_data(ws::opcode op, std::span<const std::uint8_t> payload) = 0;
  // The session leaves its channel: called once, when it starts closing or ends.
  virtual void on_leave() = 0;

  // A frame in this end's role: unmasked from a server, masked with a fresh key from a client.
  hub::shared_frame encode(ws::opcode op, std::span<const std::uint8_t> payload) const;
  // Starts the close handshake: our close frame (code, reason), then the connection's
  // closing sequence; `why` and `detail` are what the logs say when it ends.
  void close(ws::close_code code, std::string_view reason, boost::system::error_code why, std::string detail = {});
  // Pings every interval and closes after three silent ones (set once the session is live).
  void start_pinging();
  bool closing() const noexcept { return closing_; }
  ws::frame_parser& parser() noexcept { return parser_; }
  ws::role role() const noexcept { return role_; }

 private:
  // The parser's callbacks (ws::frame_handler), through a frame_sink made for each read: a
  // session keeps no second vtable pointer for them.
  struct frame_sink;
  bool on_message(ws::opcode op, std::span<const std::uint8_t> payload);
  bool on_ping(std::span<const std::uint8_t> payload);
  virtual bool on_pong(std::span<const std::uint8_t> payload);
  void on_close(std::uint16_t code, std::string_view reason);
  bool on_buffer_growth(std::size_t capacity);
  void leave_once();

  // (The next ping is due at the connection's open deadline. The small fields come last: a
  // subclass's own flags fill the padding after them.)
  ws::frame_parser parser_;
  event_loop::clock::time_point message_started_{};  // first byte of the message in progress
  inflight_charge inflight_;                          // the message buffer's share of --max-inflight
  ws::role role_;
  bool pinging_ = false;
  bool closing_ = false;
  bool parser_done_ = false;   // the parser saw a close frame or an error: feed no more
  bool left_ = false;
  std::uint32_t messages_ = 0;                        // complete messages so far (wraps)
};

}  // namespace mles::net
