// Admission control at the listeners: the connection and pending-handshake caps (counted
// slots), the descriptor budget (RLIMIT_NOFILE and the default --max-connections), refusals
// counted by cause and warned at most once a minute, and the at-once refusal of an accepted
// socket (a 503 on plain HTTP, a reset on TLS).
// Thread-safety: counted_slot and note_refusal from any thread (relaxed atomics); the rest
// is stateless.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mles::net {

struct server_counters;

// One unit of a counted resource (an open connection, a TLS handshake in progress): taken by
// the listener at accept, given back when released or destroyed. Move-only.
class counted_slot {
 public:
  counted_slot() noexcept = default;
  explicit counted_slot(std::atomic<std::size_t>& counter) noexcept : counter_(&counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  counted_slot(counted_slot&& o) noexcept : counter_(o.counter_) { o.counter_ = nullptr; }
  counted_slot& operator=(counted_slot&& o) noexcept {
    if (this != &o) {
      release();
      counter_ = o.counter_;
      o.counter_ = nullptr;
    }
    return *this;
  }
  counted_slot(const counted_slot&) = delete;
  counted_slot& operator=(const counted_slot&) = delete;
  ~counted_slot() { release(); }
  void release() noexcept {
    if (counter_) counter_->fetch_sub(1, std::memory_order_relaxed);
    counter_ = nullptr;
  }
  bool held() const noexcept { return counter_ != nullptr; }
  // Gives up the slot without releasing it: the caller now gives it back itself (a
  // connection keeps one bit for it, not a pointer). Returns the counter (null: none held).
  std::atomic<std::size_t>* take() noexcept {
    auto* c = counter_;
    counter_ = nullptr;
    return c;
  }

 private:
  std::atomic<std::size_t>* counter_ = nullptr;
};

// Why a connection was refused before it was served (index into server_counters::refused).
enum class refusal : std::uint8_t {
  connection_cap,     // --max-connections reached
  handshake_cap,      // --max-handshakes TLS handshakes already in progress
  out_of_descriptors, // accept failed with EMFILE/ENFILE: accepted on the spare and closed
  proxy_header,       // --proxy-protocol: no valid PROXY header in time
};
inline constexpr std::size_t refusal_count = 4;

std::string_view refusal_name(refusal r) noexcept;

// Counts a refusal and warns at most once a minute per cause, with the count since the last
// warning.
void note_refusal(server_counters& counters, refusal why, std::string_view detail = {});

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit then in force.
std::uint64_t raise_open_file_limit() noexcept;

// Descriptors kept out of --max-connections' default: standard streams and log, the
// listeners and their spare descriptors, the history store, the metrics listener, ACME and
// --proxy upstream connections (fixed part); five per event loop (Asio's epoll, wake-up and
// timer descriptors, the loop's own epoll set of its connections and its io_uring); the --filelimit files
// and one per --peer link.
std::size_t descriptor_reserve(std::size_t file_limit, std::size_t peers, std::size_t loops) noexcept;

// The default --max-connections for an open-file limit: the limit minus the reserve, but at
// least half the limit (and at least 1).
std::size_t default_max_connections(std::uint64_t open_file_limit, std::size_t reserve) noexcept;

// Refuses an accepted descriptor at once and closes it: on a plain HTTP listener a minimal
// 503 with Retry-After and Connection: close in one non-blocking write (never waits), what
// the client already sent is read and dropped (bounded) so the close is a FIN; on a TLS
// listener an RST (SO_LINGER 0): no TLS work, no TIME_WAIT kept by the server.
void refuse_at_once(int fd, bool plain_http) noexcept;

}  // namespace mles::net
