// transport: non-blocking reads and writes on a socket, plain or through OpenSSL.
#include "net/transport.hpp"

#include "net/tls13_records.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <sys/ioctl.h>
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

// A session on our record layer.
struct transport::own_tls {
  own_tls(tls13::suite s, std::span<const std::uint8_t> client, std::span<const std::uint8_t> server,
          std::uint64_t write_seq)
      : records(s, tls13::role::server, client, server, write_seq) {}
  tls13::record_layer records;
  std::vector<std::uint8_t> partial;  // an incomplete record read so far
  std::string alpn;
  bool peer_closed = false;  // close_notify received: reads end
  bool close_sent = false;   // our close_notify went out
  std::uint32_t ops = 0;     // reads and writes since the last sweep
  // The cipher contexts (~1 KB each) stay only on a busy session; a quiet one (a join, a
  // message now and then) makes them per read or write and frees them right after.
  static constexpr std::uint32_t busy_ops = 8;
  void after_op() noexcept {
    if (ops < busy_ops) records.release_contexts();
  }
};

namespace {

int transport_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

void tls13_keylog(const SSL* ssl, const char* line) {
  auto* t = static_cast<transport*>(SSL_get_ex_data(ssl, transport_index()));
  if (!t || !t->handoff_ || !line) return;
  t->handoff_->take_keylog_line(line);
}

namespace {

// The socket's descriptor, taken from Asio; -1 if it has none: reads and writes then fail
// with EBADF and the connection ends at once.
int release_descriptor(boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  const int fd = socket.is_open() ? socket.release(ec) : -1;
  if (ec || fd < 0) return -1;
  int on = 1;
  (void)::ioctl(fd, FIONBIO, &on);  // Asio may have left it blocking at the system level
  return fd;
}
}  // namespace

transport::transport(boost::asio::ip::tcp::socket socket, SSL* ssl, tls_role role,
                     byte_buffer& tls_scratch)
    : transport(release_descriptor(socket), ssl, role, tls_scratch) {}

transport::transport(int fd, SSL* ssl, tls_role role, byte_buffer& tls_scratch)
    : fd_(fd), ssl_(ssl), scratch_(tls_scratch) {
  if (ssl_) {
    BIO* rbio = BIO_new_socket(fd_, BIO_NOCLOSE);
    BIO* wbio = BIO_new(tls_sink_access::method());
    BIO_set_data(wbio, this);
    SSL_set_bio(ssl_, rbio, wbio);
    if (role == tls_role::server) {
      SSL_set_accept_state(ssl_);
      // Ready to take over a TLS 1.3 session: OpenSSL must not read past the client's
      // Finished (no read-ahead during the handshake; restored if OpenSSL keeps the session).
      handoff_ = std::make_unique<tls13::application_secrets>();
      SSL_set_ex_data(ssl_, transport_index(), this);
      SSL_set_read_ahead(ssl_, 0);
    } else {
      SSL_set_connect_state(ssl_);
    }
  }
}

transport::~transport() {
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) (void)::close(fd_);
}

// The handshake is complete and the server's last flight (this call's output, session
// tickets) is in the scratch buffer, not yet sent.
void transport::take_over_records() {
  const std::unique_ptr<tls13::application_secrets> h = std::move(handoff_);
  SSL_set_ex_data(ssl_, transport_index(), nullptr);
  const auto keep_openssl = [&] { SSL_set_read_ahead(ssl_, 1); };
  if (!h || SSL_version(ssl_) != TLS1_3_VERSION || SSL_has_pending(ssl_) || SSL_pending(ssl_) > 0) {
    return keep_openssl();
  }
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  const auto s = cipher ? tls13::suite_from_id(SSL_CIPHER_get_protocol_id(cipher)) : std::nullopt;
  if (!s || !h->complete_for(*s)) {
    return keep_openssl();
  }
  const std::span<const std::uint8_t> client = h->client_secret();
  const std::span<const std::uint8_t> server = h->server_secret();
  try {
    // Whatever OpenSSL wrote in this last step went under our new key (the tickets): open it
    // as the client would, to know exactly how many records it was. Anything else (a record
    // that does not open) and OpenSSL keeps the session.
    std::uint64_t sent = 0;
    if (!scratch_.empty()) {
      byte_buffer copy(scratch_);
      byte_buffer answer;
      tls13::record_layer peer(*s, tls13::role::client, client, server);
      const auto r = peer.open(copy, answer);
      if (r.st != tls13::record_layer::status::ok || r.consumed != copy.size() || r.plaintext != 0 ||
          !answer.empty()) {
        return keep_openssl();
      }
      sent = peer.read_keys().seq;
    }
    auto own = std::make_unique<own_tls>(*s, client, server, sent);
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    if (p) own->alpn.assign(reinterpret_cast<const char*>(p), len);
    t13_ = std::move(own);
  } catch (const std::exception& e) {
    spdlog::debug("TLS 1.3 record layer not taken over: {}", e.what());
    return keep_openssl();
  }
  SSL_free(ssl_);
  ssl_ = nullptr;
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
      set_error(e ? std::string(what) + ": " + std::strerror(e) : std::string(what) + ": connection closed");
      return {e ? io_status::error : io_status::eof};
    }
    default: {
      char buf[256];
      const unsigned long code = ERR_get_error();
      ERR_error_string_n(code, buf, sizeof buf);
      ERR_clear_error();
      set_error(std::string(what) + ": " + buf);
      return {io_status::error};
    }
  }
}

io_result transport::send_result(long result) {
  if (result >= 0) return {io_status::ok, static_cast<std::size_t>(result)};
  if (result == -EAGAIN || result == -EWOULDBLOCK) return {io_status::want_write};
  set_error(std::string("write: ") + std::strerror(static_cast<int>(-result)));
  return {io_status::error};
}

long transport::send_iov(int fd, const struct iovec* iov, int count, int flags) noexcept {
  msghdr msg{};
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, flags);
  } while (n < 0 && errno == EINTR);
  return n >= 0 ? static_cast<long>(n) : -static_cast<long>(errno);
}

io_result transport::send_raw(std::span<const std::uint8_t> bytes) {
  const iovec v{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
  return send_result(send_iov(fd_, &v, 1));
}

io_result transport::ship_scratch() {
  if (scratch_.empty()) return {io_status::ok};
  if (has_pending_output()) {
    // Earlier ciphertext is still waiting: keep the order.
    held_->bytes.insert(held_->bytes.end(), scratch_.begin(), scratch_.end());
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
    if (!held_) held_ = std::make_unique<held_output>();
    held_->bytes.swap(scratch_);
    held_->sent = sent;
  }
  scratch_.clear();
  return {has_pending_output() ? io_status::want_write : io_status::ok};
}

io_result transport::flush_output() {
  if (!has_pending_output()) return {io_status::ok};
  auto& held = *held_;
  const io_result r = send_raw(std::span<const std::uint8_t>(held.bytes).subspan(held.sent));
  if (r.status != io_status::ok) return r;
  held.sent += r.n;  // an offset, not an erase: no memmove of what is left
  if (held.sent < held.bytes.size()) return {io_status::want_write};
  held.sent = 0;
  held.bytes.clear();
  // The buffer came from the loop's scratch (ship_scratch): give the larger one back to the
  // loop, so that the next burst seals into warm memory. Allocating and freeing ~100 KiB per
  // burst made glibc trim the arena and every TLS file response page-fault its buffers
  // (100 KiB over TLS: 4.3 k -> 1.9 k requests/s).
  if (held.bytes.capacity() > scratch_.capacity() && scratch_.empty()) held.bytes.swap(scratch_);
  if (held.bytes.capacity() > 64 * 1024 || held.bytes.capacity() == 0) held_.reset();
  return {io_status::ok};
}

io_result transport::handshake() {
  if (!ssl_) return {io_status::ok};
  ERR_clear_error();
  scratch_.clear();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1 && handoff_) take_over_records();  // before its last flight is sent
  const io_result shipped = ship_scratch();
  if (shipped.status == io_status::error) return shipped;
  if (ret == 1) return {io_status::ok};
  return ssl_result(ret, "TLS handshake");
}

// Our record layer: whole socket chunks read after any incomplete record kept from before,
// every complete record opened in place, the application bytes handed back at the front of
// buf. A chunk with no application data in it (a KeyUpdate, half a record) reads on.
io_result transport::read_own(std::span<std::uint8_t> buf) {
  own_tls& o = *t13_;
  if (o.peer_closed) return {io_status::eof};
  for (;;) {
    std::size_t have = o.partial.size();
    if (have) std::memcpy(buf.data(), o.partial.data(), have);
    o.partial.clear();
    ssize_t n;
    do {
      n = ::recv(fd_, buf.data() + have, buf.size() - have, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      const int e = errno;
      if (have) o.partial.assign(buf.data(), buf.data() + have);
      if (e == EAGAIN || e == EWOULDBLOCK) return {io_status::want_read};
      set_error(std::string("read: ") + std::strerror(e));
      return {io_status::error};
    }
    if (n == 0) {
      // A TCP end without close_notify (allowed, as OpenSSL is told to allow it).
      std::vector<std::uint8_t>().swap(o.partial);
      return {io_status::eof};
    }
    have += static_cast<std::size_t>(n);
    ++o.ops;
    scratch_.clear();
    tls13::record_layer::open_result r;
    try {
      r = o.records.open(buf.first(have), scratch_);
    } catch (const std::exception& e) {
      set_error(std::string("TLS read: ") + e.what());
      return {io_status::error};
    }
    o.after_op();
    // Our answers (a KeyUpdate, an alert) go out now.
    const io_result shipped = ship_scratch();
    if (r.st == tls13::record_layer::status::error) {
      set_error("TLS read: " + o.records.what());
      return {io_status::error};
    }
    if (shipped.status == io_status::error) return shipped;
    if (r.st == tls13::record_layer::status::closed) {
      o.peer_closed = true;
      std::vector<std::uint8_t>().swap(o.partial);
      if (r.plaintext) return {io_status::ok, r.plaintext};
      return {io_status::eof};
    }
    if (r.consumed < have) {
      o.partial.assign(buf.data() + r.consumed, buf.data() + have);
    } else if (o.partial.capacity()) {
      std::vector<std::uint8_t>().swap(o.partial);
    }
    if (r.plaintext) return {io_status::ok, r.plaintext};
  }
}

io_result transport::read(std::span<std::uint8_t> buf) {
  if (t13_) return read_own(buf);
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
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) return {io_status::ok, static_cast<std::size_t>(n)};
    if (n == 0) return {io_status::eof};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::want_read};
    set_error(std::string("read: ") + std::strerror(errno));
    return {io_status::error};
  }
}

io_result transport::write(std::span<const std::uint8_t> buf) {
  if (t13_) {
    scratch_.clear();
    const io_result sealed = seal_to(buf, scratch_);
    if (sealed.status != io_status::ok) return sealed;
    const io_result shipped = ship_scratch();
    if (shipped.status == io_status::error) return shipped;
    return {io_status::ok, buf.size()};  // plaintext consumed; leftover ciphertext is held
  }
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

io_result transport::seal_to(std::span<const std::uint8_t> buf, byte_buffer& out) {
  const std::size_t before = out.size();
  try {
    t13_->records.seal(buf, out);
  } catch (const std::exception& e) {
    out.resize(before);
    set_error(std::string("TLS write: ") + e.what());
    return {io_status::error};
  }
  ++t13_->ops;
  t13_->after_op();
  return {io_status::ok, buf.size()};
}

io_result transport::sent(std::span<const std::uint8_t> records, long result) {
  const io_result r = send_result(result);
  if (r.status == io_status::error) return r;
  const std::size_t taken = r.n;  // 0 when the kernel took nothing (-EAGAIN)
  if (taken < records.size()) {
    if (!held_) held_ = std::make_unique<held_output>();
    held_->bytes.assign(records.begin() + static_cast<std::ptrdiff_t>(taken), records.end());
    held_->sent = 0;
  }
  return {io_status::ok};
}

io_result transport::ship(std::span<const std::uint8_t> records) {
  const iovec v{const_cast<std::uint8_t*>(records.data()), records.size()};
  return sent(records, send_iov(fd_, &v, 1));
}

io_result transport::writev(const struct iovec* iov, int count) { return send_result(send_iov(fd_, iov, count)); }

void transport::on_sweep() noexcept {
  if (!t13_) return;
  if (t13_->ops == 0) t13_->records.release_contexts();
  t13_->ops = 0;
}

// Our record layer's close_notify into scratch_ (empty if it could not be sealed); once.
void transport::seal_close_notify() noexcept {
  t13_->close_sent = true;
  scratch_.clear();
  try {
    t13_->records.seal_alert(tls13::alert::close_notify, scratch_);
  } catch (const std::exception&) {
    scratch_.clear();
  }
}

void transport::shutdown_send() noexcept {
  if (t13_ && !t13_->close_sent) {
    seal_close_notify();
    (void)ship_scratch();
    (void)flush_output();
  } else if (!t13_ && ssl_ && SSL_is_init_finished(ssl_)) {
    ERR_clear_error();
    scratch_.clear();
    (void)SSL_shutdown(ssl_);  // one close_notify, no wait for the peer's
    ERR_clear_error();
    (void)ship_scratch();
    (void)flush_output();
  }
  if (fd_ >= 0) (void)::shutdown(fd_, SHUT_WR);
}

void transport::close(bool abort) noexcept {
  // The peer said close_notify and we end without having said ours: say it now (RFC 8446
  // §6.1: each side sends one before closing its write side), best effort, never blocking.
  if (t13_ && t13_->peer_closed && !t13_->close_sent && !has_pending_output()) {
    seal_close_notify();
    try {
      if (!scratch_.empty()) (void)send_raw(scratch_);
    } catch (const std::exception&) {
    }
    scratch_.clear();
  }
  if (fd_ >= 0) {
    if (abort) {
      const linger l{1, 0};
      (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    (void)::close(fd_);
    fd_ = -1;
  }
}

std::string transport::alpn() const {
  if (t13_) return t13_->alpn;
  if (!ssl_) return {};
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string{};
}

std::string transport::tls_version() const {
  if (t13_) return "TLSv1.3 (own records)";
  return ssl_ ? SSL_get_version(ssl_) : "plain";
}

}  // namespace mles::net
