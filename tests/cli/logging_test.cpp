// Tests for log level parsing, including the reference's RUST_LOG forms.
#include "app/logging.hpp"
#include "net/log_limit.hpp"

#include <chrono>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

using mles::app::parse_log_level;
using spdlog::level::level_enum;

TEST(log_level, parses_plain_names) {
  EXPECT_EQ(parse_log_level("debug"), level_enum::debug);
  EXPECT_EQ(parse_log_level("WARN"), level_enum::warn);
  EXPECT_EQ(parse_log_level("warning"), level_enum::warn);
  EXPECT_EQ(parse_log_level("off"), level_enum::off);
  EXPECT_FALSE(parse_log_level("loud"));
  EXPECT_FALSE(parse_log_level(""));
}

TEST(log_level, parses_rust_log_lists_preferring_the_mles_entry) {
  EXPECT_EQ(parse_log_level("mles=debug"), level_enum::debug);
  EXPECT_EQ(parse_log_level("info,warp=warn"), level_enum::info);
  EXPECT_EQ(parse_log_level("warn, mles=trace ,hyper=info"), level_enum::trace);
  EXPECT_FALSE(parse_log_level("warp=info"));
}

// --log-format json: one object per line with stable keys, every string escaped.
namespace {

std::chrono::system_clock::time_point at_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

}  // namespace

TEST(log_format, parses_text_and_json_only) {
  EXPECT_EQ(mles::app::parse_log_format("text"), mles::app::log_format::text);
  EXPECT_EQ(mles::app::parse_log_format("json"), mles::app::log_format::json);
  EXPECT_FALSE(mles::app::parse_log_format("JSON "));
  EXPECT_FALSE(mles::app::parse_log_format(""));
}

TEST(log_format, json_line_has_rfc3339_utc_milliseconds_level_and_message) {
  // 2026-12-02T01:02:03.045Z
  EXPECT_EQ(mles::app::json_log_line(at_ms(1796173323045), level_enum::warn, "hello"),
            R"({"ts":"2026-12-02T01:02:03.045Z","level":"warn","msg":"hello"})");
  EXPECT_EQ(mles::app::json_log_line(at_ms(0), level_enum::err, ""),
            R"({"ts":"1970-01-01T00:00:00.000Z","level":"error","msg":""})");
}

TEST(log_format, json_escapes_quotes_backslashes_controls_and_invalid_utf8) {
  const std::string msg = std::string("say \"hi\" \\ path\n\ttab\r\x01\x1f\x7f end ") +
                          "\xc3\xa9" /* é, kept */ + "\xff" /* invalid */ + "\xc3" /* truncated */ + "(" +
                          "\xed\xa0\x80" /* surrogate */ + "\xe2\x82\xac" /* €, kept */ + std::string(1, '\0') + "z";
  const std::string line = mles::app::json_log_line(at_ms(0), level_enum::info, msg);
  EXPECT_EQ(line, std::string(R"({"ts":"1970-01-01T00:00:00.000Z","level":"info","msg":")") +
                      R"(say \"hi\" \\ path\n\ttab\r\u0001\u001f\u007f end )" + "\xc3\xa9" +
                      "\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" + "\xe2\x82\xac" + R"(\u0000z"})");
}

TEST(log_format, json_line_carries_the_threads_structured_fields) {
  const std::string remote = "127.0.0.1:4242", reason = "join \"refused\"";
  std::string line;
  {
    mles::net::log_fields outer{{"remote", remote}};
    mles::net::log_fields inner{{"reason", reason}};
    line = mles::app::json_log_line(at_ms(0), level_enum::info, "m");
  }
  EXPECT_EQ(line, R"({"ts":"1970-01-01T00:00:00.000Z","level":"info","msg":"m","remote":"127.0.0.1:4242",)"
                  R"("reason":"join \"refused\""})");
  // Gone with the objects.
  EXPECT_EQ(mles::app::json_log_line(at_ms(0), level_enum::info, "m"),
            R"({"ts":"1970-01-01T00:00:00.000Z","level":"info","msg":"m"})");
}
