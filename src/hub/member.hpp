// What the hub delivers to: a joined client session, an inbound link from a peer server, or
// an outbound link of ours. The hub knows them only through this interface, so it stays free
// of I/O.
#pragma once

#include "hub/message.hpp"
#include "hub/shared_frame.hpp"

#include <cstdint>

namespace mles::hub {

enum class delivery_kind : std::uint8_t {
  history,  // replayed at join: not counted against the member's send ceiling
  live,     // a message of a client, forwarded now
  relayed,  // a message that came over a link, forwarded now. One origin's messages may
            // reach a member through links on different event loops (whichever path brought
            // each first): they take the member's shared, locked queue even from its own
            // loop, so they keep the order in which the hub accepted them.
            // Also a client's batched messages on a server with several loops
            // (hub::publish_batched: a batch may be delivered by another loop's thread).
};

// What a member is to its channel.
enum class member_role : std::uint8_t {
  client,          // a client session (a reference server's link looks like one): receives
                   // frames; its presence is the channel's local interest
  peer_session,    // an inbound link from a server in peer mode: receives messages with their
                   // origin (history too); its join frame is not stored
  peer_link,       // our outbound link in peer mode: messages with origin, no history, no uid
  reference_link,  // our outbound link to a server without peer mode: messages without
                   // origin; the channel deduplicates by payload hash while it is attached
};

constexpr bool is_relay(member_role r) noexcept { return r != member_role::client; }

class member {
 public:
  // Clients: the frame to send. Called with the channel's lock held, from any thread: must
  // not block and must not call back into the hub. A member that cannot keep up (its send
  // ceiling is exceeded) drops the frame, arranges its own disconnection and returns; the
  // hub never waits for anyone.
  virtual void deliver(shared_frame frame, delivery_kind kind) = 0;
  // Relays (links): the message with its origin, to encode for the link. Same rules.
  virtual void relay(const message& m, delivery_kind kind) { deliver(m.frame, kind); }

 protected:
  ~member() = default;
};

}  // namespace mles::hub
