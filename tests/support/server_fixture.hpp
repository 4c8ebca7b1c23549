// Runs the real server in-process on 127.0.0.1:0 (plain or TLS with a self-signed certificate
// for localhost) with shrunken timings, and hands out connected test clients.
// Thread-safety: one controlling thread; stats() from any.
#pragma once

#include "app/config.hpp"
#include "app/server.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mles::test {

// The configuration every integration test starts from: bind 127.0.0.1, port 0, one event
// loop, domains {"localhost"}, wwwroot given, short timeouts (seconds, not tens of seconds).
// MLES_TEST_LOG overrides the log level (default "warn").
app::config test_config(transport mode, const std::filesystem::path& wwwroot);

class server_fixture {
 public:
  // Builds the config, lets tweak adjust it, starts the server. Start-up errors throw.
  explicit server_fixture(transport mode, const std::function<void(app::config&)>& tweak = {});
  ~server_fixture();
  server_fixture(const server_fixture&) = delete;
  server_fixture& operator=(const server_fixture&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  transport mode() const noexcept { return mode_; }
  const app::config& config() const noexcept { return cfg_; }
  app::server& server() noexcept { return *server_; }
  app::server::stats stats() const { return server_->current_stats(); }

  // Options for a client of this server (right transport, SNI localhost).
  connect_options client_options() const;
  // Each step below reports a failure to GoogleTest with the reason; the client returned is
  // then unconnected (or not upgraded) and every later operation on it fails fast.
  std::unique_ptr<ws_client> connect(const connect_options& options);
  std::unique_ptr<ws_client> connect() { return connect(client_options()); }
  // Connected and upgraded with Sec-WebSocket-Protocol: mles-websocket (101 expected).
  std::unique_ptr<ws_client> open();
  // Upgraded and join frame sent (no acknowledgement exists in the protocol).
  std::unique_ptr<ws_client> join(std::string_view uid, std::string_view channel,
                                  std::optional<std::string> auth = std::nullopt);
  // For the first member of a channel nobody else is on: joins, then waits until the
  // server knows one channel more than before (a ping/pong round trip first).
  std::unique_ptr<ws_client> join_first(std::string_view uid, std::string_view channel,
                                        std::optional<std::string> auth = std::nullopt);

  // Graceful stop (idempotent); the destructor calls it too.
  void stop();

 private:
  temp_dir www_;
  transport mode_;
  app::config cfg_;
  std::unique_ptr<app::server> server_;
  std::uint16_t port_ = 0;
};

}  // namespace mles::test
