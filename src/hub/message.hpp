// One message as the hub keeps and forwards it: the encoded server frame every client
// receives, and where it entered the mesh of linked servers (origin + sequence), so peer
// links can carry it on and deduplicate it exactly.
#pragma once

#include "hub/shared_frame.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace mles::hub {

// A server instance messages come from: its server id and a number drawn at its start (a
// restarted server numbers its messages from 1 again under a new instance).
struct origin {
  std::string server;
  std::uint64_t instance = 0;
  bool operator==(const origin& o) const noexcept { return instance == o.instance && server == o.server; }
};
using origin_ptr = std::shared_ptr<const origin>;

// Flags of a message; the same bits as the peer envelope's (proto/peer_envelope.hpp).
namespace message_flags {
inline constexpr std::uint8_t text = 1;     // (wire only) the member's message was TEXT
inline constexpr std::uint8_t join = 2;     // a join frame: history only, never delivered live
inline constexpr std::uint8_t hashed = 4;   // entered from a link without peer mode
inline constexpr std::uint8_t stored = 8;   // (this server only) already in the durable store
}  // namespace message_flags

// Sequence numbers fit in 56 bits: the flags take the rest of the word, and a history slot
// is 32 bytes, not 40. What comes in from links and stores above it is refused there.
inline constexpr std::uint64_t max_sequence = (std::uint64_t{1} << 56) - 1;

struct message {
  shared_frame frame;      // header + payload, as clients receive it (history holds this)
  origin_ptr from;         // null: this server (its members' messages; no reference count
                           // touched per message); else the server it came from
  std::uint64_t seq : 56 = 0;   // sequence number at its origin, per channel, from 1 (max_sequence)
  std::uint8_t flags = 0;       // message_flags (in the seq word's last byte)
};
static_assert(sizeof(message) == 32);

}  // namespace mles::hub
