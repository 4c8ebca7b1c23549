// One client connection from accept to close: TLS handshake, the HTTP upgrade (parsed by
// Beast), the join frame, then frames to and from the hub.
// data path: transport.read ─► (HTTP request | ws::frame_parser) ─► hub.join / hub.publish
//            member.deliver ─► send queue ─► corked write (one writev / one SSL_write burst)
// Thread-safety: deliver() from any thread (it takes the queue lock and posts a flush);
// everything else runs on the session's event loop. Owned by shared_ptr: pending operations,
// posted flushes and the hub's membership list hold references.
#pragma once

#include "http/file_server.hpp"
#include "hub/hub.hpp"
#include "hub/member.hpp"
#include "net/event_loop.hpp"
#include "net/spin_lock.hpp"
#include "net/transport.hpp"
#include "ws/frame_parser.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mles::net {

struct http_state;  // Beast parser, buffered requests, the response in progress (HTTP phase)

// What a listener's connections serve: the TLS port (WebSocket + HTTPS) or the plain port
// 80 with --redirect (redirects to HTTPS, nothing else).
enum class listener_role : std::uint8_t { main, redirect };

class session final : public hub::member,
                      public std::enable_shared_from_this<session>,
                      public session_hook,
                      private ws::frame_handler {
 public:
  session(event_loop& loop, boost::asio::ip::tcp::socket socket, SSL* ssl, listener_role role);
  ~session();

  void start();
  // hub::member
  void deliver(hub::shared_frame frame, hub::delivery_kind kind) override;
  // From the loop's sweep: deadlines, pings.
  void on_sweep(event_loop::clock::time_point now);
  // Graceful server stop: close 1001.
  void go_away();
  // Immediate end (the loop is no longer running): release the socket and the membership.
  void abort(std::string_view why) { finish(why); }

 private:
  enum class phase : std::uint8_t { tls_handshake, http, await_join, joined, closing, closed };

  // reading
  void wait_readable();
  void wait_writable();
  void on_readable(const boost::system::error_code& ec);
  void on_writable(const boost::system::error_code& ec);
  void do_read();
  void handle_bytes(std::span<std::uint8_t> bytes);
  // HTTP phase (session_http.cpp): a request loop with keep-alive and pipelining, until an
  // upgrade request turns the connection into a WebSocket session.
  void handle_http(std::span<const std::uint8_t> bytes);
  void parse_requests();
  void dispatch_request();
  void accept_upgrade();
  void serve_file();
  void serve_redirect();
  void serve_proxy(http::proxy_match match);
  void on_proxied(std::string head_fields, unsigned status, std::string body);
  void on_compressed(std::shared_ptr<const std::string> body);
  void send_response(http::file_response r);
  bool open_file_body();
  void on_file_slot();
  bool http_streaming() const noexcept;
  void stream_next_chunk();
  void end_http_body() noexcept;
  void response_finished();
  void respond_http(unsigned status, std::string_view body, std::string_view extra_headers = {});
  // ws::frame_handler
  bool on_message(ws::opcode op, std::span<const std::uint8_t> payload) override;
  bool on_ping(std::span<const std::uint8_t> payload) override;
  bool on_pong(std::span<const std::uint8_t> payload) override;
  void on_close(std::uint16_t code, std::string_view reason) override;
  bool handle_join(ws::opcode op, std::span<const std::uint8_t> payload);
  void feed_frames(std::span<std::uint8_t> bytes);

  // writing
  bool enqueue(hub::shared_frame frame, hub::delivery_kind kind);
  void push_local(hub::shared_frame frame);
  void schedule_local_flush();
  void drain_remote_into(std::vector<hub::shared_frame>& out);
  void queue_close_frame(std::span<const std::uint8_t> body_frame);
  void handle_overflow();
  void flush();
  void write_some();
  void advance(std::size_t n);
  void on_all_written();
  void release_idle_queues();

  // closing
  void start_close(ws::close_code code, std::string_view reason, std::string_view why);
  void finish(std::string_view why);

  std::string describe() const;
  hub::sharing frame_sharing() const noexcept {
    return ctx_.settings.single_loop ? hub::sharing::one_thread : hub::sharing::threads;
  }

  event_loop& loop_;
  listener_role role_;
  const session_context& ctx_;
  transport transport_;
  boost::asio::ip::tcp::endpoint peer_;
  phase phase_;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  bool read_wants_write_ = false;   // TLS read needs the socket writable
  bool write_wants_read_ = false;   // TLS write needs the socket readable
  bool close_sent_ = false;         // our close frame is queued
  bool close_flushed_ = false;      // ... and written: TCP FIN sent
  bool close_after_http_ = false;   // HTTP error response: close once written
  bool parser_done_ = false;        // the parser saw a close frame or an error: feed no more
  bool tls_buffers_kept_ = false;   // busy: OpenSSL keeps its record buffers (see transport)
  std::uint32_t writes_since_sweep_ = 0;
  event_loop::clock::time_point deadline_{};
  event_loop::clock::time_point last_rx_{};
  event_loop::clock::time_point last_ping_{};

  std::unique_ptr<http_state> http_;
  ws::frame_parser parser_;
  hub::membership membership_;
  std::string uid_;
  std::string channel_;
  std::string end_reason_;

  // Send queue. Frames reach a session two ways: from its own loop (same-loop publishers,
  // the history at join, its own control frames) into local_ without any lock, and from
  // other loops into remote_ under remote_lock_. flush() moves local_, then remote_, into
  // writing_: history (always local) thus precedes live messages from other loops, and each
  // sender, whose path never changes, keeps its order. The byte counters are written by one
  // side only and read relaxed by both for the ceiling check.
  std::vector<hub::shared_frame> local_;                  // loop thread only
  bool local_flush_posted_ = false;                       // loop thread only
  bool overflow_handled_ = false;                         // loop thread only
  spin_lock remote_lock_;
  std::vector<hub::shared_frame> remote_;                 // under remote_lock_
  bool remote_flush_posted_ = false;                      // under remote_lock_
  std::atomic<std::size_t> remote_bytes_{0};              // remote_; written under remote_lock_
  std::atomic<std::size_t> loop_bytes_{0};                // local_ + unwritten writing_; loop writes
  std::atomic<std::size_t> replay_allowance_{0};          // history bytes exempt from the ceiling
  std::atomic<bool> queue_closed_{false};                 // no more deliveries accepted
  std::atomic<bool> overflowed_{false};                   // a live delivery hit the ceiling
  std::vector<hub::shared_frame> writing_;                // the burst being written (loop)
  std::size_t write_index_ = 0;
  std::size_t write_offset_ = 0;
};

}  // namespace mles::net
