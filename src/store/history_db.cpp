// history_db: the queue, the writer thread and the SQLite database behind --history-dir.
// Schema (application_id 'MLES', user_version 1):
//   channels(id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE)
//   history(id INTEGER PRIMARY KEY, channel_id, origin_server, origin_instance, seq, flags,
//           time_ms, frame), indexed by (channel_id, id): one channel's records in order.
#include "store/history_db.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <mutex>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <utility>

namespace mles::store {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using callback = std::function<void(bool)>;

constexpr const char* db_file_name = "history.sqlite3";
constexpr std::int64_t application_id = 0x4D4C4553;  // "MLES"
constexpr std::int64_t schema_version = 1;
// We checkpoint after our own commits, at the same 1000 pages as SQLite's auto-checkpoint
// (our WAL hook replaces it): the commit's result is known before the checkpoint runs, and a
// failing checkpoint (say the disk fills while the database file grows) is logged, where the
// default hook ignores it. https://sqlite.org/c3ref/wal_hook.html, https://sqlite.org/wal.html#ckpt
constexpr int checkpoint_frames = 1000;
// After a checkpoint the WAL is truncated back to this (https://sqlite.org/pragma.html#pragma_journal_size_limit).
constexpr std::int64_t wal_size_limit = 8 << 20;
constexpr auto shutdown_flush = std::chrono::seconds(5);

struct db_closer {
  void operator()(sqlite3* d) const noexcept { sqlite3_close_v2(d); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;
struct stmt_finalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

// A failure: SQLite's extended result code (SQLITE_CANTOPEN for file-system errors before
// SQLite is involved) and what we were doing.
struct db_error {
  int code = SQLITE_OK;
  std::string what;
  bool ours = true;  // false: a database that is not a history database (moved aside, not salvaged)
  explicit operator bool() const noexcept { return code != SQLITE_OK; }
};

db_error error_of(sqlite3* db, int rc, std::string_view doing) {
  return {rc, fmt::format("{}: {}", doing, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
}

db_error errno_error(std::string_view doing, const fs::path& p, int err) {
  return {SQLITE_CANTOPEN, fmt::format("{} {}: {}", doing, p.string(), std::strerror(err))};
}

bool is_corruption(int code) noexcept {
  const int primary = code & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

// Errors that belong to one record (it will never be stored), not to the disk.
bool is_record_error(int code) noexcept {
  const int primary = code & 0xff;
  return primary == SQLITE_TOOBIG || primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH ||
         primary == SQLITE_RANGE;
}

// Resets a statement when a scope ends, so no read transaction or binding outlives its use.
class reset_on_exit {
 public:
  explicit reset_on_exit(sqlite3_stmt* s) noexcept : s_(s) {}
  ~reset_on_exit() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  reset_on_exit(const reset_on_exit&) = delete;
  reset_on_exit& operator=(const reset_on_exit&) = delete;

 private:
  sqlite3_stmt* s_;
};

// Runs a statement that returns no rows; SQLITE_OK on success.
int step_done(sqlite3_stmt* s) {
  reset_on_exit r(s);
  const int rc = sqlite3_step(s);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int bind_blob(sqlite3_stmt* s, int i, std::string_view b) {
  // A null pointer would bind SQL NULL; an empty blob must stay a blob.
  return sqlite3_bind_blob64(s, i, b.empty() ? "" : b.data(), b.size(), SQLITE_STATIC);
}

std::string column_blob(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  const int n = sqlite3_column_bytes(s, i);
  if (p == nullptr || n <= 0) return {};
  return {static_cast<const char*>(p), static_cast<std::size_t>(n)};
}

// Prepares and steps a one-off statement; f(stmt) sees its first row if there is one.
template <class F>
int first_row(sqlite3* db, const char* sql, F&& f) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  stmt_ptr s(raw);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) {
    f(raw);
    return SQLITE_OK;
  }
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

// A channel name for a log line: printable ASCII, at most 64 characters.
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > 64) out += "...";
  return out;
}

std::uint32_t big_endian32(const unsigned char* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// What follows the last valid commit in a WAL after recovery (https://sqlite.org/walformat.html:
// a 32-byte header with two salts, then frames of a 24-byte header + one page; a frame counts
// only if its salts match the header's and the running checksum holds). Frames with other
// salts are left from before the WAL last restarted (normal after a kill); a short frame, or
// one with the current salts past the last commit, is a commit torn by a crash.
struct wal_tail {
  std::uint64_t bytes = 0;
  bool torn = false;
};

wal_tail inspect_wal_tail(const fs::path& wal, std::int64_t valid_frames) {
  wal_tail t;
  const int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return t;
  struct stat st {};
  std::array<unsigned char, 32> header{};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return t;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const bool header_ok = ::pread(fd, header.data(), header.size(), 0) == static_cast<ssize_t>(header.size()) &&
                         (big_endian32(header.data()) & 0xfffffffeu) == 0x377f0682u;
  if (!header_ok) {
    ::close(fd);
    return {size, true};
  }
  const std::uint64_t frame = std::uint64_t{big_endian32(header.data() + 8)} + 24;
  const std::uint64_t valid_end = 32 + static_cast<std::uint64_t>(std::max<std::int64_t>(valid_frames, 0)) * frame;
  if (size > valid_end) {
    t.bytes = size - valid_end;
    std::array<unsigned char, 24> next{};
    const bool whole = ::pread(fd, next.data(), next.size(), static_cast<off_t>(valid_end)) ==
                       static_cast<ssize_t>(next.size());
    // Older frames come whole; anything else is a torn write.
    t.torn = !whole || t.bytes % frame != 0 || std::memcmp(next.data() + 8, header.data() + 16, 8) == 0;
  }
  ::close(fd);
  return t;
}

// The directory: created 0700 if missing (its parents as usual); an existing one is left as
// the operator made it (it may be a shared mount point; the files themselves are 0600).
db_error ensure_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  if (!dir.parent_path().empty()) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec) return {SQLITE_CANTOPEN, fmt::format("cannot create {}: {}", dir.parent_path().string(), ec.message())};
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST || !fs::is_directory(dir, ec)) return errno_error("cannot create", dir, errno);
    return {};
  }
  // mkdir's mode passes through the umask: make it exactly 0700.
  if (::chmod(dir.c_str(), 0700) != 0) return errno_error("cannot chmod", dir, errno);
  return {};
}

// Creates the file 0600 before SQLite sees it (SQLite gives its -wal the database file's mode),
// or tightens an existing one to 0600. Symbolic links are refused.
db_error private_file(const fs::path& p, bool create) {
  const int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
  if (fd < 0) {
    if (!create && errno == ENOENT) return {};
    return errno_error("cannot open", p, errno);
  }
  struct stat st {};
  db_error e;
  if (::fstat(fd, &st) != 0) e = errno_error("cannot stat", p, errno);
  else if ((st.st_mode & 0777) != 0600 && ::fchmod(fd, 0600) != 0) e = errno_error("cannot chmod", p, errno);
  ::close(fd);
  return e;
}

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Renames the database (and its -wal/-shm) to <name>.corrupt-<UTC time>[-n]; "" on failure.
fs::path move_aside(const fs::path& db) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::array<char, 32> stamp{};
  std::strftime(stamp.data(), stamp.size(), "%Y%m%dT%H%M%SZ", &tm);
  const std::string base = db.string() + ".corrupt-" + stamp.data();
  std::string target = base;
  std::error_code ec;
  for (int n = 2; fs::exists(target, ec); ++n) target = base + "-" + std::to_string(n);
  if (::rename(db.c_str(), target.c_str()) != 0) return {};
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string from = db.string() + suffix;
    (void)::rename(from.c_str(), (target + suffix).c_str());
  }
  sync_dir(db.parent_path());
  return target;
}

// SQLite's own error log (https://sqlite.org/errlog.html) goes to ours, at debug: our code
// reports what matters (with context) itself. Must be set before SQLite initializes.
void forward_sqlite_log() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(
        SQLITE_CONFIG_LOG,
        +[](void*, int code, const char* msg) { spdlog::debug("history: sqlite ({}): {}", code, msg); }, nullptr);
  });
}

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct name_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct history_db::impl {
  // One queued operation, in the order of the calls.
  struct op {
    enum class kind : std::uint8_t { append, forget, dropped };
    history_record rec;  // forget: only rec.channel
    callback done;       // append_durable
    std::size_t bytes = 0;
    kind what = kind::append;
  };
  // What the writer knows of a channel in the database (so pruning costs one DELETE per
  // channel over its bounds, and nothing for the others).
  struct channel_state {
    std::int64_t id = 0;
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;  // frame bytes
    bool touched = false;     // in touched_ (this batch)
  };
  struct statements {
    stmt_ptr begin, commit, rollback;
    stmt_ptr find_channel, add_channel, channel_totals, insert;
    stmt_ptr oldest, delete_through, delete_history, delete_channel;
    stmt_ptr list_channels, newest_first;
  };
  // One channel read newest first, within the bounds.
  struct channel_read {
    std::vector<history_record> records;  // newest first
    std::uint64_t bytes = 0;
    std::int64_t cut = 0;  // rows with id <= cut fall outside the bounds (0: none)
    bool expired = false;
    int error = SQLITE_OK;  // the read stopped early on this
  };
  struct batch_result {
    bool ok = true;
    std::uint64_t committed = 0;
    std::uint64_t refused = 0;
    db_error error;
  };

  explicit impl(history_db_options o);

  void push(history_record&& r, callback&& done);
  void push_forget(const std::string& channel);
  bool flush(std::chrono::milliseconds timeout);
  void shutdown();
  void load(const std::function<void(const std::string&, std::vector<history_record>&&)>& fn);

  // Writer thread.
  void run();
  void commit_queue(std::unique_lock<std::mutex>& lk);
  void enforce_bound_locked();
  std::vector<callback> take_callbacks_locked();

  // Database (db_mutex_ held).
  db_error open_db(bool at_start);
  db_error try_open();
  db_error prepare_statements();
  void close_db();
  batch_result write_batch();
  db_error write_ops(batch_result& r);
  void rollback_if_open();
  db_error find_channel(std::string_view name, bool create, channel_state*& out);
  int insert(std::int64_t channel_id, const history_record& r);
  db_error forget_channel(std::string_view name);
  db_error delete_channel(std::int64_t id);
  db_error prune(channel_state& ch);
  channel_read read_channel(sqlite3_stmt* s, std::int64_t channel_id, std::int64_t cutoff_ms) const;
  void salvage_from(const fs::path& aside,
                    const std::function<void(const std::string&, std::vector<history_record>&&)>* fn);

  const history_db_options opt_;
  const fs::path path_;

  // Shared with callers, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_cv_;  // the writer waits on it
  std::condition_variable done_cv_;  // flush() waits on it
  std::vector<op> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t drop_cursor_ = 0;    // queue_[0, drop_cursor_) holds no droppable append
  std::size_t dropped_slots_ = 0;  // dropped ops still in queue_
  std::vector<callback> orphaned_; // callbacks of dropped durable appends (told false by the writer)
  bool wake_ = false;
  bool stop_ = false;
  std::uint64_t next_op_ = 1;       // number of the next queued operation
  std::uint64_t done_through_ = 0;  // every operation up to this one is committed or dropped
  bool flush_requested_ = false;    // flush() wants an attempt now, even between retries
  std::uint64_t attempts_ = 0;
  bool last_attempt_failed_ = false;
  bool drops_noted_ = false;   // records dropped since the store was last healthy
  bool drops_warned_ = false;
  stats st_;
  int warned_code_ = SQLITE_OK;  // the kind of failure last logged at warn (SQLITE_OK while healthy)
  steady::time_point next_retry_{};

  // The database: under db_mutex_ (constructor, load(), writer).
  std::mutex db_mutex_;
  db_ptr db_;
  statements q_;
  std::unordered_map<std::string, channel_state, name_hash, std::equal_to<>> channels_;
  std::vector<channel_state*> touched_;
  fs::path salvage_;  // a corrupt database moved aside at start, read by load()
  bool dir_synced_ = false;
  int wal_frames_ = 0;  // frames in the WAL after the last commit (WAL hook)

  // Writer thread only.
  std::vector<op> batch_;
  std::vector<callback> callbacks_;
  std::thread writer_;
};

history_db::impl::impl(history_db_options o) : opt_(std::move(o)), path_(opt_.dir / db_file_name) {
  forward_sqlite_log();
  db_error e;
  {
    std::lock_guard dl(db_mutex_);
    e = open_db(true);
  }
  if (e) {
    spdlog::warn("history: {}: {}; serving from memory, retrying every {:g} s", path_.string(), e.what,
                 static_cast<double>(opt_.retry_interval.count()) / 1000.0);
    st_.last_error = e.what;
    warned_code_ = e.code & 0xff;
    next_retry_ = steady::now() + opt_.retry_interval;
  } else {
    st_.healthy = true;
  }
  writer_ = std::thread([this] { run(); });
}

// ---- callers' side ----

void history_db::impl::push(history_record&& r, callback&& done) {
  const std::size_t bytes = sizeof(op) + r.channel.size() + r.origin_server.size() + r.frame.size();
  const bool durable = static_cast<bool>(done);
  std::lock_guard lk(mutex_);
  if (durable && !st_.healthy) {
    // Failing: the caller hears at once (from the writer) that this one is not durable; the
    // record is queued as a plain append and written with the next successful commit.
    orphaned_.push_back(std::move(done));
    done = nullptr;
  }
  queue_.push_back(op{std::move(r), std::move(done), bytes, op::kind::append});
  ++next_op_;
  queued_bytes_ += bytes;
  ++st_.appended;
  // At once for durable appends and sync 0; early when half the queue's bound is used, so a
  // burst is written before it has to be dropped.
  if (!wake_ && (durable || opt_.sync_interval.count() == 0 ||
                 (st_.healthy && queued_bytes_ > opt_.max_queued_bytes / 2))) {
    wake_ = true;
    wake_cv_.notify_one();
  }
  if (queued_bytes_ > opt_.max_queued_bytes) enforce_bound_locked();
}

void history_db::impl::push_forget(const std::string& channel) {
  history_record r;
  r.channel = channel;
  const std::size_t bytes = sizeof(op) + channel.size();
  std::lock_guard lk(mutex_);
  queue_.push_back(op{std::move(r), nullptr, bytes, op::kind::forget});
  ++next_op_;
  queued_bytes_ += bytes;
}

// Drops the oldest appends (never forgets, never the newest append) until the queue fits.
void history_db::impl::enforce_bound_locked() {
  bool tell_writer = false;
  while (queued_bytes_ > opt_.max_queued_bytes && drop_cursor_ + 1 < queue_.size()) {
    op& o = queue_[drop_cursor_++];
    if (o.what != op::kind::append) continue;
    queued_bytes_ -= o.bytes;
    if (o.done) {
      orphaned_.push_back(std::move(o.done));
      o.done = nullptr;
      tell_writer = true;
    }
    o.rec = history_record{};  // frees the strings now
    o.what = op::kind::dropped;
    ++dropped_slots_;
    ++st_.dropped;
    if (!drops_noted_) tell_writer = drops_noted_ = true;
  }
  // Dropped slots are compacted away once they are half the queue (amortised O(1) per append).
  if (dropped_slots_ > 64 && dropped_slots_ * 2 > queue_.size()) {
    std::erase_if(queue_, [](const op& o) { return o.what == op::kind::dropped; });
    dropped_slots_ = 0;
    drop_cursor_ = 0;
  }
  if (tell_writer && !wake_) {
    wake_ = true;
    wake_cv_.notify_one();
  }
}

bool history_db::impl::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mutex_);
  const std::uint64_t target = next_op_ - 1;
  if (done_through_ >= target) return true;
  const std::uint64_t dropped_before = st_.dropped;
  const std::uint64_t attempts_before = attempts_;
  flush_requested_ = true;
  wake_ = true;
  wake_cv_.notify_one();
  done_cv_.wait_for(lk, timeout, [&] {
    return done_through_ >= target || (attempts_ > attempts_before && last_attempt_failed_) || stop_;
  });
  return done_through_ >= target && st_.dropped == dropped_before;
}

// ---- writer thread ----

std::vector<callback> history_db::impl::take_callbacks_locked() {
  std::vector<callback> out = std::move(orphaned_);
  orphaned_.clear();
  for (op& o : queue_) {
    if (o.done) {
      out.push_back(std::move(o.done));
      o.done = nullptr;
    }
  }
  return out;
}

void history_db::impl::run() {
  std::unique_lock lk(mutex_);
  auto next_tick = steady::now() + opt_.sync_interval;
  for (;;) {
    const auto woken_or_stopping = [&] { return stop_ || wake_; };
    if (!st_.healthy) wake_cv_.wait_until(lk, next_retry_, woken_or_stopping);
    else if (opt_.sync_interval.count() == 0) wake_cv_.wait(lk, woken_or_stopping);
    else wake_cv_.wait_until(lk, next_tick, woken_or_stopping);
    if (stop_) break;
    const bool woken = std::exchange(wake_, false);
    const auto now = steady::now();
    if (drops_noted_ && !drops_warned_) {
      drops_warned_ = true;
      const auto bound = opt_.max_queued_bytes;
      lk.unlock();
      spdlog::warn("history: more than {} bytes waiting for the disk: dropping the oldest records", bound);
      lk.lock();
    }
    if (!st_.healthy && now < next_retry_ && !flush_requested_) {
      // Between retries: durable appends made meanwhile hear that they are not durable.
      auto cbs = std::move(orphaned_);
      orphaned_.clear();
      if (!cbs.empty()) {
        lk.unlock();
        for (auto& cb : cbs) cb(false);
        lk.lock();
      }
      continue;
    }
    if (st_.healthy && !woken && opt_.sync_interval.count() > 0 && now < next_tick) continue;  // spurious
    if (opt_.sync_interval.count() > 0 && now >= next_tick) {  // an early commit leaves the cadence alone
      next_tick += opt_.sync_interval;
      if (next_tick <= now) next_tick = now + opt_.sync_interval;
    }
    flush_requested_ = false;
    commit_queue(lk);
  }
  // Stopping: what is still queued is lost (the destructor's flush has logged it).
  auto cbs = take_callbacks_locked();
  lk.unlock();
  for (auto& cb : cbs) cb(false);
}

// Takes the queue, writes it in one transaction, and either acknowledges it or puts it back
// in front of the queue for the retry. Called and returns with lk held; unlocked meanwhile.
void history_db::impl::commit_queue(std::unique_lock<std::mutex>& lk) {
  batch_.swap(queue_);  // queue_ takes the batch's (empty) storage: appends stay allocation-free
  queued_bytes_ = 0;
  drop_cursor_ = 0;
  dropped_slots_ = 0;
  auto orphans = std::move(orphaned_);
  orphaned_.clear();
  const std::uint64_t through = next_op_ - 1;
  lk.unlock();
  for (auto& cb : orphans) cb(false);

  batch_result r;
  {
    std::lock_guard dl(db_mutex_);
    r = write_batch();
  }
  for (op& o : batch_) {
    if (o.done) {
      callbacks_.push_back(std::move(o.done));
      o.done = nullptr;
    }
  }

  lk.lock();
  st_.dropped += r.refused;
  std::string log_warn, log_info;
  if (r.ok) {
    st_.committed += r.committed;
    batch_.clear();
    if (!st_.healthy) {
      log_info = fmt::format("history: {}: healthy again ({} records committed)", path_.string(), r.committed);
    }
    st_.healthy = true;
    warned_code_ = SQLITE_OK;
    drops_noted_ = drops_warned_ = false;
  } else {
    ++st_.failed_commits;
    st_.healthy = false;
    st_.last_error = r.error.what;
    // Back in front of what was queued meanwhile, without the dropped ones; durable appends
    // queued meanwhile are told now that they are not durable (and stay as plain appends).
    std::move(queue_.begin(), queue_.end(), std::back_inserter(batch_));
    queue_.swap(batch_);
    batch_.clear();
    std::erase_if(queue_, [](const op& o) { return o.what == op::kind::dropped; });
    drop_cursor_ = 0;
    dropped_slots_ = 0;
    queued_bytes_ = 0;
    for (op& o : queue_) {
      queued_bytes_ += o.bytes;
      if (o.done) {
        callbacks_.push_back(std::move(o.done));
        o.done = nullptr;
      }
    }
    if (queued_bytes_ > opt_.max_queued_bytes) enforce_bound_locked();
    next_retry_ = steady::now() + opt_.retry_interval;
    const std::size_t waiting = queue_.size();
    // Warned once per kind of failure (the same disk-full error from another statement is
    // the same state), then retried quietly.
    if (warned_code_ != (r.error.code & 0xff)) {
      warned_code_ = r.error.code & 0xff;
      log_warn = fmt::format("history: {}: {}; serving from memory ({} records waiting), retrying every {:g} s",
                             path_.string(), r.error.what, waiting,
                             static_cast<double>(opt_.retry_interval.count()) / 1000.0);
    }
  }
  lk.unlock();
  if (!log_warn.empty()) spdlog::warn("{}", log_warn);
  else if (!r.ok) spdlog::debug("history: {}: {}; retrying", path_.string(), r.error.what);
  if (!log_info.empty()) spdlog::info("{}", log_info);
  for (auto& cb : callbacks_) cb(r.ok);
  callbacks_.clear();
  lk.lock();
  // flush() returns once the callbacks of what it waited for have run.
  ++attempts_;
  last_attempt_failed_ = !r.ok;
  if (r.ok) done_through_ = std::max(done_through_, through);
  done_cv_.notify_all();
}

// ---- database ----

history_db::impl::batch_result history_db::impl::write_batch() {
  batch_result r;
  if (!db_) {
    if (auto e = open_db(false)) {
      r.ok = false;
      r.error = std::move(e);
      return r;
    }
  }
  const bool any = std::any_of(batch_.begin(), batch_.end(), [](const op& o) { return o.what != op::kind::dropped; });
  if (!any) return r;
  if (auto e = write_ops(r)) {
    rollback_if_open();
    channels_.clear();  // rolled back: rebuilt from the database as channels are used again
    touched_.clear();
    if (is_corruption(e.code)) {
      spdlog::error("history: {}: {}: reopening (the check at open moves a corrupt database aside)", path_.string(),
                    e.what);
      close_db();
    }
    r.ok = false;
    r.committed = 0;
    r.error = std::move(e);
    return r;
  }
  if (!dir_synced_) {  // the new -wal file's directory entry must survive a power loss too
    sync_dir(opt_.dir);
    dir_synced_ = true;
  }
  if (wal_frames_ >= checkpoint_frames) {
    int log = 0, done = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK) spdlog::debug("history: checkpoint: {}", sqlite3_errmsg(db_.get()));
    wal_frames_ = 0;
  }
  return r;
}

db_error history_db::impl::write_ops(batch_result& r) {
  rollback_if_open();
  if (const int rc = step_done(q_.begin.get())) return error_of(db_.get(), rc, "begin");
  for (op& o : batch_) {
    if (o.what == op::kind::forget) {
      if (auto e = forget_channel(o.rec.channel)) return e;
      continue;
    }
    if (o.what != op::kind::append) continue;
    channel_state* ch = nullptr;
    if (auto e = find_channel(o.rec.channel, true, ch)) return e;
    if (const int rc = insert(ch->id, o.rec)) {
      if (!is_record_error(rc)) return error_of(db_.get(), rc, "insert");
      spdlog::warn("history: channel '{}': a record of {} bytes refused: {}", printable(o.rec.channel),
                   o.rec.frame.size(), sqlite3_errmsg(db_.get()));
      o.rec = history_record{};
      o.what = op::kind::dropped;
      ++r.refused;
      continue;
    }
    ++ch->count;
    ch->bytes += o.rec.frame.size();
    ++r.committed;
    if (!ch->touched) {
      ch->touched = true;
      touched_.push_back(ch);
    }
  }
  for (channel_state* ch : touched_) {
    ch->touched = false;
    if (auto e = prune(*ch)) return e;
  }
  touched_.clear();
  if (const int rc = step_done(q_.commit.get())) return error_of(db_.get(), rc, "commit");
  return {};
}

void history_db::impl::rollback_if_open() {
  if (db_ && !sqlite3_get_autocommit(db_.get())) (void)step_done(q_.rollback.get());
}

db_error history_db::impl::find_channel(std::string_view name, bool create, channel_state*& out) {
  out = nullptr;
  if (auto it = channels_.find(name); it != channels_.end()) {
    out = &it->second;
    return {};
  }
  channel_state ch;
  {
    sqlite3_stmt* s = q_.find_channel.get();
    reset_on_exit g(s);
    bind_blob(s, 1, name);
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) ch.id = sqlite3_column_int64(s, 0);
    else if (rc != SQLITE_DONE) return error_of(db_.get(), rc, "find channel");
  }
  if (ch.id != 0) {
    sqlite3_stmt* s = q_.channel_totals.get();
    reset_on_exit g(s);
    sqlite3_bind_int64(s, 1, ch.id);
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) return error_of(db_.get(), rc, "count channel");
    ch.count = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    ch.bytes = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
  } else if (create) {
    sqlite3_stmt* s = q_.add_channel.get();
    reset_on_exit g(s);
    bind_blob(s, 1, name);
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) return error_of(db_.get(), rc, "add channel");
    ch.id = sqlite3_last_insert_rowid(db_.get());
  } else {
    return {};
  }
  out = &channels_.emplace(std::string(name), ch).first->second;
  return {};
}

int history_db::impl::insert(std::int64_t channel_id, const history_record& r) {
  sqlite3_stmt* s = q_.insert.get();
  reset_on_exit g(s);
  sqlite3_bind_int64(s, 1, channel_id);
  bind_blob(s, 2, r.origin_server);
  sqlite3_bind_int64(s, 3, static_cast<sqlite3_int64>(r.origin_instance));  // stored as the same 64 bits
  sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(r.seq));
  sqlite3_bind_int(s, 5, r.flags);
  sqlite3_bind_int64(s, 6, r.time_ms);
  if (const int rc = bind_blob(s, 7, r.frame)) return rc;
  const int rc = sqlite3_step(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

db_error history_db::impl::delete_channel(std::int64_t id) {
  sqlite3_bind_int64(q_.delete_history.get(), 1, id);
  if (const int rc = step_done(q_.delete_history.get())) return error_of(db_.get(), rc, "delete history");
  sqlite3_bind_int64(q_.delete_channel.get(), 1, id);
  if (const int rc = step_done(q_.delete_channel.get())) return error_of(db_.get(), rc, "delete channel");
  return {};
}

db_error history_db::impl::forget_channel(std::string_view name) {
  channel_state* ch = nullptr;
  if (auto e = find_channel(name, false, ch)) return e;
  if (ch == nullptr) return {};
  if (auto e = delete_channel(ch->id)) return e;
  if (ch->touched) std::erase(touched_, ch);
  channels_.erase(channels_.find(name));
  return {};
}

// Deletes the channel's oldest records while it is over either bound; never the newest.
db_error history_db::impl::prune(channel_state& ch) {
  const std::uint64_t need_count = ch.count > opt_.limit ? ch.count - opt_.limit : 0;
  const std::uint64_t need_bytes = ch.bytes > opt_.max_bytes ? ch.bytes - opt_.max_bytes : 0;
  if (need_count == 0 && need_bytes == 0) return {};
  std::int64_t cut = 0;
  std::uint64_t n = 0, bytes = 0;
  {
    sqlite3_stmt* s = q_.oldest.get();
    reset_on_exit g(s);
    sqlite3_bind_int64(s, 1, ch.id);
    while (n + 1 < ch.count) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return error_of(db_.get(), rc, "prune");
      cut = sqlite3_column_int64(s, 0);
      bytes += static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
      if (++n >= need_count && bytes >= need_bytes) break;
    }
  }
  if (n == 0) return {};
  sqlite3_stmt* d = q_.delete_through.get();
  sqlite3_bind_int64(d, 1, ch.id);
  sqlite3_bind_int64(d, 2, cut);
  if (const int rc = step_done(d)) return error_of(db_.get(), rc, "prune");
  ch.count -= n;
  ch.bytes -= std::min(bytes, ch.bytes);
  return {};
}

// Reads a channel newest first until the bounds are reached; stops at the first unreadable row.
history_db::impl::channel_read history_db::impl::read_channel(sqlite3_stmt* s, std::int64_t channel_id,
                                                              std::int64_t cutoff_ms) const {
  channel_read r;
  reset_on_exit g(s);
  sqlite3_bind_int64(s, 1, channel_id);
  for (;;) {
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      r.error = rc;
      break;
    }
    const std::int64_t id = sqlite3_column_int64(s, 0);
    const std::int64_t time_ms = sqlite3_column_int64(s, 5);
    if (r.records.empty() && time_ms < cutoff_ms) {
      r.expired = true;  // its newest record is older than the ttl
      break;
    }
    const auto frame_bytes = static_cast<std::uint64_t>(sqlite3_column_bytes(s, 6));
    if (!r.records.empty() && (r.records.size() >= opt_.limit || r.bytes + frame_bytes > opt_.max_bytes)) {
      r.cut = id;
      break;
    }
    history_record rec;
    rec.origin_server = column_blob(s, 1);
    rec.origin_instance = static_cast<std::uint64_t>(sqlite3_column_int64(s, 2));
    rec.seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 3));
    rec.flags = static_cast<std::uint8_t>(sqlite3_column_int(s, 4));
    rec.time_ms = time_ms;
    rec.frame = column_blob(s, 6);
    r.bytes += rec.frame.size();
    r.records.push_back(std::move(rec));
  }
  return r;
}

void history_db::impl::load(const std::function<void(const std::string&, std::vector<history_record>&&)>& fn) {
  std::lock_guard dl(db_mutex_);
  if (!db_) {
    spdlog::warn("history: {}: not loaded (the store is not open)", path_.string());
    return;
  }
  const std::int64_t cutoff = system_now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(opt_.ttl).count();
  if (!salvage_.empty()) {
    salvage_from(std::exchange(salvage_, {}), &fn);
    return;
  }
  std::vector<std::pair<std::int64_t, std::string>> list;
  {
    sqlite3_stmt* s = q_.list_channels.get();
    reset_on_exit g(s);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) list.emplace_back(sqlite3_column_int64(s, 0), column_blob(s, 1));
    if (rc != SQLITE_DONE) spdlog::error("history: {}: list of channels: {}", path_.string(), sqlite3_errmsg(db_.get()));
  }
  rollback_if_open();
  const bool in_transaction = step_done(q_.begin.get()) == SQLITE_OK;
  bool corrupt = false;
  std::size_t loaded = 0, records = 0, expired = 0;
  db_error write_error;
  for (auto& [id, name] : list) {
    auto got = read_channel(q_.newest_first.get(), id, cutoff);
    if (got.error != SQLITE_OK) {
      corrupt = corrupt || is_corruption(got.error);
      spdlog::error("history: channel '{}': {} records read, the rest is unreadable ({}): skipped", printable(name),
                    got.records.size(), sqlite3_errstr(got.error));
    }
    if (got.expired || got.records.empty()) {
      if (got.expired) ++expired;
      if (auto e = delete_channel(id); e && !write_error) write_error = e;
      continue;
    }
    if (got.cut != 0) {
      sqlite3_bind_int64(q_.delete_through.get(), 1, id);
      sqlite3_bind_int64(q_.delete_through.get(), 2, got.cut);
      if (const int rc = step_done(q_.delete_through.get()); rc && !write_error) write_error = error_of(db_.get(), rc, "prune");
    }
    channels_[name] = channel_state{id, got.records.size(), got.bytes, false};
    std::reverse(got.records.begin(), got.records.end());
    ++loaded;
    records += got.records.size();
    fn(name, std::move(got.records));
  }
  if (in_transaction && !write_error) {
    if (const int rc = step_done(q_.commit.get())) write_error = error_of(db_.get(), rc, "commit");
  }
  if (write_error || !in_transaction) {
    // What was read is served anyway; the pruning is retried when the channels are written.
    spdlog::warn("history: {}: could not delete expired or excess records: {}", path_.string(),
                 write_error ? write_error.what : sqlite3_errmsg(db_.get()));
    rollback_if_open();
    channels_.clear();
  }
  if (corrupt && exec(db_.get(), "REINDEX") != SQLITE_OK) {
    // An index quick_check cannot vouch for. Closed: the writer reopens, checks and if need be
    // moves the database aside.
    spdlog::error("history: {}: REINDEX failed: {}", path_.string(), sqlite3_errmsg(db_.get()));
    close_db();
  }
  spdlog::info("history: {}: loaded {} records of {} channels ({} expired channels forgotten)", path_.string(),
               records, loaded, expired);
}

// Reads what it can of a database moved aside and writes it into the fresh one (and to fn).
void history_db::impl::salvage_from(const fs::path& aside,
                                    const std::function<void(const std::string&, std::vector<history_record>&&)>* fn) {
  const std::int64_t cutoff = system_now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(opt_.ttl).count();
  sqlite3* raw = nullptr;
  const int orc = sqlite3_open_v2(aside.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, nullptr);
  db_ptr src(raw);
  sqlite3_stmt* l = nullptr;
  sqlite3_stmt* q = nullptr;
  if (orc == SQLITE_OK) {
    (void)exec(raw, "PRAGMA locking_mode=EXCLUSIVE");
    sqlite3_prepare_v2(raw, "SELECT id, name FROM channels ORDER BY id", -1, &l, nullptr);
    sqlite3_prepare_v2(raw,
                       "SELECT id, origin_server, origin_instance, seq, flags, time_ms, frame FROM history "
                       "WHERE channel_id = ?1 ORDER BY id DESC",
                       -1, &q, nullptr);
  }
  stmt_ptr list_stmt(l), read_stmt(q);
  if (!l || !q) {
    spdlog::error("history: {}: nothing could be salvaged ({})", aside.string(),
                  raw ? sqlite3_errmsg(raw) : sqlite3_errstr(orc));
    return;
  }
  std::vector<std::pair<std::int64_t, std::string>> list;
  int rc;
  while ((rc = sqlite3_step(l)) == SQLITE_ROW) list.emplace_back(sqlite3_column_int64(l, 0), column_blob(l, 1));
  sqlite3_reset(l);
  rollback_if_open();
  db_error write_error;
  if (const int brc = step_done(q_.begin.get())) write_error = error_of(db_.get(), brc, "begin");
  std::size_t channels = 0, records = 0;
  for (auto& [id, name] : list) {
    auto got = read_channel(read_stmt.get(), id, cutoff);
    if (got.expired || got.records.empty()) continue;
    std::reverse(got.records.begin(), got.records.end());
    channel_state* ch = nullptr;
    if (!write_error) write_error = find_channel(name, true, ch);
    for (const auto& rec : got.records) {
      if (write_error) break;
      if (const int irc = insert(ch->id, rec)) write_error = error_of(db_.get(), irc, "insert");
      ++ch->count;
      ch->bytes += rec.frame.size();
    }
    ++channels;
    records += got.records.size();
    if (fn) (*fn)(name, std::move(got.records));
  }
  if (!write_error) {
    if (const int crc = step_done(q_.commit.get())) write_error = error_of(db_.get(), crc, "commit");
  }
  if (write_error) {
    spdlog::warn("history: {}: salvaged records not written: {}", path_.string(), write_error.what);
    rollback_if_open();
    channels_.clear();
  }
  spdlog::warn("history: salvaged {} records of {} channels from {}{}", records, channels, aside.string(),
               rc == SQLITE_DONE ? "" : " (the list of channels is damaged)");
}

db_error history_db::impl::open_db(bool at_start) {
  if (auto e = ensure_dir(opt_.dir)) return e;
  for (int round = 0;; ++round) {
    if (auto e = private_file(path_, true)) return e;
    for (const char* suffix : {"-wal", "-shm"}) {
      if (auto e = private_file(path_.string() + suffix, false)) return e;
    }
    auto e = try_open();
    if (!e) break;
    close_db();
    if (!is_corruption(e.code) || round > 0) return e;
    const fs::path aside = move_aside(path_);
    if (aside.empty()) {
      return errno_error(fmt::format("{}, and it cannot be moved aside:", e.what), path_, errno);
    }
    spdlog::error("history: {} cannot be used ({}): moved to {}, starting afresh", path_.string(), e.what,
                  aside.string());
    if (e.ours) salvage_ = aside;
  }
  spdlog::info("history: {} open", path_.string());
  if (!at_start && !salvage_.empty()) salvage_from(std::exchange(salvage_, {}), nullptr);
  return {};
}

db_error history_db::impl::try_open() {
  const fs::path wal = path_.string() + "-wal";
  sqlite3* raw = nullptr;
  const int orc = sqlite3_open_v2(path_.c_str(), &raw,
                                  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
                                      SQLITE_OPEN_EXRESCODE,
                                  nullptr);
  db_.reset(raw);
  if (orc != SQLITE_OK) return error_of(raw, orc, "open");
  sqlite3* db = raw;
  // SQLite's hardening for databases that may have been tampered with or damaged
  // (https://sqlite.org/security.html).
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  (void)exec(db, "PRAGMA trusted_schema=OFF");
  // Exclusive before the first access: the WAL index lives in heap memory instead of a -shm
  // file, and the database stays locked for other processes (https://sqlite.org/wal.html#noshm).
  if (const int rc = exec(db, "PRAGMA locking_mode=EXCLUSIVE")) return error_of(db, rc, "locking mode");
  std::string mode;
  if (const int rc = first_row(db, "PRAGMA journal_mode=WAL", [&](sqlite3_stmt* s) {
        if (const auto* t = sqlite3_column_text(s, 0)) mode = reinterpret_cast<const char*>(t);
      })) {
    return error_of(db, rc, "journal mode");
  }
  if (mode != "wal") return {SQLITE_ERROR, fmt::format("journal mode: '{}' instead of 'wal'", mode)};
  // FULL: the WAL is synced at every commit, so a group commit survives a power loss as well
  // as a kill; it costs one fsync per commit, i.e. one per sync interval
  // (https://sqlite.org/pragma.html#pragma_synchronous).
  if (const int rc = exec(db, "PRAGMA synchronous=FULL")) return error_of(db, rc, "synchronous");
  (void)exec(db, fmt::format("PRAGMA journal_size_limit={}", wal_size_limit).c_str());
  // 8 MiB of page cache instead of SQLite's 2 MB default: a group commit of many channels
  // touches pages all over the index, and misses are a pread each (measured: one 200k-record
  // commit 3x faster). https://sqlite.org/pragma.html#pragma_cache_size
  (void)exec(db, "PRAGMA cache_size=-8192");

  std::string check;
  if (const int rc = first_row(db, "PRAGMA quick_check(1)", [&](sqlite3_stmt* s) {
        if (const auto* t = sqlite3_column_text(s, 0)) check = reinterpret_cast<const char*>(t);
      })) {
    return error_of(db, rc, "quick_check");
  }
  if (check != "ok") return {SQLITE_CORRUPT, fmt::format("quick_check: {}", check)};

  std::int64_t app = 0, version = 0, objects = 0;
  int rc = first_row(db, "PRAGMA application_id", [&](sqlite3_stmt* s) { app = sqlite3_column_int64(s, 0); });
  if (!rc) rc = first_row(db, "PRAGMA user_version", [&](sqlite3_stmt* s) { version = sqlite3_column_int64(s, 0); });
  if (!rc) rc = first_row(db, "SELECT count(*) FROM sqlite_schema", [&](sqlite3_stmt* s) {
    objects = sqlite3_column_int64(s, 0);
  });
  if (rc) return error_of(db, rc, "schema");
  if (app == 0 && version == 0 && objects == 0) {
    const auto create = fmt::format(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE channels(id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE);"
        "CREATE TABLE history(id INTEGER PRIMARY KEY, channel_id INTEGER NOT NULL, origin_server BLOB NOT NULL,"
        " origin_instance INTEGER NOT NULL, seq INTEGER NOT NULL, flags INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
        " frame BLOB NOT NULL);"
        "CREATE INDEX history_by_channel ON history(channel_id, id);"
        "PRAGMA application_id={};"
        "PRAGMA user_version={};"
        "COMMIT;",
        application_id, schema_version);
    if (const int crc = exec(db, create.c_str())) {
      auto e = error_of(db, crc, "create schema");
      (void)exec(db, "ROLLBACK");
      return e;
    }
  } else if (app != application_id) {
    // Not ours: moved aside like a corrupt file (it has our file name in our directory).
    return {SQLITE_NOTADB, fmt::format("not a history database (application_id {:#x})", app), false};
  } else if (version != schema_version) {
    // Written by another version of mles: left untouched.
    return {SQLITE_ERROR, fmt::format("history schema version {} (this mles reads {}); not touched", version,
                                      schema_version)};
  }

  // After recovery the WAL holds only whole commits; say what was ignored beyond them.
  std::int64_t wal_log = -1;
  if (!first_row(db, "PRAGMA wal_checkpoint(PASSIVE)", [&](sqlite3_stmt* s) { wal_log = sqlite3_column_int64(s, 1); }) &&
      wal_log >= 0) {
    const auto tail = inspect_wal_tail(wal, wal_log);
    if (tail.bytes > 0 && tail.torn) {
      spdlog::warn("history: {}: the last {} bytes of the write-ahead log are not a whole commit (torn by a crash): "
                   "ignored, the commits before them are kept",
                   path_.string(), tail.bytes);
    } else if (tail.bytes > 0) {
      spdlog::debug("history: {}: {} bytes of older frames after the last commit in the write-ahead log", path_.string(),
                    tail.bytes);
    }
  }
  if (const int crc = exec(db, "PRAGMA wal_checkpoint(TRUNCATE)")) {
    spdlog::debug("history: {}: checkpoint at open: {}", path_.string(), sqlite3_errmsg(db));
    (void)crc;
  }
  if (auto e = prepare_statements()) return e;
  sqlite3_wal_hook(
      db,
      +[](void* self, sqlite3*, const char*, int frames) {
        static_cast<impl*>(self)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      this);
  // Take the write lock now; locking_mode=EXCLUSIVE keeps it until close, so a second server
  // given the same directory is refused here ("database is locked") and retries.
  if (const int lrc = exec(db, "BEGIN IMMEDIATE; COMMIT")) return error_of(db, lrc, "lock");
  dir_synced_ = false;
  wal_frames_ = 0;
  return {};
}

db_error history_db::impl::prepare_statements() {
  struct entry {
    stmt_ptr* target;
    const char* sql;
  };
  const entry all[] = {
      {&q_.begin, "BEGIN IMMEDIATE"},
      {&q_.commit, "COMMIT"},
      {&q_.rollback, "ROLLBACK"},
      {&q_.find_channel, "SELECT id FROM channels WHERE name = ?1"},
      {&q_.add_channel, "INSERT INTO channels(name) VALUES (?1)"},
      {&q_.channel_totals, "SELECT count(*), coalesce(sum(length(frame)), 0) FROM history WHERE channel_id = ?1"},
      {&q_.insert,
       "INSERT INTO history(channel_id, origin_server, origin_instance, seq, flags, time_ms, frame) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&q_.oldest, "SELECT id, length(frame) FROM history WHERE channel_id = ?1 ORDER BY id"},
      {&q_.delete_through, "DELETE FROM history WHERE channel_id = ?1 AND id <= ?2"},
      {&q_.delete_history, "DELETE FROM history WHERE channel_id = ?1"},
      {&q_.delete_channel, "DELETE FROM channels WHERE id = ?1"},
      {&q_.list_channels, "SELECT id, name FROM channels ORDER BY id"},
      {&q_.newest_first,
       "SELECT id, origin_server, origin_instance, seq, flags, time_ms, frame FROM history "
       "WHERE channel_id = ?1 ORDER BY id DESC"},
  };
  for (const auto& e : all) {
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v3(db_.get(), e.sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    e.target->reset(s);
    if (rc != SQLITE_OK) return error_of(db_.get(), rc, "prepare");
  }
  return {};
}

void history_db::impl::close_db() {
  q_ = statements{};  // finalized before the connection closes
  db_.reset();
  channels_.clear();
  touched_.clear();
}

void history_db::impl::shutdown() {
  if (!flush(shutdown_flush)) {
    const auto s = [&] {
      std::lock_guard lk(mutex_);
      return st_;
    }();
    std::size_t waiting = 0;
    {
      std::lock_guard lk(mutex_);
      for (const op& o : queue_) waiting += o.what == op::kind::append ? 1 : 0;
    }
    spdlog::warn("history: {}: {} records could not be written before shutdown{}{}", path_.string(), waiting,
                 s.last_error.empty() ? "" : ": ", s.last_error);
  }
  {
    std::lock_guard lk(mutex_);
    stop_ = true;
    done_cv_.notify_all();
  }
  wake_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  std::lock_guard dl(db_mutex_);
  close_db();  // a clean close checkpoints the WAL into the database and removes it
}

// ---- history_db ----

history_db::history_db(history_db_options o) : impl_(std::make_unique<impl>(std::move(o))) {}

history_db::~history_db() { impl_->shutdown(); }

void history_db::load(const std::function<void(const std::string&, std::vector<history_record>&&)>& fn) {
  impl_->load(fn);
}

void history_db::append(history_record r) { impl_->push(std::move(r), nullptr); }

void history_db::append_durable(history_record r, std::function<void(bool ok)> done) {
  impl_->push(std::move(r), std::move(done));
}

void history_db::forget(const std::string& channel) { impl_->push_forget(channel); }

bool history_db::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

history_db::stats history_db::current_stats() const {
  std::lock_guard lk(impl_->mutex_);
  stats s = impl_->st_;
  s.queued_bytes = impl_->queued_bytes_;
  return s;
}

std::filesystem::path history_db::path() const { return impl_->path_; }

}  // namespace mles::store
