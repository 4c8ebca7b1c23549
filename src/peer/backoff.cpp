// backoff: doubling delays with jitter.
#include "peer/backoff.hpp"

#include <algorithm>

namespace mles::peer {

backoff::backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(std::max(initial, std::chrono::milliseconds(1))), max_(std::max(max, initial_)), current_(initial_),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds backoff::next() {
  const auto base = current_;
  current_ = std::min(max_, current_ * 2);
  std::uniform_int_distribution<long long> jitter(base.count() / 2, base.count());
  return std::chrono::milliseconds(jitter(rng_));
}

}  // namespace mles::peer
