// shared_frame: one allocation per encoded frame.
#include "hub/shared_frame.hpp"

#include <cstring>

namespace mles::hub {

shared_frame shared_frame::copy_of(std::span<const std::uint8_t> bytes) {
  auto f = allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(f.writable().data(), bytes.data(), bytes.size());
  return f;
}

}  // namespace mles::hub
