// server_fixture: config for tests, in-process server start/stop, client factories.
#include "support/server_fixture.hpp"

#include "app/logging.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace mles::test {

app::config test_config(transport mode, const std::filesystem::path& wwwroot) {
  app::config cfg;
  cfg.domains = {"localhost"};
  cfg.wwwroot = wwwroot;
  cfg.bind = "127.0.0.1";
  cfg.port = 0;
  cfg.tls = mode == transport::tls ? app::tls_mode::self_signed : app::tls_mode::none;
  cfg.threads = 1;
  const char* level = std::getenv("MLES_TEST_LOG");
  cfg.log_level = level != nullptr ? level : "warn";
  cfg.handshake_timeout = std::chrono::milliseconds{3000};
  cfg.join_timeout = std::chrono::milliseconds{3000};
  cfg.close_timeout = std::chrono::milliseconds{1000};
  cfg.shutdown_timeout = std::chrono::milliseconds{2000};
  return cfg;
}

server_fixture::server_fixture(transport mode, const std::function<void(app::config&)>& tweak)
    : mode_(mode), cfg_(test_config(mode, www_.path())) {
  if (tweak) tweak(cfg_);
  // As main does: the in-process server logs at the configured level.
  app::setup_logging(app::parse_log_level(cfg_.log_level).value_or(spdlog::level::warn));
  server_ = std::make_unique<app::server>(cfg_);
  server_->start();
  port_ = server_->port();
}

server_fixture::~server_fixture() { stop(); }

void server_fixture::stop() {
  if (server_) server_->stop();
}

connect_options server_fixture::client_options() const {
  connect_options o;
  o.mode = mode_;
  o.host = "127.0.0.1";
  o.tls.sni = "localhost";
  return o;
}

std::unique_ptr<ws_client> server_fixture::connect(const connect_options& options) {
  auto c = std::make_unique<ws_client>();
  if (!c->connect(port_, options)) {
    ADD_FAILURE() << "connecting to 127.0.0.1:" << port_ << " (" << to_string(options.mode) << ") failed: " << c->error();
  }
  return c;
}

std::unique_ptr<ws_client> server_fixture::open() {
  auto c = connect();
  if (!c->connected()) return c;
  const http_response r = c->handshake();
  if (r.code != 101) {
    ADD_FAILURE() << "upgrade refused: " << r.describe();
    c->close_socket();
  }
  return c;
}

std::unique_ptr<ws_client> server_fixture::join(std::string_view uid, std::string_view channel,
                                                std::optional<std::string> auth) {
  auto c = open();
  if (c->connected() && !c->join(uid, channel, std::move(auth))) {
    ADD_FAILURE() << "sending the join frame failed: " << c->error();
  }
  return c;
}

std::unique_ptr<ws_client> server_fixture::join_first(std::string_view uid, std::string_view channel,
                                                      std::optional<std::string> auth) {
  const std::size_t before = stats().channels;
  auto c = join(uid, channel, std::move(auth));
  if (!c->connected()) return c;
  if (!c->sync()) ADD_FAILURE() << "no pong after joining '" << channel << "': " << c->error();
  if (!wait_until([&] { return stats().channels > before; })) {
    ADD_FAILURE() << "the server never counted channel '" << channel << "' (channels stays " << stats().channels
                  << ")";
  }
  return c;
}

}  // namespace mles::test
