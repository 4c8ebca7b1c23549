// nats_cluster: real nats-server processes with JetStream on loopback; nats_client: nats.c.
#include "support/nats_cluster.hpp"

#include "support/http_client.hpp"
#include "support/mles_binary.hpp"

#include <nats/nats.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <ostream>
#include <sstream>
#include <system_error>

namespace mles::test {

using namespace std::chrono_literals;

namespace {

void nap(millis d) {
  struct timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>((d.count() % 1000) * 1'000'000L)};
  nanosleep(&ts, nullptr);
}

constexpr int max_polls = 100'000;  // bound on readiness/retry loops besides their deadline

}  // namespace

std::string nats_server_binary() {
  if (const char* p = std::getenv("MLES_TEST_NATS_SERVER"); p != nullptr && *p != '\0') return p;
  for (const char* candidate : {"/usr/bin/nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"}) {
    std::error_code ec;
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return "nats-server";
}

std::optional<std::string> json_string_after(const std::string& json, const std::string& section,
                                             const std::string& key) {
  const std::size_t at = section.empty() ? 0 : json.find(section);
  if (at == std::string::npos) return std::nullopt;
  const std::string quoted = "\"" + key + "\"";
  std::size_t k = json.find(quoted, at);
  if (k == std::string::npos) return std::nullopt;
  k += quoted.size();
  while (k < json.size() && (json[k] == ' ' || json[k] == ':' || json[k] == '\n' || json[k] == '\t')) ++k;
  if (k >= json.size() || json[k] != '"') return std::nullopt;
  const std::size_t end = json.find('"', k + 1);
  if (end == std::string::npos) return std::nullopt;
  return json.substr(k + 1, end - k - 1);
}

std::optional<std::uint64_t> json_number_after(const std::string& json, const std::string& section,
                                               const std::string& key) {
  const std::size_t at = section.empty() ? 0 : json.find(section);
  if (at == std::string::npos) return std::nullopt;
  const std::string quoted = "\"" + key + "\"";
  std::size_t k = json.find(quoted, at);
  if (k == std::string::npos) return std::nullopt;
  k += quoted.size();
  while (k < json.size() && (json[k] == ' ' || json[k] == ':' || json[k] == '\n' || json[k] == '\t')) ++k;
  if (k >= json.size() || json[k] < '0' || json[k] > '9') return std::nullopt;
  std::uint64_t v = 0;
  for (int digits = 0; k < json.size() && json[k] >= '0' && json[k] <= '9' && digits < 19; ++k, ++digits) {
    v = v * 10 + static_cast<std::uint64_t>(json[k] - '0');
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// nats_cluster

nats_cluster::nats_cluster(std::size_t nodes, std::string cluster_name)
    : binary_(nats_server_binary()), cluster_name_(std::move(cluster_name)) {
  // The nodes run through a symlink of their own name: `ps` tells them from other nats-servers
  // on the machine, and a `pkill nats-server` aimed at those (which matches the process name)
  // does not take down a test's cluster.
  if (binary_.find('/') != std::string::npos) {
    const auto link = dir_.path() / "mles-js-node";
    std::error_code ec;
    std::filesystem::create_symlink(binary_, link, ec);
    if (!ec) binary_ = link.string();
  }
  const bool clustered = nodes > 1;
  const auto ports = free_loopback_ports(nodes * (clustered ? 3 : 2));
  std::size_t p = 0;
  for (std::size_t i = 0; i < nodes; ++i) {
    nats_node n;
    n.name = "n" + std::to_string(i + 1);
    n.client_port = ports[p++];
    n.http_port = ports[p++];
    if (clustered) n.cluster_port = ports[p++];
    n.config = dir_.path() / (n.name + ".conf");
    n.store = dir_.path() / (n.name + "-store");
    std::filesystem::create_directories(n.store);
    nodes_.push_back(std::move(n));
  }
  for (std::size_t i = 0; i < nodes; ++i) write_config(i);
}

nats_cluster::~nats_cluster() { stop_all(); }

void nats_cluster::write_config(std::size_t i) {
  const nats_node& n = nodes_[i];
  std::ofstream out(n.config);
  out << "server_name: " << n.name << "\n"
      << "listen: 127.0.0.1:" << n.client_port << "\n"
      << "http: 127.0.0.1:" << n.http_port << "\n"
      << "jetstream {\n"
      << "  store_dir: \"" << n.store.string() << "\"\n"
      << "  max_memory_store: 64MB\n"
      << "  max_file_store: 1GB\n"
      << "}\n";
  out << extra_config_;
  if (n.cluster_port != 0) {
    out << "cluster {\n"
        << "  name: " << cluster_name_ << "\n"
        << "  listen: 127.0.0.1:" << n.cluster_port << "\n"
        << "  routes: [\n";
    for (std::size_t j = 0; j < nodes_.size(); ++j) {
      if (j != i) out << "    nats-route://127.0.0.1:" << nodes_[j].cluster_port << "\n";
    }
    out << "  ]\n"
        << "}\n";
  }
}

void nats_cluster::add_config(const std::string& text) {
  extra_config_ += text;
  if (!extra_config_.empty() && extra_config_.back() != '\n') extra_config_ += '\n';
  for (std::size_t i = 0; i < nodes_.size(); ++i) write_config(i);
}

std::string nats_cluster::url(std::size_t i) const {
  return "nats://127.0.0.1:" + std::to_string(nodes_.at(i).client_port);
}

std::string nats_cluster::urls() const {
  std::string out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) out += (i == 0 ? "" : ",") + url(i);
  return out;
}

bool nats_cluster::running(std::size_t i) {
  nats_node& n = nodes_.at(i);
  if (!n.process) return false;
  n.process->poll_output();
  return !n.process->exit_code();
}

bool nats_cluster::spawn(std::size_t i) {
  nats_node& n = nodes_.at(i);
  if (running(i)) {
    ADD_FAILURE() << "nats node " << n.name << " spawned again while still running";
    return false;
  }
  if (n.process) n.past.push_back(std::move(n.process));
  try {
    n.process = std::make_unique<child_process>(std::vector<std::string>{binary_, "-c", n.config.string()});
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot start nats-server (" << binary_ << "; install the Debian package nats-server, "
                  << "or set MLES_TEST_NATS_SERVER): " << e.what();
    return false;
  }
  return true;
}

bool nats_cluster::start(std::size_t i, millis timeout) { return spawn(i) && wait_ready(timeout); }

bool nats_cluster::start_all(millis timeout) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!running(i) && !spawn(i)) return false;
  }
  return wait_ready(timeout);
}

std::optional<std::string> nats_cluster::monitor(std::size_t i, const std::string& target, millis timeout) {
  http_client c;
  connect_options o;
  o.mode = transport::plain;
  o.timeout = timeout;
  if (!c.connect(nodes_.at(i).http_port, o)) return std::nullopt;
  const http_reply r = c.exchange(http_request("GET", target, "127.0.0.1", {{"Connection", "close"}}), timeout);
  if (!r.ok() || r.code != 200) return std::nullopt;
  return r.body;
}

std::string nats_cluster::not_ready_reason(std::size_t i) {
  const nats_node& n = nodes_.at(i);
  if (!running(i)) return "not running";
  // 2.9: 200 {"status":"ok"} once JetStream is enabled and (clustered) current with the meta
  // leader; 503 with the reason otherwise.
  if (!monitor(i, "/healthz")) return "/healthz not ok";
  if (n.cluster_port == 0) return {};
  std::size_t others = 0;
  for (std::size_t j = 0; j < nodes_.size(); ++j) others += j != i && running(j) ? 1 : 0;
  const auto routez = monitor(i, "/routez");
  const auto routes = routez ? json_number_after(*routez, "", "num_routes") : std::nullopt;
  if (!routes || *routes < others) {
    return "routes: " + (routes ? std::to_string(*routes) : std::string{"?"}) + " of " + std::to_string(others);
  }
  const auto jsz = monitor(i, "/jsz");
  const auto leader = jsz ? json_string_after(*jsz, "\"meta_cluster\"", "leader") : std::nullopt;
  if (!leader || leader->empty()) return "no JetStream meta leader";
  for (std::size_t j = 0; j < nodes_.size(); ++j) {
    if (nodes_[j].name == *leader) {
      // A killed leader stays named for a while (until a new election).
      return running(j) ? std::string{} : "meta leader " + *leader + " is down";
    }
  }
  return "unknown meta leader " + *leader;
}

bool nats_cluster::wait_ready(millis timeout) {
  const auto deadline = steady::now() + timeout;
  std::vector<std::string> reasons(nodes_.size());
  for (int pass = 0; pass < max_polls; ++pass) {
    bool all = true;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].process) {
        reasons[i] = {};
        continue;  // never started: not part of the cluster now
      }
      if (nodes_[i].process->exit_code()) {
        reasons[i] = {};
        continue;  // killed or stopped by the test
      }
      reasons[i] = not_ready_reason(i);
      if (reasons[i] == "not running") {
        ADD_FAILURE() << "nats node " << nodes_[i].name << " exited by itself with "
                      << nodes_[i].process->exit_code().value_or(-1);
        return false;
      }
      all &= reasons[i].empty();
    }
    if (all) return true;
    if (steady::now() >= deadline) break;
    nap(100ms);
  }
  std::string why;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!reasons[i].empty()) why += " " + nodes_[i].name + ": " + reasons[i] + ";";
  }
  ADD_FAILURE() << "NATS not ready within " << timeout.count() << " ms:" << why;
  return false;
}

bool nats_cluster::kill(std::size_t i) {
  nats_node& n = nodes_.at(i);
  if (!running(i)) {
    ADD_FAILURE() << "nats node " << n.name << " killed while not running";
    return false;
  }
  n.process->signal(SIGKILL);
  const auto code = n.process->wait_exit(nats_stop_timeout);
  if (!code) ADD_FAILURE() << "nats node " << n.name << " still running after SIGKILL";
  return code.has_value();
}

bool nats_cluster::stop(std::size_t i) {
  nats_node& n = nodes_.at(i);
  if (!running(i)) return true;
  n.process->signal(SIGTERM);
  if (n.process->wait_exit(nats_stop_timeout)) return true;
  ADD_FAILURE() << "nats node " << n.name << " still running " << nats_stop_timeout.count()
                << " ms after SIGTERM; killing it";
  n.process->signal(SIGKILL);
  n.process->wait_exit(nats_stop_timeout);
  return false;
}

void nats_cluster::stop_all() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (running(i)) nodes_[i].process->signal(SIGTERM);
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    nats_node& n = nodes_[i];
    if (!n.process || n.process->exit_code()) continue;
    if (!n.process->wait_exit(nats_stop_timeout)) {
      n.process->signal(SIGKILL);
      n.process->wait_exit(nats_stop_timeout);
    }
  }
}

void nats_cluster::drain_logs() {
  for (auto& n : nodes_) {
    if (n.process) n.process->poll_output();
  }
}

void nats_cluster::dump_logs(std::ostream& os) {
  for (auto& n : nodes_) {
    std::ifstream in(n.config);
    std::ostringstream config;
    config << in.rdbuf();
    os << "---- nats node " << n.name << " (" << binary_ << " -c " << n.config.string() << "):\n" << config.str();
    if (!n.process) {
      os << "---- never started\n";
      continue;
    }
    n.process->poll_output();
    const std::size_t runs = n.past.size() + 1;
    for (std::size_t r = 0; r < runs; ++r) {
      const child_process& p = r < n.past.size() ? *n.past[r] : *n.process;
      os << "---- its stderr";
      if (runs > 1) os << " (run " << r + 1 << " of " << runs << ")";
      if (p.exit_code()) os << " (exit " << *p.exit_code() << ")";
      os << ":" << joined_lines(p.err_lines()) << "\n";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// nats_client

namespace {

// No nats_Close here: nats.c releases its library state in its own exit handler (closing it
// first makes that handler lock a freed mutex at exit).
std::string status_text(int status) {
  std::string s = natsStatus_GetText(static_cast<natsStatus>(status));
  natsStatus ignored;
  if (const char* last = nats_GetLastError(&ignored); last != nullptr && *last != '\0') s += " (" + std::string{last} + ")";
  return s;
}

}  // namespace

nats_client::~nats_client() { close(); }

void nats_client::close() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  js_ = nullptr;
  if (nc_ != nullptr) natsConnection_Destroy(nc_);
  nc_ = nullptr;
}

bool nats_client::fail(std::string what, int status, int js_error) {
  error_ = std::move(what) + ": " + status_text(status);
  if (js_error != 0) error_ += " (JetStream error " + std::to_string(js_error) + ")";
  return false;
}

bool nats_client::connect(const std::string& urls, millis timeout) {
  close();
  std::vector<std::string> list;
  for (std::size_t start = 0; start <= urls.size();) {
    const std::size_t comma = std::min(urls.find(',', start), urls.size());
    if (comma > start) list.push_back(urls.substr(start, comma - start));
    start = comma + 1;
  }
  std::vector<const char*> servers;
  for (const auto& u : list) servers.push_back(u.c_str());
  const auto deadline = steady::now() + timeout;
  natsStatus s = NATS_OK;
  for (int attempt = 0; attempt < max_polls; ++attempt) {
    natsOptions* opts = nullptr;
    s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2'000);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 100);
    if (s == NATS_OK) s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s == NATS_OK) break;
    nc_ = nullptr;
    if (steady::now() >= deadline) return fail("connect to " + urls, s);
    nap(100ms);
  }
  if (s != NATS_OK) return fail("connect to " + urls, s);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5'000;
  s = natsConnection_JetStream(&js_, nc_, &jo);
  if (s != NATS_OK) return fail("JetStream context", s);
  return true;
}

bool nats_client::add_stream(const std::string& name, const std::vector<std::string>& subjects, int replicas,
                             bool memory, millis timeout) {
  if (js_ == nullptr) return fail("add_stream without a connection", NATS_CONNECTION_CLOSED);
  std::vector<const char*> subj;
  for (const auto& s : subjects) subj.push_back(s.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subj.data();
  cfg.SubjectsLen = static_cast<int>(subj.size());
  cfg.Storage = memory ? js_MemoryStorage : js_FileStorage;
  cfg.Replicas = replicas;
  const auto deadline = steady::now() + timeout;
  for (int attempt = 0; attempt < max_polls; ++attempt) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    if (s == NATS_OK) return true;
    fail("add stream " + name, s, jerr);
    if (steady::now() >= deadline) return false;
    nap(250ms);
  }
  return false;
}

bool nats_client::delete_stream(const std::string& name, millis timeout) {
  if (js_ == nullptr) return fail("delete_stream without a connection", NATS_CONNECTION_CLOSED);
  const auto deadline = steady::now() + timeout;
  for (int attempt = 0; attempt < max_polls; ++attempt) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_DeleteStream(js_, name.c_str(), nullptr, &jerr);
    if (s == NATS_OK) return true;
    fail("delete stream " + name, s, jerr);
    if (s == NATS_NOT_FOUND || steady::now() >= deadline) return false;
    nap(250ms);
  }
  return false;
}

std::optional<stream_facts> nats_client::stream_info(const std::string& name, millis timeout) {
  if (js_ == nullptr) {
    fail("stream_info without a connection", NATS_CONNECTION_CLOSED);
    return std::nullopt;
  }
  const auto deadline = steady::now() + timeout;
  for (int attempt = 0; attempt < max_polls; ++attempt) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr);
    if (s == NATS_OK && si != nullptr) {
      stream_facts f;
      if (si->Config != nullptr) {
        for (int k = 0; k < si->Config->SubjectsLen; ++k) f.subjects.emplace_back(si->Config->Subjects[k]);
        f.memory_storage = si->Config->Storage == js_MemoryStorage;
        f.replicas = si->Config->Replicas;
      }
      f.messages = si->State.Msgs;
      f.last_seq = si->State.LastSeq;
      if (si->Cluster != nullptr && si->Cluster->Leader != nullptr) f.leader = si->Cluster->Leader;
      if (si->Cluster != nullptr) {
        for (int k = 0; k < si->Cluster->ReplicasLen; ++k) {
          const jsPeerInfo* peer = si->Cluster->Replicas[k];
          f.current_followers += peer != nullptr && peer->Current && !peer->Offline && peer->Lag == 0 ? 1 : 0;
        }
      }
      jsStreamInfo_Destroy(si);
      return f;
    }
    if (si != nullptr) jsStreamInfo_Destroy(si);
    fail("stream info " + name, s, jerr);
    if (s == NATS_NOT_FOUND || steady::now() >= deadline) return std::nullopt;
    nap(250ms);
  }
  return std::nullopt;
}

bool nats_client::wait_stream_current(const std::string& name, std::size_t followers, millis timeout) {
  const auto deadline = steady::now() + timeout;
  std::optional<stream_facts> f;
  for (int attempt = 0; attempt < max_polls; ++attempt) {
    f = stream_info(name, millis{5'000});
    if (f && !f->leader.empty() && f->current_followers >= followers) return true;
    if (steady::now() >= deadline) break;
    nap(100ms);
  }
  if (f) {
    error_ = "stream " + name + ": leader '" + f->leader + "', " + std::to_string(f->current_followers) + " of " +
             std::to_string(followers) + " followers current";
  }
  return false;
}

std::optional<std::uint64_t> nats_client::js_publish(const std::string& subject, const std::string& data,
                                                     millis timeout) {
  if (js_ == nullptr) {
    fail("js_publish without a connection", NATS_CONNECTION_CLOSED);
    return std::nullopt;
  }
  const auto deadline = steady::now() + timeout;
  for (int attempt = 0; attempt < max_polls; ++attempt) {
    jsPubAck* ack = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5'000;
    const natsStatus s =
        js_Publish(&ack, js_, subject.c_str(), data.data(), static_cast<int>(data.size()), &po, &jerr);
    if (s == NATS_OK && ack != nullptr) {
      const std::uint64_t seq = ack->Sequence;
      jsPubAck_Destroy(ack);
      return seq;
    }
    if (ack != nullptr) jsPubAck_Destroy(ack);
    fail("publish to " + subject, s, jerr);
    if (steady::now() >= deadline) return std::nullopt;
    nap(250ms);
  }
  return std::nullopt;
}

bool nats_client::publish(const std::string& subject, const std::string& data) {
  if (nc_ == nullptr) return fail("publish without a connection", NATS_CONNECTION_CLOSED);
  natsStatus s = natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size()));
  if (s == NATS_OK) s = natsConnection_FlushTimeout(nc_, 5'000);
  if (s != NATS_OK) return fail("publish to " + subject, s);
  return true;
}

}  // namespace mles::test
