// The compression cache: compressed static-file bodies kept between requests, an
// LRU bounded by bytes. Event loops look bodies up; the worker that compressed one inserts it.
// One instance per server, shared by all loops and workers: every member is thread-safe.
#pragma once

#include "http/accept_encoding.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mles::http {

// A file's version: a cached body is valid only for the same modification time and size.
struct compression_key {
  std::string path;
  content_encoding encoding = content_encoding::identity;
  std::filesystem::file_time_type mtime;
  std::uint64_t size = 0;
};

class compression_cache {
 public:
  using body = std::shared_ptr<const std::string>;

  // As in the reference server, files over 12 MB are not cached (they are compressed per request or sent
  // identity; the connection code decides).
  static constexpr std::uint64_t max_file_bytes = 12u << 20;

  struct stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::size_t entries = 0;
    std::size_t bytes = 0;  // compressed body bytes held
  };

  // capacity_bytes = --compression-cache MB << 20; 0 disables the cache (every find misses).
  explicit compression_cache(std::size_t capacity_bytes);

  // The cached body for exactly this file version, made most recently used; nullptr on a
  // miss. An entry for an older version of the file is dropped.
  body find(const compression_key& key);

  // Keeps body for key, replacing any entry for the same path and encoding and evicting the
  // least recently used entries to stay within capacity. Not kept when the file is over
  // max_file_bytes or the body alone exceeds the capacity.
  void insert(const compression_key& key, body compressed);

  stats snapshot() const;

 private:
  struct entry {
    std::string id;  // path + '\0' + encoding
    std::filesystem::file_time_type mtime;
    std::uint64_t size;
    body compressed;
  };

  void erase(std::list<entry>::iterator it);

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::list<entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<entry>::iterator> index_;
  stats stats_;
};

}  // namespace mles::http
