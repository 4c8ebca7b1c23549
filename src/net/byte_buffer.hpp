// byte_buffer: a vector of bytes whose growth leaves the new bytes uninitialised.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace mles::net {

// An allocator whose resize() leaves new bytes uninitialised: ciphertext buffers are written
// right after they grow, and zero-filling a 256 KiB burst first cost ~40 % of its encryption.
template <class T>
struct uninitialized_allocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = uninitialized_allocator<U>;
  };
  uninitialized_allocator() noexcept = default;
  template <class U>
  uninitialized_allocator(const uninitialized_allocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
// Bytes for ciphertext (TLS scratch and held output, sealed records).
using byte_buffer = std::vector<std::uint8_t, uninitialized_allocator<std::uint8_t>>;

}  // namespace mles::net
