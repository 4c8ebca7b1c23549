// Tests for proto::siphash24 against the SipHash reference vectors and OpenSSL's EVP_MAC
// SIPHASH for every length up to 100 (our own code serves the per-message hot path).
#include "proto/siphash.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <numeric>
#include <random>
#include <vector>

namespace {

std::array<std::uint8_t, 16> paper_key() {
  std::array<std::uint8_t, 16> key{};
  std::iota(key.begin(), key.end(), std::uint8_t{0});  // 00..0f
  return key;
}

// OpenSSL's SipHash-2-4 (8-byte output, read little-endian), as the reference to compare with.
std::uint64_t openssl_siphash(const std::array<std::uint8_t, 16>& key, const std::vector<std::uint8_t>& msg) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  std::size_t size = 8;
  unsigned c = 2, d = 4;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                         OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &c),
                         OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &d), OSSL_PARAM_construct_end()};
  std::array<std::uint8_t, 8> out{};
  std::size_t out_len = 0;
  const bool ok = EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, msg.data(), msg.size()) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &out_len, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  EXPECT_TRUE(ok);
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{out[i]} << (8 * i);
  return v;
}

}  // namespace

TEST(siphash24, matches_the_paper_vector_for_8_bytes_too) {
  std::vector<std::uint8_t> eight(8);
  std::iota(eight.begin(), eight.end(), std::uint8_t{0});
  EXPECT_EQ(mles::proto::siphash24(paper_key(), eight), 0x93f5f5799a932462ull);
}

TEST(siphash24, agrees_with_openssl_for_every_length_up_to_100) {
  std::mt19937 rng(2012);
  for (std::size_t n = 0; n <= 100; ++n) {
    std::array<std::uint8_t, 16> key{};
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
    std::vector<std::uint8_t> message(n);
    for (auto& b : message) b = static_cast<std::uint8_t>(rng());
    ASSERT_EQ(mles::proto::siphash24(key, message), openssl_siphash(key, message)) << n;
  }
}
