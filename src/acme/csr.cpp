// PKCS#10 CSR for ACME finalize with a fresh P-256 key. Pure: no I/O.
#include "acme/csr.hpp"

#include "acme/error.hpp"
#include "acme/openssl_handles.hpp"
#include "acme/p256_key.hpp"

#include <boost/system/errc.hpp>

namespace mles::acme {

namespace {

using extension_stack_ptr = std::unique_ptr<STACK_OF(X509_EXTENSION), decltype([](STACK_OF(X509_EXTENSION) * s) {
                                              sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
                                            })>;

}  // namespace

boost::system::result<certificate_request> make_csr(std::span<const std::string> names) {
  if (names.empty()) return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
  const auto key = p256_key::generate();
  if (!key) return key.error();

  const openssl::x509_req_ptr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_pubkey(req.get(), key->native()) != 1) {
    return errc::crypto_failure;
  }
  const openssl::general_names_ptr san = openssl::dns_names(names.data(), names.data() + names.size());
  extension_stack_ptr extensions(sk_X509_EXTENSION_new_null());
  if (!san || !extensions) return errc::crypto_failure;
  X509_EXTENSION* san_ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, san.get());
  if (san_ext == nullptr) return errc::crypto_failure;
  if (sk_X509_EXTENSION_push(extensions.get(), san_ext) == 0) {
    X509_EXTENSION_free(san_ext);
    return errc::crypto_failure;
  }
  if (X509_REQ_add_extensions(req.get(), extensions.get()) != 1 ||
      X509_REQ_sign(req.get(), key->native(), EVP_sha256()) == 0) {
    return errc::crypto_failure;
  }

  const int size = i2d_X509_REQ(req.get(), nullptr);
  if (size <= 0) return errc::crypto_failure;
  certificate_request out;
  out.der.resize(static_cast<std::size_t>(size));
  auto* p = reinterpret_cast<unsigned char*>(out.der.data());
  if (i2d_X509_REQ(req.get(), &p) != size) return errc::crypto_failure;
  out.key_pem = key->to_pem();
  if (out.key_pem.empty()) return errc::crypto_failure;
  return out;
}

}  // namespace mles::acme
