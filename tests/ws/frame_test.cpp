// Tests for the ws frame encoder (server → client, unmasked) and the received close-code rule.
#include "ws/frame.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mles::ws {
namespace {

using bytes = std::vector<std::uint8_t>;

bytes header_of(opcode op, std::uint64_t len, bool fin = true) {
  bytes out(max_server_header_size);
  out.resize(write_server_header(out.data(), op, len, fin));
  return out;
}

TEST(frame_encoder, uses_minimal_length_encoding_at_every_edge) {
  EXPECT_EQ(header_of(opcode::binary, 0), (bytes{0x82, 0x00}));    // FIN binary, len 0
  EXPECT_EQ(header_of(opcode::binary, 125), (bytes{0x82, 0x7D}));  // 7-bit length 125
  EXPECT_EQ(header_of(opcode::binary, 126), (bytes{0x82, 0x7E, 0x00, 0x7E}));    // 126 → 16-bit
  EXPECT_EQ(header_of(opcode::binary, 65535), (bytes{0x82, 0x7E, 0xFF, 0xFF}));  // 16-bit max
  EXPECT_EQ(header_of(opcode::binary, 65536),  // 65536 → 64-bit
            (bytes{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
  EXPECT_EQ(header_of(opcode::binary, 0x0102030405060708ull),
            (bytes{0x82, 0x7F, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
}

TEST(frame_encoder, header_size_matches_length_form) {
  EXPECT_EQ(server_header_size(0), 2u);
  EXPECT_EQ(server_header_size(125), 2u);
  EXPECT_EQ(server_header_size(126), 4u);
  EXPECT_EQ(server_header_size(65535), 4u);
  EXPECT_EQ(server_header_size(65536), 10u);
  EXPECT_EQ(server_header_size(~std::uint64_t{0} >> 1), 10u);
}

TEST(frame_encoder, writes_opcode_and_fin) {
  EXPECT_EQ(header_of(opcode::text, 5)[0], 0x81);
  EXPECT_EQ(header_of(opcode::text, 5, false)[0], 0x01);    // first fragment
  EXPECT_EQ(header_of(opcode::continuation, 5)[0], 0x80);   // last fragment
  EXPECT_EQ(header_of(opcode::ping, 0)[0], 0x89);
  EXPECT_EQ(header_of(opcode::pong, 0)[0], 0x8A);
  EXPECT_EQ(header_of(opcode::close, 0)[0], 0x88);
}

TEST(frame_encoder, encodes_rfc_unmasked_hello) {
  // RFC 6455 §5.7: a single-frame unmasked text message.
  const std::string hello = "Hello";
  const auto frame = encode_server_frame(
      opcode::text, {reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size()});
  EXPECT_EQ(frame, (bytes{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST(frame_encoder, encodes_payload_after_extended_header) {
  bytes payload(65536, 0xAB);
  const auto frame = encode_server_frame(opcode::binary, payload);
  ASSERT_EQ(frame.size(), 10u + 65536u);
  EXPECT_EQ(frame[1], 0x7F);
  EXPECT_EQ(bytes(frame.begin() + 10, frame.end()), payload);
}

TEST(close_frame, encodes_code_big_endian_then_reason) {
  EXPECT_EQ(encode_close_frame(close_code::protocol_error, "bad"),
            (bytes{0x88, 0x05,  // FIN close, len 5
                   0x03, 0xEA,  // 1002
                   'b', 'a', 'd'}));
  EXPECT_EQ(encode_close_frame(close_code::normal), (bytes{0x88, 0x02, 0x03, 0xE8}));
}

TEST(close_frame, none_and_no_status_give_an_empty_body) {
  EXPECT_EQ(encode_close_frame(close_code::none), (bytes{0x88, 0x00}));
  EXPECT_EQ(encode_close_frame(close_code::no_status, "ignored"), (bytes{0x88, 0x00}));
}

TEST(close_frame, truncates_reason_to_fit_125_bytes) {
  const auto frame = encode_close_frame(close_code::going_away, std::string(300, 'x'));
  ASSERT_EQ(frame.size(), 2u + 125u);
  EXPECT_EQ(frame[1], 125);
  EXPECT_EQ(frame[2], 0x03);
  EXPECT_EQ(frame[3], 0xE9);  // 1001
  const auto exact = encode_close_frame(close_code::going_away, std::string(123, 'y'));
  EXPECT_EQ(exact.size(), 2u + 125u);
}

TEST(close_frame, never_splits_a_utf8_sequence) {
  // 122 ASCII + "€" (3 bytes) = 125 > 123: the whole € goes.
  const auto euro = encode_close_frame(close_code::normal, std::string(122, 'a') + "\xE2\x82\xAC");
  EXPECT_EQ(euro.size(), 2u + 2u + 122u);
  // 121 ASCII + "é" (2 bytes) = 123: fits exactly.
  const auto e_acute = encode_close_frame(close_code::normal, std::string(121, 'a') + "\xC3\xA9");
  EXPECT_EQ(e_acute.size(), 2u + 2u + 123u);
  // 120 ASCII + "😀" (4 bytes) + more = cut after the 120.
  const auto emoji = encode_close_frame(close_code::normal, std::string(120, 'a') + "\xF0\x9F\x98\x80zz");
  EXPECT_EQ(emoji.size(), 2u + 2u + 120u);
}

TEST(close_code_rule, accepts_codes_a_peer_may_send) {
  for (const int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                         3999, 4000, 4999}) {
    EXPECT_TRUE(is_valid_received_close_code(static_cast<std::uint16_t>(code))) << code;
  }
}

TEST(close_code_rule, rejects_reserved_and_local_only_codes) {
  for (const int code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(is_valid_received_close_code(static_cast<std::uint16_t>(code))) << code;
  }
}

}  // namespace
}  // namespace mles::ws
