// Tests for the wire of links: the Mles-Peer header, frames in both roles, and hub messages
// carried in the envelope and decoded back.
#include "net/peer_wire.hpp"

#include "proto/peer_envelope.hpp"
#include "ws/frame_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace mles;

namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Collects what a parser in `role` finds in the bytes.
struct collector final : ws::frame_handler {
  bool on_message(ws::opcode op, std::span<const std::uint8_t> p) override {
    ops.push_back(op);
    messages.emplace_back(p.begin(), p.end());
    return true;
  }
  bool on_ping(std::span<const std::uint8_t>) override { return true; }
  bool on_pong(std::span<const std::uint8_t>) override { return true; }
  void on_close(std::uint16_t, std::string_view) override {}
  std::vector<ws::opcode> ops;
  std::vector<std::vector<std::uint8_t>> messages;
};

std::vector<std::uint8_t> parse_one(ws::role reader, const hub::shared_frame& f, ws::opcode& op) {
  std::vector<std::uint8_t> copy(f.data(), f.data() + f.size());
  ws::frame_parser p(1 << 20, reader);
  collector c;
  const auto r = p.consume(copy, c);
  EXPECT_EQ(r.error, ws::close_code::none);
  EXPECT_EQ(c.messages.size(), 1u);
  if (c.messages.empty()) return {};
  op = c.ops[0];
  return c.messages[0];
}

}  // namespace

TEST(peer_header, round_trips_the_server_id) {
  EXPECT_EQ(net::peer_header_value("a.example:443"), "1; id=a.example:443");
  EXPECT_EQ(net::parse_peer_header("1; id=a.example:443"), "a.example:443");
  EXPECT_EQ(net::parse_peer_header("1;id=b"), "b");
  EXPECT_EQ(net::parse_peer_header(" 1 ; x=y; id=c "), "c");
}

TEST(peer_header, ignores_other_versions_and_bad_ids) {
  EXPECT_FALSE(net::parse_peer_header(""));
  EXPECT_FALSE(net::parse_peer_header("1"));
  EXPECT_FALSE(net::parse_peer_header("2; id=a"));
  EXPECT_FALSE(net::parse_peer_header("1; id="));
  EXPECT_FALSE(net::parse_peer_header("1; id=has space"));
  EXPECT_FALSE(net::parse_peer_header("1; id=" + std::string(65, 'x')));
}

TEST(peer_wire, frames_in_the_client_role_are_masked_and_read_back_by_a_server) {
  const auto f = net::encode_frame(ws::role::client, ws::opcode::text, bytes_of("hello"), hub::sharing::threads);
  EXPECT_EQ(f.data()[1] & 0x80, 0x80);  // mask bit
  ws::opcode op{};
  const auto got = parse_one(ws::role::server, f, op);
  EXPECT_EQ(op, ws::opcode::text);
  EXPECT_EQ(std::string(got.begin(), got.end()), "hello");
}

TEST(peer_wire, view_server_frame_finds_the_payload_for_every_length_encoding) {
  for (std::size_t n : {0u, 5u, 125u, 126u, 65535u, 65536u}) {
    const std::string payload(n, 'p');
    const auto f = net::encode_frame(ws::role::server, ws::opcode::binary, bytes_of(payload), hub::sharing::threads);
    const auto v = net::view_server_frame(f);
    EXPECT_EQ(v.op, ws::opcode::binary);
    EXPECT_EQ(v.payload.size(), n);
  }
}

TEST(peer_wire, a_hub_message_survives_the_envelope_in_both_roles) {
  for (auto role : {ws::role::server, ws::role::client}) {
    hub::message m;
    m.frame = net::encode_frame(ws::role::server, ws::opcode::text, bytes_of("héllo"), hub::sharing::threads);
    m.from = std::make_shared<const hub::origin>(hub::origin{"a.example:443", 0x1122334455667788ull});
    m.seq = 42;
    m.flags = hub::message_flags::join;
    const auto wire = net::encode_enveloped(m, hub::origin{"self", 1}, role, hub::sharing::threads);
    ws::opcode op{};
    const auto body = parse_one(role == ws::role::server ? ws::role::client : ws::role::server, wire, op);
    EXPECT_EQ(op, ws::opcode::binary);  // envelopes always travel as binary messages

    hub::origin_ptr cache;
    hub::message back;
    ASSERT_FALSE(net::decode_enveloped(body, cache, back, hub::sharing::threads));
    ASSERT_TRUE(back.from);
    EXPECT_EQ(back.from->server, "a.example:443");
    EXPECT_EQ(back.from->instance, 0x1122334455667788ull);
    EXPECT_EQ(back.seq, 42u);
    EXPECT_EQ(back.flags, hub::message_flags::join);
    // Members get the original TEXT frame, byte for byte.
    EXPECT_EQ(std::vector<std::uint8_t>(back.frame.data(), back.frame.data() + back.frame.size()),
              std::vector<std::uint8_t>(m.frame.data(), m.frame.data() + m.frame.size()));
    // The next message from the same origin shares the cached origin.
    hub::message again;
    ASSERT_FALSE(net::decode_enveloped(body, cache, again, hub::sharing::threads));
    EXPECT_EQ(again.from.get(), back.from.get());
  }
}

TEST(peer_wire, refuses_a_text_envelope_that_is_not_utf8) {
  std::vector<std::uint8_t> wire(proto::envelope_header_size("b"));
  proto::write_envelope_header(wire.data(), proto::envelope_flags::text, "b", 1, 1);
  wire.push_back(0xff);
  hub::origin_ptr cache;
  hub::message out;
  EXPECT_TRUE(net::decode_enveloped(wire, cache, out, hub::sharing::threads));
}

TEST(peer_wire, keeps_the_largest_sequence_the_hub_holds_and_refuses_one_beyond) {
  for (const std::uint64_t seq : {hub::max_sequence, hub::max_sequence + 1, ~std::uint64_t{0}}) {
    std::vector<std::uint8_t> wire(proto::envelope_header_size("b"));
    proto::write_envelope_header(wire.data(), 0, "b", 1, seq);
    wire.push_back('x');
    hub::origin_ptr cache;
    hub::message out;
    const auto ec = net::decode_enveloped(wire, cache, out, hub::sharing::threads);
    if (seq == hub::max_sequence) {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_EQ(out.seq, hub::max_sequence);  // not truncated
    } else {
      EXPECT_EQ(ec, proto::errc::envelope_bad_sequence) << seq;
      EXPECT_FALSE(cache) << "a refused envelope leaves the origin cache alone";
    }
  }
}

TEST(peer_wire, a_message_of_this_server_carries_its_own_origin) {
  hub::message m;
  m.frame = net::encode_frame(ws::role::server, ws::opcode::binary, bytes_of("x"), hub::sharing::threads);
  m.seq = 7;  // m.from null: ours
  const auto wire = net::encode_enveloped(m, hub::origin{"me:443", 99}, ws::role::server, hub::sharing::threads);
  ws::opcode op{};
  const auto body = parse_one(ws::role::client, wire, op);
  hub::origin_ptr cache;
  hub::message back;
  ASSERT_FALSE(net::decode_enveloped(body, cache, back, hub::sharing::threads));
  EXPECT_EQ(back.from->server, "me:443");
  EXPECT_EQ(back.from->instance, 99u);
  EXPECT_EQ(back.seq, 7u);
}
