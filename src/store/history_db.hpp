// The durable copy of every channel's history (--history-dir): one SQLite database in WAL mode.
// data path: hub (history_store seam, under the channel lock) ─► append() ─► queue ─► writer
// thread: group commit ─► <dir>/history.sqlite3; at start-up load() ─► hub (in-memory rings).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mles::store {

// One stored message of a channel, as the hub keeps it (hub::message) plus when it was stored.
struct history_record {
  std::string channel;              // left empty in what load() hands out (the channel is passed once)
  std::string origin_server;        // empty: this server
  std::uint64_t origin_instance = 0;
  std::uint64_t seq = 0;            // sequence at the origin, per channel
  std::uint8_t flags = 0;           // hub::message_flags (join = 2, hashed = 4)
  std::string frame;                // the encoded server frame (WebSocket header + payload) members receive
  std::int64_t time_ms = 0;         // system_clock ms when stored (expiry after a restart)

  bool operator==(const history_record&) const = default;
};

struct history_db_options {
  std::filesystem::path dir;
  std::chrono::milliseconds sync_interval{1000};  // group commit period; 0 = commit every append at once
  std::size_t limit = 200;                        // records kept per channel
  std::size_t max_bytes = 32u << 20;              // frame bytes kept per channel (the newest record always kept)
  std::chrono::seconds ttl{30 * 24 * 3600};       // a channel with no record newer than this is forgotten
  std::size_t max_queued_bytes = 64u << 20;       // appends waiting for the disk; over it the oldest are dropped (counted)
  std::chrono::milliseconds retry_interval{5000}; // reopen / recommit after a failure
};

// The store. Layout: `dir` holds history.sqlite3 and, while open, history.sqlite3-wal (no
// -shm: the database is opened with locking_mode=EXCLUSIVE, so a second server pointed at
// the same directory finds it locked and reports itself unhealthy instead of sharing it).
// `dir` is created 0700 when missing (an existing directory keeps its mode); the files are
// 0600. Channel names are only ever SQL parameters, never file names.
//
// Durability: every commit runs with PRAGMA synchronous=FULL, i.e. the WAL is fsync'd before
// the commit returns (https://sqlite.org/pragma.html#pragma_synchronous). Group commits happen
// every sync_interval, so a killed process or a power loss loses at most the appends of the
// last interval (and of a commit still running); append_durable (and every append when
// sync_interval is 0) reports success only after such a commit. A torn WAL tail (checksums failing) is ignored by SQLite's
// recovery (https://sqlite.org/walformat.html) and reported once at start.
//
// Failures (disk full, I/O errors, unwritable or locked directory) never throw and never block
// append(): they are logged (warn when the state changes, info when healthy again), the queue
// is kept (bounded by max_queued_bytes, oldest dropped and counted) and retried every
// retry_interval. A database that fails PRAGMA quick_check (or is not ours) is renamed
// history.sqlite3.corrupt-<UTC time> and a fresh one started; load() salvages what it can.
//
// Thread-safety: every member function may be called from any thread. append(),
// append_durable() and forget() take a short lock and never wait for the disk. One writer
// thread, owned by the object, does all the disk work after start-up; load() runs on the
// caller's thread. Callbacks of append_durable run on the writer thread: they must not block
// nor call flush() or destroy the object.
class history_db {
 public:
  struct stats {
    std::uint64_t appended = 0;        // append() + append_durable() calls
    std::uint64_t committed = 0;       // records committed
    std::uint64_t dropped = 0;         // records given up (queue over max_queued_bytes, or refused by SQLite)
    std::uint64_t failed_commits = 0;  // write attempts that failed (including failing to open the database)
    bool healthy = false;              // the last attempt succeeded
    std::string last_error;            // the most recent failure, "" if none yet
    std::size_t queued_bytes = 0;      // waiting for the disk (records and bookkeeping)
  };

  // Opens (or creates) the database at once; never throws for disk problems: a store that
  // cannot open is unhealthy and retries every retry_interval.
  explicit history_db(history_db_options o);
  // Flushes (bounded by 5 s), stops the writer and closes the database.
  ~history_db();
  history_db(const history_db&) = delete;
  history_db& operator=(const history_db&) = delete;

  // Start-up, before any append: calls fn once per channel with its records oldest first,
  // already bounded by limit / max_bytes / ttl (now = system_clock); what falls outside the
  // bounds is deleted. Records the store cannot read (corruption) are skipped and logged;
  // after a corrupt database was moved aside, fn gets what could be salvaged from it (also
  // written into the fresh database). If the store could not open, fn is not called (logged).
  // fn runs on the caller's thread and must not throw.
  void load(const std::function<void(const std::string& channel, std::vector<history_record>&& oldest_first)>& fn);

  // Queued for the next group commit; never blocks on the disk.
  void append(history_record r);
  // Queued and committed at once: done(true) on the writer thread once r is committed durably,
  // done(false) if it could not be (disk full, unhealthy, dropped; while the store is failing,
  // at once); r then stays queued as a plain append and is retried. Concurrent durable appends
  // share one commit (one fsync). For --history-sync 0.
  void append_durable(history_record r, std::function<void(bool ok)> done);
  // The channel expired: its records go (in order with the appends around it).
  void forget(const std::string& channel);
  // Commits everything queued before the call (SIGTERM), trying at once even while failing;
  // returns after the done callbacks of those records ran. False on timeout, on a failed
  // commit, or if some of it had to be dropped.
  bool flush(std::chrono::milliseconds timeout);

  stats current_stats() const;
  // The database file, for logs.
  std::filesystem::path path() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mles::store
