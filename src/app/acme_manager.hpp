// Automatic certificates (issue 4): keeps a certificate from an ACME CA installed in the TLS
// registry for all --domains. At start a valid cached certificate is served at once; otherwise
// (and at two thirds of a certificate's lifetime) an order runs on the server's first event
// loop (acme_driver over the order_flow state machine), answering TLS-ALPN-01 on the TLS port
// and HTTP-01 on the --redirect port. When the CA offers ACME Renewal Information (RFC 9773)
// its suggested window moves the renewal earlier. Failures are retried with capped
// exponential backoff and jitter while the current certificate keeps being served.
// Thread-safety: start() and stop() from the controlling thread; everything else runs on the
// executor given at construction. Owned by app::server.
#pragma once

#include "acme/acme_driver.hpp"
#include "acme/p256_key.hpp"
#include "acme/renewal_info.hpp"
#include "http/challenge_tokens.hpp"
#include "net/tls_context.hpp"
#include "store/acme_cache.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mles::app {

struct acme_settings {
  std::vector<std::string> domains;
  std::vector<std::string> emails;
  std::optional<std::filesystem::path> cache;
  std::string directory_url;
  std::optional<std::filesystem::path> ca_file;  // trust for the directory's HTTPS (tests)
  bool http01 = false;                           // the --redirect port answers HTTP-01
  bool prefer_http01 = false;                    // try HTTP-01 before TLS-ALPN-01
  std::chrono::milliseconds retry_initial{60'000};
  std::chrono::milliseconds retry_max{6 * 3600 * 1000};
};

class acme_manager {
 public:
  // Throws std::runtime_error for an unusable setting (CA file, cache directory).
  acme_manager(acme_settings settings, net::tls_registry& registry, http::challenge_tokens& tokens,
               boost::asio::any_io_executor ex);
  ~acme_manager();
  acme_manager(const acme_manager&) = delete;
  acme_manager& operator=(const acme_manager&) = delete;

  void start();
  void stop();

  // For metrics and readiness (any thread): the last order's end (unix seconds, 0: none yet)
  // and whether it installed a certificate; whether a certificate from the CA (or from the
  // cache) is being served and not expired, rather than the temporary self-signed one.
  struct figures {
    std::atomic<std::int64_t> last_result_time{0};
    std::atomic<bool> last_result_ok{false};
    std::atomic<std::int64_t> served_until{0};  // not-after of the installed certificate, 0: none
  };
  const figures& status() const noexcept { return figures_; }
  bool has_certificate() const noexcept;

 private:
  bool load_cached_certificate();
  bool ensure_account();
  void begin_order();
  void on_outcome(acme::order_outcome outcome);
  bool install(const std::string& chain_pem, const std::string& key_pem, const char* source);
  void schedule(std::chrono::system_clock::time_point when);
  void retry_later();
  void check_renewal_info();
  void on_renewal_window(const acme::renewal_window& window);

  acme_settings settings_;
  net::tls_registry& registry_;
  http::challenge_tokens& tokens_;
  boost::asio::any_io_executor ex_;
  acme::client_tls tls_;
  std::optional<store::acme_cache> cache_;
  std::vector<std::string> contacts_;
  std::optional<acme::p256_key> account_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer ari_timer_;                 // next RFC 9773 renewalInfo check
  std::optional<std::string> ari_id_;                   // of the installed certificate
  std::chrono::system_clock::time_point planned_{};     // the renewal now scheduled
  std::shared_ptr<acme::acme_driver> driver_;
  std::optional<std::chrono::system_clock::time_point> expires_;
  unsigned failures_ = 0;
  figures figures_;
  std::shared_ptr<bool> alive_;  // callbacks check it: the manager may be gone
};

}  // namespace mles::app
