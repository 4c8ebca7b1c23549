// Cluster mode (--nats): several interchangeable servers share channels through NATS.
//   - live flow: core NATS, one subject per channel (prefix.<bounded_token(channel)>), each
//     message the peer envelope (origin, sequence, flags) + the member's payload; a server
//     subscribes only to the channels that have local members (plus a linger);
//   - history: a JetStream stream over prefix.> (max_msgs_per_subject = --limit): every
//     message is published with an acknowledgement (JetStream stores it, and core
//     subscribers of the subject get it at the same time); a server loads a channel's
//     history from the stream when the channel gets its first local member, and again after
//     a reconnect (what it missed is delivered, duplicates are dropped by origin);
//   - one session per (uid, channel) on all servers: create-only keys in a JetStream KV
//     bucket, refreshed while the session lives and expiring --nats-session-ttl after a
//     crashed server's last refresh.
// The backplane is one more member of each attached channel (role peer_link: messages with
// origin, no uid, no history), so the hub deduplicates what comes back exactly like what
// comes over peer links, and the interest observer and join gate seams are all it needs.
//
// data path: client ─► hub.publish ─► backplane member relay ─► outbox ─► publisher thread ─► JetStream
//            NATS subscription (delivery thread) ─► decode envelope ─► hub.publish ─► members
//
// Threads: nats.c's own (socket, one message delivery thread for every subscription), one
// publisher thread, and `workers` threads that run the blocking NATS requests (stream and KV
// set-up, history loads, claims). Every task of one channel runs on one worker (chosen by the
// channel's hash), and so does every claim of one key: they never race each other.
// Lock order: channel state (chan::m) ─► hub channel lock ─► outbox; the map lock (mu_) is
// never held while calling the hub.
#pragma once

#include "hub/hub.hpp"
#include "net/session_context.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct __natsConnection;
struct __jsCtx;
struct __kvStore;
struct __natsMsg;
struct __natsSubscription;

namespace mles::cluster {

using clock = std::chrono::steady_clock;

struct settings {
  std::vector<std::string> urls;                 // --nats, nats:// or tls://, user:pass@ allowed
  std::optional<std::filesystem::path> creds;    // --nats-creds
  std::optional<std::filesystem::path> ca;       // --nats-ca
  int replicas = 1;                              // --nats-replicas
  std::string prefix = "mles";                   // --nats-prefix: stream name, subject prefix
  std::size_t buffer_bytes = 64u << 20;          // --nats-buffer: outgoing, while NATS is away
  std::chrono::milliseconds session_ttl{30'000};  // --nats-session-ttl
  std::chrono::milliseconds linger{60'000};      // subscription kept after the last local member
  std::size_t history_limit = 200;               // --limit: messages per channel (per subject)
  std::size_t stream_bytes = 0;                  // the stream's byte bound (--history-total); 0: none
  std::size_t max_message = 16u << 20;           // --max-message (the stream's message size bound)
  std::chrono::seconds max_age{30 * 24 * 3600};  // = the idle-channel expiry
  std::string server_id;                         // this server's id (KV values, connection name)
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{5'000};  // each JetStream request
  unsigned workers = 4;
};

// Figures for logs and metrics; monotonic counters except connected and buffered_bytes.
struct stats {
  std::atomic<bool> connected{false};
  std::atomic<std::uint64_t> published{0};        // handed to JetStream
  std::atomic<std::uint64_t> acknowledged{0};     // stored, acknowledged by JetStream
  std::atomic<std::uint64_t> retried{0};          // publish failed or timed out: sent again
  std::atomic<std::uint64_t> dropped{0};          // outgoing buffer full (oldest dropped) or refused
  std::atomic<std::uint64_t> received{0};         // messages from other servers (live)
  std::atomic<std::uint64_t> loaded{0};           // history messages read from the stream
  std::atomic<std::uint64_t> load_failures{0};
  std::atomic<std::uint64_t> claims_refused{0};   // joins refused: uid joined on another server
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> gaps{0};             // skipped sequences seen (history read again)
  std::atomic<std::size_t> buffered_bytes{0};     // waiting in the outgoing buffer
  std::atomic<std::size_t> subscriptions{0};      // channels attached now
};

class backplane final : public hub::interest_observer, public net::join_gate {
 public:
  backplane(settings s, hub::hub& h);
  ~backplane();
  backplane(const backplane&) = delete;
  backplane& operator=(const backplane&) = delete;

  // Connects. With NATS reachable, creates or updates the stream and the session bucket and
  // throws std::runtime_error when that fails (say, an existing stream whose settings
  // conflict). With NATS unreachable, logs it and keeps trying in the background: the
  // server serves its local members meanwhile.
  void start();
  // Server stop, after the sessions were closed: publishes what is buffered (briefly, when
  // connected), gives back the claims, leaves the hub, closes the connection.
  void stop();

  const stats& figures() const noexcept { return stats_; }

  // hub::interest_observer (under a hub channel lock: only marks and schedules)
  void on_interest(const std::string& channel, bool has_clients) override;
  // net::join_gate
  void admit(const std::string& channel, const std::string& uid, std::function<void(net::admission)> done) override;
  void release(const std::string& channel, const std::string& uid) override;

  struct chan;           // one attached channel (backplane.cpp)
  struct callback_gate;  // what nats.c's callbacks reach us through (backplane.cpp)
  // For the subscriptions' callback.
  hub::hub& hub() noexcept { return hub_; }
  void note_received() noexcept;
  void on_gap(const std::shared_ptr<chan>& c);

 private:
  // A single-threaded task queue with delayed tasks.
  struct worker {
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::function<void()>> now;
    std::multimap<clock::time_point, std::function<void()>> later;
    std::thread thread;
    // Claims whose key hashes to this worker: key -> KV revision and local holders.
    struct claim {
      std::uint64_t revision = 0;
      std::size_t holders = 0;
    };
    std::unordered_map<std::string, claim> claims;  // worker thread only
    clock::time_point next_refresh{};
  };
  struct out_item {
    std::shared_ptr<const std::string> subject;
    std::string data;
  };

  worker& worker_for(const std::string& key);
  std::vector<std::shared_ptr<chan>> attached_channels();  // a snapshot of the map
  void post(worker& w, std::function<void()> task);
  void post_after(worker& w, clock::duration delay, std::function<void()> task);
  void run_worker(worker& w);
  void run_publisher();

  // Stream and bucket (worker or start thread). Throws on failure.
  void set_up();
  void ensure_stream();
  void ensure_bucket();
  // On the channel's worker.
  void attach(const std::string& channel, const std::function<void()>& then);
  void detach(const std::shared_ptr<chan>& c, std::uint64_t generation);
  // The channel's history again (after a reconnection, or a read that failed); false when it
  // could not be read (stale: tried again later).
  bool refill(const std::shared_ptr<chan>& c);
  void schedule_refill(const std::shared_ptr<chan>& c);
  void take_back_pending();
  // keep: hand the consumer's subscription back instead of deleting it (end_consumer later:
  // the deletion is a request the join need not wait for).
  bool fetch_history(const std::string& subject, std::vector<hub::message>& out, __natsSubscription** keep = nullptr);
  void end_consumer(__natsSubscription* sub);
  // On the key's worker.
  net::admission claim(worker& w, const std::string& key);
  void unclaim(worker& w, const std::string& key);
  void refresh_claims(worker& w);

  void enqueue_out(const std::shared_ptr<const std::string>& subject, const hub::message& m);
  // A publish that failed: sent again before anything in the outbox, in failure order.
  void requeue(std::string subject, std::string data);
  bool has_output() const { return !retry_.empty() || !outbox_.empty(); }  // under out_mutex_
  bool stalled() const;                                                    // under out_mutex_
  void expire_inflight();                                                  // under out_mutex_
  // JetStream's answer to one publish (nats.c's thread); takes the message.
  void on_ack(__natsMsg* msg, bool ok, int err, int err_code);

  // nats.c callbacks (their threads).
  static void on_connected(__natsConnection* nc, void* self);
  static void on_disconnected(__natsConnection* nc, void* self);
  static void on_reconnected(__natsConnection* nc, void* self);
  void after_connect(bool first);
  void resume();  // first worker: set up, refill, refresh claims
  std::string last_setup_error_;  // first worker only

  settings s_;
  hub::hub& hub_;
  stats stats_;
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;      // stream: publishes and history reads
  __jsCtx* kv_js_ = nullptr;   // session bucket: shorter waits
  __kvStore* kv_ = nullptr;
  std::string stream_;
  std::string bucket_;
  std::atomic<bool> ready_{false};     // stream and bucket set up
  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  std::mutex setup_mutex_;             // set_up() from the start thread or a worker
  callback_gate* gate_;                // never freed: nats.c may call through it after we are gone

  std::vector<std::unique_ptr<worker>> workers_;

  std::mutex interest_mutex_;  // chan::interest and chan::generation (taken under hub locks)
  std::mutex mu_;  // channels_
  std::unordered_map<std::string, std::shared_ptr<chan>> channels_;

  std::mutex out_mutex_;  // outbox_, retry_, out_bytes_, inflight_bytes_
  std::condition_variable out_cv_;
  std::deque<out_item> outbox_;
  std::deque<out_item> retry_;         // failed publishes, oldest first
  std::size_t out_bytes_ = 0;
  std::size_t inflight_bytes_ = 0;     // published, not yet acknowledged
  // Publishes in flight, for the stall rule: message address -> id, id -> when it went out.
  struct in_flight {
    clock::time_point sent;
    const void* address;  // key of inflight_ids_
    out_item item;        // sent again if no answer ever comes
  };
  std::unordered_map<const void*, std::uint64_t> inflight_ids_;
  std::map<std::uint64_t, in_flight> inflight_times_;
  std::uint64_t next_publish_id_ = 0;
  std::thread publisher_;
  clock::time_point last_drop_warning_{};
};

}  // namespace mles::cluster
