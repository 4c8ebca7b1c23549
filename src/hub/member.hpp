// What the hub delivers to: one joined session (or, later, a peer link). The hub knows members
// only through this interface, so it stays free of I/O.
#pragma once

#include "hub/shared_frame.hpp"

namespace mles::hub {

enum class delivery_kind : bool {
  history,  // replayed at join: not counted against the member's send ceiling
  live,     // a message forwarded now
};

class member {
 public:
  // Called with the channel's lock held, from any thread: must not block and must not call
  // back into the hub. A member that cannot keep up (its send ceiling is exceeded) drops the
  // frame, arranges its own disconnection and returns; the hub never waits for anyone.
  virtual void deliver(shared_frame frame, delivery_kind kind) = 0;

 protected:
  ~member() = default;
};

}  // namespace mles::hub
