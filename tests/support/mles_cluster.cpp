// mles_cluster: several mles processes, their logs, test members and traffic checks.
#include "support/mles_cluster.hpp"

#include "support/mles_auth.hpp"

#include <gtest/gtest.h>

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <ctime>
#include <fstream>
#include <ostream>
#include <sstream>

namespace mles::test {

using namespace std::chrono_literals;

bool contains_token(std::string_view text, std::string_view token) {
  for (std::size_t at = text.find(token); at != std::string_view::npos; at = text.find(token, at + 1)) {
    const std::size_t end = at + token.size();
    if (end == text.size() || text[end] < '0' || text[end] > '9') return true;
  }
  return false;
}

std::string_view log_level(std::string_view line) {
  const std::size_t start = line.find(' ');
  if (start == std::string_view::npos) return {};
  const std::size_t end = line.find(' ', start + 1);
  return line.substr(start + 1, end == std::string_view::npos ? std::string_view::npos : end - start - 1);
}

bool at_least_warn(std::string_view line) {
  // The level may be wrapped in colour escapes (spdlog's %^%l%$ on a terminal; never on a pipe).
  const std::string_view level = log_level(line);
  for (std::string_view w : {"warn", "warning", "error", "critical"}) {
    if (level == w) return true;
  }
  return false;
}

bool everyone_else(const member& receiver, const member& sender) { return &receiver != &sender; }

bool same_server(const member& receiver, const member& sender) {
  return &receiver != &sender && receiver.server == sender.server;
}

// ---------------------------------------------------------------------------------------------
// cluster

cluster::cluster(std::string binary, std::string channel) : binary_(std::move(binary)), channel_(std::move(channel)) {}

void cluster::declare(std::vector<server_options> servers) {
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

std::string cluster::url(std::size_t i) const {
  const server& s = servers_.at(i);
  return s.options.mode == transport::tls ? "wss://localhost:" + std::to_string(s.port)
                                          : "ws://127.0.0.1:" + std::to_string(s.port);
}

bool cluster::start(std::size_t i) {
  server& s = servers_.at(i);
  if (s.process) {
    if (!s.process->exit_code()) {
      ADD_FAILURE() << "server " << s.options.name << " started again while still running";
      return false;
    }
    s.past.push_back(std::move(s.process));
  }
  s.exit_expected = false;
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

bool cluster::start_all() {
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    if (!start(i)) return false;
  }
  return true;
}

bool cluster::kill(std::size_t i) {
  child_process& p = log(i);
  servers_.at(i).exit_expected = true;
  p.signal(SIGKILL);
  const auto code = p.wait_exit(stop_timeout);
  forget_members_of(i);
  if (!code) ADD_FAILURE() << "server " << name(i) << " still running after SIGKILL";
  return code.has_value();
}

bool cluster::stop(std::size_t i) {
  child_process& p = log(i);
  servers_.at(i).exit_expected = true;
  const bool running = !p.exit_code();
  p.signal(SIGTERM);
  // The server sends close 1001 to every session and waits for the reply (README, "Exit codes";
  // RFC 6455 §5.5.1): its members answer as clients do, so that it need not wait out its close
  // timeout.
  for (auto& m : members_) {
    if (m->server != i || !m->open) continue;
    if (m->ws->expect_close(stop_timeout)) m->ws->send_close(1000);
    drain_logs();
  }
  const auto code = p.wait_exit(stop_timeout);
  forget_members_of(i);
  if (!running) {
    ADD_FAILURE() << "server " << name(i) << " had already exited with " << code.value_or(-1) << " before SIGTERM";
    return false;
  }
  if (!code) {
    ADD_FAILURE() << "server " << name(i) << " still running " << stop_timeout.count() << " ms after SIGTERM";
    return false;
  }
  if (*code != 0) {
    ADD_FAILURE() << "server " << name(i) << " exited with " << *code << " after SIGTERM";
    return false;
  }
  return true;
}

void cluster::drain_logs() {
  for (auto& s : servers_) {
    if (s.process) s.process->poll_output();
  }
}

std::optional<log_hit> cluster::wait_log(std::size_t i, const std::function<bool(std::string_view)>& pred,
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

std::size_t cluster::count_log(std::size_t i, const std::function<bool(std::string_view)>& pred) {
  drain_logs();
  std::size_t n = 0;
  for (const auto& line : log(i).err_lines()) n += pred(line) ? 1 : 0;
  return n;
}

std::function<bool(std::string_view)> cluster::link_line(std::size_t peer, std::string what) const {
  return [url = url(peer), what = std::move(what), channel = channel_](std::string_view line) {
    return line.find("peer ") != std::string_view::npos && contains_token(line, url) &&
           line.find("channel '" + channel + "'") != std::string_view::npos &&
           line.find(what) != std::string_view::npos;
  };
}

std::optional<log_hit> cluster::wait_link_up(std::size_t i, std::size_t peer, std::string_view mode, std::size_t from) {
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

bool cluster::wait_all_links_up(std::string_view mode) {
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    for (std::size_t peer : servers_[i].options.peers) {
      if (!wait_link_up(i, peer, mode)) return false;
    }
  }
  return true;
}

member& cluster::join(std::size_t i, const std::string& uid, std::optional<std::string> channel) {
  auto m = std::make_unique<member>();
  m->uid = uid;
  m->channel = channel ? std::move(*channel) : channel_;
  m->server = i;
  m->ws = std::make_unique<ws_client>();
  const server& s = servers_.at(i);
  connect_options o;
  o.mode = s.options.mode;
  o.timeout = session_timeout;
  handshake_options h;
  h.timeout = session_timeout;
  std::optional<std::string> auth;
  if (s.options.key) auth = mles_auth(uid, m->channel, s.options.key);
  if (!m->ws->connect(s.port, o)) {
    ADD_FAILURE() << uid << ": connect to server " << s.options.name << ": " << m->ws->error();
  } else if (const http_response r = m->ws->handshake(h); r.code != 101) {
    ADD_FAILURE() << uid << ": upgrade at server " << s.options.name << ": " << r.describe();
  } else if (!m->ws->join(uid, m->channel, auth) || !m->ws->sync(session_timeout)) {
    ADD_FAILURE() << uid << ": join at server " << s.options.name << ": " << m->ws->error();
  } else {
    m->open = true;
  }
  members_.push_back(std::move(m));
  return *members_.back();
}

void cluster::leave(member& m) {
  if (m.open) {
    m.ws->send_close(1000);
    m.ws->close_socket();
    m.open = false;
  }
}

void cluster::forget(member& m) {
  m.ws->close_socket();
  m.open = false;
}

void cluster::forget_members_of(std::size_t i) {
  for (auto& m : members_) {
    if (m->server == i) forget(*m);
  }
}

void cluster::stop_all() {
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
      if (!s.exit_expected) {
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

void cluster::dump_logs(std::ostream& os) {
  for (auto& s : servers_) {
    if (!s.process) continue;
    s.process->poll_output();
    std::string command;
    for (const auto& a : s.argv) command += (command.empty() ? "" : " ") + a;
    os << "---- server " << s.options.name << ": " << command << "\n";
    const std::size_t runs = s.past.size() + 1;
    for (std::size_t r = 0; r < runs; ++r) {
      const child_process& p = r < s.past.size() ? *s.past[r] : *s.process;
      os << "---- its stderr";
      if (runs > 1) os << " (run " << r + 1 << " of " << runs << ")";
      os << ":" << joined_lines(p.err_lines()) << "\n";
    }
  }
}

std::vector<std::string> cluster::command_line(std::size_t i) const {
  const server& s = servers_[i];
  const server_options& o = s.options;
  std::vector<std::string> argv{binary_, "--port", std::to_string(s.port), "--bind", "127.0.0.1",
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

// ---------------------------------------------------------------------------------------------
// Traffic

bool plausible(const message& m) {
  if (m.opcode != op::text) return false;
  for (std::string_view prefix : {"msg:", "warmup:", "same:", "{"}) {
    if (m.payload.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

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

bool pump(cluster& net, const std::vector<member*>& members, millis duration,
          const std::function<void(std::size_t, const std::string&)>& on_message, const std::function<bool()>& done) {
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

delivery_checker::delivery_checker(std::vector<member*> senders, std::vector<member*> receivers, expectation expects,
                                 int first, int count)
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

void delivery_checker::record(std::size_t r, const std::string& payload) {
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

bool delivery_checker::complete() const {
  for (std::size_t r = 0; r < receivers_.size(); ++r) {
    for (std::size_t s = 0; s < senders_.size(); ++s) {
      if (expects_(*receivers_[r], *senders_[s]) && distinct_[r][s] < count_) return false;
    }
  }
  return true;
}

void delivery_checker::verify(order o) const {
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
        std::vector<int> arrived = seq;
        if (o == order::any) std::sort(arrived.begin(), arrived.end());
        if (arrived != want) {
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

void exchange(cluster& net, const std::vector<member*>& senders, const std::vector<member*>& receivers,
              const expectation& expects, int first, int count, delivery_checker::order o) {
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
  checker.verify(o);
}

std::vector<member*> two_members_each(cluster& net) {
  std::vector<member*> out;
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (const char* n : {"1", "2"}) out.push_back(&net.join(i, net.name(i) + n));
  }
  return out;
}

}  // namespace mles::test
