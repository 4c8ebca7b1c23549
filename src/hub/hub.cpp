// hub: membership, history and fan-out for every channel.
#include "hub/hub.hpp"

#include <algorithm>

namespace mles::hub {

membership hub::join(std::string_view channel_name, std::string_view uid, shared_frame join_frame,
                     std::shared_ptr<member> who, boost::system::error_code& ec,
                     clock::time_point now) {
  std::shared_ptr<channel> ch;
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel_name);
    if (it == channels_.end()) {
      it = channels_.emplace(std::string(channel_name),
                             std::make_shared<channel>(std::string(channel_name), limits_, now))
               .first;
    }
    ch = it->second;
    id = next_id_++;
    // Take the channel lock before releasing the map lock so expire() cannot remove the
    // channel between lookup and join.
    channel_lock chlock(ch->mutex_, locking());
    if (std::any_of(ch->members_.begin(), ch->members_.end(),
                    [&](const channel::entry& e) { return e.uid == uid; })) {
      ec = proto::errc::duplicate_uid;
      return {};
    }
    ch->history_.for_each([&](const shared_frame& f) { who->deliver(f, delivery_kind::history); });
    ch->history_.push(std::move(join_frame));
    ch->members_.push_back({id, std::string(uid), std::move(who)});
    ch->last_activity_ = now;
  }
  ec = {};
  return {std::move(ch), id};
}

void hub::publish(const membership& m, const shared_frame& frame, clock::time_point now) {
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  ch.history_.push(frame);
  ch.last_activity_ = now;
  // One atomic add for every recipient's reference, then each adopts one.
  std::uint32_t recipients = 0;
  for (const auto& e : ch.members_) recipients += e.id != m.id ? 1u : 0u;
  frame.add_refs(recipients);
  for (const auto& e : ch.members_) {
    if (e.id != m.id) e.who->deliver(frame.adopt(), delivery_kind::live);
  }
}

void hub::leave(membership& m) {
  if (!m) return;
  {
    channel& ch = *m.where;
    channel_lock lock(ch.mutex_, locking());
    auto it = std::find_if(ch.members_.begin(), ch.members_.end(),
                           [&](const channel::entry& e) { return e.id == m.id; });
    if (it != ch.members_.end()) {
      // Order among members does not matter: swap-and-pop.
      if (it != ch.members_.end() - 1) *it = std::move(ch.members_.back());
      ch.members_.pop_back();
    }
  }
  m = {};
}

std::size_t hub::expire(clock::time_point now, clock::duration ttl) {
  std::size_t removed = 0;
  std::lock_guard lock(mutex_);
  for (auto it = channels_.begin(); it != channels_.end();) {
    channel& ch = *it->second;
    channel_lock chlock(ch.mutex_, locking());
    if (now - ch.last_activity_ >= ttl) {
      ch.history_.clear();
      if (ch.members_.empty()) {
        chlock.unlock();
        it = channels_.erase(it);
        ++removed;
        continue;
      }
    }
    ++it;
  }
  return removed;
}

std::size_t hub::channel_count() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

}  // namespace mles::hub
