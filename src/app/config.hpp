// The one configuration aggregate: every setting of the server and its default, in one place.
// cli/ fills it from the command line and environment; app::server reads it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mles::app {

enum class tls_mode {
  files,        // --tls-cert/--tls-key
  self_signed,  // --self-signed: fresh certificate for the domains + localhost at start
  none,         // --no-tls: plain ws:// and http://
  acme,         // default: certificates from an ACME CA (Let's Encrypt unless --acme-directory)
};

struct proxy_rule {
  std::string prefix;    // without leading/trailing '/'
  std::string upstream;  // http://host:port
};

struct config {
  // --- reference flags (SPEC §2) ---
  std::vector<std::string> domains;            // -d, required
  std::vector<std::string> emails;             // -e
  std::optional<std::filesystem::path> cache;  // -c
  std::size_t history_limit = 200;             // -l, 1..999999
  std::size_t file_limit = 256;                // -f
  std::filesystem::path wwwroot;               // -w, required
  bool staging = false;                        // -s
  std::uint16_t port = 443;                    // -p (0 = ephemeral)
  bool redirect = false;                       // -r
  std::size_t compression_cache_mb = 24;       // -C
  std::optional<std::uint32_t> rate_limit;     // --rate-limit, connections per IP per minute
  std::vector<proxy_rule> proxies;             // -P

  // --- beyond the reference ---
  tls_mode tls = tls_mode::acme;
  std::filesystem::path tls_cert;  // PEM chain
  std::filesystem::path tls_key;   // PEM key
  std::string bind = "::";         // dual stack
  std::uint16_t http_port = 80;    // --redirect listener (plain HTTP)
  unsigned threads = 0;            // 0 = number of cores
  std::size_t max_message = 16u << 20;     // bytes; over it: close 1009
  std::size_t max_queue = 4u << 20;        // bytes queued per session; over it: close 1008
  std::size_t history_bytes = 32u << 20;   // bytes of history per channel
  std::string log_level = "warn";
  std::string acme_directory;                          // empty: Let's Encrypt (staging with -s)
  std::optional<std::filesystem::path> acme_ca_cert;   // trust for the directory's HTTPS
  std::chrono::milliseconds acme_retry_initial{60'000};  // first retry after a failed order
  bool acme_prefer_http01 = false;                      // HTTP-01 first (needs --redirect)
  std::optional<std::string> mles_key;     // MLES_KEY

  // --- timings (tests shrink them) ---
  std::chrono::milliseconds ping_interval{24'000};     // ping every; close after 3 silent
  std::chrono::milliseconds handshake_timeout{10'000}; // TLS handshake + HTTP headers
  std::chrono::milliseconds join_timeout{10'000};      // upgrade -> join frame
  std::chrono::milliseconds close_timeout{5'000};      // our close frame -> TCP close
  std::chrono::milliseconds shutdown_timeout{4'000};   // graceful stop deadline
  std::chrono::seconds channel_ttl{30 * 24 * 3600};    // idle channel forgotten after
};

}  // namespace mles::app
