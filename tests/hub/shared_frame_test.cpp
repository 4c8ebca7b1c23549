// Tests for shared_frame's per-thread cache of small frames (hub/shared_frame.cpp): a released
// small frame's memory serves the next frame of its size on that thread, with the new frame's
// bytes; large frames go back to the heap; the cache keeps at most 1 MiB per thread and gives
// everything back when its thread ends, wherever the frames were made.
#include "hub/shared_frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace {

using mles::hub::shared_frame;
using mles::hub::sharing;

// Bytes the process has allocated from glibc's heap right now. Under AddressSanitizer its own
// allocator (with a quarantine of freed blocks) replaces glibc's, and these checks are left out.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool heap_measurable = false;
#else
constexpr bool heap_measurable = true;
#endif
std::size_t heap_in_use() { return mallinfo2().uordblks; }

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

// Runs f on a thread of its own (a fresh, empty cache) and waits for it to end.
template <class F>
void on_new_thread(F f) {
  std::thread t(f);
  t.join();
}

TEST(shared_frame, released_small_frames_serve_the_next_of_their_size) {
  on_new_thread([] {
    constexpr std::size_t n = 16;
    const auto a_bytes = pattern(70, 1);
    const auto b_bytes = pattern(66, 9);
    std::vector<shared_frame> a;
    std::vector<shared_frame> b;
    a.reserve(n);
    b.reserve(n);
    std::vector<const std::uint8_t*> where;
    where.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      a.push_back(shared_frame::copy_of(a_bytes, sharing::one_thread));
      where.push_back(a.back().data());
    }
    const std::size_t with = heap_in_use();
    a.clear();
    if (heap_measurable) {
      EXPECT_EQ(heap_in_use(), with);  // kept by the thread's cache, none given back
    }
    // 66 and 70 bytes take the same heap chunk: the new frames get the released ones' memory
    // (no allocation), each with its own size and bytes.
    for (std::size_t i = 0; i < n; ++i) b.push_back(shared_frame::copy_of(b_bytes, sharing::one_thread));
    if (heap_measurable) {
      EXPECT_EQ(heap_in_use(), with);
    }
    for (const auto& f : b) {
      EXPECT_NE(std::find(where.begin(), where.end(), f.data()), where.end());
      ASSERT_EQ(f.size(), 66u);
      EXPECT_EQ(0, std::memcmp(f.data(), b_bytes.data(), b_bytes.size()));
    }
    // A frame of another size class does not.
    auto c = shared_frame::copy_of(pattern(300, 3), sharing::one_thread);
    EXPECT_EQ(std::find(where.begin(), where.end(), c.data()), where.end());
    EXPECT_EQ(c.size(), 300u);
  });
}

TEST(shared_frame, shared_copies_keep_a_frame_until_the_last_is_released) {
  on_new_thread([] {
    const auto bytes = pattern(64, 5);
    auto a = shared_frame::copy_of(bytes, sharing::threads);
    a.add_refs(3);
    std::vector<shared_frame> copies;
    for (int i = 0; i < 3; ++i) copies.push_back(a.adopt());
    a.reset();
    copies.pop_back();
    copies.pop_back();
    // One reference left: a new frame must not get this memory.
    auto other = shared_frame::copy_of(pattern(64, 200), sharing::threads);
    EXPECT_NE(other.data(), copies.front().data());
    EXPECT_EQ(0, std::memcmp(copies.front().data(), bytes.data(), bytes.size()));
  });
}

TEST(shared_frame, large_frames_go_back_to_the_heap) {
  if (!heap_measurable) GTEST_SKIP() << "glibc's heap is not in use under AddressSanitizer";
  on_new_thread([] {
    auto big = shared_frame::allocate(64 * 1024);
    std::memset(big.writable().data(), 0xab, big.size());
    const std::size_t with = heap_in_use();
    big.reset();
    EXPECT_GE(with - heap_in_use(), 64u * 1024);
  });
}

TEST(shared_frame, the_cache_keeps_at_most_a_mebibyte_per_thread_and_nothing_after_it) {
  if (!heap_measurable) GTEST_SKIP() << "glibc's heap is not in use under AddressSanitizer";
  constexpr std::size_t frames = 30'000;  // 80 + 16 bytes each: ~2.9 MB of 96-byte chunks
  const std::size_t before = heap_in_use();
  std::size_t allocated = 0;
  std::size_t released = 0;
  on_new_thread([&] {
    std::vector<shared_frame> v;
    v.reserve(frames);
    const std::size_t start = heap_in_use();
    for (std::size_t i = 0; i < frames; ++i) v.push_back(shared_frame::allocate(80, sharing::one_thread));
    allocated = heap_in_use() - start;
    const std::size_t full = heap_in_use();
    v.clear();
    released = full - heap_in_use();
  });
  ASSERT_GT(allocated, frames * 90);
  // At most 1 MiB stayed in the thread's cache; the rest went back at once.
  EXPECT_GE(released + (std::size_t{1} << 20) + 4096, allocated);
  EXPECT_GE(allocated - released, std::size_t{512} << 10);  // and it did keep (most of) that
  // The thread ended: its cache gave everything back (within what the thread itself used).
  const std::size_t after = heap_in_use();
  EXPECT_LT(after > before ? after - before : 0, 64u * 1024);
}

TEST(shared_frame, frames_made_on_one_thread_and_released_on_another_are_not_lost) {
  const std::size_t before = heap_in_use();
  std::vector<shared_frame> made;
  on_new_thread([&] {
    for (int i = 0; i < 5'000; ++i) made.push_back(shared_frame::copy_of(pattern(100, 1), sharing::threads));
  });
  on_new_thread([&] {
    // Released here: they go to this thread's cache (or the heap) and the thread's end frees
    // them; one made here reuses one of them, with its own bytes.
    const std::uint8_t* last = made.back().data();
    made.clear();
    const auto bytes = pattern(100, 42);
    auto again = shared_frame::copy_of(bytes, sharing::threads);
    EXPECT_EQ(again.data(), last);
    EXPECT_EQ(0, std::memcmp(again.data(), bytes.data(), bytes.size()));
  });
  made.shrink_to_fit();
  const std::size_t after = heap_in_use();
  if (heap_measurable) {
    EXPECT_LT(after > before ? after - before : 0, 64u * 1024);
  }
}

#if defined(__SANITIZE_ADDRESS__)
TEST(shared_frame, a_cached_frame_is_poisoned_so_a_use_after_release_is_caught) {
  on_new_thread([] {
    auto a = shared_frame::copy_of(pattern(64, 1), sharing::one_thread);
    const std::uint8_t* bytes = a.data();
    EXPECT_EQ(__asan_address_is_poisoned(bytes), 0);
    a.reset();
    EXPECT_NE(__asan_address_is_poisoned(bytes), 0);
    EXPECT_NE(__asan_address_is_poisoned(bytes + 63), 0);
    auto b = shared_frame::copy_of(pattern(64, 2), sharing::one_thread);
    ASSERT_EQ(b.data(), bytes);
    EXPECT_EQ(__asan_address_is_poisoned(bytes + 63), 0);
  });
}

// A thread still running at exit keeps the frames it cached (its cache ends with the thread):
// LeakSanitizer must find them through the cache, not report them leaked. nats.c's delivery
// thread outlives main in a cluster server, and the suite failed once when it had frames cached.
TEST(shared_frame_DeathTest, frames_cached_by_a_thread_still_running_at_exit_are_not_reported_leaked) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static std::atomic<bool> cached{false};
        std::thread([] {
          {
            std::vector<shared_frame> made;
            for (std::size_t i = 0; i < 64; ++i) made.push_back(shared_frame::copy_of(pattern(10 + i % 40, 3)));
            // Every one into this thread's cache (several lists of several frames), and the
            // list that held them back to the heap: only the cache knows them now.
            std::vector<shared_frame>().swap(made);
          }
          cached.store(true);
          for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
        }).detach();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!cached.load() && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::exit(cached.load() ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}
#endif

}  // namespace
