// mles: the server binary. Parses the command line, starts the server, waits for SIGINT or
// SIGTERM, stops gracefully; SIGHUP re-reads --tls-cert/--tls-key. Usage errors exit 2,
// start-up failures exit 1.
#include "app/logging.hpp"
#include "app/server.hpp"
#include "cli/options.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <malloc.h>
#include <pthread.h>
#include <string>

namespace {

// glibc's allocator: blocks under 4 MiB come from the heap and up to 16 MiB of freed memory
// stays with each arena instead of going back to the kernel at once. With the defaults
// (dynamic mmap threshold, 128 KiB trim threshold) every 100 KiB TLS file response freed its
// buffers, the arena was trimmed, and the next response page-faulted them in again: 1.7 k
// instead of 8 k requests/s (page faults are dear on this nested VM). Memory stays within
// the same bounds (--history-total, --max-inflight); only the return of freed memory to the
// kernel is later. MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment win.
void tune_allocator() {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;
  (void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  (void)mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  auto outcome = mles::cli::parse_command_line(argc, argv, [](const char* n) { return std::getenv(n); });
  if (!outcome.config) {
    std::fputs(outcome.output.c_str(), outcome.exit_code == 0 ? stdout : stderr);
    return outcome.exit_code;
  }
  auto& cfg = *outcome.config;
  const auto format = mles::app::parse_log_format(cfg.log_format).value_or(mles::app::log_format::text);
  mles::app::setup_logging(mles::app::parse_log_level(cfg.log_level).value_or(spdlog::level::warn), format);
  for (const auto& n : outcome.notices) spdlog::warn("{}", n);

  // Signals are taken synchronously by this thread only; loops never see them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // not a stop: re-read --tls-cert/--tls-key
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    mles::app::server server(std::move(cfg));
    server.start();
    int sig = 0;
    while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) server.reload_tls();
    spdlog::info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  } catch (const std::exception& e) {
    if (format == mles::app::log_format::json) {
      const auto line = mles::app::json_log_line(std::chrono::system_clock::now(), spdlog::level::err,
                                                 std::string("mles: ") + e.what());
      std::fprintf(stderr, "%s\n", line.c_str());
    } else {
      std::fprintf(stderr, "mles: %s\n", e.what());
    }
    return 1;
  }
  return 0;
}
