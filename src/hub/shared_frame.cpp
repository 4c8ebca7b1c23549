// shared_frame: one allocation per encoded frame (header block + bytes).
#include "hub/shared_frame.hpp"

#include <array>
#include <cstring>

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

namespace mles::hub {

namespace {

// Small frames (a chat message, a join) are recycled per thread instead of going back to the
// heap: fan-out allocates one frame per published message and the history ring frees the one
// it drops, in bursts that overflow glibc's per-thread cache (7 chunks per size), after which
// every allocation and free went through its bins: ~3 % of a 100-channel fan-out profile, and
// a larger glibc cache (tcache_count=1000) gave +3-6 % delivered/s over TLS in paired runs.
// Blocks are kept in glibc's own size steps (16 bytes, 8 of them its header), so a recycled
// block takes the same memory the heap would have; at most cache_bytes per thread are kept.
constexpr std::size_t heap_header = 8;
constexpr std::size_t heap_step = 16;
constexpr std::size_t cache_max_block = 512;  // the frame's header block and bytes
constexpr std::size_t cache_bytes = std::size_t{1} << 20;

// The heap chunk a request of n bytes takes, as a size class index (n ≤ cache_max_block).
constexpr std::size_t class_of(std::size_t n) noexcept { return (n + heap_header + heap_step - 1) / heap_step; }
// The most a block of that class can hold.
constexpr std::size_t capacity_of(std::size_t cls) noexcept { return cls * heap_step - heap_header; }
constexpr std::size_t cache_classes = class_of(cache_max_block) + 1;

struct free_frame {
  free_frame* next;
};
static_assert(capacity_of(1) >= sizeof(free_frame));  // the link fits the smallest block

struct frame_cache {
  std::array<free_frame*, cache_classes> heads{};
  std::size_t bytes = 0;
  frame_cache() = default;
  frame_cache(const frame_cache&) = delete;
  frame_cache& operator=(const frame_cache&) = delete;
  ~frame_cache();
};

thread_local frame_cache cache;
thread_local bool cache_gone = false;  // trivially destructible: readable after cache's end

frame_cache::~frame_cache() {
  cache_gone = true;  // frames released later on this thread (static destructors) go to the heap
  for (free_frame*& head : heads) {
    while (head) {
      free_frame* f = head;
      ASAN_UNPOISON_MEMORY_REGION(f, sizeof(free_frame));
      head = f->next;
      ::operator delete(f);
    }
  }
}

}  // namespace

void shared_frame::free_block(block* b) noexcept {
  const std::size_t n = sizeof(block) + b->size;
  b->~block();
  if (n <= cache_max_block && !cache_gone) {
    const std::size_t cls = class_of(n);
    const std::size_t held = cls * heap_step;
    if (cache.bytes + held <= cache_bytes) {
      auto* f = new (static_cast<void*>(b)) free_frame{cache.heads[cls]};
      cache.heads[cls] = f;
      cache.bytes += held;
      // Poisoned while cached, all but the list's link: a use of the frame's size or bytes
      // after its last release still trips AddressSanitizer. The link stays readable because
      // LeakSanitizer does not follow pointers kept in poisoned memory: the frames cached by a
      // thread still running at exit (nats.c's delivery thread) were reported leaked.
      ASAN_POISON_MEMORY_REGION(reinterpret_cast<std::uint8_t*>(f) + sizeof(free_frame),
                                capacity_of(cls) - sizeof(free_frame));
      return;
    }
  }
  ::operator delete(static_cast<void*>(b));
}

shared_frame shared_frame::allocate(std::size_t size, sharing mode) {
  const std::size_t n = sizeof(block) + size;
  void* raw = nullptr;
  if (n <= cache_max_block && !cache_gone) {
    const std::size_t cls = class_of(n);
    if (free_frame* f = cache.heads[cls]) {
      ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<std::uint8_t*>(f), capacity_of(cls));
      cache.heads[cls] = f->next;
      cache.bytes -= cls * heap_step;
      raw = f;
    } else {
      raw = ::operator new(capacity_of(cls));  // the whole class: any frame of it fits later
    }
  } else {
    raw = ::operator new(n);
  }
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
