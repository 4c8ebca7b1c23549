// Tests for Accept-Encoding negotiation (RFC 9110 §12.5.3): preference order and q-values.
#include "http/accept_encoding.hpp"

#include <gtest/gtest.h>

namespace mles::http {
namespace {

TEST(negotiate_encoding, prefers_zstd_then_br_then_gzip) {
  EXPECT_EQ(negotiate_encoding("gzip, deflate, br, zstd"), content_encoding::zstd);
  EXPECT_EQ(negotiate_encoding("gzip, deflate, br"), content_encoding::br);
  EXPECT_EQ(negotiate_encoding("gzip, deflate"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("deflate"), content_encoding::identity);
}

TEST(negotiate_encoding, empty_or_absent_header_means_identity) {
  EXPECT_EQ(negotiate_encoding(""), content_encoding::identity);
  EXPECT_EQ(negotiate_encoding("  ,  "), content_encoding::identity);
  EXPECT_EQ(negotiate_encoding("identity"), content_encoding::identity);
}

TEST(negotiate_encoding, q_zero_excludes_a_coding) {
  EXPECT_EQ(negotiate_encoding("zstd;q=0, br, gzip"), content_encoding::br);
  EXPECT_EQ(negotiate_encoding("zstd;q=0.000, br;q=0, gzip"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("gzip;q=0"), content_encoding::identity);
}

TEST(negotiate_encoding, higher_q_value_wins_over_preference) {
  EXPECT_EQ(negotiate_encoding("zstd;q=0.5, gzip;q=1.0"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("zstd;q=0.8, br;q=0.9"), content_encoding::br);
  EXPECT_EQ(negotiate_encoding("zstd;q=0.9, br;q=0.9, gzip;q=0.9"), content_encoding::zstd);
}

TEST(negotiate_encoding, wildcard_covers_unlisted_codings) {
  EXPECT_EQ(negotiate_encoding("*"), content_encoding::zstd);
  EXPECT_EQ(negotiate_encoding("zstd;q=0, *"), content_encoding::br);
  EXPECT_EQ(negotiate_encoding("gzip, *;q=0"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("*;q=0"), content_encoding::identity);
}

TEST(negotiate_encoding, names_are_case_insensitive_and_x_gzip_is_gzip) {
  EXPECT_EQ(negotiate_encoding("GZIP"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("x-gzip"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("ZStd ; Q=1"), content_encoding::zstd);
}

TEST(negotiate_encoding, ignores_elements_with_malformed_q_values) {
  EXPECT_EQ(negotiate_encoding("zstd;q=2, br"), content_encoding::br);
  EXPECT_EQ(negotiate_encoding("zstd;q=abc, gzip"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("zstd;q=0.1234, gzip"), content_encoding::gzip);
  EXPECT_EQ(negotiate_encoding("zstd;q=1.001"), content_encoding::identity);
  EXPECT_EQ(negotiate_encoding("br;q=1.000"), content_encoding::br);
}

TEST(encoding_token, names_each_coding) {
  EXPECT_EQ(encoding_token(content_encoding::zstd), "zstd");
  EXPECT_EQ(encoding_token(content_encoding::br), "br");
  EXPECT_EQ(encoding_token(content_encoding::gzip), "gzip");
  EXPECT_EQ(encoding_token(content_encoding::identity), "identity");
}

}  // namespace
}  // namespace mles::http
