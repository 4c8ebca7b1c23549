// The hub: channels by name, their members and history, fan-out, and deduplication of what
// links bring in. Messages are published by an *origin* member (a client session, an inbound
// peer link, an outbound link) and go to every other member of the channel.
// data path: session / link ─► hub.join / hub.publish ─► member.deliver / member.relay
// Thread-safety: every member function is safe from any thread. Lock order: channel map,
// then one channel; members' deliver()/relay() and the observer run under the channel lock
// (they only enqueue or post). Exception: with hub_limits::one_thread (a server with a single
// event loop) every call comes from that loop's thread, and channels are not locked at all
// (a per-message mutex showed as ~9% of a 100-channel fan-out profile).
#pragma once

#include "hub/channel_history.hpp"
#include "hub/dedup_window.hpp"
#include "hub/member.hpp"
#include "hub/message.hpp"
#include "hub/shared_frame.hpp"
#include "proto/error.hpp"

#include <chrono>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mles::hub {

using clock = std::chrono::steady_clock;

struct hub_limits {
  std::size_t history_limit = 200;         // messages per channel
  std::size_t history_bytes = 32u << 20;   // bytes per channel
  bool one_thread = false;                 // every call from one thread: no channel locks
  std::size_t dedup_hashes = 1024;         // payload hashes remembered per channel (hash mode)
  std::size_t dedup_window = 1024;         // sequence window per origin (peer mode)
  std::size_t dedup_origins = 64;          // origins remembered per channel
  // Over all channels: bytes of history (frames plus a per-message and per-channel
  // overhead, see history_cost). Over it, memberless channels are forgotten and the least
  // recently active channels lose their oldest messages. 0: unbounded.
  std::size_t history_total = 0;
  // Channels known at once. At the cap, memberless channels are forgotten (least recently
  // active first) to make room; when every channel has members, creating one is refused
  // (errc::too_many_channels). 0: unbounded.
  std::size_t max_channels = 0;
  // This server's sequence numbers of a channel created anew start above any it can have
  // used before in this run (milliseconds since the hub started × 4096 + 1), instead of at 1.
  // Cluster mode needs it: a channel forgotten here (budget, expiry) and joined again must
  // not reuse sequences that other servers' windows remember (its messages would be dropped
  // as duplicates). The numbering stays consecutive within the channel's life.
  bool sequence_floor = false;
};

// What the global budget counts for a channel and for each stored message besides its bytes:
// the channel object, its maps and locks, a message's slot in the ring and its allocation.
inline constexpr std::size_t channel_overhead = 512;
inline constexpr std::size_t message_overhead = 96;

// Figures of the global bounds, for logs and metrics (monotonic counters except the first).
struct budget_stats {
  std::size_t history_cost = 0;          // what the budget counts now, bytes
  std::uint64_t evicted_messages = 0;    // oldest messages dropped over the budget
  std::uint64_t evicted_channels = 0;    // memberless channels forgotten over the budget
  std::uint64_t capped_channels = 0;     // memberless channels forgotten to make room at the cap
  std::uint64_t refused_channels = 0;    // joins refused at the channel cap
};

// Told when a channel gains its first or loses its last client (local interest): that is
// when links to peers open and close. Called under the channel lock, from any thread: must
// not block and must not call back into the hub (post the work elsewhere).
class interest_observer {
 public:
  virtual void on_interest(const std::string& channel, bool has_clients) = 0;

 protected:
  ~interest_observer() = default;
};

// Where history goes besides the in-memory ring: a durable store. The hub only marks a
// channel changed when a message is stored (no per-message work for the store on the
// fan-out path); the store collects what changed with hub::collect on its own schedule, and
// hears of every channel forgotten (under the channel lock: must not block). The hub's
// in-memory ring stays the working set that newcomers are served from.
class history_store {
 public:
  virtual void forget(const std::string& channel) = 0;
  // True when a client's message must be durable before it is forwarded (--history-sync 0):
  // sessions then call append_durable and publish with persisted::already once it is done,
  // and the hub hands every other stored message (joins, messages from links) to append()
  // at once, so the store keeps them in the order members saw them.
  virtual bool durable_before_forward() const noexcept = 0;
  // Under the channel lock, only when durable_before_forward(): queue m now (no waiting).
  virtual void append(const std::string& channel, const message& m) = 0;
  // Any thread, not under a lock: m stored durably, then done(ok) on some other thread.
  virtual void append_durable(const std::string& channel, const message& m, std::function<void(bool ok)> done) = 0;

 protected:
  ~history_store() = default;
};

class channel {
 public:
  channel(std::string name, const hub_limits& limits, clock::time_point now)
      : name_(std::move(name)), history_(limits.history_limit, limits.history_bytes),
        last_activity_(now) {}
  const std::string& name() const noexcept { return name_; }

 private:
  friend class hub;
  // 32 bytes: an idle channel of many members holds one per member. The uid is kept as its
  // keyed hash (payload_hash): enough to refuse a second session of the same uid (an
  // accidental collision is a 2^-64 event, a crafted one needs the process's secret key),
  // without a copy of the string the session keeps anyway.
  struct entry {
    std::shared_ptr<member> who;
    std::uint64_t id;
    std::uint64_t uid_hash;  // 0: no uid (our outbound links)
  };
  // Deduplication state, made on the first message that needs it.
  struct dedup_state {
    dedup_state(const hub_limits& l) : origins(l.dedup_origins, l.dedup_window), hashes(l.dedup_hashes) {}
    origin_window origins;
    hash_window hashes;
  };

  std::string name_;
  mutable std::mutex mutex_;
  channel_history history_;
  std::vector<entry> members_;        // role client: the fan-out loop touches only these
  std::vector<entry> relays_;         // every other role (links and peer sessions)
  std::size_t clients_ = 0;           // members_.size(), for the interest observer
  std::size_t reference_links_ = 0;   // members with role reference_link
  bool hash_mode_ = false;            // payload hashes are checked for every message
  // For messages of this server's own members; taken masked to max_sequence, which it does
  // not reach (2^56 messages, or 557 years of the cluster mode's time-based floor).
  std::uint64_t next_seq_ = 1;
  std::uint64_t appended_ = 0;        // messages ever stored in history_
  std::uint64_t collected_ = 0;       // ...of which the durable store has collected
  bool dirty_ = false;                // on the hub's list of changed channels
  std::size_t cost_ = 0;              // what this channel adds to the hub's history_cost
  std::unique_ptr<dedup_state> dedup_;
  clock::time_point last_activity_;
  // Messages of one client published with hub::publish_batched, stored and relayed already,
  // whose delivery to the other clients waits for hub::end_batch or the channel's next other
  // operation (which delivers them first, so every member keeps the history's order).
  struct pending_batch {
    std::uint64_t sender = 0;           // the publishing member's id
    std::vector<shared_frame> frames;   // oldest first
    std::size_t bytes = 0;
  };
  pending_batch batch_;
};

// Batched fan-out: frames up to this size join a batch (larger ones go alone, without a
// copy), and a batch is delivered once it would exceed batch_bytes_max.
inline constexpr std::size_t batch_frame_max = 4096;
inline constexpr std::size_t batch_bytes_max = 64 * 1024;

// A member's place in a channel, returned by join and handed back to publish/leave.
// After leave it is no longer current but still names the channel it was in (a session's
// last log lines say which; it need not keep the name itself).
struct membership {
  std::shared_ptr<channel> where;
  std::uint64_t id = 0;  // 0: not a member (never joined, refused, or left)
  member_role role = member_role::client;
  explicit operator bool() const noexcept { return id != 0; }
  std::string_view channel_name() const noexcept { return where ? std::string_view(where->name()) : std::string_view(); }
};

// Whether publish() hands the message to the durable store.
enum class persisted : bool { no, already };

enum class publish_result : std::uint8_t {
  delivered,  // stored and delivered
  duplicate,  // seen before (same origin and sequence, or same payload hash in hash mode)
  too_old,    // below the origin's sequence window: treated as seen
  own,        // our own message come back over a link
};

class hub {
 public:
  // self: this server's origin (its id and this run's instance number).
  explicit hub(hub_limits limits, origin self = {"mles", 0});

  // Before any join: this server's origin, the observer of local interest and the durable
  // history store (either may be null). They must outlive the hub's use.
  void set_self(origin self) { self_ = std::make_shared<const origin>(std::move(self)); }
  void set_observer(interest_observer* o) noexcept { observer_ = o; }
  void set_history_store(history_store* s) noexcept { store_ = s; }

  // Atomically under the channel lock: refuse a uid already joined to the channel (error
  // duplicate_uid, nothing stored); then by role:
  //  - client: deliver the channel's history to `who` oldest first, append `join_frame` to the
  //    history (not sent to the members already present; relayed to links as a join) and add;
  //  - peer_session: relay the history (with origins) to `who` and add; the link's own join
  //    frame is not stored;
  //  - peer_link / reference_link: add (no uid check, no history, nothing stored).
  // Creates the channel on first use.
  membership join(std::string_view channel_name, std::string_view uid, shared_frame join_frame,
                  std::shared_ptr<member> who, boost::system::error_code& ec,
                  clock::time_point now = clock::now(), member_role role = member_role::client);

  // A message of member m: deduplicated (messages with an origin by origin and sequence,
  // every message by payload hash while the channel is in hash mode), then appended to the
  // history and delivered to every member but m (joins: history only, and to relays).
  // A message without origin (m.from null) is this server's: the hub numbers it with the
  // channel's next sequence number (its origin stays null, meaning self(), in the history and
  // for relays); one from a reference link is also marked hashed.
  // m must be a current membership (not left). persisted::already: the durable store has it
  // (--history-sync 0), only the in-memory history takes it. delivered_to, when given, is set to
  // the number of members the message was delivered to (live, not relays; 0 for joins).
  publish_result publish(const membership& m, message msg, clock::time_point now = clock::now(),
                         persisted p = persisted::no, std::size_t* delivered_to = nullptr) {
    return publish(m, std::move(msg), now, p, delivered_to, false);
  }
  publish_result publish(const membership& m, shared_frame frame, clock::time_point now = clock::now()) {
    return publish(m, message{std::move(frame), nullptr, 0, 0}, now);
  }

  // A client's message (m's role must be client), stored and relayed as publish() does, whose
  // delivery to the other clients may wait: the messages member m publishes until it calls
  // end_batch(m) reach each of them as one frame (their encoded frames side by side), so a
  // burst costs each member one queue slot, one reference and one write instead of one per
  // message. The batch is delivered earlier when the channel sees any other operation (a
  // join, a leave, another member's message), when it would pass batch_bytes_max, and before
  // a message larger than batch_frame_max, which goes alone. The caller must call end_batch
  // (a session does it at the end of each read). delivered_to: as for publish().
  publish_result publish_batched(const membership& m, shared_frame frame, clock::time_point now,
                                 std::size_t* delivered_to = nullptr) {
    return publish(m, message{std::move(frame), nullptr, 0, 0}, now, persisted::no, delivered_to, true);
  }
  // Delivers what member m has batched in its channel (nothing if another operation did).
  void end_batch(const membership& m);

  // Removes the member; the channel and its history stay. m is no longer current (it keeps
  // naming the channel).
  void leave(membership& m);

  // Start-up, before any join: a channel's history from the durable store, oldest first
  // (not stored again, not delivered). Origins are recorded in the channel's dedup window,
  // so a peer replaying the same messages does not deliver them twice. last_activity: when
  // the newest of them was stored.
  // False (nothing restored) when the channel cap is reached.
  bool restore(const std::string& channel, std::vector<message> oldest_first, clock::time_point last_activity);

  // Cluster mode: the channel's history as the cluster's store holds it, oldest first, brought
  // in by member m (the cluster's member of the channel). A channel without clients takes it
  // as its history: the in-memory one is replaced (the store is the authority; this server's
  // copy may be stale) and the origins are recorded; messages of this run's own origin stay
  // this server's (they must come in sequence order; a repeated one is dropped). A channel
  // with clients keeps its history and gets each message as if
  // published by m (deduplicated: only what it missed is stored and delivered). Returns the
  // number of messages taken.
  std::size_t reload(const membership& m, std::vector<message> oldest_first, clock::time_point now = clock::now());

  // Resynchronisation: relays the channel's history to member m (a link in peer mode, whose
  // peer keeps what it did not have), oldest first.
  void replay(const membership& m);

  // For the durable store: for every channel changed since the last call, fn(channel, the
  // messages stored since then that are still in its history, oldest first; those already
  // stored durably excluded). With hub_limits::one_thread, call on the loop's thread (or after
  // it stopped). fn runs under the channel's lock: copy, do not block.
  void collect(const std::function<void(const std::string& channel, std::vector<message>&& added)>& fn);

  history_store* durable() const noexcept { return store_; }

  // --history-sync 0: the sequence number a message of member m will carry, taken before it
  // is stored durably (publish keeps a message's sequence when it has one).
  std::uint64_t next_sequence(const membership& m);

  // Forgets channels idle (no publish or join) for at least ttl: their history is dropped, and
  // channels without members are removed. Returns the number of channels removed.
  std::size_t expire(clock::time_point now, clock::duration ttl);

  // Global bounds (hub_limits::history_total and max_channels): current cost and counters.
  budget_stats budget() const noexcept;

  // Channels that have clients now (for links opened after start).
  std::vector<std::string> channels_with_clients() const;
  std::size_t channel_count() const;
  // Messages and bytes held in all channels' in-memory histories (walks every channel under
  // its lock; for metrics scrapes, not the data path).
  struct history_totals {
    std::size_t messages = 0;
    std::size_t bytes = 0;
  };
  history_totals history_held() const;
  const hub_limits& limits() const noexcept { return limits_; }
  const origin_ptr& self() const noexcept { return self_; }

 private:
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  // Locks a channel unless the hub is used from one thread only.
  class channel_lock {
   public:
    channel_lock(std::mutex& m, bool on) : m_(on ? &m : nullptr) {
      if (m_) m_->lock();
    }
    ~channel_lock() {
      if (m_) m_->unlock();
    }
    void unlock() {
      if (m_) m_->unlock();
      m_ = nullptr;
    }
    channel_lock(const channel_lock&) = delete;
    channel_lock& operator=(const channel_lock&) = delete;

   private:
    std::mutex* m_;
  };
  bool locking() const noexcept { return !limits_.one_thread; }
  static std::vector<channel::entry>& list_of(channel& ch, member_role role) noexcept {
    return role == member_role::client ? ch.members_ : ch.relays_;
  }
  // Both publish paths: publish_locked, then the history budget (outside the channel lock).
  publish_result publish(const membership& m, message msg, clock::time_point now, persisted p,
                         std::size_t* delivered_to, bool batched);
  publish_result publish_locked(const membership& m, message msg, clock::time_point now, persisted p,
                                std::size_t* delivered_to, bool batched);
  // Under the channel lock: frame to every client but `sender`, `recipients` of them, with
  // one reference add for all.
  static void fan_out_locked(channel& ch, const shared_frame& frame, std::uint64_t sender,
                             std::size_t recipients, delivery_kind kind);
  // Under the channel lock: delivers the pending batch, if any.
  void flush_batch_locked(channel& ch) const;
  // How batched messages are delivered. With one loop, as live messages. With several, a
  // batch may be delivered by another loop's thread (whichever operation meets it first), so
  // a sender's batched messages always take the recipients' locked queue (relayed), the one
  // path that keeps their order from any thread.
  delivery_kind batch_kind() const noexcept {
    return limits_.one_thread ? delivery_kind::live : delivery_kind::relayed;
  }
  // Under the channel lock: is msg new? Records it when it is.
  publish_result check_duplicate(channel& ch, const message& msg);
  // Appends msg to the history (and the durable store); returns the stored copy, or msg itself
  // when the history keeps nothing.
  const message& store(const std::shared_ptr<channel>& ch, message& msg, persisted p = persisted::no);

  // Under the channel lock: brings the channel's share of the history cost up to date.
  void account(channel& ch) noexcept;
  // Not under any lock: evicts while over the history budget (one thread at a time); `keep`
  // (the channel just restored) is trimmed but never forgotten.
  void enforce_budget(const channel* keep = nullptr);
  // Under the map lock: forgets up to n memberless channels but `keep`, least recently
  // active first; stops once the history cost is at most `until` when given. Returns how
  // many went.
  std::size_t evict_idle_locked(std::size_t n, std::size_t until, const channel* keep,
                                std::atomic<std::uint64_t>& counted_in);
  // Under the map lock: a channel may be created (at the cap, makes room if it can).
  bool room_for_channel_locked();
  // Under the channel (and map) lock: removes a memberless channel's history and store record.
  void forget_locked(channel& ch);

  hub_limits limits_;
  origin_ptr self_;
  std::atomic<std::size_t> cost_{0};
  // Enforcement starts over this; raised when evicting could not get under the budget (so a
  // budget made of members' channels is not rescanned on every message).
  std::atomic<std::size_t> trigger_{0};
  std::atomic<bool> evicting_{false};
  const clock::time_point started_ = clock::now();
  std::atomic<std::uint64_t> evicted_messages_{0};
  std::atomic<std::uint64_t> evicted_channels_{0};
  std::atomic<std::uint64_t> capped_channels_{0};
  std::atomic<std::uint64_t> refused_channels_{0};
  interest_observer* observer_ = nullptr;
  history_store* store_ = nullptr;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<channel>, name_hash, std::equal_to<>> channels_;
  std::uint64_t next_id_ = 1;  // under mutex_
  std::mutex dirty_mutex_;     // after a channel lock when both are held
  std::vector<std::shared_ptr<channel>> dirty_;  // changed since the last collect (under dirty_mutex_)
};

}  // namespace mles::hub
