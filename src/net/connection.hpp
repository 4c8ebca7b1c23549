// One TCP connection, plain or TLS, in the server or the client role: readiness waits, the
// bounded send queue and the corked writer, the closing sequence, and the phase handler that
// gives the bytes a meaning. The listener's connections start with the HTTP phase, which
// hands the connection to a WebSocket session on upgrade; an outbound peer link starts with
// the client upgrade and hands over to its link session (Beast's http_session →
// websocket_session model, with one connection object instead of a moved stream).
// data path: socket ─► transport.read ─► handler.on_bytes
//            deliver/enqueue ─► send queue ─► corked write (one writev / one SSL_write burst)
// Thread-safety: deliver() from any thread (the queue lock, then a posted flush); everything
// else on the connection's event loop. Owned by shared_ptr: pending waits, posted flushes and
// whoever a handler registers with (the hub) hold references.
#pragma once

#include "hub/member.hpp"
#include "hub/shared_frame.hpp"
#include "net/admission.hpp"
#include "net/error.hpp"
#include "net/event_loop.hpp"
#include "net/spin_lock.hpp"
#include "net/transport.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mles::net {

class connection;

// What runs on a connection: one phase of its life. Called on the connection's loop only.
class connection_handler {
 public:
  virtual ~connection_handler() = default;
  // The transport is ready (TLS handshake done; at once for plain TCP).
  virtual void on_ready() {}
  // Bytes read. Called while the connection is open or closing (a closing WebSocket still
  // looks for the peer's close frame); never after it finished.
  virtual void on_bytes(std::span<std::uint8_t> bytes) = 0;
  // Everything queued so far has been written (only while the handler asked for it with
  // connection::notify_drained: the fan-out path does not touch the handler).
  virtual void on_drained() {}
  // The send queue went over its ceiling: it was emptied (but for a frame already half
  // written); the handler says why and closes. Default: end at once.
  virtual void on_overflow();
  // The loop's sweep, while the connection is open: the handler's deadlines and pings.
  virtual void on_sweep(event_loop::clock::time_point now) = 0;
  // Graceful server stop.
  virtual void on_go_away() = 0;
  // The connection ended (socket closed): release memberships and resources. Last call.
  virtual void on_finished(const boost::system::error_code& why, std::string_view detail) = 0;
  // Appended to the peer address in logs ("uid=... channel=...").
  virtual std::string describe() const { return {}; }
  // The phase that encodes what the hub relays to this connection (a link, a peer session);
  // null: plain frames. Called from any thread, while the connection is a member of a
  // channel: the handler answers the same from before its join until it ends.
  virtual hub::member* relay_target() noexcept { return nullptr; }

 protected:
  explicit connection_handler(connection& c) noexcept : conn_(c) {}
  connection& conn_;
};

// The hub's member for a WebSocket session is the connection itself: a frame for a client
// goes straight into its queue (one virtual call per recipient on the fan-out path); a
// message for a link is handed to the phase that encodes it (connection_handler::relay_target).
class connection final : public hub::member,  // first: the hub's calls need no this-adjustment
                         public std::enable_shared_from_this<connection>,
                         public connection_hook {
 public:
  // ssl == nullptr: plain TCP; the connection takes ownership of ssl. role: which side of the
  // TLS handshake this end plays (ignored for plain TCP).
  connection(event_loop& loop, boost::asio::ip::tcp::socket socket, SSL* ssl, tls_role role);
  // An accepted descriptor (non-blocking) and the peer's address as accept4() gave it.
  connection(event_loop& loop, int fd, const boost::asio::ip::tcp::endpoint& peer, SSL* ssl, tls_role role);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Registers with the loop and runs the first phase (after the TLS handshake, if any, which
  // must finish before `handshake_deadline`).
  void start(std::unique_ptr<connection_handler> first, event_loop::clock::time_point handshake_deadline);
  // Hands the connection to the next phase. The current handler stays alive until the call
  // that replaced it returns.
  void replace_handler(std::unique_ptr<connection_handler> next);
  // The listener's admission slots: the connection slot is given back when the connection
  // ends, the handshake slot when the TLS handshake is done (or the connection ends).
  // The slots must count this server's counters (ctx().counters), which are given back.
  void hold_slots(counted_slot conn_slot, counted_slot handshake_slot) noexcept {
    release_slots();
    holds_connection_slot_ = take_slot(conn_slot, ctx().counters.connections);
    holds_handshake_slot_ = take_slot(handshake_slot, ctx().counters.handshakes);
  }
  connection_handler* handler() noexcept { return handler_.get(); }
  // --proxy-protocol: before start(), the connection must begin with a PROXY header, read
  // (peeked, then consumed exactly) before TLS or HTTP within the handshake deadline.
  void expect_proxy_header() noexcept { proxy_header_pending_ = true; }
  // The client's address learnt from X-Forwarded-For (logs).
  void set_client_address(const boost::asio::ip::address& a) { remote_address_ = {a, 0}; }

  // ---- send queue
  // Any thread: queue a frame. A live frame arriving while more than the ceiling (max_queue
  // plus the history still being replayed) is already queued is refused, the queue closes,
  // and the loop calls on_overflow(). The frame's own size does not count: a queue holds at
  // most the ceiling plus one frame (a message, or a batch of them: hub::publish_batched).
  // Frames from this loop go to the lock-free local queue, except relayed ones (see
  // hub::delivery_kind), which share the locked queue with other loops' frames.
  void deliver(hub::shared_frame frame, hub::delivery_kind kind) override;
  // hub::member: a message for a link or a peer session, given to the handler's relay
  // target (none: plain frames, as for a client).
  void relay(const hub::message& m, hub::delivery_kind kind) override;
  // Loop thread: deliver, then false if the queue has overflowed.
  bool enqueue(hub::shared_frame frame, hub::delivery_kind kind);
  // Loop thread: queue bytes past the ceiling (HTTP heads and bodies, handshake bytes).
  void push(hub::shared_frame frame);

  // ---- closing
  // The last bytes this connection sends (a close frame or an HTTP error, may be empty):
  // closes the queue to deliveries, queues them after what is already queued, and once all
  // is written sends TLS close_notify + TCP FIN, then keeps reading (handed to the handler)
  // until EOF or `deadline`; `why` is the reason logged when it ends.
  void close_after(hub::shared_frame last, boost::system::error_code why, std::string detail,
                   event_loop::clock::time_point deadline);
  bool closing() const noexcept { return state_ == state::closing; }
  bool closed() const noexcept { return state_ == state::closed; }
  // Our last bytes were written and the FIN sent.
  bool close_flushed() const noexcept { return close_flushed_; }
  // Ends now: closes the socket, drops the queue, tells the handler. Idempotent.
  void finish(boost::system::error_code why, std::string_view detail = {});
  // Ends for the reason close_after() gave, or for `otherwise` if it gave none.
  void finish_as_closing(boost::system::error_code otherwise) {
    if (close_ && close_->reason) finish(close_->reason, close_->detail);
    else finish(otherwise);
  }
  // The close handshake completed (the peer answered our close): ends with the reason given
  // to close_after.
  void complete_close() { finish_as_closing({}); }

  // ---- from the loop
  // The flush asked for with event_loop::schedule_flush.
  void run_scheduled_flush() {
    local_flush_posted_ = false;
    flush();
  }
  void on_sweep(event_loop::clock::time_point now);
  // The socket's readiness (epoll event bits): resumes the wait for reading or writing.
  void on_poll_event(std::uint32_t events);
  void go_away();
  void abort() { finish(errc::server_stopping, "server stopped"); }

  // ---- facts
  event_loop& loop() noexcept { return loop_; }
  const session_context& ctx() const noexcept { return loop_.context(); }
  transport& io() noexcept { return transport_; }
  bool is_tls() const noexcept { return transport_.is_tls(); }
  const boost::asio::ip::tcp::endpoint& remote() const noexcept { return remote_address_; }
  event_loop::clock::time_point last_rx() const noexcept { return last_rx_; }
  // While open, the handler may keep one deadline here (a session's join, then its next ping;
  // it checks it in on_sweep); closing replaces it with the close deadline.
  void set_open_deadline(event_loop::clock::time_point t) noexcept { deadline_ = t; }
  event_loop::clock::time_point open_deadline() const noexcept { return deadline_; }
  std::string describe() const;
  hub::sharing frame_sharing() const noexcept {
    return ctx().settings.single_loop ? hub::sharing::one_thread : hub::sharing::threads;
  }
  // Loop thread: call the handler's on_drained() after each written burst (a body streamed
  // chunk by chunk), or stop doing so.
  void notify_drained(bool on) noexcept { notify_drained_ = on; }
  // Loop thread: wait until the socket is writable, then on_drained() when all is written
  // (a handler streaming a body with sendfile uses the socket directly).
  void wait_writable();
  // The loop's batch of sends ran this connection's queued write (send_batch). Goes on writing.
  void on_batched_write(const send_batch::outcome& o);

 private:
  enum class state : std::uint8_t { handshake, open, closing, closed };

  void wait_readable();
  void on_readable();
  void on_writable();
  void do_read();
  void after_handshake();
  bool read_proxy_header();  // false: waiting for more, or finished

  void schedule_local_flush();
  void drain_remote_into(std::vector<hub::shared_frame>& out);
  void handle_overflow();
  void flush();
  void write_some();
  bool written(io_result r, std::size_t attempted);
  void advance(std::size_t n);
  void on_all_written();
  void release_idle_queues();
  void retire_replaced() noexcept { retired_.reset(); }
  static bool take_slot(counted_slot& slot, std::atomic<std::size_t>& mine) noexcept {
    std::atomic<std::size_t>* c = slot.take();
    if (c && c != &mine) c->fetch_sub(1, std::memory_order_relaxed);  // not ours: give it back now
    return c == &mine;
  }
  // Gives back the admission slots still held (see hold_slots): the handshake's, or both.
  void release_handshake_slot() noexcept {
    if (!holds_handshake_slot_) return;
    holds_handshake_slot_ = false;
    ctx().counters.handshakes.fetch_sub(1, std::memory_order_relaxed);
  }
  void release_slots() noexcept {
    release_handshake_slot();
    if (!holds_connection_slot_) return;
    holds_connection_slot_ = false;
    ctx().counters.connections.fetch_sub(1, std::memory_order_relaxed);
  }

  event_loop& loop_;  // (its context() is ours: no reference of our own)
  transport transport_;
  boost::asio::ip::tcp::endpoint remote_address_;
  std::uint32_t writes_since_sweep_ = 0;
  event_loop::clock::time_point deadline_{};  // handshake, then the handler's (open), then closing
  event_loop::clock::time_point last_rx_{};
  // Why close_after() closes (made then: an open connection keeps no reason).
  struct close_state {
    boost::system::error_code reason;
    std::string detail;
  };
  std::unique_ptr<close_state> close_;

  std::unique_ptr<connection_handler> handler_;
  std::unique_ptr<connection_handler> retired_;  // replaced during a call; freed after it
  // While the loop watches the socket (from start to finish): the loop's epoll events name
  // this connection, which must live until it is unwatched (event_loop::retire).
  std::shared_ptr<connection> watched_self_;

  // Send queue. Frames reach a connection two ways: from its own loop (same-loop publishers,
  // the history at join, its own control frames) into out_->local without any lock, and from
  // other loops into remote_ under remote_lock_. flush() moves local, then remote_, into
  // out_->writing: history (always local) thus precedes live messages from other loops, and
  // each sender, whose path never changes, keeps its order. The byte counters are written by
  // one side only and read relaxed by both for the ceiling check.
  // Both sides are made at their first frame and given back once all is written and the
  // connection is quiet (release_idle_queues): an idle connection keeps 16 bytes, not 88.
  struct outgoing {
    std::vector<hub::shared_frame> local;    // queued on this loop, not yet taken to write
    std::vector<hub::shared_frame> writing;  // the burst being written
    std::size_t index = 0;                   // writing[index] is the first frame not fully written...
    std::size_t offset = 0;                  // ...of which offset bytes are
  };
  outgoing& out() {
    if (!out_) out_ = std::make_unique<outgoing>();
    return *out_;
  }
  bool nothing_local() const noexcept { return !out_ || out_->local.empty(); }
  std::unique_ptr<outgoing> out_;                         // loop thread only
  std::unique_ptr<std::vector<hub::shared_frame>> remote_;  // under remote_lock_
  std::atomic<std::size_t> remote_bytes_{0};              // remote_; written under remote_lock_
  std::atomic<std::size_t> loop_bytes_{0};                // local + unwritten writing; loop writes
  std::atomic<std::size_t> replay_allowance_{0};          // history bytes exempt from the ceiling
  spin_lock remote_lock_;
  bool remote_flush_posted_ = false;                      // under remote_lock_
  std::atomic<bool> queue_closed_{false};                 // no more deliveries accepted
  std::atomic<bool> overflowed_{false};                   // a live delivery hit the ceiling
  // Loop thread only (one-bit fields: none of them is touched by another thread, which a
  // field sharing their bytes would race with).
  state state_ = state::handshake;
  bool local_flush_posted_ : 1 = false;
  bool overflow_handled_ : 1 = false;
  bool read_waiting_ : 1 = false;
  bool write_waiting_ : 1 = false;
  bool write_in_batch_ : 1 = false;     // a send queued in the loop's send_batch
  bool read_wants_write_ : 1 = false;   // TLS read needs the socket writable
  bool write_wants_read_ : 1 = false;   // TLS write needs the socket readable
  bool close_flushed_ : 1 = false;      // our last bytes written: FIN sent
  bool abort_on_close_ : 1 = false;     // finish() resets the connection (see on_sweep)
  bool tls_buffers_kept_ : 1 = false;   // busy: OpenSSL keeps its record buffers (see transport)
  bool notify_drained_ : 1 = false;     // the handler streams a body: tell it after each burst
  bool proxy_header_pending_ : 1 = false;  // --proxy-protocol: the header is still to be read
  bool holds_connection_slot_ : 1 = false;  // --max-connections: counted in ctx().counters.connections
  bool holds_handshake_slot_ : 1 = false;   // --max-handshakes: counted in ctx().counters.handshakes
};

}  // namespace mles::net
