// Tests for ws::utf8_validator: RFC 3629 well-formedness, incremental feeding, ASCII fast path;
// checked exhaustively against a straightforward reference decoder for short sequences.
#include "ws/utf8.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace mles::ws {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool valid(std::string_view s) { return is_valid_utf8(as_bytes(s)); }

// Reference: decode code points one by one with explicit range checks (RFC 3629 §3/§4).
bool reference_valid(std::span<const std::uint8_t> b) {
  std::size_t i = 0;
  while (i < b.size()) {
    const std::uint32_t c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;  // continuation bytes
    std::uint32_t cp = 0;
    std::uint32_t min = 0;  // smallest code point of that length (shorter = overlong)
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= b.size()) return false;  // truncated
    for (std::size_t k = 1; k <= n; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b[i + k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

TEST(utf8_validator, accepts_well_formed_text) {
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("plain ascii, long enough to use the word path"));
  EXPECT_TRUE(valid("\xC2\x80"));                  // U+0080
  EXPECT_TRUE(valid("\xDF\xBF"));                  // U+07FF
  EXPECT_TRUE(valid("\xE0\xA0\x80"));              // U+0800
  EXPECT_TRUE(valid("\xED\x9F\xBF"));              // U+D7FF
  EXPECT_TRUE(valid("\xEE\x80\x80"));              // U+E000
  EXPECT_TRUE(valid("\xEF\xBF\xBF"));              // U+FFFF
  EXPECT_TRUE(valid("\xF0\x90\x80\x80"));          // U+10000
  EXPECT_TRUE(valid("\xF4\x8F\xBF\xBF"));          // U+10FFFF
  EXPECT_TRUE(valid("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!"));
}

TEST(utf8_validator, rejects_overlongs_surrogates_and_out_of_range) {
  EXPECT_FALSE(valid("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(valid("\xC1\xBF"));          // overlong
  EXPECT_FALSE(valid("\xE0\x9F\xBF"));      // overlong U+07FF
  EXPECT_FALSE(valid("\xF0\x8F\xBF\xBF"));  // overlong U+FFFF
  EXPECT_FALSE(valid("\xED\xA0\x80"));      // U+D800
  EXPECT_FALSE(valid("\xED\xBF\xBF"));      // U+DFFF
  EXPECT_FALSE(valid("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(valid("\xF5\x80\x80\x80"));
  EXPECT_FALSE(valid("\xFF"));
  EXPECT_FALSE(valid("\x80"));              // stray continuation
  EXPECT_FALSE(valid("a\xC3"));             // truncated at the end
  EXPECT_FALSE(valid("\xE2\x82("));         // bad continuation
}

TEST(utf8_validator, finds_non_ascii_at_every_position_of_a_word) {
  for (std::size_t at = 0; at < 24; ++at) {
    std::string s(24, 'a');
    s[at] = '\xFF';
    EXPECT_FALSE(valid(s)) << at;
    std::string ok(24, 'a');
    ok.replace(at, 1, "\xC3\xA9");
    EXPECT_TRUE(valid(ok)) << at;
  }
}

TEST(utf8_validator, keeps_state_across_feeds) {
  const std::string text = "x\xE2\x82\xAC\xF0\x9F\x98\x80 and more ascii \xC3\xA9";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= text.size(); ++cut2) {
      utf8_validator v;
      ASSERT_TRUE(v.feed(as_bytes(std::string_view(text).substr(0, cut))));
      ASSERT_TRUE(v.feed(as_bytes(std::string_view(text).substr(cut, cut2 - cut))));
      ASSERT_TRUE(v.feed(as_bytes(std::string_view(text).substr(cut2))));
      ASSERT_TRUE(v.complete());
    }
  }
}

TEST(utf8_validator, reports_incomplete_sequence_until_finished) {
  utf8_validator v;
  EXPECT_TRUE(v.feed(as_bytes("\xF0\x9F")));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed(as_bytes("\x98")));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed(as_bytes("\x80")));
  EXPECT_TRUE(v.complete());
}

TEST(utf8_validator, failure_is_sticky_until_reset) {
  utf8_validator v;
  EXPECT_FALSE(v.feed(as_bytes("\xC0")));
  EXPECT_FALSE(v.feed(as_bytes("abc")));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed(as_bytes("abc")));
  EXPECT_TRUE(v.complete());
}

TEST(utf8_validator, matches_reference_on_every_two_byte_sequence) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::uint8_t s[] = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b)};
      ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b;
    }
  }
}

TEST(utf8_validator, matches_reference_on_every_three_byte_sequence_with_a_lead) {
  for (int a = 0xC0; a < 0x100; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        const std::uint8_t s[] = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b),
                                  static_cast<std::uint8_t>(c)};
        ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c;
      }
    }
  }
}

TEST(utf8_validator, matches_reference_on_four_byte_sequences) {
  for (int a = 0xF0; a < 0xF8; ++a) {
    for (int b = 0x70; b < 0xD0; ++b) {
      for (int c : {0x00, 0x7F, 0x80, 0xA5, 0xBF, 0xC0}) {
        for (int d : {0x41, 0x80, 0x9A, 0xBF, 0xC2}) {
          const std::uint8_t s[] = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b),
                                    static_cast<std::uint8_t>(c), static_cast<std::uint8_t>(d)};
          ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

}  // namespace
}  // namespace mles::ws
