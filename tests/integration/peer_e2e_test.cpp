// End-to-end tests of peer links between real `mles` processes on loopback: `--peer` makes a
// server join the same channel on another server as an ordinary Mles client (a peer "sees
// that link as one more client session on the channel"), so that linked servers share the
// channel's messages; chains, rings and meshes must neither lose, duplicate nor reorder a
// message, over plain WebSocket (RFC 6455) and over TLS with verified certificates
// (RFC 6125 host names, the peer's CA given by --peer-ca). Also: repeated payloads between
// peer-mode servers (deduplicated by origin, not by payload), links to a server without the
// peer mode (--no-peer-mode), a peer that is down at start or restarts, a peer that refuses the
// join (wrong MLES_KEY), a certificate that fails verification, and --peer-linger. Every test
// ends with SIGTERM to every server and expects exit 0 (README, "Exit codes").
//
// Every client message is "msg:<uid>:<n>"; everything else a client receives (history replay
// of join frames, warm-up messages) is ignored. The binary is $MLES_TEST_BINARY when set (to
// run these tests against another build), else the mles built with the tests.
#include "support/child_process.hpp"
#include "support/mles_auth.hpp"
#include "support/mles_binary.hpp"
#include "support/test_certificate.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;

// Generous bounds: the suite also runs under ASan+UBSan on a busy 2-core machine. No test
// asserts that anything happens before a short timer; these only bound waits for conditions.
constexpr millis startup_timeout{30'000};
constexpr millis session_timeout{15'000};   // connect, upgrade, join of one test client
constexpr millis log_timeout{30'000};       // a log line about a link
constexpr millis path_timeout{30'000};      // warm-up: every member hears every other one
constexpr millis delivery_timeout{30'000};  // every expected message arrived
constexpr millis quiet_period{1'000};       // then nothing more may arrive
constexpr millis stop_timeout{15'000};      // SIGTERM to exit (README: within 5 s)
constexpr int max_passes = 1'000'000;       // bound on polling loops besides their deadline

constexpr std::string_view channel = "peers";

std::string mles_binary() {
  if (const char* p = std::getenv("MLES_TEST_BINARY"); p != nullptr && *p != '\0') return p;
  return MLES_BINARY;
}

// True when text holds token not followed by a digit (":4000" must not match ":40001").
bool contains_token(std::string_view text, std::string_view token) {
  for (std::size_t at = text.find(token); at != std::string_view::npos; at = text.find(token, at + 1)) {
    const std::size_t end = at + token.size();
    if (end == text.size() || text[end] < '0' || text[end] > '9') return true;
  }
  return false;
}

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
  std::unique_ptr<child_process> process;
  std::vector<std::string> argv;
};

// One test client session, joined to `channel` on one server.
struct member {
  std::string uid;
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

bool everyone_else(const member& receiver, const member& sender) { return &receiver != &sender; }

bool same_server(const member& receiver, const member& sender) {
  return &receiver != &sender && receiver.server == sender.server;
}

// Servers on reserved loopback ports (so that each can name the others in --peer before any
// starts), their logs, and the members joined to them.
class cluster {
 public:
  // Reserves ports and writes TLS certificates; starts nothing.
  void declare(std::vector<server_options> servers) {
    const auto ports = free_loopback_ports(servers.size());
    for (std::size_t i = 0; i < servers.size(); ++i) {
      server s;
      s.options = std::move(servers[i]);
      s.port = ports[i];
      if (s.options.mode == transport::tls && !s.options.self_signed) {
        s.cert = dir_.path() / (s.options.name + "-cert.pem");
        s.key_file = dir_.path() / (s.options.name + "-key.pem");
        write_test_certificate(s.cert, s.key_file, "localhost");
      }
      servers_.push_back(std::move(s));
    }
    for (std::size_t i = 0; i < servers_.size(); ++i) servers_[i].argv = command_line(i);
  }

  std::size_t size() const noexcept { return servers_.size(); }
  server& at(std::size_t i) { return servers_.at(i); }
  const std::string& name(std::size_t i) const { return servers_.at(i).options.name; }

  // The URL other servers give in --peer: ws://127.0.0.1:<port> or wss://localhost:<port>
  // (a TLS peer is verified against the URL's host name).
  std::string url(std::size_t i) const {
    const server& s = servers_.at(i);
    return s.options.mode == transport::tls ? "wss://localhost:" + std::to_string(s.port)
                                            : "ws://127.0.0.1:" + std::to_string(s.port);
  }

  // Starts server i (again, after kill) on its reserved port; false (with a failure) when it
  // did not report listening there.
  bool start(std::size_t i) {
    server& s = servers_.at(i);
    std::vector<std::string> env;
    if (s.options.key) env.push_back("MLES_KEY=" + *s.options.key);
    started_binary b = start_binary(s.argv, std::move(env), startup_timeout);
    s.process = std::move(b.process);
    if (b.port != s.port) {
      ADD_FAILURE() << "server " << s.options.name << " did not listen on its reserved port " << s.port
                    << " (reported " << b.port << ")";
      return false;
    }
    return true;
  }

  bool start_all() {
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (!start(i)) return false;
    }
    return true;
  }

  // SIGKILL: the server vanishes without closing its sessions or links.
  bool kill(std::size_t i) {
    child_process& p = log(i);
    p.signal(SIGKILL);
    const auto code = p.wait_exit(stop_timeout);
    if (!code) ADD_FAILURE() << "server " << name(i) << " still running after SIGKILL";
    return code.has_value();
  }

  child_process& log(std::size_t i) { return *servers_.at(i).process; }

  // Keeps every server's stdout/stderr pipe drained (a server blocked writing a log line
  // stops serving) and notes exits.
  void drain_logs() {
    for (auto& s : servers_) {
      if (s.process) s.process->poll_output();
    }
  }

  // Waits until a complete line of server i's stderr, at or after byte offset from, satisfies
  // pred; returns that line and the offset just past it.
  std::optional<log_hit> wait_log(std::size_t i, const std::function<bool(std::string_view)>& pred,
                                  std::size_t from, millis timeout) {
    child_process& p = log(i);
    const auto deadline = steady::now() + timeout;
    for (int pass = 0; pass < max_passes; ++pass) {
      drain_logs();
      const std::string& err = p.err();
      std::size_t eol;
      while (from < err.size() && (eol = err.find('\n', from)) != std::string::npos) {
        std::string line = err.substr(from, eol - from);
        from = eol + 1;
        if (pred(line)) return log_hit{std::move(line), from};
      }
      if (steady::now() >= deadline || p.exit_code()) break;
      p.poll_output(20ms);
    }
    return std::nullopt;
  }

  // Complete lines of server i's stderr satisfying pred.
  std::size_t count_log(std::size_t i, const std::function<bool(std::string_view)>& pred) {
    drain_logs();
    std::size_t n = 0;
    for (const auto& line : log(i).err_lines()) n += pred(line) ? 1 : 0;
    return n;
  }

  // A line about a link to server peer: "peer <url> channel '<channel>': ...what...".
  std::function<bool(std::string_view)> link_line(std::size_t peer, std::string what) const {
    return [url = url(peer), what = std::move(what)](std::string_view line) {
      return line.find("peer ") != std::string_view::npos && contains_token(line, url) &&
             line.find("channel '" + std::string{channel} + "'") != std::string_view::npos &&
             line.find(what) != std::string_view::npos;
    };
  }

  // Waits for server i's "link up" line about its link to peer (at or after byte offset from)
  // and checks the mode it names ("peer mode" or "reference mode").
  std::optional<log_hit> wait_link_up(std::size_t i, std::size_t peer, std::string_view mode, std::size_t from = 0) {
    auto hit = wait_log(i, link_line(peer, "link up"), from, log_timeout);
    if (!hit) {
      ADD_FAILURE() << "server " << name(i) << " logged no 'link up' for its peer " << url(peer) << " within "
                    << log_timeout.count() << " ms";
    } else {
      EXPECT_NE(hit->line.find("link up (" + std::string{mode} + ")"), std::string::npos)
          << "server " << name(i) << ", link to " << url(peer) << ": expected " << mode << ", got: " << hit->line;
    }
    return hit;
  }

  // Waits for "link up" on every configured link of every server.
  bool wait_all_links_up(std::string_view mode) {
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      for (std::size_t peer : servers_[i].options.peers) {
        if (!wait_link_up(i, peer, mode)) return false;
      }
    }
    return true;
  }

  // A new member `uid` on server i: upgrade, join (with the keyed auth when the server has
  // MLES_KEY, README "Protocol in one screen"), then a ping barrier so that the join was
  // processed. Owned by the cluster; closed before the servers stop.
  member& join(std::size_t i, const std::string& uid) {
    auto m = std::make_unique<member>();
    m->uid = uid;
    m->server = i;
    m->ws = std::make_unique<ws_client>();
    const server& s = servers_.at(i);
    connect_options o;
    o.mode = s.options.mode;
    o.timeout = session_timeout;
    handshake_options h;
    h.timeout = session_timeout;
    std::optional<std::string> auth;
    if (s.options.key) auth = mles_auth(uid, channel, s.options.key);
    if (!m->ws->connect(s.port, o)) {
      ADD_FAILURE() << uid << ": connect to server " << s.options.name << ": " << m->ws->error();
    } else if (const http_response r = m->ws->handshake(h); r.code != 101) {
      ADD_FAILURE() << uid << ": upgrade at server " << s.options.name << ": " << r.describe();
    } else if (!m->ws->join(uid, channel, auth) || !m->ws->sync(session_timeout)) {
      ADD_FAILURE() << uid << ": join at server " << s.options.name << ": " << m->ws->error();
    } else {
      m->open = true;
    }
    members_.push_back(std::move(m));
    return *members_.back();
  }

  // Ends a member's session as a client does: close frame, then the socket.
  void leave(member& m) {
    if (m.open) {
      m.ws->send_close(1000);
      m.ws->close_socket();
      m.open = false;
    }
  }

  // Drops the member's socket without a close handshake (its server is gone).
  void forget(member& m) {
    m.ws->close_socket();
    m.open = false;
  }

  // Closes the members, then SIGTERMs every running server and expects exit 0 (README,
  // "Exit codes") within the bound: a crash or sanitizer report at shutdown, with links still
  // up, fails the test.
  void stop_all() {
    for (auto& m : members_) leave(*m);
    std::vector<bool> running;
    for (auto& s : servers_) {
      running.push_back(s.process && !s.process->exit_code());
      if (running.back()) s.process->signal(SIGTERM);
    }
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      server& s = servers_[i];
      if (!s.process) continue;
      const auto code = s.process->wait_exit(stop_timeout);
      if (!running[i]) {
        if (code.value_or(-1) != 128 + SIGKILL) {
          ADD_FAILURE() << "server " << s.options.name << " exited by itself with " << code.value_or(-1);
        }
      } else if (!code) {
        ADD_FAILURE() << "server " << s.options.name << " still running " << stop_timeout.count()
                      << " ms after SIGTERM";
      } else if (*code != 0) {
        ADD_FAILURE() << "server " << s.options.name << " exited with " << *code << " after SIGTERM";
      }
    }
  }

  void dump_logs(std::ostream& os) {
    for (auto& s : servers_) {
      if (!s.process) continue;
      s.process->poll_output();
      std::string command;
      for (const auto& a : s.argv) command += (command.empty() ? "" : " ") + a;
      os << "---- server " << s.options.name << ": " << command << "\n---- its stderr:"
         << joined_lines(s.process->err_lines()) << "\n";
    }
  }

 private:
  std::vector<std::string> command_line(std::size_t i) const {
    const server& s = servers_[i];
    const server_options& o = s.options;
    std::vector<std::string> argv{mles_binary(), "--port", std::to_string(s.port), "--bind", "127.0.0.1",
                                  "--domains", "localhost", "--wwwroot", dir_.path().string(),
                                  "--log-level", "info", "--threads", std::to_string(o.threads)};
    if (o.mode == transport::plain) {
      argv.push_back("--no-tls");
    } else if (o.self_signed) {
      argv.push_back("--self-signed");
    } else {
      argv.insert(argv.end(), {"--tls-cert", s.cert.string(), "--tls-key", s.key_file.string()});
    }
    if (o.named_id) argv.insert(argv.end(), {"--server-id", "srv-" + o.name});
    if (!o.peer_mode) argv.push_back("--no-peer-mode");
    for (std::size_t peer : o.peers) argv.insert(argv.end(), {"--peer", url(peer)});
    if (!o.peers.empty()) {
      // --peer-ca takes one file: the certificates of the other servers, concatenated.
      std::string bundle;
      for (std::size_t j = 0; j < servers_.size(); ++j) {
        if (j == i || servers_[j].cert.empty()) continue;
        std::ifstream in(servers_[j].cert, std::ios::binary);
        std::ostringstream pem;
        pem << in.rdbuf();
        bundle += pem.str();
      }
      if (!bundle.empty()) {
        const auto file = dir_.path() / (o.name + "-peer-ca.pem");
        std::ofstream(file, std::ios::binary) << bundle;
        argv.insert(argv.end(), {"--peer-ca", file.string()});
      }
    }
    argv.insert(argv.end(), o.extra.begin(), o.extra.end());
    return argv;
  }

  temp_dir dir_;
  std::vector<server> servers_;
  std::vector<std::unique_ptr<member>> members_;
};

// ---------------------------------------------------------------------------------------------
// Traffic

// Whether a message can be one a client sent: the tests' text messages ("msg:", "warmup:",
// "same:") or a JSON join frame replayed from the history. Anything else (say, a peer link's
// own framing) must never reach a client: Mles forwards "same opcode, same bytes" (README).
bool plausible(const message& m) {
  if (m.opcode != op::text) return false;
  for (std::string_view prefix : {"msg:", "warmup:", "same:", "{"}) {
    if (m.payload.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// The start of a payload with bytes outside printable ASCII as \xNN, for failure messages.
std::string printable_head(std::string_view payload) {
  std::string out = "'";
  for (std::size_t i = 0; i < payload.size() && i < 48; ++i) {
    const auto c = static_cast<unsigned char>(payload[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  out += payload.size() > 48 ? "'..." : "'";
  return out + " (" + std::to_string(payload.size()) + " bytes)";
}

// Reads what has arrived for the open members until done() holds or duration has passed (at
// least one pass), handing every data message to on_message(receiver index, payload). A member
// whose session ends is a failure (the tests never expect a server to drop a client).
bool pump(cluster& net, const std::vector<member*>& members, millis duration,
          const std::function<void(std::size_t, const std::string&)>& on_message,
          const std::function<bool()>& done = [] { return false; }) {
  const auto deadline = steady::now() + duration;
  for (int pass = 0; pass < max_passes; ++pass) {
    net.drain_logs();
    bool got = false;
    for (std::size_t r = 0; r < members.size(); ++r) {
      member& m = *members[r];
      for (int k = 0; m.open && k < 10'000; ++k) {
        const message msg = m.ws->read_message(0ms, pong_policy::answer_pings);
        if (msg.status == io_status::timeout) break;
        if (msg.ok() && msg.opcode != op::close) {
          got = true;
          if (!plausible(msg)) {
            ADD_FAILURE() << m.uid << " received a message no client sent: " << opcode_name(msg.opcode) << " "
                          << printable_head(msg.payload);
          }
          on_message(r, msg.payload);
          continue;
        }
        ADD_FAILURE() << "the session of " << m.uid << " (server " << net.name(m.server) << ") ended: "
                      << (msg.ok() ? "close " + std::to_string(msg.close_code) : to_string(msg.status)) << " "
                      << m.ws->error();
        net.forget(m);
      }
    }
    if (done()) return true;
    if (steady::now() >= deadline) return false;
    if (got) continue;
    std::vector<pollfd> fds;
    for (member* m : members) {
      if (m->open) fds.push_back({m->ws->fd(), POLLIN, 0});
    }
    const auto left = std::chrono::duration_cast<millis>(deadline - steady::now()).count();
    const int wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 20));
    if (fds.empty()) {
      struct timespec ts{0, wait_ms * 1'000'000L};
      nanosleep(&ts, nullptr);
    } else {
      ::poll(fds.data(), fds.size(), wait_ms);
    }
  }
  return done();
}

std::string payload_of(std::string_view kind, const member& sender, int n) {
  return std::string{kind} + ":" + sender.uid + ":" + std::to_string(n);
}

// Splits "<kind>:<uid>:<n>"; nullopt for anything else (join frames of the history replay).
std::optional<std::pair<std::string, int>> parse_payload(std::string_view kind, std::string_view payload) {
  if (payload.size() <= kind.size() + 1 || payload.substr(0, kind.size()) != kind || payload[kind.size()] != ':') {
    return std::nullopt;
  }
  payload.remove_prefix(kind.size() + 1);
  const std::size_t colon = payload.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  int n = 0;
  const auto digits = payload.substr(colon + 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return std::pair{std::string{payload.substr(0, colon)}, n};
}

// Mles has no join acknowledgement (README, "Protocol in one screen"): "link up" tells that a
// link's join went out, not that the peer has processed it yet. So before counting, every
// sender sends numbered warm-up messages ("warmup:<uid>:<k>", unique: servers without the peer
// mode deduplicate by payload) until each member that must hear it has heard one.
void await_paths(cluster& net, const std::vector<member*>& senders, const std::vector<member*>& receivers,
                 const expectation& expects) {
  std::map<std::string, std::size_t> sender_index;
  for (std::size_t s = 0; s < senders.size(); ++s) sender_index[senders[s]->uid] = s;
  std::vector<std::vector<bool>> heard(receivers.size(), std::vector<bool>(senders.size(), false));
  auto missing = [&] {
    std::vector<std::string> out;
    for (std::size_t r = 0; r < receivers.size(); ++r) {
      for (std::size_t s = 0; s < senders.size(); ++s) {
        if (!heard[r][s] && expects(*receivers[r], *senders[s])) out.push_back(senders[s]->uid + "->" + receivers[r]->uid);
      }
    }
    return out;
  };
  auto on_message = [&](std::size_t r, const std::string& payload) {
    if (const auto p = parse_payload("warmup", payload)) {
      if (const auto it = sender_index.find(p->first); it != sender_index.end()) heard[r][it->second] = true;
    }
  };
  const auto deadline = steady::now() + path_timeout;
  for (int round = 0; round < 1'000 && steady::now() < deadline; ++round) {
    if (missing().empty()) return;
    for (std::size_t s = 0; s < senders.size(); ++s) {
      bool needed = false;
      for (std::size_t r = 0; r < receivers.size(); ++r) needed |= !heard[r][s] && expects(*receivers[r], *senders[s]);
      if (needed && senders[s]->open) {
        EXPECT_TRUE(senders[s]->ws->send_text(payload_of("warmup", *senders[s], round))) << senders[s]->ws->error();
      }
    }
    pump(net, receivers, 250ms, on_message, [&] { return missing().empty(); });
  }
  const auto left = missing();
  if (!left.empty()) {
    std::string list;
    for (const auto& m : left) list += " " + m;
    ADD_FAILURE() << "no path within " << path_timeout.count() << " ms for:" << list;
  }
}

// Per receiver and sender, the numbers n of the "msg:<sender>:<n>" received, in arrival order,
// for n in [first, first + count); other payloads are ignored.
class delivery_checker {
 public:
  delivery_checker(std::vector<member*> senders, std::vector<member*> receivers, expectation expects, int first,
                   int count)
      : senders_(std::move(senders)),
        receivers_(std::move(receivers)),
        expects_(std::move(expects)),
        first_(first),
        count_(count),
        got_(receivers_.size(), std::vector<std::vector<int>>(senders_.size())),
        seen_(receivers_.size(), std::vector<std::vector<bool>>(senders_.size(), std::vector<bool>(count, false))),
        distinct_(receivers_.size(), std::vector<int>(senders_.size(), 0)) {
    for (std::size_t s = 0; s < senders_.size(); ++s) sender_index_[senders_[s]->uid] = s;
  }

  void record(std::size_t r, const std::string& payload) {
    const auto p = parse_payload("msg", payload);
    if (!p || p->second < first_ || p->second >= first_ + count_) return;
    const auto it = sender_index_.find(p->first);
    if (it == sender_index_.end()) return;
    const std::size_t s = it->second;
    got_[r][s].push_back(p->second);
    const auto i = static_cast<std::size_t>(p->second - first_);
    if (!seen_[r][s][i]) {
      seen_[r][s][i] = true;
      ++distinct_[r][s];
    }
  }

  // Every expected message arrived at least once.
  bool complete() const {
    for (std::size_t r = 0; r < receivers_.size(); ++r) {
      for (std::size_t s = 0; s < senders_.size(); ++s) {
        if (expects_(*receivers_[r], *senders_[s]) && distinct_[r][s] < count_) return false;
      }
    }
    return true;
  }

  // Exactly once, in the sender's order, never to the sender itself nor across a path that
  // must not carry it.
  void verify() const {
    int reported = 0;
    for (std::size_t r = 0; r < receivers_.size(); ++r) {
      for (std::size_t s = 0; s < senders_.size(); ++s) {
        const std::vector<int>& seq = got_[r][s];
        const std::string pair = senders_[s]->uid + " -> " + receivers_[r]->uid;
        std::string problem;
        if (!expects_(*receivers_[r], *senders_[s])) {
          if (!seq.empty()) {
            problem = std::to_string(seq.size()) + " message(s) arrived that must not (" +
                      (receivers_[r] == senders_[s] ? "own messages" : "no path may carry them") + ")";
          }
        } else {
          std::vector<int> want(static_cast<std::size_t>(count_));
          for (int i = 0; i < count_; ++i) want[static_cast<std::size_t>(i)] = first_ + i;
          if (seq != want) {
            const int dups = static_cast<int>(seq.size()) - distinct_[r][s];
            std::size_t disorder = 0;
            while (disorder + 1 < seq.size() && seq[disorder] < seq[disorder + 1]) ++disorder;
            problem = std::to_string(distinct_[r][s]) + " of " + std::to_string(count_) + " distinct arrived, " +
                      std::to_string(dups) + " duplicate(s)";
            if (disorder + 1 < seq.size()) {
              problem += ", not increasing after index " + std::to_string(disorder) + " (" +
                         std::to_string(seq[disorder]) + " then " + std::to_string(seq[disorder + 1]) + ")";
            }
          }
        }
        if (!problem.empty() && ++reported <= 20) {
          // 16 numbers around the first disorder (from the start when in order).
          std::size_t from = 0;
          while (from + 1 < seq.size() && seq[from] < seq[from + 1]) ++from;
          from = from + 1 < seq.size() && from >= 4 ? from - 4 : 0;
          std::string shown = from > 0 ? " ..." : "";
          for (std::size_t i = from; i < seq.size() && i < from + 16; ++i) shown += " " + std::to_string(seq[i]);
          ADD_FAILURE() << pair << ": " << problem << "; received:" << shown << (seq.size() > from + 16 ? " ..." : "");
        }
      }
    }
    if (reported > 20) ADD_FAILURE() << reported - 20 << " more sender/receiver pairs failed";
  }

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
              const expectation& expects, int first, int count) {
  await_paths(net, senders, receivers, expects);
  delivery_checker checker(senders, receivers, expects, first, count);
  auto record = [&](std::size_t r, const std::string& payload) { checker.record(r, payload); };
  for (int i = 0; i < count; ++i) {
    for (member* s : senders) {
      if (s->open) {
        EXPECT_TRUE(s->ws->send_text(payload_of("msg", *s, first + i))) << s->uid << ": " << s->ws->error();
      }
    }
    pump(net, receivers, 0ms, record);
  }
  if (!pump(net, receivers, delivery_timeout, record, [&] { return checker.complete(); })) {
    ADD_FAILURE() << "not every expected message arrived within " << delivery_timeout.count() << " ms";
  }
  pump(net, receivers, quiet_period, record);
  checker.verify();
}

// Two members ("<name>1", "<name>2") on every server of the cluster.
std::vector<member*> two_members_each(cluster& net) {
  std::vector<member*> out;
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (const char* n : {"1", "2"}) out.push_back(&net.join(i, net.name(i) + n));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fixture: on failure (or with MLES_PEER_E2E_LOGS set), the servers' command lines and logs go
// to the test's output.

class peer_links : public ::testing::Test {
 protected:
  void TearDown() override {
    net_.stop_all();
    if (HasFailure() || std::getenv("MLES_PEER_E2E_LOGS") != nullptr) net_.dump_logs(std::cerr);
  }

  cluster net_;
};

#define MLES_ASSERT_NO_FAILURE_YET() ASSERT_FALSE(::testing::Test::HasFailure())

// ---------------------------------------------------------------------------------------------
// 1, 2: three servers, two members each, one channel; chain, ring and full mesh, plain and TLS.

struct topology {
  const char* name;
  std::vector<std::pair<std::size_t, std::size_t>> links;  // (from, to): from --peer to
};

struct topology_case {
  topology shape;
  transport mode;
};

void PrintTo(const topology_case& c, std::ostream* os) { *os << c.shape.name << "_" << to_string(c.mode); }

const topology chain{"chain", {{0, 1}, {1, 2}}};
const topology ring{"ring", {{0, 1}, {1, 2}, {2, 0}}};
const topology mesh{"mesh", {{0, 1}, {0, 2}, {1, 0}, {1, 2}, {2, 0}, {2, 1}}};

class peer_topology : public peer_links, public ::testing::WithParamInterface<topology_case> {};

TEST_P(peer_topology, delivers_every_message_exactly_once_in_sender_order) {
  const topology_case& c = GetParam();
  std::vector<server_options> servers(3);
  const char* names[] = {"a", "b", "c"};
  for (std::size_t i = 0; i < 3; ++i) {
    servers[i].name = names[i];
    servers[i].mode = c.mode;
    // a and b run two event loops: a message of one origin may then reach a member through
    // links served by different threads (ring, mesh) and must still keep its sender's order.
    servers[i].threads = i == 2 ? 1 : 2;
    servers[i].named_id = i != 1;  // b runs with the default id, localhost:<port>
  }
  for (const auto& [from, to] : c.shape.links) servers[from].peers.push_back(to);
  net_.declare(std::move(servers));
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("peer mode"));
  exchange(net_, members, members, everyone_else, 0, 50);
}

INSTANTIATE_TEST_SUITE_P(
    shapes, peer_topology,
    ::testing::Values(topology_case{chain, transport::plain}, topology_case{ring, transport::plain},
                      topology_case{mesh, transport::plain}, topology_case{chain, transport::tls},
                      topology_case{ring, transport::tls}, topology_case{mesh, transport::tls}),
    [](const ::testing::TestParamInfo<topology_case>& param_info) {
      return std::string{param_info.param.shape.name} + "_" + to_string(param_info.param.mode);
    });

// Between servers that both speak the peer mode, duplicates are recognised by origin, not by
// payload: a member that sends the same bytes several times has each of them delivered (Mles
// forwards every message), across a mesh with two links between every pair of servers.
TEST_F(peer_links, delivers_every_copy_of_a_repeated_payload_between_peer_mode_servers) {
  net_.declare({{.name = "a", .peers = {1, 2}}, {.name = "b", .threads = 2, .peers = {0, 2}}, {.name = "c", .peers = {0, 1}}});
  ASSERT_TRUE(net_.start_all());
  std::vector<member*> members{&net_.join(0, "a1"), &net_.join(1, "b1"), &net_.join(2, "c1")};
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("peer mode"));
  await_paths(net_, members, members, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();

  constexpr int copies = 10;
  std::map<std::pair<std::size_t, std::string>, int> got;  // (receiver, payload) -> count
  for (int i = 0; i < copies; ++i) {
    for (member* m : members) EXPECT_TRUE(m->ws->send_text("same:" + m->uid)) << m->ws->error();
  }
  auto record = [&](std::size_t r, const std::string& payload) {
    if (payload.rfind("same:", 0) == 0) ++got[{r, payload}];
  };
  auto all_arrived = [&] {
    for (std::size_t r = 0; r < members.size(); ++r) {
      for (member* s : members) {
        if (s != members[r] && got[{r, "same:" + s->uid}] < copies) return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(pump(net_, members, delivery_timeout, record, all_arrived))
      << "not every copy arrived within " << delivery_timeout.count() << " ms";
  pump(net_, members, quiet_period, record);
  for (std::size_t r = 0; r < members.size(); ++r) {
    for (member* s : members) {
      const int received = got[std::pair{r, "same:" + s->uid}];
      EXPECT_EQ(received, s == members[r] ? 0 : copies) << s->uid << " -> " << members[r]->uid;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3: a server without the peer mode (it behaves as the reference server): the link falls back
// to plain messages, deduplicated by payload.

TEST_F(peer_links, exchanges_messages_exactly_once_with_a_server_without_peer_mode) {
  net_.declare({{.name = "a", .threads = 2, .peers = {1}}, {.name = "r", .peer_mode = false}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_link_up(0, 1, "reference mode"));
  exchange(net_, members, members, everyone_else, 0, 40);
}

TEST_F(peer_links, exchanges_messages_exactly_once_in_a_loop_with_a_server_without_peer_mode) {
  net_.declare({{.name = "a", .threads = 2, .peers = {1}}, {.name = "r", .peer_mode = false, .peers = {0}}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("reference mode"));
  exchange(net_, members, members, everyone_else, 0, 40);
}

// ---------------------------------------------------------------------------------------------
// 4: the peer is down when the link is first tried; retries (backoff capped by
// --peer-retry-max) bring the link up once it listens.

TEST_F(peer_links, retries_a_peer_that_is_down_at_start_until_it_is_up) {
  net_.declare({{.name = "a", .peers = {1}, .extra = {"--peer-retry-max", "2"}}, {.name = "b", .threads = 2}});
  ASSERT_TRUE(net_.start(0));
  std::vector<member*> members{&net_.join(0, "a1"), &net_.join(0, "a2")};
  MLES_ASSERT_NO_FAILURE_YET();
  // A link exists only for a channel with local members: a1 and a2 make a try to link.
  const auto refused = net_.wait_log(0, net_.link_line(1, "cannot connect"), 0, log_timeout);
  ASSERT_TRUE(refused) << "no 'cannot connect' warning about the peer that is down";
  EXPECT_GE(net_.count_log(0, net_.link_line(1, "retrying in")), 1u);
  ASSERT_TRUE(net_.start(1));
  members.push_back(&net_.join(1, "b1"));
  members.push_back(&net_.join(1, "b2"));
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_link_up(0, 1, "peer mode", refused->next));
  exchange(net_, members, members, everyone_else, 0, 40);
}

// ---------------------------------------------------------------------------------------------
// 5: the peer is killed mid-traffic and restarted on the same port.

TEST_F(peer_links, relinks_after_the_peer_restarts_and_keeps_local_traffic_meanwhile) {
  net_.declare({{.name = "a", .threads = 2, .peers = {1}, .extra = {"--peer-retry-max", "2"}}, {.name = "b"}});
  ASSERT_TRUE(net_.start_all());
  std::vector<member*> on_a{&net_.join(0, "a1"), &net_.join(0, "a2")};
  std::vector<member*> on_b{&net_.join(1, "b1"), &net_.join(1, "b2")};
  MLES_ASSERT_NO_FAILURE_YET();
  const auto up = net_.wait_link_up(0, 1, "peer mode");
  ASSERT_TRUE(up);
  std::vector<member*> all{on_a[0], on_a[1], on_b[0], on_b[1]};
  exchange(net_, all, all, everyone_else, 0, 30);
  MLES_ASSERT_NO_FAILURE_YET();

  ASSERT_TRUE(net_.kill(1));
  for (member* m : on_b) net_.forget(*m);
  const auto lost = net_.wait_log(0, net_.link_line(1, "link lost"), up->next, log_timeout);
  ASSERT_TRUE(lost) << "no 'link lost' warning after the peer was killed";
  // While b is down, a's members still talk to each other.
  exchange(net_, on_a, on_a, everyone_else, 100, 30);

  ASSERT_TRUE(net_.start(1));
  on_b = {&net_.join(1, "b1"), &net_.join(1, "b2")};
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_link_up(0, 1, "peer mode", lost->next));
  all = {on_a[0], on_a[1], on_b[0], on_b[1]};
  exchange(net_, all, all, everyone_else, 200, 30);
}

// ---------------------------------------------------------------------------------------------
// 6: the peer refuses the link's join (another MLES_KEY): retried, never carries a message.

TEST_F(peer_links, keeps_retrying_a_peer_that_refuses_the_join_and_keeps_local_traffic) {
  net_.declare({{.name = "a", .key = "one", .peers = {1}, .extra = {"--peer-retry-max", "1"}},
                {.name = "b", .threads = 2, .key = "two"}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  EXPECT_TRUE(net_.wait_log(0, net_.link_line(1, "join refused"), 0, log_timeout)) << "no 'join refused' warning";
  // The link is retried: b refuses it again and again (README, "Logging": b warns about every
  // refused auth; its own members join with the right key). a itself need not repeat an
  // identical warning for every attempt.
  const auto refused_at_b = [](std::string_view line) { return line.find("join refused") != std::string_view::npos; };
  const auto again = net_.wait_log(1, refused_at_b, 0, log_timeout);
  ASSERT_TRUE(again) << "b refused no join";
  EXPECT_TRUE(net_.wait_log(1, refused_at_b, again->next, log_timeout)) << "the refused link was not retried";
  exchange(net_, members, members, same_server, 0, 20);
  EXPECT_EQ(net_.count_log(0, net_.link_line(1, "link up")), 0u);
}

// ---------------------------------------------------------------------------------------------
// 7: the peer's certificate does not verify (self-signed, no --peer-ca): no link.

TEST_F(peer_links, refuses_a_peer_whose_certificate_fails_verification) {
  net_.declare({{.name = "a", .peers = {1}, .extra = {"--peer-retry-max", "1"}},
                {.name = "b", .mode = transport::tls, .self_signed = true}});
  ASSERT_TRUE(net_.start_all());
  const auto members = two_members_each(net_);
  MLES_ASSERT_NO_FAILURE_YET();
  EXPECT_TRUE(net_.wait_log(0, net_.link_line(1, "certificate"), 0, log_timeout))
      << "no warning naming the certificate";
  exchange(net_, members, members, same_server, 0, 20);
  EXPECT_EQ(net_.count_log(0, net_.link_line(1, "link up")), 0u);
}

// ---------------------------------------------------------------------------------------------
// 8: --peer-linger: the link closes that long after the channel's last local member left.

TEST_F(peer_links, closes_the_link_after_the_linger_once_the_last_local_member_left) {
  net_.declare({{.name = "a", .peers = {1}, .extra = {"--peer-linger", "1"}}, {.name = "b"}});
  ASSERT_TRUE(net_.start_all());
  member& a1 = net_.join(0, "a1");
  MLES_ASSERT_NO_FAILURE_YET();
  const auto up = net_.wait_link_up(0, 1, "peer mode");
  ASSERT_TRUE(up);
  net_.leave(a1);
  EXPECT_TRUE(net_.wait_log(0, net_.link_line(1, "link closed (no local members)"), up->next, log_timeout))
      << "the link was not closed after the last local member left";
}

}  // namespace
}  // namespace mles::test
