// Duplicate suppression for peer-link messages: per-origin anti-replay windows, payload-hash
// FIFO windows, and the keyed SipHash-2-4 behind payload_hash. Pure: no I/O.
#include "hub/dedup_window.hpp"

#include "proto/siphash.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>

namespace mles::hub {

// ---- origin_window ----------------------------------------------------------------------------

std::size_t origin_window::origin_key_hash::operator()(const origin_key& k) const noexcept {
  const std::size_t h = std::hash<std::string_view>{}(k.server);
  // boost::hash_combine's mixing step.
  return h ^ (std::hash<std::uint64_t>{}(k.instance) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
}

origin_window::origin_window(std::size_t max_origins, std::size_t window)
    : max_origins_(std::max<std::size_t>(max_origins, 1)),
      window_(std::max<std::size_t>(window, 1)),
      words_((window_ + 63) / 64) {
  map_.reserve(max_origins_);
}

origin_window::lru_list::iterator origin_window::find_or_add(std::string_view server, std::uint64_t instance) {
  if (const auto it = map_.find(origin_key{server, instance}); it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);  // now the most recently used
    return it->second;
  }
  if (map_.size() >= max_origins_) {
    // Forget the least recently used origin and reuse its node (no allocation in steady state).
    auto& oldest = lru_.back();
    map_.erase(origin_key{oldest.server, oldest.instance});
    lru_.splice(lru_.begin(), lru_, std::prev(lru_.end()));
  } else {
    lru_.emplace_front();
    lru_.front().seen.resize(words_);
  }
  origin& o = lru_.front();
  o.server.assign(server);
  o.instance = instance;
  o.highest = 0;
  std::fill(o.seen.begin(), o.seen.end(), 0);
  map_.emplace(origin_key{o.server, o.instance}, lru_.begin());
  return lru_.begin();
}

origin_verdict origin_window::check_and_record(std::string_view server, std::uint64_t instance, std::uint64_t seq) {
  if (seq == 0) return origin_verdict::too_old;
  origin& o = *find_or_add(server, instance);
  const std::uint64_t bits = words_ * 64;
  const auto bit_of = [&](std::uint64_t s) {
    const std::uint64_t b = s % bits;
    return std::pair<std::size_t, std::uint64_t>{static_cast<std::size_t>(b / 64), std::uint64_t{1} << (b % 64)};
  };
  if (seq > o.highest) {
    // Slide: the positions of highest+1 .. seq held sequences that now fall below the window.
    const std::uint64_t advance = seq - o.highest;
    if (advance >= bits) {
      std::fill(o.seen.begin(), o.seen.end(), 0);
    } else {
      // Counted, not `s <= seq`, which never ends when seq is the largest u64.
      for (std::uint64_t i = 1; i <= advance; ++i) {
        const auto [word, mask] = bit_of(o.highest + i);
        o.seen[word] &= ~mask;
      }
    }
    o.highest = seq;
    const auto [word, mask] = bit_of(seq);
    o.seen[word] |= mask;
    return origin_verdict::fresh;
  }
  // Tracked: (highest - window, highest].
  if (o.highest - seq >= window_) return origin_verdict::too_old;
  const auto [word, mask] = bit_of(seq);
  if ((o.seen[word] & mask) != 0) return origin_verdict::duplicate;
  o.seen[word] |= mask;
  return origin_verdict::fresh;
}

std::size_t origin_window::memory_bytes() const noexcept {
  constexpr std::size_t list_node = sizeof(origin) + 2 * sizeof(void*);
  constexpr std::size_t map_node = sizeof(origin_key) + sizeof(lru_list::iterator) + 2 * sizeof(void*);
  std::size_t total = sizeof(*this) + map_.bucket_count() * sizeof(void*);
  for (const origin& o : lru_) {
    total += list_node + map_node + o.seen.capacity() * sizeof(std::uint64_t);
    if (o.server.capacity() > 15) total += o.server.capacity() + 1;  // beyond the inline buffer
  }
  return total;
}

// ---- hash_window ------------------------------------------------------------------------------

hash_window::hash_window(std::size_t capacity) : ring_(std::max<std::size_t>(capacity, 1)) {
  set_.reserve(ring_.size());
}

void hash_window::record(std::uint64_t h) {
  if (set_.contains(h)) return;
  if (count_ == ring_.size()) {
    set_.erase(ring_[head_]);
    ring_[head_] = h;
    head_ = (head_ + 1) % ring_.size();
  } else {
    ring_[(head_ + count_) % ring_.size()] = h;
    ++count_;
  }
  set_.insert(h);
}

bool hash_window::seen_or_record(std::uint64_t h) {
  if (set_.contains(h)) return true;
  record(h);
  return false;
}

std::size_t hash_window::memory_bytes() const noexcept {
  constexpr std::size_t set_node = sizeof(std::uint64_t) + 2 * sizeof(void*);
  return sizeof(*this) + ring_.capacity() * sizeof(std::uint64_t) + set_.bucket_count() * sizeof(void*) +
         set_.size() * set_node;
}

// ---- SipHash-2-4 ------------------------------------------------------------------------------


namespace {

std::array<std::uint8_t, 16> process_hash_key() noexcept {
  std::array<std::uint8_t, 16> key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    std::fputs("mles: RAND_bytes failed: no key for payload_hash\n", stderr);
    std::abort();
  }
  return key;
}

}  // namespace

std::uint64_t payload_hash(std::span<const std::uint8_t> bytes) noexcept {
  static const std::array<std::uint8_t, 16> key = process_hash_key();
  return proto::siphash24(key, bytes);
}

}  // namespace mles::hub
