// The server's global bounds as a client sees them: a message larger than the send queue still
// reaches members that read; joins over the channel cap get 1013; partly received messages and
// request bodies over the in-flight budget get 1013 / 503; a message must arrive within its
// deadline; a body is refused at the headers where the route takes none.
#include "integration_test.hpp"

#include <string>

#include <sys/socket.h>

namespace mles::test {
namespace {

std::string join_of(std::string_view uid, std::string_view channel) { return ws_client::join_text(uid, channel); }

class mles_bounds : public server_test {};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_bounds);

constexpr std::uint16_t try_again_later = 1013;
constexpr std::uint16_t policy_violation = 1008;

TEST_P(mles_bounds, a_message_larger_than_the_send_queue_reaches_every_member_that_reads) {
  auto& s = start([](app::config& c) {
    c.max_queue = 64 * 1024;
    c.max_message = 2u << 20;
  });
  auto a = s.join_first("a", "big");
  auto b = s.join("b", "big");
  ASSERT_TRUE(receives_text(*b, join_of("a", "big")));
  auto c = s.join("c", "big");
  ASSERT_TRUE(receives_all(*c, {text(join_of("a", "big")), text(join_of("b", "big"))}));
  const std::string big(1536 * 1024, 'B');  // 24 times --max-queue
  ASSERT_TRUE(a->send_binary(big));
  EXPECT_TRUE(receives(*b, op::binary, big, 30s));
  EXPECT_TRUE(receives(*c, op::binary, big, 30s));
  // ...and again: nothing was left over that makes the next one trip the rule.
  ASSERT_TRUE(b->send_binary(big));
  EXPECT_TRUE(receives(*a, op::binary, big, 30s));
  EXPECT_TRUE(receives(*c, op::binary, big, 30s));
  EXPECT_EQ(s.stats().slow_consumer_closes, 0u);
}

TEST_P(mles_bounds, a_join_that_would_create_a_channel_over_the_cap_gets_1013) {
  auto& s = start([](app::config& c) { c.max_channels = 2; });
  auto one = s.join_first("u1", "one");
  auto two = s.join_first("u2", "two");
  auto three = s.join("u3", "three");
  EXPECT_TRUE(closes_with(*three, try_again_later, 20s));
  EXPECT_EQ(s.stats().refused_channels, 1u);
  // An existing channel still takes members, and they still talk.
  auto more = s.join("u4", "one");
  ASSERT_TRUE(receives_text(*more, join_of("u1", "one")));
  ASSERT_TRUE(one->send_text("still here"));
  EXPECT_TRUE(receives_text(*more, "still here"));
  // Once a channel has nobody, it makes room for a new one.
  two->send_close();
  ASSERT_TRUE(wait_until([&] { return s.stats().sessions == 2; }, 20s));
  auto four = s.join("u5", "four");
  ASSERT_TRUE(four->sync(20s));
  ASSERT_TRUE(four->send_text("new channel"));
  auto five = s.join("u6", "four");
  EXPECT_TRUE(receives_all(*five, {text(join_of("u5", "four")), text("new channel")}));
  EXPECT_EQ(s.stats().evicted_channels, 1u);
}

// The wire image of a masked binary frame of `length` bytes (sent in parts by the tests).
std::string binary_frame(std::size_t length, char fill) {
  frame_spec spec;
  spec.opcode = op::binary;
  spec.payload = std::string(length, fill);
  return encode_frame(spec);
}

TEST_P(mles_bounds, partly_received_messages_over_the_inflight_budget_get_1013) {
  auto& s = start([](app::config& c) {
    c.max_message = 1u << 20;
    c.max_inflight = 640 * 1024;
  });
  auto reader = s.join_first("reader", "inflight");
  auto first = s.join("first", "inflight");
  auto second = s.join("second", "inflight");
  ASSERT_TRUE(first->sync(20s));
  ASSERT_TRUE(second->sync(20s));
  // The first holds 400 KiB of a 512 KiB message; the second's cannot fit beside it.
  const std::size_t length = 512 * 1024;
  const std::string wire1 = binary_frame(length, '1');
  const std::string wire2 = binary_frame(length, '2');
  const std::size_t part = 400 * 1024;
  ASSERT_TRUE(first->send_raw(std::string_view(wire1).substr(0, part)));
  ASSERT_TRUE(wait_until([&] { return s.stats().inflight_bytes >= 256 * 1024; }, 20s)) << s.stats().inflight_bytes;
  ASSERT_TRUE(second->send_raw(std::string_view(wire2).substr(0, part), 20s));
  EXPECT_TRUE(closes_with(*second, try_again_later, 20s));
  // A third, refused too, resets its connection instead of reading the close: the refusal is
  // counted all the same (not as a transport error).
  auto third = s.join("third", "inflight");
  ASSERT_TRUE(third->sync(20s));
  const std::string wire3 = binary_frame(length, '3');
  ASSERT_TRUE(third->send_raw(std::string_view(wire3).substr(0, part), 20s));
  ASSERT_TRUE(third->expect_close(20s).has_value());
  const linger reset{1, 0};
  ::setsockopt(third->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  third->close_socket();
  EXPECT_TRUE(wait_until([&] { return s.stats().inflight_refusals == 2; }, 20s)) << s.stats().inflight_refusals;
  // The first finishes its message, which reaches the reader whole; nothing is held after.
  ASSERT_TRUE(first->send_raw(std::string_view(wire1).substr(part), 20s));
  EXPECT_TRUE(receives(*reader, op::binary, std::string(length, '1'), 30s));
  EXPECT_TRUE(wait_until([&] { return s.stats().inflight_bytes == 0; }, 20s)) << s.stats().inflight_bytes;
}

TEST_P(mles_bounds, a_message_that_does_not_arrive_in_time_is_closed_although_bytes_keep_coming) {
  auto& s = start([](app::config& c) { c.message_timeout = 1s; });
  auto reader = s.join_first("reader", "slow");
  auto dribbler = s.join("dribbler", "slow");
  ASSERT_TRUE(dribbler->sync(20s));
  const std::string wire = binary_frame(64 * 1024, 'd');
  // One byte every 100 ms keeps the connection busy but never finishes the message.
  std::size_t sent = 0;
  bool closed = false;
  const auto give_up = steady::now() + 60s;
  while (!closed && sent < wire.size() && steady::now() < give_up) {
    if (!dribbler->send_raw(std::string_view(wire).substr(sent, 1))) break;
    ++sent;
    const read_result r = dribbler->read_frame(100ms);
    if (r.status == io_status::ok && r.f.opcode == op::close) {
      closed = true;
      EXPECT_EQ(r.f.close_code(), policy_violation);
    } else if (r.status == io_status::eof || r.status == io_status::error) {
      break;
    }
  }
  EXPECT_TRUE(closed) << "no close after " << sent << " bytes";
  // The reader never saw a part of it, and its own session is untouched.
  ASSERT_TRUE(reader->send_text("after"));
  auto other = s.join("other", "slow");
  EXPECT_TRUE(receives_all(*other, {text(join_of("reader", "slow")), text(join_of("dribbler", "slow")),
                                    text("after")}));
}

TEST_P(mles_bounds, a_request_body_is_refused_at_the_headers_where_the_route_takes_none) {
  auto& s = start();
  // Only the head is sent: the answer must not wait for the megabyte it announces.
  auto c = s.connect();
  ASSERT_TRUE(c->send_raw("GET /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n"));
  const http_response r = c->read_http_response(20s);
  ASSERT_EQ(r.status, io_status::ok) << r.error;
  EXPECT_EQ(r.code, 413);
  EXPECT_TRUE(connection_ends(*c, 20s));
  // A method static files do not take: 405 at once, with the methods they take.
  auto p = s.connect();
  ASSERT_TRUE(p->send_raw("POST /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n"));
  const http_response rp = p->read_http_response(20s);
  ASSERT_EQ(rp.status, io_status::ok) << rp.error;
  EXPECT_EQ(rp.code, 405);
  EXPECT_EQ(rp.header("Allow").value_or(""), "GET, HEAD");
  EXPECT_EQ(s.stats().inflight_bytes, 0u);

  // The WebSocket upgrade takes no body either.
  auto u = s.connect();
  ASSERT_TRUE(u->send_raw("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Protocol: mles-websocket\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const http_response ru = u->read_http_response(20s);
  ASSERT_EQ(ru.status, io_status::ok) << ru.error;
  EXPECT_EQ(ru.code, 413);
}

TEST_P(mles_bounds, a_proxied_body_over_the_inflight_budget_gets_503) {
  auto& s = start([](app::config& c) {
    c.proxies.push_back({"api", "http://127.0.0.1:9"});
    c.max_inflight = 64 * 1024;
  });
  auto c = s.connect();
  ASSERT_TRUE(c->send_raw("POST /api/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"));
  const http_response r = c->read_http_response(20s);
  ASSERT_EQ(r.status, io_status::ok) << r.error;
  EXPECT_EQ(r.code, 503);
  EXPECT_TRUE(r.header("Retry-After").has_value());
  EXPECT_EQ(s.stats().inflight_bytes, 0u);
}

}  // namespace
}  // namespace mles::test
