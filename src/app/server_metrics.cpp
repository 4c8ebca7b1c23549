// server_metrics: the list of the server's metrics (names, help, where each value comes from).
#include "app/server_metrics.hpp"

#include "cluster/backplane.hpp"

#include "app/acme_manager.hpp"
#include "app/durable_history.hpp"
#include "hub/hub.hpp"
#include "net/admission.hpp"
#include "net/error.hpp"
#include "net/event_loop.hpp"
#include "net/log_limit.hpp"
#include "net/session_context.hpp"
#include "net/tls_context.hpp"
#include "peer/link.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mles::app {

namespace {

using counter_ptr = std::atomic<std::uint64_t> net::loop_counters::*;

// A loop counter summed over the loops (each written only by its own loop).
double sum_loops(const std::vector<std::unique_ptr<net::event_loop>>& loops, counter_ptr which) {
  std::uint64_t n = 0;
  for (const auto& l : loops) n += (l->counters().*which).load(std::memory_order_relaxed);
  return static_cast<double>(n);
}

double load(const std::atomic<std::uint64_t>& c) { return static_cast<double>(c.load(std::memory_order_relaxed)); }

// /proc/self/statm: resident pages (second field).
double resident_bytes() {
  std::ifstream f("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double open_fds() {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return static_cast<double>(n);
}

// /proc/self/stat: utime and stime (fields 14 and 15, clock ticks), after the ')' of comm.
double cpu_seconds() {
  std::ifstream f("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(all.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double unix_seconds(std::chrono::system_clock::time_point t) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

}  // namespace

void register_server_metrics(metrics_registry& r, const metric_sources& s) {
  using enum metric_type;
  const auto& loops = *s.loops;
  const auto& c = *s.counters;
  const auto& hub = *s.hub;

  // Connections and sessions.
  r.add("mles_open_connections", gauge, "Open TCP connections (HTTP, WebSocket, links)", [&loops] {
    std::size_t n = 0;
    for (const auto& l : loops) n += l->connection_count();
    return static_cast<double>(n);
  });
  r.add("mles_joined_sessions", gauge, "Client sessions that joined a channel",
        [&c] { return static_cast<double>(c.joined.load(std::memory_order_relaxed)); });
  r.add("mles_channels", gauge, "Channels known to the hub", [&hub] { return static_cast<double>(hub.channel_count()); });

  // Traffic: per-loop counters summed at scrape time.
  r.add("mles_messages_received_total", counter, "Messages received from joined clients",
        [&loops] { return sum_loops(loops, &net::loop_counters::messages_in); });
  r.add("mles_received_bytes_total", counter, "Payload bytes of the messages received from joined clients",
        [&loops] { return sum_loops(loops, &net::loop_counters::bytes_in); });
  r.add("mles_messages_delivered_total", counter, "Messages delivered to channel members (one per recipient)",
        [&loops] { return sum_loops(loops, &net::loop_counters::messages_out); });
  r.add("mles_delivered_bytes_total", counter, "WebSocket frame bytes delivered to channel members",
        [&loops] { return sum_loops(loops, &net::loop_counters::bytes_out); });

  // History held in memory (walks the channels at scrape time).
  r.add("mles_history_messages", gauge, "Messages held in the channels' in-memory histories",
        [&hub] { return static_cast<double>(hub.history_held().messages); });
  r.add("mles_history_bytes", gauge, "Bytes held in the channels' in-memory histories",
        [&hub] { return static_cast<double>(hub.history_held().bytes); });

  // Memory bounds (--history-total, --max-channels, --max-inflight).
  const hub::hub_limits& limits = hub.limits();
  r.add("mles_history_cost_bytes", gauge, "What --history-total counts now: history bytes plus per-message and "
        "per-channel overheads", [&hub] { return static_cast<double>(hub.budget().history_cost); });
  r.add("mles_history_budget_bytes", gauge, "The --history-total budget",
        [&limits] { return static_cast<double>(limits.history_total); });
  r.add("mles_history_evicted_messages_total", counter, "History messages dropped over --history-total (with the "
        "channels forgotten)", [&hub] { return static_cast<double>(hub.budget().evicted_messages); });
  r.add("mles_channels_evicted_total", counter, "Channels without members forgotten, by bound", [&hub](metric_writer& w) {
    const auto b = hub.budget();
    w.sample({{"bound", "history_total"}}, static_cast<double>(b.evicted_channels));
    w.sample({{"bound", "max_channels"}}, static_cast<double>(b.capped_channels));
  });
  r.add("mles_channels_refused_total", counter, "Joins refused at --max-channels (close 1013)",
        [&hub] { return static_cast<double>(hub.budget().refused_channels); });
  r.add("mles_inflight_bytes", gauge, "Bytes held for partly received messages and request bodies",
        [&c] { return static_cast<double>(c.inflight_bytes.load(std::memory_order_relaxed)); });
  r.add("mles_inflight_budget_bytes", gauge, "The --max-inflight budget",
        [v = static_cast<double>(s.max_inflight)] { return v; });
  r.add("mles_request_bodies_refused_total", counter, "HTTP request bodies refused at the headers (405/413 where "
        "the route takes none, 503 over --max-inflight)", [&c] { return load(c.bodies_refused); });

  // Ends and refusals.
  r.add("mles_connection_ends_total", counter, "Connections ended, by reason", [&c](metric_writer& w) {
    for (std::size_t i = 1; i < net::errc_count; ++i)
      w.sample({{"reason", net::errc_name(static_cast<net::errc>(i))}}, load(c.ends[i]));
  });
  r.add("mles_tls_handshake_failures_total", counter, "TLS handshakes that failed or timed out",
        [&c](metric_writer& w) {
          w.sample({{"reason", "failed"}}, load(c.ends[static_cast<std::size_t>(net::errc::tls_handshake_failed)]));
          w.sample({{"reason", "timeout"}}, load(c.ends[static_cast<std::size_t>(net::errc::tls_handshake_timeout)]));
        });
  r.add("mles_connections_refused_total", counter, "Connections accepted and closed at once, by cause "
        "(--max-connections, --max-handshakes, out of descriptors, ...)", [&c](metric_writer& w) {
    for (std::size_t i = 0; i < net::refusal_count; ++i)
      w.sample({{"cause", std::string(net::refusal_name(static_cast<net::refusal>(i)))}}, load(c.refused[i]));
  });
  r.add("mles_tls_handshakes_in_progress", gauge, "TLS handshakes in progress (--max-handshakes)",
        [&c] { return static_cast<double>(c.handshakes.load(std::memory_order_relaxed)); });
  r.add("mles_rate_limited_connections_total", counter, "Connections dropped at accept by --rate-limit",
        [&c] { return load(c.rate_limited); });
  r.add("mles_http_responses_total", counter, "HTTP responses of the public listeners (static files, redirects, "
        "proxied, errors), by status code", [&c](metric_writer& w) {
    for (std::size_t i = 100; i < c.http_status.size(); ++i) {
      if (const auto n = c.http_status[i].load(std::memory_order_relaxed))
        w.sample({{"code", std::to_string(i)}}, static_cast<double>(n));
    }
  });
  r.add("mles_log_lines_suppressed_total", counter, "Log lines held back by the log rate limits, by kind",
        [](metric_writer& w) {
          w.sample({{"kind", "session"}}, static_cast<double>(net::session_lines().suppressed_total()));
          w.sample({{"kind", "problem"}}, static_cast<double>(net::problem_lines().suppressed_total()));
        });

  // Certificates.
  if (const auto* tls = s.tls) {
    r.add("mles_certificate_expiry_timestamp_seconds", gauge,
          "End of validity of the served certificate (unix time), by SNI name; 'default' without a known name",
          [tls](metric_writer& w) {
            for (const auto& [name, t] : tls->certificate_expiries())
              w.sample({{"domain", name}}, static_cast<double>(t));
          });
  }
  if (const auto* acme = s.acme) {
    r.add("mles_acme_last_result_timestamp_seconds", gauge, "When the last ACME order ended (unix time; 0: none yet)",
          [acme] { return static_cast<double>(acme->status().last_result_time.load(std::memory_order_relaxed)); });
    r.add("mles_acme_last_result_success", gauge, "1 when the last ACME order installed a certificate, else 0",
          [acme] { return acme->status().last_result_ok.load(std::memory_order_relaxed) ? 1.0 : 0.0; });
    r.add("mles_acme_certificate_ready", gauge, "1 while a certificate from the CA (not the temporary one) is served",
          [acme] { return acme->has_certificate() ? 1.0 : 0.0; });
  }

  // Peer links.
  if (const auto* links = s.links) {
    r.add("mles_peer_links", gauge, "Links to peer servers, by state", [links](metric_writer& w) {
      for (std::size_t i = 0; i < peer::link_states::names.size(); ++i)
        w.sample({{"state", peer::link_states::names[i]}},
                 static_cast<double>(links->count[i].load(std::memory_order_relaxed)));
    });
  }

  // Cluster mode (NATS).
  if (const auto* cl = s.cluster) {
    auto count = [](const std::atomic<std::uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); };
    r.add("mles_cluster_connected", gauge, "1 while connected to NATS (cluster mode)",
          [cl] { return cl->connected.load(std::memory_order_relaxed) ? 1.0 : 0.0; });
    r.add("mles_cluster_subscriptions", gauge, "Channels this server takes part in through NATS",
          [cl] { return static_cast<double>(cl->subscriptions.load(std::memory_order_relaxed)); });
    r.add("mles_cluster_buffered_bytes", gauge, "Outgoing bytes waiting for NATS (bounded by --nats-buffer)",
          [cl] { return static_cast<double>(cl->buffered_bytes.load(std::memory_order_relaxed)); });
    r.add("mles_cluster_published_total", counter, "Messages published to the JetStream history stream",
          [cl, count] { return count(cl->published); });
    r.add("mles_cluster_acknowledged_total", counter, "Published messages JetStream acknowledged (stored)",
          [cl, count] { return count(cl->acknowledged); });
    r.add("mles_cluster_retried_total", counter, "Publishes that failed or timed out and were sent again",
          [cl, count] { return count(cl->retried); });
    r.add("mles_cluster_dropped_total", counter, "Outgoing messages dropped (buffer full while NATS was away)",
          [cl, count] { return count(cl->dropped); });
    r.add("mles_cluster_received_total", counter, "Messages received from other servers through NATS",
          [cl, count] { return count(cl->received); });
    r.add("mles_cluster_history_loaded_total", counter, "History messages read from the stream",
          [cl, count] { return count(cl->loaded); });
    r.add("mles_cluster_history_load_failures_total", counter, "History reads from the stream that failed",
          [cl, count] { return count(cl->load_failures); });
    r.add("mles_cluster_claims_refused_total", counter, "Joins refused: the uid is joined on another server",
          [cl, count] { return count(cl->claims_refused); });
    r.add("mles_cluster_reconnects_total", counter, "Reconnections to NATS",
          [cl, count] { return count(cl->reconnects); });
    r.add("mles_cluster_gaps_total", counter, "Skipped sequences seen in the live flow (the history is read again)",
          [cl, count] { return count(cl->gaps); });
  }

  // Durable history.
  if (const auto* h = s.history) {
    r.add("mles_history_store_queued_bytes", gauge, "Bytes waiting for the --history-dir database",
          [h] { return static_cast<double>(h->store_stats().queued_bytes); });
    r.add("mles_history_store_write_failures_total", counter, "Failed writes to the --history-dir database",
          [h] { return static_cast<double>(h->store_stats().failed_commits); });
    r.add("mles_history_store_dropped_total", counter, "Records the --history-dir store gave up",
          [h] { return static_cast<double>(h->store_stats().dropped); });
    r.add("mles_history_store_healthy", gauge, "1 when the last write to the --history-dir database succeeded",
          [h] { return h->store_stats().healthy ? 1.0 : 0.0; });
  }

  // The process.
  r.add("mles_process_resident_memory_bytes", gauge, "Resident memory of the process", [] { return resident_bytes(); });
  r.add("mles_process_open_fds", gauge, "Open file descriptors of the process", [] { return open_fds(); });
  r.add("mles_process_cpu_seconds_total", counter, "CPU time of the process (user and system)",
        [] { return cpu_seconds(); });
  r.add("mles_process_start_time_seconds", gauge, "When the server started (unix time)",
        [t = unix_seconds(s.started)] { return t; });
}

}  // namespace mles::app
