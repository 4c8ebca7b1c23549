// Real `nats-server` processes (JetStream enabled) on reserved loopback ports for the tests of
// cluster mode (issue 10): one node, or several nodes joined by routes into one JetStream
// cluster. Each node has its config file and store directory in a temp directory removed with
// the fixture; a node can be killed (SIGKILL) and started again on the same ports and store,
// and every run's stderr is kept for failure dumps. Readiness is read from the monitoring port
// (/healthz, /jsz, /routez), every wait bounded.
//
// Also nats_client: a small nats.c (libnats) client for tests that set up or inspect JetStream
// themselves (create a conflicting stream, publish with acknowledgement, read stream state).
// Thread-safety: one controlling thread.
#pragma once

#include "support/child_process.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct __natsConnection;
struct __jsCtx;

namespace mles::test {

// Generous: a 3-node cluster elects its meta leader within seconds, but the suite also runs
// under ASan on a busy 2-core machine.
inline constexpr millis nats_ready_timeout{60'000};
inline constexpr millis nats_stop_timeout{15'000};

// The nats-server executable: $MLES_TEST_NATS_SERVER when set, else the first of
// /usr/bin/nats-server, /usr/sbin/nats-server, /usr/local/bin/nats-server that exists, else
// "nats-server" (spawning then fails with a clear message).
std::string nats_server_binary();

struct nats_node {
  std::string name;                  // server_name: n1, n2, ...
  std::uint16_t client_port = 0;
  std::uint16_t cluster_port = 0;    // 0 for a single node (no cluster block)
  std::uint16_t http_port = 0;       // monitoring
  std::filesystem::path config;
  std::filesystem::path store;
  std::unique_ptr<child_process> process;             // current (or last) run
  std::vector<std::unique_ptr<child_process>> past;   // earlier runs, for their logs
};

class nats_cluster {
 public:
  // nodes == 1: a single JetStream server; nodes >= 2: a JetStream cluster named
  // cluster_name, every node routing to every other. Reserves ports and writes the config
  // files; starts nothing.
  explicit nats_cluster(std::size_t nodes, std::string cluster_name = "mles-test");
  // Stops every running node (SIGTERM, then SIGKILL after nats_stop_timeout).
  ~nats_cluster();
  nats_cluster(const nats_cluster&) = delete;
  nats_cluster& operator=(const nats_cluster&) = delete;

  std::size_t size() const noexcept { return nodes_.size(); }
  const nats_node& node(std::size_t i) const { return nodes_.at(i); }
  // nats://127.0.0.1:<client port> of node i; urls(): every node's, comma-separated (the form
  // of mles --nats).
  std::string url(std::size_t i) const;
  std::string urls() const;
  // A client port nobody listens on (reserved with the others): for "NATS down" tests that
  // start mles before any NATS exists there. Equal to node(0).client_port.
  std::uint16_t client_port(std::size_t i) const { return nodes_.at(i).client_port; }

  // Spawns node i (again, after kill or stop) with the same config, ports and store; false
  // (with a test failure) when it is already running or cannot be spawned. Does not wait.
  bool spawn(std::size_t i);
  // spawn, then wait_ready.
  bool start(std::size_t i, millis timeout = nats_ready_timeout);
  // Spawns every node not running, then wait_ready.
  bool start_all(millis timeout = nats_ready_timeout);

  // Until every running node is ready or the deadline: /healthz answers 200 (JetStream up
  // and, in a cluster, current with its meta leader), and in a cluster the node has a route
  // to every other running node and names a running node as the meta leader. False (with a
  // test failure naming what each node lacked) at the deadline, or when a node exited.
  bool wait_ready(millis timeout = nats_ready_timeout);
  // One readiness probe of node i: empty when ready, else what is missing.
  std::string not_ready_reason(std::size_t i);

  // SIGKILL and reap: the node vanishes (its store stays for a restart).
  bool kill(std::size_t i);
  // SIGTERM (nats-server shuts down cleanly, "lame duck" not used) and reap.
  bool stop(std::size_t i);
  void stop_all();
  bool running(std::size_t i);

  // Appends text (nats-server configuration: tls {...}, authorization {...}) to every node's
  // configuration file; takes effect at the nodes' next start.
  void add_config(const std::string& text);

  // Keeps the nodes' pipes drained (a server blocked writing its log stops serving).
  void drain_logs();
  // Every node's config and every run's stderr.
  void dump_logs(std::ostream& os);

  // GET http://127.0.0.1:<http port><target> on node i; nullopt when no 200 answer came.
  std::optional<std::string> monitor(std::size_t i, const std::string& target, millis timeout = millis{5'000});

 private:
  void write_config(std::size_t i);

  std::string binary_;
  std::string cluster_name_;
  std::string extra_config_;
  temp_dir dir_;
  std::vector<nats_node> nodes_;
};

// The value of the first "key": "<string>" after the first occurrence of section (a plain
// text scan of nats-server's monitoring JSON, enough for its flat fields); nullopt if absent.
std::optional<std::string> json_string_after(const std::string& json, const std::string& section,
                                             const std::string& key);
// Likewise for an unsigned number ("key": 123).
std::optional<std::uint64_t> json_number_after(const std::string& json, const std::string& section,
                                               const std::string& key);

// ---------------------------------------------------------------------------------------------
// nats.c client

struct stream_facts {
  std::vector<std::string> subjects;
  bool memory_storage = false;
  std::int64_t replicas = 0;
  std::uint64_t messages = 0;
  std::uint64_t last_seq = 0;
  std::string leader;  // cluster leader of the stream (empty on a single node)
  std::size_t current_followers = 0;  // followers current with the leader (online, no lag)
};

class nats_client {
 public:
  nats_client() = default;
  ~nats_client();
  nats_client(const nats_client&) = delete;
  nats_client& operator=(const nats_client&) = delete;

  // Connects to any of urls (comma-separated), retrying until the deadline; reconnects later
  // on its own. False with error() set.
  bool connect(const std::string& urls, millis timeout = nats_ready_timeout);
  bool connected() const noexcept { return nc_ != nullptr; }

  // Creates the stream (file storage unless memory); retried until the deadline while the
  // cluster cannot place it yet (no leader, not enough peers).
  bool add_stream(const std::string& name, const std::vector<std::string>& subjects, int replicas,
                  bool memory = false, millis timeout = nats_ready_timeout);
  bool delete_stream(const std::string& name, millis timeout = nats_ready_timeout);
  // nullopt (with error()) when the stream does not exist or no answer came in time.
  std::optional<stream_facts> stream_info(const std::string& name, millis timeout = millis{10'000});
  // Until the stream has a leader and `followers` followers current with it (a replicated
  // stream is only safe to lose a node of then; right after its creation a follower may not
  // even have its copy yet). False with error() at the deadline.
  bool wait_stream_current(const std::string& name, std::size_t followers, millis timeout = nats_ready_timeout);
  // Publishes to JetStream and waits for the acknowledgement; retried until the deadline
  // (the stream's leader may be moving). The sequence acknowledged, or nullopt.
  std::optional<std::uint64_t> js_publish(const std::string& subject, const std::string& data,
                                          millis timeout = nats_ready_timeout);
  // Core NATS publish + flush.
  bool publish(const std::string& subject, const std::string& data);

  const std::string& error() const noexcept { return error_; }
  void close();

 private:
  bool fail(std::string what, int status, int js_error = 0);

  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  std::string error_;
};

}  // namespace mles::test
