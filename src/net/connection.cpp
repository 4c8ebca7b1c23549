// connection: readiness, reads, the send queue and the corked writer, closing (see the header).
#include "net/connection.hpp"

#include "proto/proxy_header.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace mles::net {

namespace {

constexpr std::size_t max_reads_per_event = 16;       // fairness between connections
constexpr std::size_t max_iov = 64;
constexpr std::size_t copy_threshold = 4096;      // frames up to this are coalesced
constexpr std::size_t max_burst = 512 * 1024;     // bytes offered to one write call
// Queue capacity reserved at a burst's first frame and kept between bursts: growing from
// one entry cost a handful of allocations per connection and burst (malloc was ~10% of a
// 100-channel fan-out profile); larger capacity is given back after the burst.
constexpr std::size_t small_queue = 32;
constexpr std::size_t tls_chunk = 256 * 1024;
// Room left in a send batch's record buffer beyond a chunk's records (a KeyUpdate record that
// seal() may put first).
constexpr std::size_t tls_batch_margin = 256;
// Writes within one sweep period that make a TLS connection "busy" (keeps its record buffers).
constexpr std::uint32_t busy_writes = 8;

}  // namespace

void connection_handler::on_overflow() { conn_.finish(errc::slow_consumer); }

connection::connection(event_loop& loop, boost::asio::ip::tcp::socket socket, SSL* ssl, tls_role role)
    : loop_(loop), transport_(std::move(socket), ssl, role, loop.tls_scratch()) {
  socklen_t len = static_cast<socklen_t>(remote_address_.capacity());
  if (transport_.fd() >= 0 && ::getpeername(transport_.fd(), remote_address_.data(), &len) == 0)
    remote_address_.resize(len);
}

connection::connection(event_loop& loop, int fd, const boost::asio::ip::tcp::endpoint& peer, SSL* ssl,
                       tls_role role)
    : loop_(loop), transport_(fd, ssl, role, loop.tls_scratch()), remote_address_(peer) {}

connection::~connection() { release_slots(); }

std::string connection::describe() const {
  const auto a = remote_address_.address();
  std::string s = (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(remote_address_.port());
  if (handler_) {
    if (auto more = handler_->describe(); !more.empty()) s += " " + more;
  }
  return s;
}

void connection::start(std::unique_ptr<connection_handler> first, event_loop::clock::time_point handshake_deadline) {
  handler_ = std::move(first);
  loop_.add(*this);
  ctx().counters.sessions.fetch_add(1, std::memory_order_relaxed);
  last_rx_ = loop_.now();
  deadline_ = handshake_deadline;
  if (!loop_.watch(transport_.fd(), *this)) {
    const int e = errno;
    retire_replaced();
    return finish(errc::transport_error, std::string("cannot watch the socket: ") + std::strerror(e));
  }
  watched_self_ = shared_from_this();
  if (!transport_.is_tls() && !proxy_header_pending_) after_handshake();
  retire_replaced();
  if (state_ != state::closed) do_read();
}

void connection::after_handshake() {
  state_ = state::open;
  deadline_ = {};
  release_handshake_slot();
  handler_->on_ready();
}

void connection::replace_handler(std::unique_ptr<connection_handler> next) {
  retired_ = std::move(handler_);
  handler_ = std::move(next);
  // The replaced handler may still be running (it called us): it goes at the end of the
  // current read, or with the connection.
}

// ---------------------------------------------------------------- reading

void connection::wait_readable() {
  // TLS output produced while reading (handshake records, alerts) may still be queued.
  if (transport_.has_pending_output()) wait_writable();
  if (state_ == state::closed) return;
  read_waiting_ = true;  // the next readable edge resumes us (see on_poll_event)
}

void connection::wait_writable() {
  if (state_ == state::closed) return;
  write_waiting_ = true;
}

// Edge-triggered: an event comes when the socket becomes readable or writable again, which
// after a read or write that would block it always does; an event for a direction nobody
// waits for is dropped (whoever reads or writes next goes on until the kernel would block).
// Errors and hang-ups wake both directions: the next read or write reports them.
// on_readable and on_writable are called from here only, on an open connection.
void connection::on_poll_event(std::uint32_t events) {
  constexpr std::uint32_t broken = EPOLLERR | EPOLLHUP;
  if (state_ == state::closed) return;
  if (write_waiting_ && (events & (EPOLLOUT | broken)) != 0) on_writable();
  if (state_ != state::closed && read_waiting_ && (events & (EPOLLIN | EPOLLRDHUP | broken)) != 0) on_readable();
}

void connection::on_readable() {
  read_waiting_ = false;
  if (write_wants_read_) {
    write_wants_read_ = false;
    write_some();
    if (state_ == state::closed) return;
  }
  do_read();
}

void connection::on_writable() {
  write_waiting_ = false;
  write_some();
  if (state_ == state::closed) return;
  if (read_wants_write_) {
    read_wants_write_ = false;
    do_read();
  }
}

// Drains the socket until it would block (the reactor is edge-triggered), a bounded number of
// reads per event so one busy peer cannot starve the loop.
void connection::do_read() {
  struct retire_at_end {
    connection& c;
    ~retire_at_end() { c.retire_replaced(); }
  } scope{*this};
  for (std::size_t i = 0; i < max_reads_per_event; ++i) {
    if (state_ == state::closed) return;
    if (proxy_header_pending_) {
      if (!read_proxy_header()) return;
      continue;
    }
    if (state_ == state::handshake) {
      const io_result r = transport_.handshake();
      if (r.status == io_status::ok) {
        spdlog::debug("{}: TLS {} ALPN '{}'", describe(), transport_.tls_version(), transport_.alpn());
        after_handshake();
        continue;
      }
      if (r.status == io_status::want_read) return wait_readable();
      if (r.status == io_status::want_write) return wait_writable();
      if (r.status == io_status::eof) return finish(errc::connection_lost, "closed during TLS handshake");
      return finish(errc::tls_handshake_failed, transport_.last_error());
    }
    auto buf = loop_.read_buffer();
    const io_result r = transport_.read(buf);
    switch (r.status) {
      case io_status::ok:
        last_rx_ = loop_.now();
        handler_->on_bytes(buf.first(r.n));
        break;
      case io_status::want_read: return wait_readable();
      case io_status::want_write:
        read_wants_write_ = true;
        return wait_writable();
      case io_status::eof:
        return finish_as_closing(errc::connection_lost);
      case io_status::error: return finish(errc::transport_error, transport_.last_error());
    }
  }
  // More may be waiting: come back after the other connections had their turn.
  boost::asio::post(loop_.io(), [self = shared_from_this()] { self->do_read(); });
}

// The PROXY header is peeked, parsed, and exactly its bytes consumed, so that what follows
// (a ClientHello, a request) stays in the socket for TLS or HTTP.
bool connection::read_proxy_header() {
  auto buf = loop_.read_buffer();
  const int fd = transport_.fd();
  const std::size_t want = std::min(buf.size(), proto::proxy_header_max);
  const ssize_t n = ::recv(fd, buf.data(), want, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) {
    finish(errc::connection_lost, "closed before the PROXY header");
    return false;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      wait_readable();
      return false;
    }
    finish(errc::transport_error, std::strerror(errno));
    return false;
  }
  const auto r = proto::parse_proxy_header(buf.first(static_cast<std::size_t>(n)));
  if (r.status == proto::proxy_status::need_more) {
    wait_readable();  // the next bytes are a new edge
    return false;
  }
  if (r.status == proto::proxy_status::invalid) {
    note_refusal(ctx().counters, refusal::proxy_header, describe() + ": " + std::string(r.what));
    finish(errc::proxy_header_refused, r.what);
    return false;
  }
  if (::recv(fd, buf.data(), r.consumed, MSG_DONTWAIT) != static_cast<ssize_t>(r.consumed)) {
    finish(errc::transport_error, "cannot consume the PROXY header");
    return false;
  }
  proxy_header_pending_ = false;
  last_rx_ = loop_.now();
  if (r.source) remote_address_ = {r.source->address, r.source->port};
  // --rate-limit applies to the address from the header (a --trusted-proxy address is
  // exempt, as at accept: the client it names in X-Forwarded-For is limited instead).
  const auto client = remote_address_.address();
  const bool exempt = ctx().trusted_proxies && ctx().trusted_proxies->contains(client);
  if (ctx().late_rate_limit && !exempt && !ctx().late_rate_limit->allow(client, loop_.now())) {
    spdlog::info("{}: over the rate limit, connection dropped", describe());
    finish(errc::rate_limited);
    return false;
  }
  if (!transport_.is_tls()) after_handshake();
  return state_ != state::closed;
}

// ---------------------------------------------------------------- send queue

void connection::deliver(hub::shared_frame frame, hub::delivery_kind kind) {
  if (queue_closed_.load(std::memory_order_acquire)) return;
  const std::size_t size = frame.size();
  const std::size_t ceiling = ctx().settings.max_queue + replay_allowance_.load(std::memory_order_relaxed);
  if (loop_.running_in_this_thread() && kind != hub::delivery_kind::relayed) {
    const std::size_t mine = loop_bytes_.load(std::memory_order_relaxed);
    // The rule judges what was queued before this frame: a member that keeps reading takes
    // any message up to --max-message, however it compares with --max-queue.
    if (kind == hub::delivery_kind::live && mine + remote_bytes_.load(std::memory_order_relaxed) > ceiling) {
      // Never wait for a member: over its ceiling it is disconnected.
      overflowed_.store(true, std::memory_order_relaxed);
      queue_closed_.store(true, std::memory_order_release);
      frame.reset();
    } else {
      if (kind == hub::delivery_kind::history) {
        replay_allowance_.store(replay_allowance_.load(std::memory_order_relaxed) + size,
                                std::memory_order_relaxed);
      }
      loop_bytes_.store(mine + size, std::memory_order_relaxed);
      auto& local = out().local;
      if (local.capacity() == 0) local.reserve(small_queue);
      local.push_back(std::move(frame));
    }
    schedule_local_flush();
    return;
  }
  // From another loop, or relayed: the shared queue (history never comes this way).
  bool post = false;
  {
    std::lock_guard lock(remote_lock_);
    if (queue_closed_.load(std::memory_order_relaxed)) return;
    const std::size_t remote = remote_bytes_.load(std::memory_order_relaxed);
    if (loop_bytes_.load(std::memory_order_relaxed) + remote > ceiling) {
      overflowed_.store(true, std::memory_order_relaxed);
      queue_closed_.store(true, std::memory_order_release);
    } else {
      remote_bytes_.store(remote + size, std::memory_order_relaxed);
      if (!remote_) {
        remote_ = std::make_unique<std::vector<hub::shared_frame>>();
        remote_->reserve(small_queue);
      }
      remote_->push_back(std::move(frame));
    }
    if (!remote_flush_posted_) post = remote_flush_posted_ = true;
  }
  if (post) {
    boost::asio::post(loop_.io(), [self = shared_from_this()] {
      {
        std::lock_guard lock(self->remote_lock_);
        self->remote_flush_posted_ = false;
      }
      self->flush();
    });
  }
}

void connection::relay(const hub::message& m, hub::delivery_kind kind) {
  if (auto* target = handler_ ? handler_->relay_target() : nullptr) target->relay(m, kind);
  else if (!(m.flags & hub::message_flags::join)) deliver(m.frame, kind);
}

bool connection::enqueue(hub::shared_frame frame, hub::delivery_kind kind) {
  deliver(std::move(frame), kind);
  return !overflowed_.load(std::memory_order_relaxed);
}

void connection::push(hub::shared_frame frame) {
  if (state_ == state::closed) return;
  loop_bytes_.store(loop_bytes_.load(std::memory_order_relaxed) + frame.size(), std::memory_order_relaxed);
  out().local.push_back(std::move(frame));
  schedule_local_flush();
}

void connection::schedule_local_flush() {
  if (local_flush_posted_) return;
  local_flush_posted_ = true;
  loop_.schedule_flush(shared_from_this());
}

void connection::drain_remote_into(std::vector<hub::shared_frame>& out) {
  std::lock_guard lock(remote_lock_);
  if (!remote_ || remote_->empty()) return;
  if (out.empty()) {
    out.swap(*remote_);
  } else {
    out.insert(out.end(), std::make_move_iterator(remote_->begin()), std::make_move_iterator(remote_->end()));
    remote_->clear();
  }
  loop_bytes_.store(loop_bytes_.load(std::memory_order_relaxed) + remote_bytes_.load(std::memory_order_relaxed),
                    std::memory_order_relaxed);
  remote_bytes_.store(0, std::memory_order_relaxed);
}

void connection::handle_overflow() {
  overflow_handled_ = true;
  ctx().counters.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("{}: slow consumer: more than {} bytes queued, disconnecting", describe(),
               ctx().settings.max_queue);
  // Keep only a frame already half written (the stream must stay well-formed).
  auto& q = out();
  const std::size_t keep = q.index + (q.offset > 0 ? 1 : 0);
  q.writing.resize(std::min(keep, q.writing.size()));
  q.local.clear();
  {
    std::lock_guard lock(remote_lock_);
    remote_.reset();
    remote_bytes_.store(0, std::memory_order_relaxed);
  }
  std::size_t left = 0;
  if (q.index < q.writing.size()) left = q.writing[q.index].size() - q.offset;
  loop_bytes_.store(left, std::memory_order_relaxed);
  handler_->on_overflow();
}

void connection::flush() {
  // A send queued in the loop's batch still points into the burst: its completion flushes.
  if (state_ == state::closed || write_in_batch_) return;
  if (overflowed_.load(std::memory_order_relaxed) && !overflow_handled_ && state_ != state::closing) {
    handle_overflow();
    if (state_ == state::closed) return;
  }
  auto& q = out();
  if (q.index == q.writing.size()) {
    q.writing.clear();
    q.index = 0;
    if (!q.local.empty()) q.writing.swap(q.local);
  } else if (!q.local.empty()) {
    q.writing.insert(q.writing.end(), std::make_move_iterator(q.local.begin()), std::make_move_iterator(q.local.end()));
    q.local.clear();
  }
  drain_remote_into(q.writing);
  if (!write_waiting_ && state_ != state::handshake) write_some();
}

void connection::write_some() {
  if (transport_.has_pending_output()) {
    const io_result f = transport_.flush_output();
    if (f.status == io_status::want_write) return wait_writable();
    if (f.status != io_status::ok) return finish(errc::transport_error, transport_.last_error());
  }
  if (state_ == state::handshake) return;  // frames wait for the handshake
  auto& q = out();
  while (q.index < q.writing.size()) {
    io_result r{io_status::ok};
    std::size_t attempted = 0;
    if (!transport_.is_tls()) {
      // Plain: one gather write. Small frames are copied side by side into the loop's write
      // buffer (the kernel handles one long segment far faster than many 66-byte ones);
      // large frames go from their own bytes. A partial write just advances: the rest is
      // rebuilt from the immutable frames next time.
      // Within the loop's flush pass the write joins the pass's batch of sends (one system
      // call for all of them, see send_batch), copies going to the batch's own space.
      std::array<iovec, max_iov> iov;
      send_batch* batch = loop_.open_batch();
      auto out = loop_.write_buffer();
      std::size_t used = 0;
      int count = 0;
      bool last_in_buffer = false;
      std::size_t offset = q.offset;
      for (std::size_t i = q.index; i < q.writing.size() && attempted < max_burst; ++i) {
        const auto& f = q.writing[i];
        const std::uint8_t* p = f.data() + offset;
        const std::size_t len = f.size() - offset;
        offset = 0;
        if (len <= copy_threshold && used + len <= out.size()) {
          std::memcpy(out.data() + used, p, len);
          if (last_in_buffer) {
            iov[static_cast<std::size_t>(count - 1)].iov_len += len;
          } else {
            if (count == static_cast<int>(max_iov)) break;
            iov[static_cast<std::size_t>(count++)] = {out.data() + used, len};
          }
          used += len;
          last_in_buffer = true;
        } else {
          if (len <= copy_threshold && count > 0) break;  // buffer full: next burst
          if (count == static_cast<int>(max_iov)) break;
          iov[static_cast<std::size_t>(count++)] = {const_cast<std::uint8_t*>(p), len};
          last_in_buffer = false;
        }
        attempted += len;
      }
      if (batch && batch->add(shared_from_this(), transport_.fd(), iov.data(), count, used, attempted)) {
        write_in_batch_ = true;  // on_batched_write goes on
        return;
      }
      r = count == 1 ? transport_.write({static_cast<const std::uint8_t*>(iov[0].iov_base), iov[0].iov_len})
                     : transport_.writev(iov.data(), count);
    } else {
      // TLS: coalesce small frames into one seal (or SSL_write); a large frame, or the only
      // one left (a fan-out batch), is sealed from its own bytes. Both encrypt into memory
      // and the transport sends the records at once.
      const auto& first = q.writing[q.index];
      const std::size_t first_left = first.size() - q.offset;
      // (During the flush pass the write buffer is what the batch's copies left: with less
      // than a small frame's worth, the first frame goes alone.)
      std::span<const std::uint8_t> chunk;
      auto out = loop_.write_buffer();
      if (first_left >= tls_chunk / 4 || q.index + 1 == q.writing.size() || out.size() < copy_threshold) {
        chunk = {first.data() + q.offset, std::min(first_left, 4 * tls_chunk)};
      } else {
        const std::size_t limit = std::min(out.size(), tls_chunk);
        std::size_t len = 0;
        std::size_t offset = q.offset;
        for (std::size_t i = q.index; i < q.writing.size() && len < limit; ++i) {
          const auto& f = q.writing[i];
          const std::size_t take = std::min(f.size() - offset, limit - len);
          std::memcpy(out.data() + len, f.data() + offset, take);
          len += take;
          offset = 0;
        }
        chunk = {out.data(), len};
      }
      attempted = chunk.size();
      // Within the loop's flush pass (TLS 1.3 on our record layer): the records are sealed
      // into the batch's buffer and sent with the others.
      send_batch* batch = transport_.own_records() ? loop_.open_batch() : nullptr;
      if (batch && batch->sealed_room() >= tls13::record_layer::sealed_size(chunk.size()) + tls_batch_margin) {
        byte_buffer& records = batch->sealed();
        const std::size_t at = records.size();
        r = transport_.seal_to(chunk, records);
        if (r.status == io_status::ok) {
          iovec iov{records.data() + at, records.size() - at};
          if (batch->add(shared_from_this(), transport_.fd(), &iov, 1, 0, iov.iov_len, chunk.size())) {
            write_in_batch_ = true;  // on_batched_write goes on
            return;
          }
          const io_result shipped = transport_.ship({records.data() + at, records.size() - at});
          if (shipped.status == io_status::error) r = shipped;
        }
      } else {
        r = transport_.write(chunk);
      }
    }
    if (!written(r, attempted)) return;
  }
  on_all_written();
}

// A write's result; true: go on writing.
bool connection::written(io_result r, std::size_t attempted) {
  switch (r.status) {
    case io_status::ok:
      if (++writes_since_sweep_ == busy_writes && transport_.is_tls() && !tls_buffers_kept_) {
        tls_buffers_kept_ = true;
        transport_.keep_buffers(true);
      }
      advance(r.n);
      // Kernel buffer full: plain took less, or TLS holds ciphertext back. (OpenSSL may
      // take part of a chunk with every record sent: that goes on. The wait must follow a
      // write the kernel refused, or no writable edge would come.)
      if (transport_.has_pending_output() || (r.n < attempted && !transport_.is_tls())) {
        wait_writable();
        return false;
      }
      return true;
    case io_status::want_write: wait_writable(); return false;
    case io_status::want_read:
      write_wants_read_ = true;
      return false;  // the pending read wait resumes us
    case io_status::eof: finish(errc::connection_lost, "connection closed while writing"); return false;
    case io_status::error: finish(errc::transport_error, transport_.last_error()); return false;
  }
  return false;
}

void connection::on_batched_write(const send_batch::outcome& o) {
  write_in_batch_ = false;
  if (state_ == state::closed) return;
  io_result r = transport::send_result(o.result);
  std::size_t attempted = o.attempted;
  if (transport_.is_tls()) {
    // The records hold o.tag bytes of the burst, consumed whatever the kernel took: the
    // transport keeps what is left of them.
    r = transport_.sent({static_cast<const std::uint8_t*>(o.iov[0].iov_base), o.iov[0].iov_len}, o.result);
    if (r.status == io_status::ok) r.n = o.tag;
    attempted = o.tag;
  }
  if (!written(r, attempted)) return;
  flush();  // the rest of the burst, and what was queued meanwhile
}

void connection::advance(std::size_t n) {
  const std::size_t written = n;
  auto& q = *out_;  // write_some's
  while (n > 0 && q.index < q.writing.size()) {
    auto& f = q.writing[q.index];
    const std::size_t left = f.size() - q.offset;
    if (n >= left) {
      n -= left;
      f.reset();
      ++q.index;
      q.offset = 0;
    } else {
      q.offset += n;
      n = 0;
    }
  }
  loop_bytes_.store(loop_bytes_.load(std::memory_order_relaxed) - written, std::memory_order_relaxed);
  const std::size_t allowance = replay_allowance_.load(std::memory_order_relaxed);
  if (allowance) replay_allowance_.store(allowance - std::min(allowance, written), std::memory_order_relaxed);
}

void connection::on_all_written() {
  if (out_) {
    out_->index = out_->offset = 0;
    out_->writing.clear();
  }
  bool remote_empty = true;
  {
    std::lock_guard lock(remote_lock_);
    remote_empty = !remote_ || remote_->empty();
  }
  // Give big queue storage back right after the burst. Measured: keeping it for the next
  // burst (releasing only when idle) was ~15% slower on 100 channels x 10 members, as
  // 1000 connections' retained vectors crowd the cache while fresh ones reuse hot memory.
  release_idle_queues();
  if (state_ == state::open) {
    // A handler streaming a body queues its next chunk here.
    if (notify_drained_) handler_->on_drained();
    return;
  }
  // Anything still queued has a flush posted; it will come back here.
  if (state_ == state::closing && !close_flushed_ && nothing_local() && remote_empty) {
    close_flushed_ = true;
    transport_.shutdown_send();
    // Keep reading until the peer's close or EOF (or the close deadline), so our last bytes
    // are not destroyed by a reset from unread input.
    wait_readable();
  }
}

// An idle connection holds no queue storage: after a burst (a history replay, a flood) the
// vectors' capacity and the loop's side of the queue go back; a busy one (several writes
// since the last sweep: a member of a channel in use) keeps small_queue entries for its next
// burst until a sweep finds it quiet. (Not 'v = {}': that keeps the capacity.)
void connection::release_idle_queues() {
  if (write_waiting_) return;
  const std::size_t keep = writes_since_sweep_ >= busy_writes ? small_queue : 0;
  if (out_) {
    auto& q = *out_;
    if (q.index != q.writing.size()) return;
    if (keep == 0 && q.local.empty()) {
      out_.reset();
    } else {
      if (q.writing.capacity() > keep) std::vector<hub::shared_frame>().swap(q.writing);
      if (q.local.empty() && q.local.capacity() > keep) std::vector<hub::shared_frame>().swap(q.local);
    }
  }
  std::lock_guard lock(remote_lock_);
  if (remote_ && remote_->empty() && remote_->capacity() > keep) {
    if (keep == 0) remote_.reset();
    else std::vector<hub::shared_frame>().swap(*remote_);
  }
}

// ---------------------------------------------------------------- closing

void connection::close_after(hub::shared_frame last, boost::system::error_code why, std::string detail,
                             event_loop::clock::time_point deadline) {
  if (state_ == state::closing || state_ == state::closed) return;
  if (state_ == state::handshake) return finish(why, detail);
  state_ = state::closing;
  close_ = std::make_unique<close_state>(close_state{why, std::move(detail)});
  deadline_ = deadline;
  queue_closed_.store(true, std::memory_order_release);
  // The last bytes go after what other loops already queued.
  drain_remote_into(out().local);
  if (last) {
    push(std::move(last));
  } else {
    schedule_local_flush();
  }
}

void connection::finish(boost::system::error_code why, std::string_view detail) {
  if (state_ == state::closed) return;
  // A connection we were closing for a reason (slow consumer, a budget, a timeout) that the
  // peer then resets or drops ended for that reason: count and log it so.
  std::string merged;
  if (state_ == state::closing && close_ && close_->reason &&
      (why == errc::transport_error || why == errc::connection_lost)) {
    merged = close_->detail.empty() ? std::string() : close_->detail + "; ";
    merged += "then " + why.message() + (detail.empty() ? "" : ": " + std::string(detail));
    why = close_->reason;
    detail = merged;
  }
  state_ = state::closed;
  if (write_in_batch_) {
    write_in_batch_ = false;
    loop_.forget_send(*this);  // before the burst it points into and the descriptor go
  }
  queue_closed_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(remote_lock_);
    remote_.reset();
    remote_bytes_.store(0, std::memory_order_relaxed);
  }
  out_.reset();
  loop_bytes_.store(0, std::memory_order_relaxed);
  transport_.close(abort_on_close_);  // leaves the loop's epoll set
  if (watched_self_) loop_.retire(std::move(watched_self_));
  unlink();
  loop_.on_connection_closed();
  ctx().counters.sessions.fetch_sub(1, std::memory_order_relaxed);
  release_slots();
  if (why.category() == net_category()) {
    const auto i = static_cast<std::size_t>(why.value());
    if (i < errc_count) ctx().counters.ends[i].fetch_add(1, std::memory_order_relaxed);
  }
  if (handler_) handler_->on_finished(why, detail);
}

void connection::go_away() {
  if (state_ == state::handshake) return finish(errc::server_stopping);
  if (state_ == state::open) handler_->on_go_away();
}

void connection::on_sweep(event_loop::clock::time_point now) {
  // A busy TLS connection that went quiet goes back to releasing OpenSSL's record buffers.
  if (tls_buffers_kept_ && writes_since_sweep_ == 0) {
    tls_buffers_kept_ = false;
    transport_.keep_buffers(false);
  }
  transport_.on_sweep();
  // Quiet since the last sweep: the queue storage kept for bursts goes back.
  if (writes_since_sweep_ == 0) release_idle_queues();
  writes_since_sweep_ = 0;
  switch (state_) {
    case state::handshake:
      if (now >= deadline_ && proxy_header_pending_) {
        note_refusal(ctx().counters, refusal::proxy_header, describe() + ": no complete header in time");
        finish(errc::proxy_header_refused, "no complete PROXY header in time");
      }
      if (now >= deadline_) finish(errc::tls_handshake_timeout);
      return;
    case state::open: handler_->on_sweep(now); return;
    case state::closing:
      if (now >= deadline_) {
        // Our last bytes (a close frame, the end of a response) never reached the kernel, or
        // the peer was dropped for not reading: it stopped taking data, and the kernel still
        // holds what it could not deliver. A plain close() would leave an orphaned socket
        // retrying that for minutes (measured on loopback: 3.8 MB held in FIN-WAIT-1 for
        // over a minute), beyond every bound of ours: reset it instead, which frees it at
        // once. Otherwise the close stays graceful (a slow reader still gets the rest).
        abort_on_close_ = !close_flushed_ || (close_ && close_->reason == errc::slow_consumer);
        finish_as_closing(errc::close_timeout);
      }
      return;
    case state::closed: return;
  }
}

}  // namespace mles::net
