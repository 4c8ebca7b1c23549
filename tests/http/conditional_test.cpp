// Tests for validators and conditional requests: ETag, HTTP-date (RFC 9110 §5.6.7 example),
// 304 decisions, Cache-Control policy, and single byte ranges (206/416).
#include "http/conditional.hpp"

#include <gtest/gtest.h>

namespace mles::http {
namespace {

using namespace std::chrono_literals;

// RFC 9110 §5.6.7's example instant: Sun, 06 Nov 1994 08:49:37 GMT.
constexpr sys_seconds example_time = std::chrono::sys_days(std::chrono::year(1994) / 11 / 6) + 8h + 49min + 37s;

TEST(http_date, formats_imf_fixdate) {
  EXPECT_EQ(format_http_date(example_time), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(sys_seconds{}), "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(http_date, parses_all_three_formats) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), example_time);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), example_time);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), example_time);
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-37 00:00:00 GMT"),
            std::chrono::sys_days(std::chrono::year(2037) / 1 / 1));
}

TEST(http_date, rejects_malformed_dates) {
  for (const char* bad : {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 06 Nov 1994 08:49 GMT", "Sun, -6 Nov 1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
                          "Sun, 29 Feb 1994 08:49:37 GMT"}) {
    EXPECT_FALSE(parse_http_date(bad)) << bad;
  }
}

TEST(http_date, format_and_parse_round_trip) {
  const sys_seconds t = std::chrono::sys_days(std::chrono::year(2024) / 2 / 29) + 23h + 59min + 59s;
  EXPECT_EQ(parse_http_date(format_http_date(t)), t);
}

TEST(make_etag, is_strong_and_changes_with_size_mtime_and_encoding) {
  const auto t = std::chrono::system_clock::time_point(example_time);
  const std::string base = make_etag(1234, t, content_encoding::identity);
  EXPECT_TRUE(base.starts_with('"'));
  EXPECT_TRUE(base.ends_with('"'));
  EXPECT_NE(base, make_etag(1235, t, content_encoding::identity));
  EXPECT_NE(base, make_etag(1234, t + 1ns, content_encoding::identity));
  const std::string br = make_etag(1234, t, content_encoding::br);
  EXPECT_NE(base, br);
  EXPECT_TRUE(br.ends_with("-br\""));
}

TEST(is_not_modified, matches_if_none_match_with_weak_comparison) {
  const auto t = std::chrono::system_clock::time_point(example_time);
  const std::string etag = make_etag(10, t, content_encoding::identity);
  EXPECT_TRUE(is_not_modified(etag, "", etag, t));
  EXPECT_TRUE(is_not_modified("W/" + etag, "", etag, t));
  EXPECT_TRUE(is_not_modified("\"other\", " + etag, "", etag, t));
  EXPECT_TRUE(is_not_modified("*", "", etag, t));
  EXPECT_FALSE(is_not_modified("\"other\"", "", etag, t));
  EXPECT_FALSE(is_not_modified(make_etag(10, t, content_encoding::gzip), "", etag, t));
  EXPECT_FALSE(is_not_modified("garbage", "", etag, t));
}

TEST(is_not_modified, if_none_match_takes_precedence_over_if_modified_since) {
  const auto t = std::chrono::system_clock::time_point(example_time);
  const std::string etag = make_etag(10, t, content_encoding::identity);
  EXPECT_FALSE(is_not_modified("\"other\"", "Sun, 06 Nov 1994 08:49:37 GMT", etag, t));
}

TEST(is_not_modified, compares_if_modified_since_in_whole_seconds) {
  const auto t = std::chrono::system_clock::time_point(example_time) + 500ms;
  const std::string etag = make_etag(10, t, content_encoding::identity);
  EXPECT_TRUE(is_not_modified("", "Sun, 06 Nov 1994 08:49:37 GMT", etag, t));
  EXPECT_TRUE(is_not_modified("", "Sun, 06 Nov 1994 09:00:00 GMT", etag, t));
  EXPECT_FALSE(is_not_modified("", "Sun, 06 Nov 1994 08:49:36 GMT", etag, t));
  EXPECT_FALSE(is_not_modified("", "not a date", etag, t));
  EXPECT_FALSE(is_not_modified("", "", etag, t));
}

TEST(cache_control_for, revalidates_html_and_caches_other_assets) {
  EXPECT_EQ(cache_control_for("text/html; charset=utf-8"), "no-cache");
  EXPECT_EQ(cache_control_for("text/javascript; charset=utf-8"), "public, max-age=3600");
  EXPECT_EQ(cache_control_for("image/png"), "public, max-age=3600");
}

TEST(parse_range, accepts_the_three_single_range_forms) {
  auto r = parse_range("bytes=0-99", 1000);
  EXPECT_EQ(r.status, range_status::partial);
  EXPECT_EQ(r.range.first, 0u);
  EXPECT_EQ(r.range.last, 99u);
  r = parse_range("bytes=900-", 1000);
  EXPECT_EQ(r.status, range_status::partial);
  EXPECT_EQ(r.range.first, 900u);
  EXPECT_EQ(r.range.last, 999u);
  r = parse_range("bytes=-100", 1000);
  EXPECT_EQ(r.status, range_status::partial);
  EXPECT_EQ(r.range.first, 900u);
  EXPECT_EQ(r.range.last, 999u);
}

TEST(parse_range, clamps_to_the_file) {
  auto r = parse_range("bytes=500-5000", 1000);
  EXPECT_EQ(r.status, range_status::partial);
  EXPECT_EQ(r.range.last, 999u);
  r = parse_range("bytes=-5000", 1000);
  EXPECT_EQ(r.range.first, 0u);
  EXPECT_EQ(r.range.last, 999u);
  r = parse_range("bytes=0-99999999999999999999999", 1000);
  EXPECT_EQ(r.status, range_status::partial);
  EXPECT_EQ(r.range.last, 999u);
}

TEST(parse_range, unsatisfiable_when_starting_past_the_end) {
  EXPECT_EQ(parse_range("bytes=1000-", 1000).status, range_status::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=1000-2000", 1000).status, range_status::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 1000).status, range_status::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-", 0).status, range_status::unsatisfiable);
}

TEST(parse_range, ignores_malformed_multiple_or_foreign_ranges) {
  for (const char* header : {"", "bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=5-4", "bytes=0-1,3-4",
                             "items=0-1", "bytes=+1-2", "bytes=1--2", "bytes 0-1"}) {
    EXPECT_EQ(parse_range(header, 1000).status, range_status::full) << header;
  }
  EXPECT_EQ(parse_range("Bytes=0-0", 1000).status, range_status::partial);
}

TEST(content_range, formats_partial_and_unsatisfiable) {
  EXPECT_EQ(content_range({range_status::partial, {0, 99}}, 1000), "bytes 0-99/1000");
  EXPECT_EQ(content_range({range_status::unsatisfiable, {}}, 1000), "bytes */1000");
}

TEST(if_range_matches, needs_the_current_strong_etag_or_date) {
  const auto t = std::chrono::system_clock::time_point(example_time);
  const std::string etag = make_etag(10, t, content_encoding::identity);
  EXPECT_TRUE(if_range_matches("", etag, t));
  EXPECT_TRUE(if_range_matches(etag, etag, t));
  EXPECT_FALSE(if_range_matches("\"old\"", etag, t));
  EXPECT_FALSE(if_range_matches("W/" + etag, etag, t));
  EXPECT_TRUE(if_range_matches("Sun, 06 Nov 1994 08:49:37 GMT", etag, t));
  EXPECT_FALSE(if_range_matches("Sun, 06 Nov 1994 08:49:36 GMT", etag, t));
  EXPECT_FALSE(if_range_matches("junk", etag, t));
}

}  // namespace
}  // namespace mles::http
