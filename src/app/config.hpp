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
  // --- reference flags (same names, defaults and ranges as the reference server) ---
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
  bool takeover = false;           // --takeover: share the ports with a running mles (SO_REUSEPORT)
  unsigned threads = 0;            // 0 = number of cores
  bool io_uring = true;            // --no-io-uring: false (net::session_settings::batch_sends)
  std::size_t max_message = 16u << 20;     // bytes; over it: close 1009
  std::size_t max_queue = 4u << 20;        // bytes queued per session; over it: close 1008
  std::size_t history_bytes = 32u << 20;   // bytes of history per channel
  std::optional<std::size_t> history_total;  // --history-total over all channels; unset: default_history_total()
  std::size_t max_channels = 100'000;        // --max-channels; at the cap idle channels make room, else 1013
  std::optional<std::size_t> max_inflight;   // --max-inflight; unset: default_max_inflight()
  std::chrono::milliseconds message_timeout{60'000};  // --message-timeout: first byte to last
  std::optional<std::filesystem::path> history_dir;   // --history-dir: durable history
  std::chrono::milliseconds history_sync{1000};       // --history-sync: group commit period (0: before forwarding)
  std::size_t history_queue_bytes = 64u << 20;        // waiting for the disk; over it the oldest are dropped
  std::chrono::milliseconds history_retry{5000};      // retry of a failing disk
  std::string log_level = "warn";
  std::string acme_directory;                          // empty: Let's Encrypt (staging with -s)
  std::optional<std::filesystem::path> acme_ca_cert;   // trust for the directory's HTTPS
  std::chrono::milliseconds acme_retry_initial{60'000};  // first retry after a failed order
  bool acme_prefer_http01 = false;                      // HTTP-01 first (needs --redirect)
  std::optional<std::string> mles_key;     // MLES_KEY
  std::size_t max_connections = 0;         // --max-connections; 0: open-file limit minus a reserve
  std::size_t max_handshakes = 1024;       // --max-handshakes: TLS handshakes in progress
  bool proxy_protocol = false;             // --proxy-protocol: PROXY v1/v2 header on every connection
  std::vector<std::string> trusted_proxies;  // --trusted-proxy CIDR: X-Forwarded-For believed from these

  // --- peer links (links to other servers that share channels) ---
  std::vector<std::string> peers;                       // --peer ws[s]://host[:port][/path]
  std::string server_id;                                // --server-id; empty: <first domain>:<port>
  std::optional<std::filesystem::path> peer_ca;         // --peer-ca: trusted besides the system store
  bool peer_mode = true;                                // --no-peer-mode: reference protocol only
  std::chrono::milliseconds peer_linger{60'000};        // link kept after the last local member left
  std::chrono::milliseconds peer_retry_initial{1'000};  // first retry of a failed link (doubling)
  std::chrono::milliseconds peer_retry_max{60'000};     // --peer-retry-max
  std::chrono::milliseconds peer_connect_timeout{10'000};  // resolve + connect + TLS + upgrade
  std::size_t dedup_hashes = 1024;   // --peer-dedup-window: payload hashes per channel (hash mode)
  std::size_t dedup_window = 1024;   // sequence window per origin (peer mode)
  std::size_t dedup_origins = 64;    // origins remembered per channel

  // --- cluster mode: NATS core for the live flow, JetStream for history and sessions ---
  std::vector<std::string> nats_urls;                   // --nats URL[,URL...]; empty: standalone
  std::optional<std::filesystem::path> nats_creds;      // --nats-creds FILE (JWT + NKey)
  std::optional<std::filesystem::path> nats_ca;         // --nats-ca FILE (tls:// servers)
  int nats_replicas = 1;                                // --nats-replicas: stream and bucket
  std::string nats_prefix = "mles";                     // --nats-prefix: stream, subjects, bucket
  std::size_t nats_buffer = 64u << 20;                  // --nats-buffer: outgoing while NATS is away
  std::chrono::milliseconds nats_session_ttl{30'000};   // --nats-session-ttl: a crashed server's claims

  // --- operations: metrics and logs ---
  std::optional<std::uint16_t> metrics_port;        // --metrics [ADDR:]PORT; off when empty (0: any free port)
  std::string metrics_bind = "127.0.0.1";           // --metrics ADDR:PORT (loopback by default)
  std::chrono::milliseconds metrics_timeout{10'000};  // per request/response on the metrics port
  std::string log_format = "text";                  // --log-format text|json
  unsigned log_lines_per_second = 20;               // session lines, and problem lines, each
  std::chrono::milliseconds log_summary_interval{60'000};  // "last minute: ..." counts by reason

  // --- HTTP and protocol bounds ---
  std::size_t max_join_frame = 64 * 1024;             // join frame; larger: close 1009
  std::size_t http_max_request_head = 16 * 1024;      // over it: 431
  std::size_t http_max_request_body = 1024 * 1024;    // over it: 413
  std::size_t http_max_pipelined = 64 * 1024;         // buffered while a response is busy
  std::chrono::milliseconds proxy_connect_timeout{5'000};    // --proxy: resolve + connect
  std::chrono::milliseconds proxy_response_timeout{30'000};  // --proxy: whole exchange
  std::size_t proxy_max_response = 64u << 20;                // --proxy: response body

  // --- timings (tests shrink them) ---
  std::chrono::milliseconds ping_interval{24'000};     // ping every; close after 3 silent
  std::chrono::milliseconds handshake_timeout{10'000}; // TLS handshake + HTTP headers
  std::chrono::milliseconds join_timeout{10'000};      // upgrade -> join frame
  std::chrono::milliseconds close_timeout{5'000};      // our close frame -> TCP close
  std::chrono::milliseconds shutdown_timeout{4'000};   // graceful stop deadline
  std::chrono::seconds channel_ttl{30 * 24 * 3600};    // idle channel forgotten after
};

// Defaults that depend on the machine: a quarter of the physical memory, at most 1 GiB, for
// history; an eighth, at most 256 MiB and at least one --max-message, for messages in flight.
std::size_t default_history_total();
std::size_t default_max_inflight(std::size_t max_message);

}  // namespace mles::app
