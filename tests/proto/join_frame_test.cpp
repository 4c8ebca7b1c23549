// Tests for proto::parse_join_frame: the join frame rules (JSON object, uid/channel
// non-empty ASCII strings, optional string auth, unknown members ignored, hostile input).
#include "proto/join_frame.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mles::proto {
namespace {

boost::system::error_code parse(std::string_view text) {
  join_frame out;
  return parse_join_frame(text, out);
}

TEST(join_frame, parses_uid_and_channel) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":"alice","channel":"example"})", out));
  EXPECT_EQ(out.uid, "alice");
  EXPECT_EQ(out.channel, "example");
  EXPECT_FALSE(out.auth.has_value());
}

TEST(join_frame, parses_spec_example_with_spaces) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame("{ \"uid\":\"alice\", \"channel\":\"example\" }\n", out));
  EXPECT_EQ(out.uid, "alice");
}

TEST(join_frame, parses_auth) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":"u","channel":"c","auth":"deadbeef"})", out));
  ASSERT_TRUE(out.auth.has_value());
  EXPECT_EQ(*out.auth, "deadbeef");
}

TEST(join_frame, treats_null_auth_as_absent) {
  join_frame out;
  out.auth = "stale";
  ASSERT_FALSE(parse_join_frame(R"({"uid":"u","channel":"c","auth":null})", out));
  EXPECT_FALSE(out.auth.has_value());
}

TEST(join_frame, keeps_empty_auth_string) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":"u","channel":"c","auth":""})", out));
  ASSERT_TRUE(out.auth.has_value());
  EXPECT_EQ(*out.auth, "");
}

TEST(join_frame, ignores_unknown_members_of_any_shape) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(
      R"({"v":2,"uid":"u","x":{"a":[1,2,{"b":null}]},"channel":"c","n":1.5e3,"t":true})", out));
  EXPECT_EQ(out.uid, "u");
  EXPECT_EQ(out.channel, "c");
}

TEST(join_frame, decodes_json_escapes) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":"a\"b\\c\/d\u0041","channel":"\t"})", out));
  EXPECT_EQ(out.uid, "a\"b\\c/dA");
  EXPECT_EQ(out.channel, "\t");
}

TEST(join_frame, accepts_base64_like_strings) {
  // Real clients send encrypted, base64-like uid and channel.
  EXPECT_FALSE(parse(R"({"uid":"q83vEjRWeJA+/w==","channel":"AAECAwQFBgcICQ=="})"));
}

TEST(join_frame, rejects_non_json_and_non_objects) {
  for (const std::string_view text :
       {"", " ", "hello", "{", "}", R"({"uid":"u","channel":"c")", R"({"uid":"u","channel":"c"}x)",
        R"({"uid":"u","channel":"c"}{})", "[]", R"(["uid","channel"])", "null", "true", "42",
        R"("uid")", R"({"uid":"u",})", R"({'uid':'u','channel':'c'})",
        "{\"uid\":\"u\",\"channel\":\"c\"} // comment"}) {
    EXPECT_EQ(parse(text), errc::join_not_json) << text;
  }
}

TEST(join_frame, rejects_missing_or_empty_uid) {
  EXPECT_EQ(parse(R"({"channel":"c"})"), errc::join_missing_uid);
  EXPECT_EQ(parse(R"({"uid":"","channel":"c"})"), errc::join_missing_uid);
  EXPECT_EQ(parse(R"({})"), errc::join_missing_uid);
  EXPECT_EQ(parse(R"({"UID":"u","channel":"c"})"), errc::join_missing_uid);  // keys are case-sensitive
}

TEST(join_frame, rejects_uid_of_wrong_type) {
  for (const std::string_view text :
       {R"({"uid":1,"channel":"c"})", R"({"uid":null,"channel":"c"})", R"({"uid":true,"channel":"c"})",
        R"({"uid":["u"],"channel":"c"})", R"({"uid":{"u":1},"channel":"c"})"}) {
    EXPECT_EQ(parse(text), errc::join_missing_uid) << text;
  }
}

TEST(join_frame, rejects_missing_empty_or_mistyped_channel) {
  EXPECT_EQ(parse(R"({"uid":"u"})"), errc::join_missing_channel);
  EXPECT_EQ(parse(R"({"uid":"u","channel":""})"), errc::join_missing_channel);
  EXPECT_EQ(parse(R"({"uid":"u","channel":7})"), errc::join_missing_channel);
  EXPECT_EQ(parse(R"({"uid":"u","channel":null})"), errc::join_missing_channel);
}

TEST(join_frame, rejects_non_ascii_uid_or_channel) {
  EXPECT_EQ(parse("{\"uid\":\"b\xC3\xA9\",\"channel\":\"c\"}"), errc::join_non_ascii);   // raw é
  EXPECT_EQ(parse("{\"uid\":\"u\",\"channel\":\"\xE2\x82\xAC\"}"), errc::join_non_ascii);  // raw €
  EXPECT_EQ(parse(R"({"uid":"\u00e9","channel":"c"})"), errc::join_non_ascii);  // escaped é
  EXPECT_EQ(parse(R"({"uid":"u","channel":"\ud83d\ude00"})"), errc::join_non_ascii);
}

TEST(join_frame, allows_non_ascii_auth_and_unknown_members) {
  // Only uid and channel are restricted; auth is compared as a hex value later.
  join_frame out;
  EXPECT_FALSE(parse_join_frame("{\"uid\":\"u\",\"channel\":\"c\",\"auth\":\"\xC3\xA9\",\"n\":\"\xC3\xA9\"}", out));
}

TEST(join_frame, rejects_auth_that_is_not_a_string) {
  for (const std::string_view text :
       {R"({"uid":"u","channel":"c","auth":1})", R"({"uid":"u","channel":"c","auth":false})",
        R"({"uid":"u","channel":"c","auth":["a"]})", R"({"uid":"u","channel":"c","auth":{}})"}) {
    EXPECT_EQ(parse(text), errc::join_bad_auth_type) << text;
  }
}

TEST(join_frame, rejects_invalid_utf8_bytes) {
  EXPECT_EQ(parse("{\"uid\":\"\xFF\",\"channel\":\"c\"}"), errc::join_not_json);
  // a raw control character (here NUL) inside a JSON string is not allowed
  constexpr char raw_nul[] = "{\"uid\":\"a\0b\",\"channel\":\"c\"}";
  EXPECT_EQ(parse(std::string_view(raw_nul, sizeof raw_nul - 1)), errc::join_not_json);
}

TEST(join_frame, accepts_escaped_nul_as_ascii) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":"a\u0000b","channel":"c"})", out));
  EXPECT_EQ(out.uid, std::string("a\0b", 3));
}

TEST(join_frame, duplicate_keys_keep_the_last_value) {
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":"first","channel":"c","uid":"second"})", out));
  EXPECT_EQ(out.uid, "second");
}

TEST(join_frame, survives_deep_nesting) {
  // The object is level 1; the depth limit (32) refuses anything nested deeper.
  for (const std::size_t depth : {32u, 33u, 1000u, 100000u}) {
    std::string text = R"({"uid":"u","channel":"c","x":)";
    text.append(depth, '[');
    text.append(depth, ']');
    text += "}";
    EXPECT_EQ(parse(text), errc::join_not_json) << depth;
  }
  std::string objects;
  for (int i = 0; i < 50000; ++i) objects += R"({"a":)";
  EXPECT_EQ(parse(objects), errc::join_not_json);
}

TEST(join_frame, accepts_moderate_nesting_in_unknown_members) {
  std::string text = R"({"uid":"u","channel":"c","x":)";
  text.append(20, '[');
  text.append(20, ']');
  text += "}";
  EXPECT_FALSE(parse(text));
}

TEST(join_frame, handles_large_frames) {
  const std::string uid(100000, 'u');
  join_frame out;
  ASSERT_FALSE(parse_join_frame(R"({"uid":")" + uid + R"(","channel":"c"})", out));
  EXPECT_EQ(out.uid, uid);
}

}  // namespace
}  // namespace mles::proto
