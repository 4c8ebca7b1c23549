// What every connection shares: the hub, the authenticator, limits and timings, counters, and
// the web side. Owned by app::server; immutable after start except the atomic counters.
#pragma once

#include "http/challenge_tokens.hpp"
#include "http/file_server.hpp"
#include "http/proxy_client.hpp"
#include "http/proxy_rules.hpp"
#include "hub/hub.hpp"
#include "net/error.hpp"
#include "proto/auth.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace mles::net {

// The HTTP phase's bounds (filled from app::config).
struct http_settings {
  std::size_t max_request_head = 16 * 1024;    // request line + headers; over it: 431
  std::size_t max_request_body = 1024 * 1024;  // over it: 413
  std::size_t max_pipelined = 64 * 1024;       // bytes buffered while a response is busy
  std::size_t file_chunk = 256 * 1024;         // streamed body chunk
  std::uint64_t small_body = 64 * 1024;        // plain bodies up to this go out with the head
  http::proxy_limits proxy;                    // --proxy exchanges
};

struct session_settings {
  std::size_t max_message = 16u << 20;
  std::size_t max_queue = 4u << 20;
  // A join frame is a few short strings: an unauthenticated client may not make the server
  // buffer a whole max_message before it has joined. Larger: close 1009.
  std::size_t max_join_frame = 64 * 1024;
  std::chrono::milliseconds ping_interval{24'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds join_timeout{10'000};
  std::chrono::milliseconds close_timeout{5'000};
  // The server runs one event loop: frames never cross threads (cheaper reference counts).
  bool single_loop = false;
  http_settings http;
  // Peer mode (links between servers of this project): answer an upgrade's Mles-Peer header.
  bool peer_mode = true;
  std::string server_id;  // this server's id in the peer mode (Mles-Peer: 1; id=...)
};

struct server_counters {
  std::atomic<std::size_t> sessions{0};
  std::atomic<std::uint64_t> slow_consumer_closes{0};
  // Connections ended, per reason (net::errc).
  std::array<std::atomic<std::uint64_t>, errc_count> ends{};
};

struct session_context {
  hub::hub& hub;
  const proto::authenticator& auth;
  session_settings settings;
  server_counters& counters;
  http::file_server* web = nullptr;  // static files; null: every plain request gets 404
  const http::proxy_table* proxies = nullptr;  // --proxy rules; null or empty: none
  const http::challenge_tokens* acme_tokens = nullptr;  // ACME HTTP-01 answers being served
  std::uint16_t https_port = 443;    // for --redirect targets (the bound TLS port)
};

}  // namespace mles::net
