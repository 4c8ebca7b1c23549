// Tests for the ws frame encoders (server → client unmasked, client → server masked), masking,
// and the received close-code rule.
#include "ws/frame.hpp"

#include "client_frames.hpp"
#include "ws/frame_parser.hpp"

#include <gtest/gtest.h>

#include <set>
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


// ---- client role: masked frames (RFC 6455 §5.1, §5.3) ---------------------------------------

constexpr masking_key rfc_key{0x37, 0xfa, 0x21, 0x3d};  // RFC 6455 §5.7

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bytes client_header_of(opcode op, std::uint64_t len, masking_key key, bool fin = true) {
  bytes out(max_client_header_size);
  out.resize(write_client_header(out.data(), op, len, key, fin));
  return out;
}

TEST(client_frame_encoder, encodes_rfc_masked_hello) {
  // RFC 6455 §5.7: a single-frame masked text message.
  EXPECT_EQ(encode_client_frame(opcode::text, as_bytes("Hello"), rfc_key),
            (bytes{0x81,                          // FIN, text
                   0x85,                          // MASK, length 5
                   0x37, 0xfa, 0x21, 0x3d,        // masking key
                   0x7f, 0x9f, 0x4d, 0x51, 0x58}));  // "Hello" XOR key
}

TEST(client_frame_encoder, header_is_server_header_with_mask_bit_and_key) {
  const masking_key key{0xA1, 0xB2, 0xC3, 0xD4};
  EXPECT_EQ(client_header_of(opcode::binary, 0, key), (bytes{0x82, 0x80, 0xA1, 0xB2, 0xC3, 0xD4}));
  EXPECT_EQ(client_header_of(opcode::binary, 125, key), (bytes{0x82, 0xFD, 0xA1, 0xB2, 0xC3, 0xD4}));
  EXPECT_EQ(client_header_of(opcode::binary, 126, key),  // MASK|126, 16-bit length, key
            (bytes{0x82, 0xFE, 0x00, 0x7E, 0xA1, 0xB2, 0xC3, 0xD4}));
  EXPECT_EQ(client_header_of(opcode::binary, 65535, key),
            (bytes{0x82, 0xFE, 0xFF, 0xFF, 0xA1, 0xB2, 0xC3, 0xD4}));
  EXPECT_EQ(client_header_of(opcode::binary, 65536, key),  // MASK|127, 64-bit length, key
            (bytes{0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xA1, 0xB2, 0xC3, 0xD4}));
  EXPECT_EQ(client_header_of(opcode::text, 5, key, false)[0], 0x01);  // first fragment
  EXPECT_EQ(client_header_of(opcode::continuation, 5, key)[0], 0x80);
  EXPECT_EQ(client_header_of(opcode::ping, 0, key)[0], 0x89);
}

TEST(client_frame_encoder, header_size_is_server_size_plus_key) {
  for (const std::uint64_t n : {std::uint64_t{0}, std::uint64_t{125}, std::uint64_t{126}, std::uint64_t{65535},
                                std::uint64_t{65536}, ~std::uint64_t{0} >> 1}) {
    EXPECT_EQ(client_header_size(n), server_header_size(n) + 4) << n;
  }
  EXPECT_EQ(client_header_size(0), 6u);
  EXPECT_EQ(client_header_size(126), 8u);
  EXPECT_EQ(client_header_size(65536), max_client_header_size);
}

TEST(client_frame_encoder, masks_payload_after_extended_header) {
  const bytes payload(70000, 0x00);  // zeros: the masked payload is the key repeated
  const masking_key key{1, 2, 3, 4};
  const auto frame = encode_client_frame(opcode::binary, payload, key);
  ASSERT_EQ(frame.size(), 14u + payload.size());
  for (std::size_t i = 0; i < payload.size(); ++i) ASSERT_EQ(frame[14 + i], key[i % 4]) << i;
}

TEST(client_frame_encoder, round_trips_through_a_server_role_parser) {
  for (const std::size_t n : {0u, 1u, 7u, 8u, 9u, 125u, 126u, 1000u, 65535u, 65536u, 100000u}) {
    bytes payload(n);
    for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<std::uint8_t>(i * 31 + 7);
    const masking_key key = random_mask();
    auto wire = encode_client_frame(opcode::binary, payload, key);
    frame_parser parser(1 << 20, role::server);
    test::recorder rec;
    const auto r = parser.consume(wire, rec);
    ASSERT_EQ(r.error, close_code::none) << n;
    ASSERT_EQ(r.consumed, wire.size());
    ASSERT_EQ(rec.events, (std::vector<test::event>{test::message(opcode::binary, payload)})) << n;
  }
}

TEST(client_frame_encoder, fragments_round_trip_through_a_server_role_parser) {
  auto wire = encode_client_frame(opcode::text, as_bytes("Hel"), random_mask(), false);
  const auto ping = encode_client_frame(opcode::ping, as_bytes("p"), random_mask());
  const auto last = encode_client_frame(opcode::continuation, as_bytes("lo"), random_mask());
  wire.insert(wire.end(), ping.begin(), ping.end());
  wire.insert(wire.end(), last.begin(), last.end());
  frame_parser parser(1024);
  test::recorder rec;
  EXPECT_EQ(parser.consume(wire, rec).error, close_code::none);
  EXPECT_EQ(rec.events, (std::vector<test::event>{test::ping("p"), test::message(opcode::text, "Hello")}));
}

TEST(client_close_frame, encodes_masked_code_then_reason) {
  EXPECT_EQ(encode_client_close_frame(close_code::normal, "bye", rfc_key),
            (bytes{0x88, 0x85,                     // FIN close; MASK, len 5
                   0x37, 0xfa, 0x21, 0x3d,         // key
                   0x03 ^ 0x37, 0xE8 ^ 0xfa,       // 1000, masked
                   'b' ^ 0x21, 'y' ^ 0x3d, 'e' ^ 0x37}));
  EXPECT_EQ(encode_client_close_frame(close_code::none, "ignored", rfc_key),
            (bytes{0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d}));
  EXPECT_EQ(encode_client_close_frame(close_code::no_status, {}, rfc_key),
            (bytes{0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d}));
}

TEST(client_close_frame, truncates_reason_like_the_server_close) {
  const std::string reason = std::string(120, 'a') + "\xF0\x9F\x98\x80zz";
  auto wire = encode_client_close_frame(close_code::going_away, reason, rfc_key);
  const auto server = encode_close_frame(close_code::going_away, reason);
  ASSERT_EQ(wire.size(), server.size() + 4);  // same body, plus the key
  frame_parser parser(1024);
  test::recorder rec;
  ASSERT_TRUE(parser.consume(wire, rec).closed);
  EXPECT_EQ(rec.events, (std::vector<test::event>{test::close(1001, std::string(120, 'a'))}));
}

TEST(apply_mask, matches_byte_rule_at_every_offset_and_length) {
  const masking_key key{0x11, 0x22, 0x33, 0x44};
  for (std::uint64_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n = 0; n < 40; ++n) {
      bytes data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i);
      apply_mask(data, key, offset);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(data[i], static_cast<std::uint8_t>(i ^ key[(offset + i) % 4])) << offset << "," << n;
      }
    }
  }
}

TEST(apply_mask, masking_in_pieces_equals_masking_at_once) {
  const masking_key key{0x9A, 0x01, 0xFF, 0x5C};
  bytes whole(1000);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<std::uint8_t>(i * 13);
  bytes pieces = whole;
  apply_mask(whole, key);
  std::size_t at = 0;
  for (const std::size_t n : {1u, 2u, 3u, 5u, 8u, 13u, 21u, 947u}) {
    apply_mask(std::span<std::uint8_t>(pieces).subspan(at, n), key, at);
    at += n;
  }
  EXPECT_EQ(pieces, whole);
}

TEST(apply_mask, is_an_involution) {
  bytes data(77, 0x5A);
  const bytes original = data;
  const masking_key key = random_mask();
  apply_mask(data, key, 3);
  apply_mask(data, key, 3);
  EXPECT_EQ(data, original);
}

TEST(random_mask, gives_distinct_keys) {
  // 4-byte keys from a CSPRNG: 300 draws (past one batch) collide with probability ~1e-5.
  std::set<masking_key> seen;
  for (int i = 0; i < 300; ++i) seen.insert(random_mask());
  EXPECT_GE(seen.size(), 299u);
}

}  // namespace
}  // namespace mles::ws
