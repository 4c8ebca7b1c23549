// send_batch: one io_uring per event loop, one io_uring_enter per flush pass.
#include "net/send_batch.hpp"

#include "net/transport.hpp"

#include <liburing.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace mles::net {

std::unique_ptr<send_batch> send_batch::make(unsigned entries, completion done, std::span<std::uint8_t> arena,
                                             std::string& why_not) {
  auto ring = std::make_unique<io_uring>();
  // SUBMIT_ALL: one send refused at submission does not hold back the others. SINGLE_ISSUER
  // and COOP_TASKRUN spare the kernel work it does for rings shared between threads; older
  // kernels refuse the flags they do not know, so try with fewer.
  const unsigned flag_sets[] = {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER,
                                IORING_SETUP_SUBMIT_ALL, 0};
  int rc = -EINVAL;
  for (const unsigned flags : flag_sets) {
    rc = io_uring_queue_init(entries, ring.get(), flags);
    if (rc != -EINVAL) break;
  }
  if (rc < 0) {
    why_not = std::strerror(-rc);
    return nullptr;
  }
  // The sendmsg operation came with Linux 5.3, the probe for it with 5.6: without either, a
  // queued send would fail with -EINVAL and cost its connection.
  io_uring_probe* probe = io_uring_get_probe_ring(ring.get());
  const bool sendmsg = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SENDMSG) != 0;
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!sendmsg) {
    io_uring_queue_exit(ring.get());
    why_not = "the kernel's io_uring has no sendmsg operation (Linux 5.6 or later needed)";
    return nullptr;
  }
  return std::unique_ptr<send_batch>(new send_batch(std::move(ring), entries, done, arena));
}

send_batch::send_batch(std::unique_ptr<io_uring> ring, unsigned entries, completion done,
                       std::span<std::uint8_t> arena)
    : ring_(std::move(ring)), entries_(entries), done_(done),
      iovs_(std::make_unique_for_overwrite<iovec[]>(iov_pool)), arena_(arena) {
  slots_.reserve(entries_);
  sealed_.reserve(sealed_size);
  headers_.reserve(entries_);
  fds_.reserve(entries_);
}

send_batch::~send_batch() {
  if (ring_) io_uring_queue_exit(ring_.get());
}

bool send_batch::has_room() const noexcept {
  return !broken_ && slots_.size() < entries_ && queued_bytes_ < submit_bytes && iovs_used_ + max_iov <= iov_pool &&
         arena_.size() - arena_used_ >= low_space && sealed_room() >= low_space;
}

bool send_batch::add(std::shared_ptr<void> owner, int fd, const iovec* iov, int count, std::size_t copied,
                     std::size_t attempted, std::size_t tag) {
  if (!collecting_ || broken_ || slots_.size() >= entries_ || count <= 0 ||
      iovs_used_ + static_cast<std::size_t>(count) > iov_pool || copied > arena_.size() - arena_used_) {
    return false;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (!sqe) return false;
  iovec* mine = iovs_.get() + iovs_used_;
  std::copy(iov, iov + count, mine);
  iovs_used_ += static_cast<std::size_t>(count);
  arena_used_ += copied;
  msghdr& h = headers_.emplace_back();
  h.msg_iov = mine;
  h.msg_iovlen = static_cast<std::size_t>(count);
  fds_.push_back(fd);
  slots_.push_back({std::move(owner), attempted, tag});
  queued_bytes_ += attempted;
  io_uring_prep_sendmsg(sqe, fd, &h, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, slots_.size() - 1);
  return true;
}

void send_batch::forget(const void* owner) noexcept {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].owner.get() != owner) continue;
    // Not submitted yet: its entry in the ring becomes a no-op (the descriptor is about to be
    // closed and its number may be reused).
    slots_[i].owner.reset();
    fds_[i] = -1;
    if (ring_) {
      const unsigned mask = ring_->sq.ring_mask;
      const unsigned tail = ring_->sq.sqe_tail;
      const unsigned first = tail - static_cast<unsigned>(slots_.size());
      io_uring_sqe* sqe = &ring_->sq.sqes[(first + i) & mask];
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, i);
    }
  }
}

void send_batch::fall_back() noexcept {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slot& s = slots_[i];
    if (s.done || !s.owner) continue;
    s.result = transport::send_iov(fds_[i], headers_[i].msg_iov, static_cast<int>(headers_[i].msg_iovlen),
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
    s.done = true;
  }
}

void send_batch::complete() {
  collecting_ = false;
  if (slots_.empty()) return;
  const std::size_t n = slots_.size();
  if (!broken_) {
    // Non-blocking sends complete during the submit; the wait is for the odd one the kernel
    // finished from its worker instead.
    int submitted = io_uring_submit(ring_.get());
    if (submitted < 0) submitted = 0;
    std::size_t reaped = 0;
    while (reaped < static_cast<std::size_t>(submitted)) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_peek_cqe(ring_.get(), &cqe);
      if (rc == -EAGAIN) rc = io_uring_wait_cqe(ring_.get(), &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) break;
      const auto i = static_cast<std::size_t>(io_uring_cqe_get_data64(cqe));
      if (i < n) {
        slots_[i].result = cqe->res;
        slots_[i].done = true;
      }
      io_uring_cqe_seen(ring_.get(), cqe);
      ++reaped;
    }
    if (static_cast<std::size_t>(submitted) != n || reaped != n) {
      // Not expected: the ring's queues are sized for a whole batch. What the ring did not run
      // goes out by sendmsg(); the ring is not used again (unsubmitted entries would linger).
      spdlog::error("io_uring: {} of {} sends submitted, {} completed; sending directly from now on", submitted, n,
                    reaped);
      broken_ = true;
      io_uring_queue_exit(ring_.get());
      ring_.reset();
    }
  }
  fall_back();
  // Hand the results over. A completion may queue more (into the next pass: collecting is off).
  // (The iovecs, headers, copies and sealed records stay intact until the next begin(): no
  // send can be queued while collecting is off.)
  std::vector<slot> slots;
  slots.swap(slots_);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const slot& s = slots[i];
    if (!s.owner) continue;
    const outcome o{s.result, s.attempted, s.tag, headers_[i].msg_iov, static_cast<int>(headers_[i].msg_iovlen)};
    done_(s.owner.get(), o);
  }
  slots.clear();
  if (slots_.empty()) slots_.swap(slots);  // keep the reserved storage
}

void send_batch::begin() noexcept {
  queued_bytes_ = 0;
  if (slots_.empty()) {
    headers_.clear();
    fds_.clear();
    iovs_used_ = 0;
    arena_used_ = 0;
    sealed_.clear();
  }
  collecting_ = true;
}

}  // namespace mles::net
