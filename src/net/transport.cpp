// transport: non-blocking reads and writes on a socket, plain or through OpenSSL.
#include "net/transport.hpp"

#include <openssl/err.h>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace mles::net {

transport::transport(boost::asio::ip::tcp::socket socket, SSL* ssl)
    : socket_(std::move(socket)), ssl_(ssl) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  if (ssl_) SSL_set_fd(ssl_, socket_.native_handle());
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

io_result transport::handshake() {
  if (!ssl_) return {io_status::ok};
  ERR_clear_error();
  const int ret = SSL_accept(ssl_);
  if (ret == 1) return {io_status::ok};
  return ssl_result(ret, "TLS handshake");
}

io_result transport::read(std::span<std::uint8_t> buf) {
  if (ssl_) {
    ERR_clear_error();
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
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
  if (ssl_) {
    ERR_clear_error();
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_, buf.data(), buf.size(), &n);
    if (ret == 1) return {io_status::ok, n};
    return ssl_result(ret, "TLS write");
  }
  for (;;) {
    const ssize_t n = ::send(socket_.native_handle(), buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n >= 0) return {io_status::ok, static_cast<std::size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::want_write};
    last_error_ = std::string("write: ") + std::strerror(errno);
    return {io_status::error};
  }
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
    (void)SSL_shutdown(ssl_);  // one close_notify, no wait for the peer's
    ERR_clear_error();
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
