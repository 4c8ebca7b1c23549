// Tests for the channel <-> NATS subject token encoding: the documented examples, every byte
// value alone and in context, canonical-only decoding, injectivity on a generated set.
#include "cluster/subject.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mles::cluster {
namespace {

// A token must be one NATS subject token and, more strictly, stay within [A-Za-z0-9_=-].
void expect_safe(const std::string& token) {
  EXPECT_TRUE(is_subject_token(token)) << token;
  for (const char c : token) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '=';
    if (!ok) {  // one report per token, not one per byte of a 64 KiB name
      ADD_FAILURE() << "byte " << static_cast<int>(static_cast<unsigned char>(c)) << " in " << token;
      return;
    }
  }
}

void expect_round_trip(const std::string& channel) {
  const std::string token = channel_token(channel);
  expect_safe(token);
  const auto back = channel_from_token(token);
  ASSERT_TRUE(back.has_value()) << token;
  EXPECT_EQ(*back, channel) << token;
  EXPECT_EQ(channel_token(channel), token);  // deterministic
}

TEST(channel_token, ordinary_names_are_identity) {
  for (const std::string name : {"general", "Chat_Room-42", "a", "Z", "0", "_", "-", "--__--",
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"}) {
    EXPECT_EQ(channel_token(name), name);
    EXPECT_EQ(channel_from_token(name), name);
  }
}

TEST(channel_token, special_characters_are_escaped) {
  EXPECT_EQ(channel_token("a.b"), "a=2Eb");
  EXPECT_EQ(channel_token("*"), "=2A");
  EXPECT_EQ(channel_token(">"), "=3E");
  EXPECT_EQ(channel_token("a b"), "a=20b");
  EXPECT_EQ(channel_token("\t\r\n"), "=09=0D=0A");
  EXPECT_EQ(channel_token(std::string(1, '\0')), "=00");
  EXPECT_EQ(channel_token("\x7f"), "=7F");
  EXPECT_EQ(channel_token("$JS"), "=24JS");
  EXPECT_EQ(channel_token("foo.>"), "foo=2E=3E");
  EXPECT_EQ(channel_token("foo.*.bar"), "foo=2E=2A=2Ebar");
}

TEST(channel_token, escape_character_is_escaped) {
  EXPECT_EQ(channel_token("="), "=3D");
  EXPECT_EQ(channel_token("=3D"), "=3D3D");
  EXPECT_EQ(channel_token("a=2Eb"), "a=3D2Eb");
  EXPECT_EQ(channel_from_token("=3D3D"), "=3D");
  // "a.b" and the channel literally named "a=2Eb" do not collide.
  EXPECT_NE(channel_token("a.b"), channel_token("a=2Eb"));
}

TEST(channel_token, empty_channel_is_the_lone_escape) {
  EXPECT_EQ(channel_token(""), "=");
  EXPECT_EQ(channel_from_token("="), std::string());
}

TEST(channel_token, every_ascii_byte_alone_and_in_context) {
  for (int b = 0; b < 128; ++b) {
    const std::string c(1, static_cast<char>(b));
    expect_round_trip(c);
    expect_round_trip("x" + c);
    expect_round_trip(c + "y");
    expect_round_trip("ab" + c + "cd");
    expect_round_trip(c + c + c);
    expect_round_trip(c + "=" + c + "." + c);
  }
}

TEST(channel_token, every_byte_value_round_trips) {
  // Channels are ASCII, but the encoding is total: no byte value escapes the alphabet.
  std::string all;
  for (int b = 0; b < 256; ++b) {
    const std::string c(1, static_cast<char>(b));
    expect_round_trip(c);
    all += c;
  }
  expect_round_trip(all);
}

TEST(channel_token, long_names) {
  expect_round_trip(std::string(64 * 1024, 'a'));
  const std::string dots(64 * 1024, '.');
  EXPECT_EQ(channel_token(dots).size(), 3 * dots.size());
  expect_round_trip(dots);
}

TEST(channel_from_token, rejects_what_the_encoder_never_writes) {
  for (const std::string bad : {
           "",             // empty
           "==",           // lone escape inside a longer token
           "a=",           // truncated escape
           "a=2",          // truncated escape
           "=2e",          // lower-case hex is not canonical
           "=G0",          // not hex
           "=41",          // 'A' stands for itself
           "=5F",          // '_' stands for itself
           "=2D",          // '-' stands for itself
           "=30",          // '0' stands for itself
           "a.b",          // separator
           "*", ">",       // wildcards
           "a b", "a\tb",  // whitespace
           "$JS",          // '$' is not in the alphabet
           "a%2Eb",        // another escape convention
           "=3D=",         // trailing lone escape
       }) {
    EXPECT_FALSE(channel_from_token(bad).has_value()) << "'" << bad << "'";
  }
  EXPECT_FALSE(channel_from_token(std::string(1, '\0')).has_value());
  EXPECT_FALSE(channel_from_token("\x80").has_value());
}

TEST(channel_from_token, accepted_tokens_are_canonical) {
  // Whatever decodes re-encodes to exactly the token: a bijection, not just an inverse.
  const std::string alphabet = "aZ09_-=2E3DF";
  std::vector<std::string> tokens = {""};
  for (int len = 1; len <= 4; ++len) {
    std::vector<std::string> longer;
    for (const auto& t : tokens)
      for (const char c : alphabet) longer.push_back(t + c);
    for (const auto& t : longer) {
      if (const auto channel = channel_from_token(t)) {
        EXPECT_EQ(channel_token(*channel), t) << t;
      }
    }
    tokens = std::move(longer);
  }
}

TEST(channel_token, injective_on_a_generated_set) {
  // Every string of length 0..3 over an alphabet of plain bytes, the escape character, hex
  // digits, separators, wildcards and control bytes: distinct channels, distinct tokens.
  std::string alphabet = "aA0_-=2ED.*> $\x01\x7f\n";
  alphabet.push_back('\0');
  std::vector<std::string> channels = {""};
  std::vector<std::string> level = {""};
  for (int len = 1; len <= 3; ++len) {
    std::vector<std::string> next;
    for (const auto& s : level)
      for (const char c : alphabet) next.push_back(s + c);
    channels.insert(channels.end(), next.begin(), next.end());
    level = std::move(next);
  }
  std::set<std::string> tokens;
  for (const auto& c : channels) {
    const std::string token = channel_token(c);
    expect_safe(token);
    EXPECT_TRUE(tokens.insert(token).second) << "collision on " << token;
    EXPECT_EQ(channel_from_token(token), c);
  }
  EXPECT_EQ(tokens.size(), channels.size());
}

TEST(channel_subject, is_prefix_dot_one_token) {
  EXPECT_EQ(channel_subject("mles", "general"), "mles.general");
  EXPECT_EQ(channel_subject("mles", "a.b"), "mles.a=2Eb");
  EXPECT_EQ(channel_subject("mles.v1", ">"), "mles.v1.=3E");
  EXPECT_EQ(channel_subject("mles", "foo bar.*"), "mles.foo=20bar=2E=2A");
  // No channel adds a token: the subject has exactly the prefix's tokens plus one.
  for (int b = 0; b < 128; ++b) {
    const std::string s = channel_subject("mles", std::string(3, static_cast<char>(b)));
    EXPECT_EQ(s.find('.'), 4u);
    EXPECT_EQ(s.find('.', 5), std::string::npos);
  }
}

TEST(is_subject_token, follows_the_nats_rules) {
  EXPECT_TRUE(is_subject_token("abc"));
  EXPECT_TRUE(is_subject_token("a=2E"));
  EXPECT_FALSE(is_subject_token(""));
  EXPECT_FALSE(is_subject_token("a.b"));
  EXPECT_FALSE(is_subject_token("*"));
  EXPECT_FALSE(is_subject_token(">"));
  EXPECT_FALSE(is_subject_token("a b"));
  EXPECT_FALSE(is_subject_token("a\tb"));
  EXPECT_FALSE(is_subject_token("\x7f"));
  EXPECT_FALSE(is_subject_token("\x80"));
}

}  // namespace
}  // namespace mles::cluster

namespace {

TEST(bounded_token, short_tokens_are_the_plain_token) {
  EXPECT_EQ(mles::cluster::bounded_token("general"), "general");
  EXPECT_EQ(mles::cluster::bounded_token("a.b"), "a=2Eb");
  const std::string at_bound(mles::cluster::max_token_size, 'x');
  EXPECT_EQ(mles::cluster::bounded_token(at_bound), at_bound);
}

TEST(bounded_token, long_names_are_hashed_and_stay_distinct) {
  using mles::cluster::bounded_token;
  const std::string plain_long(mles::cluster::max_token_size + 1, 'x');
  const std::string exotic(100, '.');  // 300 bytes as a plain token
  const std::string a = bounded_token(plain_long), b = bounded_token(exotic);
  for (const auto* t : {&a, &b}) {
    EXPECT_EQ(t->size(), 66u);
    EXPECT_EQ(t->substr(0, 2), "=H");
    EXPECT_TRUE(mles::cluster::is_subject_token(*t));
    // Not a canonical token: no channel's plain token can equal it.
    EXPECT_FALSE(mles::cluster::channel_from_token(*t).has_value());
  }
  EXPECT_NE(a, b);
  EXPECT_EQ(bounded_token(exotic), b);  // deterministic
  std::string other = exotic;
  other.back() = ',';
  EXPECT_NE(bounded_token(other), b);
  // 257 times 'x': the digest printed by sha256sum.
  EXPECT_EQ(a, "=H15eb95a462ee20bd91a415ae2d4aed341288186ddaa2b37908f7d592f0c3f85f");
  EXPECT_EQ(mles::cluster::channel_subject("mles", plain_long), "mles." + a);
}

}  // namespace
