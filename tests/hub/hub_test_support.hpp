// What the hub tests share: frames from text and back, and a member that records what it
// was given.
#pragma once

#include "hub/hub.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mles::hub::test {

inline shared_frame frame_of(std::string_view s) {
  return shared_frame::copy_of({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}
inline std::string text_of(const shared_frame& f) { return {reinterpret_cast<const char*>(f.data()), f.size()}; }

// A member that records what it was given.
struct recording_member final : member {
  void deliver(shared_frame f, delivery_kind kind) override {
    std::lock_guard lock(mutex);
    got.push_back(text_of(f));
    kinds.push_back(kind);
  }
  std::vector<std::string> received() {
    std::lock_guard lock(mutex);
    return got;
  }
  std::mutex mutex;
  std::vector<std::string> got;
  std::vector<delivery_kind> kinds;
};

// A link: records the messages relayed to it (frames are not for links).
struct recording_relay final : member {
  struct got_message {
    std::string text;
    std::string server;
    std::uint64_t seq;
    std::uint8_t flags;
    delivery_kind kind;
  };
  void deliver(shared_frame, delivery_kind) override { ADD_FAILURE() << "a relay gets messages, not frames"; }
  void relay(const message& m, delivery_kind kind) override {
    got.push_back({text_of(m.frame), m.from ? m.from->server : std::string("(self)"), m.seq, m.flags, kind});
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& g : got) out.push_back(g.text);
    return out;
  }
  std::vector<got_message> got;
};

}  // namespace mles::hub::test
