// Incremental UTF-8 validator (RFC 3629) for text messages split across frames and reads.
// Pure: no I/O. Rejects overlongs, surrogates and code points above U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace mles::ws {

class utf8_validator {
 public:
  // Feeds the next bytes; returns false as soon as the input cannot be valid UTF-8.
  bool feed(std::span<const std::uint8_t> bytes) noexcept;
  // True when everything fed so far ends on a code point boundary.
  bool complete() const noexcept { return state_ == 0; }
  void reset() noexcept { state_ = 0; }

 private:
  std::uint32_t state_ = 0;
};

// One-shot check of a whole buffer.
bool is_valid_utf8(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace mles::ws
