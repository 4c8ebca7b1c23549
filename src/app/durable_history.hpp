// --history-dir: the hub's history_store seam backed by the SQLite store (store/history_db).
// The fan-out path only marks a channel changed; every half --history-sync interval loop 0
// collects what the changed channels stored since (hub::collect: at most their bounded
// history, however many messages passed) and queues it for the store's group commit, so a
// crash loses at most one interval. At start the stored history goes back into the hub; with
// --history-sync 0 clients' messages are made durable before they are forwarded.
// data path: hub.store (mark) ─► collect (loop 0 timer) ─► history_db queue ─► writer ─► disk
// Thread-safety: collect_from on loop 0 (or after the loops stopped); forget from any thread
// under a channel lock (it only queues); restore_into before the loops start; destroyed
// after they stopped.
#pragma once

#include "hub/hub.hpp"
#include "store/history_db.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace mles::app {

class durable_history final : public hub::history_store {
 public:
  // Opens the store (never throws for disk problems: it logs and retries).
  durable_history(store::history_db_options options, hub::origin self);
  ~durable_history();  // flushes what is queued (bounded), then closes

  // Start-up: every stored channel into the hub. Returns the number of messages.
  std::size_t restore_into(hub::hub& h, hub::sharing mode);

  // Queues what the hub's changed channels stored since the last call. Returns the number
  // of messages queued.
  std::size_t collect_from(hub::hub& h);
  // How often collect_from should run: half the sync interval (the store commits at the same
  // period), so a message waits at most one interval; 50 ms with --history-sync 0.
  std::chrono::milliseconds collect_period() const noexcept;

  // hub::history_store
  void forget(const std::string& channel) override;
  void append(const std::string& channel, const hub::message& m) override { db_.append(record_of(channel, m)); }
  bool durable_before_forward() const noexcept override { return durable_first_; }
  void append_durable(const std::string& channel, const hub::message& m, std::function<void(bool ok)> done) override;

  // SIGTERM: everything queued written (bounded); false if it could not be.
  bool flush(std::chrono::milliseconds timeout) { return db_.flush(timeout); }
  // The store's figures (metrics: queued bytes, failed writes, dropped records).
  store::history_db::stats store_stats() const { return db_.current_stats(); }

 private:
  store::history_record record_of(const std::string& channel, const hub::message& m) const;

  hub::origin self_;
  bool durable_first_;
  std::chrono::milliseconds period_;
  store::history_db db_;
};

}  // namespace mles::app
