// TLS server contexts: built from PEM files or a fresh self-signed certificate, with the
// project's protocol policy (TLS 1.2/1.3, modern AEAD suites, ALPN http/1.1), and the SNI
// registry that picks a context per server name (hot-swappable: live sessions keep theirs).
// Thread-safety: tls_registry is safe from any thread; contexts are immutable once built.
#pragma once

#include <openssl/ssl.h>

#include <filesystem>
#include <cstdint>
#include <map>
#include <utility>
#include <optional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mles::net {

struct ssl_ctx_deleter {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using ssl_ctx_ptr = std::shared_ptr<SSL_CTX>;

// A context with the server policy and the given chain + key. Throws std::runtime_error with
// one clear line ("cannot read TLS key /x: No such file or directory", "TLS key does not
// match the certificate", ...).
ssl_ctx_ptr make_server_context_from_files(const std::filesystem::path& cert_chain,
                                           const std::filesystem::path& key);
// A context with a fresh ECDSA P-256 self-signed certificate whose SANs are the names plus
// localhost, 127.0.0.1 and ::1, valid one year.
ssl_ctx_ptr make_self_signed_context(const std::vector<std::string>& names);
// A context from PEM text (chain, key), same policy. Throws std::runtime_error.
ssl_ctx_ptr make_server_context_from_pem(std::string_view chain_pem, std::string_view key_pem);
// RFC 8737: a context presenting a TLS-ALPN-01 validation certificate (PEM) that negotiates
// only ALPN "acme-tls/1".
ssl_ctx_ptr make_acme_challenge_context(std::string_view cert_pem, std::string_view key_pem);

inline constexpr std::string_view acme_tls_alpn = "acme-tls/1";

// The client context for links to peers: TLS 1.2/1.3, ALPN http/1.1, the peer's certificate
// verified against the system trust store and, if given, the PEM CA file (a private CA).
// Host names are set per connection (SNI + name check). Throws std::runtime_error with one
// line when the CA file cannot be read.
ssl_ctx_ptr make_client_context(const std::optional<std::filesystem::path>& extra_ca);

class tls_registry {
 public:
  explicit tls_registry(ssl_ctx_ptr fallback);

  // Serve ctx for this SNI name (lowercase, no trailing dot) from now on.
  void set(const std::string& name, ssl_ctx_ptr ctx);
  // Serve ctx to clients without a known SNI name from now on.
  void set_fallback(ssl_ctx_ptr ctx);
  // RFC 8737: a ClientHello offering ALPN acme-tls/1 with this SNI name gets ctx (a
  // validation certificate) until the challenge is cleared.
  void set_challenge(const std::string& name, ssl_ctx_ptr ctx);
  void clear_challenge(const std::string& name);
  // A new SSL for an accepted connection; SNI is resolved during its handshake.
  SSL* new_ssl() const;
  // The end of validity (unix seconds) of the leaf certificate served per SNI name, and under
  // the name "default" for clients without a known name (metrics).
  std::vector<std::pair<std::string, std::int64_t>> certificate_expiries() const;

 private:
  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_client_hello(SSL* ssl, int* alert, void* arg);
  void install_callbacks(SSL_CTX* ctx);
  ssl_ctx_ptr lookup(const std::string& name) const;
  ssl_ctx_ptr lookup_challenge(const std::string& name) const;
  bool is_challenge_context(const SSL_CTX* ctx) const;

  mutable std::shared_mutex mutex_;
  ssl_ctx_ptr fallback_;
  std::map<std::string, ssl_ctx_ptr, std::less<>> by_name_;
  std::map<std::string, ssl_ctx_ptr, std::less<>> challenges_;
};

}  // namespace mles::net
