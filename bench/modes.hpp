// The mles-bench modes (fanout, idle, history, stalls): their options and entry points.
// Each returns a process exit code (bench_common.hpp) and throws bench_failure on deadlines.
#pragma once

#include "bench_common.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mles::bench {

// Bench payload layout (little-endian), shared by fanout and history:
//   [0,4)  publisher id; bit 31 set marks a barrier probe (never counted)
//   [4,8)  sequence number per publisher (data and probes counted separately)
//   [8,16) send time, steady_clock ns
//   [16,size) filler
inline constexpr std::size_t payload_header_size = 16;
inline constexpr std::uint32_t probe_flag = 0x8000'0000u;

struct fanout_options {
  unsigned channels = 1;
  unsigned subscribers = 100;  // per channel
  unsigned publishers = 1;     // per channel; publishers also receive the others' messages
  std::size_t size = 64;       // payload bytes, >= 16
  double rate = 0;             // messages/s per publisher; 0 = max (closed loop, window)
  unsigned window = 256;       // messages per publisher not yet received by every member
  // Bytes of frames per channel that may be in flight (the window is also capped at
  // window_bytes / (P × (size + 14))): keeps each member's queue on the server below its
  // slow-consumer limit (4 MiB by default).
  std::size_t window_bytes = std::size_t{1} << 20;
  // The last `stalled` subscribers of the first channel join and then never read: their
  // receive buffers fill, the server's queue for them overflows and it disconnects them.
  // They are left out of the window, the barrier, the integrity check and the figures.
  unsigned stalled = 0;
  double duration_s = 5;
  double warmup_s = 1;
  double barrier_timeout_s = 30;
  double drain_timeout_s = 10;
  // Publishers on another server (e.g. one linked to the subscribers' server with --peer):
  // 0 = the same server as everyone.
  std::uint16_t publisher_port = 0;
  // The server's process: its share of a CPU during the measured window is reported.
  int server_pid = 0;
};

struct idle_options {
  unsigned connections = 10'000;
  unsigned per_channel = 100;  // members per channel; 1 = a channel per connection
  int server_pid = 0;          // read VmRSS from /proc/PID/status when set
  double settle_timeout_s = 15;
  double hold_s = 0;           // extra idle time before closing
};

struct history_options {
  unsigned history = 200;      // publisher messages the joiner must receive
  std::size_t size = 1024;     // payload bytes, >= 16
  unsigned joins = 200;        // measured joins
  unsigned warmup_joins = 5;   // joins before measuring
  double join_timeout_s = 10;
  std::uint16_t joiner_port = 0;  // joiners connect here (0: --port): a server without the members
  double join_pause_s = 0;        // wait after each fill before the joiner connects
};

struct stall_options {
  std::vector<unsigned> cpus;  // empty: every CPU this process may run on
  double duration_s = 5;
  double deadline_us = 1000;   // late_share_at_<deadline>us
};

int run_fanout(const common_options& common, const fanout_options& opt);
int run_idle(const common_options& common, const idle_options& opt);
int run_history(const common_options& common, const history_options& opt);
int run_stalls(const common_options& common, const stall_options& opt);

// Prints the human-readable lines and, with --json, the one-line JSON record on stdout.
void print_result(const common_options& common, const std::string& title,
                  const result_record& rec);

}  // namespace mles::bench
