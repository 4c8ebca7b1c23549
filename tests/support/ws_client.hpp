// A small blocking WebSocket client for integration tests: its own client-side RFC 6455 code
// (independent of src/ws), over plain TCP or TLS (OpenSSL, any certificate accepted).
// Every wait has a deadline (poll() with a timeout); nothing here can hang a test.
// Thread-safety: one ws_client is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <ctime>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct ssl_ctx_st;  // OpenSSL SSL_CTX
struct ssl_st;      // OpenSSL SSL

namespace mles::test {

using millis = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// Default bound for every wait in the test support.
inline constexpr millis default_timeout{5000};

enum class transport { plain, tls };
const char* to_string(transport t) noexcept;
// GoogleTest prints parameters with this (test names in ctest read "plain"/"tls").
void PrintTo(transport t, std::ostream* os);

// RFC 6455 §5.2 opcodes.
namespace op {
inline constexpr std::uint8_t continuation = 0x0;
inline constexpr std::uint8_t text = 0x1;
inline constexpr std::uint8_t binary = 0x2;
inline constexpr std::uint8_t close = 0x8;
inline constexpr std::uint8_t ping = 0x9;
inline constexpr std::uint8_t pong = 0xA;
}  // namespace op
const char* opcode_name(std::uint8_t opcode) noexcept;

// RSV bits as they sit in the first header byte >> 4.
namespace rsv {
inline constexpr std::uint8_t rsv1 = 0x4;
inline constexpr std::uint8_t rsv2 = 0x2;
inline constexpr std::uint8_t rsv3 = 0x1;
}  // namespace rsv

struct tls_options {
  std::string sni = "localhost";   // empty: no SNI extension
  std::vector<std::string> alpn;   // empty: no ALPN extension
  int min_version = 0;             // 0: library default, else TLS1_x_VERSION
  int max_version = 0;
  bool allow_legacy = false;       // security level 0, so that a TLS 1.0/1.1 hello is really sent
  std::string ciphers;             // TLS <= 1.2 cipher list to offer; empty: library default
};

struct connect_options {
  transport mode = transport::plain;
  std::string host = "127.0.0.1";
  tls_options tls;
  int rcvbuf = 0;                  // SO_RCVBUF set before connect(); 0 keeps the default
  bool tls_handshake = true;       // false: stop after TCP connect even in TLS mode
  std::string preamble{};          // written right after the TCP connect, before TLS (a PROXY header)
  millis timeout = default_timeout;
};

// Writes bytes on a connected non-blocking socket before the deadline (errno set on failure).
bool send_preamble(int fd, std::string_view bytes, steady::time_point deadline);

enum class io_status {
  ok,
  timeout,  // deadline passed
  eof,      // orderly end of stream (TCP FIN or TLS close_notify)
  error,    // reset or TLS/socket error (see error())
};
const char* to_string(io_status s) noexcept;

struct frame {
  std::uint8_t opcode = 0;
  bool fin = true;
  std::uint8_t rsv = 0;
  bool masked = false;  // a server must never mask (RFC 6455 §5.1)
  std::string payload{};

  // For close frames: the status code (1005 when the body is empty), and the reason.
  std::uint16_t close_code() const noexcept;
  std::string close_reason() const;
  bool is_data() const noexcept { return opcode == op::text || opcode == op::binary; }
};
std::string describe(const frame& f);

struct read_result {
  io_status status = io_status::error;
  frame f;
  bool ok() const noexcept { return status == io_status::ok; }
};

// A whole message (data fragments joined), or a close frame (opcode == op::close).
struct message {
  io_status status = io_status::error;
  std::uint8_t opcode = 0;
  std::string payload{};
  std::size_t fragments = 0;
  std::uint16_t close_code = 0;  // set when opcode == op::close
  bool ok() const noexcept { return status == io_status::ok; }
};

enum class length_encoding { minimal, force_16, force_64 };

// Full control over one client frame, for malformed-input tests.
struct frame_spec {
  std::uint8_t opcode = op::text;
  bool fin = true;
  std::uint8_t rsv = 0;  // see namespace rsv
  bool masked = true;
  std::string payload{};
  length_encoding length = length_encoding::minimal;
  std::optional<std::uint64_t> declared_length{};  // lie in the length field (payload sent as is)
  std::size_t chunk = 0;  // > 0: write the encoded frame in pieces of this many bytes
  millis pause{0};        // pause between pieces
};
// The encoded bytes of a frame_spec (with a fresh random mask key when masked).
std::string encode_frame(const frame_spec& spec);

struct handshake_options {
  std::optional<std::string> protocol = std::string{"mles-websocket"};  // nullopt: header absent
  std::string path = "/";
  std::string host = "localhost";
  std::vector<std::pair<std::string, std::string>> extra_headers;
  millis timeout = default_timeout;
};

struct http_response {
  io_status status = io_status::error;  // ok when a whole response head was read
  int code = 0;                         // HTTP status code
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;
  bool accept_valid = false;  // Sec-WebSocket-Accept matches the key we sent (handshake only)
  std::string error;
  // First header with this name (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
  std::string describe() const;
};

enum class pong_policy { ignore_pings, answer_pings };

class ws_client {
 public:
  ws_client() = default;
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  // TCP connect (and TLS handshake in TLS mode). False on failure; see error().
  bool connect(std::uint16_t port, const connect_options& options = {});
  bool connect(const std::string& host, std::uint16_t port, transport mode);
  bool connected() const noexcept { return fd_ >= 0; }

  // Sends the upgrade request and reads the response head.
  http_response handshake(const handshake_options& options = {});
  // Reads an HTTP response head (after send_raw of a hand-made request).
  http_response read_http_response(millis timeout = default_timeout);

  bool send_raw(std::string_view bytes, millis timeout = default_timeout);
  bool send_frame(const frame_spec& spec, millis timeout = default_timeout);
  bool send_text(std::string_view payload);
  bool send_binary(std::string_view payload);
  bool send_ping(std::string_view payload = {});
  bool send_pong(std::string_view payload = {});
  // nullopt code: a close frame with an empty body.
  bool send_close(std::optional<std::uint16_t> code = 1000, std::string_view reason = {});
  // The Mles join frame {"uid":..,"channel":..[,"auth":..]} as text.
  static std::string join_text(std::string_view uid, std::string_view channel,
                               std::optional<std::string> auth = std::nullopt);
  bool join(std::string_view uid, std::string_view channel,
            std::optional<std::string> auth = std::nullopt);

  // Next frame from the server (frames buffered by sync() first).
  read_result read_frame(millis timeout = default_timeout);
  // Next data message (fragments joined) or close frame. Pings are answered with pongs
  // when asked; pongs are skipped.
  message read_message(millis timeout = default_timeout,
                       pong_policy policy = pong_policy::ignore_pings);
  // Reads until a close frame; returns its code (1005 for an empty body), nullopt when the
  // connection ended or the deadline passed first (see error()). Data frames seen on the way
  // are counted in skipped_frames().
  std::optional<std::uint16_t> expect_close(millis timeout = default_timeout);
  // Reads and discards until the connection ends (EOF or reset), then closes our socket as a
  // real client does. False on timeout.
  bool wait_closed(millis timeout = default_timeout);
  // Barrier: sends a ping with a unique payload and reads until its pong. Data frames read
  // meanwhile are kept for read_frame(); other pings are answered.
  bool sync(millis timeout = default_timeout);

  // Half-closes (TCP FIN after TLS close_notify) or drops the connection.
  void shutdown_write();
  void close_socket();

  // TLS facts (empty in plain mode).
  std::string tls_version() const;
  std::string alpn() const;
  bool peer_certificate_matches(const std::string& host) const;
  // Whether the server presented the (first) certificate of this PEM file.
  bool peer_certificate_is(const std::string& cert_pem_file) const;

  const std::string& error() const noexcept { return error_; }
  std::size_t skipped_frames() const noexcept { return skipped_frames_; }
  std::size_t pings_received() const noexcept { return pings_received_; }
  // Bytes received from the server since connect (after TLS decryption).
  std::size_t bytes_received() const noexcept { return bytes_received_; }
  int fd() const noexcept { return fd_; }

 private:
  io_status fill(steady::time_point deadline);
  io_status write_all(std::string_view bytes, steady::time_point deadline);
  io_status wait_fd(short events, steady::time_point deadline);
  bool try_parse(frame& out);
  bool tls_connect(const connect_options& options, steady::time_point deadline);
  bool fail(std::string message);

  int fd_ = -1;
  ::ssl_ctx_st* ctx_ = nullptr;
  ::ssl_st* ssl_ = nullptr;
  std::string in_;  // received bytes not yet parsed
  std::deque<frame> pending_;
  std::string error_;
  std::size_t skipped_frames_ = 0;
  std::size_t pings_received_ = 0;
  std::size_t bytes_received_ = 0;
  std::uint64_t sync_counter_ = 0;
};

// Polls pred every few milliseconds until it holds or the deadline passes.
template <class Pred>
bool wait_until(Pred pred, millis timeout = default_timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (steady::now() >= deadline) return false;
    struct timespec ts{0, 2'000'000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace mles::test
