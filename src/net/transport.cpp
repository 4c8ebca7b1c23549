// transport: non-blocking reads and writes on a socket, plain or through OpenSSL.
#include "net/transport.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace mles::net {

// The write-side BIO: appends whatever OpenSSL writes to the loop's scratch buffer.
struct tls_sink_access {
  static int write(BIO* bio, const char* data, int len) {
    auto* t = static_cast<transport*>(BIO_get_data(bio));
    if (len <= 0) return 0;
    t->scratch_.insert(t->scratch_.end(), reinterpret_cast<const std::uint8_t*>(data),
                       reinterpret_cast<const std::uint8_t*>(data) + len);
    return len;
  }
  static long ctrl(BIO*, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;
      case BIO_CTRL_PENDING:
      case BIO_CTRL_WPENDING: return 0;
      default: return 0;
    }
  }
  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mles tls sink");
      BIO_meth_set_write(bm, &tls_sink_access::write);
      BIO_meth_set_ctrl(bm, &tls_sink_access::ctrl);
      BIO_meth_set_create(bm, &tls_sink_access::create);
      return bm;
    }();
    return m;
  }
};

transport::transport(boost::asio::ip::tcp::socket socket, SSL* ssl, tls_role role,
                     std::vector<std::uint8_t>& tls_scratch)
    : socket_(std::move(socket)), ssl_(ssl), scratch_(tls_scratch) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  if (ssl_) {
    BIO* rbio = BIO_new_socket(socket_.native_handle(), BIO_NOCLOSE);
    BIO* wbio = BIO_new(tls_sink_access::method());
    BIO_set_data(wbio, this);
    SSL_set_bio(ssl_, rbio, wbio);
    if (role == tls_role::server) SSL_set_accept_state(ssl_);
    else SSL_set_connect_state(ssl_);
  }
}

transport::~transport() {
  if (ssl_) SSL_free(ssl_);
}

io_result transport::ssl_result(int ret, const char* what) {
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ: return {io_status::want_read};
    case SSL_ERROR_WANT_WRITE: return {io_status::want_write};
    case SSL_ERROR_ZERO_RETURN: return {io_status::eof};
    case SSL_ERROR_SYSCALL: {
      const int e = errno;
      ERR_clear_error();
      if (e == EAGAIN || e == EWOULDBLOCK) return {io_status::want_read};
      last_error_ = e ? std::string(what) + ": " + std::strerror(e) : std::string(what) + ": connection closed";
      return {e ? io_status::error : io_status::eof};
    }
    default: {
      char buf[256];
      const unsigned long code = ERR_get_error();
      ERR_error_string_n(code, buf, sizeof buf);
      ERR_clear_error();
      last_error_ = std::string(what) + ": " + buf;
      return {io_status::error};
    }
  }
}

io_result transport::send_raw(std::span<const std::uint8_t> bytes) {
  for (;;) {
    const ssize_t n = ::send(socket_.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) return {io_status::ok, static_cast<std::size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::want_write};
    last_error_ = std::string("write: ") + std::strerror(errno);
    return {io_status::error};
  }
}

io_result transport::ship_scratch() {
  if (scratch_.empty()) return {io_status::ok};
  if (!held_.empty()) {
    // Earlier ciphertext is still waiting: keep the order.
    held_.insert(held_.end(), scratch_.begin(), scratch_.end());
    scratch_.clear();
    return flush_output();
  }
  const io_result r = send_raw(scratch_);
  if (r.status == io_status::error) {
    scratch_.clear();
    return r;
  }
  const std::size_t sent = r.status == io_status::ok ? r.n : 0;
  if (sent < scratch_.size()) {
    // Keep the rest without copying it: the session takes the loop's buffer (the loop's
    // scratch grows again on its next use).
    held_.swap(scratch_);
    held_sent_ = sent;
  }
  scratch_.clear();
  return {held_.empty() ? io_status::ok : io_status::want_write};
}

io_result transport::flush_output() {
  if (held_.empty()) return {io_status::ok};
  const io_result r = send_raw(std::span<const std::uint8_t>(held_).subspan(held_sent_));
  if (r.status != io_status::ok) return r;
  held_sent_ += r.n;  // an offset, not an erase: no memmove of what is left
  if (held_sent_ < held_.size()) return {io_status::want_write};
  held_sent_ = 0;
  if (held_.capacity() > 64 * 1024) std::vector<std::uint8_t>().swap(held_);
  else held_.clear();
  return {io_status::ok};
}

io_result transport::handshake() {
  if (!ssl_) return {io_status::ok};
  ERR_clear_error();
  scratch_.clear();
  const int ret = SSL_do_handshake(ssl_);
  const io_result shipped = ship_scratch();
  if (shipped.status == io_status::error) return shipped;
  if (ret == 1) return {io_status::ok};
  return ssl_result(ret, "TLS handshake");
}

io_result transport::read(std::span<std::uint8_t> buf) {
  if (ssl_) {
    ERR_clear_error();
    scratch_.clear();
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
    // A read may produce output (alerts, post-handshake messages): send it along.
    const io_result shipped = ship_scratch();
    if (shipped.status == io_status::error) return shipped;
    if (ret == 1) return {io_status::ok, n};
    return ssl_result(ret, "TLS read");
  }
  for (;;) {
    const ssize_t n = ::recv(socket_.native_handle(), buf.data(), buf.size(), 0);
    if (n > 0) return {io_status::ok, static_cast<std::size_t>(n)};
    if (n == 0) return {io_status::eof};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::want_read};
    last_error_ = std::string("read: ") + std::strerror(errno);
    return {io_status::error};
  }
}

io_result transport::write(std::span<const std::uint8_t> buf) {
  if (!ssl_) return send_raw(buf);
  ERR_clear_error();
  scratch_.clear();
  std::size_t n = 0;
  const int ret = SSL_write_ex(ssl_, buf.data(), buf.size(), &n);
  if (ret != 1) {
    scratch_.clear();
    return ssl_result(ret, "TLS write");
  }
  const io_result shipped = ship_scratch();
  if (shipped.status == io_status::error) return shipped;
  return {io_status::ok, n};  // plaintext consumed; leftover ciphertext is held
}

io_result transport::writev(const struct iovec* iov, int count) {
  msghdr msg{};
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  for (;;) {
    const ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
    if (n >= 0) return {io_status::ok, static_cast<std::size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::want_write};
    last_error_ = std::string("write: ") + std::strerror(errno);
    return {io_status::error};
  }
}

void transport::shutdown_send() noexcept {
  if (ssl_ && SSL_is_init_finished(ssl_)) {
    ERR_clear_error();
    scratch_.clear();
    (void)SSL_shutdown(ssl_);  // one close_notify, no wait for the peer's
    ERR_clear_error();
    (void)ship_scratch();
    (void)flush_output();
  }
  boost::system::error_code ec;
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
}

void transport::close() noexcept {
  boost::system::error_code ec;
  socket_.close(ec);
}

std::string transport::alpn() const {
  if (!ssl_) return {};
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string{};
}

std::string transport::tls_version() const { return ssl_ ? SSL_get_version(ssl_) : "plain"; }

}  // namespace mles::net
