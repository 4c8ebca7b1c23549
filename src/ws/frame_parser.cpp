// Incremental RFC 6455 frame parser (RFC 6455 §5), server or client role: the other end's
// bytes in, messages and control frames out through frame_handler. Pure: no I/O; a session's
// read loop feeds it, and the fuzzer checks that every chunking gives the same events.
#include "ws/frame_parser.hpp"

#include <algorithm>
#include <cstring>

namespace mles::ws {

namespace {

constexpr std::size_t max_control_payload = 125;           // RFC 6455 §5.5
constexpr std::size_t idle_buffer_capacity = 64 * 1024;     // kept between messages
constexpr std::size_t first_buffer_reservation = 4 * 1024;  // smallest growth step

constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8u) != 0; }

}  // namespace

// Full header length once the second byte is known (the mask bit is checked before this):
// a masked frame (server role) carries a 4-byte key after the length.
std::size_t frame_parser::header_length(std::uint8_t b1) const noexcept {
  const std::uint8_t len7 = b1 & 0x7Fu;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (role_ == role::server ? 4 : 0);
}

// Server role: XORs n payload bytes at p with the frame's key, offset being p[0]'s position
// in the payload. Client role: frames from a server are not masked, nothing to do.
void frame_parser::unmask(std::uint8_t* payload, std::size_t n, std::uint64_t offset) const noexcept {
  if (role_ == role::server) apply_mask({payload, n}, mask_, offset);
}

close_code frame_parser::check_frame_start(std::uint8_t b0, std::uint8_t b1) const noexcept {
  // RFC 6455 §5.2: RSV1-3 must be 0 unless an extension defines them; none is negotiated.
  if ((b0 & 0x70u) != 0) return close_code::protocol_error;
  const auto op = static_cast<opcode>(b0 & 0x0Fu);
  switch (op) {
    case opcode::continuation:
    case opcode::text:
    case opcode::binary:
    case opcode::close:
    case opcode::ping:
    case opcode::pong:
      break;
    default:  // 3-7 and 0xB-0xF are reserved
      return close_code::protocol_error;
  }
  // RFC 6455 §5.1: a server must close the connection on an unmasked client frame, and a
  // client must close the connection on a masked server frame.
  const bool masked = (b1 & 0x80u) != 0;
  if (masked != (role_ == role::server)) return close_code::protocol_error;
  const bool fin = (b0 & 0x80u) != 0;
  if (is_control(op)) {
    // RFC 6455 §5.5: control frames are never fragmented and carry at most 125 bytes.
    if (!fin || (b1 & 0x7Fu) > max_control_payload) return close_code::protocol_error;
  } else if (op == opcode::continuation) {
    // RFC 6455 §5.4: a continuation needs a fragmented message in progress.
    if (message_op_ == opcode::continuation) return close_code::protocol_error;
  } else if (message_op_ != opcode::continuation) {
    // ...and a new text/binary frame may not start inside one.
    return close_code::protocol_error;
  }
  return close_code::none;
}

close_code frame_parser::begin_frame(const std::uint8_t* header) noexcept {
  const std::uint8_t b0 = header[0];
  const std::uint8_t len7 = header[1] & 0x7Fu;
  std::uint64_t length = len7;
  std::size_t at = 2;
  // RFC 6455 §5.2: the minimal number of bytes must be used to encode the length, and the
  // most significant bit of a 64-bit length must be 0.
  if (len7 == 126) {
    length = (std::uint64_t{header[2]} << 8) | header[3];
    at = 4;
    if (length < 126) return close_code::protocol_error;
  } else if (len7 == 127) {
    length = 0;
    for (std::size_t i = 0; i < 8; ++i) length = (length << 8) | header[2 + i];
    at = 10;
    if ((length >> 63) != 0 || length <= 0xFFFF) return close_code::protocol_error;
  }
  if (role_ == role::server) std::memcpy(mask_.data(), header + at, 4);
  frame_op_ = static_cast<opcode>(b0 & 0x0Fu);
  frame_fin_ = (b0 & 0x80u) != 0;
  if (!is_control(frame_op_)) {
    // Refuse an oversized message as soon as a header announces it, before any payload.
    const std::size_t so_far = frame_op_ == opcode::continuation ? message_.size() : 0;
    if (length > max_message_ - so_far) return close_code::message_too_big;
    if (frame_op_ != opcode::continuation) {
      message_op_ = frame_op_;
      utf8_.reset();
    }
  }
  frame_remaining_ = length;
  frame_offset_ = 0;
  control_have_ = 0;
  stage_ = stage::payload;
  return close_code::none;
}

bool frame_parser::append_to_message(const std::uint8_t* bytes, std::size_t n, frame_handler& handler) {
  if (n == 0) return true;
  const std::size_t needed = message_.size() + n;
  if (needed > message_.capacity()) {
    // Grow geometrically with what has arrived, never past what the frame announced (which
    // begin_frame bounded by max_message_): a client announcing 64 MiB and sending 10 bytes
    // must not cost 64 MiB.
    const std::size_t announced = message_.size() + static_cast<std::size_t>(frame_remaining_);
    const std::size_t step = std::max(message_.capacity() * 2, first_buffer_reservation);
    const std::size_t capacity = std::max(needed, std::min(announced, step));
    if (!handler.on_buffer_growth(capacity)) return false;
    message_.reserve(capacity);
  }
  message_.insert(message_.end(), bytes, bytes + n);
  return true;
}

void frame_parser::release_message_buffer() noexcept {
  message_.clear();
  if (message_.capacity() > idle_buffer_capacity) std::vector<std::uint8_t>().swap(message_);
}

bool frame_parser::mid_message() const noexcept {
  return stage_ == stage::payload || header_have_ != 0 || message_op_ != opcode::continuation;
}

void frame_parser::shrink() noexcept {
  if (!mid_message()) std::vector<std::uint8_t>().swap(message_);
}

consume_result frame_parser::consume(std::span<std::uint8_t> data, frame_handler& handler) {
  consume_result result;
  if (failed_ != close_code::none) {
    result.error = failed_;
    return result;
  }
  if (closed_) {
    result.closed = true;
    return result;
  }
  std::uint8_t* const base = data.data();
  const std::size_t size = data.size();
  std::size_t pos = 0;

  const auto fail = [&](close_code code) {
    failed_ = code;
    result.error = code;
    result.consumed = pos;
    return result;
  };
  const auto stop = [&] {
    result.consumed = pos;
    return result;
  };
  // Delivers a complete control frame; returns true to go on parsing.
  const auto on_control = [&](std::span<const std::uint8_t> payload) -> bool {
    switch (frame_op_) {
      case opcode::ping:
        return handler.on_ping(payload);
      case opcode::pong:
        return handler.on_pong(payload);
      default:
        break;
    }
    // RFC 6455 §5.5.1: an optional body of a 2-byte code then a UTF-8 reason.
    if (payload.empty()) {
      closed_ = true;
      result.closed = true;
      handler.on_close(static_cast<std::uint16_t>(close_code::no_status), {});
      return false;
    }
    if (payload.size() == 1) {
      fail(close_code::protocol_error);
      return false;
    }
    const auto code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
    if (!is_valid_received_close_code(code)) {
      fail(close_code::protocol_error);
      return false;
    }
    const auto reason = payload.subspan(2);
    if (!is_valid_utf8(reason)) {
      fail(close_code::invalid_payload);
      return false;
    }
    closed_ = true;
    result.closed = true;
    handler.on_close(code, std::string_view(reinterpret_cast<const char*>(reason.data()), reason.size()));
    return false;
  };

  for (;;) {
    if (stage_ == stage::header) {
      if (pos == size) break;
      const std::uint8_t* header = nullptr;
      if (header_have_ == 0 && size - pos >= 2) {
        // Fast path: the header lies in the input.
        if (const auto err = check_frame_start(base[pos], base[pos + 1]); err != close_code::none) {
          return fail(err);
        }
        const std::size_t need = header_length(base[pos + 1]);
        if (size - pos >= need) {
          header = base + pos;
          pos += need;
        }
      }
      if (header == nullptr) {
        // Slow path: gather the header in header_ across calls.
        while (header_have_ < 2 && pos < size) header_[header_have_++] = base[pos++];
        if (header_have_ < 2) break;
        if (const auto err = check_frame_start(header_[0], header_[1]); err != close_code::none) {
          return fail(err);
        }
        const std::size_t need = header_length(header_[1]);
        const std::size_t take = std::min(need - header_have_, size - pos);
        std::memcpy(header_.data() + header_have_, base + pos, take);
        header_have_ = static_cast<std::uint8_t>(header_have_ + take);
        pos += take;
        if (header_have_ < need) break;
        header = header_.data();
        header_have_ = 0;
      }
      if (const auto err = begin_frame(header); err != close_code::none) return fail(err);
    }

    // stage_ == payload
    const std::size_t avail = size - pos;
    std::uint8_t* const payload = base + pos;
    if (frame_offset_ == 0 && frame_remaining_ <= avail) {
      // The whole payload is in the input: unmask in place and hand out a span into it.
      const auto n = static_cast<std::size_t>(frame_remaining_);
      if (is_control(frame_op_)) {
        unmask(payload, n, 0);
        pos += n;
        frame_remaining_ = 0;
        stage_ = stage::header;
        if (!on_control({payload, n})) return stop();
        continue;
      }
      if (frame_fin_ && frame_op_ != opcode::continuation) {
        unmask(payload, n, 0);
        if (frame_op_ == opcode::text && !is_valid_utf8({payload, n})) {
          return fail(close_code::invalid_payload);
        }
        pos += n;
        frame_remaining_ = 0;
        stage_ = stage::header;
        message_op_ = opcode::continuation;
        if (!handler.on_message(frame_op_, {payload, n})) return stop();
        continue;
      }
    }

    // Buffered path: part of a fragmented message, or a frame split across reads.
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(frame_remaining_, avail));
    unmask(payload, take, frame_offset_);
    if (is_control(frame_op_)) {
      if (take != 0) {
        if (!control_) control_ = std::make_unique<std::uint8_t[]>(max_control_payload);
        std::memcpy(control_.get() + control_have_, payload, take);
      }
      control_have_ = static_cast<std::uint8_t>(control_have_ + take);
    } else {
      if (message_op_ == opcode::text && !utf8_.feed({payload, take})) {
        return fail(close_code::invalid_payload);
      }
      if (!append_to_message(payload, take, handler)) return fail(close_code::try_again_later);
    }
    pos += take;
    frame_remaining_ -= take;
    frame_offset_ += take;
    if (frame_remaining_ != 0) break;  // the input is exhausted mid-frame
    stage_ = stage::header;

    if (is_control(frame_op_)) {
      const std::size_t n = control_have_;
      control_have_ = 0;
      const std::unique_ptr<std::uint8_t[]> bytes = std::move(control_);  // freed after the call
      if (!on_control({bytes.get(), n})) return stop();
      continue;
    }
    if (!frame_fin_) continue;
    if (message_op_ == opcode::text && !utf8_.complete()) return fail(close_code::invalid_payload);
    const opcode op = message_op_;
    message_op_ = opcode::continuation;
    const bool go_on = handler.on_message(op, message_);
    release_message_buffer();
    if (!go_on) return stop();
  }
  result.consumed = pos;
  return result;
}

}  // namespace mles::ws
