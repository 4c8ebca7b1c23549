// What the hub tests share: frames from text and back, and a member that records what it
// was given.
#pragma once

#include "hub/hub.hpp"

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

}  // namespace mles::hub::test
