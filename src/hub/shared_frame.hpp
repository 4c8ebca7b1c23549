// An encoded server frame (or raw handshake bytes): built once, then immutable and shared by
// every recipient's send queue and the channel history (DESIGN §2.1: encode once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace mles::hub {

class shared_frame {
 public:
  shared_frame() = default;

  // One allocation of size bytes, left uninitialised for the caller to fill through
  // writable() before the frame is shared with anyone.
  static shared_frame allocate(std::size_t size) {
    shared_frame f;
    f.bytes_ = std::make_shared_for_overwrite<std::uint8_t[]>(size);
    f.size_ = size;
    return f;
  }
  static shared_frame copy_of(std::span<const std::uint8_t> bytes);

  std::span<std::uint8_t> writable() noexcept { return {bytes_.get(), size_}; }
  const std::uint8_t* data() const noexcept { return bytes_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::span<const std::uint8_t> bytes() const noexcept { return {bytes_.get(), size_}; }
  explicit operator bool() const noexcept { return bytes_ != nullptr; }

 private:
  std::shared_ptr<std::uint8_t[]> bytes_;
  std::size_t size_ = 0;
};

}  // namespace mles::hub
