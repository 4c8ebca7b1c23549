// The server's WebSocket session: the join frame (JSON, auth, one session per uid), then every
// message to the hub and every delivery from it to the client. An upgrade that negotiated the
// peer mode (another server of this project linking to us) makes it a peer session: its
// messages carry the origin envelope, and what it receives is enveloped too.
// data path: frames ─► join check ─► hub.join;  frames ─► hub.publish
//            hub ─► deliver / relay ─► connection send queue
// Thread-safety: the peer state's deliver()/relay() from any thread (they only enqueue); the
// rest on the loop.
// Owned by its connection; the hub holds it through an aliasing pointer to the connection.
#pragma once

#include "hub/hub.hpp"
#include "hub/member.hpp"
#include "net/websocket.hpp"

#include <memory>
#include <string>
#include <vector>

namespace mles::net {

class ws_session final : public websocket {
 public:
  // peer_id: the linking server's id when the upgrade negotiated the peer mode, else empty.
  ws_session(connection& c, std::string peer_id);

  // connection_handler
  void on_bytes(std::span<std::uint8_t> bytes) override;
  void on_sweep(event_loop::clock::time_point now) override;
  void on_finished(const boost::system::error_code& why, std::string_view detail) override;
  std::string describe() const override;
  hub::member* relay_target() noexcept override { return peer_.get(); }

 private:
  bool on_data(ws::opcode op, std::span<const std::uint8_t> payload) override;
  void on_leave() override;
  bool handle_join(ws::opcode op, std::span<const std::uint8_t> payload);
  // After the join frame was accepted (and, in cluster mode, the gate admitted it): the hub.
  bool enter_hub(std::string join_text, const std::string& channel);
  bool refuse_join(const boost::system::error_code& ec, std::string_view channel);
  // Cluster mode: the gate's answer, on the session's loop.
  void on_admitted(admission a);
  void release_claim(std::string_view channel) noexcept;
  // The channel joined (or being joined at the gate); empty before.
  std::string_view channel_name() const noexcept;
  bool handle_peer_message(std::span<const std::uint8_t> payload);
  void publish_when_durable(hub::history_store& durable, hub::message m);

  // Peer mode (another server of this project linking to us); null for a client. It is the
  // connection's relay target: what the hub relays goes out enveloped with its origin.
  struct peer_state final : hub::member {
    peer_state(connection& c, std::string peer_id) : conn(c), id(std::move(peer_id)) {}
    void deliver(hub::shared_frame frame, hub::delivery_kind kind) override;
    void relay(const hub::message& m, hub::delivery_kind kind) override;
    connection& conn;
    std::string id;
    hub::origin_ptr last_origin;  // origin of the previous message
  };
  // (The flags first: they fill the padding at the end of websocket's fields.)
  bool joined_ = false;
  // Messages are published as a batch (hub::publish_batched) that end_batch() delivers at the
  // end of each read, and after the messages kept while the join was at the gate.
  bool batch_open_ = false;
  bool counted_joined_ = false;  // counted in server_counters::joined (client sessions)
  bool claimed_ = false;         // cluster mode: the gate claimed (uid, channel) for this session
  std::unique_ptr<peer_state> peer_;
  hub::membership membership_;
  std::string uid_;  // (the channel's name is the membership's: no copy per session)
  void end_batch();
  void uncount_joined() noexcept;
  // Cluster mode: the join waits for the gate; messages that arrive meanwhile wait here
  // (bounded by --max-queue plus one --max-message) and are handled in order once the
  // session joined. Null when no join is at the gate.
  struct early_message {
    ws::opcode op;
    std::vector<std::uint8_t> payload;
  };
  struct gate_wait {
    std::string channel;
    std::string join_text;  // the join frame
    std::vector<early_message> early;
    std::size_t early_bytes = 0;
  };
  std::unique_ptr<gate_wait> admitting_;
};

}  // namespace mles::net
