// shared_frame: one allocation per encoded frame (header block + bytes).
#include "hub/shared_frame.hpp"

#include <cstring>

namespace mles::hub {

shared_frame shared_frame::allocate(std::size_t size, sharing mode) {
  void* raw = ::operator new(sizeof(block) + size);
  auto* b = new (raw) block{};
  b->refs.store(1, std::memory_order_relaxed);
  b->mode = mode;
  b->size = size;
  return shared_frame(b);
}

shared_frame shared_frame::copy_of(std::span<const std::uint8_t> bytes, sharing mode) {
  auto f = allocate(bytes.size(), mode);
  if (!bytes.empty()) std::memcpy(f.writable().data(), bytes.data(), bytes.size());
  return f;
}

}  // namespace mles::hub
