// hub: membership, history, deduplication and fan-out for every channel.
#include "hub/hub.hpp"

#include <algorithm>
#include <cstring>

namespace mles::hub {

namespace {

// A thread has at most one batch pending (a session ends its batch before the next read);
// the storage of the last one it delivered waits here for the next.
thread_local std::vector<shared_frame> batch_spare;
constexpr std::size_t spare_entries_max = 4096;

// A member's uid as its channel entry keeps it: 0 for none (never equal to another's).
std::uint64_t uid_key(std::string_view uid) noexcept {
  if (uid.empty()) return 0;
  const std::uint64_t h = payload_hash({reinterpret_cast<const std::uint8_t*>(uid.data()), uid.size()});
  return h ? h : 1;
}

}  // namespace

hub::hub(hub_limits limits, origin self)
    : limits_(limits), self_(std::make_shared<const origin>(std::move(self))), trigger_(limits.history_total) {}

void hub::account(channel& ch) noexcept {
  const std::size_t now = channel_overhead + ch.name_.size() + ch.history_.bytes() +
                          ch.history_.size() * message_overhead;
  if (now >= ch.cost_) cost_.fetch_add(now - ch.cost_, std::memory_order_relaxed);
  else cost_.fetch_sub(ch.cost_ - now, std::memory_order_relaxed);
  ch.cost_ = now;
}

budget_stats hub::budget() const noexcept {
  budget_stats b;
  b.history_cost = cost_.load(std::memory_order_relaxed);
  b.evicted_messages = evicted_messages_.load(std::memory_order_relaxed);
  b.evicted_channels = evicted_channels_.load(std::memory_order_relaxed);
  b.capped_channels = capped_channels_.load(std::memory_order_relaxed);
  b.refused_channels = refused_channels_.load(std::memory_order_relaxed);
  return b;
}

void hub::forget_locked(channel& ch) {
  evicted_messages_.fetch_add(ch.history_.size(), std::memory_order_relaxed);
  ch.history_.clear();
  ch.dedup_.reset();
  if (store_) store_->forget(ch.name_);
  cost_.fetch_sub(ch.cost_, std::memory_order_relaxed);
  ch.cost_ = 0;
}

std::size_t hub::evict_idle_locked(std::size_t n, std::size_t until, const channel* keep,
                                   std::atomic<std::uint64_t>& counted_in) {
  struct candidate {
    clock::time_point last;
    std::shared_ptr<channel> ch;
  };
  std::vector<candidate> idle;
  for (const auto& [name, ch] : channels_) {
    channel_lock lock(ch->mutex_, locking());
    if (ch.get() != keep && ch->members_.empty() && ch->relays_.empty()) idle.push_back({ch->last_activity_, ch});
  }
  const std::size_t take = std::min(n, idle.size());
  std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(take), idle.end(),
                    [](const candidate& a, const candidate& b) { return a.last < b.last; });
  std::size_t removed = 0;
  for (std::size_t i = 0; i < take; ++i) {
    if (until != 0 && cost_.load(std::memory_order_relaxed) <= until) break;
    channel& ch = *idle[i].ch;
    {
      channel_lock lock(ch.mutex_, locking());
      if (!ch.members_.empty() || !ch.relays_.empty()) continue;  // cannot happen under the map lock
      forget_locked(ch);
    }
    channels_.erase(ch.name_);
    ++removed;
  }
  counted_in.fetch_add(removed, std::memory_order_relaxed);
  return removed;
}

bool hub::room_for_channel_locked() {
  if (limits_.max_channels == 0 || channels_.size() < limits_.max_channels) return true;
  // One scan frees a batch, so a flood of new channels does not scan the map on every join.
  evict_idle_locked(std::max<std::size_t>(1, limits_.max_channels / 64), 0, nullptr, capped_channels_);
  if (channels_.size() < limits_.max_channels) return true;
  refused_channels_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void hub::enforce_budget(const channel* keep) {
  const std::size_t budget = limits_.history_total;
  if (budget == 0 || cost_.load(std::memory_order_relaxed) <= trigger_.load(std::memory_order_relaxed)) return;
  if (evicting_.exchange(true, std::memory_order_acquire)) return;  // another thread is at it
  // Evict a sixteenth below the budget: one scan pays for many messages.
  const std::size_t target = budget - budget / 16;
  {
    std::lock_guard lock(mutex_);
    // First, channels nobody is in, least recently active first.
    evict_idle_locked(channels_.size(), target, keep, evicted_channels_);
    if (cost_.load(std::memory_order_relaxed) > target) {
      // Then the oldest messages of the least recently active channels.
      std::vector<std::pair<clock::time_point, channel*>> order;
      order.reserve(channels_.size());
      for (const auto& [name, ch] : channels_) {
        channel_lock chlock(ch->mutex_, locking());
        if (ch->history_.size() != 0) order.emplace_back(ch->last_activity_, ch.get());
      }
      std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [last, chp] : order) {
        if (cost_.load(std::memory_order_relaxed) <= target) break;
        channel_lock chlock(chp->mutex_, locking());
        std::uint64_t dropped = 0;
        while (cost_.load(std::memory_order_relaxed) > target && chp->history_.drop_oldest()) {
          ++dropped;
          account(*chp);
        }
        evicted_messages_.fetch_add(dropped, std::memory_order_relaxed);
      }
    }
    // What is left is members' channels without history: look again only after it grew.
    const std::size_t left = cost_.load(std::memory_order_relaxed);
    trigger_.store(left > target ? left + budget / 16 : budget, std::memory_order_relaxed);
  }
  evicting_.store(false, std::memory_order_release);
}

membership hub::join(std::string_view channel_name, std::string_view uid, shared_frame join_frame,
                     std::shared_ptr<member> who, boost::system::error_code& ec, clock::time_point now,
                     member_role role) {
  std::shared_ptr<channel> ch;
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel_name);
    if (it == channels_.end()) {
      if (!room_for_channel_locked()) {
        ec = proto::errc::too_many_channels;
        return {};
      }
      it = channels_.emplace(std::string(channel_name),
                             std::make_shared<channel>(std::string(channel_name), limits_, now))
               .first;
      if (limits_.sequence_floor) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started_).count();
        it->second->next_seq_ = static_cast<std::uint64_t>(std::max<std::int64_t>(ms, 0)) * 4096 + 1;
      }
    }
    ch = it->second;
    id = next_id_++;
    // Take the channel lock before releasing the map lock so expire() cannot remove the
    // channel between lookup and join.
    channel_lock chlock(ch->mutex_, locking());
    // A batch pending in the channel is in the history the newcomer is about to get.
    flush_batch_locked(*ch);
    const bool outbound = role == member_role::peer_link || role == member_role::reference_link;
    const std::uint64_t uid_hash = outbound ? 0 : uid_key(uid);  // 0: nothing to check
    auto same_uid = [&](const channel::entry& e) { return e.uid_hash == uid_hash; };
    if (uid_hash != 0 && (std::any_of(ch->members_.begin(), ch->members_.end(), same_uid) ||
                          std::any_of(ch->relays_.begin(), ch->relays_.end(), same_uid))) {
      ec = proto::errc::duplicate_uid;
      return {};
    }
    switch (role) {
      case member_role::client: {
        ch->history_.for_each([&](const message& m) { who->deliver(m.frame, delivery_kind::history); });
        message joined{std::move(join_frame), nullptr, ch->next_seq_++ & max_sequence, message_flags::join};
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
    list_of(*ch, role).push_back({std::move(who), id, uid_hash});
    ch->last_activity_ = now;
    if (role == member_role::client && ch->clients_++ == 0 && observer_) observer_->on_interest(ch->name_, true);
    account(*ch);
  }
  enforce_budget();
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
  account(ch);
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

publish_result hub::publish(const membership& m, message msg, clock::time_point now, persisted p,
                            std::size_t* delivered_to, bool batched) {
  const publish_result verdict = publish_locked(m, std::move(msg), now, p, delivered_to, batched);
  if (limits_.history_total != 0) enforce_budget();
  return verdict;
}

void hub::end_batch(const membership& m) {
  if (!m) return;
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  if (ch.batch_.sender == m.id) flush_batch_locked(ch);
}

void hub::fan_out_locked(channel& ch, const shared_frame& frame, std::uint64_t sender, std::size_t recipients,
                         delivery_kind kind) {
  frame.add_refs(static_cast<std::uint32_t>(recipients));
  for (const auto& e : ch.members_) {
    if (e.id != sender) e.who->deliver(frame.adopt(), kind);
  }
}

void hub::flush_batch_locked(channel& ch) const {
  auto& b = ch.batch_;
  if (b.frames.empty()) return;
  shared_frame block;
  if (b.frames.size() == 1) {
    block = std::move(b.frames.front());
  } else {
    block = shared_frame::allocate(b.bytes, b.frames.front().mode());
    std::uint8_t* out = block.writable().data();
    for (const auto& f : b.frames) {
      std::memcpy(out, f.data(), f.size());
      out += f.size();
    }
  }
  b.frames.clear();
  b.bytes = 0;
  // The list's storage goes to this thread's spare (or away): a channel holds none between
  // batches, and the next batch on this thread needs no allocation (growing a fresh list
  // for every burst made glibc consolidate its free lists: ~2 % of a 100-channel profile).
  if (batch_spare.capacity() < b.frames.capacity() && b.frames.capacity() <= spare_entries_max)
    batch_spare.swap(b.frames);
  std::vector<shared_frame>().swap(b.frames);
  // The sender is a current client (only clients batch, and leave() delivers a batch before
  // removing its sender): every other client gets the batch.
  fan_out_locked(ch, block, b.sender, ch.members_.size() - 1, batch_kind());
}

publish_result hub::publish_locked(const membership& m, message msg, clock::time_point now, persisted p,
                                   std::size_t* delivered_to, bool batched) {
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  // Another member's batch goes out before this message (members see the history's order).
  if (ch.batch_.sender != m.id || !batched) flush_batch_locked(ch);
  const publish_result verdict = check_duplicate(ch, msg);
  if (verdict != publish_result::delivered) return verdict;
  if (!msg.from) {
    if (msg.seq == 0) msg.seq = ch.next_seq_++ & max_sequence;
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
  // The sender, when a client, is a current member: it gets none.
  const std::size_t recipients = ch.members_.size() - (m.role == member_role::client ? 1 : 0);
  if (delivered_to) *delivered_to = recipients;
  const std::size_t size = out.frame.size();
  if (batched && m.role == member_role::client && size <= batch_frame_max) {
    if (ch.batch_.bytes + size > batch_bytes_max) flush_batch_locked(ch);
    if (recipients != 0) {
      if (ch.batch_.frames.capacity() == 0) ch.batch_.frames.swap(batch_spare);
      ch.batch_.sender = m.id;
      ch.batch_.frames.push_back(out.frame);
      ch.batch_.bytes += size;
    }
  } else {
    flush_batch_locked(ch);
    // A large frame of a batching sender takes the same path as its batches.
    fan_out_locked(ch, out.frame, m.id, recipients, batched ? batch_kind() : kind);
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
    flush_batch_locked(ch);
    auto& list = list_of(ch, m.role);
    auto it = std::find_if(list.begin(), list.end(), [&](const channel::entry& e) { return e.id == m.id; });
    if (it != list.end()) {
      const member_role role = m.role;  // the list it is in
      // Order among members does not matter: swap-and-pop.
      if (it != list.end() - 1) *it = std::move(list.back());
      list.pop_back();
      if (role == member_role::client && --ch.clients_ == 0 && observer_) observer_->on_interest(ch.name_, false);
      if (role == member_role::reference_link) --ch.reference_links_;
    }
  }
  m.id = 0;
}

std::size_t hub::reload(const membership& m, std::vector<message> oldest_first, clock::time_point now) {
  std::size_t taken = 0;
  {
    channel& ch = *m.where;
    channel_lock lock(ch.mutex_, locking());
    flush_batch_locked(ch);
    if (ch.clients_ == 0) {
      ch.history_.clear();
      ch.dedup_.reset();
      std::uint64_t own_last = 0;  // this run's messages come in sequence order; a repeat is a copy
      for (auto& msg : oldest_first) {
        if (msg.from && *msg.from == *self_) {
          if (msg.seq <= own_last) continue;
          own_last = msg.seq;
          ch.next_seq_ = std::max(ch.next_seq_, msg.seq + 1);
          msg.from = nullptr;  // ours: relays re-encode it with self()
        } else if (check_duplicate(ch, msg) != publish_result::delivered) {
          continue;
        }
        store(m.where, msg);
        ++taken;
      }
      ch.last_activity_ = now;
      account(ch);
      oldest_first.clear();
    }
  }
  for (auto& msg : oldest_first) {
    if (publish(m, std::move(msg), now) == publish_result::delivered) ++taken;
  }
  if (taken != 0) enforce_budget();
  return taken;
}

bool hub::restore(const std::string& channel_name, std::vector<message> oldest_first, clock::time_point last_activity) {
  std::shared_ptr<channel> ch;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel_name);
    if (it == channels_.end()) {
      if (limits_.max_channels != 0 && channels_.size() >= limits_.max_channels) return false;
      it = channels_.emplace(channel_name, std::make_shared<channel>(channel_name, limits_, last_activity)).first;
    }
    ch = it->second;
  }
  {
  channel_lock chlock(ch->mutex_, locking());
  for (auto& m : oldest_first) {
    if (m.from) {
      if (!ch->dedup_) ch->dedup_ = std::make_unique<channel::dedup_state>(limits_);
      (void)ch->dedup_->origins.check_and_record(m.from->server, m.from->instance, m.seq);
    }
    ch->history_.push(std::move(m));
  }
  ch->last_activity_ = std::max(ch->last_activity_, last_activity);
  account(*ch);
  }
  enforce_budget(ch.get());
  return true;
}

std::uint64_t hub::next_sequence(const membership& m) {
  channel& ch = *m.where;
  channel_lock lock(ch.mutex_, locking());
  return ch.next_seq_++ & max_sequence;
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
      account(ch);
      if (ch.members_.empty() && ch.relays_.empty()) {
        cost_.fetch_sub(ch.cost_, std::memory_order_relaxed);
        ch.cost_ = 0;
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

hub::history_totals hub::history_held() const {
  history_totals t;
  std::lock_guard lock(mutex_);
  for (const auto& [name, ch] : channels_) {
    channel_lock chlock(ch->mutex_, locking());
    t.messages += ch->history_.size();
    t.bytes += ch->history_.bytes();
  }
  return t;
}

}  // namespace mles::hub
