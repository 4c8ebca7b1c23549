// http_session: the HTTP request loop of a server connection, until an upgrade (see header).
#include "net/http_session.hpp"

#include "net/log_limit.hpp"
#include "net/peer_wire.hpp"
#include "net/tls_context.hpp"
#include "net/ws_session.hpp"

#include "http/conditional.hpp"
#include "http/proxy_client.hpp"
#include "http/redirect.hpp"
#include "ws/handshake.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sstream>
#include <vector>
#include <unistd.h>

namespace mles::net {

namespace beast_http = boost::beast::http;

namespace {

hub::shared_frame text_frame(std::string_view s) {
  return hub::shared_frame::copy_of({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

std::string http_date_now() {
  return http::format_http_date(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
}

}  // namespace

http_session::http_session(connection& c, listener_role role)
    : connection_handler(c), role_(role) {}

http_session::~http_session() {
  end_body();
  body_charge_.shrink_to(0, conn_.ctx());
}

http_session* http_session::current(const std::weak_ptr<connection>& weak) {
  auto c = weak.lock();
  if (!c || c->closed()) return nullptr;
  auto* h = dynamic_cast<http_session*>(c->handler());
  return h && h->active() ? h : nullptr;
}

void http_session::on_ready() {
  // RFC 8737 §3: a validation connection ends once the handshake is done.
  if (conn_.is_tls() && conn_.io().alpn() == acme_tls_alpn) return conn_.finish(errc::acme_validation_done);
  deadline_ = conn_.loop().now() + conn_.ctx().settings.handshake_timeout;
}

void http_session::on_bytes(std::span<std::uint8_t> bytes) {
  if (!active()) return;  // after an error response: drop what still arrives
  buffer_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (busy_) {
    if (buffer_.size() > conn_.ctx().settings.http.max_pipelined) conn_.finish(errc::too_many_pipelined);
    return;
  }
  parse_requests();
}

void http_session::on_drained() {
  // A file body is streamed one chunk per burst.
  if (active() && streaming()) stream_next_chunk();
}

void http_session::on_sweep(event_loop::clock::time_point now) {
  if (now >= deadline_) conn_.finish(busy_ ? errc::http_stalled : errc::http_timeout);
}

void http_session::on_go_away() { conn_.finish(errc::server_stopping); }

void http_session::on_finished(const boost::system::error_code& why, std::string_view detail) {
  end_body();
  // TLS handshake failures at info (rate-limited): a client that cannot connect is visible.
  if (why == errc::tls_handshake_failed && problem_lines().allow(spdlog::level::info)) {
    const std::string remote = conn_.describe();
    log_fields f{{"remote", remote}, {"reason", errc_name(errc::tls_handshake_failed)}, {"detail", detail}};
    spdlog::info("{}: TLS handshake failed: {}", remote, detail);
    return;
  }
  if (detail.empty()) spdlog::debug("{}: connection ended: {}", conn_.describe(), why.message());
  else spdlog::debug("{}: connection ended: {}: {}", conn_.describe(), why.message(), detail);
}

void http_session::parse_requests() {
  while (active() && !busy_ && !buffer_.empty()) {
    if (!parser_) {
      parser_.emplace();
      parser_->header_limit(static_cast<std::uint32_t>(conn_.ctx().settings.http.max_request_head));
      parser_->body_limit(conn_.ctx().settings.http.max_request_body);
      head_consumed_ = 0;
    }
    const bool in_head = !parser_->is_header_done();
    if (in_head) {
      // The request head must end within conn_.ctx().settings.http.max_request_head, however it arrives (one read or
      // many TLS records) and however much of it the parser has already taken.
      const auto end = buffer_.find("\r\n\r\n");
      const std::size_t head = head_consumed_ + (end == std::string::npos ? buffer_.size() : end + 4);
      if (head > conn_.ctx().settings.http.max_request_head) return respond_error(431, "request header fields too large\n");
    }
    boost::beast::error_code ec;
    const std::size_t used =
        parser_->put(boost::asio::buffer(buffer_.data(), buffer_.size()), ec);
    buffer_.erase(0, used);
    if (in_head) head_consumed_ += used;
    if (ec == beast_http::error::need_more) return;
    if (ec == beast_http::error::header_limit) return respond_error(431, "request header fields too large\n");
    if (ec == beast_http::error::body_limit) return respond_error(413, "request body too large\n");
    if (ec) return respond_error(400, "malformed request: " + ec.message() + "\n");
    if (in_head && parser_->is_header_done() && !parser_->is_done() && !admit_body()) return;
    if (!parser_->is_done()) {
      if (used == 0) return;  // needs more bytes
      continue;               // Beast stops after the head: go on with the body
    }
    request_ = parser_->release();
    parser_.reset();
    body_charge_.shrink_to(0, conn_.ctx());
    dispatch_request();
  }
}

bool http_session::admit_body() {
  auto& counters = conn_.ctx().counters;
  const auto& req = parser_->get();
  // Only --proxy routes take a body (static files, redirects, ACME answers and the WebSocket
  // upgrade do not): refuse it now rather than receive it.
  const bool takes_body = role_ == listener_role::main && conn_.ctx().proxies &&
                          !ws::header_has_token(req[beast_http::field::upgrade], "websocket", ws::token_case::insensitive) &&
                          conn_.ctx().proxies->match(req.target());
  if (!takes_body) {
    counters.bodies_refused.fetch_add(1, std::memory_order_relaxed);
    const auto method = req.method();
    if (method != beast_http::verb::get && method != beast_http::verb::head)
      respond_error(405, "method not allowed\n", "Allow: GET, HEAD\r\n");
    else
      respond_error(413, "this resource takes no request body\n");
    return false;
  }
  // A chunked body may grow to the body limit: hold that much.
  const std::size_t limit = conn_.ctx().settings.http.max_request_body;
  const auto length = parser_->content_length();
  const std::size_t size = length ? static_cast<std::size_t>(std::min<std::uint64_t>(*length, limit)) : limit;
  if (!body_charge_.grow_to(size, conn_.ctx())) {
    counters.bodies_refused.fetch_add(1, std::memory_order_relaxed);
    respond_error(503, "server busy, try again later\n", "Retry-After: 5\r\n");
    return false;
  }
  return true;
}

bool http_session::apply_forwarded_for() {
  if (!via_) via_ = conn_.remote().address();
  std::vector<std::string_view> values;
  constexpr std::size_t max_lines = 16;
  const auto lines = request_.equal_range("X-Forwarded-For");
  for (auto it = lines.first; it != lines.second; ++it) {
    if (values.size() == max_lines) return true;  // ignored as malformed
    values.push_back(it->value());
  }
  const auto client = http::forwarded_client(*via_, values, *conn_.ctx().trusted_proxies);
  if (!client || client == forwarded_client_) return true;
  forwarded_client_ = client;
  conn_.set_client_address(*client);
  if (auto* limit = conn_.ctx().late_rate_limit; limit && !limit->allow(*client, conn_.loop().now())) {
    respond_error(429, "too many requests from this address\n", "Retry-After: 60\r\n");
    return false;
  }
  return true;
}

void http_session::dispatch_request() {
  const auto& req = request_;
  keep_alive_ = req.keep_alive();
  if (conn_.ctx().trusted_proxies && !apply_forwarded_for()) return;
  if (ws::header_has_token(req[beast_http::field::upgrade], "websocket", ws::token_case::insensitive)) {
    if (role_ == listener_role::redirect) return respond_error(400, "no WebSocket on this port: use https\n");
    return accept_upgrade();
  }
  // RFC 8555 §8.3: HTTP-01 answers come before any redirect or file.
  if (conn_.ctx().acme_tokens) {
    if (auto token = http::acme_challenge_token(req.target())) {
      if (auto key_authorization = conn_.ctx().acme_tokens->find(*token)) {
        http::file_response r;
        r.status = 200;
        r.headers = "Content-Type: application/octet-stream\r\n";
        r.content_length = key_authorization->size();
        r.memory = std::make_shared<const std::string>(std::move(*key_authorization));
        r.send_body = req.method() != beast_http::verb::head;
        return send_response(std::move(r));
      }
    }
  }
  if (role_ == listener_role::redirect) return serve_redirect();
  serve_file();
}

void http_session::accept_upgrade() {
  const auto& req = request_;
  if (req.method() != beast_http::verb::get) return respond_error(405, "WebSocket upgrade needs GET\n");
  if (!req.body().empty()) return respond_error(400, "WebSocket upgrade with a body\n");
  if (req.version() != 11) return respond_error(400, "WebSocket upgrade needs HTTP/1.1\n");
  if (!ws::header_has_token(req[beast_http::field::connection], "upgrade", ws::token_case::insensitive))
    return respond_error(400, "missing Connection: Upgrade\n");
  if (req[beast_http::field::sec_websocket_version] != "13")
    return respond_error(426, "unsupported WebSocket version\n", "Sec-WebSocket-Version: 13\r\n");
  const auto key = req[beast_http::field::sec_websocket_key];
  if (!ws::is_valid_client_key(key)) return respond_error(400, "bad Sec-WebSocket-Key\n");
  if (!ws::header_has_token(req[beast_http::field::sec_websocket_protocol], ws::mles_subprotocol,
                            ws::token_case::sensitive))
    return respond_error(400, "Sec-WebSocket-Protocol must offer mles-websocket\n");

  beast_http::response<beast_http::empty_body> res{beast_http::status::switching_protocols, 11};
  res.set(beast_http::field::server, "mles/" MLES_VERSION);
  res.set(beast_http::field::upgrade, "websocket");
  res.set(beast_http::field::connection, "Upgrade");
  res.set(beast_http::field::sec_websocket_accept, ws::accept_key(key));
  res.set(beast_http::field::sec_websocket_protocol, ws::mles_subprotocol);
  // Peer mode: another server of this project links to us and says so; we answer with our
  // id, and from the join on, messages on this session carry the origin envelope. A server
  // that does not know the header ignores it, and the link falls back to plain messages.
  std::string peer_id;
  const auto& settings = conn_.ctx().settings;
  if (settings.peer_mode) {
    if (auto id = parse_peer_header(req[peer_header_name])) {
      if (*id == settings.server_id) return respond_error(400, "a link from this server to itself\n");
      peer_id = std::move(*id);
      res.set(peer_header_name, peer_header_value(settings.server_id));
    }
  }
  std::ostringstream os;
  os << res.base();
  conn_.push(text_frame(os.str()));

  // Bytes after the request are the client's first frames.
  std::string rest = std::move(buffer_);
  done_ = true;
  auto next = std::make_unique<ws_session>(conn_, std::move(peer_id));
  ws_session& session = *next;
  conn_.replace_handler(std::move(next));  // this phase stays alive until the read returns
  session.begin({reinterpret_cast<std::uint8_t*>(rest.data()), rest.size()});
}

void http_session::serve_file() {
  const auto& req = request_;
  if (conn_.ctx().proxies) {
    if (auto m = conn_.ctx().proxies->match(req.target())) return serve_proxy(std::move(*m));
  }
  const auto method = req.method();
  http::file_request fr;
  fr.head = method == beast_http::verb::head;
  fr.get_or_head = method == beast_http::verb::get || fr.head;
  fr.target = req.target();
  fr.host = req[beast_http::field::host];
  fr.accept_encoding = req[beast_http::field::accept_encoding];
  fr.if_none_match = req[beast_http::field::if_none_match];
  fr.if_modified_since = req[beast_http::field::if_modified_since];
  fr.range = req[beast_http::field::range];
  fr.if_range = req[beast_http::field::if_range];
  if (!conn_.ctx().web) {
    http::file_response r;
    r.headers = "Content-Type: text/plain; charset=utf-8\r\n";
    r.memory = std::make_shared<const std::string>("not found\n");
    r.content_length = r.memory->size();
    r.send_body = !fr.head;
    return send_response(std::move(r));
  }
  http::file_response r = conn_.ctx().web->respond(fr);
  if (r.compress) {
    // Compression runs on the worker thread; the answer comes back to this loop.
    busy_ = true;
    pending_ = std::move(r);
    deadline_ = conn_.loop().now() + 3 * conn_.ctx().settings.handshake_timeout;
    std::weak_ptr<connection> weak = conn_.shared_from_this();
    event_loop* loop = &conn_.loop();
    const bool queued = conn_.ctx().web->compress_async(
        *pending_.compress, [weak, loop](std::shared_ptr<const std::string> body) {
          boost::asio::post(loop->io(), [weak, body = std::move(body)]() mutable {
            if (auto* self = current(weak)) self->on_compressed(std::move(body));
          });
        });
    if (!queued) on_compressed(nullptr);
    return;
  }
  send_response(std::move(r));
}

void http_session::on_compressed(std::shared_ptr<const std::string> body) {
  if (!active() || !busy_) return;
  if (!body) {
    // Worker busy, file changed meanwhile, or compression failed: plan again, uncompressed.
    busy_ = false;
    request_.set(beast_http::field::accept_encoding, "identity");
    return serve_file();
  }
  http::file_response r = std::move(pending_);
  r.compress.reset();
  r.content_length = body->size();
  r.memory = std::move(body);
  busy_ = false;
  send_response(std::move(r));
}

void http_session::send_response(http::file_response r) {
  if (!r.file.empty() && r.send_body && r.content_length > 0) {
    pending_ = std::move(r);
    if (!open_file_body()) return;  // waiting for a --filelimit slot, or failed
    r = std::move(pending_);
  }
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                     std::string(beast_http::obsolete_reason(static_cast<beast_http::status>(r.status))) +
                     "\r\nServer: mles/" MLES_VERSION "\r\nDate: " + http_date_now() + "\r\n";
  if (r.status != 304) head += "Content-Length: " + std::to_string(r.content_length) + "\r\n";
  head += keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  head += r.headers;
  head += "\r\n";
  spdlog::debug("{}: HTTP {} {}", conn_.describe(), r.status, std::string_view(request_.target()));
  conn_.ctx().counters.count_http_status(r.status);
  conn_.push(text_frame(head));
  if (!r.send_body || r.content_length == 0) return response_finished();
  if (r.memory) {
    conn_.push(text_frame(*r.memory));
    return response_finished();
  }
  // File body: streamed one chunk per write burst (see on_all_written). Plain connections
  // send it with sendfile() once the head is out (no copy through user space).
  busy_ = true;
  offset_ = r.offset;
  remaining_ = r.content_length;
  if (conn_.io().is_tls() || remaining_ <= conn_.ctx().settings.http.small_body) stream_next_chunk();
}

// Takes a --filelimit slot and opens pending_.file. False while waiting for a slot
// (on_file_slot resumes) or when the file cannot be opened (answered with 404).
bool http_session::open_file_body() {
  if (!has_slot_) {
    std::weak_ptr<connection> weak = conn_.shared_from_this();
    event_loop* loop = &conn_.loop();
    const bool got = conn_.ctx().web->try_open_slot([weak, loop] {
      boost::asio::post(loop->io(), [weak] {
        if (auto* self = current(weak)) self->on_file_slot();
      });
    });
    if (!got) {
      busy_ = true;
      waiting_for_slot_ = true;
      deadline_ = conn_.loop().now() + 3 * conn_.ctx().settings.handshake_timeout;
      return false;
    }
    has_slot_ = true;
  }
  waiting_for_slot_ = false;
  fd_ = ::open(pending_.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ >= 0) conn_.notify_drained(true);
  if (fd_ < 0) {
    // Out of descriptors or memory: 503 with Retry-After (a 404 would be cached as gone).
    const bool shortage = http::is_resource_shortage(errno);
    end_body();
    busy_ = false;
    http::file_response gone;
    gone.headers = "Content-Type: text/plain; charset=utf-8\r\n";
    if (shortage) gone.status = 503;
    if (shortage) gone.headers += "Retry-After: 5\r\n";
    gone.memory = std::make_shared<const std::string>(shortage ? "try again later\n" : "not found\n");
    gone.content_length = gone.memory->size();
    send_response(std::move(gone));
    return false;
  }
  return true;
}

void http_session::on_file_slot() {
  if (!active() || !waiting_for_slot_) return;
  send_response(std::move(pending_));
}

void http_session::stream_next_chunk() {
  if (!streaming()) return;
  if (!conn_.io().is_tls() && remaining_ > conn_.ctx().settings.http.small_body) {
    // Only called with the send queue empty: the head went out first.
    while (remaining_ > 0) {
      off_t offset = static_cast<off_t>(offset_);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, 4 * conn_.ctx().settings.http.file_chunk));
      const ssize_t n = ::sendfile(conn_.io().fd(), fd_, &offset, want);
      if (n > 0) {
        offset_ += static_cast<std::uint64_t>(n);
        remaining_ -= static_cast<std::uint64_t>(n);
        deadline_ = conn_.loop().now() + 3 * conn_.ctx().settings.handshake_timeout;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return conn_.wait_writable();
      return conn_.finish(errc::file_read_error, n == 0 ? "file shrank while streaming" : "sendfile failed");
    }
    end_body();
    return response_finished();
  }
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, conn_.ctx().settings.http.file_chunk));
  auto chunk = hub::shared_frame::allocate(n);
  auto out = chunk.writable();
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd_, out.data() + got, n - got, static_cast<off_t>(offset_ + got));
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      // The file shrank or became unreadable mid-response: the length is already promised,
      // so the connection must end.
      return conn_.finish(errc::file_read_error);
    }
  }
  offset_ += n;
  remaining_ -= n;
  deadline_ = conn_.loop().now() + 3 * conn_.ctx().settings.handshake_timeout;
  conn_.push(std::move(chunk));
  if (remaining_ == 0) {
    end_body();
    response_finished();
  }
}

void http_session::end_body() noexcept {
  if (fd_ >= 0) {
    conn_.notify_drained(false);
    ::close(fd_);
    fd_ = -1;
  }
  if (has_slot_) {
    has_slot_ = false;
    if (conn_.ctx().web) conn_.ctx().web->close_slot();
  }
}

void http_session::response_finished() {
  busy_ = false;
  if (!keep_alive_) {
    done_ = true;
    conn_.close_after({}, errc::http_closed, {}, conn_.loop().now() + conn_.ctx().settings.close_timeout);
    return;
  }
  deadline_ = conn_.loop().now() + conn_.ctx().settings.handshake_timeout;  // keep-alive idle timeout
  parse_requests();
}

// --proxy: the request goes to the upstream; its answer comes back to this loop.
void http_session::serve_proxy(http::proxy_match match) {
  auto& req = request_;
  http::proxy_request out;
  out.method = req.method();
  out.target = std::move(match.forward_target);
  for (const auto& field : req) out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.headers.emplace_back("X-Forwarded-For", conn_.remote().address().to_string());
  out.headers.emplace_back("X-Forwarded-Proto", conn_.io().is_tls() ? "https" : "http");
  out.body = std::move(req.body());
  busy_ = true;
  const http::proxy_limits& limits = conn_.ctx().settings.http.proxy;
  deadline_ = conn_.loop().now() + limits.connect_timeout + limits.response_timeout + conn_.ctx().settings.handshake_timeout;
  std::weak_ptr<connection> weak = conn_.shared_from_this();
  http::forward(conn_.loop().io().get_executor(), *match.target, std::move(out), limits,
                [weak](http::proxy_response res) {
                  auto* self = current(weak);
                  if (!self) return;
                  std::string fields;
                  for (const auto& [name, value] : res.headers) {
                    // Ours are sent by send_response.
                    if (beast_http::string_to_field(name) == beast_http::field::server ||
                        beast_http::string_to_field(name) == beast_http::field::date)
                      continue;
                    fields += name + ": " + value + "\r\n";
                  }
                  self->on_proxied(std::move(fields), res.status, std::move(res.body));
                });
}

void http_session::on_proxied(std::string head_fields, unsigned status, std::string body) {
  if (!active() || !busy_) return;
  busy_ = false;
  http::file_response r;
  r.status = status;
  r.headers = std::move(head_fields);
  r.send_body = request_.method() != beast_http::verb::head && status != 204 && status != 304;
  r.content_length = body.size();
  r.memory = std::make_shared<const std::string>(std::move(body));
  send_response(std::move(r));
}

void http_session::serve_redirect() {
  const auto& req = request_;
  http::file_response r;
  r.headers = "Content-Type: text/plain; charset=utf-8\r\n";
  r.send_body = req.method() != beast_http::verb::head;
  std::optional<std::string> target;
  if ((req.method() == beast_http::verb::get || req.method() == beast_http::verb::head) && conn_.ctx().web) {
    target = http::https_redirect_target(conn_.ctx().web->domains(), req[beast_http::field::host], req.target(),
                                         conn_.ctx().https_port);
  }
  if (target) {
    r.status = 301;
    r.headers += "Location: " + *target + "\r\n";
    r.memory = std::make_shared<const std::string>("moved to " + *target + "\n");
  } else if (req.method() == beast_http::verb::get || req.method() == beast_http::verb::head) {
    r.status = 404;
    r.memory = std::make_shared<const std::string>("not found\n");
  } else {
    r.status = 405;
    r.headers += "Allow: GET, HEAD\r\n";
    r.memory = std::make_shared<const std::string>("method not allowed\n");
  }
  r.content_length = r.memory->size();
  send_response(std::move(r));
}

// An error that ends the connection (malformed or refused request).
void http_session::respond_error(unsigned status, std::string_view body, std::string_view extra_headers) {
  end_body();
  const auto reason = beast_http::obsolete_reason(static_cast<beast_http::status>(status));
  std::string res = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nServer: mles/" MLES_VERSION "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" +
                    std::string(body);
  if (problem_lines().allow(spdlog::level::info)) {
    const std::string remote = conn_.describe(), code = std::to_string(status);
    log_fields f{{"remote", remote}, {"reason", "http_refused"}, {"status", code}};
    spdlog::info("{}: HTTP {} {}", remote, status, body.substr(0, body.find('\n')));
  }
  conn_.ctx().counters.count_http_status(status);
  done_ = true;
  conn_.close_after(text_frame(res), errc::http_refused, "HTTP " + std::to_string(status),
                    conn_.loop().now() + conn_.ctx().settings.close_timeout);
}

}  // namespace mles::net
