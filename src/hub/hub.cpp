// hub: membership, history, deduplication and fan-out for every channel.
#include "hub/hub.hpp"

#include <algorithm>

namespace mles::hub {

hub::hub(hub_limits limits, origin self)
    : limits_(limits), self_(std::make_shared<const origin>(std::move(self))) {}

membership hub::join(std::string_view channel_name, std::string_view uid, shared_frame join_frame,
                     std::shared_ptr<member> who, boost::system::error_code& ec, clock::time_point now,
                     member_role role) {
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
    const bool outbound = role == member_role::peer_link || role == member_role::reference_link;
    auto same_uid = [&](const channel::entry& e) { return !e.uid.empty() && e.uid == uid; };
    if (!outbound && (std::any_of(ch->members_.begin(), ch->members_.end(), same_uid) ||
                      std::any_of(ch->relays_.begin(), ch->relays_.end(), same_uid))) {
      ec = proto::errc::duplicate_uid;
      return {};
    }
    switch (role) {
      case member_role::client: {
        ch->history_.for_each([&](const message& m) { who->deliver(m.frame, delivery_kind::history); });
        message joined{std::move(join_frame), nullptr, ch->next_seq_++, message_flags::join};
        const message& stored = store(ch, joined);
        // Links carry the join on (history only at the far end).
        for (const auto& e : ch->relays_) e.who->relay(stored, delivery_kind::live);
        break;
      }
      case member_role::peer_session:
        ch->history_.for_each([&](const message& m) { who->relay(m, delivery_kind::history); });
        break;
      case member_role::peer_link: break;
      case member_role::reference_link:
        ++ch->reference_links_;
        ch->hash_mode_ = true;
        break;
    }
    list_of(*ch, role).push_back({id, outbound ? std::string() : std::string(uid), std::move(who), role});
    ch->last_activity_ = now;
    if (role == member_role::client && ch->clients_++ == 0 && observer_) observer_->on_interest(ch->name_, true);
  }
  ec = {};
  return {std::move(ch), id, role};
}

publish_result hub::check_duplicate(channel& ch, const message& msg) {
  const bool hashed = ch.hash_mode_ || (msg.flags & message_flags::hashed) != 0;
  if (!msg.from && !hashed) return publish_result::delivered;  // ours, nothing to check
  if (!ch.dedup_) ch.dedup_ = std::make_unique<channel::dedup_state>(limits_);
  if (msg.from) {
    if (*msg.from == *self_) return publish_result::own;
    switch (ch.dedup_->origins.check_and_record(msg.from->server, msg.from->instance, msg.seq)) {
      case origin_verdict::fresh: break;
      case origin_verdict::duplicate: return publish_result::duplicate;
      case origin_verdict::too_old: return publish_result::too_old;
    }
  }
  if (hashed) {
    // Join frames are never delivered live: they only need their origin checked.
    if ((msg.flags & message_flags::join) == 0 && ch.dedup_->hashes.seen_or_record(payload_hash(msg.frame.bytes())))
      return publish_result::duplicate;
    // A hashed message seen here makes the channel check hashes from now on (it may come back
    // through another path without its origin).
    if (msg.flags & message_flags::hashed) ch.hash_mode_ = true;
  }
  return publish_result::delivered;
}

const message& hub::store(const std::shared_ptr<channel>& chp, message& msg, persisted p) {
  channel& ch = *chp;
  if (store_) {
    if (p == persisted::no && store_->durable_before_forward()) {
      store_->append(ch.name_, msg);
      p = persisted::already;
    }
    if (p == persisted::already) msg.flags |= message_flags::stored;
    ++ch.appended_;
    if (!ch.dirty_) {
      ch.dirty_ = true;
      std::lock_guard lock(dirty_mutex_);
      dirty_.push_back(chp);
    }
  }
  const message* stored = ch.history_.push(std::move(msg));
  return stored ? *stored : msg;
}

void hub::collect(const std::function<void(const std::string& channel, std::vector<message>&& added)>& fn) {
  std::vector<std::shared_ptr<channel>> changed;
  {
    std::lock_guard lock(dirty_mutex_);
    changed.swap(dirty_);
  }
  for (const auto& chp : changed) {
    channel& ch = *chp;
    channel_lock lock(ch.mutex_, locking());
    ch.dirty_ = false;
    // What was stored and already left the ring (bounds) is past the bounds on disk too.
    const std::size_t added = static_cast<std::size_t>(ch.appended_ - ch.collected_);
    ch.collected_ = ch.appended_;
    const std::size_t take = std::min(added, ch.history_.size());
    if (take == 0) continue;
    std::vector<message> out;
    out.reserve(take);
    std::size_t i = 0;
    const std::size_t skip = ch.history_.size() - take;
    ch.history_.for_each([&](const message& m) {
      if (i++ >= skip && !(m.flags & message_flags::stored)) out.push_back(m);
    });
    if (!out.empty()) fn(ch.name_, std::move(out));
  }
}

publish_result hub::publish(const membership& m, message msg, clock::time_point now, persisted p) {
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  const publish_result verdict = check_duplicate(ch, msg);
  if (verdict != publish_result::delivered) return verdict;
  if (!msg.from) {
    if (msg.seq == 0) msg.seq = ch.next_seq_++;
    if (m.role == member_role::reference_link) msg.flags |= message_flags::hashed;
  }
  // From here on the history's copy is delivered: no second reference to count.
  const message& out = store(m.where, msg, p);
  ch.last_activity_ = now;
  const delivery_kind kind = is_relay(m.role) ? delivery_kind::relayed : delivery_kind::live;
  if (out.flags & message_flags::join) {
    for (const auto& e : ch.relays_) {
      if (e.id != m.id) e.who->relay(out, kind);
    }
    return verdict;
  }
  // One atomic add for every client's reference, then each adopts one (the sender, when a
  // client, is a current member: it gets none).
  out.frame.add_refs(static_cast<std::uint32_t>(ch.members_.size() - (m.role == member_role::client ? 1 : 0)));
  for (const auto& e : ch.members_) {
    if (e.id != m.id) e.who->deliver(out.frame.adopt(), kind);
  }
  for (const auto& e : ch.relays_) {
    if (e.id != m.id) e.who->relay(out, kind);
  }
  return verdict;
}

void hub::leave(membership& m) {
  if (!m) return;
  {
    channel& ch = *m.where;
    channel_lock lock(ch.mutex_, locking());
    auto& list = list_of(ch, m.role);
    auto it = std::find_if(list.begin(), list.end(), [&](const channel::entry& e) { return e.id == m.id; });
    if (it != list.end()) {
      const member_role role = it->role;
      // Order among members does not matter: swap-and-pop.
      if (it != list.end() - 1) *it = std::move(list.back());
      list.pop_back();
      if (role == member_role::client && --ch.clients_ == 0 && observer_) observer_->on_interest(ch.name_, false);
      if (role == member_role::reference_link) --ch.reference_links_;
    }
  }
  m = {};
}

void hub::restore(const std::string& channel_name, std::vector<message> oldest_first, clock::time_point last_activity) {
  std::shared_ptr<channel> ch;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel_name);
    if (it == channels_.end()) {
      it = channels_.emplace(channel_name, std::make_shared<channel>(channel_name, limits_, last_activity)).first;
    }
    ch = it->second;
  }
  channel_lock chlock(ch->mutex_, locking());
  for (auto& m : oldest_first) {
    if (m.from) {
      if (!ch->dedup_) ch->dedup_ = std::make_unique<channel::dedup_state>(limits_);
      (void)ch->dedup_->origins.check_and_record(m.from->server, m.from->instance, m.seq);
    }
    ch->history_.push(std::move(m));
  }
  ch->last_activity_ = std::max(ch->last_activity_, last_activity);
}

std::uint64_t hub::next_sequence(const membership& m) {
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  return ch.next_seq_++;
}

void hub::replay(const membership& m) {
  if (!m) return;
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  std::shared_ptr<member> who;
  for (const auto& e : ch.relays_) {
    if (e.id == m.id) who = e.who;
  }
  if (!who) return;
  ch.history_.for_each([&](const message& msg) { who->relay(msg, delivery_kind::history); });
}

std::size_t hub::expire(clock::time_point now, clock::duration ttl) {
  std::size_t removed = 0;
  std::lock_guard lock(mutex_);
  for (auto it = channels_.begin(); it != channels_.end();) {
    channel& ch = *it->second;
    channel_lock chlock(ch.mutex_, locking());
    if (now - ch.last_activity_ >= ttl) {
      ch.history_.clear();
      ch.dedup_.reset();
      ch.hash_mode_ = ch.reference_links_ > 0;
      if (store_) store_->forget(ch.name_);
      if (ch.members_.empty() && ch.relays_.empty()) {
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

std::vector<std::string> hub::channels_with_clients() const {
  std::vector<std::string> out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, ch] : channels_) {
    channel_lock chlock(ch->mutex_, locking());
    if (ch->clients_ > 0) out.push_back(name);
  }
  return out;
}

std::size_t hub::channel_count() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

}  // namespace mles::hub
