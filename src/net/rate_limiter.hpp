// Per-IP connection rate limit (--rate-limit N): N accepted connections per minute per address,
// as a token bucket (burst N, refilled N per minute). IPv4-mapped IPv6 counts as its IPv4
// address. Bounded: at most max_tracked addresses are remembered.
// data path: accept ─► rate_limiter.allow ─► TLS. Thread-safety: none (used by the acceptor).
#pragma once

#include <boost/asio/ip/address.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace mles::net {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  explicit rate_limiter(std::uint32_t per_minute, std::size_t max_tracked = 1u << 16)
      : per_minute_(per_minute), max_tracked_(max_tracked) {}

  // Counts one connection from addr at now; false when it is over the limit.
  bool allow(const boost::asio::ip::address& addr, clock::time_point now);

  std::size_t tracked() const noexcept { return buckets_.size(); }

 private:
  using key = std::array<std::uint8_t, 16>;
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  struct bucket {
    double tokens;
    clock::time_point updated;
  };
  static key key_of(const boost::asio::ip::address& addr);
  void refill(bucket& b, clock::time_point now) const;
  void prune(clock::time_point now);

  std::uint32_t per_minute_;
  std::size_t max_tracked_;
  std::unordered_map<key, bucket, key_hash> buckets_;
};

// The same limit for client addresses learnt after accept (a PROXY header, X-Forwarded-For),
// on the connections' loops. Thread-safety: allow() from any thread.
class shared_rate_limiter {
 public:
  explicit shared_rate_limiter(std::uint32_t per_minute) : limiter_(per_minute) {}
  bool allow(const boost::asio::ip::address& addr, rate_limiter::clock::time_point now) {
    std::lock_guard lock(mutex_);
    return limiter_.allow(addr, now);
  }

 private:
  std::mutex mutex_;
  rate_limiter limiter_;
};

}  // namespace mles::net
