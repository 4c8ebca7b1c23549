// One event loop per core: an io_context run by one thread, the connections living on it, a
// coarse clock and one sweep timer that drives every connection's deadlines and pings (one
// timer per loop instead of one per connection keeps idle connections small).
// Readiness: the loop's connections are watched by an epoll set of the loop's own (edge-
// triggered, in and out, registered once per connection, the event naming the connection);
// Asio watches that one descriptor and the loop dispatches up to 256 events per wake-up. An
// idle connection thus costs no Asio reactor state and no pending operation (~440 B each).
// Thread-safety: post()/io() from any thread; everything else on the loop's own thread.
#pragma once

#include "net/byte_buffer.hpp"
#include "net/send_batch.hpp"
#include "net/session_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace mles::net {

class connection;

// Traffic figures of one loop, written only by the loop's own thread (a relaxed load and store:
// no locked instruction on the data path) and read by the metrics scrape from any thread.
struct loop_counters {
  std::atomic<std::uint64_t> messages_in{0};   // messages received from joined clients
  std::atomic<std::uint64_t> bytes_in{0};      // their payload bytes
  std::atomic<std::uint64_t> messages_out{0};  // deliveries to members (recipients per fan-out)
  std::atomic<std::uint64_t> bytes_out{0};     // payload bytes of those deliveries

  // Owner thread only.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

using connection_hook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class event_loop {
 public:
  using clock = std::chrono::steady_clock;

  event_loop(const session_context& ctx, unsigned index, clock::duration sweep_period);
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  boost::asio::io_context& io() noexcept { return io_; }
  const session_context& context() const noexcept { return ctx_; }
  unsigned index() const noexcept { return index_; }

  // Starts the loop's thread. extra_sweep, if set, runs on every sweep (e.g. hub expiry).
  void start(std::function<void(clock::time_point)> extra_sweep = {});
  void stop() noexcept;  // io_context::stop
  void join() noexcept;  // waits for the thread

  // On the loop thread:
  void add(connection& c) noexcept;
  // c's socket joins the loop's readiness set until it is closed (edge-triggered: c reads
  // and writes until the kernel would block before it waits); events go to
  // connection::on_poll_event. False (errno set) if the kernel refused.
  bool watch(int fd, connection& c) noexcept;
  // An ended connection's last reference: kept until the current handler has returned (its
  // events may still be in the batch being dispatched, and it may be running itself).
  void retire(std::shared_ptr<connection> c);
  // Graceful stop: every connection goes away (WebSocket: close 1001). Posts itself to the loop.
  void close_all();
  // After the thread has stopped: ends every remaining connection on the calling thread.
  void abort_all();
  // c's send queue wants a flush: all the connections asking within one handler are flushed
  // by one posted handler, in the order they asked (a fan-out of one burst to 100 members
  // posted 100 handlers, each an allocation and a pass through the scheduler).
  void schedule_flush(std::shared_ptr<connection> c);
  // During the flush pass, with room left: the batch plain writes join (else write directly).
  send_batch* open_batch() noexcept {
    return batch_ && batch_->collecting() && batch_->has_room() ? batch_.get() : nullptr;
  }
  // c is going away with a send queued in the batch (see send_batch::forget).
  void forget_send(const connection& c) noexcept {
    if (batch_) batch_->forget(&c);
  }
  std::span<std::uint8_t> read_buffer() noexcept { return read_buffer_; }
  // Scratch for coalescing a write (valid until the next call). During the flush pass the
  // part not holding queued sends' copies (the batch's arena is this buffer).
  std::span<std::uint8_t> write_buffer() noexcept {
    if (batch_ && batch_->collecting()) return batch_->copy_space();
    return write_buffer_;
  }
  // Encrypted records on their way to a socket (see transport).
  byte_buffer& tls_scratch() noexcept { return tls_scratch_; }
  // Coarse time, refreshed by the sweep and on every read event.
  clock::time_point now() const noexcept { return now_; }
  void refresh_now() noexcept { now_ = clock::now(); }

  // Written by the loop's thread only (loop_counters::bump), read from any thread.
  loop_counters& counters() noexcept { return counters_; }
  const loop_counters& counters() const noexcept { return counters_; }

  // Any thread.
  bool running_in_this_thread() const noexcept { return current_ == this; }
  std::size_t connection_count() const noexcept { return count_.load(std::memory_order_relaxed); }
  void on_connection_closed() noexcept { count_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  static thread_local const event_loop* current_;
  void arm_poll();
  void on_poll();
  void run_flushes();
  void arm_sweep();
  void on_sweep();

  const session_context& ctx_;
  unsigned index_;
  clock::duration sweep_period_;
  boost::asio::io_context io_;
  boost::asio::steady_timer sweep_timer_;
  std::thread thread_;
  std::function<void(clock::time_point)> extra_sweep_;
  boost::intrusive::list<connection, boost::intrusive::base_hook<connection_hook>,
                         boost::intrusive::constant_time_size<false>>
      connections_;
  std::atomic<std::size_t> count_{0};
  loop_counters counters_;
  clock::time_point now_ = clock::now();
  std::vector<std::uint8_t> read_buffer_;
  std::vector<std::uint8_t> write_buffer_;
  byte_buffer tls_scratch_;
  std::vector<std::shared_ptr<connection>> flush_list_;   // waiting for run_flushes
  std::vector<std::shared_ptr<connection>> flush_spare_;  // the last pass's storage
  bool flush_posted_ = false;
  std::unique_ptr<send_batch> batch_;  // made on the loop's thread (see start)
  boost::asio::posix::stream_descriptor poll_;  // the loop's epoll set (owns the descriptor)
  std::vector<std::shared_ptr<connection>> retired_;  // see retire()
  bool retire_posted_ = false;
};

}  // namespace mles::net
