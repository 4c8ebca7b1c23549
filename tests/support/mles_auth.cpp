// SipHash-2-4 through OpenSSL's EVP_MAC "SIPHASH" (size 8), for computing join auth values.
#include "support/mles_auth.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdio>
#include <stdexcept>

namespace mles::test {

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::string_view data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  if (mac == nullptr) throw std::runtime_error("EVP_MAC_fetch(SIPHASH) failed");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  std::size_t size = 8;
  unsigned int c_rounds = 2;
  unsigned int d_rounds = 4;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
      OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &c_rounds),
      OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &d_rounds),
      OSSL_PARAM_construct_end(),
  };
  unsigned char out[8] = {};
  std::size_t out_len = 0;
  const bool ok = ctx != nullptr && EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
                  EVP_MAC_final(ctx, out, &out_len, sizeof out) == 1 && out_len == 8;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) throw std::runtime_error("SipHash computation failed");
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | out[i];
  return value;
}

std::string mles_auth(std::string_view uid, std::string_view channel, const std::optional<std::string>& secret) {
  std::string data{uid};
  data += channel;
  if (secret) data += *secret;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(siphash24({}, data)));
  return buf;
}

}  // namespace mles::test
