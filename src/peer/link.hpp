// A link to one peer server for one channel: this server joins the channel on the peer as an
// ordinary Mles client (so any server that speaks the protocol can be a peer), relays what
// its members publish, and publishes what the peer sends. It connects while the channel has
// local members, retries with backoff when the peer is down or refuses, and closes a while
// (linger) after the last local member left.
// Phases of one attempt: resolve ─► TCP connect ─► TLS (client, verified) ─► upgrade request
// (link_upgrade) ─► join + ping (link_session) ─► up when the peer answers the ping.
// Thread-safety: a link lives on one event loop; every member function runs there (the
// federation posts to it). Owned by shared_ptr: the federation's map and pending operations.
#pragma once

#include "hub/hub.hpp"
#include "net/connection.hpp"
#include "net/event_loop.hpp"
#include "net/tls_context.hpp"
#include "net/websocket.hpp"
#include "peer/backoff.hpp"
#include "peer/peer_url.hpp"
#include "proto/auth.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mles::peer {

// What every link shares; owned by the federation, immutable after start.
// How many links are in each state now (metrics), shared by the links of one server. Index:
// idle, connecting, joining, up, retrying (waiting for the next attempt), closing.
struct link_states {
  static constexpr std::array<const char*, 6> names{"idle", "connecting", "joining", "up", "retrying", "closing"};
  std::array<std::atomic<std::int64_t>, names.size()> count{};
};

struct link_settings {
  net::ssl_ctx_ptr tls;                      // client context for wss:// peers
  std::string server_id;                     // ours: the uid on peers and the Mles-Peer id
  bool peer_mode = true;                     // offer the peer mode (Mles-Peer header)
  const proto::authenticator* auth = nullptr;  // MLES_KEY: the join's auth when it has one
  std::chrono::milliseconds linger{60'000};
  std::chrono::milliseconds retry_initial{1'000};
  std::chrono::milliseconds retry_max{60'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::size_t max_message = 16u << 20;
  std::shared_ptr<link_states> states;       // null: not counted
};

// The uid this server joins peers' channels with.
std::string link_uid(std::string_view server_id);

class link : public std::enable_shared_from_this<link> {
 public:
  // on_idle(generation) runs (on this loop) when the link closed, or stopped retrying, for
  // lack of local members; generation is that of the last want() call.
  link(net::event_loop& loop, const peer_url& url, std::string channel, const link_settings& settings,
       const std::atomic<bool>& stopping, std::function<void(std::uint64_t)> on_idle);
  ~link();
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  // The channel has local members (true) or has had none since now (false); generation
  // numbers the federation's interest changes.
  void want(bool wanted, std::uint64_t generation);
  // Server stop: no more attempts; timers cancelled (the loop closes the connection).
  void stop();

  const peer_url& url() const noexcept { return url_; }
  const std::string& channel() const noexcept { return channel_; }
  net::event_loop& loop() noexcept { return loop_; }
  const link_settings& settings() const noexcept { return settings_; }
  bool is_up() const noexcept { return state_ == state::up; }

  // From the link's connection handlers:
  void on_up(bool peer_mode);
  void on_ended(const boost::system::error_code& why, std::string_view detail);
  // The join frame this link sends (a reference peer replays it to us in its history).
  const std::string& join_text() const noexcept { return join_text_; }

 private:
  enum class state : std::uint8_t { idle, connecting, joining, up, waiting, closing };

  void connect();
  void on_resolved(const boost::system::error_code& ec, boost::asio::ip::tcp::resolver::results_type results);
  void on_connected(const boost::system::error_code& ec);
  void fail(const std::string& reason);
  void schedule_retry(std::chrono::milliseconds delay);
  void close_now();
  void go_idle();
  void set_state(state s) noexcept;  // keeps states_ in step
  void arm_linger();
  // Logs a failure at warn when it differs from the last one logged, else at debug.
  void report(const std::string& reason, std::chrono::milliseconds retry_in);
  std::string prefix() const;

  net::event_loop& loop_;
  peer_url url_;
  std::string channel_;
  const link_settings& settings_;
  // Its own share of settings_.states: a link may outlive the federation that owns the
  // settings (handlers holding it are destroyed with the event loop, after the federation).
  std::shared_ptr<link_states> states_;
  const std::atomic<bool>& stopping_;
  std::function<void(std::uint64_t)> on_idle_;
  std::uint64_t generation_ = 0;
  std::string join_text_;

  state state_ = state::idle;
  bool wanted_ = false;
  bool stopped_ = false;
  std::uint64_t attempt_ = 0;  // increments per attempt: late callbacks of older ones are ignored
  backoff backoff_;
  std::string last_reported_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer attempt_timer_;  // resolve + connect deadline
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer linger_timer_;
  std::weak_ptr<net::connection> connection_;
};

}  // namespace mles::peer
