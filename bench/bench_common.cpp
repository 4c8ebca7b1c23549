// Shared pieces of mles-bench: deadline waits, loopback resolution, client TLS context,
// run nonce, file limit, result output.
#include "bench_common.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace mles::bench {

void wait_for(const fatal_latch& latch, std::string_view what, clock_ns deadline,
              const std::function<bool()>& done, const std::function<std::string()>& progress) {
  const clock_ns start = now_ns();
  for (;;) {
    if (latch.failed()) throw bench_failure{latch.what()};
    if (done()) return;
    const clock_ns now = now_ns();
    if (now >= deadline) {
      std::string msg = fmt::format("timeout after {:.1f} s waiting for {}",
                                    static_cast<double>(now - start) / 1e9, what);
      if (progress) msg += fmt::format(" ({})", progress());
      throw bench_failure{std::move(msg)};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

endpoint resolve_loopback(const std::string& host, std::uint16_t port) {
  endpoint ep;
  const std::string h = host == "localhost" ? "127.0.0.1" : host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
      throw bench_failure{fmt::format("--host {}: only loopback addresses (127.0.0.0/8, ::1)", host)};
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.addr_len = sizeof(sockaddr_in);
    ep.text = fmt::format("{}:{}", h, port);
  } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
      throw bench_failure{fmt::format("--host {}: only loopback addresses (127.0.0.0/8, ::1)", host)};
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.addr_len = sizeof(sockaddr_in6);
    ep.text = fmt::format("[{}]:{}", h, port);
  } else {
    throw bench_failure{fmt::format("--host {}: not a numeric loopback address", host)};
  }
  return ep;
}

SSL_CTX* make_client_tls_context() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) throw bench_failure{"SSL_CTX_new failed"};
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // test certificates: no verification
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Read-ahead: one read() takes every record the socket holds (up to 64 KiB) instead of two
  // per record (header, then body) plus the one that finds the socket empty. Without it the
  // bench's core spent its time in read syscalls and was the limit of TLS fan-out; clients
  // such as browsers read in large blocks too.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
  // Every bench client is a distinct user: full handshakes, no session resumption.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
  return ctx;
}

std::string run_nonce() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                          static_cast<std::uint64_t>(now_ns()) ^ static_cast<std::uint64_t>(::getpid());
  return fmt::format("{:08x}", static_cast<std::uint32_t>(v ^ (v >> 32)));
}

double own_cpu_seconds() noexcept {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double process_cpu_seconds(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  double utime = -1;
  double stime = -1;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtod(field.c_str(), nullptr);
    if (i == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  if (utime < 0 || stime < 0) return -1;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::uint64_t raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

void result_record::add(std::string key, double value, int decimals) {
  if (!std::isfinite(value)) value = 0;
  fields_.emplace_back(std::move(key), fmt::format("{:.{}f}", value, decimals));
}

void result_record::add(std::string key, std::uint64_t value) {
  fields_.emplace_back(std::move(key), fmt::format("{}", value));
}

void result_record::add(std::string key, std::string value) {
  std::string q = "\"";
  for (const char ch : value) {
    if (ch == '"' || ch == '\\') q += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    q += ch;
  }
  q += '"';
  fields_.emplace_back(std::move(key), std::move(q));
}

std::string result_record::json_line() const {
  std::string out = "{";
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format("\"{}\":{}", fields_[i].first, fields_[i].second);
  }
  out += '}';
  return out;
}

std::string human_rate(double per_s) {
  if (per_s >= 1e6) return fmt::format("{:.2f} M", per_s / 1e6);
  if (per_s >= 1e3) return fmt::format("{:.1f} k", per_s / 1e3);
  return fmt::format("{:.0f}", per_s);
}

}  // namespace mles::bench
