// mles-bench: a loopback load generator that drives an Mles server like a fleet of real
// clients (fanout, idle, history), and measures what the box's CPUs themselves cost
// (stalls). Command line → mode → one result (human + --json line).
#include "modes.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <exception>

namespace mles::bench {

void print_result(const common_options& common, const std::string& title, const result_record& rec) {
  fmt::print("mles-bench {}:\n", title);
  for (const auto& [key, value] : rec.fields()) fmt::print("  {:<26} {}\n", key, value);
  if (common.json) fmt::print("{}\n", rec.json_line());
  std::fflush(stdout);
}

namespace {

void add_common(CLI::App& sub, common_options& c) {
  sub.add_option("--host", c.host, "server address (loopback only)")->capture_default_str();
  sub.add_option("--port", c.port, "server port")->required();
  sub.add_flag("--tls", c.tls, "connect with TLS (no certificate verification, SNI localhost)");
  sub.add_option("--threads", c.threads, "bench event loops (threads)")->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub.add_flag("--json", c.json, "also print the result as one JSON line");
  sub.add_option("--connect-concurrency", c.connect_concurrency,
                 "connections in handshake at once")->capture_default_str()->check(CLI::Range(1, 100000));
  sub.add_option("--connect-timeout", c.connect_timeout_s,
                 "seconds for all connections to join (0: 10 s + 1 ms per connection, 2 ms with TLS)")
      ->capture_default_str();
  sub.add_option("--host-header", c.host_header, "Host header of the upgrade (default localhost:PORT)");
  sub.add_flag("--no-io-uring{false}", c.io_uring,
               "fanout: read() per connection instead of one io_uring submission for a round's plain reads");
}

}  // namespace
}  // namespace mles::bench

int main(int argc, char** argv) {
  using namespace mles::bench;
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"mles-bench: loopback load generator for Mles v2 WebSocket servers"};
  app.require_subcommand(1);

  common_options common;
  fanout_options fo;
  idle_options io;
  history_options ho;
  stall_options so;
  std::string rate = "max";

  auto* fanout = app.add_subcommand("fanout", "C channels × (P publishers + S subscribers): throughput, latency, integrity");
  add_common(*fanout, common);
  fanout->add_option("--channels", fo.channels, "channels")->capture_default_str()->check(CLI::Range(1u, 100000u));
  fanout->add_option("--subscribers", fo.subscribers, "subscribers per channel")->capture_default_str();
  fanout->add_option("--publisher-port", fo.publisher_port,
                     "publishers join on this port instead (a server linked to --port with --peer)");
  fanout->add_option("--publishers", fo.publishers, "publishers per channel (they also receive)")
      ->capture_default_str()->check(CLI::Range(1u, 100000u));
  fanout->add_option("--size", fo.size, "payload bytes (>= 16)")->capture_default_str()
      ->check(CLI::Range(std::size_t{16}, std::size_t{16} << 20));
  fanout->add_option("--rate", rate, "messages/s per publisher, or max (closed loop)")->capture_default_str();
  fanout->add_option("--window", fo.window,
                     "max messages per publisher not yet received by every member (also capped by --window-bytes)")
      ->capture_default_str()->check(CLI::Range(1u, 1000000u));
  fanout->add_option("--window-bytes", fo.window_bytes,
                     "frame bytes per channel in flight: caps the window at B / (P × (size + 14)); keep it "
                     "below the server's per-member queue limit (mles --max-queue, 4 MiB)")
      ->capture_default_str()->check(CLI::Range(std::size_t{4} << 10, std::size_t{1} << 30));
  fanout->add_option("--server-pid", fo.server_pid,
                     "server process whose CPU use during the measured window to report (server_cpu_share)");
  fanout->add_option("--stalled", fo.stalled,
                     "subscribers of the first channel that join and then never read (the server should "
                     "disconnect them); left out of the figures and the integrity check")
      ->capture_default_str()->check(CLI::Range(0u, 100000u));
  fanout->add_option("--duration", fo.duration_s, "measured seconds")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  fanout->add_option("--warmup", fo.warmup_s, "seconds of traffic before measuring")->capture_default_str()->check(CLI::Range(0.0, 600.0));
  fanout->add_option("--barrier-timeout", fo.barrier_timeout_s, "seconds for the join barrier")->capture_default_str();
  fanout->add_option("--drain-timeout", fo.drain_timeout_s, "seconds to receive the last messages")->capture_default_str();

  auto* idle = app.add_subcommand("idle", "N joined idle connections: joins/s and server bytes per connection");
  add_common(*idle, common);
  idle->add_option("--connections", io.connections, "connections")->capture_default_str()->check(CLI::Range(1u, 1000000u));
  idle->add_option("--per-channel", io.per_channel, "members per channel (1: a channel each, joins unconfirmed)")
      ->capture_default_str()->check(CLI::Range(1u, 1000000u));
  idle->add_option("--server-pid", io.server_pid, "server process whose VmRSS to measure");
  idle->add_option("--settle-timeout", io.settle_timeout_s, "seconds to wait for the RSS to settle")->capture_default_str();
  idle->add_option("--hold", io.hold_s, "extra seconds to keep the connections idle")->capture_default_str();

  auto* history = app.add_subcommand("history", "join latency of a channel with a full history");
  add_common(*history, common);
  history->add_option("--history", ho.history, "publisher messages in the history")->capture_default_str()->check(CLI::Range(1u, 999999u));
  history->add_option("--size", ho.size, "payload bytes (>= 16)")->capture_default_str()
      ->check(CLI::Range(std::size_t{16}, std::size_t{16} << 20));
  history->add_option("--joins", ho.joins, "measured joins")->capture_default_str()->check(CLI::Range(1u, 1000000u));
  history->add_option("--warmup-joins", ho.warmup_joins, "joins before measuring")->capture_default_str();
  history->add_option("--join-timeout", ho.join_timeout_s, "seconds for one join's history")->capture_default_str();
  history->add_option("--joiner-port", ho.joiner_port,
                      "joiners connect to this port instead (a cluster server where the channel has no members)");
  history->add_option("--join-pause", ho.join_pause_s,
                      "seconds between a fill and the next join (longer than that server's --peer-linger: "
                      "each join reads the history from the cluster's stream)")
      ->capture_default_str()->check(CLI::Range(0.0, 60.0));

  auto* stalls = app.add_subcommand(
      "stalls", "a spinning thread per CPU: how often and how long the CPUs stop it, and the latency floor that sets");
  stalls->add_option("--cpus", so.cpus, "CPUs to measure, e.g. 0,1 (default: every CPU this process may use)")
      ->delimiter(',')->check(CLI::Range(0u, 1023u));
  stalls->add_option("--duration", so.duration_s, "measured seconds")->capture_default_str()->check(CLI::Range(0.1, 600.0));
  stalls->add_option("--deadline-us", so.deadline_us, "deadline for late_share_at_<deadline>us")
      ->capture_default_str()->check(CLI::Range(1.0, 1e7));
  stalls->add_flag("--json", common.json, "also print the result as one JSON line");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : exit_usage;
  }

  try {
    if (*fanout) {
      if (rate != "max") {
        try {
          fo.rate = std::stod(rate);
        } catch (const std::exception&) {
          fo.rate = -1;
        }
        if (!(fo.rate > 0)) {
          fmt::print(stderr, "mles-bench: --rate must be a positive number or max\n");
          return exit_usage;
        }
      }
      if (fo.stalled > fo.subscribers || fo.publishers + fo.subscribers - fo.stalled < 2) {
        fmt::print(stderr, "mles-bench: --stalled {} must not exceed --subscribers {} and must leave at least "
                           "two reading members in the first channel\n", fo.stalled, fo.subscribers);
        return exit_usage;
      }
      return run_fanout(common, fo);
    }
    if (*idle) return run_idle(common, io);
    if (*stalls) return run_stalls(common, so);
    return run_history(common, ho);
  } catch (const bench_failure& f) {
    fmt::print(stderr, "mles-bench: FAILED: {}\n", f.what);
    return exit_failure;
  } catch (const std::exception& e) {
    fmt::print(stderr, "mles-bench: FAILED: {}\n", e.what());
    return exit_failure;
  }
}
