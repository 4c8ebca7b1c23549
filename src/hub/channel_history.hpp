// A channel's history: the last `limit` messages, also bounded by bytes, oldest dropped first.
// Not thread-safe: the owning channel's lock protects it.
#pragma once

#include "hub/message.hpp"

#include <cstddef>
#include <vector>

namespace mles::hub {

class channel_history {
 public:
  channel_history(std::size_t limit, std::size_t max_bytes) noexcept
      : limit_(limit), max_bytes_(max_bytes) {}

  // Appends, then drops the oldest messages while over the count or byte limit. The newest
  // message is always kept, even if it alone is over the byte limit. Returns the stored
  // message (valid until the next push or clear), or null with a limit of 0.
  const message* push(message m);
  // Calls fn(const message&) for every message, oldest first.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < count_; ++i) fn(ring_[(head_ + i) % ring_.size()]);
  }
  void clear() noexcept;
  // Drops the oldest message (the global history budget evicts this way); false when empty.
  bool drop_oldest() noexcept {
    if (count_ == 0) return false;
    pop_front();
    return true;
  }

  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void pop_front() noexcept;
  // i < 2 × ring size, into the ring (no division on the per-message path).
  std::size_t wrap(std::size_t i) const noexcept { return i >= ring_.size() ? i - ring_.size() : i; }

  std::size_t limit_;
  std::size_t max_bytes_;
  std::vector<message> ring_;  // grows to limit_ (doubling), then used as a ring
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace mles::hub
