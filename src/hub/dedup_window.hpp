// Duplicate suppression for messages that reach a channel over peer links: exact per-origin
// sequence windows for enveloped messages, payload-hash windows for links without envelopes.
// Pure: no I/O. data path: peer link ─► parse_envelope ─► dedup_window ─► hub.publish
// Not thread-safe: the owning channel's lock protects each window.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace mles::hub {

enum class origin_verdict : std::uint8_t {
  fresh,      // never seen: deliver
  duplicate,  // seen before inside the window: drop
  too_old,    // below the window: cannot tell, drop (never delivered twice); the caller counts it
};

// Exact deduplication of messages carrying an origin (server id, instance, sequence), like an
// IPsec anti-replay window (RFC 4303 §3.4.3, with RFC 6479's circular bitmap): per origin the
// highest sequence seen and which of the `window` sequences (highest - window, highest] were
// seen. A sequence above the highest is fresh and slides the window; one inside it is fresh
// once and duplicate after; one at or below highest - window is too_old. Messages reordered
// by less than `window` are never dropped. At most max_origins origins are kept; past that the
// least recently used one is forgotten (a forgotten origin's next message counts as fresh).
// A restarted server has a new instance, hence is a new origin starting afresh at sequence 1.
class origin_window {
 public:
  explicit origin_window(std::size_t max_origins = 64, std::size_t window = 1024);

  // Sequence 0 is not a valid sequence (the envelope parser refuses it); it is reported too_old.
  origin_verdict check_and_record(std::string_view server, std::uint64_t instance, std::uint64_t seq);

  std::size_t origins() const noexcept { return map_.size(); }
  std::size_t window() const noexcept { return window_; }
  // Approximate heap + object size.
  std::size_t memory_bytes() const noexcept;

 private:
  struct origin {
    std::string server;
    std::uint64_t instance = 0;
    std::uint64_t highest = 0;         // 0: nothing seen yet
    std::vector<std::uint64_t> seen;   // circular bitmap: bit (seq % bits) for tracked seqs
  };
  // A key viewing the server string stored in its list node (nodes never move).
  struct origin_key {
    std::string_view server;
    std::uint64_t instance;
    bool operator==(const origin_key&) const = default;
  };
  struct origin_key_hash {
    std::size_t operator()(const origin_key& k) const noexcept;
  };
  using lru_list = std::list<origin>;  // front: most recently used

  lru_list::iterator find_or_add(std::string_view server, std::uint64_t instance);

  std::size_t max_origins_;
  std::size_t window_;
  std::size_t words_;  // bitmap words per origin: window_ rounded up to 64 bits
  lru_list lru_;
  std::unordered_map<origin_key, lru_list::iterator, origin_key_hash> map_;
};

// Deduplication by payload hash, for links to servers that send no envelope: the last
// `capacity` distinct hashes in arrival order, with O(1) lookup. Recording a hash that is
// already held is a no-op: it is neither added twice nor moved to the back, so it leaves when
// its first recording is the oldest (a message repeated forever is still forgotten after
// `capacity` other hashes, never pinned).
class hash_window {
 public:
  explicit hash_window(std::size_t capacity = 1024);

  bool contains(std::uint64_t h) const { return set_.contains(h); }
  // Adds h as the newest entry, evicting the oldest when full; no-op if h is held.
  void record(std::uint64_t h);
  // True if h was held (a duplicate); otherwise records it and returns false.
  bool seen_or_record(std::uint64_t h);

  std::size_t size() const noexcept { return count_; }
  std::size_t capacity() const noexcept { return ring_.size(); }
  std::size_t memory_bytes() const noexcept;

 private:
  std::vector<std::uint64_t> ring_;  // FIFO: ring_[(head_ + i) % capacity] is the i-th oldest
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::unordered_set<std::uint64_t> set_;
};

// SipHash-2-4 (proto/siphash.hpp) under a key drawn from OpenSSL's CSPRNG once per process, so no client can craft
// colliding payloads. Aborts if the CSPRNG cannot produce the key (there is no safe fallback).
std::uint64_t payload_hash(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace mles::hub
