// The plain sends of one flush pass, submitted together through io_uring.
// A loop's flush pass (event_loop::run_flushes) writes the bursts of every connection that
// asked for a flush. Each plain connection's gather write is queued here as a sendmsg and the
// pass submits them all with one io_uring_enter: on this kind of VM a system call costs
// ~1.1 µs of entry and exit alone, and 100 loopback sends of 640 B took 3.4 µs each batched
// against 5.1 µs each as sendmsg() calls (BENCHMARKS.md). Every send is non-blocking
// (MSG_DONTWAIT: io_uring then never parks it waiting for room), so each completes during the
// submit and its result is exactly what sendmsg() would have returned: bytes taken (maybe
// fewer than asked), -EAGAIN (the connection waits for its writable edge, as before) or an
// error. Where io_uring cannot be had (an old kernel, a seccomp filter, io_uring_disabled,
// --no-io-uring) the loop has no batch and connections call sendmsg() themselves.
// Thread-safety: none; one per event loop, used on its thread only.
#pragma once

#include "net/byte_buffer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

struct io_uring;

namespace mles::net {

class send_batch {
 public:
  // A queued send's outcome, handed to its owner when the batch completes.
  struct outcome {
    long result;            // sendmsg's: bytes taken, or -errno
    std::size_t attempted;  // bytes offered
    std::size_t tag;        // the caller's, from add() (TLS: the plaintext the records hold)
    const iovec* iov;       // what was offered (valid during the call)
    int count;
  };
  // owner is the one given to add() (the connection).
  using completion = void (*)(void* owner, const outcome& o);

  // nullptr, with the reason in why_not, if the kernel refuses a ring. Call on the thread
  // that will use the batch (the ring is made for a single issuer where the kernel allows).
  // arena: where queued sends' copies go (the loop's write buffer: while collecting, the
  // loop hands out copy_space() as its write buffer, so direct writes never overwrite them).
  static std::unique_ptr<send_batch> make(unsigned entries, completion done, std::span<std::uint8_t> arena,
                                          std::string& why_not);
  ~send_batch();
  send_batch(const send_batch&) = delete;
  send_batch& operator=(const send_batch&) = delete;

  // Between begin() and complete() sends may be queued. begin() reclaims the last batch's
  // buffers (complete() leaves them intact for its completions).
  void begin() noexcept;
  bool collecting() const noexcept { return collecting_; }
  // Room for one more send with up to max_iov buffers, at least low_space bytes of copy and
  // record space, and less than submit_bytes queued. The flush pass completes the batch when
  // this turns false between two connections.
  bool has_room() const noexcept;
  // Where a connection may copy small frames for its queued send (valid until complete()).
  std::span<std::uint8_t> copy_space() noexcept { return arena_.subspan(arena_used_); }
  // Queues owner's gather write of iov[0..count) on fd, of which the first `copied` bytes of
  // copy_space() hold copies. False (nothing queued) if there is no room: write directly.
  bool add(std::shared_ptr<void> owner, int fd, const iovec* iov, int count, std::size_t copied,
           std::size_t attempted, std::size_t tag = 0);
  // TLS records sealed for a queued send (valid until complete()): append to sealed() only
  // while sealed_room() holds them all (it never reallocates, so earlier sends stay put).
  byte_buffer& sealed() noexcept { return sealed_; }
  std::size_t sealed_room() const noexcept { return sealed_.capacity() - sealed_.size(); }
  // owner is going away before the batch completed (its descriptor is about to be closed):
  // its send becomes a no-op and it gets no completion.
  void forget(const void* owner) noexcept;
  // Submits what is queued with one system call and hands every result to its connection;
  // collecting stops first, so writes made from a completion go out directly.
  void complete();
  std::size_t queued() const noexcept { return slots_.size(); }

  static constexpr std::size_t max_iov = 64;            // per send (connection::max_iov)
  static constexpr std::size_t iov_pool = 4096;         // per batch, all sends together
  static constexpr std::size_t low_space = 64 * 1024;
  // A batch goes out once it holds this much: the members' readers start while the rest of a
  // fan-out is prepared (TLS seals every record before its send is queued: 100 members' records
  // sealed before one submit left the readers idle meanwhile, 0.48x of raw instead of 0.81x
  // with 128 KiB; plain fan-out is the same at 64 KiB, 128 KiB or unbounded; BENCHMARKS.md).
  static constexpr std::size_t submit_bytes = 128 * 1024;
  static constexpr std::size_t sealed_size = 2 * 1024 * 1024;  // per batch (reserved, touched as used)

 private:
  struct slot {
    std::shared_ptr<void> owner;  // null: forgotten
    std::size_t attempted = 0;
    std::size_t tag = 0;
    long result = 0;
    bool done = false;
  };
  send_batch(std::unique_ptr<io_uring> ring, unsigned entries, completion done, std::span<std::uint8_t> arena);
  void fall_back() noexcept;  // sendmsg() for slots the ring did not run

  std::unique_ptr<io_uring> ring_;
  unsigned entries_;
  completion done_;
  bool collecting_ = false;
  bool broken_ = false;  // the ring failed once: every later batch is sent directly
  std::vector<slot> slots_;
  std::vector<msghdr> headers_;  // one per slot (never reallocated: reserved for entries_)
  std::vector<int> fds_;         // per slot, for fall_back
  std::unique_ptr<iovec[]> iovs_;  // iov_pool, handed out in order
  std::size_t iovs_used_ = 0;
  std::span<std::uint8_t> arena_;  // not owned
  std::size_t arena_used_ = 0;
  std::size_t queued_bytes_ = 0;
  byte_buffer sealed_;  // capacity sealed_size
};

}  // namespace mles::net
