// Client side of the WebSocket opening handshake (RFC 6455 §4.1): key, request head, and the
// response check. Pure: no I/O; Beast's HTTP parser reads the head, which this code gathers.
#include "ws/client_handshake.hpp"

#include "ws/handshake.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace mles::ws {

namespace beast_http = boost::beast::http;

namespace {

// RFC 9110 §5.6.2: tchar.
bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool has_line_break_or_nul(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

void require_field(std::string_view value, const char* what) {
  if (has_line_break_or_nul(value)) throw std::invalid_argument(std::string(what) + " holds CR, LF or NUL");
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

}  // namespace

std::string make_client_key() {
  std::array<unsigned char, 16> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed: no Sec-WebSocket-Key");
  }
  std::array<unsigned char, 25> encoded{};  // 24 characters + the NUL EVP_EncodeBlock writes
  const int n = EVP_EncodeBlock(encoded.data(), nonce.data(), static_cast<int>(nonce.size()));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(n));
}

std::string make_upgrade_request(std::string_view host_header, std::string_view target, std::string_view key,
                                 std::span<const std::pair<std::string, std::string>> extra_headers) {
  require_field(host_header, "Host");
  require_field(target, "target");
  require_field(key, "Sec-WebSocket-Key");
  // RFC 9112 §3.2.1: origin-form, the only form a WebSocket request uses (RFC 6455 §4.1).
  if (target.empty() || target.front() != '/' || target.find(' ') != std::string_view::npos) {
    throw std::invalid_argument("target must be an origin-form path without spaces");
  }
  std::size_t size = 160 + host_header.size() + target.size() + key.size();
  for (const auto& [name, value] : extra_headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
      throw std::invalid_argument("header name is not a token: " + name);
    }
    require_field(value, "header value");
    size += name.size() + value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  const auto line = [&out](std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
  };
  out.append("GET ").append(target).append(" HTTP/1.1\r\n");
  line("Host", host_header);
  line("Upgrade", "websocket");
  line("Connection", "Upgrade");
  line("Sec-WebSocket-Key", key);
  line("Sec-WebSocket-Version", "13");
  line("Sec-WebSocket-Protocol", mles_subprotocol);
  for (const auto& [name, value] : extra_headers) line(name, value);
  out.append("\r\n");
  return out;
}

struct upgrade_response_reader::impl {
  std::string key;
  std::string head;  // the response head gathered so far (at most max_upgrade_response_head)
  beast_http::response_parser<beast_http::empty_body> parser;
  upgrade_state state = upgrade_state::need_more;
  std::string error;
  bool head_read = false;

  explicit impl(std::string k) : key(std::move(k)) {
    // The head limit is enforced on head below; Beast's own limit only needs to be above it.
    parser.header_limit(static_cast<std::uint32_t>(2 * max_upgrade_response_head));
    parser.eager(false);  // stop after the head: a body (non-101) is never read
  }

  result refuse(std::string why) {
    state = upgrade_state::refused;
    error = std::move(why);
    return {state, 0, error};
  }

  // RFC 6455 §4.1, the client's checks of the server's handshake, in the RFC's order.
  result check_fields(std::size_t consumed) {
    const auto& response = parser.get();
    const unsigned code = response.result_int();
    if (code != 101) return refuse("peer answered HTTP " + std::to_string(code));
    if (response.count(beast_http::field::upgrade) != 1 ||
        !iequals(response[beast_http::field::upgrade], "websocket")) {
      return refuse("no Upgrade: websocket");
    }
    bool connection_upgrade = false;
    for (auto it = response.find(beast_http::field::connection);
         it != response.end() && it->name() == beast_http::field::connection; ++it) {
      connection_upgrade = connection_upgrade || header_has_token(it->value(), "upgrade", token_case::insensitive);
    }
    if (!connection_upgrade) return refuse("no Connection: upgrade");
    const auto accept_count = response.count(beast_http::field::sec_websocket_accept);
    if (accept_count == 0) return refuse("no Sec-WebSocket-Accept");
    if (accept_count != 1 || response[beast_http::field::sec_websocket_accept] != accept_key(key)) {
      return refuse("wrong Sec-WebSocket-Accept");
    }
    if (response.count(beast_http::field::sec_websocket_extensions) != 0) {
      return refuse("peer chose a WebSocket extension we did not offer");
    }
    if (response.count(beast_http::field::sec_websocket_protocol) != 1 ||
        response[beast_http::field::sec_websocket_protocol] != mles_subprotocol) {
      return refuse("no mles-websocket subprotocol");
    }
    state = upgrade_state::accepted;
    return {state, consumed, {}};
  }

  result feed(std::span<const std::uint8_t> bytes) {
    if (state != upgrade_state::need_more) return {state, 0, error};
    const std::size_t before = head.size();
    // Never copy more than a head can hold: what follows the head is WebSocket frames.
    const std::size_t take = std::min(bytes.size(), max_upgrade_response_head - before);
    head.append(reinterpret_cast<const char*>(bytes.data()), take);
    // The head ends at the first CRLFCRLF (RFC 9112 §2.1); it may straddle the old bytes.
    const std::size_t end = head.find("\r\n\r\n", before < 3 ? 0 : before - 3);
    if (end == std::string::npos) {
      if (head.size() >= max_upgrade_response_head) return refuse("response head over 16 KiB");
      return {state, bytes.size(), {}};
    }
    const std::size_t head_size = end + 4;
    head.resize(head_size);
    boost::beast::error_code ec;
    const std::size_t used = parser.put(boost::asio::const_buffer(head.data(), head.size()), ec);
    if (ec || used != head_size || !parser.is_header_done()) {
      return refuse("malformed HTTP response: " + (ec ? ec.message() : std::string("incomplete head")));
    }
    head_read = true;
    return check_fields(head_size - before);
  }
};

upgrade_response_reader::upgrade_response_reader(std::string key) : impl_(std::make_unique<impl>(std::move(key))) {}
upgrade_response_reader::~upgrade_response_reader() = default;
upgrade_response_reader::upgrade_response_reader(upgrade_response_reader&&) noexcept = default;
upgrade_response_reader& upgrade_response_reader::operator=(upgrade_response_reader&&) noexcept = default;

upgrade_response_reader::result upgrade_response_reader::feed(std::span<const std::uint8_t> bytes) {
  return impl_->feed(bytes);
}

std::string upgrade_response_reader::header(std::string_view name) const {
  if (!impl_->head_read) return {};
  const auto& response = impl_->parser.get();
  const auto it = response.find(name);
  return it == response.end() ? std::string() : std::string(it->value());
}

unsigned upgrade_response_reader::status() const noexcept {
  return impl_->head_read ? impl_->parser.get().result_int() : 0;
}

}  // namespace mles::ws
