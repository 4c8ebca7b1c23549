// A tiny test-and-test-and-set lock for a session's send queue. Its critical sections are a
// few instructions (push a shared pointer, adjust a counter) and it is taken once per
// delivered message, where std::mutex's extra atomic and call cost showed in profiles.
// Never hold it across a syscall or a call into other code.
#pragma once

#include <atomic>
#include <thread>

namespace mles::net {

class spin_lock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();  // the holder may have been preempted
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace mles::net
