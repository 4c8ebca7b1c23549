// Tests for acme::make_csr: PKCS#10 DER that verifies, SAN = every name in order, empty
// subject, and a fresh key that matches the request.
#include "acme/csr.hpp"

#include "acme/p256_key.hpp"
#include "openssl_test_support.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

namespace mles::acme {
namespace {

struct req_free {
  void operator()(X509_REQ* p) const noexcept { X509_REQ_free(p); }
};
using req_ptr = std::unique_ptr<X509_REQ, req_free>;

req_ptr parse(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return req_ptr(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
}

std::vector<std::string> dns_names(X509_REQ* req) {
  std::vector<std::string> out;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, j);
      if (name->type != GEN_DNS) continue;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                       static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return out;
}

TEST(csr, names_every_domain_in_subject_alt_name) {
  const std::vector<std::string> names{"mles.test", "www.mles.test"};
  const auto csr = make_csr(names);
  ASSERT_TRUE(csr);
  const req_ptr req = parse(csr->der);
  ASSERT_TRUE(req);
  EXPECT_EQ(dns_names(req.get()), names);
  EXPECT_EQ(X509_NAME_entry_count(X509_REQ_get_subject_name(req.get())), 0);
}

TEST(csr, is_signed_by_the_returned_fresh_key) {
  const std::vector<std::string> names{"mles.test"};
  const auto csr = make_csr(names);
  ASSERT_TRUE(csr);
  const req_ptr req = parse(csr->der);
  ASSERT_TRUE(req);
  const test::pkey_ptr key = test::read_private_key(csr->key_pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_REQ_verify(req.get(), key.get()), 1);
  EXPECT_EQ(X509_REQ_check_private_key(req.get(), key.get()), 1);
  const auto loaded = p256_key::from_pem(csr->key_pem);
  ASSERT_TRUE(loaded);  // P-256
}

TEST(csr, uses_a_new_key_each_time) {
  const std::vector<std::string> names{"mles.test"};
  const auto a = make_csr(names);
  const auto b = make_csr(names);
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->key_pem, b->key_pem);
}

TEST(csr, refuses_no_names) {
  EXPECT_FALSE(make_csr({}));
}

}  // namespace
}  // namespace mles::acme
