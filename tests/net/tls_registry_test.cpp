// Tests for the TLS registry: SNI routing, fallback swap, and the RFC 8737 TLS-ALPN-01
// responder, with real TLS handshakes between OpenSSL client and server in memory.
#include "acme/challenge.hpp"
#include "net/tls_context.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

using namespace mles::net;

namespace {

struct handshake_result {
  bool ok = false;
  std::string alpn;
  std::vector<std::string> dns_names;  // of the server's certificate
  bool has_acme_extension = false;
};

// Runs client and server SSLs against each other through a BIO pair until both are done.
handshake_result handshake(tls_registry& registry, const std::string& sni, const std::vector<std::string>& alpn) {
  handshake_result out;
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(cctx);
  SSL* server = registry.new_ssl();
  BIO *cbio = nullptr, *sbio = nullptr;
  BIO_new_bio_pair(&cbio, 0, &sbio, 0);
  SSL_set_bio(client, cbio, cbio);
  SSL_set_bio(server, sbio, sbio);
  if (!sni.empty()) SSL_set_tlsext_host_name(client, sni.c_str());
  std::vector<unsigned char> wire;
  for (const auto& p : alpn) {
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  if (!wire.empty()) SSL_set_alpn_protos(client, wire.data(), static_cast<unsigned>(wire.size()));
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  for (int i = 0; i < 50; ++i) {
    const int c = SSL_do_handshake(client);
    const int s = SSL_do_handshake(server);
    if (c == 1 && s == 1) {
      out.ok = true;
      break;
    }
    const int ce = SSL_get_error(client, c), se = SSL_get_error(server, s);
    if ((c != 1 && ce != SSL_ERROR_WANT_READ && ce != SSL_ERROR_WANT_WRITE) ||
        (s != 1 && se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE))
      break;
  }
  ERR_clear_error();
  if (out.ok) {
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(client, &p, &len);
    if (p) out.alpn.assign(reinterpret_cast<const char*>(p), len);
    X509* cert = SSL_get1_peer_certificate(client);
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      if (n->type == GEN_DNS)
        out.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                   static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
    ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    out.has_acme_extension = X509_get_ext_by_OBJ(cert, oid, -1) >= 0;
    ASN1_OBJECT_free(oid);
    X509_free(cert);
  }
  SSL_free(client);
  SSL_free(server);
  SSL_CTX_free(cctx);
  return out;
}

ssl_ctx_ptr challenge_context(const std::string& name) {
  auto cert = mles::acme::make_tls_alpn01_certificate(name, "token.thumbprint");
  EXPECT_TRUE(cert.has_value());
  return make_acme_challenge_context(cert->cert_pem, cert->key_pem);
}

bool names_contain(const handshake_result& r, const std::string& name) {
  return std::find(r.dns_names.begin(), r.dns_names.end(), name) != r.dns_names.end();
}

}  // namespace

TEST(tls_registry, routes_by_sni_and_falls_back_for_unknown_names) {
  tls_registry registry(make_self_signed_context({"default.test"}));
  registry.set("a.test", make_self_signed_context({"a.test"}));
  const auto a = handshake(registry, "a.test", {"http/1.1"});
  ASSERT_TRUE(a.ok);
  EXPECT_TRUE(names_contain(a, "a.test"));
  EXPECT_EQ(a.alpn, "http/1.1");
  const auto other = handshake(registry, "other.test", {"http/1.1"});
  ASSERT_TRUE(other.ok);
  EXPECT_TRUE(names_contain(other, "default.test"));
  registry.set_fallback(make_self_signed_context({"new-default.test"}));
  const auto swapped = handshake(registry, "", {});
  ASSERT_TRUE(swapped.ok);
  EXPECT_TRUE(names_contain(swapped, "new-default.test"));
}

TEST(tls_registry, answers_a_tls_alpn_01_validation_with_the_challenge_certificate) {
  tls_registry registry(make_self_signed_context({"mles.test"}));
  registry.set_challenge("mles.test", challenge_context("mles.test"));
  const auto r = handshake(registry, "mles.test", {"acme-tls/1"});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.alpn, "acme-tls/1");
  EXPECT_TRUE(r.has_acme_extension);
  EXPECT_EQ(r.dns_names, std::vector<std::string>{"mles.test"});
  // SNI in another case with a trailing dot is the same name.
  const auto upper = handshake(registry, "MLES.test.", {"acme-tls/1"});
  ASSERT_TRUE(upper.ok);
  EXPECT_TRUE(upper.has_acme_extension);
}

TEST(tls_registry, gives_normal_clients_the_normal_certificate_during_a_challenge) {
  tls_registry registry(make_self_signed_context({"mles.test"}));
  registry.set_challenge("mles.test", challenge_context("mles.test"));
  const auto browser = handshake(registry, "mles.test", {"h2", "http/1.1"});
  ASSERT_TRUE(browser.ok);
  EXPECT_EQ(browser.alpn, "http/1.1");
  EXPECT_FALSE(browser.has_acme_extension);
  // acme-tls/1 for a name without a challenge: no validation certificate.
  const auto other = handshake(registry, "other.test", {"acme-tls/1"});
  EXPECT_FALSE(other.ok && other.has_acme_extension);
  // Cleared: the challenge certificate is gone.
  registry.clear_challenge("mles.test");
  const auto after = handshake(registry, "mles.test", {"acme-tls/1"});
  EXPECT_FALSE(after.ok && after.has_acme_extension);
}
