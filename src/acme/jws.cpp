// ES256 flattened JWS for ACME requests. Pure: no I/O.
#include "acme/jws.hpp"

#include "acme/base64url.hpp"
#include "acme/error.hpp"
#include "acme/openssl_handles.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace mles::acme {

boost::system::result<std::string> sign_es256(const p256_key& key, std::string_view input) {
  const openssl::md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.native()) != 1) {
    return errc::crypto_failure;
  }
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t der_size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &der_size, data, input.size()) != 1) return errc::crypto_failure;
  std::string der(der_size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_size, data, input.size()) != 1) {
    return errc::crypto_failure;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const openssl::ecdsa_sig_ptr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_size)));
  if (!sig) return errc::crypto_failure;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32) return errc::crypto_failure;
  return raw;
}

boost::system::result<std::string> make_jws(const p256_key& key, std::string_view kid, std::string_view nonce,
                                            std::string_view url, std::string_view payload) {
  try {
    boost::json::object header;
    header["alg"] = "ES256";
    if (kid.empty()) {
      header["jwk"] = boost::json::parse(key.jwk());
    } else {
      header["kid"] = kid;
    }
    header["nonce"] = nonce;
    header["url"] = url;
    const std::string protected_b64 = base64url_encode(boost::json::serialize(header));
    const std::string payload_b64 = base64url_encode(payload);
    const auto signature = sign_es256(key, protected_b64 + "." + payload_b64);
    if (!signature) return signature.error();

    boost::json::object jws;
    jws["protected"] = protected_b64;
    jws["payload"] = payload_b64;
    jws["signature"] = base64url_encode(*signature);
    return boost::json::serialize(jws);
  } catch (const std::exception&) {
    return errc::crypto_failure;
  }
}

}  // namespace mles::acme
