// Shared vocabulary of the mles-bench modes: clock, options common to every mode, the
// fatal-error latch the loops report into, deadline waits, and result output.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>

namespace mles::bench {

using clock_ns = std::int64_t;  // steady_clock nanoseconds

inline clock_ns now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline constexpr clock_ns ms_ns(std::int64_t ms) noexcept { return ms * 1'000'000; }
inline constexpr clock_ns s_ns(double s) noexcept { return static_cast<clock_ns>(s * 1e9); }

// Exit codes of mles-bench.
inline constexpr int exit_ok = 0;
inline constexpr int exit_integrity = 1;  // lost, duplicated, reordered or misrouted messages
inline constexpr int exit_usage = 2;      // bad command line
inline constexpr int exit_failure = 3;    // server misbehaved, connection failed, deadline passed

// Where to connect, resolved once.
struct endpoint {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string text;  // "127.0.0.1:8080"
};

struct common_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  bool tls = false;
  unsigned threads = 1;
  bool json = false;
  unsigned connect_concurrency = 256;  // connections in connect/TLS/upgrade at once, whole bench
  double connect_timeout_s = 0;        // 0: 10 s + 1 s per 1000 connections
  std::string host_header;             // empty: "localhost:<port>", as a browser sends it
  bool io_uring = true;                // fanout: plain reads of a round batched through io_uring
};

// First fatal error wins; loops set it, the main thread polls it. Thread-safe.
class fatal_latch {
 public:
  void set(std::string what) {
    std::lock_guard lock(mutex_);
    if (!failed_.load(std::memory_order_relaxed)) {
      what_ = std::move(what);
      failed_.store(true, std::memory_order_release);
    }
  }
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  std::string what() const {
    std::lock_guard lock(mutex_);
    return what_;
  }

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> failed_{false};
  std::string what_;
};

// Thrown by the main thread when a wait fails; main prints it and exits with exit_failure.
struct bench_failure {
  std::string what;
};

// Polls done() every millisecond until it holds. Throws bench_failure if the latch trips or
// the deadline passes (message: "timeout after Xs waiting for <what>: <progress()>").
void wait_for(const fatal_latch& latch, std::string_view what, clock_ns deadline,
              const std::function<bool()>& done,
              const std::function<std::string()>& progress = {});

// Resolves host (numeric IPv4/IPv6 or "localhost") and refuses non-loopback addresses:
// the bench is a loopback load generator. Throws bench_failure.
endpoint resolve_loopback(const std::string& host, std::uint16_t port);

// Client TLS context: no certificate verification (test certificates), TLS 1.2+.
SSL_CTX* make_client_tls_context();

// A short random hex tag so that each run uses fresh channel names (the server keeps
// history between runs).
std::string run_nonce();

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
std::uint64_t raise_open_file_limit();

// CPU seconds (user + system) this process has used, all threads.
double own_cpu_seconds() noexcept;
// CPU seconds process pid has used (/proc/PID/stat, clock-tick resolution); -1 if unreadable.
double process_cpu_seconds(int pid);

// Ordered key/value result; printed for humans and, with --json, as one JSON line.
class result_record {
 public:
  void add(std::string key, double value, int decimals = 0);
  void add(std::string key, std::uint64_t value);
  void add(std::string key, std::string value);
  std::string json_line() const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;  // value already JSON-encoded
};

// "1.23 M" style for rates.
std::string human_rate(double per_s);

}  // namespace mles::bench
