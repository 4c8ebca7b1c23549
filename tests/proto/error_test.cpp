// Tests for the "mles" error category: names and messages fit logs and close reasons.
#include "proto/error.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace mles::proto {
namespace {

constexpr errc last = errc::too_many_channels;  // the highest value

TEST(mles_error, has_mles_category_and_short_messages) {
  for (int e = static_cast<int>(errc::join_not_text); e <= static_cast<int>(last); ++e) {
    const boost::system::error_code ec = static_cast<errc>(e);
    EXPECT_TRUE(ec.failed());
    EXPECT_STREQ(ec.category().name(), "mles");
    const std::string message = ec.message();
    EXPECT_FALSE(message.empty());
    EXPECT_LE(message.size(), 100u) << message;
    EXPECT_NE(message, "unknown mles error") << e;
  }
}

TEST(mles_error, ok_is_not_a_failure_and_compares_with_enum) {
  const boost::system::error_code ec = errc::auth_mismatch;
  EXPECT_EQ(ec, errc::auth_mismatch);
  EXPECT_NE(ec, errc::auth_required);
  EXPECT_EQ(ec.message(), "auth mismatch");
  EXPECT_EQ(make_error_code(errc::join_timeout).value(), static_cast<int>(errc::join_timeout));
}

TEST(mles_error, keeps_join_values_and_appends_envelope_values) {
  EXPECT_EQ(static_cast<int>(errc::join_not_text), 1);
  EXPECT_EQ(static_cast<int>(errc::join_timeout), 10);
  EXPECT_EQ(static_cast<int>(errc::envelope_truncated), 11);
  EXPECT_EQ(static_cast<int>(errc::envelope_bad_sequence), 15);
}

TEST(mles_error, messages_are_distinct) {
  std::set<std::string> seen;
  for (int e = 0; e <= static_cast<int>(last); ++e) {
    EXPECT_TRUE(seen.insert(make_error_code(static_cast<errc>(e)).message()).second) << e;
  }
}

}  // namespace
}  // namespace mles::proto
