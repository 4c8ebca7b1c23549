// The hub: channels by name, their members and history, and fan-out.
// data path: session ─► hub.join / hub.publish ─► member.deliver (each member's send queue)
// Thread-safety: every member function is safe from any thread. Lock order: channel map,
// then one channel; members' deliver() runs under the channel lock (it only enqueues).
// Exception: with hub_limits::one_thread (a server with a single event loop) every call comes
// from that loop's thread, and channels are not locked at all (a per-message mutex showed
// as ~9% of a 100-channel fan-out profile).
#pragma once

#include "hub/channel_history.hpp"
#include "hub/member.hpp"
#include "hub/shared_frame.hpp"
#include "proto/error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mles::hub {

using clock = std::chrono::steady_clock;

struct hub_limits {
  std::size_t history_limit = 200;         // frames per channel (SPEC §1.5)
  std::size_t history_bytes = 32u << 20;   // bytes per channel
  bool one_thread = false;                 // every call from one thread: no channel locks
};

class channel {
 public:
  channel(std::string name, const hub_limits& limits, clock::time_point now)
      : name_(std::move(name)), history_(limits.history_limit, limits.history_bytes),
        last_activity_(now) {}
  const std::string& name() const noexcept { return name_; }

 private:
  friend class hub;
  struct entry {
    std::uint64_t id;
    std::string uid;
    std::shared_ptr<member> who;
  };

  std::string name_;
  mutable std::mutex mutex_;
  channel_history history_;
  std::vector<entry> members_;
  clock::time_point last_activity_;
};

// A member's place in a channel, returned by join and handed back to publish/leave.
struct membership {
  std::shared_ptr<channel> where;
  std::uint64_t id = 0;
  explicit operator bool() const noexcept { return where != nullptr; }
};

class hub {
 public:
  explicit hub(hub_limits limits) : limits_(limits) {}

  // SPEC §1.4-1.5, atomically under the channel lock: refuse a uid already joined to the
  // channel (error duplicate_uid, nothing stored); else deliver the channel's history to
  // `who` oldest first, append `join_frame` to the history (it is not sent to the members
  // already present) and add `who`. Creates the channel on first use.
  membership join(std::string_view channel_name, std::string_view uid, shared_frame join_frame,
                  std::shared_ptr<member> who, boost::system::error_code& ec,
                  clock::time_point now = clock::now());

  // SPEC §1.6: append to history and deliver to every member but the sender.
  void publish(const membership& m, const shared_frame& frame, clock::time_point now = clock::now());

  // Removes the member; the channel and its history stay (SPEC §1.7).
  void leave(membership& m);

  // Forgets channels idle (no publish or join) for at least ttl: their history is dropped, and
  // channels without members are removed. Returns the number of channels removed.
  std::size_t expire(clock::time_point now, clock::duration ttl);

  std::size_t channel_count() const;
  const hub_limits& limits() const noexcept { return limits_; }

 private:
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  // Locks a channel unless the hub is used from one thread only.
  class channel_lock {
   public:
    channel_lock(std::mutex& m, bool on) : m_(on ? &m : nullptr) {
      if (m_) m_->lock();
    }
    ~channel_lock() {
      if (m_) m_->unlock();
    }
    void unlock() {
      if (m_) m_->unlock();
      m_ = nullptr;
    }
    channel_lock(const channel_lock&) = delete;
    channel_lock& operator=(const channel_lock&) = delete;

   private:
    std::mutex* m_;
  };
  bool locking() const noexcept { return !limits_.one_thread; }

  hub_limits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<channel>, name_hash, std::equal_to<>> channels_;
  std::uint64_t next_id_ = 1;  // under mutex_
};

}  // namespace mles::hub
