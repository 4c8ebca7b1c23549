// --history-dir: the hub's history_store seam backed by the SQLite store (store/history_db):
// every message the hub keeps is queued for the store's group commit; at start the stored
// history goes back into the hub; with --history-sync 0 clients' messages are made durable
// before they are forwarded.
// data path: hub.store ─► durable_history.append ─► history_db queue ─► writer thread ─► disk
// Thread-safety: append/forget from any thread under a channel lock (they only queue);
// restore_into before the loops start; destroyed after they stopped (flushes).
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

  // hub::history_store
  void append(const std::string& channel, const hub::message& m) override;
  void forget(const std::string& channel) override;
  bool durable_before_forward() const noexcept override { return durable_first_; }
  void append_durable(const std::string& channel, const hub::message& m, std::function<void(bool ok)> done) override;

  // SIGTERM: everything queued written (bounded); false if it could not be.
  bool flush(std::chrono::milliseconds timeout) { return db_.flush(timeout); }
  store::history_db::stats stats() const { return db_.current_stats(); }

 private:
  store::history_record record_of(const std::string& channel, const hub::message& m) const;

  hub::origin self_;
  bool durable_first_;
  store::history_db db_;
};

}  // namespace mles::app
