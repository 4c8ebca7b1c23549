// channel_history: a ring of messages bounded by count and bytes.
#include "hub/channel_history.hpp"

#include <algorithm>

namespace mles::hub {

const message* channel_history::push(message m) {
  if (limit_ == 0) return nullptr;
  if (count_ == limit_) pop_front();
  if (count_ == ring_.size()) {
    // Grow by doubling up to the limit, re-linearising so head_ becomes 0.
    std::vector<message> bigger;
    bigger.reserve(std::min(limit_, std::max<std::size_t>(8, ring_.size() * 2)));
    for (std::size_t i = 0; i < count_; ++i) bigger.push_back(std::move(ring_[(head_ + i) % ring_.size()]));
    bigger.resize(bigger.capacity());
    ring_ = std::move(bigger);
    head_ = 0;
  }
  bytes_ += m.frame.size();
  message& stored = ring_[(head_ + count_) % ring_.size()];
  stored = std::move(m);
  ++count_;
  while (count_ > 1 && bytes_ > max_bytes_) pop_front();
  return &stored;
}

void channel_history::pop_front() noexcept {
  auto& m = ring_[head_];
  bytes_ -= m.frame.size();
  m = message{};
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

void channel_history::clear() noexcept {
  ring_.clear();
  ring_.shrink_to_fit();
  head_ = count_ = bytes_ = 0;
}

}  // namespace mles::hub
