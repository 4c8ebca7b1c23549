// One bench event loop: level-triggered epoll driving many WebSocket client connections
// (plain or TLS) over loopback. Reads in big chunks, parses server frames in place, queues
// masked client frames per connection and writes each connection once per round.
#pragma once

#include "bench_common.hpp"
#include "net/byte_buffer.hpp"
#include "net/tls13_records.hpp"
#include "ws_wire.hpp"

#include <openssl/ssl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct epoll_event;
struct io_uring;

namespace mles::bench {

enum class conn_state : std::uint8_t { idle, connecting, tls_handshake, upgrading, open, closed };

// One client connection. Owned by its client_loop (stable address); modes keep pointers.
struct connection {
  std::uint32_t id_ = 0;  // the mode's member index
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  conn_state state_ = conn_state::idle;
  bool dirty_ = false;             // on the loop's flush list
  bool read_wants_write_ = false;  // TLS: SSL_read asked for the socket to become writable
  bool read_paused_ = false;       // pause_reading(): never read again (a stalled member)
  bool tls_drained_ = false;       // TLS: the last read() found the socket empty (see socket_bio_read)
  std::uint32_t events_ = 0;       // epoll interest currently registered
  std::uint32_t mask_rng_ = 0;     // xorshift32 state for the masking keys
  std::string out_;                // bytes not yet written (frames already masked)
  std::size_t out_off_ = 0;
  std::string in_;                 // unparsed tail of the last read (partial frame/response)
  std::string frag_;               // fragmented message being reassembled
  ws_opcode frag_opcode_ = ws_opcode::continuation;
  std::string ws_key_;             // our Sec-WebSocket-Key
  clock_ns t_connect_ = 0;         // connect() called
  clock_ns t_tcp_ = 0;             // TCP established
  clock_ns t_open_ = 0;            // 101 received
  const endpoint* target_ = nullptr;          // server to dial; null: the loop's
  const std::string* target_host_ = nullptr;  // its Host header; null: the loop's
  // TLS 1.3 once the handshake is done: the records are ours (client_loop::take_over_records).
  std::unique_ptr<net::tls13::application_secrets> tls_secrets_;  // during the handshake
  std::unique_ptr<net::tls13::record_layer> records_;
  std::string records_in_;    // an incomplete record read so far
  net::byte_buffer sealed_;  // records not yet written (out_ is sealed when flushed)
  std::size_t sealed_off_ = 0;

  std::size_t queued() const noexcept { return out_.size() - out_off_ + (sealed_.size() - sealed_off_); }
};

// What a mode does with connections. Called on the loop's thread.
class client_handler {
 public:
  virtual void on_tcp_connected(connection&, clock_ns /*now*/) {}
  // The upgrade completed (101 checked); typically: send the join frame.
  virtual void on_open(connection& c, clock_ns now) = 0;
  // A whole data message (text/binary). data stays valid during the call only.
  // read_time: when the bytes were read (one clock read per read batch).
  virtual void on_message(connection& c, ws_opcode op, const char* data, std::size_t n,
                          clock_ns read_time) = 0;
  // The connection failed or the server closed it; the loop closes it after the call.
  virtual void on_failure(connection& c, std::string_view why) = 0;
  // After each batch of events, before queued frames are flushed.
  virtual void on_round(clock_ns now) = 0;
  // Within a round, between connections' reads (at most every progress_interval): a paced
  // mode queues what has become due since the round began, instead of after the whole round
  // (reading 100 busy connections takes a millisecond here). True: something was queued, and
  // the loop writes it at once.
  virtual bool on_progress(clock_ns /*now*/) { return false; }
  // Absolute time of the next on_round the mode needs even without I/O (the loop caps the
  // wait at 20 ms). Called with the loop marked sleeping: see client_loop::wake_if_sleeping.
  virtual clock_ns next_wakeup(clock_ns now) = 0;

 protected:
  ~client_handler() = default;
};

// Owned by a mode's main thread, run on one thread of its own. Thread-safety: everything
// runs on the loop's thread except wake() and wake_if_sleeping().
class client_loop {
 public:
  // batch_reads: the plain connections' reads of one round go through io_uring together (one
  // system call), where the kernel allows a ring.
  client_loop(const endpoint& ep, SSL_CTX* tls, std::string host_header, bool batch_reads = false);
  ~client_loop();
  client_loop(const client_loop&) = delete;
  client_loop& operator=(const client_loop&) = delete;

  void set_handler(client_handler* h) noexcept { handler_ = h; }

  // A new, unconnected connection with a stable address.
  // target/host: another server for this connection (e.g. publishers on a linked server).
  connection& create(std::uint32_t id, const endpoint* target = nullptr, const std::string* host = nullptr);
  // Starts a non-blocking connect (then TLS, then the upgrade request). On an immediate
  // failure the handler's on_failure is called.
  void start_connect(connection& c);
  // Connections between start_connect and 101 (or failure).
  std::size_t handshakes_in_progress() const noexcept { return handshaking_; }

  // Queues one masked frame; flushed at the end of the round.
  void send_frame(connection& c, ws_opcode op, const char* payload, std::size_t n);
  // From now on this connection is never read (its receive buffer fills, the server's queue
  // for it overflows); only a reset or hang-up is noticed (on_failure). Call from on_open.
  void pause_reading(connection& c);
  // Closes the socket now (no close frame: the server sees EOF), abortively (RST) if asked.
  enum class close_kind { graceful, abortive };
  void close(connection& c, close_kind kind = close_kind::graceful);

  // Runs rounds until stop is set (checked every round; wake() makes it prompt).
  void run(const std::atomic<bool>& stop);
  // From any thread: interrupt the current wait.
  void wake() noexcept;
  // From another loop's thread, after publishing progress this loop may wait for: wakes it
  // only if it is (about to be) waiting. The caller issues a seq_cst fence first.
  void wake_if_sleeping() noexcept {
    if (sleeping_.load(std::memory_order_relaxed)) wake();
  }

  std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  std::uint64_t read_calls() const noexcept { return read_calls_; }

 private:
  void on_event(connection& c, std::uint32_t ev);
  void finish_connect(connection& c);
  void continue_tls_handshake(connection& c);
  void take_over_records(connection& c);
  // One read on a connection whose records are ours: rbuf_[at, ...) gets its plaintext.
  struct read_outcome {
    std::size_t plaintext = 0;
    bool drained = false;
    bool eof = false;
    std::string error;
  };
  read_outcome read_records(connection& c, std::size_t at);
  // A read()/recv result (bytes, or -errno) into `space` bytes.
  static read_outcome outcome_of_read(std::int64_t r, std::size_t space);
  // base[0, n): the incomplete record kept from the last read, then the new bytes. Opens the
  // whole records in place (o.plaintext: their plaintext, moved to base) and keeps the rest.
  void open_records(connection& c, char* base, std::size_t n, read_outcome& o);
  // After a read: buf[0, have) is the unparsed tail, o.plaintext new bytes follow it. Parses,
  // keeps what is left, ends the connection on EOF or an error. True: read on (not drained).
  bool take_read(connection& c, char* buf, std::size_t have, const read_outcome& o, clock_ns read_time);
  void send_upgrade_request(connection& c);
  void do_read(connection& c);
  // The round's readable plain connections (batchable() and collected in run) read at once.
  bool batchable(const connection& c, std::uint32_t ev) const noexcept;
  void read_batch();
  // Parses p[0, n) (rbuf_ unless given); returns false if the connection failed.
  bool consume(connection& c, std::size_t n, clock_ns read_time) { return consume(c, rbuf_.data(), n, read_time); }
  bool consume(connection& c, char* p, std::size_t n, clock_ns read_time);
  bool consume_upgrade_response(connection& c, const char* p, std::size_t n, std::size_t& used);
  void flush(connection& c);
  void flush_dirty();
  // Between reads: gives the handler its on_progress when progress_interval has passed.
  void progress();
  void update_interest(connection& c);
  void fail(connection& c, std::string_view why);
  void mark_dirty(connection& c);

  const endpoint& target_of(const connection& c) const noexcept;
  const endpoint& endpoint_;
  SSL_CTX* tls_;
  std::string host_header_;
  client_handler* handler_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> sleeping_{false};
  std::deque<connection> connections_;
  std::vector<connection*> dirty_;
  clock_ns next_progress_ = 0;
  std::string rbuf_;  // shared read buffer
  std::unique_ptr<io_uring> ring_;    // batched reads (null: read() per connection)
  std::vector<connection*> to_read_;  // this round's batchable readable connections
  std::string batch_buf_;             // one slot per batched read
  std::size_t handshaking_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t read_calls_ = 0;
};

}  // namespace mles::bench
