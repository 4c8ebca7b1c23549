// session, HTTP phase: a request loop (keep-alive, pipelining answered in order) serving
// static files, redirects on the --redirect port, and the WebSocket upgrade that ends it.
// data path: transport.read ─► Beast request parser ─► file_server.respond ─► send queue
#include "net/session.hpp"

#include "net/http_state.hpp"

#include "http/conditional.hpp"
#include "http/proxy_client.hpp"
#include "http/redirect.hpp"
#include "ws/handshake.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sstream>
#include <unistd.h>

namespace mles::net {

namespace beast_http = boost::beast::http;

namespace {

constexpr std::size_t max_request_bytes = 16 * 1024;   // request line + headers
constexpr std::size_t max_request_body = 1024 * 1024;   // 413 above (bodies are read, then refused)
constexpr std::size_t max_pipelined_bytes = 64 * 1024;  // buffered while a response is busy
constexpr std::size_t file_chunk = 256 * 1024;           // streamed body chunk
// Plain bodies up to this size are read and sent together with the head (one send);
// larger ones go with sendfile() after it.
constexpr std::uint64_t small_body = 64 * 1024;

hub::shared_frame text_frame(std::string_view s) {
  return hub::shared_frame::copy_of({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

std::string http_date_now() {
  return http::format_http_date(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
}

}  // namespace

void session::handle_http(std::span<const std::uint8_t> bytes) {
  if (!http_) return;
  http_->buffer.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (http_->busy) {
    if (http_->buffer.size() > max_pipelined_bytes) finish("too many pipelined requests");
    return;
  }
  parse_requests();
}

void session::parse_requests() {
  while (phase_ == phase::http && http_ && !http_->busy && !http_->buffer.empty()) {
    if (!http_->parser) {
      http_->parser.emplace();
      http_->parser->header_limit(static_cast<std::uint32_t>(max_request_bytes));
      http_->parser->body_limit(max_request_body);
      http_->head_consumed = 0;
    }
    const bool in_head = !http_->parser->is_header_done();
    if (in_head) {
      // The request head must end within max_request_bytes, however it arrives (one read or
      // many TLS records) and however much of it the parser has already taken.
      const auto end = http_->buffer.find("\r\n\r\n");
      const std::size_t head = http_->head_consumed + (end == std::string::npos ? http_->buffer.size() : end + 4);
      if (head > max_request_bytes) return respond_http(431, "request header fields too large\n");
    }
    boost::beast::error_code ec;
    const std::size_t used =
        http_->parser->put(boost::asio::buffer(http_->buffer.data(), http_->buffer.size()), ec);
    http_->buffer.erase(0, used);
    if (in_head) http_->head_consumed += used;
    if (ec == beast_http::error::need_more) return;
    if (ec == beast_http::error::header_limit) return respond_http(431, "request header fields too large\n");
    if (ec == beast_http::error::body_limit) return respond_http(413, "request body too large\n");
    if (ec) return respond_http(400, "malformed request: " + ec.message() + "\n");
    if (!http_->parser->is_done()) {
      if (used == 0) return;  // needs more bytes
      continue;               // Beast stops after the head: go on with the body
    }
    http_->request = http_->parser->release();
    http_->parser.reset();
    dispatch_request();
  }
}

void session::dispatch_request() {
  const auto& req = http_->request;
  http_->keep_alive = req.keep_alive();
  if (ws::header_has_token(req[beast_http::field::upgrade], "websocket", ws::token_case::insensitive)) {
    if (role_ == listener_role::redirect) return respond_http(400, "no WebSocket on this port: use https\n");
    return accept_upgrade();
  }
  // RFC 8555 §8.3: HTTP-01 answers come before any redirect or file.
  if (ctx_.acme_tokens) {
    if (auto token = http::acme_challenge_token(req.target())) {
      if (auto key_authorization = ctx_.acme_tokens->find(*token)) {
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

void session::accept_upgrade() {
  const auto& req = http_->request;
  if (req.method() != beast_http::verb::get) return respond_http(405, "WebSocket upgrade needs GET\n");
  if (!req.body().empty()) return respond_http(400, "WebSocket upgrade with a body\n");
  if (req.version() != 11) return respond_http(400, "WebSocket upgrade needs HTTP/1.1\n");
  if (!ws::header_has_token(req[beast_http::field::connection], "upgrade", ws::token_case::insensitive))
    return respond_http(400, "missing Connection: Upgrade\n");
  if (req[beast_http::field::sec_websocket_version] != "13")
    return respond_http(426, "unsupported WebSocket version\n", "Sec-WebSocket-Version: 13\r\n");
  const auto key = req[beast_http::field::sec_websocket_key];
  if (!ws::is_valid_client_key(key)) return respond_http(400, "bad Sec-WebSocket-Key\n");
  if (!ws::header_has_token(req[beast_http::field::sec_websocket_protocol], ws::mles_subprotocol,
                            ws::token_case::sensitive))
    return respond_http(400, "Sec-WebSocket-Protocol must offer mles-websocket\n");

  beast_http::response<beast_http::empty_body> res{beast_http::status::switching_protocols, 11};
  res.set(beast_http::field::server, "mles/" MLES_VERSION);
  res.set(beast_http::field::upgrade, "websocket");
  res.set(beast_http::field::connection, "Upgrade");
  res.set(beast_http::field::sec_websocket_accept, ws::accept_key(key));
  res.set(beast_http::field::sec_websocket_protocol, ws::mles_subprotocol);
  std::ostringstream os;
  os << res.base();
  push_local(text_frame(os.str()));

  // Bytes after the request are the client's first frames.
  std::string rest = std::move(http_->buffer);
  http_.reset();
  phase_ = phase::await_join;
  deadline_ = loop_.now() + ctx_.settings.join_timeout;
  if (!rest.empty()) feed_frames({reinterpret_cast<std::uint8_t*>(rest.data()), rest.size()});
}

void session::serve_file() {
  const auto& req = http_->request;
  if (ctx_.proxies) {
    if (auto m = ctx_.proxies->match(req.target())) return serve_proxy(std::move(*m));
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
  if (!ctx_.web) {
    http::file_response r;
    r.headers = "Content-Type: text/plain; charset=utf-8\r\n";
    r.memory = std::make_shared<const std::string>("not found\n");
    r.content_length = r.memory->size();
    r.send_body = !fr.head;
    return send_response(std::move(r));
  }
  http::file_response r = ctx_.web->respond(fr);
  if (r.compress) {
    // Compression runs on the worker thread; the answer comes back to this loop.
    http_->busy = true;
    http_->pending = std::move(r);
    deadline_ = loop_.now() + 3 * ctx_.settings.handshake_timeout;
    std::weak_ptr<session> weak = shared_from_this();
    event_loop* loop = &loop_;
    const bool queued = ctx_.web->compress_async(
        *http_->pending.compress, [weak, loop](std::shared_ptr<const std::string> body) {
          boost::asio::post(loop->io(), [weak, body = std::move(body)]() mutable {
            if (auto self = weak.lock()) self->on_compressed(std::move(body));
          });
        });
    if (!queued) on_compressed(nullptr);
    return;
  }
  send_response(std::move(r));
}

void session::on_compressed(std::shared_ptr<const std::string> body) {
  if (phase_ != phase::http || !http_ || !http_->busy) return;
  if (!body) {
    // Worker busy, file changed meanwhile, or compression failed: plan again, uncompressed.
    http_->busy = false;
    http_->request.set(beast_http::field::accept_encoding, "identity");
    return serve_file();
  }
  http::file_response r = std::move(http_->pending);
  r.compress.reset();
  r.content_length = body->size();
  r.memory = std::move(body);
  http_->busy = false;
  send_response(std::move(r));
}

void session::send_response(http::file_response r) {
  if (!r.file.empty() && r.send_body && r.content_length > 0) {
    http_->pending = std::move(r);
    if (!open_file_body()) return;  // waiting for a --filelimit slot, or failed
    r = std::move(http_->pending);
  }
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                     std::string(beast_http::obsolete_reason(static_cast<beast_http::status>(r.status))) +
                     "\r\nServer: mles/" MLES_VERSION "\r\nDate: " + http_date_now() + "\r\n";
  if (r.status != 304) head += "Content-Length: " + std::to_string(r.content_length) + "\r\n";
  head += http_->keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  head += r.headers;
  head += "\r\n";
  spdlog::debug("{}: HTTP {} {}", describe(), r.status, std::string_view(http_->request.target()));
  push_local(text_frame(head));
  if (!r.send_body || r.content_length == 0) return response_finished();
  if (r.memory) {
    push_local(text_frame(*r.memory));
    return response_finished();
  }
  // File body: streamed one chunk per write burst (see on_all_written). Plain connections
  // send it with sendfile() once the head is out (no copy through user space).
  http_->busy = true;
  http_->offset = r.offset;
  http_->remaining = r.content_length;
  if (transport_.is_tls() || http_->remaining <= small_body) stream_next_chunk();
}

// Takes a --filelimit slot and opens http_->pending.file. False while waiting for a slot
// (on_file_slot resumes) or when the file cannot be opened (answered with 404).
bool session::open_file_body() {
  if (!http_->has_slot) {
    std::weak_ptr<session> weak = shared_from_this();
    event_loop* loop = &loop_;
    const bool got = ctx_.web->try_open_slot([weak, loop] {
      boost::asio::post(loop->io(), [weak] {
        if (auto self = weak.lock()) self->on_file_slot();
      });
    });
    if (!got) {
      http_->busy = true;
      http_->waiting_for_slot = true;
      deadline_ = loop_.now() + 3 * ctx_.settings.handshake_timeout;
      return false;
    }
    http_->has_slot = true;
  }
  http_->waiting_for_slot = false;
  http_->fd = ::open(http_->pending.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (http_->fd < 0) {
    end_http_body();
    http_->busy = false;
    http::file_response gone;
    gone.headers = "Content-Type: text/plain; charset=utf-8\r\n";
    gone.memory = std::make_shared<const std::string>("not found\n");
    gone.content_length = gone.memory->size();
    send_response(std::move(gone));
    return false;
  }
  return true;
}

void session::on_file_slot() {
  if (phase_ != phase::http || !http_ || !http_->waiting_for_slot) return;
  send_response(std::move(http_->pending));
}

bool session::http_streaming() const noexcept { return http_ && http_->fd >= 0; }

void session::stream_next_chunk() {
  if (!http_streaming()) return;
  if (!transport_.is_tls() && http_->remaining > small_body) {
    // Only called with the send queue empty: the head went out first.
    while (http_->remaining > 0) {
      off_t offset = static_cast<off_t>(http_->offset);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(http_->remaining, 4 * file_chunk));
      const ssize_t n = ::sendfile(transport_.socket().native_handle(), http_->fd, &offset, want);
      if (n > 0) {
        http_->offset += static_cast<std::uint64_t>(n);
        http_->remaining -= static_cast<std::uint64_t>(n);
        deadline_ = loop_.now() + 3 * ctx_.settings.handshake_timeout;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_writable();
      return finish(n == 0 ? "file shrank while streaming" : "sendfile failed");
    }
    end_http_body();
    return response_finished();
  }
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(http_->remaining, file_chunk));
  auto chunk = hub::shared_frame::allocate(n);
  auto out = chunk.writable();
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(http_->fd, out.data() + got, n - got, static_cast<off_t>(http_->offset + got));
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      // The file shrank or became unreadable mid-response: the length is already promised,
      // so the connection must end.
      return finish("file read error while streaming");
    }
  }
  http_->offset += n;
  http_->remaining -= n;
  deadline_ = loop_.now() + 3 * ctx_.settings.handshake_timeout;
  push_local(std::move(chunk));
  if (http_->remaining == 0) {
    end_http_body();
    response_finished();
  }
}

void session::end_http_body() noexcept {
  if (!http_) return;
  if (http_->fd >= 0) {
    ::close(http_->fd);
    http_->fd = -1;
  }
  if (http_->has_slot) {
    http_->has_slot = false;
    if (ctx_.web) ctx_.web->close_slot();
  }
}

void session::response_finished() {
  http_->busy = false;
  if (!http_->keep_alive) {
    phase_ = phase::closing;
    close_after_http_ = true;
    close_sent_ = true;
    end_reason_ = "HTTP connection: close";
    deadline_ = loop_.now() + ctx_.settings.close_timeout;
    return;
  }
  deadline_ = loop_.now() + ctx_.settings.handshake_timeout;  // keep-alive idle timeout
  parse_requests();
}

// --proxy: the request goes to the upstream; its answer comes back to this loop.
void session::serve_proxy(http::proxy_match match) {
  auto& req = http_->request;
  http::proxy_request out;
  out.method = req.method();
  out.target = std::move(match.forward_target);
  for (const auto& field : req) out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.headers.emplace_back("X-Forwarded-For", peer_.address().to_string());
  out.headers.emplace_back("X-Forwarded-Proto", transport_.is_tls() ? "https" : "http");
  out.body = std::move(req.body());
  http_->busy = true;
  const http::proxy_limits limits;
  deadline_ = loop_.now() + limits.connect_timeout + limits.response_timeout + ctx_.settings.handshake_timeout;
  std::weak_ptr<session> weak = shared_from_this();
  http::forward(loop_.io().get_executor(), *match.target, std::move(out), limits,
                [weak](http::proxy_response res) {
                  auto self = weak.lock();
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

void session::on_proxied(std::string head_fields, unsigned status, std::string body) {
  if (phase_ != phase::http || !http_ || !http_->busy) return;
  http_->busy = false;
  http::file_response r;
  r.status = status;
  r.headers = std::move(head_fields);
  r.send_body = http_->request.method() != beast_http::verb::head && status != 204 && status != 304;
  r.content_length = body.size();
  r.memory = std::make_shared<const std::string>(std::move(body));
  send_response(std::move(r));
}

void session::serve_redirect() {
  const auto& req = http_->request;
  http::file_response r;
  r.headers = "Content-Type: text/plain; charset=utf-8\r\n";
  r.send_body = req.method() != beast_http::verb::head;
  std::optional<std::string> target;
  if ((req.method() == beast_http::verb::get || req.method() == beast_http::verb::head) && ctx_.web) {
    target = http::https_redirect_target(ctx_.web->domains(), req[beast_http::field::host], req.target(),
                                         ctx_.https_port);
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
void session::respond_http(unsigned status, std::string_view body, std::string_view extra_headers) {
  end_http_body();
  http_.reset();
  const auto reason = beast_http::obsolete_reason(static_cast<beast_http::status>(status));
  std::string res = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nServer: mles/" MLES_VERSION "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" +
                    std::string(body);
  spdlog::info("{}: HTTP {} {}", describe(), status, body.substr(0, body.find('\n')));
  phase_ = phase::closing;
  close_after_http_ = true;
  close_sent_ = true;
  end_reason_ = "HTTP " + std::to_string(status);
  deadline_ = loop_.now() + ctx_.settings.close_timeout;
  push_local(text_frame(res));
}

}  // namespace mles::net
