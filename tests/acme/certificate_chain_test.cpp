// Tests for the issued chain helpers: PEM splitting, leaf notBefore/notAfter, and renewal at
// two thirds of the lifetime.
#include "acme/certificate_chain.hpp"

#include "acme/error.hpp"
#include "openssl_test_support.hpp"

#include <gtest/gtest.h>

namespace mles::acme {
namespace {

using namespace std::chrono;

TEST(split_pem_chain, returns_each_certificate_in_order) {
  const std::string leaf = test::make_certificate("20250101000000Z", "20250401000000Z");
  const std::string intermediate = test::make_certificate("20240101000000Z", "20300101000000Z");
  const auto parts = split_pem_chain(leaf + "\n" + intermediate);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], leaf);
  EXPECT_EQ(parts[1], intermediate);
}

TEST(split_pem_chain, skips_other_blocks_and_truncated_ones) {
  const std::string cert = test::make_certificate("20250101000000Z", "20250401000000Z");
  const std::string key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  EXPECT_EQ(split_pem_chain(key + cert + "-----BEGIN CERTIFICATE-----\nAAA").size(), 1u);
  EXPECT_TRUE(split_pem_chain("").empty());
  EXPECT_TRUE(split_pem_chain("garbage").empty());
}

TEST(read_leaf_validity, reads_the_first_certificate) {
  const std::string chain = test::make_certificate("20250101000000Z", "20250401120000Z") +
                            test::make_certificate("20240101000000Z", "20300101000000Z");
  const auto validity = read_leaf_validity(chain);
  ASSERT_TRUE(validity);
  EXPECT_EQ(validity->not_before, sys_days{2025y / January / 1});
  EXPECT_EQ(validity->not_after, sys_days{2025y / April / 1} + 12h);
}

TEST(read_leaf_validity, clamps_dates_beyond_the_clock_range) {
  // X.509's "no well-defined expiration" 99991231235959Z is past system_clock's range.
  const auto validity = read_leaf_validity(test::make_certificate("20250101000000Z", "99991231235959Z"));
  ASSERT_TRUE(validity);
  EXPECT_EQ(validity->not_after, system_clock::time_point::max());
  EXPECT_GT(renewal_time(*validity), validity->not_before);
}

TEST(read_leaf_validity, refuses_text_without_certificate) {
  EXPECT_EQ(read_leaf_validity("").error(), errc::invalid_pem);
  EXPECT_EQ(read_leaf_validity("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").error(),
            errc::invalid_pem);
}

TEST(renewal_time, is_two_thirds_into_the_lifetime) {
  // 90-day certificate → renew 30 days before notAfter (like the reference server).
  const certificate_validity v{sys_days{2025y / January / 1}, sys_days{2025y / January / 1} + days{90}};
  EXPECT_EQ(renewal_time(v), sys_days{2025y / January / 1} + days{60});
  // pebble with certificateValidityPeriod 120 s → renew after 80 s.
  const certificate_validity short_lived{v.not_before, v.not_before + 120s};
  EXPECT_EQ(renewal_time(short_lived), v.not_before + 80s);
}

}  // namespace
}  // namespace mles::acme
