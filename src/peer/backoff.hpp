// Exponential backoff with jitter for links that failed: the first retry after `initial`,
// doubling up to `max`, each delay drawn in [d/2, d] so that servers restarted together do
// not retry in lockstep. Pure apart from its random generator.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace mles::peer {

class backoff {
 public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  // The delay before the next attempt; each call doubles the base up to max.
  std::chrono::milliseconds next();
  // After a success: the next failure starts from `initial` again.
  void reset() noexcept { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
  std::minstd_rand rng_;
};

}  // namespace mles::peer
