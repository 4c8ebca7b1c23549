// Byte-bounded LRU of compressed bodies (see compression_cache.hpp). A list in recency order
// plus a hash index; one mutex, held only for pointer updates (bodies are shared, not copied).
#include "http/compression_cache.hpp"

#include <iterator>

namespace mles::http {

namespace {

std::string entry_id(const compression_key& key) {
  std::string id;
  id.reserve(key.path.size() + 2);
  id += key.path;
  id += '\0';
  id += static_cast<char>(key.encoding);
  return id;
}

}  // namespace

compression_cache::compression_cache(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}

compression_cache::body compression_cache::find(const compression_key& key) {
  const std::string id = entry_id(key);
  const std::lock_guard lock(mutex_);
  const auto found = index_.find(id);
  if (found == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  const auto it = found->second;
  if (it->mtime != key.mtime || it->size != key.size) {
    erase(it);
    ++stats_.misses;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it);
  ++stats_.hits;
  return it->compressed;
}

void compression_cache::insert(const compression_key& key, body compressed) {
  if (!compressed || key.size > max_file_bytes || compressed->size() > capacity_) return;
  std::string id = entry_id(key);
  const std::lock_guard lock(mutex_);
  if (const auto found = index_.find(id); found != index_.end()) erase(found->second);
  while (stats_.bytes + compressed->size() > capacity_) erase(std::prev(lru_.end()));
  stats_.bytes += compressed->size();
  lru_.push_front({id, key.mtime, key.size, std::move(compressed)});
  index_.emplace(std::move(id), lru_.begin());
  stats_.entries = lru_.size();
}

compression_cache::stats compression_cache::snapshot() const {
  const std::lock_guard lock(mutex_);
  return stats_;
}

void compression_cache::erase(std::list<entry>::iterator it) {
  stats_.bytes -= it->compressed->size();
  index_.erase(it->id);
  lru_.erase(it);
  stats_.entries = lru_.size();
}

}  // namespace mles::http
