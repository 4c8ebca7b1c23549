// Incremental UTF-8 validator (RFC 3629) used by the frame parser for text messages and
// close reasons. Pure: no I/O. ASCII runs are checked 8 bytes at a time (chat is mostly ASCII).
#include "ws/utf8.hpp"

#include <cstring>

namespace mles::ws {

namespace {

// state_ layout: 0 = on a code point boundary; otherwise bits 16.. hold the number of
// continuation bytes still expected and bits 0..15 the range [lo, hi] the next byte must
// fall in (RFC 3629 §4: this range is what excludes overlongs, surrogates and > U+10FFFF).
constexpr std::uint32_t failed_state = 0xFFFFFFFFu;

constexpr std::uint32_t expect(std::uint32_t remaining, std::uint32_t lo, std::uint32_t hi) {
  return (remaining << 16) | (lo << 8) | hi;
}

constexpr std::uint64_t high_bits = 0x8080808080808080ull;

}  // namespace

bool utf8_validator::feed(std::span<const std::uint8_t> bytes) noexcept {
  std::uint32_t state = state_;
  if (state == failed_state) return false;
  const std::uint8_t* p = bytes.data();
  const std::uint8_t* const end = p + bytes.size();
  while (p != end) {
    if (state == 0) {
      // Fast path: skip whole words of ASCII.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if ((word & high_bits) != 0) break;
        p += 8;
      }
      while (p != end && *p < 0x80) ++p;
      if (p == end) break;
      const std::uint8_t lead = *p++;
      if (lead < 0xC2) {  // stray continuation byte, or C0/C1 (always overlong)
        state_ = failed_state;
        return false;
      }
      if (lead < 0xE0) {
        state = expect(1, 0x80, 0xBF);
      } else if (lead < 0xF0) {
        // E0: A0.. excludes overlongs; ED: ..9F excludes surrogates U+D800-DFFF.
        state = expect(2, lead == 0xE0 ? 0xA0 : 0x80, lead == 0xED ? 0x9F : 0xBF);
      } else if (lead < 0xF5) {
        // F0: 90.. excludes overlongs; F4: ..8F stops at U+10FFFF.
        state = expect(3, lead == 0xF0 ? 0x90 : 0x80, lead == 0xF4 ? 0x8F : 0xBF);
      } else {
        state_ = failed_state;
        return false;
      }
      continue;
    }
    const std::uint8_t byte = *p++;
    const std::uint32_t lo = (state >> 8) & 0xFFu;
    const std::uint32_t hi = state & 0xFFu;
    if (byte < lo || byte > hi) {
      state_ = failed_state;
      return false;
    }
    const std::uint32_t remaining = (state >> 16) - 1;
    state = remaining == 0 ? 0 : expect(remaining, 0x80, 0xBF);
  }
  state_ = state;
  return true;
}

bool is_valid_utf8(std::span<const std::uint8_t> bytes) noexcept {
  utf8_validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace mles::ws
