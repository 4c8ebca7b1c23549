// Tests for log level parsing, including the reference's RUST_LOG forms.
#include "app/logging.hpp"

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
