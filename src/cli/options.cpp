// options: CLI11 definition of every flag, validation, and the resulting config.
#include "cli/options.hpp"

#include "app/logging.hpp"
#include "http/forwarded.hpp"
#include "peer/peer_url.hpp"
#include "proto/peer_envelope.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <sstream>

namespace mles::cli {

namespace {

bool valid_proxy(const std::string& spec, app::proxy_rule& out, std::string& why) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos) {
    why = "expected prefix=http://host:port";
    return false;
  }
  std::string prefix = spec.substr(0, eq);
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  const std::string upstream = spec.substr(eq + 1);
  if (prefix.empty()) {
    why = "empty prefix";
    return false;
  }
  if (upstream.rfind("http://", 0) != 0 || upstream.size() <= 7) {
    why = "upstream must be http://host:port";
    return false;
  }
  out = {prefix, upstream};
  return true;
}

// --metrics: PORT (on 127.0.0.1), ADDR:PORT (IPv4 or localhost), [ADDR]:PORT (IPv6).
bool valid_metrics(const std::string& spec, app::config& cfg, std::string& why) {
  std::string addr = "127.0.0.1", port = spec;
  if (const auto colon = spec.rfind(':'); colon != std::string::npos) {
    addr = spec.substr(0, colon);
    port = spec.substr(colon + 1);
    if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    else if (addr.find(':') != std::string::npos) {
      why = "an IPv6 address goes in brackets: [::1]:9090";
      return false;
    }
    if (addr == "localhost") addr = "127.0.0.1";
    boost::system::error_code ec;
    boost::asio::ip::make_address(addr, ec);
    if (ec || addr.empty()) {
      why = "'" + addr + "' is not an IP address";
      return false;
    }
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    why = "expected PORT or ADDR:PORT with a port in 0..65535";
    return false;
  }
  cfg.metrics_bind = addr;
  cfg.metrics_port = static_cast<std::uint16_t>(std::stoul(port));
  return true;
}

// --nats: comma-separated nats:// or tls:// URLs with a host (user:pass@ and a port allowed).
bool parse_nats_urls(const std::string& text, std::vector<std::string>& out, std::string& why) {
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto first = item.find_first_not_of(" \t"), last = item.find_last_not_of(" \t");
    if (first == std::string::npos) {
      why = "empty URL in the list";
      return false;
    }
    item = item.substr(first, last - first + 1);
    auto u = boost::urls::parse_uri(item);
    if (!u) {
      why = "'" + item + "' is not a URL";
      return false;
    }
    if (u->scheme() != "nats" && u->scheme() != "tls") {
      why = "'" + item + "': the scheme must be nats:// or tls://";
      return false;
    }
    if (u->host().empty()) {
      why = "'" + item + "' names no host";
      return false;
    }
    if ((!u->path().empty() && u->path() != "/") || u->has_query() || u->has_fragment()) {
      why = "'" + item + "': a NATS URL has no path, query or fragment";
      return false;
    }
    out.push_back(item);
  }
  if (out.empty()) {
    why = "no URL";
    return false;
  }
  return true;
}

bool valid_nats_prefix(const std::string& p) {
  if (p.empty() || p.size() > 32) return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

parse_outcome parse_command_line(int argc, const char* const* argv, const getenv_fn& getenv) {
  app::config cfg;
  parse_outcome result;

  CLI::App cli{"mles: a Mles v2 server (publish/subscribe over TLS WebSocket)", "mles"};
  cli.get_formatter()->column_width(34);
  cli.set_version_flag("--version", "mles " MLES_VERSION);

  std::vector<std::string> proxies;
  std::string log_level;
  std::uint32_t rate_limit = 0;
  bool self_signed = false, no_tls = false;
  std::string tls_cert, tls_key;
  std::string cache, wwwroot;

  cli.add_option("-d,--domains", cfg.domains, "Domain served; repeat for several")->required()->take_all();
  cli.add_option("-e,--email", cfg.emails, "Contact for the certificate authority account; repeatable");
  cli.add_option("-c,--cache", cache, "Directory for ACME account keys and certificates (kept 0600; reference layout)");
  cli.add_option("-l,--limit", cfg.history_limit, "History limit per channel")
      ->check(CLI::Range(1, 999999))->default_val(200);
  cli.add_option("-f,--filelimit", cfg.file_limit, "Most files open at once for static serving")
      ->check(CLI::Range(1, 1000000))->default_val(256);
  cli.add_option("-w,--wwwroot", wwwroot, "Static root: domain example.io is served from <DIR>/example.io/")->required();
  cli.add_flag("-s,--staging", cfg.staging, "Use the Let's Encrypt staging directory");
  cli.add_option("-p,--port", cfg.port, "TLS port for WebSocket and HTTPS; 0 picks a free port")
      ->check(CLI::Range(0, 65535))->default_val(443);
  cli.add_flag("-r,--redirect", cfg.redirect, "Also listen on port 80 (--http-port) and redirect HTTP to HTTPS");
  cli.add_option("-C,--compression-cache", cfg.compression_cache_mb,
                 "Memory in MB for compressed static files, 0 disables")
      ->check(CLI::Range(0, 1 << 20))->default_val(24);
  cli.add_option("--rate-limit", rate_limit, "Per-IP accepted connections per minute; over it the connection is dropped before TLS")
      ->check(CLI::Range(1, 100000000));
  cli.add_option("-P,--proxy", proxies, "Reverse-proxy /<prefix>/... to http://host:port (prefix stripped); repeatable");

  auto* cert_opt = cli.add_option("--tls-cert", tls_cert, "PEM certificate chain (with --tls-key)");
  auto* key_opt = cli.add_option("--tls-key", tls_key, "PEM private key (with --tls-cert)");
  auto* self_opt = cli.add_flag("--self-signed", self_signed, "Serve a fresh self-signed certificate for the domains and localhost");
  auto* notls_opt = cli.add_flag("--no-tls", no_tls, "Plain ws:// and http:// (local development, or behind a TLS proxy)");
  cert_opt->needs(key_opt);
  key_opt->needs(cert_opt);
  self_opt->excludes(cert_opt)->excludes(notls_opt);
  notls_opt->excludes(cert_opt);
  cli.add_option("--bind", cfg.bind, "Listen address; :: is dual stack")->default_val("::");
  cli.add_option("--http-port", cfg.http_port, "Port of the --redirect listener (plain HTTP); 0 picks a free port")
      ->check(CLI::Range(0, 65535))->default_val(80);
  cli.add_flag("--takeover", cfg.takeover,
               "Share the ports with a running mles (SO_REUSEPORT) to replace it; else a port in use is an error");
  cli.add_option("--threads", cfg.threads, "Event loops (threads); 0 = one per core")
      ->check(CLI::Range(0, 1024))->default_val(0);
  bool no_io_uring = false;
  cli.add_flag("--no-io-uring", no_io_uring,
               "Each connection sends with its own sendmsg() instead of one io_uring submission per loop turn");
  cli.add_option("--max-message", cfg.max_message, "Largest message in bytes (suffixes KiB, MiB); over it: close 1009")
      ->transform(CLI::AsSizeValue(false))->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->default_str("16MiB");
  cli.add_option("--max-queue", cfg.max_queue, "Bytes queued per session before it is disconnected as a slow consumer (close 1008)")
      ->transform(CLI::AsSizeValue(false))->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 34))
      ->default_str("4MiB");
  cli.add_option("--history-bytes", cfg.history_bytes, "Bytes of history kept per channel (besides --limit)")
      ->transform(CLI::AsSizeValue(false))->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
      ->default_str("32MiB");
  std::size_t history_total = 0, max_inflight = 0;
  cli.add_option("--history-total", history_total,
                 "Bytes of history over all channels; over it idle channels are forgotten and the least recently "
                 "active lose their oldest messages (default: a quarter of RAM, at most 1GiB)")
      ->transform(CLI::AsSizeValue(false))->check(CLI::Range(std::size_t{1} << 20, std::size_t{1} << 44));
  cli.add_option("--max-channels", cfg.max_channels,
                 "Channels at once; at the cap idle channels make room, else a join gets close 1013")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}))->default_val(100'000);
  cli.add_option("--max-inflight", max_inflight,
                 "Bytes of partly received messages and request bodies over all connections; over it: close 1013 "
                 "or HTTP 503 (default: an eighth of RAM, at most 256MiB, at least --max-message)")
      ->transform(CLI::AsSizeValue(false))->check(CLI::Range(std::size_t{1} << 10, std::size_t{1} << 40));
  double message_timeout_s = 60;
  cli.add_option("--message-timeout", message_timeout_s,
                 "Seconds a message (or request body) may take from its first byte to its last; over it: close 1008")
      ->check(CLI::Range(1.0, 86400.0))->default_val(60);
  std::string acme_ca;
  cli.add_option("--acme-directory", cfg.acme_directory, "ACME directory URL of another CA (default: Let's Encrypt)");
  cli.add_option("--acme-ca-cert", acme_ca, "PEM CA certificate to trust for the ACME directory's HTTPS");
  double acme_retry_s = 60;
  cli.add_option("--acme-retry", acme_retry_s, "Seconds before the first retry of a failed order (doubling, at most 6 h)")
      ->check(CLI::Range(0.1, 21600.0))
      ->default_val(60);
  std::string acme_challenge = "tls-alpn-01";
  cli.add_option("--acme-challenge", acme_challenge,
                 "Challenge tried first: tls-alpn-01 (TLS port) or http-01 (needs --redirect)")
      ->check(CLI::IsMember({"tls-alpn-01", "http-01"}))
      ->default_val("tls-alpn-01");
  std::string history_dir;
  cli.add_option("--history-dir", history_dir, "Keep every channel's history in DIR (SQLite) and restore it at start");
  double history_sync_s = 1;
  cli.add_option("--history-sync", history_sync_s,
                 "Seconds between group commits of --history-dir; 0: every message durable before it is forwarded")
      ->check(CLI::Range(0.0, 3600.0))->default_val(1);
  std::vector<std::string> peers;
  cli.add_option("--peer", peers, "Link to a peer server, ws[s]://host[:port][/path]; repeatable")->take_all();
  cli.add_option("--server-id", cfg.server_id, "This server's id on peer links (default <first domain>:<port>)");
  std::string peer_ca;
  cli.add_option("--peer-ca", peer_ca, "PEM CA certificate(s) trusted for peers, besides the system store");
  bool no_peer_mode = false;
  cli.add_flag("--no-peer-mode", no_peer_mode, "Speak only the reference protocol on links (no origin envelope)");
  double peer_linger_s = 60, peer_retry_max_s = 60;
  cli.add_option("--peer-linger", peer_linger_s, "Seconds a link stays after its channel's last local member left")
      ->check(CLI::Range(0.1, 86400.0))->default_val(60);
  cli.add_option("--peer-retry-max", peer_retry_max_s, "Longest wait in seconds between attempts of a failed link")
      ->check(CLI::Range(1.0, 3600.0))->default_val(60);
  cli.add_option("--peer-dedup-window", cfg.dedup_hashes,
                 "Payload hashes remembered per channel for links to servers without the peer mode")
      ->check(CLI::Range(16, 1000000))->default_val(1024);
  std::string nats_urls, nats_creds, nats_ca;
  double nats_session_ttl_s = 30;
  cli.add_option("--nats", nats_urls,
                 "Cluster mode: NATS server URLs, nats://[user:pass@]host[:port] or tls://..., comma-separated");
  cli.add_option("--nats-creds", nats_creds, "NATS credentials file (JWT and NKey seed) for --nats");
  cli.add_option("--nats-ca", nats_ca, "PEM CA certificate(s) trusted for tls:// NATS servers");
  cli.add_option("--nats-replicas", cfg.nats_replicas, "Replicas of the history stream and the session bucket (1-5)")
      ->check(CLI::Range(1, 5))->default_val(1);
  cli.add_option("--nats-prefix", cfg.nats_prefix,
                 "Name of the stream and subject prefix in cluster mode (bucket <prefix>-sessions)")
      ->default_val("mles");
  cli.add_option("--nats-buffer", cfg.nats_buffer,
                 "Bytes of outgoing messages kept while NATS is unreachable; over it the oldest are dropped")
      ->transform(CLI::AsSizeValue(false))->check(CLI::Range(std::size_t{1} << 16, std::size_t{1} << 40));
  cli.add_option("--nats-session-ttl", nats_session_ttl_s,
                 "Seconds a crashed server's sessions keep their uids claimed in cluster mode")
      ->check(CLI::Range(1.0, 3600.0))->default_val(30);
  cli.add_option("--max-connections", cfg.max_connections,
                 "Most connections open at once; over it: 503 (plain HTTP) or reset (TLS); default: open-file limit minus a reserve")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}));
  cli.add_option("--max-handshakes", cfg.max_handshakes,
                 "Most TLS handshakes in progress at once; over it new TLS connections are reset")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}))->default_val(1024);
  std::string metrics, log_format = "text";
  auto* metrics_opt = cli.add_option("--metrics", metrics,
                 "Prometheus metrics, /healthz and /readyz over plain HTTP on [ADDR:]PORT (default address 127.0.0.1)");
  cli.add_option("--log-format", log_format, "text (default) or json: one object per line")
      ->check(CLI::IsMember({"text", "json"}))->default_val("text");
  cli.add_flag("--proxy-protocol", cfg.proxy_protocol,
               "Every connection starts with a PROXY protocol v1/v2 header (behind a load balancer); others are refused");
  std::vector<std::string> trusted_proxies;
  cli.add_option("--trusted-proxy", trusted_proxies,
                 "CIDR of a proxy whose X-Forwarded-For names the client (IPv4 or IPv6); repeatable")
      ->take_all();
  cli.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (else MLES_LOG, else RUST_LOG; default warn)");

  try {
    cli.parse(argc, argv);
    cfg.io_uring = !no_io_uring;
  } catch (const CLI::CallForHelp&) {
    result.output = cli.help();
    return result;
  } catch (const CLI::CallForVersion&) {
    result.output = "mles " MLES_VERSION "\n";
    return result;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (!what.empty() && what.back() == '\n') what.pop_back();
    result.exit_code = 2;
    result.output = "mles: " + what + " (see mles --help)\n";
    return result;
  }
  auto usage_error = [&](const std::string& what) {
    result.exit_code = 2;
    result.output = "mles: " + what + " (see mles --help)\n";
    return result;
  };

  for (auto& d : cfg.domains) {
    if (d.empty()) return usage_error("--domains: empty domain");
    for (auto& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (d.back() == '.') d.pop_back();
  }
  cfg.wwwroot = wwwroot;
  if (!cache.empty()) cfg.cache = cache;
  if (rate_limit) cfg.rate_limit = rate_limit;
  for (const auto& p : proxies) {
    app::proxy_rule rule;
    std::string why;
    if (!valid_proxy(p, rule, why)) return usage_error("--proxy " + p + ": " + why);
    cfg.proxies.push_back(rule);
  }
  for (const auto& p : peers) {
    std::string why;
    if (!peer::parse_peer_url(p, why)) return usage_error("--peer " + p + ": " + why);
    cfg.peers.push_back(p);
  }
  if (!cfg.server_id.empty() && !proto::is_valid_server_id(cfg.server_id))
    return usage_error("--server-id: 1 to 64 printable ASCII characters without spaces");
  for (const auto& t : trusted_proxies) {
    if (!http::parse_cidr(t)) return usage_error("--trusted-proxy " + t + ": not an IPv4 or IPv6 CIDR (host bits zero)");
    cfg.trusted_proxies.push_back(t);
  }
  if (!peer_ca.empty()) cfg.peer_ca = peer_ca;
  if (!nats_urls.empty()) {
    std::string why;
    if (!parse_nats_urls(nats_urls, cfg.nats_urls, why)) return usage_error("--nats " + nats_urls + ": " + why);
  }
  if (!nats_creds.empty()) cfg.nats_creds = nats_creds;
  if (!nats_ca.empty()) cfg.nats_ca = nats_ca;
  if (cfg.nats_urls.empty() && (cfg.nats_creds || cfg.nats_ca))
    return usage_error("--nats-creds and --nats-ca need --nats");
  if (!valid_nats_prefix(cfg.nats_prefix))
    return usage_error("--nats-prefix: 1 to 32 characters from A-Z a-z 0-9 _ -");
  cfg.nats_session_ttl = std::chrono::milliseconds(static_cast<long long>(nats_session_ttl_s * 1000));
  if (!history_dir.empty()) cfg.history_dir = history_dir;
  if (!cfg.nats_urls.empty() && cfg.history_dir)
    return usage_error("--history-dir is not used in cluster mode (--nats): the history lives in JetStream");
  if (cfg.takeover && cfg.history_dir)
    return usage_error("--takeover cannot be used with --history-dir (the running server holds the directory)");
  cfg.history_sync = std::chrono::milliseconds(static_cast<long long>(history_sync_s * 1000));
  if (history_total) cfg.history_total = history_total;
  if (max_inflight) {
    if (max_inflight < cfg.max_message) return usage_error("--max-inflight must be at least --max-message");
    cfg.max_inflight = max_inflight;
  }
  cfg.message_timeout = std::chrono::milliseconds(static_cast<long long>(message_timeout_s * 1000));
  cfg.peer_mode = !no_peer_mode;
  cfg.peer_linger = std::chrono::milliseconds(static_cast<long long>(peer_linger_s * 1000));
  cfg.peer_retry_max = std::chrono::milliseconds(static_cast<long long>(peer_retry_max_s * 1000));
  if (self_signed) cfg.tls = app::tls_mode::self_signed;
  else if (no_tls) cfg.tls = app::tls_mode::none;
  else if (!tls_cert.empty()) {
    cfg.tls = app::tls_mode::files;
    cfg.tls_cert = tls_cert;
    cfg.tls_key = tls_key;
  } else {
    cfg.tls = app::tls_mode::acme;
    if (!acme_ca.empty()) cfg.acme_ca_cert = acme_ca;
    cfg.acme_prefer_http01 = acme_challenge == "http-01";
    cfg.acme_retry_initial = std::chrono::milliseconds(static_cast<long long>(acme_retry_s * 1000));
    if (cfg.acme_prefer_http01 && !cfg.redirect) return usage_error("--acme-challenge http-01 needs --redirect");
  }

  // Log level: flag, then MLES_LOG, then the reference's RUST_LOG.
  if (!log_level.empty()) {
    if (!app::parse_log_level(log_level)) return usage_error("--log-level: unknown level '" + log_level + "'");
    cfg.log_level = log_level;
  } else if (const char* v = getenv("MLES_LOG"); v && *v) {
    if (app::parse_log_level(v)) cfg.log_level = v;
    else result.notices.push_back(std::string("MLES_LOG='") + v + "' names no level; using warn");
  } else if (const char* r = getenv("RUST_LOG"); r && *r) {
    if (app::parse_log_level(r)) cfg.log_level = r;
  }
  if (metrics_opt->count() > 0) {
    std::string why;
    if (!valid_metrics(metrics, cfg, why)) return usage_error("--metrics " + metrics + ": " + why);
  }
  cfg.log_format = log_format;
  if (const char* key = getenv("MLES_KEY")) cfg.mles_key = std::string(key);

  result.config = std::move(cfg);
  return result;
}

}  // namespace mles::cli
