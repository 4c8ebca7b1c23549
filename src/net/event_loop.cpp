// event_loop: one thread, one io_context, one sweep timer for all of its connections.
#include "net/event_loop.hpp"

#include "net/connection.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <sys/epoll.h>

namespace mles::net {

thread_local const event_loop* event_loop::current_ = nullptr;

namespace {

// Sends one flush pass may batch: a fan-out to this many members costs one system call.
constexpr unsigned send_batch_entries = 1024;

void on_batched_write(void* c, const send_batch::outcome& o) {
  try {
    static_cast<connection*>(c)->on_batched_write(o);
  } catch (const std::exception& e) {
    spdlog::error("event loop: unexpected exception after a write: {}", e.what());
  }
}

}  // namespace

event_loop::event_loop(const session_context& ctx, unsigned index, clock::duration sweep_period)
    : ctx_(ctx), index_(index), sweep_period_(sweep_period), io_(1), sweep_timer_(io_),
      read_buffer_(64 * 1024), write_buffer_(256 * 1024), poll_(io_) {
  tls_scratch_.reserve(5 * 64 * 1024);
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "event loop: epoll_create1");
  poll_.assign(fd);
}

event_loop::~event_loop() {
  stop();
  join();
  retired_.clear();
}

void event_loop::start(std::function<void(clock::time_point)> extra_sweep) {
  extra_sweep_ = std::move(extra_sweep);
  arm_sweep();
  arm_poll();
  thread_ = std::thread([this] {
    current_ = this;
    if (ctx_.settings.batch_sends) {
      std::string why_not;
      batch_ = send_batch::make(send_batch_entries, &on_batched_write, write_buffer_, why_not);
      if (!batch_ && index_ == 0) {
        spdlog::warn("io_uring unavailable ({}): each connection sends with its own sendmsg() (slower fan-out; "
                     "--no-io-uring says so and silences this)",
                     why_not);
      }
    }
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        // A handler must never throw; if one does, log it and keep the loop serving.
        spdlog::error("event loop {}: unexpected exception: {}", index_, e.what());
      }
    }
  });
}

void event_loop::stop() noexcept { io_.stop(); }

void event_loop::join() noexcept {
  if (thread_.joinable()) thread_.join();
}

void event_loop::add(connection& c) noexcept {
  connections_.push_back(c);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void event_loop::close_all() {
  boost::asio::post(io_, [this] {
    for (auto it = connections_.begin(); it != connections_.end();) {
      connection& c = *it++;  // go_away may unlink c
      auto keep = c.shared_from_this();
      c.go_away();
    }
  });
}

void event_loop::abort_all() {
  while (!connections_.empty()) {
    connection& c = connections_.front();
    auto keep = c.shared_from_this();
    c.abort();
  }
  retired_.clear();
}

bool event_loop::watch(int fd, connection& c) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &c;
  return ::epoll_ctl(poll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void event_loop::retire(std::shared_ptr<connection> c) {
  retired_.push_back(std::move(c));
  if (retire_posted_) return;
  retire_posted_ = true;
  boost::asio::post(io_, [this] {
    retire_posted_ = false;
    // Destructors may retire more (a handler's last reference): those go next time.
    std::vector<std::shared_ptr<connection>> gone;
    gone.swap(retired_);
  });
}

void event_loop::arm_poll() {
  poll_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;  // the loop is being destroyed
    on_poll();
  });
}

// Asio watches the epoll set edge-triggered: each wake-up takes every ready event, in batches
// of 256; after a full batch the next one is posted (other handlers get their turn).
void event_loop::on_poll() {
  std::array<epoll_event, 256> events;
  const int n = ::epoll_wait(poll_.native_handle(), events.data(), static_cast<int>(events.size()), 0);
  if (n < 0) {
    if (errno == EINTR) {
      boost::asio::post(io_, [this] { on_poll(); });
      return;
    }
    // Not expected with a valid set: say so, and wait for the next readiness.
    spdlog::error("event loop {}: epoll_wait: {}", index_, std::strerror(errno));
    arm_poll();
    return;
  }
  if (n > 0) refresh_now();
  for (int i = 0; i < n; ++i) {
    auto* c = static_cast<connection*>(events[static_cast<std::size_t>(i)].data.ptr);
    try {
      c->on_poll_event(events[static_cast<std::size_t>(i)].events);
    } catch (const std::exception& e) {
      spdlog::error("event loop {}: unexpected exception in a connection: {}", index_, e.what());
    }
  }
  if (n == static_cast<int>(events.size())) {
    boost::asio::post(io_, [this] { on_poll(); });
  } else {
    arm_poll();
  }
}

void event_loop::schedule_flush(std::shared_ptr<connection> c) {
  flush_list_.push_back(std::move(c));
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(io_, [this] { run_flushes(); });
}

void event_loop::run_flushes() {
  flush_posted_ = false;
  // Flushes may ask for more (a handler queues its next chunk): those go to the next pass.
  std::vector<std::shared_ptr<connection>> list;
  list.swap(flush_spare_);
  list.swap(flush_list_);
  // Plain connections' writes are queued in the batch and go out together at the end of the
  // pass (or earlier, when it fills up).
  if (batch_) batch_->begin();
  for (auto& c : list) {
    if (batch_ && !batch_->has_room()) {
      batch_->complete();
      batch_->begin();
    }
    try {
      c->run_scheduled_flush();
    } catch (const std::exception& e) {
      spdlog::error("event loop {}: unexpected exception in a flush: {}", index_, e.what());
    }
  }
  if (batch_) batch_->complete();
  list.clear();
  if (list.capacity() <= 4096) flush_spare_.swap(list);
}

void event_loop::arm_sweep() {
  sweep_timer_.expires_after(sweep_period_);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    on_sweep();
    arm_sweep();
  });
}

void event_loop::on_sweep() {
  now_ = clock::now();
  for (auto it = connections_.begin(); it != connections_.end();) {
    connection& c = *it++;  // on_sweep may finish and unlink c
    // Keep c alive through the call even if finishing drops the last reference.
    auto keep = c.shared_from_this();
    c.on_sweep(now_);
  }
  if (extra_sweep_) extra_sweep_(now_);
}

}  // namespace mles::net
