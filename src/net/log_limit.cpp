// log_limit: the two log rate limiters and the thread's JSON log fields.
#include "net/log_limit.hpp"

#include <spdlog/spdlog.h>

namespace mles::net {

namespace {
thread_local const log_fields* current_fields = nullptr;
}  // namespace

bool log_limiter::allow(int level) {
  if (!spdlog::should_log(static_cast<spdlog::level::level_enum>(level))) return false;
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t report = 0;
  bool ok = false;
  {
    std::lock_guard lock(mutex_);
    if (now - window_ >= std::chrono::seconds(1)) {
      window_ = now;
      in_window_ = 0;
      report = suppressed_;
      suppressed_ = 0;
    }
    if (in_window_ < per_second_.load(std::memory_order_relaxed)) {
      ++in_window_;
      ok = true;
    } else {
      ++suppressed_;
      suppressed_total_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (report) spdlog::info("suppressed {} {} line(s) (over {} a second)", report, what_, per_second_.load());
  return ok;
}

void log_limiter::flush() {
  std::uint64_t report = 0;
  {
    std::lock_guard lock(mutex_);
    report = suppressed_;
    suppressed_ = 0;
  }
  if (report) spdlog::info("suppressed {} {} line(s) (over {} a second)", report, what_, per_second_.load());
}

log_limiter& session_lines() noexcept {
  static log_limiter l("session", 20);
  return l;
}

log_limiter& problem_lines() noexcept {
  static log_limiter l("problem", 20);
  return l;
}

log_fields::log_fields(std::initializer_list<log_field> fields) noexcept : outer_(current_fields) {
  for (const auto& f : fields) {
    if (count_ == max_fields) break;
    fields_[count_++] = f;
  }
  current_fields = this;
}

log_fields::~log_fields() { current_fields = outer_; }

const log_fields* log_fields::innermost() noexcept { return current_fields; }

}  // namespace mles::net
