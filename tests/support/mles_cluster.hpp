// Several real `mles` processes on reserved loopback ports, and test clients joined to them:
// start, SIGTERM, SIGKILL and restart a server (on the same port, with its earlier runs' logs
// kept for failure dumps), wait for log lines, and move and check traffic (every message
// exactly once, in its sender's order: README, "Linking servers"). Shared by the end-to-end
// tests of peer links and of the durable history.
//
// Every client message of these tests is "<kind>:<uid>:<n>" (kind "msg" for counted messages,
// "warmup" for the warm-up of await_paths); join frames replayed from a history are JSON.
#pragma once

#include "support/child_process.hpp"
#include "support/mles_binary.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mles::test {

// Generous bounds: the suites also run under ASan+UBSan on a busy 2-core machine. No test
// asserts that anything happens before a short timer; these only bound waits for conditions.
inline constexpr millis startup_timeout{30'000};
inline constexpr millis session_timeout{15'000};   // connect, upgrade, join of one test client
inline constexpr millis log_timeout{30'000};       // a log line about a link
inline constexpr millis path_timeout{30'000};      // warm-up: every member hears every other one
inline constexpr millis delivery_timeout{30'000};  // every expected message arrived
inline constexpr millis quiet_period{1'000};       // then nothing more may arrive
inline constexpr millis stop_timeout{15'000};      // SIGTERM to exit (README: within 5 s)
inline constexpr int max_passes = 1'000'000;       // bound on polling loops besides their deadline

// True when text holds token not followed by a digit (":4000" must not match ":40001").
bool contains_token(std::string_view text, std::string_view token);

// The level word of a log line ("<date>T<time> <level> <text>"): "info", "warning", ...
std::string_view log_level(std::string_view line);
// warn or worse (warning, error, critical).
bool at_least_warn(std::string_view line);

// ---------------------------------------------------------------------------------------------
// Servers

struct server_options {
  std::string name{};               // "a": members a1, a2; server id "srv-a" when named_id
  transport mode = transport::plain;
  bool self_signed = false;         // TLS with --self-signed instead of a test certificate file
  int threads = 1;
  bool peer_mode = true;            // false: --no-peer-mode
  bool named_id = true;             // false: the default server id (<first domain>:<port>)
  std::optional<std::string> key{}; // MLES_KEY
  std::vector<std::size_t> peers{}; // servers of this cluster given as --peer
  std::vector<std::string> extra{}; // more flags
};

struct server {
  server_options options;
  std::uint16_t port = 0;
  std::filesystem::path cert;       // TLS from files: the certificate and its key
  std::filesystem::path key_file;
  std::unique_ptr<child_process> process;             // the current (or last) run
  std::vector<std::unique_ptr<child_process>> past;   // earlier runs, for their logs
  bool exit_expected = false;       // the current run was stopped or killed by the test
  std::vector<std::string> argv;
};

// One test client session, joined to a channel on one server.
struct member {
  std::string uid;
  std::string channel;
  std::size_t server = 0;
  std::unique_ptr<ws_client> ws;
  bool open = false;
};

// A log line and the byte offset just past it in the process's stderr.
struct log_hit {
  std::string line;
  std::size_t next = 0;
};

// Whether receiver must get the messages of sender.
using expectation = std::function<bool(const member& receiver, const member& sender)>;

bool everyone_else(const member& receiver, const member& sender);
bool same_server(const member& receiver, const member& sender);

// Servers on reserved loopback ports (so that each can name the others in --peer before any
// starts), their logs, and the members joined to them.
class cluster {
 public:
  // binary: the mles executable; channel: the one members join unless told otherwise.
  explicit cluster(std::string binary, std::string channel = "peers");

  // Reserves ports and writes TLS certificates; starts nothing.
  void declare(std::vector<server_options> servers);

  std::size_t size() const noexcept { return servers_.size(); }
  server& at(std::size_t i) { return servers_.at(i); }
  const std::string& name(std::size_t i) const { return servers_.at(i).options.name; }
  const std::string& channel() const noexcept { return channel_; }
  // A directory removed with the cluster (web root, certificates).
  const std::filesystem::path& dir() const noexcept { return dir_.path(); }

  // The URL other servers give in --peer: ws://127.0.0.1:<port> or wss://localhost:<port>
  // (a TLS peer is verified against the URL's host name).
  std::string url(std::size_t i) const;

  // Starts server i (again, after a kill or stop) on its reserved port; false (with a failure)
  // when it did not report listening there.
  bool start(std::size_t i);
  bool start_all();

  // SIGKILL: the server vanishes without closing its sessions or links. Its members are
  // forgotten (see forget).
  bool kill(std::size_t i);
  // SIGTERM, and expects exit 0 within stop_timeout (README, "Exit codes"). Its members answer
  // the server's close frame, then are forgotten; data still arriving for them is dropped.
  bool stop(std::size_t i);

  // The current run's process.
  child_process& log(std::size_t i) { return *servers_.at(i).process; }

  // Keeps every server's stdout/stderr pipe drained (a server blocked writing a log line
  // stops serving) and notes exits.
  void drain_logs();

  // Waits until a complete line of server i's stderr (current run), at or after byte offset
  // from, satisfies pred; returns that line and the offset just past it.
  std::optional<log_hit> wait_log(std::size_t i, const std::function<bool(std::string_view)>& pred,
                                  std::size_t from, millis timeout);

  // Complete lines of server i's stderr (current run) satisfying pred.
  std::size_t count_log(std::size_t i, const std::function<bool(std::string_view)>& pred);

  // A line about a link to server peer on the cluster's channel:
  // "peer <url> channel '<channel>': ...what...".
  std::function<bool(std::string_view)> link_line(std::size_t peer, std::string what) const;

  // Waits for server i's "link up" line about its link to peer (at or after byte offset from)
  // and checks the mode it names ("peer mode" or "reference mode").
  std::optional<log_hit> wait_link_up(std::size_t i, std::size_t peer, std::string_view mode, std::size_t from = 0);

  // Waits for "link up" on every configured link of every server.
  bool wait_all_links_up(std::string_view mode);

  // A new member `uid` on server i, in the cluster's channel or the one given: upgrade, join
  // (with the keyed auth when the server has MLES_KEY, README "Protocol in one screen"), then a
  // ping barrier so that the join was processed (frames read meanwhile, such as the history
  // replay, stay buffered in the client). Owned by the cluster; closed before the servers stop.
  member& join(std::size_t i, const std::string& uid, std::optional<std::string> channel = std::nullopt);

  // Ends a member's session as a client does: close frame, then the socket.
  void leave(member& m);
  // Drops the member's socket without a close handshake (its server is gone).
  void forget(member& m);

  // Closes the members, then SIGTERMs every running server and expects exit 0 (README,
  // "Exit codes") within the bound: a crash or sanitizer report at shutdown fails the test, and
  // so does a server that exited without being told to.
  void stop_all();

  // Every run's command line and stderr.
  void dump_logs(std::ostream& os);

 private:
  std::vector<std::string> command_line(std::size_t i) const;
  void forget_members_of(std::size_t i);

  std::string binary_;
  std::string channel_;
  temp_dir dir_;
  std::vector<server> servers_;
  std::vector<std::unique_ptr<member>> members_;
};

// ---------------------------------------------------------------------------------------------
// Traffic

// Whether a message can be one a client sent: the tests' text messages ("msg:", "warmup:",
// "same:") or a JSON join frame replayed from the history. Anything else (say, a peer link's
// own framing) must never reach a client: Mles forwards "same opcode, same bytes" (README).
bool plausible(const message& m);

// The start of a payload with bytes outside printable ASCII as \xNN, for failure messages.
std::string printable_head(std::string_view payload);

// Reads what has arrived for the open members until done() holds or duration has passed (at
// least one pass), handing every data message to on_message(receiver index, payload). A member
// whose session ends is a failure (the tests never expect a server to drop a client).
bool pump(cluster& net, const std::vector<member*>& members, millis duration,
          const std::function<void(std::size_t, const std::string&)>& on_message,
          const std::function<bool()>& done = [] { return false; });

// "<kind>:<uid>:<n>".
std::string payload_of(std::string_view kind, const member& sender, int n);

// Splits "<kind>:<uid>:<n>"; nullopt for anything else (join frames of the history replay).
std::optional<std::pair<std::string, int>> parse_payload(std::string_view kind, std::string_view payload);

// Mles has no join acknowledgement (README, "Protocol in one screen"): "link up" tells that a
// link's join went out, not that the peer has processed it yet. So before counting, every
// sender sends numbered warm-up messages ("warmup:<uid>:<k>", unique: servers without the peer
// mode deduplicate by payload) until each member that must hear it has heard one.
void await_paths(cluster& net, const std::vector<member*>& senders, const std::vector<member*>& receivers,
                 const expectation& expects);

// Per receiver and sender, the numbers n of the "msg:<sender>:<n>" received, in arrival order,
// for n in [first, first + count); other payloads are ignored.
class delivery_checker {
 public:
  delivery_checker(std::vector<member*> senders, std::vector<member*> receivers, expectation expects, int first,
                   int count);

  void record(std::size_t r, const std::string& payload);
  // Every expected message arrived at least once.
  bool complete() const;
  // Exactly once, in the sender's order (unless order::any), never to the sender itself nor
  // across a path that must not carry it.
  enum class order : bool { per_sender, any };
  void verify(order o = order::per_sender) const;

 private:
  std::vector<member*> senders_;
  std::vector<member*> receivers_;
  expectation expects_;
  int first_;
  int count_;
  std::map<std::string, std::size_t> sender_index_;
  std::vector<std::vector<std::vector<int>>> got_;
  std::vector<std::vector<std::vector<bool>>> seen_;
  std::vector<std::vector<int>> distinct_;
};

// Warm-up, then every sender sends "msg:<uid>:<first..first+count-1>" interleaved with the
// others; waits until every expected message arrived, then for a quiet period, and checks
// exactly-once, in-order delivery (Mles: "never back to the sender, in order").
void exchange(cluster& net, const std::vector<member*>& senders, const std::vector<member*>& receivers,
              const expectation& expects, int first, int count,
              delivery_checker::order o = delivery_checker::order::per_sender);

// Two members ("<name>1", "<name>2") on every server of the cluster.
std::vector<member*> two_members_each(cluster& net);

}  // namespace mles::test
