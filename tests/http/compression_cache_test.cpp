// Tests for the compression cache: hits and misses, LRU eviction by bytes, invalidation when
// the file's mtime or size changes, the 12 MB rule, a disabled cache, and concurrent use.
#include "http/compression_cache.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace mles::http {
namespace {

using namespace std::chrono_literals;

const std::filesystem::file_time_type t0{std::chrono::seconds(1'700'000'000)};

compression_key key(std::string path, std::uint64_t size = 100, std::filesystem::file_time_type mtime = t0,
                    content_encoding encoding = content_encoding::zstd) {
  return {std::move(path), encoding, mtime, size};
}

compression_cache::body body(std::size_t bytes, char fill = 'x') {
  return std::make_shared<const std::string>(bytes, fill);
}

TEST(compression_cache, returns_inserted_body_and_counts_hits_and_misses) {
  compression_cache cache(1000);
  EXPECT_EQ(cache.find(key("/a.js")), nullptr);
  const auto b = body(10);
  cache.insert(key("/a.js"), b);
  EXPECT_EQ(cache.find(key("/a.js")), b);
  const auto s = cache.snapshot();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, 10u);
}

TEST(compression_cache, keys_by_encoding) {
  compression_cache cache(1000);
  cache.insert(key("/a.js", 100, t0, content_encoding::zstd), body(10, 'z'));
  cache.insert(key("/a.js", 100, t0, content_encoding::br), body(12, 'b'));
  EXPECT_EQ(*cache.find(key("/a.js", 100, t0, content_encoding::br)), std::string(12, 'b'));
  EXPECT_EQ(*cache.find(key("/a.js", 100, t0, content_encoding::zstd)), std::string(10, 'z'));
  EXPECT_EQ(cache.find(key("/a.js", 100, t0, content_encoding::gzip)), nullptr);
}

TEST(compression_cache, evicts_least_recently_used_to_stay_within_bytes) {
  compression_cache cache(100);
  cache.insert(key("/a"), body(40));
  cache.insert(key("/b"), body(40));
  ASSERT_NE(cache.find(key("/a")), nullptr);  // /b is now least recently used
  cache.insert(key("/c"), body(40));
  EXPECT_EQ(cache.find(key("/b")), nullptr);
  EXPECT_NE(cache.find(key("/a")), nullptr);
  EXPECT_NE(cache.find(key("/c")), nullptr);
  EXPECT_EQ(cache.snapshot().bytes, 80u);
  cache.insert(key("/d"), body(100));  // needs everything
  EXPECT_EQ(cache.snapshot().entries, 1u);
  EXPECT_NE(cache.find(key("/d")), nullptr);
}

TEST(compression_cache, drops_entry_when_file_changes) {
  compression_cache cache(1000);
  cache.insert(key("/a.css", 100, t0), body(10));
  EXPECT_EQ(cache.find(key("/a.css", 100, t0 + 1s)), nullptr);
  EXPECT_EQ(cache.snapshot().entries, 0u);
  cache.insert(key("/a.css", 100, t0), body(10));
  EXPECT_EQ(cache.find(key("/a.css", 101, t0)), nullptr);
  EXPECT_EQ(cache.snapshot().bytes, 0u);
}

TEST(compression_cache, replaces_older_version_on_insert) {
  compression_cache cache(1000);
  cache.insert(key("/a.css", 100, t0), body(10));
  const auto fresh = body(20);
  cache.insert(key("/a.css", 100, t0 + 1s), fresh);
  EXPECT_EQ(cache.find(key("/a.css", 100, t0 + 1s)), fresh);
  EXPECT_EQ(cache.snapshot().entries, 1u);
  EXPECT_EQ(cache.snapshot().bytes, 20u);
}

TEST(compression_cache, does_not_keep_files_over_12_mib_or_bodies_over_capacity) {
  compression_cache cache(std::size_t{64} << 20);
  cache.insert(key("/big.json", compression_cache::max_file_bytes + 1), body(1000));
  cache.insert(key("/edge.json", compression_cache::max_file_bytes), body(1000));
  EXPECT_EQ(cache.find(key("/big.json", compression_cache::max_file_bytes + 1)), nullptr);
  EXPECT_NE(cache.find(key("/edge.json", compression_cache::max_file_bytes)), nullptr);

  compression_cache small(10);
  small.insert(key("/a"), body(11));
  EXPECT_EQ(small.snapshot().entries, 0u);
}

TEST(compression_cache, zero_capacity_disables_caching) {
  compression_cache cache(0);
  cache.insert(key("/a"), body(1));
  EXPECT_EQ(cache.find(key("/a")), nullptr);
  EXPECT_EQ(cache.snapshot().entries, 0u);
}

TEST(compression_cache, survives_concurrent_inserts_and_finds) {
  compression_cache cache(4096);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const auto k = key("/f" + std::to_string((i * 7 + t) % 64));
        if (i % 3 == 0) {
          cache.insert(k, body(100));
        } else if (const auto b = cache.find(k)) {
          EXPECT_EQ(b->size(), 100u);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = cache.snapshot();
  EXPECT_LE(s.bytes, 4096u);
  EXPECT_EQ(s.bytes, s.entries * 100u);
}

}  // namespace
}  // namespace mles::http
