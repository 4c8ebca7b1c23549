// websocket: RFC 6455 mechanics shared by the server session and the peer link.
#include "net/websocket.hpp"

#include "net/peer_wire.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

namespace mles::net {

websocket::websocket(connection& c, ws::role role, std::size_t max_message)
    : connection_handler(c), parser_(max_message, role), role_(role) {}

websocket::~websocket() { inflight_.shrink_to(0, conn_.ctx()); }

struct websocket::frame_sink final : ws::frame_handler {
  explicit frame_sink(websocket& s) noexcept : w(s) {}
  bool on_message(ws::opcode op, std::span<const std::uint8_t> payload) override { return w.on_message(op, payload); }
  bool on_ping(std::span<const std::uint8_t> payload) override { return w.on_ping(payload); }
  bool on_pong(std::span<const std::uint8_t> payload) override { return w.on_pong(payload); }
  void on_close(std::uint16_t code, std::string_view reason) override { w.on_close(code, reason); }
  bool on_buffer_growth(std::size_t capacity) override { return w.on_buffer_growth(capacity); }
  websocket& w;
};

void websocket::begin(std::span<std::uint8_t> early_bytes) {
  if (!early_bytes.empty()) on_bytes(early_bytes);
}

hub::shared_frame websocket::encode(ws::opcode op, std::span<const std::uint8_t> payload) const {
  return encode_frame(role_, op, payload, conn_.frame_sharing());
}

void websocket::on_bytes(std::span<std::uint8_t> bytes) {
  if (parser_done_) return;
  const bool was_mid = parser_.mid_message();
  const std::uint32_t before = messages_;
  frame_sink sink(*this);
  const ws::consume_result r = parser_.consume(bytes, sink);
  if (r.error != ws::close_code::none || r.closed) parser_done_ = true;
  if (r.error != ws::close_code::none && !closing_) {
    const errc why = r.error == ws::close_code::protocol_error    ? errc::protocol_error
                     : r.error == ws::close_code::invalid_payload ? errc::invalid_utf8
                     : r.error == ws::close_code::message_too_big ? errc::message_too_big
                     : r.error == ws::close_code::try_again_later ? errc::inflight_budget
                                                                   : errc::protocol_error;
    const std::string text = make_error_code(why).message();
    close(r.error, text, why);
  }
  // The time a message may take runs from its first byte, whatever arrives after it.
  if (parser_.mid_message() && (!was_mid || messages_ != before)) message_started_ = conn_.loop().now();
  if (!closing_) parser_.shrink();
  inflight_.shrink_to(parser_.buffer_capacity(), conn_.ctx());
}

bool websocket::on_buffer_growth(std::size_t capacity) {
  if (!inflight_.grow_to(capacity, conn_.ctx())) {
    spdlog::debug("{}: message buffer of {} bytes refused: over --max-inflight", conn_.describe(), capacity);
    return false;
  }
  return true;
}

bool websocket::on_message(ws::opcode op, std::span<const std::uint8_t> payload) {
  ++messages_;
  if (closing_) return true;  // dropped, but keep parsing to find the peer's close frame
  return on_data(op, payload);
}

bool websocket::on_ping(std::span<const std::uint8_t> payload) {
  if (closing_) return true;
  // Pongs count against the send ceiling: a peer pinging without reading is a slow consumer.
  return conn_.enqueue(encode(ws::opcode::pong, payload), hub::delivery_kind::live);
}

bool websocket::on_pong(std::span<const std::uint8_t>) { return true; }

void websocket::on_close(std::uint16_t code, std::string_view reason) {
  if (closing_) {
    // The answer to our close: the handshake is complete.
    if (conn_.close_flushed()) conn_.complete_close();
    return;
  }
  // RFC 6455 §5.5.1: answer with a close frame echoing the status code.
  std::uint8_t body[2] = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code & 0xff)};
  const bool has_code = code != static_cast<std::uint16_t>(ws::close_code::no_status);
  closing_ = true;
  leave_once();
  conn_.close_after(encode(ws::opcode::close, has_code ? std::span<const std::uint8_t>(body, 2)
                                                       : std::span<const std::uint8_t>()),
                    errc::closed_by_peer,
                    "close " + std::to_string(code) + (reason.empty() ? "" : " (" + std::string(reason) + ")"),
                    conn_.loop().now() + conn_.ctx().settings.close_timeout);
}

void websocket::close(ws::close_code code, std::string_view reason, boost::system::error_code why, std::string detail) {
  if (closing_ || conn_.closed()) return;
  closing_ = true;
  leave_once();
  std::vector<std::uint8_t> body = ws::encode_close_frame(code, reason);
  // encode_close_frame gives a whole server frame: take its body and frame it in our role.
  const std::size_t header = ws::server_header_size(body.size() - 2);
  auto payload = std::span<const std::uint8_t>(body).subspan(header);
  conn_.close_after(encode(ws::opcode::close, payload), why, std::move(detail),
                    conn_.loop().now() + conn_.ctx().settings.close_timeout);
}

void websocket::leave_once() {
  if (left_) return;
  left_ = true;
  on_leave();
}

void websocket::start_pinging() {
  pinging_ = true;
  conn_.set_open_deadline(conn_.loop().now() + conn_.ctx().settings.ping_interval);
}

void websocket::on_overflow() {
  close(ws::close_code::policy_violation, "send queue full", errc::slow_consumer);
}

void websocket::on_go_away() {
  close(ws::close_code::going_away, "server stopping", errc::server_stopping);
}

void websocket::on_sweep(event_loop::clock::time_point now) {
  if (!pinging_ || closing_) return;
  const auto interval = conn_.ctx().settings.ping_interval;
  if (parser_.mid_message() && now - message_started_ >= conn_.ctx().settings.message_timeout) {
    close(ws::close_code::policy_violation, "message not received in time", errc::message_timeout);
    return;
  }
  if (now - conn_.last_rx() >= 3 * interval) {
    close(ws::close_code::going_away, "ping timeout", errc::ping_timeout);
    return;
  }
  if (now >= conn_.open_deadline()) {
    conn_.set_open_deadline(now + interval);
    if (role_ == ws::role::server) {
      static const hub::shared_frame ping = [] {
        auto f = hub::shared_frame::allocate(2);
        ws::write_server_header(f.writable().data(), ws::opcode::ping, 0);
        return f;
      }();
      conn_.enqueue(ping, hub::delivery_kind::live);
    } else {
      conn_.enqueue(encode(ws::opcode::ping, {}), hub::delivery_kind::live);
    }
  }
}

}  // namespace mles::net
