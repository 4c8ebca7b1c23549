// The cluster backplane on NATS: see backplane.hpp.
#include "cluster/backplane.hpp"

#include "cluster/subject.hpp"
#include "net/peer_wire.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace mles::cluster {

namespace {

constexpr std::int64_t ns_per_ms = 1'000'000;
// Published and not yet acknowledged, at most (besides nats.c's own count bound).
constexpr std::size_t max_inflight_bytes = 8u << 20;
constexpr int max_inflight_messages = 4096;
// Live messages kept for a channel while its history loads; past it the load is redone.
constexpr std::size_t max_buffered_while_loading = 100'000;

std::string status_text(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail && *detail && last == s) {
    text += ": ";
    text += detail;
  }
  return text;
}

// Each origin's messages in sequence order, in the places the stream gave that origin's
// messages: a publish that was retried after newer ones succeeded is stored after them, but a
// newcomer must get every sender's messages in the sender's order. The interleaving of
// different origins stays the stream's; copies (same origin and sequence) stay adjacent
// within their origin and are dropped by the hub.
void order_per_origin(std::vector<hub::message>& v) {
  std::map<std::pair<std::string_view, std::uint64_t>, std::vector<std::size_t>> places;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].from) places[{v[i].from->server, v[i].from->instance}].push_back(i);
  }
  std::vector<hub::message> group;
  for (auto& [who, at] : places) {
    bool sorted = true;
    for (std::size_t k = 1; k < at.size() && sorted; ++k) sorted = v[at[k - 1]].seq <= v[at[k]].seq;
    if (sorted) continue;
    group.clear();
    for (std::size_t i : at) group.push_back(std::move(v[i]));
    std::stable_sort(group.begin(), group.end(), [](const hub::message& a, const hub::message& b) { return a.seq < b.seq; });
    for (std::size_t k = 0; k < at.size(); ++k) v[at[k]] = std::move(group[k]);
  }
}

}  // namespace

// What nats.c's connection callbacks and publish acknowledgements reach the backplane
// through. nats.c may still call them after the connection is closed and destroyed (its
// callback thread drains asynchronously), so they hold this, not the backplane: stop()
// clears target under the lock, and a late callback finds nothing. It is never freed (nats.c
// keeps the pointer until its own exit), and stays reachable from a global.
struct backplane::callback_gate {
  std::mutex m;
  std::condition_variable idle;
  backplane* target = nullptr;  // under m
  int active = 0;               // callbacks running now, under m

  // A callback's hold on the backplane (no lock held while it runs: it may call into nats.c).
  class pass {
   public:
    explicit pass(callback_gate& g) : g_(g) {
      std::lock_guard lock(g_.m);
      b_ = g_.target;
      if (b_) ++g_.active;
    }
    ~pass() {
      if (!b_) return;
      std::lock_guard lock(g_.m);
      if (--g_.active == 0) g_.idle.notify_all();
    }
    pass(const pass&) = delete;
    pass& operator=(const pass&) = delete;
    backplane* get() const noexcept { return b_; }

   private:
    callback_gate& g_;
    backplane* b_ = nullptr;
  };

  // No callback reaches the backplane after this returns.
  void close() {
    std::unique_lock lock(m);
    target = nullptr;
    idle.wait(lock, [&] { return active == 0; });
  }
};

namespace {

backplane::callback_gate* new_callback_gate() {
  static std::mutex m;
  static auto* all = new std::vector<backplane::callback_gate*>;
  std::lock_guard lock(m);
  all->push_back(new backplane::callback_gate);
  return all->back();
}

// A NATS URL for the log: user and password (or token) replaced by "***".
std::string redacted(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto host = scheme + 3;
  const auto at = url.find('@', host);
  if (at == std::string_view::npos || url.find('/', host) < at) return std::string(url);
  return std::string(url.substr(0, host)) + "***" + std::string(url.substr(at));
}

// Mles server ids are printable ASCII; a connection name is shown by the NATS monitor.
std::string claim_key(const std::string& channel, const std::string& uid) {
  return bounded_token(channel) + "." + bounded_token(uid);
}

bool transient(natsStatus s) {
  return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED ||
         s == NATS_CONNECTION_DISCONNECTED || s == NATS_NOT_YET_CONNECTED || s == NATS_IO_ERROR ||
         s == NATS_NO_SERVER || s == NATS_STALE_CONNECTION;
}

}  // namespace

// One channel this server takes part in through NATS: its subscription and its hub member.
struct backplane::chan final : hub::member, std::enable_shared_from_this<chan> {
  // idle: not attached; loading: attaching (history being read); live: attached, live
  // messages go to the hub; held: attached, live messages wait until the history read after
  // a reconnection is in (so what was missed comes before what is new).
  enum class state : std::uint8_t { idle, loading, live, held };

  chan(backplane& o, std::string n)
      : owner(o), name(std::move(n)), subject(std::make_shared<const std::string>(channel_subject(o.s_.prefix, name))) {}

  // hub::member: only relay() is called for a peer_link member.
  void deliver(hub::shared_frame frame, hub::delivery_kind kind) override {
    relay(hub::message{std::move(frame), nullptr, 0, 0}, kind);
  }
  // Under the hub's channel lock: the message goes to the outbox (copied), nothing waits.
  void relay(const hub::message& msg, hub::delivery_kind) override { owner.enqueue_out(subject, msg); }

  backplane& owner;
  const std::string name;
  const std::shared_ptr<const std::string> subject;
  std::mutex m;  // everything below
  state st = state::idle;
  natsSubscription* sub = nullptr;
  hub::membership ms;
  std::vector<hub::message> buffered;  // live messages that arrived while loading
  bool lost_some = false;              // buffered overflowed: load again
  bool stale = false;                  // live without its history from the stream
  std::uint64_t generation = 0;        // interest changes
  bool interest = false;
  hub::origin_ptr last_origin;         // decode cache (delivery thread)
  // Gap detection: per origin, the highest sequence handed to the hub (history included).
  // Each server numbers its messages per channel without holes, so a jump means something
  // was missed (a message stored before this server's interest reached every NATS node,
  // say): the channel's history is read again (at most once a second).
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> highest;
  bool gap_refill_pending = false;
  clock::time_point last_gap_refill{};

  // Under m: notes m's sequence; true when it skips some of its origin's.
  bool note_sequence(const hub::message& msg) {
    if (!msg.from || msg.seq == 0) return false;
    if (highest.size() >= 256) highest.clear();  // bounded; forgetting only misses a gap
    auto& top = highest[{msg.from->server, msg.from->instance}];
    const bool gap = top != 0 && msg.seq > top + 1;
    top = std::max(top, msg.seq);
    return gap;
  }
  // Under m: unsubscribes and leaves the hub; the channel is idle afterwards.
  void let_go() {
    if (sub) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
      sub = nullptr;
    }
    if (ms) owner.hub().leave(ms);
    st = state::idle;
  }
  // Under m: hands msg to the hub, watching for gaps.
  void publish(hub::message msg) {
    const bool gap = note_sequence(msg);
    owner.hub().publish(ms, std::move(msg));
    if (gap) owner.on_gap(shared_from_this());
  }
};

namespace {

// The subscription's closure: a reference to the channel, dropped when nats.c is done with it.
struct sub_closure {
  std::shared_ptr<backplane::chan> c;
};

void on_sub_complete(void* closure) { delete static_cast<sub_closure*>(closure); }

}  // namespace

// nats.c's message callback for a channel subscription (its delivery thread).
static void on_channel_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto& c = *static_cast<sub_closure*>(closure)->c;
  const auto* data = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg));
  const std::size_t size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
  hub::message m;
  const auto ec = net::decode_enveloped({data, size}, c.last_origin, m, hub::sharing::threads);
  natsMsg_Destroy(msg);
  if (ec) {
    spdlog::warn("cluster: dropped a malformed message on {}: {}", *c.subject, ec.message());
    return;
  }
  std::lock_guard lock(c.m);
  // Idle: detached, or the backplane stopped (and may be gone): touch nothing of it.
  if (c.st == backplane::chan::state::idle) return;
  c.owner.note_received();
  switch (c.st) {
    case backplane::chan::state::idle: return;
    case backplane::chan::state::loading:
    case backplane::chan::state::held:
      if (c.buffered.size() < max_buffered_while_loading) c.buffered.push_back(std::move(m));
      else c.lost_some = true;
      return;
    case backplane::chan::state::live:
      c.publish(std::move(m));
      return;
  }
}

backplane::backplane(settings s, hub::hub& h) : s_(std::move(s)), hub_(h), gate_(new_callback_gate()) {
  gate_->target = this;
  stream_ = s_.prefix;
  bucket_ = s_.prefix + "-sessions";
  if (s_.workers == 0) s_.workers = 1;
  for (unsigned i = 0; i < s_.workers; ++i) workers_.push_back(std::make_unique<worker>());
}

backplane::~backplane() {
  stop();
  gate_->close();
  if (kv_) kvStore_Destroy(kv_);
  if (js_) jsCtx_Destroy(js_);
  if (kv_js_) jsCtx_Destroy(kv_js_);
  if (nc_) natsConnection_Destroy(nc_);
  kv_ = nullptr;
  js_ = nullptr;
  kv_js_ = nullptr;
  nc_ = nullptr;
  // No nats_Close here: the library tears itself down at exit (closing it first crashed at
  // exit once its TLS had been used: its handler then ran on a closed library).
}

std::vector<std::shared_ptr<backplane::chan>> backplane::attached_channels() {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<chan>> out;
  out.reserve(channels_.size());
  for (const auto& [name, c] : channels_) out.push_back(c);
  return out;
}

void backplane::note_received() noexcept { stats_.received.fetch_add(1, std::memory_order_relaxed); }

void backplane::start() {
  natsOptions* opts = nullptr;
  auto check = [](natsStatus st, const char* what) {
    if (st != NATS_OK) throw std::runtime_error(std::string("--nats: ") + what + ": " + status_text(st));
  };
  check(natsOptions_Create(&opts), "options");
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> guard(opts, natsOptions_Destroy);
  std::vector<const char*> urls;
  for (const auto& u : s_.urls) urls.push_back(u.c_str());
  check(natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "bad URL list");
  const std::string name = "mles " + s_.server_id;
  check(natsOptions_SetName(opts, name.c_str()), "name");
  // Our own messages went to our members already; they must not come back.
  check(natsOptions_SetNoEcho(opts, true), "no-echo");
  // One delivery thread for every channel subscription, instead of one thread each.
  check(natsOptions_UseGlobalMessageDelivery(opts, true), "global delivery");
  check(natsOptions_SetTimeout(opts, s_.connect_timeout.count()), "timeout");
  check(natsOptions_SetMaxReconnect(opts, -1), "reconnects");
  check(natsOptions_SetCustomReconnectDelay(
            opts,
            [](natsConnection*, int attempts, void*) -> int64_t {
              // 250 ms doubling to 10 s, jitter 1/2..1: many servers do not reconnect in step.
              const int shift = std::min(attempts, 6);
              const std::int64_t base = std::min<std::int64_t>(250LL << shift, 10'000);
              thread_local std::minstd_rand rng{std::random_device{}()};
              return base / 2 + static_cast<std::int64_t>(rng() % static_cast<unsigned>(base / 2 + 1));
            },
            nullptr),
        "reconnect delay");
  check(natsOptions_SetPingInterval(opts, 5'000), "ping interval");
  check(natsOptions_SetMaxPingsOut(opts, 3), "pings out");
  // While disconnected we publish nothing (the outbox waits); keep nats.c's own buffer small.
  check(natsOptions_SetReconnectBufSize(opts, 1 << 20), "reconnect buffer");
  check(natsOptions_SetErrorHandler(
            opts,
            [](natsConnection*, natsSubscription* sub, natsStatus err, void*) {
              // Mostly a slow consumer: a subscription over its pending bound dropped messages
              // (the gaps are filled from the stream). At most one line a minute.
              static std::atomic<std::int64_t> last{0};
              const auto now = std::chrono::duration_cast<std::chrono::seconds>(clock::now().time_since_epoch()).count();
              std::int64_t prev = last.load();
              if (now - prev < 60 || !last.compare_exchange_strong(prev, now)) return;
              spdlog::warn("cluster: NATS: {}{}{}", natsStatus_GetText(err), sub ? " on " : "",
                           sub ? natsSubscription_GetSubject(sub) : "");
            },
            nullptr),
        "error handler");
  check(natsOptions_SetDisconnectedCB(opts, &backplane::on_disconnected, gate_), "callbacks");
  check(natsOptions_SetReconnectedCB(opts, &backplane::on_reconnected, gate_), "callbacks");
  check(natsOptions_SetRetryOnFailedConnect(opts, true, &backplane::on_connected, gate_), "retry");
  if (s_.creds) {
    const std::string f = s_.creds->string();
    check(natsOptions_SetUserCredentialsFromFiles(opts, f.c_str(), nullptr), "--nats-creds");
  }
  if (s_.ca) {
    const std::string f = s_.ca->string();
    check(natsOptions_LoadCATrustedCertificates(opts, f.c_str()), "--nats-ca");
  }
  const natsStatus st = natsConnection_Connect(&nc_, opts);
  if (st != NATS_OK && st != NATS_NOT_YET_CONNECTED) check(st, "connect");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = s_.request_timeout.count();
  jo.PublishAsync.MaxPending = max_inflight_messages;
  jo.PublishAsync.StallWait = 200;
  jo.PublishAsync.AckHandlerClosure = gate_;
  jo.PublishAsync.AckHandler = [](jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    callback_gate::pass p(*static_cast<callback_gate*>(closure));
    if (!p.get()) {
      natsMsg_Destroy(msg);
      return;
    }
    p.get()->on_ack(msg, pa != nullptr, pae ? static_cast<int>(pae->Err) : 0, pae ? static_cast<int>(pae->ErrCode) : 0);
  };
  check(natsConnection_JetStream(&js_, nc_, &jo), "JetStream context");
  // Claims wait less than history reads: a join must not hang on an election (2 s, then it
  // is admitted without a claim).
  jsOptions kjo;
  jsOptions_Init(&kjo);
  kjo.Wait = std::min<std::int64_t>(s_.request_timeout.count(), 2'000);
  check(natsConnection_JetStream(&kv_js_, nc_, &kjo), "JetStream context");
  for (auto& w : workers_) w->thread = std::thread([this, wp = w.get()] { run_worker(*wp); });
  publisher_ = std::thread([this] { run_publisher(); });
  started_ = true;
  if (st == NATS_OK) {
    stats_.connected = true;
    set_up();  // throws: a conflicting stream stops the start
    char url[256] = {};
    if (natsConnection_GetConnectedUrl(nc_, url, sizeof url) != NATS_OK) url[0] = 0;
    spdlog::info("cluster: connected to NATS at {}; stream '{}' ({} replica{}), session bucket '{}'", redacted(url), stream_,
                 s_.replicas, s_.replicas == 1 ? "" : "s", bucket_);
  } else {
    std::string all;
    for (const auto& u : s_.urls) all += (all.empty() ? "" : ",") + redacted(u);
    spdlog::warn("cluster: NATS not reachable at {}: serving local members, retrying in the background", all);
  }
}

void backplane::set_up() {
  std::lock_guard lock(setup_mutex_);
  ensure_stream();
  ensure_bucket();
  ready_ = true;
  out_cv_.notify_all();
}

void backplane::ensure_stream() {
  const std::string subjects_text = s_.prefix + ".>";
  const char* subjects[] = {subjects_text.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream_.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_LimitsPolicy;
  cfg.Storage = js_FileStorage;
  cfg.Discard = js_DiscardOld;
  cfg.MaxMsgsPerSubject = static_cast<std::int64_t>(s_.history_limit);
  cfg.MaxBytes = s_.stream_bytes ? static_cast<std::int64_t>(s_.stream_bytes) : -1;
  cfg.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(s_.max_age).count();
  cfg.MaxMsgSize = static_cast<std::int32_t>(std::min<std::size_t>(s_.max_message + 256, INT32_MAX));
  cfg.Replicas = s_.replicas;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_GetStreamInfo(&si, js_, stream_.c_str(), nullptr, &jerr);
  if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
    st = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    if (st != NATS_OK) {
      if (jerr == JSStreamSubjectOverlapErr)
        throw std::runtime_error("stream '" + stream_ + "' cannot be created: its subjects " + subjects_text +
                                 " conflict with another stream's (" + status_text(st) + "); use --nats-prefix");
      std::string text = "stream '" + stream_ + "' cannot be created: " + status_text(st);
      if (text.find("insufficient") != std::string::npos)
        text += " (JetStream reserves the stream's byte bound, --history-total, on every replica's node: "
                "raise max_file_store there or lower --history-total)";
      throw std::runtime_error(text);
    }
    jsStreamInfo_Destroy(si);
    spdlog::info("cluster: stream '{}' created", stream_);
    return;
  }
  if (st != NATS_OK) throw std::runtime_error("stream '" + stream_ + "': " + status_text(st));
  std::unique_ptr<jsStreamInfo, void (*)(jsStreamInfo*)> info(si, jsStreamInfo_Destroy);
  const jsStreamConfig& have = *si->Config;
  // What an update cannot change, or what would make it another stream than ours.
  std::string conflict;
  if (have.SubjectsLen != 1 || std::string(have.Subjects[0]) != subjects_text)
    conflict = "its subjects are not exactly " + subjects_text;
  else if (have.Storage != js_FileStorage)
    conflict = "it keeps messages in memory, not in files";
  else if (have.Retention != js_LimitsPolicy)
    conflict = "its retention is not the limits policy";
  else if (have.Sealed || have.DenyDelete || have.DenyPurge)
    conflict = "it is sealed or denies deletes";
  else if (have.Discard != js_DiscardOld)
    conflict = "it discards new messages when full";
  if (!conflict.empty()) {
    throw std::runtime_error("stream '" + stream_ + "' exists and its settings conflict with cluster mode: " +
                             conflict + " (delete it, or use another --nats-prefix)");
  }
  if (have.MaxMsgsPerSubject == cfg.MaxMsgsPerSubject && have.MaxBytes == cfg.MaxBytes &&
      have.MaxAge == cfg.MaxAge && have.MaxMsgSize == cfg.MaxMsgSize && have.Replicas == cfg.Replicas)
    return;
  jsStreamInfo* updated = nullptr;
  st = js_UpdateStream(&updated, js_, &cfg, nullptr, &jerr);
  if (st != NATS_OK) {
    throw std::runtime_error("stream '" + stream_ + "' exists and its settings conflict with ours; the update " +
                             "failed: " + status_text(st));
  }
  jsStreamInfo_Destroy(updated);
  spdlog::info("cluster: stream '{}' updated (per channel {} messages, {} bytes in all, {} replicas)", stream_,
               s_.history_limit, s_.stream_bytes, s_.replicas);
}

void backplane::ensure_bucket() {
  // Checked at every (re)connection: a bucket lost meanwhile (say, a single NATS server that
  // restarted without its store) is made again; claims then find no responder for a while.
  const std::string stream = "KV_" + bucket_;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_GetStreamInfo(&si, kv_js_, stream.c_str(), nullptr, &jerr);
  if (st == NATS_OK) {
    jsStreamInfo_Destroy(si);
    if (!kv_) st = js_KeyValue(&kv_, kv_js_, bucket_.c_str());
    if (st != NATS_OK) throw std::runtime_error("session bucket '" + bucket_ + "': " + status_text(st));
    return;
  }
  if (st != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
    throw std::runtime_error("session bucket '" + bucket_ + "': " + status_text(st));
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = bucket_.c_str();
  kc.History = 1;
  kc.TTL = s_.session_ttl.count() * ns_per_ms;  // nanoseconds (nats.c hands it to the stream's max_age)
  kc.StorageType = js_FileStorage;
  kc.Replicas = s_.replicas;
  kc.MaxValueSize = 256;
  kvStore* fresh = nullptr;
  st = js_CreateKeyValue(&fresh, kv_js_, &kc);
  if (st != NATS_OK)
    throw std::runtime_error("session bucket '" + bucket_ + "' cannot be created: " + status_text(st) +
                             " (is JetStream storage full? the history stream reserves --history-total on each node)");
  if (kv_) kvStore_Destroy(fresh);  // the handle we have names the same bucket
  else kv_ = fresh;
}

void backplane::stop() {
  if (stopping_.exchange(true)) return;
  if (!started_) return;
  // Publish what is buffered while the connection is up (bounded: 2 s).
  {
    std::unique_lock lock(out_mutex_);
    out_cv_.notify_all();
    const auto deadline = clock::now() + std::chrono::seconds(2);
    out_cv_.wait_until(lock, deadline, [&] {
      return (!has_output() && inflight_bytes_ == 0) || !stats_.connected.load();
    });
  }
  for (auto& w : workers_) {
    {
      std::lock_guard lock(w->m);
    }
    w->cv.notify_all();
  }
  out_cv_.notify_all();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  if (publisher_.joinable()) publisher_.join();
  // Give back the claims (sessions are closed) so their uids may join elsewhere at once.
  if (stats_.connected && kv_) {
    for (auto& w : workers_) {
      for (const auto& [key, c] : w->claims) kvStore_Delete(kv_, key.c_str());
      w->claims.clear();
    }
  }
  std::unordered_map<std::string, std::shared_ptr<chan>> channels;
  {
    std::lock_guard lock(mu_);
    channels.swap(channels_);
  }
  for (auto& [name, c] : channels) {
    std::lock_guard lock(c->m);
    c->let_go();
  }
  // From here on nats.c's callbacks reach nothing (they may run after the destruction).
  gate_->close();
  if (nc_) natsConnection_Close(nc_);
}

// ------------------------------------------------------------------ workers

backplane::worker& backplane::worker_for(const std::string& key) {
  return *workers_[std::hash<std::string>{}(key) % workers_.size()];
}

void backplane::post(worker& w, std::function<void()> task) {
  {
    std::lock_guard lock(w.m);
    w.now.push_back(std::move(task));
  }
  w.cv.notify_one();
}

void backplane::post_after(worker& w, clock::duration delay, std::function<void()> task) {
  {
    std::lock_guard lock(w.m);
    w.later.emplace(clock::now() + delay, std::move(task));
  }
  w.cv.notify_one();
}

void backplane::run_worker(worker& w) {
  const auto refresh_every = std::max<clock::duration>(s_.session_ttl / 3, std::chrono::milliseconds(100));
  w.next_refresh = clock::now() + refresh_every;
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(w.m);
      for (;;) {
        if (!w.now.empty()) break;
        const auto now = clock::now();
        if (!w.later.empty() && w.later.begin()->first <= now) {
          w.now.push_back(std::move(w.later.begin()->second));
          w.later.erase(w.later.begin());
          break;
        }
        if (stopping_) return;
        if (now >= w.next_refresh) break;
        auto until = w.next_refresh;
        if (!w.later.empty()) until = std::min(until, w.later.begin()->first);
        w.cv.wait_until(lock, until);
      }
      if (!w.now.empty()) {
        task = std::move(w.now.front());
        w.now.pop_front();
      }
    }
    if (task) {
      try {
        task();
      } catch (const std::exception& e) {
        spdlog::error("cluster: {}", e.what());
      }
    }
    if (clock::now() >= w.next_refresh) {
      w.next_refresh = clock::now() + refresh_every;
      refresh_claims(w);
    }
  }
}

// ------------------------------------------------------------------ join gate

void backplane::admit(const std::string& channel, const std::string& uid, std::function<void(net::admission)> done) {
  if (stopping_) {
    done(net::admission::unclaimed);
    return;
  }
  if (uid.empty()) {
    post(worker_for(channel), [this, channel, done] { attach(channel, [&] { done(net::admission::unclaimed); }); });
    return;
  }
  // The claim (the key's worker) and the history (the channel's) are read at the same time;
  // the join goes on when both are in.
  struct both {
    std::atomic<int> left{2};
    net::admission claim = net::admission::unclaimed;
    std::function<void(net::admission)> done;
    void one_done() {
      if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) done(claim);
    }
  };
  auto state = std::make_shared<both>();
  state->done = std::move(done);
  std::string key = claim_key(channel, uid);
  worker& w = worker_for(key);
  post(w, [this, &w, key, state] {
    const auto t0 = clock::now();
    state->claim = claim(w, key);
    spdlog::debug("cluster: claim {}: {} in {} us", key, static_cast<int>(state->claim),
                  std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count());
    state->one_done();
  });
  post(worker_for(channel), [this, channel, state] { attach(channel, [&] { state->one_done(); }); });
}

void backplane::release(const std::string& channel, const std::string& uid) {
  std::string key = claim_key(channel, uid);
  worker& w = worker_for(key);
  post(w, [this, &w, key] { unclaim(w, key); });
}

net::admission backplane::claim(worker& w, const std::string& key) {
  if (auto it = w.claims.find(key); it != w.claims.end()) {
    // This server holds it already: the hub decides (a second local session is a duplicate).
    ++it->second.holders;
    return net::admission::claimed;
  }
  if (!ready_ || !stats_.connected) return net::admission::unclaimed;
  std::uint64_t rev = 0;
  natsStatus st = kvStore_CreateString(&rev, kv_, key.c_str(), s_.server_id.c_str());
  if (st == NATS_OK) {
    w.claims[key] = {rev, 1};
    return net::admission::claimed;
  }
  if (transient(st)) return net::admission::unclaimed;  // serve it; the cluster is away
  kvEntry* e = nullptr;
  if (kvStore_Get(&e, kv_, key.c_str()) == NATS_OK) {
    kvEntry_Destroy(e);
    stats_.claims_refused.fetch_add(1, std::memory_order_relaxed);
    return net::admission::taken;
  }
  return net::admission::unclaimed;
}

void backplane::unclaim(worker& w, const std::string& key) {
  auto it = w.claims.find(key);
  if (it == w.claims.end()) return;
  if (--it->second.holders != 0) return;
  w.claims.erase(it);
  if (ready_ && stats_.connected) kvStore_Delete(kv_, key.c_str());
}

void backplane::refresh_claims(worker& w) {
  if (!ready_ || !stats_.connected || w.claims.empty()) return;
  for (auto& [key, c] : w.claims) {
    std::uint64_t rev = 0;
    natsStatus st = kvStore_UpdateString(&rev, kv_, key.c_str(), s_.server_id.c_str(), c.revision);
    if (st == NATS_OK) {
      c.revision = rev;
      continue;
    }
    if (transient(st)) return;  // try again next round
    // Expired (NATS was away longer than the TTL) or taken meanwhile: claim it again if free.
    st = kvStore_CreateString(&rev, kv_, key.c_str(), s_.server_id.c_str());
    if (st == NATS_OK) {
      c.revision = rev;
      continue;
    }
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, kv_, key.c_str()) == NATS_OK) {
      const std::string holder = kvEntry_ValueString(e) ? kvEntry_ValueString(e) : "";
      if (holder == s_.server_id) c.revision = kvEntry_Revision(e);
      else spdlog::warn("cluster: session {} is now held by server {} too", key, holder);
      kvEntry_Destroy(e);
    }
  }
}

// ------------------------------------------------------------------ channels

void backplane::on_interest(const std::string& channel, bool has_clients) {
  std::shared_ptr<chan> c;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    c = it->second;
  }
  // Under the hub's channel lock: not chan::m (taken before hub locks), a lock of its own.
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(interest_mutex_);
    c->interest = has_clients;
    generation = ++c->generation;
  }
  if (has_clients || stopping_) return;
  post_after(worker_for(channel), s_.linger, [this, c, generation] { detach(c, generation); });
}

void backplane::attach(const std::string& channel, const std::function<void()>& then) {
  if (stopping_) return then();
  std::shared_ptr<chan> c;
  {
    std::lock_guard lock(mu_);
    auto& slot = channels_[channel];
    if (!slot) slot = std::make_shared<chan>(*this, channel);
    c = slot;
  }
  {
    std::lock_guard lock(c->m);
    if (c->st == chan::state::live) {
      if (!c->stale || !ready_ || !stats_.connected) return then();
    }
  }
  if (c->st == chan::state::live || c->st == chan::state::held) {
    // Attached while NATS was away: its history comes now, before this join.
    const auto t0 = clock::now();
    refill(c);
    spdlog::debug("cluster: {} refilled in {} us", *c->subject,
                  std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count());
    return then();
  }
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(interest_mutex_);
    generation = ++c->generation;  // a pending detach of an earlier attachment is void
  }
  boost::system::error_code ec;
  hub::membership ms = hub_.join(channel, {}, {}, c, ec, clock::now(), hub::member_role::peer_link);
  if (ec) {
    // The channel cap: the session's own join gets the same answer; keep no record.
    std::lock_guard lock(mu_);
    if (auto it = channels_.find(channel); it != channels_.end() && it->second == c) channels_.erase(it);
    return then();
  }
  {
    std::lock_guard lock(c->m);
    c->ms = std::move(ms);
    c->st = chan::state::loading;
    c->buffered.clear();
    c->lost_some = false;
    auto* closure = new sub_closure{c};
    natsStatus st = natsConnection_Subscribe(&c->sub, nc_, c->subject->c_str(), on_channel_message, closure);
    if (st == NATS_OK) {
      natsSubscription_SetOnCompleteCB(c->sub, on_sub_complete, closure);
      // Bounded: past it nats.c drops (and reports) messages; the gaps are read from the stream.
      natsSubscription_SetPendingLimits(c->sub, 100'000, 64 << 20);
    } else {
      delete closure;
      c->sub = nullptr;
      spdlog::warn("cluster: cannot subscribe to {}: {}", *c->subject, status_text(st));
    }
  }
  stats_.subscriptions.fetch_add(1, std::memory_order_relaxed);
  std::vector<hub::message> history;
  bool loaded = false;
  natsSubscription* consumer = nullptr;
  if (ready_ && stats_.connected) {
    // The subscription is in place before the stream is read: whatever the stream does not
    // have yet arrives live (buffered until the history is in), and the hub drops what both
    // bring (same origin and sequence).
    natsConnection_Flush(nc_);
    loaded = fetch_history(*c->subject, history, &consumer);
  }
  spdlog::debug("cluster: {} attached, {} messages of history{}", *c->subject, history.size(),
                loaded ? "" : " (not loaded)");
  // A failed read keeps the history this server has (it is refilled later).
  if (loaded) {
    std::lock_guard lock(c->m);
    for (const auto& m : history) c->note_sequence(m);
    hub_.reload(c->ms, std::move(history));
  } else {
    schedule_refill(c);
  }
  {
    std::lock_guard lock(c->m);
    for (auto& m : c->buffered) c->publish(std::move(m));
    c->buffered.clear();
    c->buffered.shrink_to_fit();
    c->st = chan::state::live;
    c->stale = !loaded || c->lost_some;
  }
  then();
  end_consumer(consumer);
  // If no client comes (its join was refused, or it left while waiting), the channel is let
  // go after the linger like any other; a client's arrival makes this void.
  post_after(worker_for(channel), s_.linger, [this, c, generation] { detach(c, generation); });
}

bool backplane::refill(const std::shared_ptr<chan>& c) {
  std::vector<hub::message> history;
  const bool loaded = ready_ && stats_.connected && fetch_history(*c->subject, history);
  std::lock_guard lock(c->m);
  if (c->st == chan::state::idle || c->st == chan::state::loading) return true;
  if (loaded) {
    for (const auto& m : history) c->note_sequence(m);
    hub_.reload(c->ms, std::move(history));
  }
  // Then what arrived live meanwhile (the hub drops what the history brought already).
  for (auto& m : c->buffered) c->publish(std::move(m));
  c->buffered.clear();
  c->buffered.shrink_to_fit();
  c->stale = !loaded || c->lost_some;
  c->lost_some = false;
  c->st = chan::state::live;
  return !c->stale;
}

void backplane::schedule_refill(const std::shared_ptr<chan>& c) {
  if (stopping_) return;
  post_after(worker_for(c->name), std::chrono::seconds(5), [this, c] {
    {
      std::lock_guard lock(c->m);
      if (c->st != chan::state::live || !c->stale) return;
    }
    if (!stats_.connected) return;  // the reconnection refills it
    if (!refill(c)) schedule_refill(c);
  });
}

// Under c->m (the delivery thread or a worker): a sequence was skipped.
void backplane::on_gap(const std::shared_ptr<chan>& c) {
  stats_.gaps.fetch_add(1, std::memory_order_relaxed);
  const auto now = clock::now();
  if (c->gap_refill_pending || stopping_) return;
  c->gap_refill_pending = true;
  const auto wait = std::max<clock::duration>(clock::duration::zero(), c->last_gap_refill + std::chrono::seconds(1) - now);
  post_after(worker_for(c->name), wait, [this, c] {
    {
      std::lock_guard lock(c->m);
      c->gap_refill_pending = false;
      c->last_gap_refill = clock::now();
      if (c->st != chan::state::live) return;
    }
    if (!stats_.connected) return;  // the reconnection refills it
    if (!refill(c)) schedule_refill(c);
  });
}

void backplane::detach(const std::shared_ptr<chan>& c, std::uint64_t generation) {
  {
    std::lock_guard lock(interest_mutex_);
    if (c->interest || c->generation != generation) return;
  }
  {
    std::lock_guard lock(c->m);
    if (c->st == chan::state::idle) return;
    c->let_go();
  }
  stats_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (auto it = channels_.find(c->name); it != channels_.end() && it->second == c) channels_.erase(it);
}

bool backplane::fetch_history(const std::string& subject, std::vector<hub::message>& out,
                               natsSubscription** keep) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = s_.request_timeout.count();
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Config.DeliverPolicy = js_DeliverAll;
  so.Config.AckPolicy = js_AckNone;
  so.Config.InactiveThreshold = 30'000 * ns_per_ms;  // the server cleans up if we vanish
  so.Config.MemoryStorage = true;
  so.Config.Replicas = 1;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_PullSubscribe(&sub, js_, subject.c_str(), nullptr, &jo, &so, &jerr);
  if (st != NATS_OK) {
    stats_.load_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cluster: cannot read the history of {}: {}", subject, status_text(st));
    return false;
  }
  bool ok = true;
  hub::origin_ptr last;
  // How many the subject holds now (a fetch that asks for more than there is waits for its
  // expiry: nats.c 3.4 does not end a no-wait fetch on the server's "no messages").
  std::uint64_t pending = 0;
  jsConsumerInfo* ci = nullptr;
  st = natsSubscription_GetConsumerInfo(&ci, sub, &jo, &jerr);
  if (st == NATS_OK) {
    pending = ci->NumPending;
    jsConsumerInfo_Destroy(ci);
  } else {
    ok = false;
    stats_.load_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cluster: cannot read the history of {}: {}", subject, status_text(st));
  }
  // The consumer is a single replica that nats-server places on any of the stream's peers,
  // and a peer that was just restarted (or is slow) still catching up serves an older copy
  // of the stream: its NumPending and its messages miss what the others stored last. The
  // stream's leader tells the newest stored message of the subject; the read goes on until
  // it has passed it (or the deadline: then the history is stale and read again later).
  std::uint64_t newest = 0;
  if (ok) {
    natsMsg* newest_msg = nullptr;
    st = js_GetLastMsg(&newest_msg, js_, stream_.c_str(), subject.c_str(), &jo, &jerr);
    if (st == NATS_OK) {
      newest = natsMsg_GetSequence(newest_msg);
      natsMsg_Destroy(newest_msg);
    } else if (st != NATS_NOT_FOUND) {  // not found: the subject holds nothing yet
      ok = false;
      stats_.load_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("cluster: cannot read the history of {}: {}", subject, status_text(st));
    }
  }
  // The stream keeps --limit messages per subject; a few more may have arrived meanwhile.
  const std::uint64_t most = s_.history_limit + 1024;
  pending = std::min<std::uint64_t>(pending, most);
  const auto deadline = clock::now() + s_.request_timeout;
  std::uint64_t got = 0;   // messages fetched (a malformed one is skipped, not waited for)
  std::uint64_t seen = 0;  // the highest stream sequence fetched
  while (ok && got < most && (got < pending || seen < newest) && clock::now() < deadline) {
    const bool behind = got >= pending;  // the consumer's peer is catching up: short waits
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = static_cast<int>(std::min<std::uint64_t>(behind ? most - got : pending - got, 1000));
    auto wait = deadline - clock::now();
    if (behind) wait = std::min<clock::duration>(wait, std::chrono::milliseconds(100));
    fr.Expires = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    if (fr.Expires <= 0) break;
    natsMsgList list{};
    st = natsSubscription_FetchRequest(&list, sub, &fr);
    if (st != NATS_OK && list.Count == 0) {
      natsMsgList_Destroy(&list);
      if (behind && st == NATS_TIMEOUT) continue;
      ok = false;
      stats_.load_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("cluster: reading the history of {} failed: {}", subject, status_text(st));
      break;
    }
    // The consumer delivers in stream order: the batch's last message has its highest sequence.
    jsMsgMetaData* meta = nullptr;
    if (list.Count > 0 && natsMsg_GetMetaData(&meta, list.Msgs[list.Count - 1]) == NATS_OK) {
      seen = std::max<std::uint64_t>(seen, meta->Sequence.Stream);
      jsMsgMetaData_Destroy(meta);
    }
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* msg = list.Msgs[i];
      hub::message m;
      const auto* data = reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg));
      const auto size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
      if (!net::decode_enveloped({data, size}, last, m, hub::sharing::threads)) out.push_back(std::move(m));
    }
    got += static_cast<std::uint64_t>(list.Count);
    natsMsgList_Destroy(&list);
  }
  if (ok && seen < newest) {
    ok = false;  // what was read is kept by the caller's refill; the rest comes on the next read
    stats_.load_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cluster: the history of {} read from a stream copy still catching up (up to sequence {} of {}): "
                 "reading it again later",
                 subject, seen, newest);
  }
  stats_.loaded.fetch_add(out.size(), std::memory_order_relaxed);
  order_per_origin(out);
  if (keep) {
    *keep = sub;  // the caller ends it once the history is handed over
    return ok;
  }
  end_consumer(sub);
  return ok;
}

void backplane::end_consumer(natsSubscription* sub) {
  if (!sub) return;
  natsSubscription_Unsubscribe(sub);  // deletes the ephemeral consumer (a request)
  natsSubscription_Destroy(sub);
}

// ------------------------------------------------------------------ outgoing

void backplane::enqueue_out(const std::shared_ptr<const std::string>& subject, const hub::message& m) {
  out_item item{subject, {}};
  net::append_envelope(item.data, m, *hub_.self());
  {
    std::lock_guard lock(out_mutex_);
    out_bytes_ += item.data.size();
    outbox_.push_back(std::move(item));
    std::uint64_t dropped = 0;
    while (out_bytes_ > s_.buffer_bytes && !retry_.empty()) {  // the oldest go first
      out_bytes_ -= retry_.front().data.size();
      retry_.pop_front();
      ++dropped;
    }
    while (out_bytes_ > s_.buffer_bytes && outbox_.size() > 1) {
      out_bytes_ -= outbox_.front().data.size();
      outbox_.pop_front();
      ++dropped;
    }
    stats_.buffered_bytes.store(out_bytes_, std::memory_order_relaxed);
    if (dropped) {
      stats_.dropped.fetch_add(dropped, std::memory_order_relaxed);
      const auto now = clock::now();
      if (now - last_drop_warning_ >= std::chrono::minutes(1)) {
        last_drop_warning_ = now;
        spdlog::warn("cluster: outgoing buffer full ({} bytes, --nats-buffer): dropping the oldest messages",
                     s_.buffer_bytes);
      }
    }
  }
  out_cv_.notify_one();
}

void backplane::requeue(std::string subject, std::string data) {
  {
    std::lock_guard lock(out_mutex_);
    out_bytes_ += data.size();
    retry_.push_back(out_item{std::make_shared<const std::string>(std::move(subject)), std::move(data)});
    stats_.buffered_bytes.store(out_bytes_, std::memory_order_relaxed);
  }
  out_cv_.notify_one();
}

void backplane::on_ack(natsMsg* msg, bool ok, int err, int err_code) {
  const auto size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
  const void* msg_key = msg;  // (the message is destroyed below; only its address is kept)
  if (ok) {
    stats_.acknowledged.fetch_add(1, std::memory_order_relaxed);
  } else if (err_code == 10054 /* maximum payload exceeded */ || stopping_) {
    stats_.dropped.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Timed out or refused for now (a node went away, a leader election): publish it again.
    // A copy the stream did store is dropped by readers (same origin and sequence).
    (void)err;
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    requeue(natsMsg_GetSubject(msg),
                  std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
  }
  natsMsg_Destroy(msg);
  {
    std::lock_guard lock(out_mutex_);
    inflight_bytes_ -= std::min(inflight_bytes_, size);
    if (auto it = inflight_ids_.find(msg_key); it != inflight_ids_.end()) {
      inflight_times_.erase(it->second);
      inflight_ids_.erase(it);
    }
  }
  out_cv_.notify_all();
}

// JetStream stopped answering (a stream leader lost, an election: the oldest publish in
// flight waits for its answer for more than 250 ms): nothing newer goes out until it is
// answered or times out and goes again, so a publish stored after the election cannot pass
// one that will be retried, and the stream keeps each sender's order (so does the live flow,
// which rides on the same publishes; it waits at most the publish timeout, 2 s).
bool backplane::stalled() const {
  return !inflight_times_.empty() &&
         clock::now() - inflight_times_.begin()->second.sent > std::chrono::milliseconds(250);
}

// A publish that nats.c never answered (neither acknowledgement nor timeout: it can lose
// track of one across a reconnection) must not stall the outbox for ever: after 5 s it goes
// again (a copy the stream did store is dropped by readers).
void backplane::expire_inflight() {
  const auto limit = clock::now() - std::chrono::seconds(5);
  while (!inflight_times_.empty() && inflight_times_.begin()->second.sent < limit) {
    auto& f = inflight_times_.begin()->second;
    inflight_ids_.erase(f.address);
    inflight_bytes_ -= std::min(inflight_bytes_, f.item.data.size());
    out_bytes_ += f.item.data.size();
    retry_.push_back(std::move(f.item));
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
    inflight_times_.erase(inflight_times_.begin());
  }
}

void backplane::run_publisher() {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  // A publish not answered within 2 s goes again (an election may take longer: then again).
  po.MaxWait = std::min<std::int64_t>(s_.request_timeout.count(), 2'000);
  std::unique_lock lock(out_mutex_);
  for (;;) {
    expire_inflight();
    out_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] {
      if (stopping_ && (!has_output() || !stats_.connected)) return true;
      return has_output() && ready_ && stats_.connected && inflight_bytes_ < max_inflight_bytes && !stalled();
    });
    if (stopping_ && (!has_output() || !stats_.connected)) return;
    if (!has_output() || !ready_ || !stats_.connected || inflight_bytes_ >= max_inflight_bytes || stalled()) continue;
    // What failed goes again before anything newer, in the order it was first published.
    auto& from = retry_.empty() ? outbox_ : retry_;
    out_item item = std::move(from.front());
    from.pop_front();
    out_bytes_ -= item.data.size();
    stats_.buffered_bytes.store(out_bytes_, std::memory_order_relaxed);
    inflight_bytes_ += item.data.size();
    lock.unlock();
    natsMsg* msg = nullptr;
    natsStatus st = natsMsg_Create(&msg, item.subject->c_str(), nullptr, item.data.data(),
                                   static_cast<int>(item.data.size()));
    const void* msg_key = msg;
    if (st == NATS_OK) {
      // Noted before the publish: its answer may come before the call returns.
      std::lock_guard relock(out_mutex_);
      const std::uint64_t id = next_publish_id_++;
      inflight_ids_[msg_key] = id;
      inflight_times_.emplace(id, in_flight{clock::now(), msg_key, item});
    }
    if (st == NATS_OK) st = js_PublishMsgAsync(js_, &msg, &po);
    if (msg) natsMsg_Destroy(msg);
    lock.lock();
    if (st == NATS_OK) {
      stats_.published.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (auto it = inflight_ids_.find(msg_key); it != inflight_ids_.end()) {
      inflight_times_.erase(it->second);
      inflight_ids_.erase(it);
    }
    // Not sent (disconnected meanwhile, or stalled): back to the front, try again shortly.
    inflight_bytes_ -= std::min(inflight_bytes_, item.data.size());
    out_bytes_ += item.data.size();
    from.push_front(std::move(item));
    stats_.buffered_bytes.store(out_bytes_, std::memory_order_relaxed);
    out_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_.load(); });
  }
}

// ------------------------------------------------------------------ connection events

void backplane::on_connected(natsConnection*, void* closure) {
  callback_gate::pass p(*static_cast<callback_gate*>(closure));
  if (p.get()) p.get()->after_connect(true);
}

void backplane::on_reconnected(natsConnection*, void* closure) {
  callback_gate::pass p(*static_cast<callback_gate*>(closure));
  if (p.get()) p.get()->after_connect(false);
}

void backplane::on_disconnected(natsConnection*, void* closure) {
  callback_gate::pass p(*static_cast<callback_gate*>(closure));
  if (!p.get()) return;
  auto& b = *p.get();
  if (b.stopping_) return;
  if (b.stats_.connected.exchange(false)) {
    spdlog::warn("cluster: NATS connection lost: serving local members, buffering up to {} bytes, reconnecting",
                 b.s_.buffer_bytes);
  }
  b.take_back_pending();
  // Live messages of every attached channel wait for its history read after the reconnection.
  const auto attached = b.attached_channels();
  for (auto& c : attached) {
    std::lock_guard lock(c->m);
    if (c->st == chan::state::live) c->st = chan::state::held;
  }
}

// Publishes not acknowledged when the connection went: queued for retry, in their order, so
// that after the reconnection they go out before anything newer (a copy that did
// get through is dropped by the receivers: same origin and sequence).
void backplane::take_back_pending() {
  natsMsgList pending{};
  if (js_PublishAsyncGetPendingList(&pending, js_) != NATS_OK) return;
  for (int i = 0; i < pending.Count; ++i) {
    natsMsg* msg = pending.Msgs[i];
    requeue(natsMsg_GetSubject(msg),
                  std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
  }
  stats_.retried.fetch_add(static_cast<std::uint64_t>(pending.Count), std::memory_order_relaxed);
  natsMsgList_Destroy(&pending);
  std::lock_guard lock(out_mutex_);
  inflight_bytes_ = 0;
  inflight_ids_.clear();
  inflight_times_.clear();
}

void backplane::after_connect(bool first) {
  if (stopping_) return;
  stats_.connected = true;
  if (!first) stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
  spdlog::info(first ? "cluster: connected to NATS" : "cluster: NATS connection restored");
  out_cv_.notify_all();
  // Set up (again: a restarted NATS may have lost the bucket), then bring every attached
  // channel's history up to date: what was published elsewhere while we were away is in the
  // stream.
  post(*workers_.front(), [this] { resume(); });
}

void backplane::resume() {
  if (stopping_ || !stats_.connected) return;
  bool set = true;
  try {
    set_up();
  } catch (const std::exception& e) {
    // JetStream may still be starting (or a setting conflicts): try again while connected.
    set = false;
    std::string text = e.what();
    if (text != last_setup_error_) spdlog::error("cluster: {}; retrying", text);
    last_setup_error_ = std::move(text);
    post_after(*workers_.front(), std::chrono::seconds(2), [this] { resume(); });
  }
  if (set && !last_setup_error_.empty()) spdlog::info("cluster: stream and session bucket ready");
  if (set) last_setup_error_.clear();
  // Every attached channel: its history, then what waited (a read that fails lets the live
  // messages through and is tried again later).
  const auto attached = attached_channels();
  for (auto& c : attached) {
    post(worker_for(c->name), [this, c] {
      if (!refill(c)) schedule_refill(c);
    });
  }
  if (set) {
    for (auto& w : workers_) post(*w, [wp = w.get()] { wp->next_refresh = clock::now(); });
  }
}

}  // namespace mles::cluster
