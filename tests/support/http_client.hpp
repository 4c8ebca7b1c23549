// A small blocking HTTP/1.1 test client (plain TCP or TLS through OpenSSL, any certificate
// accepted) for the static-file side: raw requests in, whole responses out (Content-Length,
// chunked or read-to-close bodies), plus zstd/br/gzip decoders to compare bodies with files.
// Every wait has a deadline; nothing here can hang a test.
// Thread-safety: one http_client is used by one thread at a time.
#pragma once

#include "support/ws_client.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mles::test {

struct http_reply {
  io_status status = io_status::error;  // ok when a whole response (head and body) was read
  int code = 0;
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // as received, transfer coding (chunked) removed, content coding kept
  bool chunked = false;
  std::string error;

  // First header with this name (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
  // Number of headers with this name.
  std::size_t count(std::string_view name) const;
  bool ok() const noexcept { return status == io_status::ok; }
  // Status line, headers and the start of the body, printable, for failure messages.
  std::string describe() const;
};

// A request head: "<method> <target> HTTP/1.1", Host (omitted when host is empty), the
// extra headers in order, then the empty line and the body.
std::string http_request(std::string_view method, std::string_view target, std::string_view host = "localhost",
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         std::string_view body = {});

// Body decoders by Content-Encoding token: "zstd", "br", "gzip" (and "identity"/absent: as
// is). nullopt when the data is not valid in that coding (or the coding is unknown).
std::optional<std::string> decode_body(std::string_view encoding, std::string_view data);

class http_client {
 public:
  http_client() = default;
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // TCP connect to host:port (and TLS handshake in TLS mode, SNI from options).
  bool connect(std::uint16_t port, const connect_options& options);
  bool connected() const noexcept { return fd_ >= 0; }

  bool send(std::string_view bytes, millis timeout = default_timeout);

  // Reads one whole response. head_request: the request was HEAD (no body follows
  // whatever Content-Length says). 1xx/204/304 never have a body.
  http_reply read_response(bool head_request = false, millis timeout = default_timeout);

  // send + read_response.
  http_reply exchange(std::string_view request, millis timeout = default_timeout);

  // Reads until the server ends the connection (EOF or reset). True when it did before the
  // deadline; the bytes that arrived meanwhile are counted in extra_bytes().
  bool wait_closed(millis timeout = default_timeout);
  // True when nothing arrives and the connection stays open for the whole duration.
  bool stays_silent(millis duration);
  std::size_t extra_bytes() const noexcept { return extra_bytes_; }

  // Bytes received but not consumed by a read_response (e.g. a WebSocket frame after 101).
  const std::string& buffered() const noexcept { return in_; }

  // After a 101: the next server WebSocket frame (opcode, payload), unmasked. nullopt on
  // timeout/close.
  std::optional<std::pair<std::uint8_t, std::string>> read_ws_frame(millis timeout = default_timeout);

  void close();
  const std::string& error() const noexcept { return error_; }

 private:
  io_status fill(steady::time_point deadline);
  io_status wait_fd(short events, steady::time_point deadline);
  // Ensures n bytes are buffered.
  io_status need(std::size_t n, steady::time_point deadline);

  int fd_ = -1;
  ::ssl_ctx_st* ctx_ = nullptr;
  ::ssl_st* ssl_ = nullptr;
  std::string in_;
  std::string error_;
  std::size_t extra_bytes_ = 0;
};

}  // namespace mles::test
