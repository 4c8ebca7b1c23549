// event_loop: one thread, one io_context, one sweep timer for all of its connections.
#include "net/event_loop.hpp"

#include "net/connection.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace mles::net {

thread_local const event_loop* event_loop::current_ = nullptr;

event_loop::event_loop(const session_context& ctx, unsigned index, clock::duration sweep_period)
    : ctx_(ctx), index_(index), sweep_period_(sweep_period), io_(1), sweep_timer_(io_),
      read_buffer_(64 * 1024), write_buffer_(256 * 1024) {
  tls_scratch_.reserve(5 * 64 * 1024);
}

event_loop::~event_loop() {
  stop();
  join();
}

void event_loop::start(std::function<void(clock::time_point)> extra_sweep) {
  extra_sweep_ = std::move(extra_sweep);
  arm_sweep();
  thread_ = std::thread([this] {
    current_ = this;
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
  for (auto& c : list) {
    try {
      c->run_scheduled_flush();
    } catch (const std::exception& e) {
      spdlog::error("event loop {}: unexpected exception in a flush: {}", index_, e.what());
    }
  }
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
