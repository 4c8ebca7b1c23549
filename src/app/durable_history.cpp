// durable_history: hub messages to store records and back.
#include "app/durable_history.hpp"

#include <spdlog/spdlog.h>

namespace mles::app {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

namespace {

// The store commits every half interval too: collected at most half an interval after it was
// stored, committed at most half an interval after that.
store::history_db_options halve(store::history_db_options o) {
  o.sync_interval /= 2;
  return o;
}

}  // namespace

durable_history::durable_history(store::history_db_options options, hub::origin self)
    : self_(std::move(self)), durable_first_(options.sync_interval.count() == 0),
      period_(durable_first_ ? std::chrono::milliseconds(50) : std::max(options.sync_interval / 2, std::chrono::milliseconds(1))),
      db_(halve(std::move(options))) {}

std::chrono::milliseconds durable_history::collect_period() const noexcept { return period_; }

std::size_t durable_history::collect_from(hub::hub& h) {
  std::size_t n = 0;
  h.collect([&](const std::string& channel, std::vector<hub::message>&& added) {
    for (const auto& m : added) db_.append(record_of(channel, m));
    n += added.size();
  });
  return n;
}

durable_history::~durable_history() = default;

store::history_record durable_history::record_of(const std::string& channel, const hub::message& m) const {
  store::history_record r;
  r.channel = channel;
  // This server's messages are stored with this run's instance: after a restart they are
  // another run's, and peers that have them recognise them by that origin.
  if (m.from) {
    r.origin_server = m.from->server;
    r.origin_instance = m.from->instance;
  } else {
    r.origin_instance = self_.instance;
  }
  r.seq = m.seq;
  r.flags = m.flags & (hub::message_flags::join | hub::message_flags::hashed);
  r.frame.assign(reinterpret_cast<const char*>(m.frame.data()), m.frame.size());
  r.time_ms = now_ms();
  return r;
}

void durable_history::forget(const std::string& channel) { db_.forget(channel); }

void durable_history::append_durable(const std::string& channel, const hub::message& m,
                                     std::function<void(bool ok)> done) {
  db_.append_durable(record_of(channel, m), std::move(done));
}

std::size_t durable_history::restore_into(hub::hub& h, hub::sharing mode) {
  std::size_t total = 0;
  const auto steady_now = hub::clock::now();
  const std::int64_t wall_now = now_ms();
  db_.load([&](const std::string& channel, std::vector<store::history_record>&& records) {
    std::vector<hub::message> messages;
    messages.reserve(records.size());
    hub::origin_ptr last;
    std::int64_t newest = 0;
    std::size_t beyond = 0;
    for (auto& r : records) {
      // Not written by this server (which numbers within max_sequence): left out.
      if (r.seq > hub::max_sequence) {
        ++beyond;
        continue;
      }
      hub::message m;
      m.frame = hub::shared_frame::copy_of(
          {reinterpret_cast<const std::uint8_t*>(r.frame.data()), r.frame.size()}, mode);
      const std::string& server = r.origin_server.empty() ? self_.server : r.origin_server;
      if (!last || last->server != server || last->instance != r.origin_instance)
        last = std::make_shared<const hub::origin>(hub::origin{server, r.origin_instance});
      m.from = last;
      m.seq = r.seq & hub::max_sequence;
      m.flags = r.flags & (hub::message_flags::join | hub::message_flags::hashed);
      newest = std::max(newest, r.time_ms);
      messages.push_back(std::move(m));
    }
    if (beyond)
      spdlog::warn("history: {} stored record(s) of channel {} numbered beyond 2^56-1 left out (not written by this server)",
                   beyond, channel);
    const std::size_t n = messages.size();
    const auto age = std::chrono::milliseconds(std::max<std::int64_t>(0, wall_now - newest));
    // Over --max-channels the rest stay on disk, not in memory (the hub refuses them).
    if (h.restore(channel, std::move(messages), steady_now - std::chrono::duration_cast<hub::clock::duration>(age)))
      total += n;
  });
  return total;
}

}  // namespace mles::app
