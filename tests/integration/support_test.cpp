// Checks of the test client itself against published vectors, so that a failing integration
// test points at the server, not at the test's own framing or hashing.
#include "support/mles_auth.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

namespace mles::test {
namespace {

TEST(test_support, siphash_matches_the_paper_vector) {
  std::array<std::uint8_t, 16> key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  std::string message(15, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i);
  EXPECT_EQ(siphash24(key, message), 0xa129ca6149be45e5ULL);
}

TEST(test_support, mles_auth_is_lowercase_hex_of_the_zero_key_hash_over_uid_channel_secret) {
  const std::string auth = mles_auth("alice", "chan");
  EXPECT_EQ(auth, mles_auth("ali", "cechan")) << "uid and channel are hashed as one byte string";
  EXPECT_NE(auth, mles_auth("alice", "chan", std::string{"k"}));
  EXPECT_EQ(mles_auth("alice", "chan", std::string{"k"}), mles_auth("alice", "chank"));
  EXPECT_EQ(auth.find_first_not_of("0123456789abcdef"), std::string::npos) << auth;
  EXPECT_NE(auth.front(), '0') << "no leading zeros, like Rust's {:x}";
}

TEST(test_support, encodes_the_rfc6455_section_5_7_examples) {
  // A single-frame unmasked text message "Hello".
  EXPECT_EQ(encode_frame(frame_spec{.opcode = op::text, .masked = false, .payload = "Hello"}),
            std::string("\x81\x05Hello", 7));
  // Fragmented: "Hel" then "lo".
  EXPECT_EQ(encode_frame(frame_spec{.opcode = op::text, .fin = false, .masked = false, .payload = "Hel"}),
            std::string("\x01\x03Hel", 5));
  EXPECT_EQ(encode_frame(frame_spec{.opcode = op::continuation, .masked = false, .payload = "lo"}),
            std::string("\x80\x02lo", 4));
  // 256 bytes binary in one unmasked frame: 16-bit length.
  const std::string f256 = encode_frame(frame_spec{.opcode = op::binary, .masked = false, .payload = std::string(256, 'x')});
  EXPECT_EQ(f256.substr(0, 4), std::string("\x82\x7E\x01\x00", 4));
  // 64 KiB: 64-bit length.
  const std::string f64k = encode_frame(frame_spec{.opcode = op::binary, .masked = false, .payload = std::string(65536, 'x')});
  EXPECT_EQ(f64k.substr(0, 10), std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(test_support, masks_the_payload_with_the_key_it_sends) {
  const std::string f = encode_frame(frame_spec{.opcode = op::text, .payload = "Hello"});
  ASSERT_EQ(f.size(), 2u + 4u + 5u);
  EXPECT_EQ(static_cast<unsigned char>(f[1]), 0x85);
  std::string unmasked;
  for (std::size_t i = 0; i < 5; ++i) unmasked += static_cast<char>(f[6 + i] ^ f[2 + i % 4]);
  EXPECT_EQ(unmasked, "Hello");
}

TEST(test_support, forces_non_minimal_lengths_and_reserved_bits_on_request) {
  const std::string f16 = encode_frame(
      frame_spec{.opcode = op::text, .rsv = rsv::rsv1, .masked = false, .payload = "hi", .length = length_encoding::force_16});
  EXPECT_EQ(f16, std::string("\xC1\x7E\x00\x02hi", 6));
}

}  // namespace
}  // namespace mles::test
