// rate_limiter: token buckets per client address.
#include "net/rate_limiter.hpp"

#include <algorithm>
#include <cstring>

namespace mles::net {

std::size_t rate_limiter::key_hash::operator()(const key& k) const noexcept {
  std::uint64_t a = 0, b = 0;
  std::memcpy(&a, k.data(), 8);
  std::memcpy(&b, k.data() + 8, 8);
  return static_cast<std::size_t>(a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull));
}

rate_limiter::key rate_limiter::key_of(const boost::asio::ip::address& addr) {
  key k{};
  if (addr.is_v6()) {
    const auto v6 = addr.to_v6();
    if (v6.is_v4_mapped()) {
      const auto v4 = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_bytes();
      std::copy(v4.begin(), v4.end(), k.begin() + 12);
      return k;
    }
    const auto bytes = v6.to_bytes();
    std::copy(bytes.begin(), bytes.end(), k.begin());
    // Mark IPv6 keys so ::a.b.c.d (IPv4-compatible) never collides with a.b.c.d.
    k[0] ^= 0x80;
    if (k == key{}) k[1] = 1;
    return k;
  }
  const auto v4 = addr.to_v4().to_bytes();
  std::copy(v4.begin(), v4.end(), k.begin() + 12);
  return k;
}

void rate_limiter::refill(bucket& b, clock::time_point now) const {
  const double minutes = std::chrono::duration<double, std::ratio<60>>(now - b.updated).count();
  b.tokens = std::min<double>(per_minute_, b.tokens + minutes * per_minute_);
  b.updated = now;
}

void rate_limiter::prune(clock::time_point now) {
  // Full buckets carry no information: forget them.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    if (it->second.tokens >= per_minute_) it = buckets_.erase(it);
    else ++it;
  }
}

bool rate_limiter::allow(const boost::asio::ip::address& addr, clock::time_point now) {
  const key k = key_of(addr);
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    if (per_minute_ == 0) return false;
    if (buckets_.size() >= max_tracked_) {
      prune(now);
      // Still full: every tracked address is mid-burst. Refuse the newcomer rather than
      // grow without bound (a flood from many addresses is refused, not remembered).
      if (buckets_.size() >= max_tracked_) return false;
    }
    buckets_.emplace(k, bucket{static_cast<double>(per_minute_) - 1.0, now});
    return true;
  }
  refill(it->second, now);
  if (it->second.tokens < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

}  // namespace mles::net
