// tls_context: server TLS policy, certificate loading, self-signed certificates, SNI registry.
#include "net/tls_context.hpp"

#include "net/transport.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace mles::net {
namespace {

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

// ALPN (RFC 7301): we speak HTTP/1.1 only. A client offering other protocols but not
// http/1.1 continues without ALPN rather than failing the handshake.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void*) {
  static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

ssl_ctx_ptr make_policy_context() {
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) throw std::runtime_error("cannot create TLS context: " + openssl_error());
  ssl_ctx_ptr ctx(raw, ssl_ctx_deleter{});
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION);
  // TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all modern (OpenSSL default).
  SSL_CTX_set_cipher_list(raw,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  // TLS 1.3: AES-128-GCM first (as Mozilla's recommended configurations order it): 10 AES
  // rounds instead of 14 per block, and fan-out encrypts every message once per recipient.
  SSL_CTX_set_ciphersuites(raw, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Record buffers are released as soon as they are empty, so idle and handshaking sessions
  // stay small; a busy session switches that off while busy (transport::keep_buffers).
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read whole socket chunks instead of one record header and body at a time (fewer syscalls
  // for publishers sending many small messages).
  SSL_CTX_set_read_ahead(raw, 1);
  SSL_CTX_set_alpn_select_cb(raw, select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_SERVER);
  // TLS 1.3 traffic secrets go to the session's transport, which then runs the records
  // itself and frees the SSL object (transport::take_over_records); nothing is written out.
  SSL_CTX_set_keylog_callback(raw, &tls13_keylog);
  return ctx;
}

void require_readable(const std::filesystem::path& p, const char* what) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error(std::string("cannot read ") + what + " " + p.string() + ": " +
                                   std::strerror(errno));
}

using evp_pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

bool looks_like_ip(const std::string& s) {
  return s.find(':') != std::string::npos ||
         s.find_first_not_of("0123456789.") == std::string::npos;
}

}  // namespace

ssl_ctx_ptr make_server_context_from_files(const std::filesystem::path& cert_chain,
                                           const std::filesystem::path& key) {
  require_readable(cert_chain, "TLS certificate");
  require_readable(key, "TLS key");
  auto ctx = make_policy_context();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_chain.c_str()) != 1)
    throw std::runtime_error("bad TLS certificate " + cert_chain.string() + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("bad TLS key " + key.string() + ": " + openssl_error());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    throw std::runtime_error("TLS key " + key.string() + " does not match the certificate " +
                             cert_chain.string());
  return ctx;
}

ssl_ctx_ptr make_self_signed_context(const std::vector<std::string>& names) {
  evp_pkey_ptr pkey(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  if (!pkey) throw std::runtime_error("cannot generate a key: " + openssl_error());
  x509_ptr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const std::string cn = names.empty() ? "localhost" : names.front();
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("mles self-signed"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), subject);

  std::string san;
  std::vector<std::string> all = names;
  for (const char* extra : {"localhost", "127.0.0.1", "::1"}) {
    if (std::find(all.begin(), all.end(), extra) == all.end()) all.emplace_back(extra);
  }
  for (const auto& n : all) {
    if (!san.empty()) san += ',';
    san += (looks_like_ip(n) ? "IP:" : "DNS:") + n;
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                            {NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, "critical,digitalSignature"},
                            {NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (!ext) throw std::runtime_error("cannot build certificate extension: " + openssl_error());
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) == 0)
    throw std::runtime_error("cannot sign certificate: " + openssl_error());

  auto ctx = make_policy_context();
  if (SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1)
    throw std::runtime_error("cannot install self-signed certificate: " + openssl_error());
  return ctx;
}

ssl_ctx_ptr make_server_context_from_pem(std::string_view chain_pem, std::string_view key_pem) {
  auto ctx = make_policy_context();
  std::unique_ptr<BIO, decltype(&BIO_free)> chain(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())),
                                                  &BIO_free);
  x509_ptr leaf(PEM_read_bio_X509_AUX(chain.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!leaf || SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1)
    throw std::runtime_error("bad certificate: " + openssl_error());
  while (X509* extra = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx.get(), extra) != 1) {
      X509_free(extra);
      throw std::runtime_error("bad certificate chain: " + openssl_error());
    }
  }
  ERR_clear_error();  // the loop ends on "no start line"
  std::unique_ptr<BIO, decltype(&BIO_free)> kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())),
                                               &BIO_free);
  evp_pkey_ptr key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1)
    throw std::runtime_error("bad certificate key: " + openssl_error());
  return ctx;
}

tls_registry::tls_registry(ssl_ctx_ptr fallback) : fallback_(std::move(fallback)) {
  install_callbacks(fallback_.get());
}

// SNI (and ACME challenges) are resolved by the callbacks of the context a connection starts
// with: the fallback.
void tls_registry::install_callbacks(SSL_CTX* ctx) {
  SSL_CTX_set_client_hello_cb(ctx, &tls_registry::on_client_hello, this);
  SSL_CTX_set_tlsext_servername_callback(ctx, &tls_registry::on_servername);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
}

void tls_registry::set_fallback(ssl_ctx_ptr ctx) {
  install_callbacks(ctx.get());
  std::unique_lock lock(mutex_);
  fallback_ = std::move(ctx);
}

namespace {

std::optional<std::int64_t> leaf_not_after(SSL_CTX* ctx) {
  X509* leaf = ctx ? SSL_CTX_get0_certificate(ctx) : nullptr;
  if (!leaf) return std::nullopt;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

std::vector<std::pair<std::string, std::int64_t>> tls_registry::certificate_expiries() const {
  std::vector<std::pair<std::string, ssl_ctx_ptr>> served;
  {
    std::shared_lock lock(mutex_);
    served.emplace_back("default", fallback_);
    for (const auto& [name, ctx] : by_name_) served.emplace_back(name, ctx);
  }
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (const auto& [name, ctx] : served) {
    if (auto t = leaf_not_after(ctx.get())) out.emplace_back(name, *t);
  }
  return out;
}

void tls_registry::set_challenge(const std::string& name, ssl_ctx_ptr ctx) {
  std::unique_lock lock(mutex_);
  challenges_[name] = std::move(ctx);
}

void tls_registry::clear_challenge(const std::string& name) {
  std::unique_lock lock(mutex_);
  challenges_.erase(name);
}

ssl_ctx_ptr tls_registry::lookup_challenge(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = challenges_.find(name);
  return it != challenges_.end() ? it->second : nullptr;
}

bool tls_registry::is_challenge_context(const SSL_CTX* ctx) const {
  std::shared_lock lock(mutex_);
  for (const auto& [name, c] : challenges_) {
    if (c.get() == ctx) return true;
  }
  return false;
}

namespace {

// Reads a 16-bit length-prefixed list out of a ClientHello extension body.
bool take_u16_list(const unsigned char*& p, std::size_t& left) {
  if (left < 2) return false;
  const std::size_t n = (static_cast<std::size_t>(p[0]) << 8) | p[1];
  p += 2;
  left -= 2;
  if (n != left) return false;
  return true;
}

std::string client_hello_sni(SSL* ssl) {
  const unsigned char* p = nullptr;
  std::size_t left = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &left) != 1 || !take_u16_list(p, left))
    return {};
  // RFC 6066 §3: entries of type (1 byte) + 16-bit length + name; host_name is type 0.
  while (left >= 3) {
    const unsigned type = p[0];
    const std::size_t n = (static_cast<std::size_t>(p[1]) << 8) | p[2];
    if (left < 3 + n) return {};
    if (type == TLSEXT_NAMETYPE_host_name) {
      std::string name(reinterpret_cast<const char*>(p + 3), n);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!name.empty() && name.back() == '.') name.pop_back();
      return name;
    }
    p += 3 + n;
    left -= 3 + n;
  }
  return {};
}

bool client_hello_offers_alpn(SSL* ssl, std::string_view proto) {
  const unsigned char* p = nullptr;
  std::size_t left = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &left) != 1 ||
      !take_u16_list(p, left))
    return false;
  while (left >= 1) {
    const std::size_t n = p[0];
    if (left < 1 + n) return false;
    if (std::string_view(reinterpret_cast<const char*>(p + 1), n) == proto) return true;
    p += 1 + n;
    left -= 1 + n;
  }
  return false;
}

int select_acme_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                     unsigned inlen, void*) {
  static const unsigned char ours[] = {10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 8737 §3: acme-tls/1 or nothing
}

}  // namespace

ssl_ctx_ptr make_acme_challenge_context(std::string_view cert_pem, std::string_view key_pem) {
  auto ctx = make_server_context_from_pem(cert_pem, key_pem);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_acme_alpn, nullptr);
  return ctx;
}

// RFC 8737 §3: a validation ClientHello offers acme-tls/1 and names the identifier in SNI.
int tls_registry::on_client_hello(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<tls_registry*>(arg);
  if (!client_hello_offers_alpn(ssl, acme_tls_alpn)) return SSL_CLIENT_HELLO_SUCCESS;
  const std::string name = client_hello_sni(ssl);
  if (name.empty()) return SSL_CLIENT_HELLO_SUCCESS;
  if (ssl_ctx_ptr ctx = self->lookup_challenge(name)) SSL_set_SSL_CTX(ssl, ctx.get());
  return SSL_CLIENT_HELLO_SUCCESS;
}

void tls_registry::set(const std::string& name, ssl_ctx_ptr ctx) {
  std::unique_lock lock(mutex_);
  by_name_[name] = std::move(ctx);
}

ssl_ctx_ptr tls_registry::lookup(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = by_name_.find(name);
  return it != by_name_.end() ? it->second : fallback_;
}

SSL* tls_registry::new_ssl() const {
  ssl_ctx_ptr ctx;
  {
    std::shared_lock lock(mutex_);
    ctx = fallback_;
  }
  return SSL_new(ctx.get());
}

int tls_registry::on_servername(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_NOACK;
  std::string key(name);
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!key.empty() && key.back() == '.') key.pop_back();
  auto* self = static_cast<tls_registry*>(arg);
  if (self->is_challenge_context(SSL_get_SSL_CTX(ssl))) return SSL_TLSEXT_ERR_OK;  // keep it
  ssl_ctx_ptr ctx = self->lookup(key);
  // SSL_set_SSL_CTX takes its own reference: the session keeps this context even if the
  // registry swaps it later.
  if (ctx && ctx.get() != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx.get());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace mles::net

namespace mles::net {

ssl_ctx_ptr make_client_context(const std::optional<std::filesystem::path>& extra_ca) {
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (!raw) throw std::runtime_error("cannot create TLS client context: " + openssl_error());
  ssl_ctx_ptr ctx(raw, ssl_ctx_deleter{});
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // The same transport as the server side: moving write buffers, partial writes, read-ahead.
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(raw, 1);
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(raw, alpn, sizeof alpn);
  // Peers are verified by default: the system's trust store, plus a private CA if given.
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(raw) != 1) ERR_clear_error();
  if (extra_ca) {
    require_readable(*extra_ca, "peer CA file");
    if (SSL_CTX_load_verify_locations(raw, extra_ca->c_str(), nullptr) != 1)
      throw std::runtime_error("bad peer CA file " + extra_ca->string() + ": " + openssl_error());
  }
  return ctx;
}

}  // namespace mles::net
