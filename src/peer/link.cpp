// link: connect, retry, linger (see the header).
#include "peer/link.hpp"

#include "peer/link_session.hpp"

#include <boost/asio/connect.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

namespace mles::peer {

namespace {

// Peers' words (close reasons, HTTP answers) go into our logs: printable ASCII only, bounded.
std::string printable(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace

std::string link_uid(std::string_view server_id) { return "mles-peer:" + std::string(server_id); }

link::link(net::event_loop& loop, const peer_url& url, std::string channel, const link_settings& settings,
           const std::atomic<bool>& stopping, std::function<void(std::uint64_t)> on_idle)
    : loop_(loop), url_(url), channel_(std::move(channel)), settings_(settings), states_(settings.states),
      stopping_(stopping),
      on_idle_(std::move(on_idle)), backoff_(settings.retry_initial, settings.retry_max), resolver_(loop.io()),
      socket_(loop.io()), attempt_timer_(loop.io()), retry_timer_(loop.io()), linger_timer_(loop.io()) {
  if (states_) states_->count[static_cast<std::size_t>(state_)].fetch_add(1, std::memory_order_relaxed);
  boost::json::object join;
  const std::string uid = link_uid(settings.server_id);
  join["uid"] = uid;
  join["channel"] = channel_;
  if (settings.auth && settings.auth->has_secret()) join["auth"] = settings.auth->expected_auth(uid, channel_);
  join_text_ = boost::json::serialize(join);
}

link::~link() {
  if (states_) states_->count[static_cast<std::size_t>(state_)].fetch_sub(1, std::memory_order_relaxed);
}

void link::set_state(state s) noexcept {
  if (states_ && s != state_) {
    states_->count[static_cast<std::size_t>(state_)].fetch_sub(1, std::memory_order_relaxed);
    states_->count[static_cast<std::size_t>(s)].fetch_add(1, std::memory_order_relaxed);
  }
  state_ = s;
}

std::string link::prefix() const { return "peer " + url_.text + " channel '" + printable(channel_, 100) + "'"; }

void link::want(bool wanted, std::uint64_t generation) {
  if (stopped_) return;
  wanted_ = wanted;
  generation_ = generation;
  if (wanted) {
    linger_timer_.cancel();
    if (state_ == state::idle) connect();
    return;
  }
  if (state_ == state::idle) return go_idle();
  arm_linger();
}

void link::go_idle() {
  if (on_idle_) on_idle_(generation_);
}

void link::arm_linger() {
  linger_timer_.expires_after(settings_.linger);
  linger_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->wanted_ || self->stopped_) return;
    self->close_now();
  });
}

void link::close_now() {
  if (state_ == state::idle) return;  // already reported idle
  const bool was_up = state_ == state::up;
  ++attempt_;
  retry_timer_.cancel();
  attempt_timer_.cancel();
  resolver_.cancel();
  boost::system::error_code ignore;
  socket_.close(ignore);
  set_state(state::idle);
  last_reported_.clear();
  backoff_.reset();
  if (auto c = connection_.lock()) {
    if (auto* s = dynamic_cast<link_session*>(c->handler())) s->end();
    else c->finish(net::errc::link_closed);
  }
  connection_.reset();
  if (was_up) spdlog::info("{}: link closed (no local members)", prefix());
  else spdlog::debug("{}: no local members: no more attempts", prefix());
  go_idle();
}

void link::stop() {
  stopped_ = true;
  ++attempt_;
  retry_timer_.cancel();
  attempt_timer_.cancel();
  linger_timer_.cancel();
  resolver_.cancel();
  boost::system::error_code ignore;
  socket_.close(ignore);
}

void link::connect() {
  if (stopped_ || stopping_.load(std::memory_order_relaxed)) return;
  set_state(state::connecting);
  const auto attempt = ++attempt_;
  attempt_timer_.expires_after(settings_.connect_timeout);
  attempt_timer_.async_wait([self = shared_from_this(), attempt](const boost::system::error_code& ec) {
    if (ec || attempt != self->attempt_ || self->state_ != state::connecting) return;
    self->resolver_.cancel();
    boost::system::error_code ignore;
    self->socket_.close(ignore);
    self->fail("cannot connect: timed out");
  });
  resolver_.async_resolve(url_.host, std::to_string(url_.port),
                          [self = shared_from_this(), attempt](const boost::system::error_code& ec,
                                                               boost::asio::ip::tcp::resolver::results_type r) {
                            if (attempt != self->attempt_) return;
                            self->on_resolved(ec, std::move(r));
                          });
}

void link::on_resolved(const boost::system::error_code& ec, boost::asio::ip::tcp::resolver::results_type results) {
  if (ec) return fail("cannot connect: cannot resolve " + url_.host + ": " + ec.message());
  socket_ = boost::asio::ip::tcp::socket(loop_.io());
  const auto attempt = attempt_;
  boost::asio::async_connect(socket_, results,
                             [self = shared_from_this(), attempt](const boost::system::error_code& e,
                                                                  const boost::asio::ip::tcp::endpoint&) {
                               if (attempt != self->attempt_) return;
                               self->on_connected(e);
                             });
}

void link::on_connected(const boost::system::error_code& ec) {
  attempt_timer_.cancel();
  if (ec) return fail("cannot connect: " + ec.message());
  boost::system::error_code ignore;
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignore);
  socket_.set_option(boost::asio::socket_base::keep_alive(true), ignore);
  SSL* ssl = nullptr;
  if (url_.secure) {
    ssl = SSL_new(settings_.tls.get());
    if (!ssl) return fail("TLS: cannot create a session");
    // SNI is a host name; the certificate must name the host (or address) we dialled.
    if (!url_.host_is_address()) {
      SSL_set_tlsext_host_name(ssl, url_.host.c_str());
      SSL_set1_host(ssl, url_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str());
    }
  }
  set_state(state::joining);
  const auto deadline = loop_.now() + settings_.connect_timeout;
  auto c = std::make_shared<net::connection>(loop_, std::move(socket_), ssl, net::tls_role::client);
  socket_ = boost::asio::ip::tcp::socket(loop_.io());
  connection_ = c;
  auto first = std::make_unique<link_upgrade>(*c, shared_from_this(), deadline);
  c->start(std::move(first), deadline);
}

void link::on_up(bool peer_mode) {
  if (state_ == state::closing) return;
  set_state(state::up);
  backoff_.reset();
  last_reported_.clear();
  spdlog::info("{}: link up ({} mode)", prefix(), peer_mode ? "peer" : "reference");
  if (!wanted_) arm_linger();
}

void link::on_ended(const boost::system::error_code& why, std::string_view detail) {
  connection_.reset();
  if (stopped_ || stopping_.load(std::memory_order_relaxed) || state_ == state::idle) return;
  const bool was_up = state_ == state::up;
  std::string reason;
  const std::string d = printable(detail);
  if (was_up) {
    reason = "link lost: " + why.message() + (d.empty() ? "" : ": " + d);
  } else if (why == net::errc::closed_by_peer) {
    reason = "join refused: " + d;
  } else if (why == net::errc::tls_handshake_failed) {
    reason = "TLS: " + d;  // certificate verification failures read "certificate verify failed"
  } else if (why == net::errc::upgrade_refused) {
    reason = "upgrade refused: " + d;
  } else if (why == net::errc::connection_lost) {
    reason = "join refused: connection closed by the peer";
  } else {
    reason = why.message() + (d.empty() ? "" : ": " + d);
  }
  fail(reason);
}

void link::fail(const std::string& reason) {
  if (stopped_ || stopping_.load(std::memory_order_relaxed)) return;
  set_state(state::waiting);
  const auto delay = backoff_.next();
  report(reason, delay);
  schedule_retry(delay);
}

void link::schedule_retry(std::chrono::milliseconds delay) {
  const auto attempt = attempt_;
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([self = shared_from_this(), attempt](const boost::system::error_code& ec) {
    if (ec || attempt != self->attempt_ || self->state_ != state::waiting) return;
    if (!self->wanted_) {
      // Nobody here needs the link any more: stop trying.
      self->set_state(state::idle);
      self->last_reported_.clear();
      self->backoff_.reset();
      self->go_idle();
      return;
    }
    self->connect();
  });
}

void link::report(const std::string& reason, std::chrono::milliseconds retry_in) {
  const std::string line =
      fmt::format("{}: {}; retrying in {:.1f} s", prefix(), reason, static_cast<double>(retry_in.count()) / 1000.0);
  if (reason != last_reported_) {
    spdlog::warn("{}", line);
    last_reported_ = reason;
  } else {
    spdlog::debug("{}", line);
  }
}

}  // namespace mles::peer
