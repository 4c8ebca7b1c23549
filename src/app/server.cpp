// server: wiring of config → TLS contexts, hub, event loops and listener; graceful stop.
#include "app/server.hpp"

#include "http/file_server.hpp"
#include "http/proxy_rules.hpp"
#include "app/acme_manager.hpp"
#include "app/durable_history.hpp"
#include "app/logging.hpp"
#include "app/metrics_http.hpp"
#include "app/server_metrics.hpp"
#include "http/challenge_tokens.hpp"
#include "hub/hub.hpp"
#include "net/event_loop.hpp"
#include "net/listener.hpp"
#include "net/log_limit.hpp"
#include "net/session_context.hpp"
#include "net/tls_context.hpp"
#include "peer/federation.hpp"
#include "cluster/backplane.hpp"
#include "proto/auth.hpp"
#include "proto/peer_envelope.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/rand.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <unistd.h>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace mles::app {

namespace {

std::size_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : std::size_t{4} << 30;
}

// Figures of the memory bounds already reported: a warning names what changed since.
struct bounds_report {
  hub::budget_stats hub;
  std::uint64_t inflight_refused = 0;
  std::uint64_t bodies_refused = 0;
  std::chrono::steady_clock::time_point next{};
};

// At most once a minute: what the memory bounds evicted or refused since the last warning.
void report_bounds(bounds_report& last, const hub::hub& h, const hub::hub_limits& limits,
                   const net::server_counters& counters, std::chrono::steady_clock::time_point now) {
  if (now < last.next) return;
  const hub::budget_stats b = h.budget();
  const std::uint64_t inflight = counters.ends[static_cast<std::size_t>(net::errc::inflight_budget)].load();
  const std::uint64_t bodies = counters.bodies_refused.load();
  const std::uint64_t messages = b.evicted_messages - last.hub.evicted_messages;
  const std::uint64_t channels = b.evicted_channels - last.hub.evicted_channels;
  const std::uint64_t refused = b.refused_channels - last.hub.refused_channels;
  const std::uint64_t capped = b.capped_channels - last.hub.capped_channels;
  if (messages == 0 && channels == 0 && refused == 0 && capped == 0 && inflight == last.inflight_refused &&
      bodies == last.bodies_refused)
    return;
  spdlog::warn("memory bounds: {} messages and {} idle channels evicted over --history-total ({} of {} bytes held), "
               "{} idle channels forgotten and {} joins refused at --max-channels ({}), "
               "{} messages refused over --max-inflight, {} request bodies refused",
               messages, channels, b.history_cost, limits.history_total, capped, refused, limits.max_channels,
               inflight - last.inflight_refused, bodies - last.bodies_refused);
  last.hub = b;
  last.inflight_refused = inflight;
  last.bodies_refused = bodies;
  last.next = now + std::chrono::minutes(1);
}

net::session_settings settings_of(const config& c) {
  net::session_settings s;
  s.max_message = c.max_message;
  s.max_queue = c.max_queue;
  s.ping_interval = c.ping_interval;
  s.handshake_timeout = c.handshake_timeout;
  s.join_timeout = c.join_timeout;
  s.close_timeout = c.close_timeout;
  s.message_timeout = c.message_timeout;
  s.max_inflight = c.max_inflight ? *c.max_inflight : default_max_inflight(c.max_message);
  // Cluster mode delivers from NATS threads: frames and channels are shared across threads.
  s.single_loop = c.nats_urls.empty() &&
                  (c.threads == 1 || (c.threads == 0 && std::thread::hardware_concurrency() <= 1));
  s.max_join_frame = c.max_join_frame;
  s.batch_sends = c.io_uring;
  s.http.max_request_head = c.http_max_request_head;
  s.http.max_request_body = c.http_max_request_body;
  s.http.max_pipelined = c.http_max_pipelined;
  s.http.proxy.connect_timeout = c.proxy_connect_timeout;
  s.http.proxy.response_timeout = c.proxy_response_timeout;
  s.http.proxy.max_response_bytes = c.proxy_max_response;
  s.peer_mode = c.peer_mode;
  s.server_id = c.server_id;
  return s;
}

hub::hub_limits hub_limits_of(const config& c) {
  hub::hub_limits l;
  l.history_limit = c.history_limit;
  l.history_bytes = c.history_bytes;
  l.one_thread = settings_of(c).single_loop;
  l.dedup_hashes = c.dedup_hashes;
  // Every message still in a history must stay inside the window (a peer replays them).
  l.dedup_window = std::max(c.dedup_window, c.history_limit);
  l.dedup_origins = c.dedup_origins;
  l.history_total = c.history_total ? *c.history_total : default_history_total();
  l.max_channels = c.max_channels;
  l.sequence_floor = !c.nats_urls.empty();
  return l;
}

// A number drawn once per run: a restarted server's messages are told apart from the last
// run's by it (their sequence numbers start at 1 again).
std::uint64_t random_instance() {
  std::uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1)
    throw std::runtime_error("cannot draw a random instance number (OpenSSL RAND_bytes failed)");
  return v;
}

std::unique_ptr<http::proxy_table> make_proxies(const config& c) {
  if (c.proxies.empty()) return nullptr;
  auto table = std::make_unique<http::proxy_table>();
  for (const auto& rule : c.proxies) {
    if (!table->add(rule.prefix, rule.upstream))
      throw std::runtime_error("bad --proxy " + rule.prefix + "=" + rule.upstream + ": expected prefix=http://host:port");
  }
  return table;
}

std::unique_ptr<net::tls_registry> make_tls(const config& c) {
  switch (c.tls) {
    case tls_mode::none: return nullptr;
    case tls_mode::files:
      return std::make_unique<net::tls_registry>(net::make_server_context_from_files(c.tls_cert, c.tls_key));
    case tls_mode::self_signed:
      return std::make_unique<net::tls_registry>(net::make_self_signed_context(c.domains));
    case tls_mode::acme:
      // Until the CA's certificate arrives (or loads from --cache), a temporary self-signed one.
      return std::make_unique<net::tls_registry>(net::make_self_signed_context(c.domains));
  }
  throw std::runtime_error("unknown TLS mode");
}

// Every collect period, on loop 0: what the hub's changed channels stored goes to the store.
void arm_history_collection(durable_history& history, hub::hub& h, boost::asio::steady_timer& timer) {
  timer.expires_after(history.collect_period());
  timer.async_wait([&history, &h, &timer](const boost::system::error_code& ec) {
    if (ec) return;
    history.collect_from(h);
    arm_history_collection(history, h, timer);
  });
}

// Operators see a typo in --domains or --wwwroot at start, not as 404s later.
void warn_missing_domain_folders(const config& c) {
  for (const auto& d : c.domains) {
    const auto dir = c.wwwroot / d;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      spdlog::warn("static files: {} is not a directory: domain {} will answer 404", dir.string(), d);
    else if (::access(dir.c_str(), R_OK | X_OK) != 0)
      spdlog::warn("static files: {} is not readable: domain {} will answer 404", dir.string(), d);
  }
}

// What the per-interval log summary counts: refusals, timeouts and errors, by reason.
constexpr std::array summary_reasons{
    net::errc::join_refused,    net::errc::join_timeout,   net::errc::tls_handshake_failed,
    net::errc::tls_handshake_timeout, net::errc::http_refused, net::errc::http_timeout,
    net::errc::http_stalled,    net::errc::ping_timeout,   net::errc::slow_consumer,
    net::errc::protocol_error,  net::errc::invalid_utf8,   net::errc::message_too_big,
    net::errc::too_many_pipelined, net::errc::close_timeout};

struct log_summary {
  std::array<std::uint64_t, net::errc_count> ends{};
  std::uint64_t rate_limited = 0;
};

// One info line per interval with what changed ("last 60 s: 12 join refused, 3 TLS handshake
// failed"); nothing when nothing happened. Also reports the lines the log limits held back.
void arm_log_summary(const net::server_counters& counters, std::chrono::milliseconds every,
                     boost::asio::steady_timer& timer, std::shared_ptr<log_summary> last) {
  timer.expires_after(every);
  timer.async_wait([&counters, every, &timer, last](const boost::system::error_code& ec) {
    if (ec) return;
    net::session_lines().flush();
    net::problem_lines().flush();
    std::string line;
    auto add = [&line](std::uint64_t n, std::string_view what) {
      if (n == 0) return;
      line += line.empty() ? "" : ", ";
      line += std::to_string(n) + " " + std::string(what);
    };
    for (const auto e : summary_reasons) {
      const auto i = static_cast<std::size_t>(e);
      const auto now = counters.ends[i].load(std::memory_order_relaxed);
      add(now - last->ends[i], net::make_error_code(e).message());
      last->ends[i] = now;
    }
    const auto limited = counters.rate_limited.load(std::memory_order_relaxed);
    add(limited - last->rate_limited, "over the rate limit");
    last->rate_limited = limited;
    if (!line.empty())
      spdlog::info("last {} s: {}", std::chrono::duration_cast<std::chrono::seconds>(every).count(), line);
    arm_log_summary(counters, every, timer, last);
  });
}

std::string acme_directory_of(const config& c) {
  if (!c.acme_directory.empty()) return c.acme_directory;
  return c.staging ? "https://acme-staging-v02.api.letsencrypt.org/directory"
                   : "https://acme-v02.api.letsencrypt.org/directory";
}

}  // namespace

std::size_t default_history_total() { return std::min<std::size_t>(physical_memory() / 4, std::size_t{1} << 30); }

std::size_t default_max_inflight(std::size_t max_message) {
  return std::max(max_message, std::min<std::size_t>(physical_memory() / 8, std::size_t{256} << 20));
}

// The hub has one interest observer; with --peer and --nats both need to hear.
class interest_fanout final : public hub::interest_observer {
 public:
  explicit interest_fanout(std::vector<hub::interest_observer*> all) : all_(std::move(all)) {}
  void on_interest(const std::string& channel, bool has_clients) override {
    for (auto* o : all_) o->on_interest(channel, has_clients);
  }

 private:
  std::vector<hub::interest_observer*> all_;
};

struct server::impl {
  explicit impl(config c)
      : cfg(std::move(c)), auth(cfg.mles_key),
        hub(hub_limits_of(cfg)),
        web(cfg.wwwroot, cfg.domains, cfg.file_limit, cfg.compression_cache_mb << 20),
        proxies(make_proxies(cfg)),
        ctx{hub, auth, settings_of(cfg), counters, &web, proxies.get(), &acme_tokens}, tls(make_tls(cfg)) {}

  config cfg;
  proto::authenticator auth;
  hub::hub hub;
  net::server_counters counters;
  http::file_server web;
  std::unique_ptr<http::proxy_table> proxies;
  http::challenge_tokens acme_tokens;
  net::session_context ctx;
  std::unique_ptr<net::tls_registry> tls;
  std::vector<std::unique_ptr<net::event_loop>> loops;
  std::unique_ptr<net::listener> listener;
  std::unique_ptr<net::listener> redirect_listener;  // --redirect: plain HTTP → HTTPS
  std::unique_ptr<acme_manager> acme;                // default TLS mode: certificates from a CA
  std::unique_ptr<peer::federation> peers;           // --peer: links to peer servers
  std::unique_ptr<cluster::backplane> cluster;       // --nats: cluster mode
  std::unique_ptr<interest_fanout> observers;        // --peer and --nats: both hear of interest
  std::unique_ptr<durable_history> history;          // --history-dir
  std::unique_ptr<boost::asio::steady_timer> history_timer;  // on loop 0: collects for the store
  std::shared_ptr<peer::link_states> link_states;            // --peer: links per state (metrics)
  metrics_registry metrics;                                  // --metrics: what /metrics shows
  std::unique_ptr<metrics_http> metrics_listener;            // --metrics, on loop 0
  std::unique_ptr<boost::asio::steady_timer> log_summary_timer;  // on loop 0: counts by reason at info
  std::atomic<bool> serving{false};                          // listening and not stopping (/readyz)
  const std::chrono::system_clock::time_point created = std::chrono::system_clock::now();
  std::uint16_t port = 0;
  http::cidr_set trusted_proxies;                            // --trusted-proxy
  std::unique_ptr<net::shared_rate_limiter> late_rate_limit;  // --rate-limit after PROXY / X-Forwarded-For

  std::mutex mutex;
  std::condition_variable cv;
  bool started = false;
  bool stopping = false;
  bool stopped = false;
};

server::server(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

server::~server() { stop(); }

void server::start() {
  auto& m = *impl_;
  const config& c = m.cfg;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(c.bind, ec);
  if (ec) throw std::runtime_error("bad --bind address '" + c.bind + "': " + ec.message());

  unsigned threads = c.threads ? c.threads : std::max(1u, std::thread::hardware_concurrency());
  warn_missing_domain_folders(c);
  net::session_lines().set_rate(c.log_lines_per_second);
  net::problem_lines().set_rate(c.log_lines_per_second);
  // The sweep drives deadlines and pings: fine enough for the shortest timing, at most 1 s.
  auto shortest = std::min({c.ping_interval, c.handshake_timeout, c.join_timeout, c.close_timeout});
  auto sweep = std::clamp<std::chrono::steady_clock::duration>(shortest / 4, std::chrono::milliseconds(10),
                                                               std::chrono::seconds(1));
  if (!c.trusted_proxies.empty()) {
    std::vector<http::cidr> ranges;
    for (const auto& text : c.trusted_proxies) {
      auto range = http::parse_cidr(text);
      if (!range) throw std::runtime_error("bad --trusted-proxy " + text + ": not an IPv4 or IPv6 CIDR");
      ranges.push_back(*range);
    }
    m.trusted_proxies = http::cidr_set(std::move(ranges));
    m.ctx.trusted_proxies = &m.trusted_proxies;
  }
  if (c.rate_limit && (c.proxy_protocol || !c.trusted_proxies.empty())) {
    m.late_rate_limit = std::make_unique<net::shared_rate_limiter>(*c.rate_limit);
    m.ctx.late_rate_limit = m.late_rate_limit.get();
  }
  for (unsigned i = 0; i < threads; ++i) m.loops.push_back(std::make_unique<net::event_loop>(m.ctx, i, sweep));
  std::vector<net::event_loop*> raw;
  for (auto& l : m.loops) raw.push_back(l.get());
  m.listener = std::make_unique<net::listener>(*m.loops[0], raw, boost::asio::ip::tcp::endpoint(address, c.port),
                                               m.tls.get(), c.rate_limit, net::listener_role::main, c.takeover);
  m.port = m.listener->local_endpoint().port();
  m.ctx.https_port = m.port;
  // The id this server gives itself on links; the default is stable across restarts.
  std::string server_id = c.server_id.empty() ? c.domains.front() + ":" + std::to_string(m.port) : c.server_id;
  if (!proto::is_valid_server_id(server_id)) {
    throw std::runtime_error("server id '" + server_id + "' (from the first domain and the port) is not usable: "
                             "give --server-id");
  }
  m.ctx.settings.server_id = server_id;
  const hub::origin self{server_id, random_instance()};
  m.hub.set_self(self);
  if (c.history_dir) {
    store::history_db_options ho;
    ho.dir = *c.history_dir;
    ho.sync_interval = c.history_sync;
    ho.limit = c.history_limit;
    ho.max_bytes = c.history_bytes;
    ho.ttl = std::chrono::duration_cast<std::chrono::seconds>(c.channel_ttl);
    ho.max_queued_bytes = c.history_queue_bytes;
    ho.retry_interval = c.history_retry;
    const auto t0 = std::chrono::steady_clock::now();
    m.history = std::make_unique<durable_history>(std::move(ho), self);
    const std::size_t restored =
        m.history->restore_into(m.hub, m.ctx.settings.single_loop ? hub::sharing::one_thread : hub::sharing::threads);
    m.hub.set_history_store(m.history.get());
    spdlog::info("history: {} messages in {} channels restored from {} in {} ms", restored, m.hub.channel_count(),
                 c.history_dir->string(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  }
  if (!c.peers.empty()) {
    std::vector<peer::peer_url> urls;
    for (const auto& text : c.peers) {
      std::string why;
      auto u = peer::parse_peer_url(text, why);
      if (!u) throw std::runtime_error("bad --peer " + text + ": " + why);
      urls.push_back(std::move(*u));
    }
    peer::link_settings ls;
    ls.tls = net::make_client_context(c.peer_ca);
    ls.server_id = server_id;
    ls.peer_mode = c.peer_mode;
    ls.auth = &m.auth;
    ls.linger = c.peer_linger;
    ls.retry_initial = c.peer_retry_initial;
    ls.retry_max = c.peer_retry_max;
    ls.connect_timeout = c.peer_connect_timeout;
    ls.max_message = c.max_message;
    m.link_states = std::make_shared<peer::link_states>();
    ls.states = m.link_states;
    m.peers = std::make_unique<peer::federation>(std::move(urls), std::move(ls), raw, *m.loops[0]);
    m.hub.set_observer(m.peers.get());
  }
  if (!c.nats_urls.empty()) {
    cluster::settings cs;
    cs.urls = c.nats_urls;
    cs.creds = c.nats_creds;
    cs.ca = c.nats_ca;
    cs.replicas = c.nats_replicas;
    cs.prefix = c.nats_prefix;
    cs.buffer_bytes = c.nats_buffer;
    cs.session_ttl = c.nats_session_ttl;
    cs.linger = c.peer_linger;
    cs.history_limit = c.history_limit;
    cs.stream_bytes = c.history_total ? *c.history_total : 0;  // JetStream reserves it on every node: only when asked
    cs.max_message = std::max(c.max_message, c.max_join_frame);
    cs.max_age = std::chrono::duration_cast<std::chrono::seconds>(c.channel_ttl);
    cs.server_id = server_id;
    m.cluster = std::make_unique<cluster::backplane>(std::move(cs), m.hub);
    m.cluster->start();  // throws when the stream's settings conflict
    m.ctx.gate = m.cluster.get();
    if (m.peers) {
      m.observers = std::make_unique<interest_fanout>(std::vector<hub::interest_observer*>{m.peers.get(), m.cluster.get()});
      m.hub.set_observer(m.observers.get());
    } else {
      m.hub.set_observer(m.cluster.get());
    }
  }
  if (c.redirect) {
    m.redirect_listener = std::make_unique<net::listener>(*m.loops[0], raw, boost::asio::ip::tcp::endpoint(address, c.http_port),
                                                          nullptr, c.rate_limit, net::listener_role::redirect,
                                                          c.takeover);
  }
  {
    // Admission caps (README, "Connection caps"): the soft open-file limit goes up to the hard
    // one; the default connection cap leaves a reserve of descriptors for everything else.
    const std::uint64_t nofile = net::raise_open_file_limit();
    net::listener_limits limits;
    limits.max_connections = c.max_connections ? c.max_connections
                                               : net::default_max_connections(
                                                     nofile, net::descriptor_reserve(c.file_limit, c.peers.size(), m.loops.size()));
    limits.max_handshakes = c.max_handshakes;
    limits.proxy_protocol = c.proxy_protocol;
    spdlog::info("open-file limit {}: at most {} connections, {} TLS handshakes in progress", nofile,
                 limits.max_connections, limits.max_handshakes);
    m.listener->set_limits(limits);
    if (m.redirect_listener) m.redirect_listener->set_limits(limits);
  }

  if (c.tls == tls_mode::acme) {
    acme_settings as;
    as.domains = c.domains;
    as.emails = c.emails;
    as.cache = c.cache;
    as.directory_url = acme_directory_of(c);
    as.ca_file = c.acme_ca_cert;
    as.http01 = c.redirect;
    as.prefer_http01 = c.acme_prefer_http01;
    as.retry_initial = c.acme_retry_initial;
    m.acme = std::make_unique<acme_manager>(std::move(as), *m.tls, m.acme_tokens, m.loops[0]->io().get_executor());
  }
  if (m.history) {
    m.history_timer = std::make_unique<boost::asio::steady_timer>(m.loops[0]->io());
    arm_history_collection(*m.history, m.hub, *m.history_timer);
  }
  m.log_summary_timer = std::make_unique<boost::asio::steady_timer>(m.loops[0]->io());
  arm_log_summary(m.counters, c.log_summary_interval, *m.log_summary_timer, std::make_shared<log_summary>());
  if (c.metrics_port) {
    const auto maddr = boost::asio::ip::make_address(c.metrics_bind, ec);
    if (ec) throw std::runtime_error("bad --metrics address '" + c.metrics_bind + "': " + ec.message());
    metric_sources ms;
    ms.loops = &m.loops;
    ms.counters = &m.counters;
    ms.hub = &m.hub;
    ms.tls = m.tls.get();
    ms.acme = m.acme.get();
    ms.links = m.link_states.get();
    ms.history = m.history.get();
    ms.cluster = m.cluster ? &m.cluster->figures() : nullptr;
    ms.started = m.created;
    ms.max_inflight = m.ctx.settings.max_inflight;
    register_server_metrics(m.metrics, ms);
    metrics_http_limits ml;
    ml.timeout = c.metrics_timeout;
    m.metrics_listener = std::make_unique<metrics_http>(
        m.loops[0]->io(), boost::asio::ip::tcp::endpoint(maddr, *c.metrics_port), m.metrics,
        [&m] { return m.serving.load(std::memory_order_relaxed) && (!m.acme || m.acme->has_certificate()); }, ml);
  }
  // Channel expiry (30 days without traffic) runs on loop 0, at most once a minute.
  auto next_expiry = std::make_shared<std::chrono::steady_clock::time_point>();
  auto bounds = std::make_shared<bounds_report>();
  const auto ttl = std::chrono::duration_cast<std::chrono::steady_clock::duration>(c.channel_ttl);
  m.loops[0]->start([&m, next_expiry, bounds, ttl](std::chrono::steady_clock::time_point now) {
    report_bounds(*bounds, m.hub, m.hub.limits(), m.counters, now);
    if (now < *next_expiry) return;
    *next_expiry = now + std::min<std::chrono::steady_clock::duration>(ttl / 10 + std::chrono::seconds(1),
                                                                       std::chrono::minutes(1));
    if (const auto n = m.hub.expire(now, ttl)) spdlog::info("forgot {} idle channel(s)", n);
  });
  for (std::size_t i = 1; i < m.loops.size(); ++i) m.loops[i]->start();
  if (m.acme) m.acme->start();
  m.listener->start();
  if (m.redirect_listener) m.redirect_listener->start();
  if (m.metrics_listener) m.metrics_listener->start();
  m.serving.store(true, std::memory_order_relaxed);
  {
    std::lock_guard lock(m.mutex);
    m.started = true;
  }
  const auto ep = m.listener->local_endpoint();
  const auto a = ep.address();
  const std::string where = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  // Always printed (whatever the log level): scripts and tests read the port from it. With
  // --log-format json, as JSON objects like every other line.
  const bool json = c.log_format == "json";
  auto announce = [json](const std::string& line) {
    const std::string out = json ? json_log_line(std::chrono::system_clock::now(), spdlog::level::info, line) : line;
    std::fprintf(stderr, "%s\n", out.c_str());
  };
  announce(fmt::format("mles {} listening on {}:{} ({}, {} thread{})", MLES_VERSION, where, ep.port(),
                       m.tls ? "wss/https" : "ws/http, no TLS", threads, threads == 1 ? "" : "s"));
  if (m.redirect_listener)
    announce(fmt::format("mles redirecting http on {}:{} to https", where, m.redirect_listener->local_endpoint().port()));
  if (m.metrics_listener) {
    const auto mep = m.metrics_listener->local_endpoint();
    const std::string mwhere = mep.address().is_v6() ? "[" + mep.address().to_string() + "]" : mep.address().to_string();
    announce(fmt::format("mles metrics on http://{}:{}/metrics", mwhere, mep.port()));
  }
  std::fflush(stderr);
}

std::uint16_t server::port() const { return impl_->port; }

std::uint16_t server::metrics_port() const {
  return impl_->metrics_listener ? impl_->metrics_listener->local_endpoint().port() : 0;
}

std::uint16_t server::redirect_port() const {
  return impl_->redirect_listener ? impl_->redirect_listener->local_endpoint().port() : 0;
}

void server::stop() {
  auto& m = *impl_;
  {
    std::lock_guard lock(m.mutex);
    if (!m.started || m.stopping) return;
    m.stopping = true;
  }
  m.serving.store(false, std::memory_order_relaxed);  // /readyz: 503 while draining
  m.listener->stop();
  if (m.redirect_listener) m.redirect_listener->stop();
  // The listeners accept what is already queued (a --takeover successor gets the new
  // connections) before the sessions are closed: nobody is reset in between.
  const auto drained_by = std::chrono::steady_clock::now() + 2 * net::listener::drain_limit;
  while (std::chrono::steady_clock::now() < drained_by &&
         !(m.listener->closed() && (!m.redirect_listener || m.redirect_listener->closed())))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (m.acme) m.acme->stop();
  if (m.peers) m.peers->stop();
  for (auto& l : m.loops) l->close_all();
  // Wait for the close handshakes, bounded by the shutdown deadline.
  const auto deadline = std::chrono::steady_clock::now() + m.cfg.shutdown_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::size_t open = 0;
    for (auto& l : m.loops) open += l->connection_count();
    if (open == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (m.metrics_listener) m.metrics_listener->stop();
  for (auto& l : m.loops) l->stop();
  for (auto& l : m.loops) l->join();
  m.metrics_listener.reset();  // its sockets belong to loop 0: gone before the loop is
  m.log_summary_timer.reset();
  m.acme.reset();  // its timers and driver belong to loop 0: gone before the loop is
  for (auto& l : m.loops) l->abort_all();
  m.hub.set_observer(nullptr);
  m.peers.reset();  // its links' timers belong to the loops: gone before the loops are
  if (m.cluster) {
    // The sessions are gone (their claims given back): publish what is buffered, leave.
    m.cluster->stop();
    m.ctx.gate = nullptr;
    m.cluster.reset();
  }
  if (m.history) {
    // Nothing published any more (the loops stopped): the last changes are collected and
    // everything queued goes to disk (SIGTERM loses nothing).
    m.history_timer.reset();
    m.history->collect_from(m.hub);
    if (!m.history->flush(std::chrono::seconds(10)))
      spdlog::warn("history: not everything could be written before stopping");
    m.hub.set_history_store(nullptr);
    m.history.reset();
  }
  m.listener.reset();
  m.redirect_listener.reset();
  m.loops.clear();
  {
    std::lock_guard lock(m.mutex);
    m.stopped = true;
  }
  m.cv.notify_all();
}

void server::wait() {
  auto& m = *impl_;
  std::unique_lock lock(m.mutex);
  m.cv.wait(lock, [&] { return m.stopped || !m.started; });
}

bool server::reload_tls() {
  auto& m = *impl_;
  if (m.cfg.tls != tls_mode::files || !m.tls) {
    spdlog::info("reload: no --tls-cert/--tls-key to re-read");
    return false;
  }
  try {
    m.tls->set_fallback(net::make_server_context_from_files(m.cfg.tls_cert, m.cfg.tls_key));
  } catch (const std::exception& e) {
    spdlog::error("reload: {}; still serving the previous certificate", e.what());
    return false;
  }
  spdlog::info("reload: certificate {} and key {} loaded; new connections use them", m.cfg.tls_cert.string(),
               m.cfg.tls_key.string());
  return true;
}

server::stats server::current_stats() const {
  stats s;
  s.sessions = impl_->counters.sessions.load();
  s.channels = impl_->hub.channel_count();
  s.slow_consumer_closes = impl_->counters.slow_consumer_closes.load();
  const auto b = impl_->hub.budget();
  s.history_cost = b.history_cost;
  s.evicted_messages = b.evicted_messages;
  s.evicted_channels = b.evicted_channels + b.capped_channels;
  s.refused_channels = b.refused_channels;
  s.inflight_bytes = impl_->counters.inflight_bytes.load();
  s.inflight_refusals = impl_->counters.ends[static_cast<std::size_t>(net::errc::inflight_budget)].load();
  s.connections = impl_->counters.connections.load();
  static_assert(std::tuple_size_v<decltype(s.refused)> == net::refusal_count);
  for (std::size_t i = 0; i < net::refusal_count; ++i) s.refused[i] = impl_->counters.refused[i].load();
  return s;
}

}  // namespace mles::app
