// Tests for acme::parse_retry_after: delta-seconds, IMF-fixdate relative to a given now,
// past dates, whitespace, and refusals.
#include "acme/retry_after.hpp"

#include <gtest/gtest.h>

namespace mles::acme {
namespace {

using namespace std::chrono;

// 1994-11-06 08:49:37 UTC, RFC 9110's example date.
const system_clock::time_point rfc_example = sys_days{1994y / November / 6} + 8h + 49min + 37s;

TEST(retry_after, reads_delta_seconds) {
  EXPECT_EQ(parse_retry_after("120", rfc_example), 120s);
  EXPECT_EQ(parse_retry_after("0", rfc_example), 0s);
  EXPECT_EQ(parse_retry_after(" 7\t", rfc_example), 7s);
  EXPECT_EQ(parse_retry_after("0005", rfc_example), 5s);
}

TEST(retry_after, caps_huge_delta_seconds) {
  EXPECT_EQ(parse_retry_after("99999999999999999999999", rfc_example), seconds{366LL * 24 * 3600});
}

TEST(retry_after, reads_imf_fixdate_relative_to_now) {
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", rfc_example), 120s);
  EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", rfc_example), 24h);
}

TEST(retry_after, far_future_date_is_capped_without_overflow) {
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 3988 08:49:37 GMT", rfc_example), seconds{366LL * 24 * 3600});
}

TEST(retry_after, past_date_means_now) {
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:36 GMT", rfc_example), 0s);
}

TEST(retry_after, refuses_other_text) {
  EXPECT_FALSE(parse_retry_after("", rfc_example));
  EXPECT_FALSE(parse_retry_after("-5", rfc_example));
  EXPECT_FALSE(parse_retry_after("1.5", rfc_example));
  EXPECT_FALSE(parse_retry_after("soon", rfc_example));
  EXPECT_FALSE(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", rfc_example));  // obsolete RFC 850
  EXPECT_FALSE(parse_retry_after("Sun Nov  6 08:49:37 1994", rfc_example));        // obsolete asctime
  EXPECT_FALSE(parse_retry_after("Sun, 31 Feb 1994 08:49:37 GMT", rfc_example));
  EXPECT_FALSE(parse_retry_after("Sun, 06 Nov 1994 24:49:37 GMT", rfc_example));
  EXPECT_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", rfc_example));
  EXPECT_FALSE(parse_retry_after("Xyz, 06 Nov 1994 08:49:37 GMT", rfc_example));
}

}  // namespace
}  // namespace mles::acme
