// A connection's byte transport: a non-blocking TCP socket, optionally wrapped in TLS driven
// directly through OpenSSL (no Asio ssl::stream and its per-stream buffers).
// TLS reads go through a socket BIO. TLS writes go through a memory sink: OpenSSL encrypts a
// whole burst of records into the loop's scratch buffer and the transport sends it with one
// send() (OpenSSL's socket BIO would make one syscall per 16 KiB record). Ciphertext the
// kernel does not take at once is kept per session until the socket is writable again.
// After a TLS 1.3 handshake in the server role the transport switches to its own record
// layer (tls13::record_layer) and frees the SSL object: an idle session then keeps keys and
// sequence numbers only, reads decrypt whole socket chunks in place, and writes encrypt a
// burst straight into the scratch buffer. The traffic secrets come from OpenSSL's key-log
// callback (tls13_keylog, installed on every server context); the records OpenSSL already
// sent under the new key (session tickets) are counted by opening them. TLS 1.2 sessions,
// the client role, and any handshake whose state cannot be taken over exactly keep OpenSSL.
// data path: socket ─► transport.read ─► session;  session ─► transport.write ─► socket
// Thread-safety: none; used only on its session's event loop.
#pragma once

#include "net/tls13_records.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>  // iovec, MSG_NOSIGNAL

namespace mles::net {

// OpenSSL's key-log callback for server contexts: hands a handshake's TLS 1.3 application
// traffic secrets to its transport (nothing is logged anywhere).
void tls13_keylog(const SSL* ssl, const char* line);

enum class io_status : std::uint8_t {
  ok,          // n bytes moved (n > 0), or handshake/shutdown done
  want_read,   // retry when the socket is readable
  want_write,  // retry when the socket is writable
  eof,         // orderly end (TCP FIN or TLS close_notify)
  error,       // connection broken or protocol failure; see transport::last_error()
};

struct io_result {
  io_status status;
  std::size_t n = 0;
};

// Which side of the TLS handshake this end plays.
enum class tls_role : std::uint8_t { server, client };

class transport {
 public:
  // ssl == nullptr: plain TCP. The transport takes ownership of ssl and of the socket's
  // descriptor, which leaves Asio (the event loop watches it: event_loop::watch; Asio's
  // per-socket reactor state is given back at once). tls_scratch is the event loop's buffer
  // for freshly encrypted records (shared by its connections).
  transport(boost::asio::ip::tcp::socket socket, SSL* ssl, tls_role role, byte_buffer& tls_scratch);
  // The same for a bare non-blocking descriptor (accepted with SOCK_NONBLOCK, never registered
  // with Asio), owned from now on.
  transport(int fd, SSL* ssl, tls_role role, byte_buffer& tls_scratch);
  ~transport();
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  bool is_tls() const noexcept { return ssl_ != nullptr || t13_ != nullptr; }
  // The session runs on our own TLS 1.3 record layer (the SSL object is gone).
  bool own_records() const noexcept { return t13_ != nullptr; }
  // The socket's descriptor (-1 once closed).
  int fd() const noexcept { return fd_; }

  // TLS handshake step in this end's role (plain: always ok).
  io_result handshake();
  io_result read(std::span<std::uint8_t> buf);
  // Plain: send() what the kernel takes. TLS: encrypts all of buf (n == buf.size()) and sends
  // what the kernel takes; the rest waits in the transport (has_pending_output()). Call only
  // when has_pending_output() is false.
  io_result write(std::span<const std::uint8_t> buf);
  // Plain only: gather write of several buffers in one syscall.
  io_result writev(const struct iovec* iov, int count);
  // Our TLS 1.3 record layer, for a send made elsewhere (event_loop's batch): seal_to appends
  // buf's records to out (ok: buf.size() consumed; call only when has_pending_output() is
  // false), then sent() takes sendmsg's result for them (bytes or -errno) and keeps what the
  // kernel did not take (has_pending_output()). ship() sends them itself instead.
  io_result seal_to(std::span<const std::uint8_t> buf, byte_buffer& out);
  io_result sent(std::span<const std::uint8_t> records, long result);
  io_result ship(std::span<const std::uint8_t> records);
  // TLS: sends ciphertext left over from earlier calls; ok when none is left.
  io_result flush_output();
  bool has_pending_output() const noexcept { return held_ && !held_->bytes.empty(); }
  // TLS: keep OpenSSL's record buffers between records (a busy session: releasing them
  // after every burst cost an allocation, a free and page faults per burst), or go back to
  // releasing them when empty (an idle session) and free them now.
  void keep_buffers(bool keep) noexcept {
    if (!ssl_) return;  // our record layer keeps no record buffers
    if (keep) {
      SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    } else {
      SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
      (void)SSL_free_buffers(ssl_);
    }
  }
  // Once per loop sweep: a session on our record layer with no traffic since the last sweep
  // frees its cipher contexts (made again on the next record; a session with fewer than 8
  // reads and writes since the last sweep frees them after each).
  void on_sweep() noexcept;
  // Sends TLS close_notify (best effort) and a TCP FIN.
  void shutdown_send() noexcept;
  // close() below: with abort, the kernel drops what it still holds for the peer and sends
  // a reset (SO_LINGER 0) instead of keeping an orphaned socket that retries delivering it.
  void close(bool abort = false) noexcept;

  // Negotiated ALPN protocol and TLS version, for logs.
  std::string alpn() const;
  std::string tls_version() const;
  // Why the last call on this thread that returned io_status::error failed (like errno: read
  // it right after the failing call, on the same thread; a transport lives on one loop).
  // Kept per thread, not per transport: an idle connection holds no string for it.
  static const std::string& last_error() noexcept { return thread_error(); }
  // A send's result (bytes, or -errno) as an io_result: -EAGAIN is want_write, other errors
  // set last_error() (also for a send made on the transport's behalf: the loop's batch).
  static io_result send_result(long result);
  // sendmsg() of iov[0..count) on fd, again on EINTR: the bytes taken, or -errno (for
  // send_result; also the batch's sends when its ring fails).
  static long send_iov(int fd, const struct iovec* iov, int count, int flags = MSG_NOSIGNAL) noexcept;

 private:
  friend struct tls_sink_access;
  friend void tls13_keylog(const SSL* ssl, const char* line);
  struct own_tls;   // our record layer's session state
  io_result ssl_result(int ret, const char* what);
  // After a completed server handshake: move to our record layer if it can be done exactly.
  void take_over_records();
  io_result read_own(std::span<std::uint8_t> buf);
  io_result send_raw(std::span<const std::uint8_t> bytes);
  void seal_close_notify() noexcept;
  // After an OpenSSL call: move what it encrypted into the scratch buffer to the socket.
  io_result ship_scratch();

  int fd_ = -1;
  SSL* ssl_;
  std::unique_ptr<tls13::application_secrets> handoff_;  // during a server handshake only
  std::unique_ptr<own_tls> t13_;      // after the switch (ssl_ is then null)
  byte_buffer& scratch_;
  // Ciphertext the kernel has not taken yet (made at the first such write: a plain
  // connection never needs it).
  struct held_output {
    byte_buffer bytes;
    std::size_t sent = 0;  // ...from this offset on
  };
  std::unique_ptr<held_output> held_;
  static std::string& thread_error() noexcept {
    thread_local std::string what;
    return what;
  }
  static void set_error(std::string what) { thread_error() = std::move(what); }
};

}  // namespace mles::net
