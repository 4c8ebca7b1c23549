// Incremental RFC 6455 frame parser for either role: bytes from the other end in, whole
// messages and control frames out through a handler. Pure: no I/O; fuzzed with chunked input.
// data path: socket bytes ─► frame_parser ─► session (join check / hub.publish) or peer link
#pragma once

#include "ws/frame.hpp"
#include "ws/utf8.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace mles::ws {

// Receives what the parser finds. Every span is valid only during the call.
// Returning false stops consume() at once (the session is closing); the rest of the
// input is left unread.
class frame_handler {
 public:
  // A complete data message (opcode text or binary), fragments already joined,
  // unmasked (server role), text already checked to be valid UTF-8.
  virtual bool on_message(opcode op, std::span<const std::uint8_t> payload) = 0;
  virtual bool on_ping(std::span<const std::uint8_t> payload) = 0;
  virtual bool on_pong(std::span<const std::uint8_t> payload) = 0;
  // A valid close frame. code is 1005 (no_status) when the frame had no body.
  // The parser consumes nothing after a close frame.
  virtual void on_close(std::uint16_t code, std::string_view reason) = 0;
  // The buffer for a message in progress is about to grow to `capacity` bytes. Returning
  // false refuses it: the parser fails with try_again_later (1013), a bound of the whole
  // server (not of this message) being reached.
  virtual bool on_buffer_growth(std::size_t capacity) {
    (void)capacity;
    return true;
  }

 protected:
  ~frame_handler() = default;
};

struct consume_result {
  // none, or the close code the server must send because the input broke a rule:
  //   protocol_error (1002): masking wrong for the role (RFC 6455 §5.1: an unmasked frame
  //     from a client, a masked frame from a server), RSV bits set (no extension is negotiated),
  //     unknown opcode, fragmented or >125-byte control frame, continuation without a
  //     started message, new data frame inside a fragmented message, non-minimal
  //     length encoding, 64-bit length with the top bit set, bad close frame body
  //     (1-byte payload, invalid code);
  //   invalid_payload (1007): text message or close reason that is not UTF-8;
  //   try_again_later (1013): the handler refused to let a message buffer grow;
  //   message_too_big (1009): message (sum of its fragments) over max_message.
  close_code error = close_code::none;
  // Bytes of the input consumed (all of it unless the handler stopped or on error/close).
  std::size_t consumed = 0;
  // True once a close frame was delivered to on_close.
  bool closed = false;
};

// Which end of the connection the parser reads for (RFC 6455 §5.1).
//   server: we are the server; every frame from the client must be masked, and is unmasked.
//   client: we are a client reading a server; no frame may be masked, nothing is unmasked.
enum class role : std::uint8_t { server, client };

class frame_parser {
 public:
  explicit frame_parser(std::size_t max_message, role r = role::server) noexcept
      : max_message_(max_message), role_(r) {}

  // Parses as much of data as possible, unmasking payload bytes in place (server role). A frame split
  // across calls is resumed on the next call; a whole unfragmented message found inside
  // data is handed out without copying; anything else is gathered in an internal buffer.
  // After an error or a close frame the parser must not be fed again.
  consume_result consume(std::span<std::uint8_t> data, frame_handler& handler);

  // True while a message (fragmented, or a frame split across reads) is half received.
  bool mid_message() const noexcept;
  // Bytes held for a message in progress (counted against memory limits).
  std::size_t buffered_bytes() const noexcept { return message_.size(); }
  // Memory held for it (what frame_handler::on_buffer_growth was asked for, or less).
  std::size_t buffer_capacity() const noexcept { return message_.capacity(); }
  // Frees the message buffer's memory when no message is in progress (idle sessions).
  void shrink() noexcept;

  std::size_t max_message() const noexcept { return max_message_; }
  role parser_role() const noexcept { return role_; }
  // Changes the limit for the next message (call between messages, e.g. after the join).
  void set_max_message(std::size_t n) noexcept { max_message_ = n; }

 private:
  // Implementation state; see frame_parser.cpp.
  enum class stage : std::uint8_t { header, payload };
  // (Ordered by size: no padding; every session keeps one.)
  std::size_t max_message_;
  // current frame
  std::uint64_t frame_remaining_ = 0;
  std::uint64_t frame_offset_ = 0;  // payload bytes of this frame already seen (mask phase)
  // current (possibly fragmented) data message
  std::vector<std::uint8_t> message_;
  // control frame being assembled across reads (made when one is split, freed after it:
  // an idle session keeps no 125-byte buffer)
  std::unique_ptr<std::uint8_t[]> control_;
  utf8_validator utf8_;
  masking_key mask_{};  // server role only
  std::array<std::uint8_t, 14> header_{};  // partial header bytes across calls
  role role_;
  stage stage_ = stage::header;
  std::uint8_t header_have_ = 0;
  opcode frame_op_ = opcode::continuation;
  bool frame_fin_ = false;
  opcode message_op_ = opcode::continuation;  // continuation = none in progress
  std::uint8_t control_have_ = 0;
  // terminal states: after an error or a close frame, consume() reads nothing more
  bool closed_ = false;
  close_code failed_ = close_code::none;

  close_code check_frame_start(std::uint8_t b0, std::uint8_t b1) const noexcept;
  std::size_t header_length(std::uint8_t b1) const noexcept;
  close_code begin_frame(const std::uint8_t* header) noexcept;
  void unmask(std::uint8_t* payload, std::size_t n, std::uint64_t offset) const noexcept;
  bool append_to_message(const std::uint8_t* bytes, std::size_t n, frame_handler& handler);
  void release_message_buffer() noexcept;
};

}  // namespace mles::ws
