// Tests for the client side of the WebSocket opening handshake (RFC 6455 §4.1): the key, the
// request head, and the response reader fed literal responses whole and byte by byte.
#include "ws/client_handshake.hpp"

#include "ws/handshake.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <vector>

namespace mles::ws {
namespace {

constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";     // RFC 6455 §1.3
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";  // its accept value

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A 101 as a server of this project sends it, with one header replaced or dropped.
std::string response(std::string_view status_line = "HTTP/1.1 101 Switching Protocols",
                     std::string_view upgrade = "Upgrade: websocket\r\n",
                     std::string_view connection = "Connection: Upgrade\r\n",
                     std::string_view accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                     std::string_view protocol = "Sec-WebSocket-Protocol: mles-websocket\r\n",
                     std::string_view more = "") {
  std::string out(status_line);
  out.append("\r\n").append(upgrade).append(connection).append(accept).append(protocol).append(more).append("\r\n");
  return out;
}

struct outcome {
  upgrade_state state = upgrade_state::need_more;
  std::size_t consumed = 0;  // total over all feeds
  std::string error;
};

outcome feed_whole(upgrade_response_reader& reader, std::string_view input) {
  const auto r = reader.feed(as_bytes(input));
  return {r.state, r.consumed, r.error};
}

// One byte per feed until the reader decides; the rest is not fed.
outcome feed_bytewise(upgrade_response_reader& reader, std::string_view input) {
  outcome out;
  for (std::size_t i = 0; i < input.size(); ++i) {
    const auto r = reader.feed(as_bytes(input.substr(i, 1)));
    out.consumed += r.consumed;
    if (r.state != upgrade_state::need_more) {
      out.state = r.state;
      out.error = r.error;
      return out;
    }
    EXPECT_EQ(r.consumed, 1u);
  }
  return out;
}

// Feeds input whole and byte by byte to fresh readers; both must agree. Returns the error.
std::string refusal(std::string_view input, std::string_view key = rfc_key) {
  upgrade_response_reader whole{std::string(key)};
  const auto a = feed_whole(whole, input);
  upgrade_response_reader bytewise{std::string(key)};
  const auto b = feed_bytewise(bytewise, input);
  EXPECT_EQ(a.state, upgrade_state::refused) << input;
  EXPECT_EQ(b.state, upgrade_state::refused) << input;
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.error.find('\n'), std::string::npos);  // one line
  return a.error;
}

// ---- key and request ----------------------------------------------------------------------

TEST(client_handshake, client_key_is_base64_of_16_random_bytes) {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    const std::string key = make_client_key();
    EXPECT_EQ(key.size(), 24u);
    EXPECT_TRUE(is_valid_client_key(key)) << key;
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), 100u);
}

TEST(client_handshake, upgrade_request_has_every_required_field_in_order) {
  const std::vector<std::pair<std::string, std::string>> extra{{"Mles-Peer", "alpha.example"},
                                                               {"User-Agent", "mles-cpp"}};
  EXPECT_EQ(make_upgrade_request("beta.example:8443", "/", rfc_key, extra),
            "GET / HTTP/1.1\r\n"
            "Host: beta.example:8443\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: mles-websocket\r\n"
            "Mles-Peer: alpha.example\r\n"
            "User-Agent: mles-cpp\r\n"
            "\r\n");
}

TEST(client_handshake, upgrade_request_without_extra_headers) {
  const std::string request = make_upgrade_request("[::1]:443", "/chat?x=1", rfc_key, {});
  EXPECT_TRUE(request.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: [::1]:443\r\n"));
  EXPECT_TRUE(request.ends_with("Sec-WebSocket-Protocol: mles-websocket\r\n\r\n"));
}

TEST(client_handshake, upgrade_request_refuses_fields_that_break_the_head) {
  const std::vector<std::pair<std::string, std::string>> none;
  EXPECT_THROW(make_upgrade_request("a\r\nEvil: 1", "/", rfc_key, none), std::invalid_argument);
  EXPECT_THROW(make_upgrade_request("a", "/\n", rfc_key, none), std::invalid_argument);
  EXPECT_THROW(make_upgrade_request("a", "/ HTTP/1.0", rfc_key, none), std::invalid_argument);
  EXPECT_THROW(make_upgrade_request("a", "", rfc_key, none), std::invalid_argument);
  EXPECT_THROW(make_upgrade_request("a", "http://a/", rfc_key, none), std::invalid_argument);
  EXPECT_THROW(make_upgrade_request("a", "/", std::string_view("k\0y", 3), none), std::invalid_argument);
  for (const auto& bad : std::vector<std::pair<std::string, std::string>>{
           {"", "v"}, {"Bad Name", "v"}, {"Bad:Name", "v"}, {"Name", "v\r\nEvil: 1"}, {"Name", "v\n"}}) {
    const std::vector<std::pair<std::string, std::string>> extra{bad};
    EXPECT_THROW(make_upgrade_request("a", "/", rfc_key, extra), std::invalid_argument) << bad.first;
  }
}

// ---- accepted responses ---------------------------------------------------------------------

TEST(upgrade_response_reader, accepts_rfc_example_whole_and_byte_by_byte) {
  const std::string head = response();
  upgrade_response_reader whole{std::string(rfc_key)};
  const auto a = feed_whole(whole, head);
  EXPECT_EQ(a.state, upgrade_state::accepted) << a.error;
  EXPECT_EQ(a.consumed, head.size());
  EXPECT_TRUE(a.error.empty());
  EXPECT_EQ(whole.status(), 101u);

  upgrade_response_reader bytewise{std::string(rfc_key)};
  const auto b = feed_bytewise(bytewise, head);
  EXPECT_EQ(b.state, upgrade_state::accepted) << b.error;
  EXPECT_EQ(b.consumed, head.size());
}

TEST(upgrade_response_reader, leaves_the_first_frames_after_the_head) {
  const std::string head = response();
  const std::string frames = "\x81\x02hi\x82\x00";  // server text "hi", empty binary
  const std::string wire = head + frames;
  upgrade_response_reader whole{std::string(rfc_key)};
  const auto r = whole.feed(as_bytes(wire));
  ASSERT_EQ(r.state, upgrade_state::accepted);
  EXPECT_EQ(r.consumed, head.size());
  EXPECT_EQ(wire.substr(r.consumed), frames);

  // Head split at every point, the second part carrying the frames.
  for (std::size_t split = 1; split < head.size(); ++split) {
    upgrade_response_reader reader{std::string(rfc_key)};
    const auto first = reader.feed(as_bytes(std::string_view(wire).substr(0, split)));
    ASSERT_EQ(first.state, upgrade_state::need_more) << split;
    ASSERT_EQ(first.consumed, split);
    const auto second = reader.feed(as_bytes(std::string_view(wire).substr(split)));
    ASSERT_EQ(second.state, upgrade_state::accepted) << split;
    ASSERT_EQ(second.consumed, head.size() - split) << split;
  }
}

TEST(upgrade_response_reader, accepts_any_header_case_and_token_lists) {
  const std::string head = response("HTTP/1.1 101 Web Socket Protocol Handshake", "upgrade: WebSocket\r\n",
                                    "connection: keep-alive, UPGRADE\r\n",
                                    "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                                    "SEC-WEBSOCKET-PROTOCOL:mles-websocket  \r\n", "Date: today\r\n");
  upgrade_response_reader reader{std::string(rfc_key)};
  EXPECT_EQ(feed_whole(reader, head).state, upgrade_state::accepted);
  upgrade_response_reader bytewise{std::string(rfc_key)};
  EXPECT_EQ(feed_bytewise(bytewise, head).state, upgrade_state::accepted);
}

TEST(upgrade_response_reader, accepts_connection_upgrade_in_a_second_header_line) {
  const std::string head = response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n",
                                    "Connection: keep-alive\r\nConnection: upgrade\r\n");
  upgrade_response_reader reader{std::string(rfc_key)};
  EXPECT_EQ(feed_whole(reader, head).state, upgrade_state::accepted);
}

TEST(upgrade_response_reader, accepts_the_accept_key_of_a_fresh_key) {
  const std::string key = make_client_key();
  const std::string head = response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n",
                                    "Connection: Upgrade\r\n", "Sec-WebSocket-Accept: " + accept_key(key) + "\r\n");
  upgrade_response_reader reader{key};
  EXPECT_EQ(feed_whole(reader, head).state, upgrade_state::accepted);
}

TEST(upgrade_response_reader, accepts_a_head_of_exactly_16_kib) {
  std::string head = response();
  const std::string filler = "X-Pad: \r\n";
  const std::size_t pad = max_upgrade_response_head - head.size() - filler.size();
  head = response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n",
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                  "Sec-WebSocket-Protocol: mles-websocket\r\n", "X-Pad: " + std::string(pad, 'a') + "\r\n");
  ASSERT_EQ(head.size(), max_upgrade_response_head);
  upgrade_response_reader reader{std::string(rfc_key)};
  const auto r = reader.feed(as_bytes(head + "\x81\x00"));
  EXPECT_EQ(r.state, upgrade_state::accepted) << r.error;
  EXPECT_EQ(r.consumed, head.size());
  upgrade_response_reader bytewise{std::string(rfc_key)};
  EXPECT_EQ(feed_bytewise(bytewise, head).state, upgrade_state::accepted);
}

// ---- header values ------------------------------------------------------------------------

TEST(upgrade_response_reader, exposes_header_values_by_name_after_the_head) {
  const std::string head = response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n",
                                    "Connection: Upgrade\r\n",
                                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                                    "Sec-WebSocket-Protocol: mles-websocket\r\n",
                                    "Mles-Peer: alpha.example\r\nServer: mles-cpp/0.1\r\n");
  upgrade_response_reader reader{std::string(rfc_key)};
  EXPECT_EQ(reader.header("Mles-Peer"), "");  // head not read yet
  EXPECT_EQ(reader.status(), 0u);
  reader.feed(as_bytes(head.substr(0, 20)));
  EXPECT_EQ(reader.header("Upgrade"), "");
  ASSERT_EQ(reader.feed(as_bytes(head.substr(20))).state, upgrade_state::accepted);
  EXPECT_EQ(reader.header("Mles-Peer"), "alpha.example");
  EXPECT_EQ(reader.header("mles-peer"), "alpha.example");
  EXPECT_EQ(reader.header("server"), "mles-cpp/0.1");
  EXPECT_EQ(reader.header("Sec-WebSocket-Accept"), rfc_accept);
  EXPECT_EQ(reader.header("X-Absent"), "");
}

TEST(upgrade_response_reader, exposes_headers_of_a_refused_head) {
  upgrade_response_reader reader{std::string(rfc_key)};
  const auto r = feed_whole(reader, "HTTP/1.1 403 Forbidden\r\nMles-Peer: gamma\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.state, upgrade_state::refused);
  EXPECT_EQ(reader.status(), 403u);
  EXPECT_EQ(reader.header("Mles-Peer"), "gamma");
}

TEST(upgrade_response_reader, keeps_its_decision) {
  upgrade_response_reader reader{std::string(rfc_key)};
  ASSERT_EQ(feed_whole(reader, response()).state, upgrade_state::accepted);
  const auto again = reader.feed(as_bytes("\x81\x00"));
  EXPECT_EQ(again.state, upgrade_state::accepted);
  EXPECT_EQ(again.consumed, 0u);

  upgrade_response_reader refused{std::string(rfc_key)};
  ASSERT_EQ(feed_whole(refused, "HTTP/1.1 400 Bad Request\r\n\r\n").state, upgrade_state::refused);
  const auto later = refused.feed(as_bytes(response()));
  EXPECT_EQ(later.state, upgrade_state::refused);
  EXPECT_EQ(later.error, "peer answered HTTP 400");
  EXPECT_EQ(later.consumed, 0u);
}

TEST(upgrade_response_reader, can_be_moved) {
  upgrade_response_reader first{std::string(rfc_key)};
  first.feed(as_bytes(response().substr(0, 30)));
  upgrade_response_reader second = std::move(first);
  EXPECT_EQ(second.feed(as_bytes(response().substr(30))).state, upgrade_state::accepted);
}

// ---- refused responses (RFC 6455 §4.1, the client's checks) ------------------------------------

TEST(upgrade_response_reader, refuses_other_statuses) {
  EXPECT_EQ(refusal("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhello"), "peer answered HTTP 400");
  EXPECT_EQ(refusal("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "peer answered HTTP 200");
  EXPECT_EQ(refusal("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n"), "peer answered HTTP 302");
  EXPECT_EQ(refusal("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            "peer answered HTTP 426");
  EXPECT_EQ(refusal(response("HTTP/1.1 100 Continue")), "peer answered HTTP 100");
}

TEST(upgrade_response_reader, refuses_without_upgrade_websocket) {
  const auto s = "HTTP/1.1 101 Switching Protocols";
  EXPECT_EQ(refusal(response(s, "")), "no Upgrade: websocket");
  EXPECT_EQ(refusal(response(s, "Upgrade: h2c\r\n")), "no Upgrade: websocket");
  EXPECT_EQ(refusal(response(s, "Upgrade: websocket, h2c\r\n")), "no Upgrade: websocket");
  EXPECT_EQ(refusal(response(s, "Upgrade: websocket\r\nUpgrade: websocket\r\n")), "no Upgrade: websocket");
}

TEST(upgrade_response_reader, refuses_without_connection_upgrade) {
  const auto s = "HTTP/1.1 101 Switching Protocols";
  const auto u = "Upgrade: websocket\r\n";
  EXPECT_EQ(refusal(response(s, u, "")), "no Connection: upgrade");
  EXPECT_EQ(refusal(response(s, u, "Connection: keep-alive\r\n")), "no Connection: upgrade");
  EXPECT_EQ(refusal(response(s, u, "Connection: upgraded\r\n")), "no Connection: upgrade");
}

TEST(upgrade_response_reader, refuses_a_wrong_or_missing_accept) {
  const auto s = "HTTP/1.1 101 Switching Protocols";
  const auto u = "Upgrade: websocket\r\n";
  const auto c = "Connection: Upgrade\r\n";
  EXPECT_EQ(refusal(response(s, u, c, "")), "no Sec-WebSocket-Accept");
  EXPECT_EQ(refusal(response(s, u, c, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOO=\r\n")),
            "wrong Sec-WebSocket-Accept");
  EXPECT_EQ(refusal(response(s, u, c, "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n")),
            "wrong Sec-WebSocket-Accept");  // the key echoed back
  // the right answer to another key
  EXPECT_EQ(refusal(response(), "x3JJHMbDL1EzLkh9GBhXDw=="), "wrong Sec-WebSocket-Accept");
  EXPECT_EQ(refusal(response(s, u, c,
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")),
            "wrong Sec-WebSocket-Accept");
}

TEST(upgrade_response_reader, refuses_without_exactly_the_mles_subprotocol) {
  const auto s = "HTTP/1.1 101 Switching Protocols";
  const auto u = "Upgrade: websocket\r\n";
  const auto c = "Connection: Upgrade\r\n";
  const auto a = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
  for (const std::string_view p : {"", "Sec-WebSocket-Protocol: chat\r\n",
                                   "Sec-WebSocket-Protocol: Mles-Websocket\r\n",  // case-sensitive
                                   "Sec-WebSocket-Protocol: mles-websocket, chat\r\n",
                                   "Sec-WebSocket-Protocol: mles-websocket\r\nSec-WebSocket-Protocol: chat\r\n"}) {
    EXPECT_EQ(refusal(response(s, u, c, a, p)), "no mles-websocket subprotocol") << p;
  }
}

TEST(upgrade_response_reader, refuses_an_extension_it_did_not_offer) {
  const std::string head = response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n",
                                    "Connection: Upgrade\r\n",
                                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                                    "Sec-WebSocket-Protocol: mles-websocket\r\n",
                                    "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  EXPECT_EQ(refusal(head), "peer chose a WebSocket extension we did not offer");
}

TEST(upgrade_response_reader, refuses_a_head_over_16_kib) {
  // A complete head one byte too long.
  const std::string filler = "X-Pad: \r\n";
  const std::size_t pad = max_upgrade_response_head + 1 - response().size() - filler.size();
  const std::string head = response("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket\r\n",
                                    "Connection: Upgrade\r\n",
                                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                                    "Sec-WebSocket-Protocol: mles-websocket\r\n",
                                    "X-Pad: " + std::string(pad, 'a') + "\r\n");
  ASSERT_EQ(head.size(), max_upgrade_response_head + 1);
  EXPECT_EQ(refusal(head), "response head over 16 KiB");
  // A head that never ends.
  const std::string endless = "HTTP/1.1 101 Switching Protocols\r\nX-Pad: " + std::string(40000, 'b');
  EXPECT_EQ(refusal(endless), "response head over 16 KiB");
}

TEST(upgrade_response_reader, refuses_malformed_heads) {
  for (const std::string_view bad : {"garbage\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 101\r\nNo colon\r\n\r\n",
                                     "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n\r\n"}) {
    const std::string error = refusal(bad);
    EXPECT_TRUE(error.starts_with("malformed HTTP response: ")) << bad << " → " << error;
  }
}

TEST(upgrade_response_reader, needs_more_until_the_blank_line) {
  upgrade_response_reader reader{std::string(rfc_key)};
  const std::string head = response();
  const auto r = reader.feed(as_bytes(std::string_view(head).substr(0, head.size() - 1)));
  EXPECT_EQ(r.state, upgrade_state::need_more);
  EXPECT_EQ(r.consumed, head.size() - 1);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(reader.feed({}).state, upgrade_state::need_more);
  EXPECT_EQ(reader.feed(as_bytes("\n")).state, upgrade_state::accepted);
}

}  // namespace
}  // namespace mles::ws
