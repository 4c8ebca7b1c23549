// A connection's byte transport: a non-blocking TCP socket, optionally wrapped in TLS driven
// directly through OpenSSL on the socket (no BIO pair, no Asio ssl::stream buffers: an idle
// TLS session then costs only OpenSSL's SSL object, DESIGN §2 memory targets).
// data path: socket ─► transport.read ─► session;  session ─► transport.write ─► socket
// Thread-safety: none; used only on its session's event loop.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace mles::net {

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

class transport {
 public:
  // ssl == nullptr: plain TCP. The transport takes ownership of ssl.
  transport(boost::asio::ip::tcp::socket socket, SSL* ssl);
  ~transport();
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  bool is_tls() const noexcept { return ssl_ != nullptr; }
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }

  // TLS server handshake step (plain: always ok).
  io_result handshake();
  io_result read(std::span<std::uint8_t> buf);
  io_result write(std::span<const std::uint8_t> buf);
  // Plain only: gather write of up to IOV_MAX buffers in one syscall.
  io_result writev(const struct iovec* iov, int count);
  // Sends TLS close_notify (best effort) and a TCP FIN.
  void shutdown_send() noexcept;
  void close() noexcept;

  // Negotiated ALPN protocol and TLS version, for logs.
  std::string alpn() const;
  std::string tls_version() const;
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  io_result ssl_result(int ret, const char* what);

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_;
  std::string last_error_;
};

}  // namespace mles::net
