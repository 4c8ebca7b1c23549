// session: the life of one client connection (see session.hpp for the data path).
#include "net/session.hpp"

#include "net/http_state.hpp"
#include "net/tls_context.hpp"

#include "proto/auth.hpp"
#include "proto/join_frame.hpp"
#include "ws/handshake.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <sys/uio.h>

namespace mles::net {

namespace http = boost::beast::http;

namespace {

constexpr std::size_t max_reads_per_event = 16;       // fairness between sessions
constexpr std::size_t max_iov = 64;
constexpr std::size_t copy_threshold = 4096;      // frames up to this are coalesced
constexpr std::size_t max_burst = 512 * 1024;     // bytes offered to one write call
// Queue capacity reserved at a burst's first frame and kept between bursts: growing from
// one entry cost a handful of allocations per session and burst (malloc was ~10% of a
// 100-channel fan-out profile); larger capacity is given back after the burst.
constexpr std::size_t small_queue = 32;
// A join frame is a few short strings: an unauthenticated client may not make the server
// buffer a whole --max-message before it has joined. Larger: close 1009.
constexpr std::size_t max_join_frame = 64 * 1024;
constexpr std::size_t tls_chunk = 256 * 1024;
// Writes within one sweep period that make a TLS session "busy" (keeps its record buffers).
constexpr std::uint32_t busy_writes = 8;

hub::shared_frame encode_frame(ws::opcode op, std::span<const std::uint8_t> payload,
                               hub::sharing mode = hub::sharing::threads) {
  const std::size_t header = ws::server_header_size(payload.size());
  auto f = hub::shared_frame::allocate(header + payload.size(), mode);
  auto out = f.writable();
  ws::write_server_header(out.data(), op, payload.size());
  if (!payload.empty()) std::memcpy(out.data() + header, payload.data(), payload.size());
  return f;
}

std::string_view as_text(std::span<const std::uint8_t> p) {
  return {reinterpret_cast<const char*>(p.data()), p.size()};
}

}  // namespace

session::session(event_loop& loop, boost::asio::ip::tcp::socket socket, SSL* ssl, listener_role role)
    : loop_(loop), role_(role), ctx_(loop.context()), transport_(std::move(socket), ssl, loop.tls_scratch()),
      phase_(ssl ? phase::tls_handshake : phase::http),
      parser_(std::min(ctx_.settings.max_message, max_join_frame)) {
  boost::system::error_code ec;
  peer_ = transport_.socket().remote_endpoint(ec);
}

session::~session() = default;

std::string session::describe() const {
  std::string s = peer_.address().to_string() + ":" + std::to_string(peer_.port());
  if (!uid_.empty()) s += " uid=" + uid_ + " channel=" + channel_;
  return s;
}

void session::start() {
  loop_.add(*this);
  ctx_.counters.sessions.fetch_add(1, std::memory_order_relaxed);
  http_ = std::make_unique<http_state>();
  last_rx_ = last_ping_ = loop_.now();
  deadline_ = loop_.now() + ctx_.settings.handshake_timeout;
  spdlog::debug("connection from {} ({})", describe(), transport_.is_tls() ? "tls" : "plain");
  do_read();
}

// ---------------------------------------------------------------- reading

void session::wait_readable() {
  // TLS output produced while reading (handshake records, alerts) may still be queued.
  if (transport_.has_pending_output()) wait_writable();
  if (read_waiting_ || phase_ == phase::closed) return;
  read_waiting_ = true;
  transport_.socket().async_wait(
      boost::asio::ip::tcp::socket::wait_read,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void session::wait_writable() {
  if (write_waiting_ || phase_ == phase::closed) return;
  write_waiting_ = true;
  transport_.socket().async_wait(
      boost::asio::ip::tcp::socket::wait_write,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_writable(ec); });
}

void session::on_readable(const boost::system::error_code& ec) {
  read_waiting_ = false;
  if (phase_ == phase::closed) return;
  if (ec) return finish("socket error: " + ec.message());
  loop_.refresh_now();
  if (write_wants_read_) {
    write_wants_read_ = false;
    write_some();
    if (phase_ == phase::closed) return;
  }
  do_read();
}

void session::on_writable(const boost::system::error_code& ec) {
  write_waiting_ = false;
  if (phase_ == phase::closed) return;
  if (ec) return finish("socket error: " + ec.message());
  write_some();
  if (phase_ == phase::closed) return;
  if (read_wants_write_) {
    read_wants_write_ = false;
    do_read();
  }
}

// Drains the socket until it would block (the reactor is edge-triggered), a bounded number of
// reads per event so one busy client cannot starve the loop.
void session::do_read() {
  for (std::size_t i = 0; i < max_reads_per_event; ++i) {
    if (phase_ == phase::closed) return;
    if (phase_ == phase::tls_handshake) {
      const io_result r = transport_.handshake();
      if (r.status == io_status::ok) {
        if (transport_.alpn() == acme_tls_alpn) {
          // RFC 8737 §3: a validation connection ends once the handshake is done.
          return finish("ACME tls-alpn-01 validation handshake");
        }
        phase_ = phase::http;
        spdlog::debug("TLS {} ALPN '{}' with {}", transport_.tls_version(), transport_.alpn(), describe());
        continue;
      }
      if (r.status == io_status::want_read) return wait_readable();
      if (r.status == io_status::want_write) return wait_writable();
      return finish(r.status == io_status::eof ? std::string("closed during TLS handshake")
                                               : transport_.last_error());
    }
    auto buf = loop_.read_buffer();
    const io_result r = transport_.read(buf);
    switch (r.status) {
      case io_status::ok:
        last_rx_ = loop_.now();
        handle_bytes(buf.first(r.n));
        break;
      case io_status::want_read: return wait_readable();
      case io_status::want_write:
        read_wants_write_ = true;
        return wait_writable();
      case io_status::eof:
        return finish(phase_ == phase::closing && !end_reason_.empty() ? end_reason_
                      : "connection closed by peer");
      case io_status::error: return finish(transport_.last_error());
    }
  }
  // More may be waiting: come back after the other sessions had their turn.
  boost::asio::post(loop_.io(), [self = shared_from_this()] { self->do_read(); });
}

void session::handle_bytes(std::span<std::uint8_t> bytes) {
  switch (phase_) {
    case phase::http: return handle_http(bytes);
    case phase::await_join:
    case phase::joined: return feed_frames(bytes);
    case phase::closing:
      // Waiting for the peer's close frame or EOF: look for a close, drop the rest.
      if (!close_after_http_ && !parser_done_) return feed_frames(bytes);
      return;
    default: return;
  }
}

void session::feed_frames(std::span<std::uint8_t> bytes) {
  const ws::consume_result r = parser_.consume(bytes, *this);
  if (r.error != ws::close_code::none || r.closed) parser_done_ = true;
  if (r.error != ws::close_code::none && phase_ != phase::closed && phase_ != phase::closing) {
    const char* why = r.error == ws::close_code::protocol_error    ? "protocol error"
                      : r.error == ws::close_code::invalid_payload ? "invalid UTF-8"
                      : r.error == ws::close_code::message_too_big ? "message too big"
                                                                    : "bad frame";
    start_close(r.error, why, why);
  }
  if (phase_ == phase::joined || phase_ == phase::await_join) parser_.shrink();
}

// ---------------------------------------------------------------- frames from the client

bool session::on_message(ws::opcode op, std::span<const std::uint8_t> payload) {
  if (phase_ == phase::joined) {
    ctx_.hub.publish(membership_, encode_frame(op, payload, frame_sharing()), loop_.now());
    return true;
  }
  if (phase_ == phase::await_join) return handle_join(op, payload);
  return true;  // closing: dropped, but keep parsing to find the peer's close frame
}

bool session::handle_join(ws::opcode op, std::span<const std::uint8_t> payload) {
  boost::system::error_code ec;
  proto::join_frame join;
  if (op != ws::opcode::text) ec = proto::errc::join_not_text;
  else ec = proto::parse_join_frame(as_text(payload), join);
  if (!ec) ec = ctx_.auth.verify(join);
  if (!ec) {
    uid_ = join.uid;
    channel_ = join.channel;
    auto self = shared_from_this();
    membership_ = ctx_.hub.join(join.channel, join.uid, encode_frame(op, payload, frame_sharing()), self, ec,
                                loop_.now());
  }
  if (ec) {
    if (ec == proto::errc::auth_mismatch || ec == proto::errc::auth_required)
      spdlog::warn("{}: join refused: {}", describe(), ec.message());
    start_close(ws::close_code::policy_violation, ec.message(), "join refused: " + ec.message());
    return false;
  }
  phase_ = phase::joined;
  parser_.set_max_message(ctx_.settings.max_message);
  deadline_ = {};
  last_ping_ = loop_.now();
  spdlog::info("{}: joined", describe());
  return true;
}

bool session::on_ping(std::span<const std::uint8_t> payload) {
  if (phase_ == phase::closing) return true;
  // Pongs count against the send ceiling: a client pinging without reading is a slow consumer.
  return enqueue(encode_frame(ws::opcode::pong, payload), hub::delivery_kind::live);
}

bool session::on_pong(std::span<const std::uint8_t>) { return true; }

void session::on_close(std::uint16_t code, std::string_view) {
  if (phase_ == phase::closing) {
    // The answer to our close: the handshake is complete.
    if (close_flushed_) finish(end_reason_.empty() ? "closed" : end_reason_);
    return;
  }
  // RFC 6455 §5.5.1: answer with a close frame echoing the status code.
  std::vector<std::uint8_t> body;
  if (code != static_cast<std::uint16_t>(ws::close_code::no_status)) {
    body = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code & 0xff)};
  }
  if (membership_) ctx_.hub.leave(membership_);
  phase_ = phase::closing;
  end_reason_ = "client closed (" + std::to_string(code) + ")";
  deadline_ = loop_.now() + ctx_.settings.close_timeout;
  queue_close_frame(ws::encode_server_frame(ws::opcode::close, body));
}

// ---------------------------------------------------------------- send queue

void session::deliver(hub::shared_frame frame, hub::delivery_kind kind) {
  if (queue_closed_.load(std::memory_order_acquire)) return;
  const std::size_t size = frame.size();
  const std::size_t ceiling = ctx_.settings.max_queue + replay_allowance_.load(std::memory_order_relaxed);
  if (loop_.running_in_this_thread()) {
    const std::size_t mine = loop_bytes_.load(std::memory_order_relaxed);
    if (kind == hub::delivery_kind::live &&
        mine + remote_bytes_.load(std::memory_order_relaxed) + size > ceiling) {
      // DESIGN §2.3: never wait for a member; over its ceiling it is disconnected.
      overflowed_.store(true, std::memory_order_relaxed);
      queue_closed_.store(true, std::memory_order_release);
      frame.reset();
    } else {
      if (kind == hub::delivery_kind::history) {
        replay_allowance_.store(replay_allowance_.load(std::memory_order_relaxed) + size,
                                std::memory_order_relaxed);
      }
      loop_bytes_.store(mine + size, std::memory_order_relaxed);
      if (local_.capacity() == 0) local_.reserve(small_queue);
      local_.push_back(std::move(frame));
    }
    schedule_local_flush();
    return;
  }
  bool post = false;
  {
    std::lock_guard lock(remote_lock_);
    if (queue_closed_.load(std::memory_order_relaxed)) return;
    const std::size_t remote = remote_bytes_.load(std::memory_order_relaxed);
    if (loop_bytes_.load(std::memory_order_relaxed) + remote + size > ceiling) {
      overflowed_.store(true, std::memory_order_relaxed);
      queue_closed_.store(true, std::memory_order_release);
    } else {
      remote_bytes_.store(remote + size, std::memory_order_relaxed);
      if (remote_.capacity() == 0) remote_.reserve(small_queue);
      remote_.push_back(std::move(frame));
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

bool session::enqueue(hub::shared_frame frame, hub::delivery_kind kind) {
  deliver(std::move(frame), kind);
  return !overflowed_.load(std::memory_order_relaxed);
}

// Loop thread: queue a frame past the ceiling and the closed gate (close frames).
void session::push_local(hub::shared_frame frame) {
  loop_bytes_.store(loop_bytes_.load(std::memory_order_relaxed) + frame.size(), std::memory_order_relaxed);
  local_.push_back(std::move(frame));
  schedule_local_flush();
}

void session::schedule_local_flush() {
  if (local_flush_posted_) return;
  local_flush_posted_ = true;
  boost::asio::post(loop_.io(), [self = shared_from_this()] {
    self->local_flush_posted_ = false;
    self->flush();
  });
}

void session::drain_remote_into(std::vector<hub::shared_frame>& out) {
  std::lock_guard lock(remote_lock_);
  if (remote_.empty()) return;
  if (out.empty()) {
    out.swap(remote_);
  } else {
    out.insert(out.end(), std::make_move_iterator(remote_.begin()), std::make_move_iterator(remote_.end()));
    remote_.clear();
  }
  loop_bytes_.store(loop_bytes_.load(std::memory_order_relaxed) + remote_bytes_.load(std::memory_order_relaxed),
                    std::memory_order_relaxed);
  remote_bytes_.store(0, std::memory_order_relaxed);
}

// The close frame is the last thing this session sends: close the gate, pull in what other
// loops already queued, then queue the close frame behind it.
void session::queue_close_frame(std::span<const std::uint8_t> frame_bytes) {
  close_sent_ = true;
  queue_closed_.store(true, std::memory_order_release);
  drain_remote_into(local_);
  push_local(hub::shared_frame::copy_of(frame_bytes));
}

void session::handle_overflow() {
  overflow_handled_ = true;
  ctx_.counters.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("{}: slow consumer: more than {} bytes queued, disconnecting", describe(),
               ctx_.settings.max_queue);
  // Keep only a frame already half written (the stream must stay well-formed), then say why.
  const std::size_t keep = write_index_ + (write_offset_ > 0 ? 1 : 0);
  writing_.resize(std::min(keep, writing_.size()));
  local_.clear();
  {
    std::lock_guard lock(remote_lock_);
    remote_.clear();
    remote_bytes_.store(0, std::memory_order_relaxed);
  }
  std::size_t left = 0;
  if (write_index_ < writing_.size()) left = writing_[write_index_].size() - write_offset_;
  loop_bytes_.store(left, std::memory_order_relaxed);
  start_close(ws::close_code::policy_violation, "send queue full", "slow consumer");
}

void session::flush() {
  if (phase_ == phase::closed) return;
  if (overflowed_.load(std::memory_order_relaxed) && !overflow_handled_ && phase_ != phase::closing) {
    return handle_overflow();
  }
  if (write_index_ == writing_.size()) {
    writing_.clear();
    write_index_ = 0;
    if (!local_.empty()) writing_.swap(local_);
  } else if (!local_.empty()) {
    writing_.insert(writing_.end(), std::make_move_iterator(local_.begin()), std::make_move_iterator(local_.end()));
    local_.clear();
  }
  drain_remote_into(writing_);
  if (!write_waiting_) write_some();
}

void session::write_some() {
  if (transport_.has_pending_output()) {
    const io_result f = transport_.flush_output();
    if (f.status == io_status::want_write) return wait_writable();
    if (f.status != io_status::ok) return finish(transport_.last_error());
  }
  while (write_index_ < writing_.size()) {
    io_result r{io_status::ok};
    std::size_t attempted = 0;
    if (!transport_.is_tls()) {
      // Plain: one gather write. Small frames are copied side by side into the loop's write
      // buffer (the kernel handles one long segment far faster than many 66-byte ones);
      // large frames go from their own bytes. A partial write just advances: the rest is
      // rebuilt from the immutable frames next time.
      std::array<iovec, max_iov> iov;
      auto out = loop_.write_buffer();
      std::size_t used = 0;
      int count = 0;
      bool last_in_buffer = false;
      std::size_t offset = write_offset_;
      for (std::size_t i = write_index_; i < writing_.size() && attempted < max_burst; ++i) {
        const auto& f = writing_[i];
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
      r = count == 1 ? transport_.write({static_cast<const std::uint8_t*>(iov[0].iov_base), iov[0].iov_len})
                     : transport_.writev(iov.data(), count);
    } else {
      // TLS: coalesce small frames into one SSL_write; a large frame goes out from its own
      // bytes. OpenSSL encrypts into memory and the transport sends the records at once.
      const auto& first = writing_[write_index_];
      const std::size_t first_left = first.size() - write_offset_;
      std::span<const std::uint8_t> chunk;
      if (first_left >= tls_chunk / 4) {
        chunk = {first.data() + write_offset_, std::min(first_left, 4 * tls_chunk)};
      } else {
        auto out = loop_.write_buffer();
        const std::size_t limit = std::min(out.size(), tls_chunk);
        std::size_t len = 0;
        std::size_t offset = write_offset_;
        for (std::size_t i = write_index_; i < writing_.size() && len < limit; ++i) {
          const auto& f = writing_[i];
          const std::size_t take = std::min(f.size() - offset, limit - len);
          std::memcpy(out.data() + len, f.data() + offset, take);
          len += take;
          offset = 0;
        }
        chunk = {out.data(), len};
      }
      attempted = chunk.size();
      r = transport_.write(chunk);
    }
    switch (r.status) {
      case io_status::ok:
        if (++writes_since_sweep_ == busy_writes && transport_.is_tls() && !tls_buffers_kept_) {
          tls_buffers_kept_ = true;
          transport_.keep_buffers(true);
        }
        advance(r.n);
        // Kernel buffer full: plain took less, or TLS holds ciphertext back.
        if (r.n < attempted || transport_.has_pending_output()) return wait_writable();
        break;
      case io_status::want_write: return wait_writable();
      case io_status::want_read:
        write_wants_read_ = true;
        return;  // the pending read wait resumes us
      case io_status::eof:
      case io_status::error:
        return finish(r.status == io_status::eof ? std::string("connection closed while writing")
                                                 : transport_.last_error());
    }
  }
  on_all_written();
}

void session::advance(std::size_t n) {
  const std::size_t written = n;
  while (n > 0 && write_index_ < writing_.size()) {
    auto& f = writing_[write_index_];
    const std::size_t left = f.size() - write_offset_;
    if (n >= left) {
      n -= left;
      f.reset();
      ++write_index_;
      write_offset_ = 0;
    } else {
      write_offset_ += n;
      n = 0;
    }
  }
  loop_bytes_.store(loop_bytes_.load(std::memory_order_relaxed) - written, std::memory_order_relaxed);
  const std::size_t allowance = replay_allowance_.load(std::memory_order_relaxed);
  if (allowance) replay_allowance_.store(allowance - std::min(allowance, written), std::memory_order_relaxed);
}

void session::on_all_written() {
  write_index_ = write_offset_ = 0;
  writing_.clear();
  bool remote_empty = true;
  {
    std::lock_guard lock(remote_lock_);
    remote_empty = remote_.empty();
  }
  // Give big queue storage back right after the burst. Measured: keeping it for the next
  // burst (releasing only when idle) was ~15% slower on 100 channels x 10 members, as
  // 1000 sessions' retained vectors crowd the cache while fresh ones reuse hot memory.
  release_idle_queues();
  // A file body is streamed one chunk per burst.
  if (phase_ == phase::http && http_ && http_streaming()) {
    stream_next_chunk();
    return;
  }
  // Anything still queued has a flush posted; it will come back here.
  if (phase_ == phase::closing && close_sent_ && !close_flushed_ && local_.empty() && remote_empty) {
    close_flushed_ = true;
    transport_.shutdown_send();
    // Keep reading until the client's close or EOF (or the close deadline), so our last bytes
    // are not destroyed by a reset from unread input.
    wait_readable();
  }
}

// ---------------------------------------------------------------- closing

void session::start_close(ws::close_code code, std::string_view reason, std::string_view why) {
  if (phase_ == phase::closing || phase_ == phase::closed) return;
  if (phase_ == phase::tls_handshake || phase_ == phase::http) return finish(why);
  if (membership_) ctx_.hub.leave(membership_);
  phase_ = phase::closing;
  end_reason_ = std::string(why);
  deadline_ = loop_.now() + ctx_.settings.close_timeout;
  queue_close_frame(ws::encode_close_frame(code, reason));
}

void session::finish(std::string_view why) {
  if (phase_ == phase::closed) return;
  const bool was_joined = membership_ || !uid_.empty();
  if (membership_) ctx_.hub.leave(membership_);
  phase_ = phase::closed;
  queue_closed_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(remote_lock_);
    remote_.clear();
    remote_bytes_.store(0, std::memory_order_relaxed);
  }
  local_.clear();
  writing_.clear();
  write_index_ = write_offset_ = 0;
  loop_bytes_.store(0, std::memory_order_relaxed);
  end_http_body();
  http_.reset();
  transport_.close();
  unlink();
  loop_.on_session_closed();
  ctx_.counters.sessions.fetch_sub(1, std::memory_order_relaxed);
  if (was_joined) spdlog::info("{}: session ended: {}", describe(), why);
  else spdlog::debug("{}: connection ended: {}", describe(), why);
}

void session::go_away() {
  if (phase_ == phase::tls_handshake || phase_ == phase::http) return finish("server stopping");
  start_close(ws::close_code::going_away, "server stopping", "server stopping");
}

// An idle session holds no queue storage: after a burst (a history replay, a flood) the
// vectors' capacity goes back. (Not 'v = {}': that keeps the capacity.)
void session::release_idle_queues() {
  if (write_index_ != writing_.size() || write_waiting_) return;
  if (writing_.capacity() > small_queue) std::vector<hub::shared_frame>().swap(writing_);
  if (local_.empty() && local_.capacity() > small_queue) std::vector<hub::shared_frame>().swap(local_);
  std::lock_guard lock(remote_lock_);
  if (remote_.empty() && remote_.capacity() > small_queue) std::vector<hub::shared_frame>().swap(remote_);
}

void session::on_sweep(event_loop::clock::time_point now) {
  // A busy TLS session that went quiet goes back to releasing OpenSSL's record buffers.
  if (tls_buffers_kept_ && writes_since_sweep_ == 0) {
    tls_buffers_kept_ = false;
    transport_.keep_buffers(false);
  }
  writes_since_sweep_ = 0;
  switch (phase_) {
    case phase::tls_handshake:
      if (now >= deadline_) finish("TLS handshake timeout");
      return;
    case phase::http:
      if (now >= deadline_) finish(http_ && http_->busy ? "HTTP response stalled" : "HTTP timeout");
      return;
    case phase::await_join:
      if (now >= deadline_) {
        start_close(ws::close_code::policy_violation, proto::make_error_code(proto::errc::join_timeout).message(),
                    "join timeout");
      }
      return;
    case phase::joined: {
      const auto interval = ctx_.settings.ping_interval;
      if (now - last_rx_ >= 3 * interval) {
        start_close(ws::close_code::going_away, "ping timeout", "ping timeout: nothing received");
        return;
      }
      if (now - last_ping_ >= interval) {
        last_ping_ = now;
        static const hub::shared_frame ping = encode_frame(ws::opcode::ping, {});
        enqueue(ping, hub::delivery_kind::live);
      }
      return;
    }
    case phase::closing:
      if (now >= deadline_) finish(end_reason_.empty() ? "close timeout" : end_reason_);
      return;
    case phase::closed: return;
  }
}

}  // namespace mles::net
