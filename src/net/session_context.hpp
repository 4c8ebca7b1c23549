// What every connection shares: the hub, the authenticator, limits and timings, counters, and
// the web side. Owned by app::server; immutable after start except the atomic counters.
#pragma once

#include "http/challenge_tokens.hpp"
#include "http/file_server.hpp"
#include "http/forwarded.hpp"
#include "http/proxy_client.hpp"
#include "http/proxy_rules.hpp"
#include "hub/hub.hpp"
#include "net/admission.hpp"
#include "net/error.hpp"
#include "net/rate_limiter.hpp"
#include "proto/auth.hpp"

#include <array>
#include <cassert>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace mles::net {

// The HTTP phase's bounds (filled from app::config).
struct http_settings {
  std::size_t max_request_head = 16 * 1024;    // request line + headers; over it: 431
  std::size_t max_request_body = 1024 * 1024;  // over it: 413
  std::size_t max_pipelined = 64 * 1024;       // bytes buffered while a response is busy
  std::size_t file_chunk = 256 * 1024;         // streamed body chunk
  std::uint64_t small_body = 64 * 1024;        // plain bodies up to this go out with the head
  http::proxy_limits proxy;                    // --proxy exchanges
};

struct session_settings {
  std::size_t max_message = 16u << 20;
  std::size_t max_queue = 4u << 20;
  // A join frame is a few short strings: an unauthenticated client may not make the server
  // buffer a whole max_message before it has joined. Larger: close 1009.
  std::size_t max_join_frame = 64 * 1024;
  std::chrono::milliseconds ping_interval{24'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds join_timeout{10'000};
  std::chrono::milliseconds close_timeout{5'000};
  // A message (or request body) must arrive whole within this of its first byte.
  std::chrono::milliseconds message_timeout{60'000};
  // Over all connections: bytes held for partly received messages and request bodies; a
  // connection that would go over it is closed with 1013 (HTTP: 503). 0: unbounded.
  std::size_t max_inflight = 0;
  // The server runs one event loop: frames never cross threads (cheaper reference counts).
  bool single_loop = false;
  // Each loop batches the plain sends of a flush pass through io_uring (--no-io-uring: off).
  bool batch_sends = true;
  http_settings http;
  // Peer mode (links between servers of this project): answer an upgrade's Mles-Peer header.
  bool peer_mode = true;
  std::string server_id;  // this server's id in the peer mode (Mles-Peer: 1; id=...)
};

struct server_counters {
  std::atomic<std::size_t> sessions{0};
  std::atomic<std::uint64_t> slow_consumer_closes{0};
  // Bytes held now for partly received messages and request bodies (session_settings::max_inflight).
  std::atomic<std::size_t> inflight_bytes{0};
  // HTTP requests refused at their headers: a body where the route takes none (413), or a
  // body over the in-flight budget (503).
  std::atomic<std::uint64_t> bodies_refused{0};
  // Connections ended, per reason (net::errc).
  std::array<std::atomic<std::uint64_t>, errc_count> ends{};
  // Admission (net/admission.hpp): connections accepted by the listeners and not yet ended
  // (outbound peer links are not counted), TLS handshakes in progress, refusals per cause.
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> handshakes{0};
  std::array<std::atomic<std::uint64_t>, refusal_count> refused{};
  // Metrics (--metrics): joined client sessions now, connections dropped by --rate-limit,
  // HTTP responses by status code (index = status, 100..599; 0: anything else).
  std::atomic<std::int64_t> joined{0};
  std::atomic<std::uint64_t> rate_limited{0};
  std::array<std::atomic<std::uint64_t>, 600> http_status{};
  void count_http_status(unsigned status) noexcept {
    http_status[status >= 100 && status < 600 ? status : 0].fetch_add(1, std::memory_order_relaxed);
  }
};

// Cluster mode (src/cluster): a join passes the cluster before it enters the hub. The gate
// brings the channel's history in from the cluster's store (so the hub replays it) and claims
// (uid, channel) cluster-wide (one session per uid and channel on all servers).
enum class admission : std::uint8_t {
  claimed,    // admitted, and the uid is claimed for this session: release() it at the end
  unclaimed,  // admitted without a claim (a peer session, or the cluster is unreachable)
  taken,      // the uid is joined to the channel on another server: refuse (duplicate uid)
};
class join_gate {
 public:
  // uid empty: no claim (a peer session). done exactly once, from any thread, without locks
  // held by the caller; the session posts the result to its own loop.
  virtual void admit(const std::string& channel, const std::string& uid, std::function<void(admission)> done) = 0;
  // A session admitted with admission::claimed has ended. Any thread.
  virtual void release(const std::string& channel, const std::string& uid) = 0;

 protected:
  ~join_gate() = default;
};

struct session_context {
  hub::hub& hub;
  const proto::authenticator& auth;
  session_settings settings;
  server_counters& counters;
  http::file_server* web = nullptr;  // static files; null: every plain request gets 404
  const http::proxy_table* proxies = nullptr;  // --proxy rules; null or empty: none
  const http::challenge_tokens* acme_tokens = nullptr;  // ACME HTTP-01 answers being served
  std::uint16_t https_port = 443;    // for --redirect targets (the bound TLS port)
  // Client addresses behind a load balancer (README, "Behind a load balancer").
  const http::cidr_set* trusted_proxies = nullptr;  // --trusted-proxy; null: none
  // --rate-limit for addresses learnt after accept (PROXY header, X-Forwarded-For); null: off.
  shared_rate_limiter* late_rate_limit = nullptr;
  join_gate* gate = nullptr;  // cluster mode (--nats); null: joins go straight to the hub
};

// One connection's share of the server's in-flight bytes (server_counters::inflight_bytes,
// bounded by session_settings::max_inflight; both from the context passed to each call:
// every session keeps one of these, so it keeps no reference of its own): what it holds for
// a message or a request body being received. The holder gives it back (shrink_to(0, ctx))
// when it goes; the destructor checks it did.
class inflight_charge {
 public:
  inflight_charge() noexcept = default;
  ~inflight_charge() { assert(held_ == 0 && "an inflight charge was not given back"); }
  inflight_charge(const inflight_charge&) = delete;
  inflight_charge& operator=(const inflight_charge&) = delete;

  // Holds `bytes` in all; false (nothing changed) when that would take the total over
  // --max-inflight (0 is unbounded).
  bool grow_to(std::size_t bytes, const session_context& ctx) noexcept {
    if (bytes <= held_) return true;
    const std::size_t more = bytes - held_;
    const std::size_t budget = ctx.settings.max_inflight;
    auto& total = ctx.counters.inflight_bytes;
    std::size_t now = total.load(std::memory_order_relaxed);
    do {
      if (budget != 0 && now + more > budget) return false;
    } while (!total.compare_exchange_weak(now, now + more, std::memory_order_relaxed));
    held_ = bytes;
    return true;
  }
  void shrink_to(std::size_t bytes, const session_context& ctx) noexcept {
    if (bytes >= held_) return;
    ctx.counters.inflight_bytes.fetch_sub(held_ - bytes, std::memory_order_relaxed);
    held_ = bytes;
  }
  std::size_t held() const noexcept { return held_; }

 private:
  std::size_t held_ = 0;
};

}  // namespace mles::net
