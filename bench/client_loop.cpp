// The bench's epoll loop: connect → [TLS] → upgrade → frames, level-triggered, one shared
// read buffer, in-place parsing of server frames, one write per connection per round.
#include "client_loop.hpp"

#include <fmt/format.h>
#include <liburing.h>
#include <openssl/err.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace mles::bench {

namespace {

constexpr std::size_t initial_read_buffer = 1u << 20;
constexpr std::size_t min_read_space = 64u << 10;
constexpr std::size_t max_upgrade_response = 16u << 10;
constexpr int max_reads_per_event = 4;  // fairness between connections
constexpr clock_ns max_wait = ms_ns(20);
// Batched reads: at most this many per submission, each into a slot of the batch buffer
// holding the connection's unparsed tail (at most batch_tail) and then batch_read bytes.
// (TLS on our records: the tail, then the incomplete record kept from the last read, together
// at most batch_tail.)
constexpr std::size_t batch_reads_max = 128;
// How often a round stops between reads to let a paced mode send what is due.
constexpr clock_ns progress_interval = 20'000;
constexpr std::size_t batch_tail = 24u << 10;
constexpr std::size_t batch_read = 64u << 10;
constexpr std::size_t batch_slot = batch_tail + batch_read;

// The TLS connections' socket BIO. OpenSSL reads until the socket says EAGAIN, so every
// drained connection cost a read() that found nothing: with 1,100 connections taking ~17 KB
// each per round, one read() in two. Here a read shorter than asked marks the socket drained
// (a stream socket returns less only when it had no more), and until epoll reports it
// readable again (level-triggered: it does, at once, if more arrived meanwhile) OpenSSL's
// next read is told to retry without a syscall. Writes go straight to send().
int socket_bio_read(BIO* b, char* buf, int len) {
  auto* c = static_cast<connection*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (c->tls_drained_) {
    BIO_set_retry_read(b);
    return -1;
  }
  ssize_t n;
  do {
    n = ::read(c->fd_, buf, static_cast<std::size_t>(len));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    c->tls_drained_ = true;
    BIO_set_retry_read(b);
    return -1;
  }
  if (n >= 0 && n < len) c->tls_drained_ = true;
  return static_cast<int>(n);
}

int socket_bio_write(BIO* b, const char* buf, int len) {
  auto* c = static_cast<connection*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n;
  do {
    n = ::send(c->fd_, buf, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

long socket_bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int socket_bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const m = [] {
    BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mles-bench socket");
    if (meth == nullptr || BIO_meth_set_read(meth, socket_bio_read) != 1 ||
        BIO_meth_set_write(meth, socket_bio_write) != 1 || BIO_meth_set_ctrl(meth, socket_bio_ctrl) != 1 ||
        BIO_meth_set_create(meth, socket_bio_create) != 1)
      throw bench_failure{"cannot set up the TLS socket BIO"};
    return meth;
  }();
  return m;
}

// TLS 1.3 secrets: the key-log callback hands them to the connection being handshaken.
int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void keep_secrets(const SSL* ssl, const char* line) {
  auto* s = static_cast<net::tls13::application_secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (s != nullptr && line != nullptr) s->take_keylog_line(line);
}

// Writes data[off, size) until all is written or the socket is full; false (errno says why)
// if the socket failed.
bool send_some(int fd, const char* data, std::size_t size, std::size_t& off) {
  while (off < size) {
    const ssize_t r = ::send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (r > 0) {
      off += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (r == 0) errno = EPIPE;
    return false;
  }
  return true;
}

std::string tls_error_string() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return errno != 0 ? std::string(std::strerror(errno)) : std::string("unknown");
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  return buf.data();
}

}  // namespace

client_loop::client_loop(const endpoint& ep, SSL_CTX* tls, std::string host_header, bool batch_reads)
    : endpoint_(ep), tls_(tls), host_header_(std::move(host_header)) {
  if (batch_reads) {
    ring_ = std::make_unique<io_uring>();
    if (io_uring_queue_init(static_cast<unsigned>(batch_reads_max), ring_.get(), 0) == 0) {
      batch_buf_.resize(batch_reads_max * batch_slot);
      to_read_.reserve(batch_reads_max);
    } else {
      ring_.reset();  // read() per connection, as without
    }
  }
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  rbuf_.resize(initial_read_buffer);
  if (tls_ != nullptr) SSL_CTX_set_keylog_callback(tls_, &keep_secrets);
}

client_loop::~client_loop() {
  for (auto& c : connections_) close(c, close_kind::abortive);
  if (ring_) io_uring_queue_exit(ring_.get());
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

const endpoint& client_loop::target_of(const connection& c) const noexcept {
  return c.target_ ? *c.target_ : endpoint_;
}

connection& client_loop::create(std::uint32_t id, const endpoint* target, const std::string* host) {
  connection& c = connections_.emplace_back();
  c.id_ = id;
  c.target_ = target;
  c.target_host_ = host;
  c.mask_rng_ = (id + 1) * 2654435761u | 1u;
  return c;
}

void client_loop::start_connect(connection& c) {
  c.t_connect_ = now_ns();
  const endpoint& ep = target_of(c);
  const int fd = ::socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    handler_->on_failure(c, fmt::format("socket(): {}", std::strerror(errno)));
    c.state_ = conn_state::closed;
    return;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.fd_ = fd;
  c.state_ = conn_state::connecting;
  ++handshaking_;
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.ptr = &c;
  c.events_ = EPOLLOUT;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail(c, fmt::format("epoll_ctl: {}", std::strerror(errno)));
    return;
  }
  const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.addr_len);
  if (r == 0) {
    finish_connect(c);
  } else if (errno != EINPROGRESS) {
    fail(c, fmt::format("connect to {}: {}", ep.text, std::strerror(errno)));
  }
}

void client_loop::finish_connect(connection& c) {
  const endpoint& ep = target_of(c);
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    fail(c, fmt::format("connect to {}: {}", ep.text, std::strerror(err)));
    return;
  }
  c.t_tcp_ = now_ns();
  handler_->on_tcp_connected(c, c.t_tcp_);
  if (c.state_ == conn_state::closed) return;
  if (tls_ != nullptr) {
    c.ssl_ = SSL_new(tls_);
    if (c.ssl_ == nullptr) {
      fail(c, "SSL_new failed");
      return;
    }
    BIO* bio = BIO_new(socket_bio_method());
    if (bio == nullptr) {
      fail(c, "BIO_new failed");
      return;
    }
    BIO_set_data(bio, &c);
    c.tls_drained_ = false;
    SSL_set_bio(c.ssl_, bio, bio);
    // No read-ahead until the records are ours or OpenSSL's for good: OpenSSL must not hold
    // bytes past the handshake when the bench takes the records over.
    SSL_set_read_ahead(c.ssl_, 0);
    c.tls_secrets_ = std::make_unique<net::tls13::application_secrets>();
    SSL_set_ex_data(c.ssl_, secrets_index(), c.tls_secrets_.get());
    SSL_set_tlsext_host_name(c.ssl_, "localhost");
    SSL_set_connect_state(c.ssl_);
    c.state_ = conn_state::tls_handshake;
    continue_tls_handshake(c);
  } else {
    send_upgrade_request(c);
  }
}

void client_loop::continue_tls_handshake(connection& c) {
  ERR_clear_error();
  errno = 0;
  const endpoint& ep = target_of(c);
  const int r = SSL_do_handshake(c.ssl_);
  if (r == 1) {
    c.read_wants_write_ = false;
    take_over_records(c);
    send_upgrade_request(c);
    return;
  }
  const int e = SSL_get_error(c.ssl_, r);
  if (e == SSL_ERROR_WANT_READ) {
    c.read_wants_write_ = false;
  } else if (e == SSL_ERROR_WANT_WRITE) {
    c.read_wants_write_ = true;
  } else {
    fail(c, fmt::format("TLS handshake with {} failed: {}", ep.text,
                        e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN
                            ? std::string("connection closed by the server")
                            : tls_error_string()));
    return;
  }
  update_interest(c);
}

// TLS 1.3: once the handshake is done the bench runs the records itself, on the server's
// record layer (src/net/tls13_records: AEAD through OpenSSL's EVP, framing ours), and frees
// the SSL. Why: OpenSSL's per-record path on the client (SSL_read's state machine, its
// error queue, a copy out of its buffer) cost the bench about as much as the AES itself,
// and the bench's core, not the server's, set the pace of TLS fan-out. The handshake, the
// certificate and the cipher stay OpenSSL's; TLS 1.2 (and any surprise: bytes OpenSSL
// already holds, an unknown suite) keeps OpenSSL for the whole connection.
void client_loop::take_over_records(connection& c) {
  const std::unique_ptr<net::tls13::application_secrets> secrets = std::move(c.tls_secrets_);
  SSL_set_ex_data(c.ssl_, secrets_index(), nullptr);
  const SSL_CIPHER* cipher = SSL_get_current_cipher(c.ssl_);
  const auto suite = cipher != nullptr ? net::tls13::suite_from_id(SSL_CIPHER_get_protocol_id(cipher)) : std::nullopt;
  if (SSL_version(c.ssl_) == TLS1_3_VERSION && suite && secrets && secrets->complete_for(*suite) &&
      SSL_has_pending(c.ssl_) == 0) {
    try {
      c.records_ = std::make_unique<net::tls13::record_layer>(*suite, net::tls13::role::client,
                                                              secrets->client_secret(), secrets->server_secret());
      SSL_free(c.ssl_);
      c.ssl_ = nullptr;
      return;
    } catch (const std::exception&) {
      // The keys could not be derived: OpenSSL keeps the records.
    }
  }
  SSL_set_read_ahead(c.ssl_, 1);
}

void client_loop::send_upgrade_request(connection& c) {
  c.ws_key_ = make_websocket_key();
  c.state_ = conn_state::upgrading;
  c.out_ += fmt::format(
      "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: {}\r\n\r\n",
      c.target_host_ ? *c.target_host_ : host_header_, c.ws_key_, mles_subprotocol);
  flush(c);
}

void client_loop::send_frame(connection& c, ws_opcode op, const char* payload, std::size_t n) {
  const std::size_t h = server_header_size(n) + 4;
  const std::size_t old = c.out_.size();
  c.out_.resize(old + h + n);
  char* p = c.out_.data() + old;
  const std::size_t hl = write_header(p, op, n, true, true);
  // xorshift32: a fresh masking key per frame (RFC 6455 §5.3) at negligible cost.
  std::uint32_t x = c.mask_rng_;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  c.mask_rng_ = x;
  std::memcpy(p + hl, &x, 4);
  copy_masked(p + hl + 4, payload, n, x);
  mark_dirty(c);
}

void client_loop::pause_reading(connection& c) {
  c.read_paused_ = true;
  update_interest(c);
}

void client_loop::mark_dirty(connection& c) {
  if (!c.dirty_) {
    c.dirty_ = true;
    dirty_.push_back(&c);
  }
}

void client_loop::close(connection& c, close_kind kind) {
  if (c.state_ == conn_state::closed || c.state_ == conn_state::idle) {
    c.state_ = conn_state::closed;
    return;
  }
  if (c.state_ != conn_state::open) --handshaking_;
  if (kind == close_kind::abortive) {
    const linger lg{1, 0};
    ::setsockopt(c.fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  if (c.ssl_ != nullptr) {
    SSL_free(c.ssl_);
    c.ssl_ = nullptr;
  }
  c.tls_secrets_.reset();
  c.records_.reset();
  std::string().swap(c.records_in_);
  net::byte_buffer().swap(c.sealed_);
  c.sealed_off_ = 0;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd_, nullptr);
  ::close(c.fd_);
  c.fd_ = -1;
  c.state_ = conn_state::closed;
  std::string().swap(c.out_);
  std::string().swap(c.in_);
  std::string().swap(c.frag_);
  c.out_off_ = 0;
}

void client_loop::fail(connection& c, std::string_view why) {
  if (c.state_ == conn_state::closed) return;
  handler_->on_failure(c, why);
  close(c);
}

void client_loop::update_interest(connection& c) {
  if (c.state_ == conn_state::closed) return;
  std::uint32_t want = 0;
  switch (c.state_) {
    case conn_state::connecting:
      want = EPOLLOUT;
      break;
    case conn_state::tls_handshake:
      want = c.read_wants_write_ ? EPOLLOUT : EPOLLIN;
      break;
    default:
      want = (c.read_paused_ ? 0u : static_cast<std::uint32_t>(EPOLLIN)) |
             ((c.queued() > 0 || c.read_wants_write_) ? EPOLLOUT : 0u);
      break;
  }
  if (want == c.events_) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd_, &ev);
  c.events_ = want;
}

void client_loop::flush(connection& c) {
  if (c.records_ != nullptr && c.out_off_ < c.out_.size()) {
    try {
      c.records_->seal({reinterpret_cast<const std::uint8_t*>(c.out_.data()) + c.out_off_, c.out_.size() - c.out_off_},
                       c.sealed_);
    } catch (const std::exception& e) {
      fail(c, fmt::format("TLS write failed: {}", e.what()));
      return;
    }
    c.out_.clear();
    c.out_off_ = 0;
  }
  // Sealed records first (ours), then out_ (plain, or OpenSSL's to seal).
  if (!send_some(c.fd_, reinterpret_cast<const char*>(c.sealed_.data()), c.sealed_.size(), c.sealed_off_)) {
    fail(c, fmt::format("write failed: {}", std::strerror(errno)));
    return;
  }
  if (c.sealed_off_ == c.sealed_.size()) {
    c.sealed_.clear();
    c.sealed_off_ = 0;
  }
  if (c.ssl_ == nullptr && !send_some(c.fd_, c.out_.data(), c.out_.size(), c.out_off_)) {
    fail(c, fmt::format("write failed: {}", std::strerror(errno)));
    return;
  }
  while (c.ssl_ != nullptr && c.out_off_ < c.out_.size()) {
    const std::size_t left = c.out_.size() - c.out_off_;
    ERR_clear_error();
    errno = 0;
    const int r = SSL_write(c.ssl_, c.out_.data() + c.out_off_, static_cast<int>(std::min<std::size_t>(left, INT_MAX)));
    if (r > 0) {
      c.out_off_ += static_cast<std::size_t>(r);
      continue;
    }
    const int e = SSL_get_error(c.ssl_, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
    fail(c, fmt::format("TLS write failed: {}", tls_error_string()));
    return;
  }
  if (c.out_off_ == c.out_.size()) {
    c.out_.clear();
    c.out_off_ = 0;
  } else if (c.out_off_ > (1u << 20) && c.out_off_ * 2 > c.out_.size()) {
    c.out_.erase(0, c.out_off_);
    c.out_off_ = 0;
  }
  update_interest(c);
}

void client_loop::progress() {
  const clock_ns now = now_ns();
  if (now < next_progress_) return;
  next_progress_ = now + progress_interval;
  if (handler_->on_progress(now)) flush_dirty();
}

void client_loop::flush_dirty() {
  // Index loop: a flush failure may make the handler queue frames on other connections.
  for (std::size_t i = 0; i < dirty_.size(); ++i) {
    connection& c = *dirty_[i];
    c.dirty_ = false;
    if (c.state_ == conn_state::upgrading || c.state_ == conn_state::open) flush(c);
  }
  dirty_.clear();
}

void client_loop::on_event(connection& c, std::uint32_t ev) {
  switch (c.state_) {
    case conn_state::idle:
    case conn_state::closed:
      return;
    case conn_state::connecting:
      finish_connect(c);
      return;
    case conn_state::tls_handshake:
      if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0) c.tls_drained_ = false;
      continue_tls_handshake(c);
      return;
    case conn_state::upgrading:
    case conn_state::open:
      break;
  }
  if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0) c.tls_drained_ = false;
  if (c.read_paused_) {
    // Never read: only a reset (or a hang-up in both directions) ends it.
    if ((ev & (EPOLLERR | EPOLLHUP)) != 0) {
      fail(c, "server reset or hung up the connection");
      return;
    }
    if ((ev & EPOLLOUT) != 0) flush(c);
    return;
  }
  if ((ev & EPOLLOUT) != 0) {
    if (c.read_wants_write_) {
      c.read_wants_write_ = false;
      do_read(c);
      if (c.state_ == conn_state::closed) return;
    }
    flush(c);
    if (c.state_ == conn_state::closed) return;
  }
  if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0) {
    do_read(c);
    if ((c.ssl_ != nullptr || c.records_ != nullptr) && c.state_ != conn_state::closed && c.queued() > 0)
      mark_dirty(c);
  }
}

void client_loop::do_read(connection& c) {
  if (c.read_paused_) return;
  // With read-ahead OpenSSL may hold whole records the socket no longer shows: a connection
  // past its fair share keeps reading while they are there (epoll would not wake it).
  for (int iter = 0; (iter < max_reads_per_event || (c.ssl_ != nullptr && SSL_has_pending(c.ssl_) == 1)) &&
                     c.state_ != conn_state::closed;
       ++iter) {
    const std::size_t have = c.in_.size();
    if (rbuf_.size() < have + min_read_space)
      rbuf_.resize(std::max(rbuf_.size() * 2, have + min_read_space));
    if (have > 0) std::memcpy(rbuf_.data(), c.in_.data(), have);
    c.in_.clear();
    char* base = rbuf_.data() + have;
    const std::size_t space = rbuf_.size() - have;
    read_outcome o;
    if (c.records_ != nullptr) {
      o = read_records(c, have);
    } else if (c.ssl_ != nullptr) {
      // SSL_read yields at most one record (16 KiB): fill the buffer before parsing.
      while (o.plaintext < space) {
        ERR_clear_error();
        errno = 0;
        const int r = SSL_read(c.ssl_, base + o.plaintext,
                               static_cast<int>(std::min<std::size_t>(space - o.plaintext, INT_MAX)));
        if (r > 0) {
          o.plaintext += static_cast<std::size_t>(r);
          continue;
        }
        const int e = SSL_get_error(c.ssl_, r);
        if (e == SSL_ERROR_WANT_READ) {
          o.drained = true;
        } else if (e == SSL_ERROR_WANT_WRITE) {
          c.read_wants_write_ = true;
          o.drained = true;
          update_interest(c);
        } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
          o.eof = true;
        } else {
          o.error = fmt::format("TLS read failed: {}", tls_error_string());
        }
        break;
      }
    } else {
      ssize_t r;
      do {
        r = ::read(c.fd_, base, space);
      } while (r < 0 && errno == EINTR);
      o = outcome_of_read(r >= 0 ? r : -errno, space);
    }
    if (!take_read(c, rbuf_.data(), have, o, now_ns())) return;
  }
}

client_loop::read_outcome client_loop::outcome_of_read(std::int64_t r, std::size_t space) {
  read_outcome o;
  if (r > 0) {
    o.plaintext = static_cast<std::size_t>(r);
    o.drained = o.plaintext < space;  // a stream socket returns less only when it had no more
  } else if (r == 0) {
    o.eof = true;
  } else if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR) {
    o.drained = true;  // (-EINTR: only a batched read reports it; read() calls are retried)
  } else {
    o.error = fmt::format("read failed: {}", std::strerror(static_cast<int>(-r)));
  }
  return o;
}

bool client_loop::take_read(connection& c, char* buf, std::size_t have, const read_outcome& o, clock_ns read_time) {
  ++read_calls_;
  bytes_read_ += o.plaintext;
  if (o.plaintext > 0) {
    if (!consume(c, buf, have + o.plaintext, read_time)) return false;
  } else if (have > 0) {
    c.in_.assign(buf, have);
  }
  if (o.eof) {
    fail(c, c.state_ == conn_state::upgrading ? "server closed the connection during the upgrade (no 101)"
                                              : "server closed the connection");
    return false;
  }
  if (!o.error.empty()) {
    fail(c, o.error);
    return false;
  }
  return !o.drained && !c.read_paused_ && c.state_ != conn_state::closed;
}

client_loop::read_outcome client_loop::read_records(connection& c, std::size_t at) {
  // The incomplete record of the last read, then the socket's bytes after it.
  const std::size_t part = c.records_in_.size();
  if (rbuf_.size() < at + part + min_read_space) rbuf_.resize(std::max(rbuf_.size() * 2, at + part + min_read_space));
  char* base = rbuf_.data() + at;
  if (part > 0) std::memcpy(base, c.records_in_.data(), part);
  c.records_in_.clear();
  const std::size_t space = rbuf_.size() - at - part;
  ssize_t r;
  do {
    r = ::read(c.fd_, base + part, space);
  } while (r < 0 && errno == EINTR);
  read_outcome o = outcome_of_read(r >= 0 ? r : -errno, space);
  open_records(c, base, part + o.plaintext, o);
  return o;
}

void client_loop::open_records(connection& c, char* base, std::size_t n, read_outcome& o) {
  // Whole records are opened in place (their plaintext moves to base); the rest is kept.
  const auto res = c.records_->open({reinterpret_cast<std::uint8_t*>(base), n}, c.sealed_);
  if (res.st == net::tls13::record_layer::status::ok) {
    c.records_in_.assign(base + res.consumed, n - res.consumed);
    if (o.eof && !c.records_in_.empty() && o.error.empty()) o.error = "TLS stream ended inside a record";
  } else if (res.st == net::tls13::record_layer::status::closed) {
    o.eof = true;  // close_notify
  } else {
    o.error = fmt::format("TLS read failed: {}", c.records_->what());
  }
  o.plaintext = res.plaintext;
}

bool client_loop::consume_upgrade_response(connection& c, const char* p, std::size_t n, std::size_t& used) {
  const std::string_view all(p, n);
  const std::size_t end = all.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (n > max_upgrade_response) {
      fail(c, "upgrade response headers too large");
      return false;
    }
    used = 0;  // keep everything for the next read
    return true;
  }
  const std::string_view head = all.substr(0, end + 2);
  const std::size_t sp = head.find(' ');
  if (head.substr(0, 5) != "HTTP/" || sp == std::string_view::npos || head.substr(sp + 1, 3) != "101") {
    const std::size_t eol = head.find("\r\n");
    fail(c, fmt::format("upgrade refused: \"{}\"", head.substr(0, eol)));
    return false;
  }
  const std::string expected = websocket_accept_key(c.ws_key_);
  if (header_value(head, "Sec-WebSocket-Accept") != expected) {
    fail(c, "upgrade response has a wrong or missing Sec-WebSocket-Accept");
    return false;
  }
  if (header_value(head, "Sec-WebSocket-Protocol") != mles_subprotocol) {
    fail(c, "upgrade response does not select Sec-WebSocket-Protocol: mles-websocket");
    return false;
  }
  used = end + 4;
  c.state_ = conn_state::open;
  --handshaking_;
  c.t_open_ = now_ns();
  handler_->on_open(c, c.t_open_);
  return c.state_ != conn_state::closed;
}

bool client_loop::consume(connection& c, char* p, std::size_t n, clock_ns read_time) {
  std::size_t pos = 0;
  if (c.state_ == conn_state::upgrading) {
    std::size_t used = 0;
    if (!consume_upgrade_response(c, p, n, used)) return false;
    if (c.state_ == conn_state::upgrading) {
      c.in_.assign(p, n);
      return true;
    }
    pos = used;
  }
  while (pos < n) {
    frame_view f;
    const parse_result r = parse_frame(p + pos, n - pos, f);
    if (r == parse_result::need_more) break;
    if (r == parse_result::error) {
      fail(c, "protocol error: malformed frame from the server");
      return false;
    }
    if (f.masked) {
      fail(c, "protocol error: the server sent a masked frame");
      return false;
    }
    pos += f.frame_len;
    switch (f.opcode) {
      case ws_opcode::text:
      case ws_opcode::binary:
        if (c.frag_opcode_ != ws_opcode::continuation) {
          fail(c, "protocol error: data frame inside a fragmented message");
          return false;
        }
        if (f.fin) {
          handler_->on_message(c, f.opcode, f.payload, f.payload_len, read_time);
        } else {
          c.frag_opcode_ = f.opcode;
          c.frag_.assign(f.payload, f.payload_len);
        }
        break;
      case ws_opcode::continuation:
        if (c.frag_opcode_ == ws_opcode::continuation) {
          fail(c, "protocol error: continuation frame without a message");
          return false;
        }
        c.frag_.append(f.payload, f.payload_len);
        if (f.fin) {
          const ws_opcode op = c.frag_opcode_;
          c.frag_opcode_ = ws_opcode::continuation;
          std::string msg;
          msg.swap(c.frag_);
          handler_->on_message(c, op, msg.data(), msg.size(), read_time);
        }
        break;
      case ws_opcode::ping:
        send_frame(c, ws_opcode::pong, f.payload, f.payload_len);
        break;
      case ws_opcode::pong:
        break;
      case ws_opcode::close: {
        unsigned code = 1005;
        std::string_view reason;
        if (f.payload_len >= 2) {
          code = (static_cast<unsigned>(static_cast<std::uint8_t>(f.payload[0])) << 8) |
                 static_cast<std::uint8_t>(f.payload[1]);
          reason = std::string_view(f.payload + 2, f.payload_len - 2);
        }
        fail(c, fmt::format("server closed the session: close {} \"{}\"", code, reason));
        return false;
      }
    }
    if (c.state_ == conn_state::closed) return false;
  }
  if (pos < n) c.in_.assign(p + pos, n - pos);
  return true;
}

void client_loop::run(const std::atomic<bool>& stop) {
  // Paced sends wake on timers: without this the kernel may add 50 µs of slack to each.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  std::vector<epoll_event> events(1024);
  while (!stop.load(std::memory_order_acquire)) {
    const clock_ns now = now_ns();
    sleeping_.store(true, std::memory_order_relaxed);
    // Pairs with the fence a peer loop issues after advancing acks (fanout): either it sees
    // us sleeping and wakes us, or next_wakeup below sees its acks.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const clock_ns wait = std::clamp<clock_ns>(handler_->next_wakeup(now) - now, 0, max_wait);
    const timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    const int n = ::epoll_pwait2(epoll_fd_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    sleeping_.store(false, std::memory_order_relaxed);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "epoll_pwait2");
    }
    for (int i = 0; i < n; ++i) {
      void* ptr = events[static_cast<std::size_t>(i)].data.ptr;
      if (ptr == nullptr) {
        std::uint64_t v;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &v, sizeof v);
        continue;
      }
      auto& c = *static_cast<connection*>(ptr);
      const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
      if (ring_ && batchable(c, ev)) {
        to_read_.push_back(&c);
        if (to_read_.size() == batch_reads_max) read_batch();
        continue;
      }
      on_event(c, ev);
      progress();
    }
    if (!to_read_.empty()) read_batch();
    handler_->on_round(now_ns());
    flush_dirty();
  }
}

// A readable plain connection that on_event would only read (nothing to write, not paused,
// a short unparsed tail) joins the round's batch of reads.
bool client_loop::batchable(const connection& c, std::uint32_t ev) const noexcept {
  return (ev & ~static_cast<std::uint32_t>(EPOLLIN)) == 0 && c.ssl_ == nullptr && !c.read_paused_ &&
         (c.state_ == conn_state::open || c.state_ == conn_state::upgrading) &&
         c.in_.size() + c.records_in_.size() <= batch_tail;
}

// One recv per collected connection, submitted together; each result is handled as do_read
// handles its read() (a full slot goes on with do_read: more may be waiting).
void client_loop::read_batch() {
  std::vector<connection*> batch;
  batch.swap(to_read_);
  std::size_t queued = 0;
  for (std::size_t k = 0; k < batch.size(); ++k) {
    connection& c = *batch[k];
    char* slot = batch_buf_.data() + k * batch_slot;
    const std::size_t have = c.in_.size();
    const std::size_t part = c.records_in_.size();
    if (have > 0) std::memcpy(slot, c.in_.data(), have);
    if (part > 0) std::memcpy(slot + have, c.records_in_.data(), part);
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) break;  // not expected: the ring has batch_reads_max entries
    io_uring_prep_recv(sqe, c.fd_, slot + have + part, batch_read, MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, k);
    ++queued;
  }
  const int submitted = queued > 0 ? io_uring_submit(ring_.get()) : 0;
  std::vector<std::int64_t> results(batch.size(), -EAGAIN);
  std::vector<bool> done(batch.size(), false);
  for (int reaped = 0; reaped < submitted;) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_peek_cqe(ring_.get(), &cqe);
    if (rc == -EAGAIN) rc = io_uring_wait_cqe(ring_.get(), &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "io_uring_wait_cqe");
    const auto k = static_cast<std::size_t>(io_uring_cqe_get_data64(cqe));
    if (k < batch.size()) {
      results[k] = cqe->res;
      done[k] = true;
    }
    io_uring_cqe_seen(ring_.get(), cqe);
    ++reaped;
  }
  const clock_ns read_time = now_ns();
  for (std::size_t k = 0; k < batch.size(); ++k) {
    connection& c = *batch[k];
    if (c.state_ == conn_state::closed) continue;
    if (!done[k]) {  // the ring did not take it: read as usual
      do_read(c);
      continue;
    }
    char* slot = batch_buf_.data() + k * batch_slot;
    const std::size_t have = c.in_.size();
    c.in_.clear();
    read_outcome o = outcome_of_read(results[k], batch_read);
    if (c.records_ != nullptr) {
      // The kept incomplete record (copied after the tail) and the new bytes.
      const std::size_t part = c.records_in_.size();
      c.records_in_.clear();
      open_records(c, slot + have, part + o.plaintext, o);
    }
    if (take_read(c, slot, have, o, read_time)) do_read(c);  // a full slot: more may wait
    if (c.records_ != nullptr && c.state_ != conn_state::closed && c.queued() > 0) mark_dirty(c);
    progress();
  }
  batch.clear();
  if (to_read_.empty()) to_read_.swap(batch);  // keep the storage
}

void client_loop::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t r = ::write(wake_fd_, &one, sizeof one);
}

}  // namespace mles::bench
