// The opening handshake and RFC 6455 framing rules as a client sees them from the
// real server, plain and TLS: refused upgrades, close codes 1002/1007/1009, the close
// handshake, fragmentation, control frames.
#include "integration_test.hpp"

#include <string>

namespace mles::test {
namespace {

std::string join_of(std::string_view uid, std::string_view channel) { return ws_client::join_text(uid, channel); }

// ---------------------------------------------------------------------------------------------
// Opening handshake

class mles_handshake : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_handshake);

TEST_P(mles_handshake, refuses_an_upgrade_without_the_mles_subprotocol) {
  auto& s = start();
  auto c = s.connect();
  handshake_options o;
  o.protocol = std::nullopt;
  const http_response r = c->handshake(o);
  ASSERT_EQ(r.status, io_status::ok) << r.describe();
  EXPECT_GE(r.code, 400) << r.describe();
  EXPECT_LT(r.code, 500) << r.describe();
}

TEST_P(mles_handshake, refuses_an_upgrade_offering_only_other_subprotocols) {
  auto& s = start();
  for (const char* offer : {"chat", "chat, superchat", "mles-websocket2", "MLES-WEBSOCKET"}) {
    auto c = s.connect();
    handshake_options o;
    o.protocol = offer;
    const http_response r = c->handshake(o);
    ASSERT_EQ(r.status, io_status::ok) << offer << ": " << r.describe();
    EXPECT_GE(r.code, 400) << offer << ": " << r.describe();
    EXPECT_LT(r.code, 500) << offer << ": " << r.describe();
  }
}

TEST_P(mles_handshake, accepts_the_subprotocol_anywhere_in_a_comma_separated_offer) {
  auto& s = start();
  int n = 0;
  for (const char* offer : {"mles-websocket", "chat, mles-websocket", "mles-websocket,chat", "a,  mles-websocket , b"}) {
    auto c = s.connect();
    handshake_options o;
    o.protocol = offer;
    const http_response r = c->handshake(o);
    ASSERT_EQ(r.code, 101) << offer << ": " << r.describe();
    EXPECT_EQ(r.header("Sec-WebSocket-Protocol").value_or("(absent)"), "mles-websocket") << offer;
    EXPECT_TRUE(r.accept_valid) << "Sec-WebSocket-Accept wrong: " << r.describe();
    const std::string uid = "u" + std::to_string(n++);
    ASSERT_TRUE(c->join(uid, "offer"));
    ASSERT_TRUE(c->sync()) << offer << ": the upgraded session does not answer: " << c->error();
  }
}

TEST_P(mles_handshake, never_negotiates_permessage_deflate) {
  auto& s = start();
  auto c = s.connect();
  handshake_options o;
  o.extra_headers = {{"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"}};
  const http_response r = c->handshake(o);
  ASSERT_EQ(r.code, 101) << r.describe();
  EXPECT_FALSE(r.header("Sec-WebSocket-Extensions").has_value()) << r.describe();
  // Since nothing was negotiated, a compressed (RSV1) frame is a protocol error.
  ASSERT_TRUE(c->join("u", "deflate"));
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .rsv = rsv::rsv1, .payload = "x"}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_handshake, refuses_malformed_upgrade_requests_with_4xx) {
  auto& s = start();
  struct bad_request {
    const char* what;
    std::string request;
  };
  const std::string common = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Protocol: mles-websocket\r\n";
  const bad_request requests[] = {
      {"no key", common + "Sec-WebSocket-Version: 13\r\n\r\n"},
      {"bad key", common + "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"},
      {"version 8", common + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"},
  };
  for (const auto& req : requests) {
    auto c = s.connect();
    ASSERT_TRUE(c->send_raw(req.request));
    const http_response r = c->read_http_response();
    // An HTTP 4xx; a server that just closes would leave a browser without an answer.
    EXPECT_EQ(r.status, io_status::ok) << req.what << ": " << r.describe();
    EXPECT_GE(r.code, 400) << req.what << ": " << r.describe();
    EXPECT_LT(r.code, 500) << req.what << ": " << r.describe();
  }
  auto ok = s.join("u", "still-up");
  EXPECT_TRUE(ok->sync()) << ok->error();
}

TEST_P(mles_handshake, refuses_an_oversized_request_head_and_keeps_serving) {
  auto& s = start();
  auto c = s.connect();
  const std::string huge(256 * 1024, 'a');
  // The server may answer and close before reading it all: a failed send is fine.
  c->send_raw("GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: " + huge + "\r\n\r\n");
  const http_response r = c->read_http_response();
  if (r.status == io_status::ok) {
    EXPECT_GE(r.code, 400) << r.describe();
    EXPECT_LT(r.code, 500) << r.describe();
  } else {
    EXPECT_NE(r.status, io_status::timeout) << "no answer to a 256 KiB request head: " << r.describe();
  }
  auto a = s.join("u", "after-huge");
  EXPECT_TRUE(a->sync()) << "the server no longer serves sessions: " << a->error();
}

TEST_P(mles_handshake, answers_a_plain_get_with_an_http_error_and_keeps_serving) {
  auto& s = start();
  auto c = s.connect();
  ASSERT_TRUE(c->send_raw("GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  const http_response r = c->read_http_response();
  ASSERT_EQ(r.status, io_status::ok) << r.describe();
  EXPECT_GE(r.code, 400) << r.describe();
  EXPECT_LT(r.code, 600) << r.describe();

  auto g = s.connect();
  ASSERT_TRUE(g->send_raw("THIS IS NOT HTTP\r\n\r\n"));
  const http_response garbage = g->read_http_response();
  if (garbage.status == io_status::ok) {
    EXPECT_GE(garbage.code, 400) << garbage.describe();
  }  // else the server simply closed: fine

  auto a = s.join("u", "after-get");
  EXPECT_TRUE(a->sync()) << "the server no longer serves sessions: " << a->error();
}

// ---------------------------------------------------------------------------------------------
// RFC 6455 close codes

class mles_rfc6455 : public server_test {
 protected:
  // A fresh joined member (its own uid, so members never collide).
  std::unique_ptr<ws_client> member() {
    auto c = srv().join("m" + std::to_string(next_++), "rfc");
    EXPECT_TRUE(c->sync()) << "joined member does not answer: " << c->error();
    return c;
  }
  int next_ = 0;
};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_rfc6455);

TEST_P(mles_rfc6455, closes_1002_on_an_unmasked_frame) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .masked = false, .payload = "hi"}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_rfc6455, closes_1002_on_an_unmasked_join_frame) {
  auto& s = start();
  auto c = s.open();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .masked = false, .payload = join_of("u", "rfc")}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_rfc6455, closes_1002_on_any_reserved_bit) {
  start();
  for (std::uint8_t bit : {rsv::rsv1, rsv::rsv2, rsv::rsv3}) {
    auto c = member();
    ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::binary, .rsv = bit, .payload = "x"}));
    EXPECT_TRUE(closes_with(*c, 1002)) << "rsv bits " << int{bit};
  }
}

TEST_P(mles_rfc6455, closes_1002_on_reserved_opcodes) {
  start();
  for (std::uint8_t opcode : {std::uint8_t{0x3}, std::uint8_t{0x7}, std::uint8_t{0xB}, std::uint8_t{0xF}}) {
    auto c = member();
    ASSERT_TRUE(c->send_frame(frame_spec{.opcode = opcode, .payload = "x"}));
    EXPECT_TRUE(closes_with(*c, 1002)) << "opcode " << int{opcode};
  }
}

TEST_P(mles_rfc6455, closes_1002_on_a_fragmented_ping) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::ping, .fin = false, .payload = "p"}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_rfc6455, closes_1002_on_control_frames_over_125_bytes) {
  start();
  for (std::uint8_t opcode : {op::ping, op::pong, op::close}) {
    auto c = member();
    std::string payload(126, 'p');
    payload[0] = 0x03;  // close code 1000 for the close frame
    payload[1] = static_cast<char>(0xE8);
    ASSERT_TRUE(c->send_frame(frame_spec{.opcode = opcode, .payload = payload}));
    EXPECT_TRUE(closes_with(*c, 1002)) << opcode_name(opcode) << " of 126 bytes";
  }
}

TEST_P(mles_rfc6455, closes_1002_on_a_continuation_without_a_started_message) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::continuation, .payload = "orphan"}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_rfc6455, closes_1002_on_a_new_data_frame_inside_a_fragmented_message) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = "part 1"}));
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .payload = "new message"}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_rfc6455, closes_1002_on_non_minimal_length_encoding) {
  start();
  {
    auto c = member();
    ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .payload = "short", .length = length_encoding::force_16}));
    EXPECT_TRUE(closes_with(*c, 1002)) << "5 bytes in a 16-bit length";
  }
  {
    auto c = member();
    ASSERT_TRUE(c->send_frame(
        frame_spec{.opcode = op::binary, .payload = std::string(300, 'b'), .length = length_encoding::force_64}));
    EXPECT_TRUE(closes_with(*c, 1002)) << "300 bytes in a 64-bit length";
  }
}

TEST_P(mles_rfc6455, closes_1002_on_a_64_bit_length_with_the_top_bit_set) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::binary,
                                       .payload = "hello",
                                       .length = length_encoding::force_64,
                                       .declared_length = (std::uint64_t{1} << 63) | 70000}));
  EXPECT_TRUE(closes_with(*c, 1002));
}

TEST_P(mles_rfc6455, closes_1002_on_a_malformed_close_frame) {
  start();
  {
    auto c = member();
    ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::close, .payload = std::string(1, '\x03')}));
    EXPECT_TRUE(closes_with(*c, 1002)) << "1-byte close body";
  }
  // RFC 6455 §7.4: codes below 1000, 1004-1006, 1015, 1016-2999 unassigned, 5000+ are invalid
  // on the wire.
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, 65535}) {
    auto c = member();
    ASSERT_TRUE(c->send_close(static_cast<std::uint16_t>(code), "bye"));
    EXPECT_TRUE(closes_with(*c, 1002)) << "close code " << code;
  }
}

TEST_P(mles_rfc6455, closes_1007_on_invalid_utf8_text) {
  start();
  for (const std::string& bad : {std::string{"\xC3\x28"}, std::string{"ok \xFF"}, std::string{"\xC0\xAF"},
                                std::string{"\xED\xA0\x80"}, std::string{"\xF4\x90\x80\x80"}, std::string{"\xE2\x82"}}) {
    auto c = member();
    ASSERT_TRUE(c->send_text(bad));
    EXPECT_TRUE(closes_with(*c, 1007)) << "text '" << shorten(bad) << "'";
  }
}

TEST_P(mles_rfc6455, closes_1007_on_invalid_utf8_split_across_fragments) {
  start();
  auto c = member();
  // "\xE2\x82" is a valid prefix; "\x28" cannot continue it.
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = "ok \xE2\x82"}));
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::continuation, .payload = "\x28 rest"}));
  EXPECT_TRUE(closes_with(*c, 1007));
}

TEST_P(mles_rfc6455, closes_1007_as_soon_as_a_fragment_holds_invalid_utf8) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = "bad \xFF and more to come"}));
  // The message is not finished: an incremental check fails it already.
  EXPECT_TRUE(closes_with(*c, 1007));
}

TEST_P(mles_rfc6455, closes_1007_on_invalid_utf8_in_a_close_reason) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_close(1000, "bad \xFF"));
  EXPECT_TRUE(closes_with(*c, 1007));
}

TEST_P(mles_rfc6455, forwards_a_valid_character_split_across_fragments) {
  auto& s = start();
  auto a = s.join_first("a", "utf8");
  auto b = s.join("b", "utf8");
  ASSERT_TRUE(receives_text(*b, join_of("a", "utf8")));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = "price \xE2\x82"}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .fin = false, .payload = "\xAC"}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .payload = " 5"}));
  EXPECT_TRUE(receives_text(*b, "price \xE2\x82\xAC 5"));
}

TEST_P(mles_rfc6455, closes_1009_on_a_message_over_max_message) {
  auto& s = start([](app::config& c) { c.max_message = 1024; });
  auto a = s.join_first("a", "big");
  auto b = s.join("b", "big");
  ASSERT_TRUE(receives_text(*b, join_of("a", "big")));
  // Exactly the limit passes.
  ASSERT_TRUE(a->send_binary(std::string(1024, 'x')));
  EXPECT_TRUE(receives(*b, op::binary, std::string(1024, 'x')));
  // One byte over, in one frame.
  ASSERT_TRUE(a->send_binary(std::string(1025, 'y')));
  EXPECT_TRUE(closes_with(*a, 1009));
  // Over only once the fragments are added up.
  ASSERT_TRUE(b->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = std::string(600, 'a')}));
  ASSERT_TRUE(b->send_frame(frame_spec{.opcode = op::continuation, .payload = std::string(600, 'b')}));
  EXPECT_TRUE(closes_with(*b, 1009));
}

TEST_P(mles_rfc6455, closes_1009_as_soon_as_a_header_declares_too_much) {
  auto& s = start([](app::config& c) { c.max_message = 1024; });
  for (const std::uint64_t declared : {std::uint64_t{1} << 20, std::uint64_t{1} << 40}) {
    auto c = s.join("u" + std::to_string(declared), "huge");
    ASSERT_TRUE(c->sync()) << c->error();
    // Only the header and a few bytes: the server must not wait for (or buffer) the rest.
    ASSERT_TRUE(c->send_frame(frame_spec{.opcode = op::binary,
                                         .payload = "only a few bytes",
                                         .length = length_encoding::force_64,
                                         .declared_length = declared}));
    EXPECT_TRUE(closes_with(*c, 1009)) << "declared " << declared << " bytes";
  }
}

TEST_P(mles_rfc6455, closes_1009_on_a_join_frame_over_64_kib_but_allows_big_messages_after) {
  auto& s = start();  // default --max-message (16 MiB)
  auto c = s.open();
  // A join padded with an unknown member to just over 64 KiB: refused before it is buffered.
  const std::string padding(64 * 1024, 'p');
  ASSERT_TRUE(c->send_text(R"({"uid":"u","channel":"bigjoin","pad":")" + padding + R"("})"));
  EXPECT_TRUE(closes_with(*c, 1009));
  // After a normal join the full --max-message applies again.
  auto a = s.join_first("a", "bigjoin");
  auto b = s.join("b", "bigjoin");
  ASSERT_TRUE(receives_text(*b, join_of("a", "bigjoin")));
  const std::string big(256 * 1024, 'x');
  ASSERT_TRUE(a->send_binary(big));
  EXPECT_TRUE(receives(*b, op::binary, big));
}

TEST_P(mles_rfc6455, answers_a_client_close_with_the_same_code) {
  start();
  for (int code : {1000, 1001, 3000, 4001}) {
    auto c = member();
    ASSERT_TRUE(c->send_close(static_cast<std::uint16_t>(code), "bye"));
    EXPECT_TRUE(closes_with(*c, static_cast<std::uint16_t>(code))) << "client close " << code;
  }
}

TEST_P(mles_rfc6455, answers_an_empty_client_close) {
  start();
  auto c = member();
  ASSERT_TRUE(c->send_close(std::nullopt));
  const auto code = c->expect_close();
  ASSERT_TRUE(code.has_value()) << c->error();
  EXPECT_TRUE(*code == 1005 || *code == 1000) << "answered an empty close with " << *code;
  EXPECT_TRUE(c->wait_closed()) << c->error();
}

TEST_P(mles_rfc6455, answers_a_close_before_the_join) {
  auto& s = start();
  auto c = s.open();
  ASSERT_TRUE(c->send_close(1000));
  EXPECT_TRUE(closes_with(*c, 1000));
}

TEST_P(mles_rfc6455, forwards_a_fragmented_message_as_one_unfragmented_message) {
  auto& s = start();
  auto a = s.join_first("a", "frag");
  auto b = s.join("b", "frag");
  ASSERT_TRUE(receives_text(*b, join_of("a", "frag")));

  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = "Hel"}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .fin = false, .payload = "lo "}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .payload = "world"}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::binary, .fin = false, .payload = "\x01\x02"}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .fin = false, .payload = ""}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .payload = std::string(70000, 'z')}));

  read_result r = b->read_frame();
  ASSERT_TRUE(r.ok()) << b->error();
  EXPECT_EQ(r.f.opcode, op::text);
  EXPECT_TRUE(r.f.fin) << "forwarded in fragments";
  EXPECT_EQ(r.f.payload, "Hello world");
  r = b->read_frame();
  ASSERT_TRUE(r.ok()) << b->error();
  EXPECT_EQ(r.f.opcode, op::binary);
  EXPECT_TRUE(r.f.fin) << "forwarded in fragments";
  EXPECT_EQ(r.f.payload, "\x01\x02" + std::string(70000, 'z'));
}

TEST_P(mles_rfc6455, answers_a_ping_inside_a_fragmented_message_and_forwards_the_message_intact) {
  auto& s = start();
  auto a = s.join_first("a", "pingfrag");
  auto b = s.join("b", "pingfrag");
  ASSERT_TRUE(receives_text(*b, join_of("a", "pingfrag")));

  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::binary, .fin = false, .payload = "first half, "}));
  ASSERT_TRUE(a->send_ping("in the middle"));
  read_result pong = a->read_frame();
  ASSERT_TRUE(pong.ok()) << a->error();
  EXPECT_EQ(pong.f.opcode, op::pong) << describe(pong.f);
  EXPECT_EQ(pong.f.payload, "in the middle");
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .payload = "second half"}));
  EXPECT_TRUE(receives(*b, op::binary, "first half, second half"));
}

TEST_P(mles_rfc6455, answers_client_pings_with_pongs_of_the_same_payload) {
  auto& s = start();
  auto before_join = s.open();
  ASSERT_TRUE(before_join->send_ping("early"));
  read_result r = before_join->read_frame();
  ASSERT_TRUE(r.ok()) << before_join->error();
  EXPECT_EQ(r.f.opcode, op::pong);
  EXPECT_EQ(r.f.payload, "early");

  auto c = member();
  std::string binary125(125, '\0');
  for (std::size_t i = 0; i < binary125.size(); ++i) binary125[i] = static_cast<char>(255 - i);
  for (const std::string& payload : {std::string{}, std::string{"abc"}, binary125}) {
    ASSERT_TRUE(c->send_ping(payload));
    r = c->read_frame();
    ASSERT_TRUE(r.ok()) << c->error();
    EXPECT_EQ(r.f.opcode, op::pong) << describe(r.f);
    EXPECT_FALSE(r.f.masked);
    EXPECT_EQ(r.f.payload, payload);
  }
}

TEST_P(mles_rfc6455, ignores_unsolicited_pongs) {
  auto& s = start();
  auto a = s.join_first("a", "pong");
  auto b = s.join("b", "pong");
  ASSERT_TRUE(receives_text(*b, join_of("a", "pong")));
  ASSERT_TRUE(a->send_pong("unsolicited"));
  ASSERT_TRUE(a->send_text("after pong"));
  EXPECT_TRUE(receives_text(*b, "after pong"));
  EXPECT_TRUE(a->sync()) << a->error();
}

TEST_P(mles_rfc6455, accepts_a_fragmented_join_frame) {
  auto& s = start();
  auto a = s.open();
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::text, .fin = false, .payload = R"({"uid":"a",)"}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::continuation, .payload = R"("channel":"fragjoin"})"}));
  ASSERT_TRUE(a->sync()) << a->error();
  auto b = s.join("b", "fragjoin");
  EXPECT_TRUE(receives_text(*b, R"({"uid":"a","channel":"fragjoin"})"));
}

TEST_P(mles_rfc6455, parses_frames_arriving_a_few_bytes_at_a_time) {
  auto& s = start();
  auto a = s.join_first("a", "drip");
  auto b = s.join("b", "drip");
  ASSERT_TRUE(receives_text(*b, join_of("a", "drip")));
  const std::string payload(200, 'd');  // 16-bit length: the header itself is split too
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::binary, .payload = payload, .chunk = 3, .pause = 1ms}));
  ASSERT_TRUE(a->send_frame(frame_spec{.opcode = op::ping, .payload = "drip", .chunk = 1, .pause = 1ms}));
  EXPECT_TRUE(receives(*b, op::binary, payload));
  read_result r = a->read_frame();
  ASSERT_TRUE(r.ok()) << a->error();
  EXPECT_EQ(r.f.opcode, op::pong);
  EXPECT_EQ(r.f.payload, "drip");
}

TEST_P(mles_rfc6455, forwards_messages_at_every_length_encoding_boundary) {
  auto& s = start();
  auto a = s.join_first("a", "sizes");
  auto b = s.join("b", "sizes");
  ASSERT_TRUE(receives_text(*b, join_of("a", "sizes")));
  for (std::size_t size : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 300000u}) {
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>((i * 31 + size) & 0xFF);
    ASSERT_TRUE(a->send_binary(payload));
    EXPECT_TRUE(receives(*b, op::binary, payload)) << size << " bytes";
  }
}

}  // namespace
}  // namespace mles::test
