// Test support for tests/ws: builds masked client frames and unmasked server frames byte by
// byte and records what a frame_parser delivers, so tests compare whole event sequences.
#pragma once

#include "ws/frame_parser.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mles::ws::test {

using bytes = std::vector<std::uint8_t>;

inline bytes to_bytes(std::string_view s) { return bytes(s.begin(), s.end()); }

inline constexpr std::array<std::uint8_t, 4> rfc_mask{0x37, 0xfa, 0x21, 0x3d};  // RFC 6455 §5.7

enum class length_form { minimal, force16, force64 };

// A client frame: b0 (FIN/RSV/opcode) as given, MASK bit set, payload masked with key.
inline bytes client_frame(std::uint8_t b0, std::span<const std::uint8_t> payload,
                          std::array<std::uint8_t, 4> key = rfc_mask,
                          length_form form = length_form::minimal) {
  bytes out{b0};
  const std::uint64_t n = payload.size();
  if (form == length_form::force64 || (form == length_form::minimal && n > 0xFFFF)) {
    out.push_back(0x80 | 127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  } else if (form == length_form::force16 || (form == length_form::minimal && n >= 126)) {
    out.push_back(0x80 | 126);
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    out.push_back(static_cast<std::uint8_t>(0x80 | n));
  }
  out.insert(out.end(), key.begin(), key.end());
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<std::uint8_t>(payload[i] ^ key[i % 4]));
  }
  return out;
}

inline bytes client_frame(std::uint8_t b0, std::string_view payload,
                          std::array<std::uint8_t, 4> key = rfc_mask,
                          length_form form = length_form::minimal) {
  const bytes p = to_bytes(payload);
  return client_frame(b0, std::span<const std::uint8_t>(p), key, form);
}

// A server frame: b0 (FIN/RSV/opcode) as given, MASK bit clear, payload as is.
inline bytes server_frame(std::uint8_t b0, std::span<const std::uint8_t> payload,
                          length_form form = length_form::minimal) {
  bytes out{b0};
  const std::uint64_t n = payload.size();
  if (form == length_form::force64 || (form == length_form::minimal && n > 0xFFFF)) {
    out.push_back(127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  } else if (form == length_form::force16 || (form == length_form::minimal && n >= 126)) {
    out.push_back(126);
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    out.push_back(static_cast<std::uint8_t>(n));
  }
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

inline bytes server_frame(std::uint8_t b0, std::string_view payload,
                          length_form form = length_form::minimal) {
  const bytes p = to_bytes(payload);
  return server_frame(b0, std::span<const std::uint8_t>(p), form);
}

inline bytes concat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct event {
  enum class kind { message, ping, pong, close } what;
  opcode op = opcode::continuation;  // messages only
  bytes payload;                      // message/ping/pong payload, or close reason
  std::uint16_t code = 0;             // close only
  bool operator==(const event&) const = default;
};

inline event message(opcode op, std::string_view s) { return {event::kind::message, op, to_bytes(s), 0}; }
inline event message(opcode op, bytes b) { return {event::kind::message, op, std::move(b), 0}; }
inline event ping(std::string_view s) { return {event::kind::ping, opcode::continuation, to_bytes(s), 0}; }
inline event pong(std::string_view s) { return {event::kind::pong, opcode::continuation, to_bytes(s), 0}; }
inline event close(std::uint16_t code, std::string_view reason = {}) {
  return {event::kind::close, opcode::continuation, to_bytes(reason), code};
}

// Records every event; returns keep_going_ from the bool callbacks.
class recorder final : public frame_handler {
 public:
  std::vector<event> events;
  std::vector<const std::uint8_t*> message_data;  // where each message's span pointed
  bool keep_going = true;

  bool on_message(opcode op, std::span<const std::uint8_t> payload) override {
    events.push_back({event::kind::message, op, bytes(payload.begin(), payload.end()), 0});
    message_data.push_back(payload.data());
    return keep_going;
  }
  bool on_ping(std::span<const std::uint8_t> payload) override {
    events.push_back({event::kind::ping, opcode::continuation, bytes(payload.begin(), payload.end()), 0});
    return keep_going;
  }
  bool on_pong(std::span<const std::uint8_t> payload) override {
    events.push_back({event::kind::pong, opcode::continuation, bytes(payload.begin(), payload.end()), 0});
    return keep_going;
  }
  void on_close(std::uint16_t code, std::string_view reason) override {
    events.push_back({event::kind::close, opcode::continuation, to_bytes(reason), code});
  }
};

// Outcome of feeding a whole input in chunks.
struct run_result {
  std::vector<event> events;
  close_code error = close_code::none;
  bool closed = false;
  std::size_t consumed = 0;  // total over all calls
};

// Feeds input (a copy: the parser unmasks in place) in chunks of the given sizes (the last
// size repeats), stopping at the first error or close.
inline run_result feed_chunked(bytes input, std::span<const std::size_t> sizes,
                               std::size_t max_message = 1 << 20, role parser_role = role::server) {
  frame_parser parser(max_message, parser_role);
  recorder rec;
  run_result out;
  std::size_t pos = 0;
  std::size_t k = 0;
  while (pos < input.size()) {
    const std::size_t want = sizes.empty() ? input.size() : sizes[std::min(k, sizes.size() - 1)];
    ++k;
    const std::size_t n = std::min(want == 0 ? 1 : want, input.size() - pos);
    const auto r = parser.consume(std::span<std::uint8_t>(input.data() + pos, n), rec);
    out.consumed += r.consumed;
    pos += n;
    if (r.error != close_code::none || r.closed) {
      out.error = r.error;
      out.closed = r.closed;
      break;
    }
  }
  out.events = std::move(rec.events);
  return out;
}

inline run_result feed_whole(bytes input, std::size_t max_message = 1 << 20, role parser_role = role::server) {
  return feed_chunked(std::move(input), {}, max_message, parser_role);
}

}  // namespace mles::ws::test
