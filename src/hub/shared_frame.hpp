// An encoded server frame (or raw handshake bytes): built once, then immutable and shared by
// every recipient's send queue and the channel history (encode once).
// Intrusive reference count in the same allocation as the bytes. Fan-out adds the references
// for all recipients with one atomic add (add_refs + adopt) instead of one per recipient.
// Thread-safety: like std::shared_ptr (handles are not shared, the block is), unless built
// with sharing::one_thread: then every handle must live on one thread (a server with a single
// event loop), and the count is kept without locked instructions, which a profile of fan-out
// showed as the largest single cost per delivered message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <utility>

namespace mles::hub {

enum class sharing : std::uint8_t {
  threads,     // handles may be copied and dropped on any thread (atomic count)
  one_thread,  // every handle lives on the creating thread (plain count)
};

class shared_frame {
 public:
  shared_frame() noexcept = default;
  shared_frame(const shared_frame& o) noexcept : block_(o.block_) { add(1); }
  shared_frame(shared_frame&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
  shared_frame& operator=(shared_frame o) noexcept {
    std::swap(block_, o.block_);
    return *this;
  }
  ~shared_frame() { release(); }

  // One allocation of size bytes, left uninitialised for the caller to fill through
  // writable() before the frame is shared with anyone.
  static shared_frame allocate(std::size_t size, sharing mode = sharing::threads);
  static shared_frame copy_of(std::span<const std::uint8_t> bytes, sharing mode = sharing::threads);

  // Fan-out: reserve n more references in one step, then hand each out with adopt().
  // Every reserved reference must be adopted exactly once.
  void add_refs(std::uint32_t n) const noexcept { add(n); }
  shared_frame adopt() const noexcept { return shared_frame(block_); }

  std::span<std::uint8_t> writable() noexcept { return {bytes_of(block_), size()}; }
  const std::uint8_t* data() const noexcept { return block_ ? bytes_of(block_) : nullptr; }
  std::size_t size() const noexcept { return block_ ? block_->size : 0; }
  std::span<const std::uint8_t> bytes() const noexcept { return {data(), size()}; }
  explicit operator bool() const noexcept { return block_ != nullptr; }
  // Asks the CPU to bring the frame's header into cache (it is about to be released).
  void prefetch() const noexcept {
    if (block_) __builtin_prefetch(block_, 1, 3);
  }
  sharing mode() const noexcept { return block_ ? block_->mode : sharing::threads; }
  void reset() noexcept {
    release();
    block_ = nullptr;
  }

 private:
  struct block {
    std::atomic<std::uint32_t> refs;
    sharing mode;
    std::size_t size;
  };
  static_assert(sizeof(block) == 16);
  explicit shared_frame(block* b) noexcept : block_(b) {}
  static std::uint8_t* bytes_of(block* b) noexcept { return reinterpret_cast<std::uint8_t*>(b + 1); }
  // Small blocks go back to this thread's cache of them (shared_frame.cpp), others to the heap.
  static void free_block(block* b) noexcept;
  void add(std::uint32_t n) const noexcept {
    if (!block_ || !n) return;
    if (block_->mode == sharing::threads) block_->refs.fetch_add(n, std::memory_order_relaxed);
    else block_->refs.store(block_->refs.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (!block_) return;
    bool last;
    if (block_->mode == sharing::threads) {
      last = block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
    } else {
      const std::uint32_t left = block_->refs.load(std::memory_order_relaxed) - 1;
      block_->refs.store(left, std::memory_order_relaxed);
      last = left == 0;
    }
    if (last) free_block(block_);
  }

  block* block_ = nullptr;
};

}  // namespace mles::hub
