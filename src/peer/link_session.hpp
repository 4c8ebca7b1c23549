// The two phases of a link's connection (client role): the WebSocket upgrade request and its
// answer (link_upgrade), then the Mles session on the peer (link_session): the join frame,
// a ping whose answer says the join was accepted, and messages both ways. In peer mode the
// messages carry the origin envelope; otherwise they are plain, and the channel deduplicates
// by payload hash.
// data path: hub ─► relay ─► masked frame ─► peer;  peer frames ─► hub.publish (origin: link)
// Thread-safety: relay()/deliver() from any thread (they only enqueue); the rest on the loop.
// Owned by the connection; the hub holds the session through an aliasing pointer.
#pragma once

#include "hub/hub.hpp"
#include "net/connection.hpp"
#include "net/websocket.hpp"
#include "ws/client_handshake.hpp"

#include <memory>
#include <string>

namespace mles::peer {

class link;

class link_upgrade final : public net::connection_handler {
 public:
  link_upgrade(net::connection& c, std::shared_ptr<link> owner, net::event_loop::clock::time_point deadline);

  void on_ready() override;
  void on_bytes(std::span<std::uint8_t> bytes) override;
  void on_sweep(net::event_loop::clock::time_point now) override;
  void on_go_away() override;
  void on_finished(const boost::system::error_code& why, std::string_view detail) override;

 private:
  std::shared_ptr<link> owner_;
  std::string key_;
  ws::upgrade_response_reader reader_;
  net::event_loop::clock::time_point deadline_;
  bool handed_over_ = false;
};

class link_session final : public net::websocket, public hub::member {
 public:
  link_session(net::connection& c, std::shared_ptr<link> owner, bool peer_mode,
               net::event_loop::clock::time_point deadline);
  // Sends the join and the ping, joins the local channel as a link.
  void start(std::span<std::uint8_t> early_bytes);

  // hub::member
  void deliver(hub::shared_frame frame, hub::delivery_kind kind) override;
  void relay(const hub::message& m, hub::delivery_kind kind) override;

  // connection_handler
  void on_sweep(net::event_loop::clock::time_point now) override;
  void on_finished(const boost::system::error_code& why, std::string_view detail) override;
  std::string describe() const override;
  hub::member* relay_target() noexcept override { return this; }

  // The link is no longer needed: close 1000.
  void end();

 private:
  bool on_data(ws::opcode op, std::span<const std::uint8_t> payload) override;
  void count_delivered(std::size_t recipients, std::size_t bytes) noexcept;
  bool on_pong(std::span<const std::uint8_t> payload) override;
  void on_leave() override;
  void mark_up();

  std::shared_ptr<link> owner_;
  bool peer_mode_;
  bool up_ = false;
  net::event_loop::clock::time_point deadline_;  // for the answer to the join's ping
  hub::membership membership_;
  hub::origin_ptr last_origin_;
};

}  // namespace mles::peer
