// Tests for the peer envelope codec: annotated wire bytes, every field's rule, round trips.
#include "proto/peer_envelope.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mles::proto {
namespace {

using bytes = std::vector<std::uint8_t>;

bytes ascii(std::string_view s) { return bytes(s.begin(), s.end()); }

bytes encode(std::uint8_t flags, std::string_view server, std::uint64_t instance, std::uint64_t seq,
             const bytes& payload) {
  bytes out(envelope_header_size(server));
  EXPECT_EQ(write_envelope_header(out.data(), flags, server, instance, seq), out.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// "alpha", instance 0x0102030405060708, seq 42, TEXT "hi".
const bytes alpha_hi = {
    0xE1,                                            // magic + version 1
    0x01,                                            // flags: text
    0x05,                                            // n = 5
    'a', 'l', 'p', 'h', 'a',                         // origin server id
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // instance
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,  // sequence 42
    'h', 'i',                                        // payload
};

// ---- encoding -------------------------------------------------------------------------------

TEST(peer_envelope, writes_each_field_big_endian) {
  EXPECT_EQ(encode(envelope_flags::text, "alpha", 0x0102030405060708, 42, ascii("hi")), alpha_hi);
}

TEST(peer_envelope, header_size_is_19_plus_server_id) {
  EXPECT_EQ(envelope_header_size("a"), 20u);
  EXPECT_EQ(envelope_header_size("alpha"), 24u);
  EXPECT_EQ(envelope_header_size(std::string(64, 'x')), 83u);
}

TEST(peer_envelope, writes_all_flags_and_extreme_numbers) {
  const bytes wire = encode(envelope_flags::all, "~", ~std::uint64_t{0}, ~std::uint64_t{0}, {});
  EXPECT_EQ(wire, (bytes{
                      0xE1, 0x07, 0x01, '~',                           // all flags, n = 1, "~"
                      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // instance 2^64-1
                      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // sequence 2^64-1
                  }));
}

// ---- parsing ------------------------------------------------------------------------------

TEST(peer_envelope, parses_annotated_example_into_views) {
  envelope e;
  ASSERT_FALSE(parse_envelope(alpha_hi, e).failed());
  EXPECT_EQ(e.flags, envelope_flags::text);
  EXPECT_EQ(e.server, "alpha");
  EXPECT_EQ(e.server.data(), reinterpret_cast<const char*>(alpha_hi.data() + 3));  // a view
  EXPECT_EQ(e.instance, 0x0102030405060708u);
  EXPECT_EQ(e.seq, 42u);
  EXPECT_EQ(bytes(e.payload.begin(), e.payload.end()), ascii("hi"));
  EXPECT_EQ(e.payload.data(), alpha_hi.data() + 24);
}

TEST(peer_envelope, parses_empty_payload) {
  const bytes wire(alpha_hi.begin(), alpha_hi.begin() + 24);
  envelope e;
  ASSERT_FALSE(parse_envelope(wire, e).failed());
  EXPECT_TRUE(e.payload.empty());
  EXPECT_EQ(e.seq, 42u);
}

TEST(peer_envelope, round_trips_every_flag_combination) {
  for (std::uint8_t flags = 0; flags <= envelope_flags::all; ++flags) {
    const bytes payload{0x00, 0xE1, 0xFF};
    const bytes wire = encode(flags, "srv-1.example:443", 0xDEADBEEF, 7, payload);
    envelope e;
    ASSERT_FALSE(parse_envelope(wire, e).failed()) << int{flags};
    EXPECT_EQ(e.flags, flags);
    EXPECT_EQ(e.server, "srv-1.example:443");
    EXPECT_EQ(e.instance, 0xDEADBEEFu);
    EXPECT_EQ(e.seq, 7u);
    EXPECT_EQ(bytes(e.payload.begin(), e.payload.end()), payload);
  }
}

TEST(peer_envelope, payload_is_not_inspected) {
  // A payload that itself looks like an envelope, or is not UTF-8, stays byte for byte.
  bytes payload = alpha_hi;
  payload.push_back(0x80);
  const bytes wire = encode(0, "b", 1, 1, payload);
  envelope e;
  ASSERT_FALSE(parse_envelope(wire, e).failed());
  EXPECT_EQ(bytes(e.payload.begin(), e.payload.end()), payload);
}

TEST(peer_envelope, refuses_bad_magic_or_version) {
  for (const int b0 : {0x00, 0xE0, 0xE2, 0x81, 0xFF}) {
    bytes wire = alpha_hi;
    wire[0] = static_cast<std::uint8_t>(b0);
    envelope e;
    EXPECT_EQ(parse_envelope(wire, e), errc::envelope_bad_magic) << b0;
  }
  envelope e;
  EXPECT_EQ(parse_envelope(bytes{0x7B}, e), errc::envelope_bad_magic);  // a member's '{'
}

TEST(peer_envelope, refuses_unknown_flag_bits) {
  for (int bit = 3; bit < 8; ++bit) {
    bytes wire = alpha_hi;
    wire[1] = static_cast<std::uint8_t>(wire[1] | (1u << bit));
    envelope e;
    EXPECT_EQ(parse_envelope(wire, e), errc::envelope_bad_flags) << bit;
  }
}

TEST(peer_envelope, refuses_server_id_length_0_or_over_64) {
  for (const int n : {0, 65, 200, 255}) {
    bytes wire = alpha_hi;
    wire[2] = static_cast<std::uint8_t>(n);
    wire.resize(3 + 255 + 16, 'x');  // long enough that length is not the problem
    envelope e;
    EXPECT_EQ(parse_envelope(wire, e), errc::envelope_bad_server_id) << n;
  }
}

TEST(peer_envelope, accepts_server_id_of_64_bytes) {
  const std::string id(64, 'z');
  const bytes wire = encode(0, id, 9, 1, ascii("x"));
  envelope e;
  ASSERT_FALSE(parse_envelope(wire, e).failed());
  EXPECT_EQ(e.server, id);
}

TEST(peer_envelope, refuses_server_id_bytes_outside_0x21_to_0x7e) {
  for (const int b : {0x00, 0x0A, 0x20, 0x7F, 0x80, 0xC3, 0xFF}) {
    bytes wire = alpha_hi;
    wire[5] = static_cast<std::uint8_t>(b);  // "al?ha"
    envelope e;
    EXPECT_EQ(parse_envelope(wire, e), errc::envelope_bad_server_id) << b;
  }
  for (const int b : {0x21, 0x7E}) {
    bytes wire = alpha_hi;
    wire[5] = static_cast<std::uint8_t>(b);
    envelope e;
    EXPECT_FALSE(parse_envelope(wire, e).failed()) << b;
  }
}

TEST(peer_envelope, refuses_sequence_0) {
  const bytes wire = {
      0xE1, 0x00, 0x01, 'a',                           // no flags, n = 1, "a"
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // instance 1
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // sequence 0
  };
  envelope e;
  EXPECT_EQ(parse_envelope(wire, e), errc::envelope_bad_sequence);
}

TEST(peer_envelope, refuses_every_truncation_of_the_header) {
  for (std::size_t n = 0; n < 24; ++n) {
    const bytes wire(alpha_hi.begin(), alpha_hi.begin() + static_cast<std::ptrdiff_t>(n));
    envelope e;
    EXPECT_EQ(parse_envelope(wire, e), errc::envelope_truncated) << n;
  }
}

TEST(peer_envelope, a_bad_field_wins_over_truncation) {
  envelope e;
  EXPECT_EQ(parse_envelope(bytes{0xE1, 0x08}, e), errc::envelope_bad_flags);
  EXPECT_EQ(parse_envelope(bytes{0xE1, 0x00, 0x00}, e), errc::envelope_bad_server_id);
  EXPECT_EQ(parse_envelope(bytes{0xE1, 0x00, 0x41}, e), errc::envelope_bad_server_id);
  EXPECT_EQ(parse_envelope(bytes{0xE1, 0x00, 0x01, ' '}, e), errc::envelope_truncated);  // id checked once whole
}

TEST(peer_envelope, server_id_rule) {
  EXPECT_TRUE(is_valid_server_id("a"));
  EXPECT_TRUE(is_valid_server_id("node-1.example.org:8443"));
  EXPECT_TRUE(is_valid_server_id("!~"));
  EXPECT_TRUE(is_valid_server_id(std::string(64, 'x')));
  EXPECT_FALSE(is_valid_server_id(""));
  EXPECT_FALSE(is_valid_server_id(std::string(65, 'x')));
  EXPECT_FALSE(is_valid_server_id("a b"));
  EXPECT_FALSE(is_valid_server_id("tab\there"));
  EXPECT_FALSE(is_valid_server_id("caf\xC3\xA9"));
  EXPECT_FALSE(is_valid_server_id(std::string_view("a\0b", 3)));
}

TEST(peer_envelope, errors_have_mles_messages) {
  envelope e;
  const auto ec = parse_envelope(bytes{}, e);
  EXPECT_EQ(ec, errc::envelope_truncated);
  EXPECT_STREQ(ec.category().name(), "mles");
  EXPECT_EQ(ec.message(), "peer envelope truncated");
}

}  // namespace
}  // namespace mles::proto
