// admission: counted slots, refusals by cause, the descriptor budget, at-once refusal.
#include "net/admission.hpp"

#include "net/session_context.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mles::net {

namespace {

constexpr auto warn_period = std::chrono::minutes(1);

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Per cause: when the last warning went out (steady ns; 0: never) and the count it reported.
std::array<std::atomic<std::int64_t>, refusal_count> last_warned{};
std::array<std::atomic<std::uint64_t>, refusal_count> count_at_warning{};

constexpr std::string_view refused_503 =
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 20\r\nConnection: close\r\n\r\nserver at capacity\r\n";

}  // namespace

std::string_view refusal_name(refusal r) noexcept {
  switch (r) {
    case refusal::connection_cap: return "at --max-connections";
    case refusal::handshake_cap: return "at --max-handshakes";
    case refusal::out_of_descriptors: return "out of file descriptors";
    case refusal::proxy_header: return "no valid PROXY protocol header";
  }
  return "refused";
}

void note_refusal(server_counters& counters, refusal why, std::string_view detail) {
  const auto i = static_cast<std::size_t>(why);
  const std::uint64_t total = counters.refused[i].fetch_add(1, std::memory_order_relaxed) + 1;
  const std::int64_t now = steady_ns();
  std::int64_t last = last_warned[i].load(std::memory_order_relaxed);
  const std::int64_t period = std::chrono::duration_cast<std::chrono::nanoseconds>(warn_period).count();
  if (last != 0 && now - last < period) return;
  // One thread wins the minute's warning.
  if (!last_warned[i].compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  const std::uint64_t before = count_at_warning[i].exchange(total, std::memory_order_relaxed);
  spdlog::warn("connections refused ({}): {} since the last warning, {} in all{}{}", refusal_name(why),
               total - std::min(before, total), total, detail.empty() ? "" : "; last: ", detail);
}

std::uint64_t raise_open_file_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  if (rl.rlim_cur == RLIM_INFINITY) return std::uint64_t{1} << 20;
  return static_cast<std::uint64_t>(rl.rlim_cur);
}

std::size_t descriptor_reserve(std::size_t file_limit, std::size_t peers, std::size_t loops) noexcept {
  constexpr std::size_t fixed = 64;
  constexpr std::size_t per_loop = 5;
  return fixed + per_loop * loops + file_limit + peers;
}

std::size_t default_max_connections(std::uint64_t open_file_limit, std::size_t reserve) noexcept {
  // A reserve that would take more than half the limit (a huge --filelimit, a tiny limit)
  // leaves half the limit to connections instead of starving them.
  const std::uint64_t keep = std::min<std::uint64_t>(reserve, open_file_limit / 2);
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(open_file_limit - keep, 1, SIZE_MAX));
}

void refuse_at_once(int fd, bool plain_http) noexcept {
  if (fd < 0) return;
  if (plain_http) {
    // Drop what already arrived (a request sent right after connect), so that the close is a
    // FIN after our answer rather than a reset that could discard it. Bounded: 4 reads.
    std::array<char, 4096> sink{};
    for (int i = 0; i < 4; ++i) {
      if (::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) <= 0) break;
    }
    [[maybe_unused]] const auto n = ::send(fd, refused_503.data(), refused_503.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
  } else {
    linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  ::close(fd);
}

}  // namespace mles::net
