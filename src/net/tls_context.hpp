// TLS server contexts: built from PEM files or a fresh self-signed certificate, with the
// project's protocol policy (TLS 1.2/1.3, modern AEAD suites, ALPN http/1.1), and the SNI
// registry that picks a context per server name (hot-swappable: live sessions keep theirs).
// Thread-safety: tls_registry is safe from any thread; contexts are immutable once built.
#pragma once

#include <openssl/ssl.h>

#include <filesystem>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
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

class tls_registry {
 public:
  explicit tls_registry(ssl_ctx_ptr fallback);

  // Serve ctx for this SNI name (lowercase, no trailing dot) from now on.
  void set(const std::string& name, ssl_ctx_ptr ctx);
  // A new SSL for an accepted connection; SNI is resolved during its handshake.
  SSL* new_ssl() const;

 private:
  static int on_servername(SSL* ssl, int* alert, void* arg);
  ssl_ctx_ptr lookup(const std::string& name) const;

  mutable std::shared_mutex mutex_;
  ssl_ctx_ptr fallback_;
  std::map<std::string, ssl_ctx_ptr, std::less<>> by_name_;
};

}  // namespace mles::net
