// Log-linear latency histogram (HdrHistogram-like, 128 sub-buckets per power of two, so a
// reported percentile is within 0.8% of the true value). One per bench loop, merged at the end.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace mles::bench {

class latency_histogram {
 public:
  static constexpr unsigned sub_bits = 7;
  static constexpr std::size_t sub_count = std::size_t{1} << sub_bits;
  static constexpr std::size_t bucket_count = sub_count + (64 - sub_bits) * sub_count;

  void record(std::uint64_t v) noexcept {
    ++counts_[index_of(v)];
    ++count_;
    max_ = std::max(max_, v);
  }

  void merge(const latency_histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    max_ = std::max(max_, o.max_);
  }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }

  // Value at quantile q in [0, 1] (midpoint of its bucket, capped at the maximum seen);
  // 0 when empty.
  std::uint64_t percentile(double q) const noexcept {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_, midpoint_of(i));
    }
    return max_;
  }

 private:
  static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < sub_count) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - sub_bits;
    const auto top = static_cast<std::size_t>(v >> shift);  // in [sub_count, 2 * sub_count)
    return sub_count + shift * sub_count + (top - sub_count);
  }

  static std::uint64_t midpoint_of(std::size_t i) noexcept {
    if (i < sub_count) return i;
    const std::size_t shift = (i - sub_count) / sub_count;
    const std::uint64_t top = sub_count + (i - sub_count) % sub_count;
    const std::uint64_t low = top << shift;
    return low + ((std::uint64_t{1} << shift) >> 1);
  }

  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace mles::bench
