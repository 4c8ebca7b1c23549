// What every session shares: the hub, the authenticator, limits and timings, and counters.
// Owned by app::server; immutable after start except the atomic counters.
#pragma once

#include "http/challenge_tokens.hpp"
#include "http/file_server.hpp"
#include "http/proxy_rules.hpp"
#include "hub/hub.hpp"
#include "proto/auth.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace mles::net {

struct session_settings {
  std::size_t max_message = 16u << 20;
  std::size_t max_queue = 4u << 20;
  std::chrono::milliseconds ping_interval{24'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds join_timeout{10'000};
  std::chrono::milliseconds close_timeout{5'000};
  // The server runs one event loop: frames never cross threads (cheaper reference counts).
  bool single_loop = false;
};

struct server_counters {
  std::atomic<std::size_t> sessions{0};
  std::atomic<std::uint64_t> slow_consumer_closes{0};
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
