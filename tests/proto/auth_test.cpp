// Tests for proto auth: SipHash-2-4 paper vector, the reference's hex parsing,
// and authenticator::verify with and without MLES_KEY.
#include "proto/auth.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace mles::proto {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

constexpr std::array<std::uint8_t, 16> zero_key{};

join_frame join(std::string uid, std::string channel, std::optional<std::string> auth = std::nullopt) {
  return {std::move(uid), std::move(channel), std::move(auth)};
}

TEST(siphash, matches_paper_vector) {
  // SipHash paper, Appendix A: key 00..0f, message 00..0e.
  std::array<std::uint8_t, 16> key{};
  std::array<std::uint8_t, 15> message{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(siphash24(key, message), 0xa129ca6149be45e5ull);
}

TEST(siphash, matches_reference_implementation_vectors) {
  // First entries of the reference vectors (vectors.h, 64-bit output, key 00..0f, message
  // 00..len-1), as little-endian u64.
  std::array<std::uint8_t, 16> key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  const std::array<std::uint8_t, 8> empty_message{};
  EXPECT_EQ(siphash24(key, std::span(empty_message).first(0)), 0x726fdb47dd0e0e31ull);
  const std::array<std::uint8_t, 1> one{0x00};
  EXPECT_EQ(siphash24(key, one), 0x74f839c593dc67fdull);
}

TEST(siphash, concatenation_is_what_is_hashed) {
  // hash(uid ‖ channel) is a plain byte stream: the split point does not matter.
  authenticator auth(std::nullopt);
  EXPECT_EQ(auth.expected_auth("ab", "c"), auth.expected_auth("a", "bc"));
  std::uint64_t value = 0;
  ASSERT_TRUE(parse_auth_hex(auth.expected_auth("ab", "c")).has_value());
  value = *parse_auth_hex(auth.expected_auth("ab", "c"));
  EXPECT_EQ(value, siphash24(zero_key, as_bytes("abc")));
}

TEST(parse_auth_hex, accepts_what_from_str_radix_accepts) {
  EXPECT_EQ(parse_auth_hex("0"), 0u);
  EXPECT_EQ(parse_auth_hex("f"), 15u);
  EXPECT_EQ(parse_auth_hex("DeadBeef"), 0xdeadbeefu);
  EXPECT_EQ(parse_auth_hex("+1a"), 0x1au);
  EXPECT_EQ(parse_auth_hex("ffffffffffffffff"), ~std::uint64_t{0});
  EXPECT_EQ(parse_auth_hex("0000000000000000000000ffffffffffffffff"), ~std::uint64_t{0});
  EXPECT_EQ(parse_auth_hex("a129ca6149be45e5"), 0xa129ca6149be45e5ull);
}

TEST(parse_auth_hex, rejects_everything_else) {
  for (const std::string_view bad : {"", "+", "-", "-1", "++1", "+-1", " 1", "1 ", "0x1f", "g", "1g",
                                     "10000000000000000", "fffffffffffffffff", "1_000", "\xC3\xA9"}) {
    EXPECT_FALSE(parse_auth_hex(bad).has_value()) << bad;
  }
}

TEST(authenticator, keyless_accepts_join_without_auth) {
  const authenticator auth(std::nullopt);
  EXPECT_FALSE(auth.has_secret());
  EXPECT_FALSE(auth.verify(join("alice", "example")));
}

TEST(authenticator, keyless_accepts_matching_auth) {
  const authenticator auth(std::nullopt);
  const std::string hex = auth.expected_auth("alice", "example");
  EXPECT_EQ(parse_auth_hex(hex), siphash24(zero_key, as_bytes("aliceexample")));
  EXPECT_FALSE(auth.verify(join("alice", "example", hex)));
  // upper case, '+' and leading zeros are the same value
  std::string upper = hex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_FALSE(auth.verify(join("alice", "example", "+000" + upper)));
}

TEST(authenticator, keyless_refuses_wrong_auth) {
  const authenticator auth(std::nullopt);
  const std::string hex = auth.expected_auth("alice", "example");
  EXPECT_EQ(auth.verify(join("alice", "other", hex)), errc::auth_mismatch);
  EXPECT_EQ(auth.verify(join("alice", "example", "deadbeef")), errc::auth_mismatch);
  EXPECT_EQ(auth.verify(join("alice", "example", "not hex")), errc::auth_mismatch);
  EXPECT_EQ(auth.verify(join("alice", "example", "")), errc::auth_mismatch);
}

TEST(authenticator, keyed_requires_auth) {
  const authenticator auth(std::string("secret"));
  EXPECT_TRUE(auth.has_secret());
  EXPECT_EQ(auth.verify(join("user1", "chan1")), errc::auth_required);
}

TEST(authenticator, keyed_accepts_hash_including_the_key) {
  const authenticator auth(std::string("secret"));
  const std::string hex = auth.expected_auth("user1", "chan1");
  EXPECT_EQ(parse_auth_hex(hex), siphash24(zero_key, as_bytes("user1chan1secret")));
  EXPECT_FALSE(auth.verify(join("user1", "chan1", hex)));
}

TEST(authenticator, keyed_refuses_keyless_hash_and_wrong_auth) {
  const authenticator keyed(std::string("secret"));
  const authenticator keyless(std::nullopt);
  EXPECT_EQ(keyed.verify(join("user1", "chan1", keyless.expected_auth("user1", "chan1"))),
            errc::auth_mismatch);
  EXPECT_EQ(keyed.verify(join("user", "chan", "deadbeef")), errc::auth_mismatch);
  EXPECT_EQ(keyed.verify(join("user1", "chan1", "zz")), errc::auth_mismatch);
}

TEST(authenticator, empty_secret_still_requires_auth) {
  const authenticator auth(std::string{});
  EXPECT_EQ(auth.verify(join("u", "c")), errc::auth_required);
  // hash(uid ‖ channel ‖ "") is the keyless hash
  EXPECT_EQ(auth.expected_auth("u", "c"), authenticator(std::nullopt).expected_auth("u", "c"));
  EXPECT_FALSE(auth.verify(join("u", "c", auth.expected_auth("u", "c"))));
}

TEST(authenticator, expected_auth_is_lowercase_hex_without_leading_zeros) {
  const authenticator auth(std::nullopt);
  for (int i = 0; i < 300; ++i) {
    const std::string uid = "user" + std::to_string(i);
    const std::string hex = auth.expected_auth(uid, "chan");
    ASSERT_FALSE(hex.empty());
    ASSERT_LE(hex.size(), 16u);
    ASSERT_TRUE(hex == "0" || hex[0] != '0') << hex;
    for (const char c : hex) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
    ASSERT_FALSE(auth.verify(join(uid, "chan", hex)));
  }
}

}  // namespace
}  // namespace mles::proto
