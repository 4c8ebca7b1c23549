// http_client: non-blocking socket driven by poll() with deadlines, TLS through OpenSSL on the
// same socket, an HTTP/1.1 response reader and zstd/brotli/gzip decoders.
#include "support/http_client.hpp"

#include <brotli/decode.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>
#include <zstd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace mles::test {
namespace {

constexpr std::size_t max_head = 64 * 1024;
constexpr std::size_t max_body = std::size_t{64} << 20;

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

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string{s};
}

int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<millis>(deadline - steady::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1'000'000));
}

std::string printable(std::string_view s, std::size_t limit) {
  std::string out;
  for (char c : s.substr(0, limit)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  if (s.size() > limit) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::optional<std::string> zstd_decode(std::string_view data) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  if (ds == nullptr) return std::nullopt;
  ZSTD_initDStream(ds);
  std::string out;
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::size_t last = 1;
  while (in.pos < in.size || last != 0) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    last = ZSTD_decompressStream(ds, &o, &in);
    if (ZSTD_isError(last)) {
      ZSTD_freeDStream(ds);
      return std::nullopt;
    }
    out.append(buf.data(), o.pos);
    if (in.pos == in.size && o.pos == 0 && last != 0) {  // truncated frame
      ZSTD_freeDStream(ds);
      return std::nullopt;
    }
    if (out.size() > max_body) break;
  }
  ZSTD_freeDStream(ds);
  return out;
}

std::optional<std::string> brotli_decode(std::string_view data) {
  BrotliDecoderState* st = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  if (st == nullptr) return std::nullopt;
  std::string out;
  std::size_t avail_in = data.size();
  const auto* next_in = reinterpret_cast<const std::uint8_t*>(data.data());
  for (;;) {
    std::uint8_t buf[65536];
    std::size_t avail_out = sizeof buf;
    std::uint8_t* next_out = buf;
    const BrotliDecoderResult r =
        BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    out.append(reinterpret_cast<const char*>(buf), sizeof buf - avail_out);
    if (r == BROTLI_DECODER_RESULT_SUCCESS) break;
    if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT && out.size() <= max_body) continue;
    BrotliDecoderDestroyInstance(st);
    return std::nullopt;  // error, truncated input or too large
  }
  BrotliDecoderDestroyInstance(st);
  return out;
}

std::optional<std::string> gzip_decode(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  for (;;) {
    char buf[65536];
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_STREAM_END) break;
    if ((rc == Z_OK || rc == Z_BUF_ERROR) && (zs.avail_out == 0 || zs.avail_in > 0) && out.size() <= max_body) continue;
    inflateEnd(&zs);
    return std::nullopt;
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace

std::optional<std::string> http_reply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

std::size_t http_reply::count(std::string_view name) const {
  return static_cast<std::size_t>(
      std::count_if(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); }));
}

std::string http_reply::describe() const {
  std::string out = std::string{"["} + to_string(status) + "] " + status_line;
  for (const auto& [k, v] : headers) out += " | " + k + ": " + v;
  out += " | body " + std::to_string(body.size()) + " bytes";
  if (!body.empty()) out += " '" + printable(body, 60) + "'";
  if (!error.empty()) out += " (" + error + ")";
  return out;
}

std::string http_request(std::string_view method, std::string_view target, std::string_view host,
                         const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!host.empty()) out.append("Host: ").append(host).append("\r\n");
  for (const auto& [k, v] : headers) out.append(k).append(": ").append(v).append("\r\n");
  out += "\r\n";
  out.append(body);
  return out;
}

std::optional<std::string> decode_body(std::string_view encoding, std::string_view data) {
  const std::string e = lower(trim(encoding));
  if (e.empty() || e == "identity") return std::string{data};
  if (e == "zstd") return zstd_decode(data);
  if (e == "br") return brotli_decode(data);
  if (e == "gzip" || e == "x-gzip") return gzip_decode(data);
  return std::nullopt;
}

http_client::~http_client() { close(); }

void http_client::close() {
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
}

bool http_client::connect(std::uint16_t port, const connect_options& options) {
  ignore_sigpipe();
  close();
  error_.clear();
  const auto deadline = steady::now() + options.timeout;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1) {
    error_ = "not an IPv4 address: " + options.host;
    return false;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error_ = std::string{"socket: "} + std::strerror(errno);
    return false;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    error_ = std::string{"connect: "} + std::strerror(errno);
    ::close(fd);
    return false;
  }
  pollfd p{fd, POLLOUT, 0};
  const int n = ::poll(&p, 1, remaining_ms(deadline));
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (n <= 0 || err != 0) {
    error_ = n <= 0 ? std::string{"connect: timed out"} : std::string{"connect: "} + std::strerror(err);
    ::close(fd);
    return false;
  }
  fd_ = fd;
  if (!send_preamble(fd_, options.preamble, deadline)) {
    error_ = std::string{"preamble: "} + std::strerror(errno);
    return false;
  }
  if (options.mode != transport::tls || !options.tls_handshake) return true;

  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    error_ = "SSL_CTX_new: " + openssl_errors();
    return false;
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr) {
    error_ = "SSL_new: " + openssl_errors();
    return false;
  }
  SSL_set_fd(ssl_, fd_);
  if (!options.tls.sni.empty()) SSL_set_tlsext_host_name(ssl_, options.tls.sni.c_str());
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return true;
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == io_status::timeout) {
        error_ = "TLS handshake timed out";
        close();
        return false;
      }
      continue;
    }
    std::string detail = openssl_errors();
    if (detail.empty()) detail = errno != 0 ? std::strerror(errno) : "connection closed by peer";
    error_ = "TLS handshake failed: " + detail;
    close();
    return false;
  }
}

io_status http_client::wait_fd(short events, steady::time_point deadline) {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return io_status::ok;
    if (n == 0) return io_status::timeout;
    if (errno != EINTR) return io_status::error;
  }
}

io_status http_client::fill(steady::time_point deadline) {
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

io_status http_client::need(std::size_t n, steady::time_point deadline) {
  while (in_.size() < n) {
    const io_status st = fill(deadline);
    if (st != io_status::ok) return st;
  }
  return io_status::ok;
}

bool http_client::send(std::string_view bytes, millis timeout) {
  const auto deadline = steady::now() + timeout;
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
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
        if (wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == io_status::timeout) {
          error_ = "write timed out (peer not reading?)";
          return false;
        }
        continue;
      }
      std::string detail = openssl_errors();
      if (detail.empty()) detail = errno != 0 ? std::strerror(errno) : "connection closed";
      error_ = "TLS write: " + detail;
      return false;
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
        return false;
      }
      continue;
    }
    error_ = std::string{"send: "} + std::strerror(errno);
    return false;
  }
  return true;
}

http_reply http_client::read_response(bool head_request, millis timeout) {
  const auto deadline = steady::now() + timeout;
  http_reply r;
  const auto fail = [&](io_status st, std::string what) {
    r.status = st == io_status::ok ? io_status::error : st;
    r.error = what + ": " + to_string(st) + (error_.empty() ? "" : " (" + error_ + ")");
    return r;
  };
  std::size_t end;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (in_.size() > max_head) return fail(io_status::error, "response head over 64 KiB");
    const io_status st = fill(deadline);
    if (st != io_status::ok) {
      return fail(st, "reading the response head" +
                          (in_.empty() ? std::string{" (no bytes received)"} : " after '" + printable(in_, 200) + "'"));
    }
  }
  const std::string head = in_.substr(0, end + 2);
  in_.erase(0, end + 4);
  std::size_t pos = head.find("\r\n");
  r.status_line = head.substr(0, pos);
  if (r.status_line.rfind("HTTP/1.", 0) != 0 || r.status_line.size() < 12) {
    return fail(io_status::error, "not an HTTP response: '" + printable(r.status_line, 200) + "'");
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

  const bool no_body = head_request || (r.code >= 100 && r.code < 200) || r.code == 204 || r.code == 304;
  if (no_body) {
    r.status = io_status::ok;
    return r;
  }
  const auto te = r.header("Transfer-Encoding");
  if (te && lower(*te).find("chunked") != std::string::npos) {
    r.chunked = true;
    for (;;) {
      std::size_t eol;
      while ((eol = in_.find("\r\n")) == std::string::npos) {
        const io_status st = fill(deadline);
        if (st != io_status::ok) return fail(st, "reading a chunk size");
      }
      const std::string size_line = in_.substr(0, eol);
      char* stop = nullptr;
      const unsigned long long size = std::strtoull(size_line.c_str(), &stop, 16);
      if (stop == size_line.c_str() || size > max_body) {
        return fail(io_status::error, "bad chunk size line '" + printable(size_line, 60) + "'");
      }
      in_.erase(0, eol + 2);
      if (size == 0) {  // trailers until the empty line
        for (;;) {
          while ((eol = in_.find("\r\n")) == std::string::npos) {
            const io_status st = fill(deadline);
            if (st != io_status::ok) return fail(st, "reading the trailers");
          }
          const bool last = eol == 0;
          in_.erase(0, eol + 2);
          if (last) break;
        }
        break;
      }
      if (const io_status st = need(size + 2, deadline); st != io_status::ok) return fail(st, "reading a chunk");
      r.body.append(in_, 0, size);
      if (in_.compare(size, 2, "\r\n") != 0) return fail(io_status::error, "chunk not followed by CRLF");
      in_.erase(0, size + 2);
      if (r.body.size() > max_body) return fail(io_status::error, "body over 64 MiB");
    }
    r.status = io_status::ok;
    return r;
  }
  if (const auto cl = r.header("Content-Length")) {
    char* stop = nullptr;
    const unsigned long long size = std::strtoull(cl->c_str(), &stop, 10);
    if (stop == cl->c_str() || size > max_body) return fail(io_status::error, "bad Content-Length '" + *cl + "'");
    if (const io_status st = need(size, deadline); st != io_status::ok) {
      return fail(st, "reading a body of " + std::to_string(size) + " bytes (got " + std::to_string(in_.size()) + ")");
    }
    r.body = in_.substr(0, size);
    in_.erase(0, size);
    r.status = io_status::ok;
    return r;
  }
  // Neither: the body runs to the end of the connection.
  for (;;) {
    const io_status st = fill(deadline);
    if (st == io_status::eof) break;
    if (st != io_status::ok) return fail(st, "reading a body delimited by close");
    if (in_.size() > max_body) return fail(io_status::error, "body over 64 MiB");
  }
  r.body = std::move(in_);
  in_.clear();
  r.status = io_status::ok;
  return r;
}

http_reply http_client::exchange(std::string_view request, millis timeout) {
  const auto deadline = steady::now() + timeout;
  if (!send(request, timeout)) {
    http_reply r;
    r.error = "sending the request: " + error_;
    return r;
  }
  const bool head = request.starts_with("HEAD ");
  return read_response(head, std::chrono::duration_cast<millis>(std::max(deadline - steady::now(), steady::duration::zero())));
}

bool http_client::wait_closed(millis timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    const std::size_t before = in_.size();
    const io_status st = fill(deadline);
    extra_bytes_ += in_.size() - before;
    in_.clear();
    if (st == io_status::eof || st == io_status::error) {
      close();
      return true;
    }
    if (st == io_status::timeout) {
      error_ = "the connection stayed open for " + std::to_string(timeout.count()) + " ms";
      return false;
    }
  }
}

bool http_client::stays_silent(millis duration) {
  const auto deadline = steady::now() + duration;
  const std::size_t before = in_.size();
  const io_status st = fill(deadline);
  if (st == io_status::timeout) return true;
  error_ = st == io_status::ok ? "unexpected bytes: '" + printable(std::string_view{in_}.substr(before), 80) + "'"
                               : std::string{"connection ended: "} + to_string(st);
  return false;
}

std::optional<std::pair<std::uint8_t, std::string>> http_client::read_ws_frame(millis timeout) {
  const auto deadline = steady::now() + timeout;
  if (need(2, deadline) != io_status::ok) return std::nullopt;
  const auto b = [this](std::size_t i) { return static_cast<unsigned char>(in_[i]); };
  std::size_t pos = 2;
  std::uint64_t len = b(1) & 0x7F;
  if (len == 126) {
    if (need(4, deadline) != io_status::ok) return std::nullopt;
    len = (std::uint64_t{b(2)} << 8) | b(3);
    pos = 4;
  } else if (len == 127) {
    if (need(10, deadline) != io_status::ok) return std::nullopt;
    len = 0;
    for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | b(i);
    pos = 10;
  }
  if (len > max_body) return std::nullopt;
  if ((b(1) & 0x80) != 0) pos += 4;  // a server must not mask; skip a key anyway
  if (need(pos + len, deadline) != io_status::ok) return std::nullopt;
  std::pair<std::uint8_t, std::string> out{static_cast<std::uint8_t>(b(0) & 0x0F), in_.substr(pos, len)};
  in_.erase(0, pos + len);
  return out;
}

}  // namespace mles::test
