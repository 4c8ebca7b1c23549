// Test client: client-side RFC 6455 framing and the opening handshake over a non-blocking
// socket driven by poll() with deadlines; TLS through OpenSSL's SSL API on the same socket.
#include "support/ws_client.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ostream>

namespace mles::test {
namespace {

constexpr std::size_t max_frame_payload = std::size_t{256} << 20;
constexpr std::size_t max_http_head = 64 * 1024;

void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::string expected_accept(const std::string& key) {
  const std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  return base64(digest, sizeof digest);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string{s};
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<millis>(deadline - steady::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1'000'000));
}

enum class parse_state { need_more, complete, bad };

}  // namespace

const char* to_string(transport t) noexcept { return t == transport::tls ? "tls" : "plain"; }

void PrintTo(transport t, std::ostream* os) { *os << to_string(t); }

const char* opcode_name(std::uint8_t opcode) noexcept {
  switch (opcode) {
    case op::continuation: return "continuation";
    case op::text: return "text";
    case op::binary: return "binary";
    case op::close: return "close";
    case op::ping: return "ping";
    case op::pong: return "pong";
    default: return "reserved";
  }
}

const char* to_string(io_status s) noexcept {
  switch (s) {
    case io_status::ok: return "ok";
    case io_status::timeout: return "timeout";
    case io_status::eof: return "eof";
    case io_status::error: return "error";
  }
  return "?";
}

std::uint16_t frame::close_code() const noexcept {
  if (payload.size() < 2) return 1005;
  return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                    static_cast<unsigned char>(payload[1]));
}

std::string frame::close_reason() const { return payload.size() > 2 ? payload.substr(2) : std::string{}; }

std::string describe(const frame& f) {
  std::string out = opcode_name(f.opcode);
  out += f.fin ? " fin" : " nofin";
  if (f.rsv) out += " rsv=" + std::to_string(f.rsv);
  if (f.masked) out += " MASKED";
  out += " len=" + std::to_string(f.payload.size());
  if (f.opcode == op::close) {
    out += " code=" + std::to_string(f.close_code()) + " reason='" + f.close_reason() + "'";
  } else {
    out += " '" + f.payload.substr(0, 60) + (f.payload.size() > 60 ? "...'" : "'");
  }
  return out;
}

std::string encode_frame(const frame_spec& spec) {
  std::string out;
  out += static_cast<char>((spec.fin ? 0x80 : 0x00) | ((spec.rsv & 0x7) << 4) | (spec.opcode & 0x0F));
  const std::uint64_t len = spec.declared_length.value_or(spec.payload.size());
  const unsigned char mask_bit = spec.masked ? 0x80 : 0x00;
  length_encoding enc = spec.length;
  if (enc == length_encoding::minimal) {
    enc = len < 126 ? length_encoding::minimal : len < 65536 ? length_encoding::force_16 : length_encoding::force_64;
  }
  if (enc == length_encoding::minimal) {
    out += static_cast<char>(mask_bit | static_cast<unsigned char>(len));
  } else if (enc == length_encoding::force_16) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>((len >> 8) & 0xFF);
    out += static_cast<char>(len & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((len >> shift) & 0xFF);
  }
  if (!spec.masked) return out + spec.payload;
  std::array<unsigned char, 4> key{};
  RAND_bytes(key.data(), static_cast<int>(key.size()));
  for (unsigned char k : key) out += static_cast<char>(k);
  const std::size_t start = out.size();
  out += spec.payload;
  for (std::size_t i = 0; i < spec.payload.size(); ++i) {
    out[start + i] = static_cast<char>(static_cast<unsigned char>(out[start + i]) ^ key[i % 4]);
  }
  return out;
}

std::optional<std::string> http_response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

std::string http_response::describe() const {
  std::string out = std::string{"["} + to_string(status) + "] " + status_line;
  for (const auto& [k, v] : headers) out += " | " + k + ": " + v;
  if (!error.empty()) out += " (" + error + ")";
  return out;
}

ws_client::~ws_client() { close_socket(); }

bool ws_client::fail(std::string message) {
  error_ = std::move(message);
  return false;
}

bool send_preamble(int fd, std::string_view bytes, steady::time_point deadline) {
  for (int i = 0; i < 1000 && !bytes.empty(); ++i) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
  }
  return bytes.empty();
}

bool ws_client::connect(const std::string& host, std::uint16_t port, transport mode) {
  connect_options o;
  o.host = host;
  o.mode = mode;
  return connect(port, o);
}

bool ws_client::connect(std::uint16_t port, const connect_options& options) {
  ignore_sigpipe();
  close_socket();
  error_.clear();
  bytes_received_ = 0;
  const auto deadline = steady::now() + options.timeout;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(options.host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return fail("getaddrinfo(" + options.host + "): " + gai_strerror(rc));
  }
  std::string last;
  for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = std::string{"socket: "} + std::strerror(errno);
      continue;
    }
    if (options.rcvbuf > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.rcvbuf, sizeof options.rcvbuf);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = std::string{"connect: "} + std::strerror(errno);
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n <= 0 || err != 0) {
      last = n <= 0 ? std::string{"connect: timed out"} : std::string{"connect: "} + std::strerror(err);
      ::close(fd);
      continue;
    }
    fd_ = fd;
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) return fail(options.host + ":" + service + ": " + last);
  if (!send_preamble(fd_, options.preamble, deadline)) return fail(std::string{"preamble: "} + std::strerror(errno));
  if (options.mode == transport::tls && options.tls_handshake) return tls_connect(options, deadline);
  return true;
}

bool ws_client::tls_connect(const connect_options& options, steady::time_point deadline) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) return fail("SSL_CTX_new: " + openssl_errors());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (options.tls.allow_legacy) {
    SSL_CTX_set_security_level(ctx_, 0);
    SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");
  }
  if (!options.tls.ciphers.empty() && SSL_CTX_set_cipher_list(ctx_, options.tls.ciphers.c_str()) != 1) {
    return fail("cipher list '" + options.tls.ciphers + "' rejected by OpenSSL: " + openssl_errors());
  }
  if (options.tls.min_version != 0) SSL_CTX_set_min_proto_version(ctx_, options.tls.min_version);
  if (options.tls.max_version != 0) SSL_CTX_set_max_proto_version(ctx_, options.tls.max_version);
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr) return fail("SSL_new: " + openssl_errors());
  SSL_set_fd(ssl_, fd_);
  if (!options.tls.sni.empty()) SSL_set_tlsext_host_name(ssl_, options.tls.sni.c_str());
  if (!options.tls.alpn.empty()) {
    std::string wire;
    for (const auto& p : options.tls.alpn) {
      wire += static_cast<char>(p.size());
      wire += p;
    }
    SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return true;
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      const io_status st = wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
      if (st == io_status::timeout) return fail("TLS handshake timed out");
      continue;
    }
    std::string detail = openssl_errors();
    if (detail.empty()) detail = errno != 0 ? std::strerror(errno) : "connection closed by peer";
    return fail("TLS handshake failed: " + detail);
  }
}

void ws_client::close_socket() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ctx_ != nullptr) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  in_.clear();
  pending_.clear();
}

void ws_client::shutdown_write() {
  if (fd_ < 0) return;
  if (ssl_ != nullptr) SSL_shutdown(ssl_);
  ::shutdown(fd_, SHUT_WR);
}

io_status ws_client::wait_fd(short events, steady::time_point deadline) {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return io_status::ok;
    if (n == 0) return io_status::timeout;
    if (errno != EINTR) return io_status::error;
  }
}

io_status ws_client::fill(steady::time_point deadline) {
  if (fd_ < 0) {
    error_ = "not connected";
    return io_status::error;
  }
  char buf[65536];
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        in_.append(buf, static_cast<std::size_t>(n));
        bytes_received_ += static_cast<std::size_t>(n);
        return io_status::ok;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        const io_status st = wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (st != io_status::ok) return st;
        continue;
      }
      if (e == SSL_ERROR_ZERO_RETURN) return io_status::eof;
      if (e == SSL_ERROR_SYSCALL && errno == 0) return io_status::eof;
      std::string detail = openssl_errors();
      if (detail.empty()) detail = std::strerror(errno);
      error_ = "TLS read: " + detail;
      return io_status::error;
    }
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      bytes_received_ += static_cast<std::size_t>(n);
      return io_status::ok;
    }
    if (n == 0) return io_status::eof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const io_status st = wait_fd(POLLIN, deadline);
      if (st != io_status::ok) return st;
      continue;
    }
    error_ = std::string{"recv: "} + std::strerror(errno);
    return io_status::error;
  }
}

io_status ws_client::write_all(std::string_view bytes, steady::time_point deadline) {
  if (fd_ < 0) {
    error_ = "not connected";
    return io_status::error;
  }
  while (!bytes.empty()) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20));
      const int n = SSL_write(ssl_, bytes.data(), chunk);
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        const io_status st = wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (st == io_status::timeout) {
          error_ = "write timed out (peer not reading?)";
          return st;
        }
        continue;
      }
      std::string detail = openssl_errors();
      if (detail.empty()) detail = errno != 0 ? std::strerror(errno) : "connection closed";
      error_ = "TLS write: " + detail;
      return io_status::error;
    }
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(POLLOUT, deadline) == io_status::timeout) {
        error_ = "write timed out (peer not reading?)";
        return io_status::timeout;
      }
      continue;
    }
    error_ = std::string{"send: "} + std::strerror(errno);
    return io_status::error;
  }
  return io_status::ok;
}

bool ws_client::send_raw(std::string_view bytes, millis timeout) {
  return write_all(bytes, steady::now() + timeout) == io_status::ok;
}

bool ws_client::send_frame(const frame_spec& spec, millis timeout) {
  const auto deadline = steady::now() + timeout;
  const std::string bytes = encode_frame(spec);
  if (spec.chunk == 0) return write_all(bytes, deadline) == io_status::ok;
  for (std::size_t off = 0; off < bytes.size(); off += spec.chunk) {
    if (off != 0 && spec.pause.count() > 0) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.pause).count();
      struct timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      nanosleep(&ts, nullptr);
    }
    const std::string_view piece = std::string_view{bytes}.substr(off, spec.chunk);
    if (write_all(piece, deadline) != io_status::ok) return false;
  }
  return true;
}

bool ws_client::send_text(std::string_view payload) {
  return send_frame(frame_spec{.opcode = op::text, .payload = std::string{payload}});
}
bool ws_client::send_binary(std::string_view payload) {
  return send_frame(frame_spec{.opcode = op::binary, .payload = std::string{payload}});
}
bool ws_client::send_ping(std::string_view payload) {
  return send_frame(frame_spec{.opcode = op::ping, .payload = std::string{payload}});
}
bool ws_client::send_pong(std::string_view payload) {
  return send_frame(frame_spec{.opcode = op::pong, .payload = std::string{payload}});
}
bool ws_client::send_close(std::optional<std::uint16_t> code, std::string_view reason) {
  std::string body;
  if (code) {
    body += static_cast<char>((*code >> 8) & 0xFF);
    body += static_cast<char>(*code & 0xFF);
    body += reason;
  }
  return send_frame(frame_spec{.opcode = op::close, .payload = body});
}

std::string ws_client::join_text(std::string_view uid, std::string_view channel, std::optional<std::string> auth) {
  std::string out = "{\"uid\":\"" + json_escape(uid) + "\",\"channel\":\"" + json_escape(channel) + "\"";
  if (auth) out += ",\"auth\":\"" + json_escape(*auth) + "\"";
  return out + "}";
}

bool ws_client::join(std::string_view uid, std::string_view channel, std::optional<std::string> auth) {
  return send_text(join_text(uid, channel, std::move(auth)));
}

http_response ws_client::handshake(const handshake_options& options) {
  std::array<unsigned char, 16> nonce{};
  RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
  const std::string key = base64(nonce.data(), nonce.size());
  std::string req = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.host +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                    "\r\nSec-WebSocket-Version: 13\r\n";
  if (options.protocol) req += "Sec-WebSocket-Protocol: " + *options.protocol + "\r\n";
  for (const auto& [k, v] : options.extra_headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  const auto deadline = steady::now() + options.timeout;
  if (write_all(req, deadline) != io_status::ok) {
    http_response r;
    r.error = "sending the upgrade request: " + error_;
    return r;
  }
  http_response r = read_http_response(
      std::chrono::duration_cast<millis>(std::max(deadline - steady::now(), steady::duration::zero())));
  if (auto accept = r.header("Sec-WebSocket-Accept")) r.accept_valid = *accept == expected_accept(key);
  return r;
}

http_response ws_client::read_http_response(millis timeout) {
  const auto deadline = steady::now() + timeout;
  http_response r;
  std::size_t end;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (in_.size() > max_http_head) {
      r.error = "response head over 64 KiB";
      return r;
    }
    const io_status st = fill(deadline);
    if (st != io_status::ok) {
      r.status = st;
      r.error = std::string{"reading the response head: "} + to_string(st) + (error_.empty() ? "" : ": " + error_) +
                (in_.empty() ? " (no bytes received)" : " after '" + in_.substr(0, 200) + "'");
      return r;
    }
  }
  const std::string head = in_.substr(0, end + 2);
  in_.erase(0, end + 4);
  std::size_t pos = head.find("\r\n");
  r.status_line = head.substr(0, pos);
  // "HTTP/1.1 101 Switching Protocols"
  if (r.status_line.rfind("HTTP/1.", 0) != 0 || r.status_line.size() < 12) {
    r.error = "not an HTTP response: '" + r.status_line + "'";
    return r;
  }
  r.code = std::atoi(r.status_line.substr(9, 3).c_str());
  pos += 2;
  while (pos < head.size()) {
    const std::size_t eol = head.find("\r\n", pos);
    const std::string line = head.substr(pos, eol - pos);
    pos = eol + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    r.headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  r.status = io_status::ok;
  return r;
}

bool ws_client::try_parse(frame& out) {
  // Returns true with out filled when a whole frame is buffered. A frame too large to be
  // believable sets error_ and yields an empty close-less error via read_frame.
  if (in_.size() < 2) return false;
  const auto b = [this](std::size_t i) { return static_cast<unsigned char>(in_[i]); };
  std::size_t pos = 2;
  std::uint64_t len = b(1) & 0x7F;
  if (len == 126) {
    if (in_.size() < 4) return false;
    len = (std::uint64_t{b(2)} << 8) | b(3);
    pos = 4;
  } else if (len == 127) {
    if (in_.size() < 10) return false;
    len = 0;
    for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | b(i);
    pos = 10;
  }
  const bool masked = (b(1) & 0x80) != 0;
  if (len > max_frame_payload) {
    error_ = "server frame declares " + std::to_string(len) + " bytes";
    throw std::length_error(error_);
  }
  const std::size_t need = pos + (masked ? 4 : 0) + static_cast<std::size_t>(len);
  if (in_.size() < need) return false;
  out.fin = (b(0) & 0x80) != 0;
  out.rsv = static_cast<std::uint8_t>((b(0) >> 4) & 0x7);
  out.opcode = static_cast<std::uint8_t>(b(0) & 0x0F);
  out.masked = masked;
  std::array<unsigned char, 4> key{};
  if (masked) {
    for (std::size_t i = 0; i < 4; ++i) key[i] = b(pos + i);
    pos += 4;
  }
  out.payload = in_.substr(pos, static_cast<std::size_t>(len));
  if (masked) {
    for (std::size_t i = 0; i < out.payload.size(); ++i) {
      out.payload[i] = static_cast<char>(static_cast<unsigned char>(out.payload[i]) ^ key[i % 4]);
    }
  }
  in_.erase(0, need);
  return true;
}

read_result ws_client::read_frame(millis timeout) {
  read_result r;
  if (!pending_.empty()) {
    r.status = io_status::ok;
    r.f = std::move(pending_.front());
    pending_.pop_front();
    return r;
  }
  const auto deadline = steady::now() + timeout;
  for (;;) {
    bool got = false;
    try {
      got = try_parse(r.f);
    } catch (const std::length_error&) {
      r.status = io_status::error;
      return r;
    }
    if (got) {
      if (r.f.opcode == op::ping) ++pings_received_;
      r.status = io_status::ok;
      return r;
    }
    r.status = fill(deadline);
    if (r.status != io_status::ok) return r;
  }
}

message ws_client::read_message(millis timeout, pong_policy policy) {
  const auto deadline = steady::now() + timeout;
  message m;
  for (;;) {
    const auto left = std::chrono::duration_cast<millis>(std::max(deadline - steady::now(), steady::duration::zero()));
    read_result r = read_frame(left);
    if (!r.ok()) {
      m.status = r.status;
      return m;
    }
    frame& f = r.f;
    switch (f.opcode) {
      case op::ping:
        if (policy == pong_policy::answer_pings) send_pong(f.payload);
        continue;
      case op::pong:
        continue;
      case op::close:
        m.status = io_status::ok;
        m.opcode = op::close;
        m.close_code = f.close_code();
        m.payload = std::move(f.payload);
        m.fragments = 1;
        return m;
      case op::text:
      case op::binary:
        if (m.opcode != 0) {
          error_ = "server began a new message inside a fragmented one";
          m.status = io_status::error;
          return m;
        }
        m.opcode = f.opcode;
        m.payload = std::move(f.payload);
        m.fragments = 1;
        break;
      case op::continuation:
        if (m.opcode == 0) {
          error_ = "server sent a continuation frame outside a message";
          m.status = io_status::error;
          return m;
        }
        m.payload += f.payload;
        ++m.fragments;
        break;
      default:
        error_ = "server sent reserved opcode " + std::to_string(f.opcode);
        m.status = io_status::error;
        return m;
    }
    if (f.fin) {
      m.status = io_status::ok;
      return m;
    }
  }
}

std::optional<std::uint16_t> ws_client::expect_close(millis timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<millis>(std::max(deadline - steady::now(), steady::duration::zero()));
    read_result r = read_frame(left);
    if (!r.ok()) {
      error_ = std::string{"no close frame: connection "} +
               (r.status == io_status::timeout ? "still open at the deadline"
                : r.status == io_status::eof   ? "ended (EOF) without a close frame"
                                               : "failed without a close frame: " + error_);
      return std::nullopt;
    }
    if (r.f.opcode == op::close) return r.f.close_code();
    if (r.f.is_data() || r.f.opcode == op::continuation) ++skipped_frames_;
  }
}

bool ws_client::wait_closed(millis timeout) {
  const auto deadline = steady::now() + timeout;
  pending_.clear();
  for (;;) {
    in_.clear();
    const io_status st = fill(deadline);
    if (st == io_status::eof || st == io_status::error) {
      close_socket();  // as a real client does once the server has closed
      return true;
    }
    if (st == io_status::timeout) {
      error_ = "connection still open at the deadline";
      return false;
    }
  }
}

bool ws_client::sync(millis timeout) {
  const auto deadline = steady::now() + timeout;
  const std::string token = "sync-" + std::to_string(++sync_counter_);
  if (!send_ping(token)) return fail("sync: sending ping: " + error_);
  std::deque<frame> saved;
  saved.swap(pending_);  // read from the socket only; keep what was buffered, in order
  bool ok = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<millis>(std::max(deadline - steady::now(), steady::duration::zero()));
    read_result r = read_frame(left);
    if (!r.ok()) {
      error_ = std::string{"sync: no pong: "} + to_string(r.status) + (error_.empty() ? "" : " " + error_);
      break;
    }
    if (r.f.opcode == op::pong && r.f.payload == token) {
      ok = true;
      break;
    }
    if (r.f.opcode == op::pong) continue;
    if (r.f.opcode == op::ping) {
      send_pong(r.f.payload);
      continue;
    }
    saved.push_back(std::move(r.f));
    if (saved.back().opcode == op::close) {
      error_ = "sync: server closed: " + describe(saved.back());
      break;
    }
  }
  pending_.swap(saved);
  return ok;
}

std::string ws_client::tls_version() const { return ssl_ != nullptr ? SSL_get_version(ssl_) : ""; }

std::string ws_client::alpn() const {
  if (ssl_ == nullptr) return {};
  const unsigned char* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data != nullptr ? std::string(reinterpret_cast<const char*>(data), len) : std::string{};
}

bool ws_client::peer_certificate_matches(const std::string& host) const {
  if (ssl_ == nullptr) return false;
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return false;
  const bool ok = X509_check_host(cert, host.data(), host.size(), 0, nullptr) == 1;
  X509_free(cert);
  return ok;
}

bool ws_client::peer_certificate_is(const std::string& cert_pem_file) const {
  if (ssl_ == nullptr) return false;
  FILE* f = std::fopen(cert_pem_file.c_str(), "r");
  if (f == nullptr) return false;
  X509* expected = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  X509* cert = SSL_get1_peer_certificate(ssl_);
  const bool same = expected != nullptr && cert != nullptr && X509_cmp(expected, cert) == 0;
  X509_free(cert);
  X509_free(expected);
  return same;
}

}  // namespace mles::test
