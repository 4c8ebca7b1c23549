// Log volume under load: per-session lines (connect, join, leave) and problem lines (refused
// joins, TLS handshake failures, HTTP errors) each go through a rate limiter, at most N lines
// a second; what is held back is counted and reported as one line ("suppressed K session
// lines") when the next second starts or at the next flush. And structured fields for the
// JSON log format: a log_fields object on the stack attaches key/value pairs to the lines
// this thread writes while it lives (the text format ignores them).
// Thread-safety: every function may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string_view>

namespace mles::net {

class log_limiter {
 public:
  // what names the lines in the suppression report ("session", "problem").
  log_limiter(const char* what, unsigned per_second) noexcept : what_(what), per_second_(per_second) {}
  log_limiter(const log_limiter&) = delete;
  log_limiter& operator=(const log_limiter&) = delete;

  // True when a line at `level` (spdlog level value) may be written now. False when the
  // logger would drop it anyway, or when this second's quota is used (then it is counted).
  bool allow(int level);
  // Reports what was suppressed and not reported yet (one line at info). Called periodically.
  void flush();
  void set_rate(unsigned per_second) noexcept { per_second_.store(per_second, std::memory_order_relaxed); }
  // Lines held back since the start (for tests and metrics).
  std::uint64_t suppressed_total() const noexcept { return suppressed_total_.load(std::memory_order_relaxed); }

 private:
  const char* what_;
  std::atomic<unsigned> per_second_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point window_{};
  unsigned in_window_ = 0;
  std::uint64_t suppressed_ = 0;  // not reported yet
  std::atomic<std::uint64_t> suppressed_total_{0};
};

// Connect / join / leave lines of sessions.
log_limiter& session_lines() noexcept;
// Refused joins, TLS handshake failures, HTTP errors (the per-minute summary counts them all).
log_limiter& problem_lines() noexcept;

struct log_field {
  std::string_view key;
  std::string_view value;
};

// Fields for the JSON log format, attached to the lines this thread writes while the object
// lives. The views must outlive it. Nested objects add to the outer ones' fields.
class log_fields {
 public:
  log_fields(std::initializer_list<log_field> fields) noexcept;
  ~log_fields();
  log_fields(const log_fields&) = delete;
  log_fields& operator=(const log_fields&) = delete;

  // Every field in force on this thread, outermost first; calls fn(key, value).
  template <class Fn>
  static void for_each(Fn&& fn) {
    visit(innermost(), fn);
  }
  static constexpr std::size_t max_fields = 4;  // more in one object are ignored

 private:
  template <class Fn>
  static void visit(const log_fields* f, Fn& fn) {
    if (!f) return;
    visit(f->outer_, fn);
    for (std::size_t i = 0; i < f->count_; ++i) fn(f->fields_[i].key, f->fields_[i].value);
  }
  static const log_fields* innermost() noexcept;

  std::array<log_field, max_fields> fields_{};
  std::size_t count_ = 0;
  const log_fields* outer_;
};

}  // namespace mles::net
