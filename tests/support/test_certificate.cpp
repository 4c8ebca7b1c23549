// Self-signed test certificate through OpenSSL's X509 API; temp_dir through mkdtemp.
#include "support/test_certificate.hpp"

#include <openssl/evp.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace mles::test {
namespace {

struct file_closer {
  void operator()(FILE* f) const { std::fclose(f); }
};

std::unique_ptr<FILE, file_closer> open_for_write(const std::filesystem::path& p) {
  std::unique_ptr<FILE, file_closer> f{std::fopen(p.c_str(), "wb")};
  if (!f) throw std::runtime_error("cannot write " + p.string());
  return f;
}

}  // namespace

void write_test_certificate(const std::filesystem::path& cert_pem, const std::filesystem::path& key_pem,
                            const std::string& host) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-256"), &EVP_PKEY_free};
  std::unique_ptr<X509, decltype(&X509_free)> cert{X509_new(), &X509_free};
  if (!key || !cert) throw std::runtime_error("test certificate: key or X509 allocation failed");
  // A random serial and a random organisation make every certificate's subject (= issuer)
  // unique: several of these trusted at once (a CA bundle of self-signed certificates, as
  // for --peer-ca) are then told apart by name, as RFC 5280 §4.1.2.4 and §4.1.2.2 expect.
  unsigned char random[8];
  if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("test certificate: RAND_bytes failed");
  random[0] &= 0x7f;  // a positive serial
  std::string organisation = "mles test certificate ";
  for (unsigned char b : random) {
    static constexpr char hex[] = "0123456789abcdef";
    organisation += hex[b >> 4];
    organisation += hex[b & 0xf];
  }
  X509_set_version(cert.get(), 2);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial{BN_bin2bn(random, sizeof random, nullptr), &BN_free};
  if (!serial || BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    throw std::runtime_error("test certificate: serial number failed");
  }
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(host.c_str()), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(organisation.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::string san = "DNS:" + host;
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) throw std::runtime_error("test certificate: SAN extension failed");
  X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) throw std::runtime_error("test certificate: signing failed");
  auto cf = open_for_write(cert_pem);
  auto kf = open_for_write(key_pem);
  if (PEM_write_X509(cf.get(), cert.get()) != 1 ||
      PEM_write_PrivateKey(kf.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw std::runtime_error("test certificate: writing PEM failed");
  }
}

temp_dir::temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "mles-test-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace mles::test
