// The whole server: event loops, listener, TLS, hub. Built from one config; used by main and
// by the integration tests (which run it in-process on 127.0.0.1:0).
// Thread-safety: start/stop/wait from one controlling thread; port() after start() from any.
#pragma once

#include "app/config.hpp"

#include <array>
#include <cstdint>
#include <memory>

namespace mles::app {

class server {
 public:
  // Validates the config and prepares TLS; throws std::runtime_error with a one-line
  // message on start-up failure (unreadable key, bad certificate, ...).
  explicit server(config cfg);
  ~server();  // stops if still running
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and starts the event loops; returns once the server accepts connections.
  // Throws std::runtime_error("cannot listen on [::]:443: Permission denied") and the like.
  void start();
  // The bound TLS/WebSocket port (the real one when config.port was 0).
  std::uint16_t port() const;
  // The bound --redirect port (plain HTTP), 0 without --redirect.
  std::uint16_t redirect_port() const;
  // The bound --metrics port, 0 without --metrics.
  std::uint16_t metrics_port() const;
  // Graceful stop: stop accepting, close 1001 to every session, wait up to
  // shutdown_timeout, stop the loops. Idempotent; safe from a signal-handling thread.
  void stop();
  // Blocks until stop() finished (from any thread) .
  void wait();
  // SIGHUP: re-reads --tls-cert/--tls-key (tls_mode::files). New handshakes get the new
  // certificate, open sessions keep theirs. A file that does not load is logged as an error
  // and the current certificate stays. True when a new certificate is served; false (nothing
  // to do, logged at info) in the other TLS modes. Safe from any thread.
  bool reload_tls();

  // Figures for tests and logs.
  struct stats {
    std::size_t sessions = 0;        // open WebSocket sessions (joined or not)
    std::size_t channels = 0;        // channels known to the hub
    std::uint64_t slow_consumer_closes = 0;
    std::size_t history_cost = 0;        // what --history-total counts now
    std::uint64_t evicted_messages = 0;  // over --history-total
    std::uint64_t evicted_channels = 0;  // idle channels forgotten (budget or channel cap)
    std::uint64_t refused_channels = 0;  // joins refused at --max-channels
    std::size_t inflight_bytes = 0;      // held for partly received messages and bodies
    std::uint64_t inflight_refusals = 0; // sessions closed with 1013 over --max-inflight
    std::size_t connections = 0;                // accepted and open (net::server_counters)
    std::array<std::uint64_t, 4> refused{};     // per net::refusal
  };
  stats current_stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mles::app
