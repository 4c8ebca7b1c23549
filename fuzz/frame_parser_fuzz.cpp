// libFuzzer target for ws::frame_parser (chunked feeding, like uWebSockets' makeChunked): input
// parsed whole, in chunks, and in chunks with a handler that stops after every event must give
// the same events and error, in the server role and in the client role. Input layout: see
// LLVMFuzzerTestOneInput.
#include "ws/frame_parser.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

namespace {

using namespace mles::ws;

void require(bool condition) {
  if (!condition) std::abort();
}

struct event {
  int kind = 0;  // 0 message, 1 ping, 2 pong, 3 close
  opcode op = opcode::continuation;
  std::vector<std::uint8_t> payload;
  std::uint16_t code = 0;
  bool operator==(const event&) const = default;
};

class recorder final : public frame_handler {
 public:
  recorder(std::size_t max_message, bool pause) : max_message_(max_message), pause_(pause) {}

  bool on_message(opcode op, std::span<const std::uint8_t> payload) override {
    require(op == opcode::text || op == opcode::binary);
    require(payload.size() <= max_message_);
    if (op == opcode::text) require(is_valid_utf8(payload));
    events.push_back({0, op, {payload.begin(), payload.end()}, 0});
    return !pause_;
  }
  bool on_ping(std::span<const std::uint8_t> payload) override {
    require(payload.size() <= 125);
    events.push_back({1, opcode::ping, {payload.begin(), payload.end()}, 0});
    return !pause_;
  }
  bool on_pong(std::span<const std::uint8_t> payload) override {
    require(payload.size() <= 125);
    events.push_back({2, opcode::pong, {payload.begin(), payload.end()}, 0});
    return !pause_;
  }
  void on_close(std::uint16_t code, std::string_view reason) override {
    require(code == 1005 ? reason.empty() : is_valid_received_close_code(code));
    require(reason.size() <= 123);
    const auto* p = reinterpret_cast<const std::uint8_t*>(reason.data());
    require(is_valid_utf8({p, reason.size()}));
    events.push_back({3, opcode::close, {p, p + reason.size()}, code});
  }

  std::vector<event> events;

 private:
  std::size_t max_message_;
  bool pause_;
};

struct outcome {
  std::vector<event> events;
  close_code error = close_code::none;
  bool closed = false;
  bool operator==(const outcome&) const = default;
};

// Chunk sizes from a small xorshift generator; style picks the size range.
class chunker {
 public:
  chunker(std::uint8_t style, std::uint8_t seed) : style_(style), state_((0x9E3779B9u ^ (seed * 0x01000193u)) | 1u) {}

  std::size_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    switch (style_) {
      case 0:
        return 1;  // byte by byte
      case 1:
        return 1 + state_ % 4;  // splits headers
      case 2:
        return 1 + state_ % 16;
      default:
        return 1 + state_ % 256;
    }
  }

 private:
  std::uint8_t style_;
  std::uint32_t state_;
};

constexpr std::array<std::size_t, 8> max_messages{0, 1, 125, 126, 1000, 65535, 65536, 1 << 20};

outcome run(std::span<const std::uint8_t> input, role parser_role, std::size_t max_message, chunker* chunks,
            bool pause) {
  std::vector<std::uint8_t> buffer(input.begin(), input.end());  // consume() unmasks in place
  frame_parser parser(max_message, parser_role);
  recorder rec(max_message, pause);
  outcome out;
  const auto finish = [&] {
    // Client role: frames from a server are not masked, so the input is never rewritten.
    if (parser_role == role::client) require(std::equal(buffer.begin(), buffer.end(), input.begin()));
    out.events = std::move(rec.events);
    return out;
  };
  std::size_t pos = 0;
  while (pos < buffer.size()) {
    const std::size_t n = chunks == nullptr ? buffer.size() : std::min(chunks->next(), buffer.size() - pos);
    const std::span<std::uint8_t> chunk(buffer.data() + pos, n);
    std::size_t used = 0;
    for (;;) {
      const consume_result r = parser.consume(chunk.subspan(used), rec);
      require(r.consumed <= n - used);
      used += r.consumed;
      if (r.error != close_code::none || r.closed) {
        require(!(r.error != close_code::none && r.closed));
        out.error = r.error;
        out.closed = r.closed;
        return finish();
      }
      if (used == n) break;
      // Only a handler that asked to stop leaves input unread, and only after a whole frame.
      require(pause && r.consumed > 0);
    }
    pos += n;
    if (!parser.mid_message()) {
      require(parser.buffered_bytes() == 0);
      parser.shrink();
    }
    require(parser.buffered_bytes() <= max_message);
  }
  return finish();
}

// Whole, chunked, and chunked with a pausing handler: the same outcome.
void check_role(std::span<const std::uint8_t> stream, role parser_role, std::size_t max_message,
                std::uint8_t style, std::uint8_t seed) {
  const outcome whole = run(stream, parser_role, max_message, nullptr, false);
  chunker chunks(style, seed);
  const outcome chunked = run(stream, parser_role, max_message, &chunks, false);
  require(chunked == whole);
  chunker chunks2(style, seed);
  const outcome paused = run(stream, parser_role, max_message, &chunks2, true);
  require(paused == whole);
}

}  // namespace

// Byte 0: max_message (bits 0-2) and chunking style (bits 3-4); byte 1: chunk-size seed;
// the rest: the byte stream, parsed in both roles. A stream is masked for one role at most, so
// the other role stops at its first frame header: running both costs little. (Bits 5-7 of
// byte 0 are unused, but fuzzer-made corpus files have them set: letting them pick the role
// would change what those files test.)
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_message = max_messages[data[0] & 7u];
  const auto style = static_cast<std::uint8_t>((data[0] >> 3) & 3u);
  const std::span<const std::uint8_t> stream(data + 2, size - 2);
  check_role(stream, role::server, max_message, style, data[1]);
  check_role(stream, role::client, max_message, style, data[1]);
  return 0;
}
