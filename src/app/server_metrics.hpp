// What the server exposes on --metrics: every metric in one function. To add a metric, add
// one registry.add(...) line in register_server_metrics (reading a counter the code already
// keeps, or one added beside the others in net::server_counters / net::loop_counters).
#pragma once

#include "app/metrics.hpp"

#include <chrono>
#include <memory>
#include <vector>

namespace mles::hub {
class hub;
}
namespace mles::net {
class event_loop;
class tls_registry;
struct server_counters;
}  // namespace mles::net
namespace mles::peer {
struct link_states;
}
namespace mles::cluster {
struct stats;
}

namespace mles::app {

class acme_manager;
class durable_history;

// The server's parts the metrics read. Each must outlive every scrape (scrapes run on event
// loop 0, so anything destroyed after the loops stopped qualifies). Null: not configured.
struct metric_sources {
  const std::vector<std::unique_ptr<net::event_loop>>* loops = nullptr;
  const net::server_counters* counters = nullptr;
  const hub::hub* hub = nullptr;
  const net::tls_registry* tls = nullptr;          // null with --no-tls
  const acme_manager* acme = nullptr;              // ACME mode only
  const peer::link_states* links = nullptr;        // --peer only
  const durable_history* history = nullptr;        // --history-dir only
  const cluster::stats* cluster = nullptr;         // --nats only
  std::chrono::system_clock::time_point started;   // process start (for the start time)
  std::size_t max_inflight = 0;                    // --max-inflight in effect
};

void register_server_metrics(metrics_registry& registry, const metric_sources& s);

}  // namespace mles::app
