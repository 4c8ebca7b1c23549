// Tests for ws::frame_parser in the client role (we read a server, e.g. a peer link): RFC 6455
// §5 framing rules for unmasked server frames, fed as wire bytes whole and in every chunking.
#include "ws/frame_parser.hpp"

#include "client_frames.hpp"

#include <gtest/gtest.h>

#include <random>

namespace mles::ws {
namespace {

using namespace mles::ws::test;

constexpr std::uint8_t fin_text = 0x81, fin_binary = 0x82, fin_close = 0x88, fin_ping = 0x89,
                       fin_pong = 0x8A, fin_cont = 0x80, frag_text = 0x01, frag_binary = 0x02,
                       frag_cont = 0x00;

constexpr std::size_t one_mib = 1 << 20;

bytes pattern(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

run_result client_whole(bytes input, std::size_t max_message = one_mib) {
  return feed_whole(std::move(input), max_message, role::client);
}

run_result client_chunked(bytes input, std::span<const std::size_t> sizes, std::size_t max_message = one_mib) {
  return feed_chunked(std::move(input), sizes, max_message, role::client);
}

// ---- RFC 6455 §5.7 examples (server to client, unmasked) ------------------------------------

TEST(frame_parser_client_role, parses_rfc_single_frame_unmasked_hello) {
  bytes wire{
      0x81,                          // FIN, text
      0x05,                          // MASK=0, length 5
      0x48, 0x65, 0x6c, 0x6c, 0x6f,  // "Hello"
  };
  frame_parser parser(1024, role::client);
  EXPECT_EQ(parser.parser_role(), role::client);
  recorder rec;
  const auto r = parser.consume(wire, rec);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_FALSE(r.closed);
  ASSERT_EQ(rec.events, (std::vector<event>{message(opcode::text, "Hello")}));
  // zero-copy: a span into the input right after the 2-byte header, bytes left as they were
  EXPECT_EQ(rec.message_data[0], wire.data() + 2);
  EXPECT_EQ(wire, (bytes{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  EXPECT_FALSE(parser.mid_message());
}

TEST(frame_parser_client_role, joins_rfc_fragmented_unmasked_hello) {
  const bytes wire{
      0x01, 0x03, 0x48, 0x65, 0x6c,  // FIN=0 text, len 3, "Hel"
      0x80, 0x02, 0x6c, 0x6f,        // FIN=1 continuation, len 2, "lo"
  };
  const auto r = client_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.events, (std::vector<event>{message(opcode::text, "Hello")}));
}

TEST(frame_parser_client_role, delivers_rfc_unmasked_ping_and_pong) {
  const bytes wire{
      0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f,  // FIN ping, len 5, "Hello"
      0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f,  // FIN pong, len 5, "Hello"
  };
  const auto r = client_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{ping("Hello"), pong("Hello")}));
}

TEST(frame_parser_client_role, reads_rfc_256_byte_binary_with_16_bit_length) {
  const bytes payload = pattern(256);
  const bytes wire = server_frame(fin_binary, payload);
  ASSERT_EQ(wire[1], 0x7E);  // MASK=0, 126: 16-bit length follows
  ASSERT_EQ(wire[2], 0x01);  // 0x0100 = 256
  ASSERT_EQ(wire[3], 0x00);
  ASSERT_EQ(wire.size(), 4u + 256u);  // no masking key
  EXPECT_EQ(client_whole(wire).events, (std::vector<event>{message(opcode::binary, payload)}));
}

TEST(frame_parser_client_role, reads_rfc_64_kib_binary_with_64_bit_length) {
  const bytes payload = pattern(65536);
  const bytes wire = server_frame(fin_binary, payload);
  ASSERT_EQ(wire[1], 0x7F);  // MASK=0, 127: 64-bit length follows
  EXPECT_EQ(bytes(wire.begin() + 2, wire.begin() + 10),
            (bytes{0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));  // 65536
  EXPECT_EQ(client_whole(wire).events, (std::vector<event>{message(opcode::binary, payload)}));
}

// ---- masking (RFC 6455 §5.1) ----------------------------------------------------------------

TEST(frame_parser_client_role, rejects_masked_server_frame) {
  // The RFC's masked "Hello" is what a client sends: from a server it is a protocol error.
  bytes wire{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  frame_parser parser(1024, role::client);
  recorder rec;
  const auto r = parser.consume(wire, rec);
  EXPECT_EQ(r.error, close_code::protocol_error);
  EXPECT_TRUE(rec.events.empty());
}

TEST(frame_parser_client_role, rejects_masked_frame_after_two_bytes) {
  // The MASK bit is in byte 2: no need to wait for the rest of the header.
  bytes wire{0x82, 0xFE};  // FIN binary, MASK=1, 126
  frame_parser parser(one_mib, role::client);
  recorder rec;
  EXPECT_EQ(parser.consume(wire, rec).error, close_code::protocol_error);
}

TEST(frame_parser_client_role, rejects_masked_frame_of_every_kind) {
  for (const std::uint8_t b0 : {fin_text, fin_binary, fin_close, fin_ping, fin_pong, frag_text}) {
    const auto r = client_whole(client_frame(b0, ""));
    EXPECT_EQ(r.error, close_code::protocol_error) << int{b0};
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser_client_role, rejects_masked_frame_after_good_ones_in_any_chunking) {
  const bytes wire = concat({server_frame(fin_text, "ok"), server_frame(frag_binary, "a"),
                             client_frame(fin_cont, "b")});  // masked continuation
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    const std::size_t sizes[] = {chunk};
    const auto r = client_chunked(wire, sizes);
    ASSERT_EQ(r.error, close_code::protocol_error) << chunk;
    ASSERT_EQ(r.events, (std::vector<event>{message(opcode::text, "ok")}));
  }
}

TEST(frame_parser_client_role, server_role_still_rejects_the_same_unmasked_frame) {
  const bytes wire = server_frame(fin_text, "Hello");
  EXPECT_EQ(client_whole(wire).error, close_code::none);
  EXPECT_EQ(feed_whole(wire).error, close_code::protocol_error);  // default role: server
}

// ---- lengths --------------------------------------------------------------------------------

TEST(frame_parser_client_role, accepts_edge_lengths) {
  for (const std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 65537u}) {
    const bytes payload = pattern(n);
    const auto r = client_whole(server_frame(fin_binary, payload));
    EXPECT_EQ(r.error, close_code::none) << n;
    EXPECT_EQ(r.events, (std::vector<event>{message(opcode::binary, payload)})) << n;
    const std::size_t sizes[] = {1, 3, n / 2 + 1, 7};
    EXPECT_EQ(client_chunked(server_frame(fin_binary, payload), sizes).events, r.events) << n;
  }
}

TEST(frame_parser_client_role, accepts_empty_text_and_empty_fragments) {
  const bytes wire = concat({
      server_frame(fin_text, ""),     // empty unfragmented text
      server_frame(frag_binary, ""),  // empty first fragment
      server_frame(frag_cont, "ab"),  //
      server_frame(frag_cont, ""),    // empty middle fragment
      server_frame(fin_cont, ""),     // empty last fragment
      server_frame(fin_binary, ""),   // empty binary
  });
  const auto r = client_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{message(opcode::text, ""), message(opcode::binary, "ab"),
                                          message(opcode::binary, "")}));
}

TEST(frame_parser_client_role, accepts_minimal_boundary_encodings) {
  EXPECT_EQ(client_whole(server_frame(fin_binary, pattern(126), length_form::force16)).error, close_code::none);
  EXPECT_EQ(client_whole(server_frame(fin_binary, pattern(65536), length_form::force64)).error, close_code::none);
}

TEST(frame_parser_client_role, rejects_non_minimal_16_bit_length) {
  for (const std::size_t n : {0u, 5u, 125u}) {
    // 0x82, 126, 16-bit length < 126
    const auto r = client_whole(server_frame(fin_binary, pattern(n), length_form::force16));
    EXPECT_EQ(r.error, close_code::protocol_error) << n;
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser_client_role, rejects_non_minimal_64_bit_length) {
  for (const std::size_t n : {0u, 125u, 126u, 65535u}) {
    // 0x82, 127, 64-bit length < 65536
    const auto r = client_whole(server_frame(fin_binary, pattern(n), length_form::force64));
    EXPECT_EQ(r.error, close_code::protocol_error) << n;
  }
}

TEST(frame_parser_client_role, rejects_64_bit_length_with_top_bit_set) {
  const bytes wire{
      0x82, 0x7F,                                      // FIN binary; MASK=0, 127
      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 2^63: MSB set
  };
  EXPECT_EQ(client_whole(wire, ~std::size_t{0}).error, close_code::protocol_error);
}

// ---- RSV, opcodes ---------------------------------------------------------------------------

TEST(frame_parser_client_role, rejects_rsv_bits) {
  for (const int rsv : {0x40, 0x20, 0x10, 0x70}) {
    const auto r = client_whole(server_frame(static_cast<std::uint8_t>(0x81 | rsv), "x"));
    EXPECT_EQ(r.error, close_code::protocol_error) << rsv;
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser_client_role, rejects_reserved_opcodes) {
  for (const int op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    const auto r = client_whole(server_frame(static_cast<std::uint8_t>(0x80 | op), ""));
    EXPECT_EQ(r.error, close_code::protocol_error) << op;
  }
}

// ---- control frames ---------------------------------------------------------------------

TEST(frame_parser_client_role, rejects_fragmented_control_frames) {
  for (const std::uint8_t b0 : {std::uint8_t{0x08}, std::uint8_t{0x09}, std::uint8_t{0x0A}}) {
    EXPECT_EQ(client_whole(server_frame(b0, "")).error, close_code::protocol_error) << int{b0};
  }
}

TEST(frame_parser_client_role, rejects_control_frames_over_125_bytes) {
  for (const std::uint8_t b0 : {fin_close, fin_ping, fin_pong}) {
    EXPECT_EQ(client_whole(server_frame(b0, pattern(126))).error, close_code::protocol_error);
    bytes header{b0, 0x7E, 0x00, 0x7E};  // 126 announced in the 16-bit form
    frame_parser parser(one_mib, role::client);
    recorder rec;
    EXPECT_EQ(parser.consume(header, rec).error, close_code::protocol_error);
  }
}

TEST(frame_parser_client_role, accepts_125_byte_ping) {
  const bytes payload = pattern(125);
  const auto r = client_whole(server_frame(fin_ping, payload));
  ASSERT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{{event::kind::ping, opcode::continuation, payload, 0}}));
}

TEST(frame_parser_client_role, delivers_control_frames_between_fragments_at_once) {
  const bytes wire = concat({
      server_frame(frag_text, "Hel"),
      server_frame(fin_ping, "p1"),
      server_frame(frag_cont, "l"),
      server_frame(fin_pong, ""),
      server_frame(fin_cont, "o"),
  });
  const auto r = client_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{ping("p1"), pong(""), message(opcode::text, "Hello")}));
}

TEST(frame_parser_client_role, close_inside_fragmented_message_is_delivered) {
  const auto r = client_whole(concat({server_frame(frag_binary, "a"), server_frame(fin_close, "")}));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.events, (std::vector<event>{close(1005)}));
}

// ---- fragmentation rules (RFC 6455 §5.4) ------------------------------------------------

TEST(frame_parser_client_role, rejects_continuation_without_a_started_message) {
  EXPECT_EQ(client_whole(server_frame(fin_cont, "x")).error, close_code::protocol_error);
  EXPECT_EQ(client_whole(server_frame(frag_cont, "x")).error, close_code::protocol_error);
  const auto r = client_whole(concat({server_frame(fin_text, "a"), server_frame(fin_cont, "b")}));
  EXPECT_EQ(r.error, close_code::protocol_error);
  EXPECT_EQ(r.events, (std::vector<event>{message(opcode::text, "a")}));
}

TEST(frame_parser_client_role, rejects_data_frame_inside_fragmented_message) {
  for (const std::uint8_t b0 : {fin_text, fin_binary, frag_text, frag_binary}) {
    const auto r = client_whole(concat({server_frame(frag_binary, "a"), server_frame(b0, "b")}));
    EXPECT_EQ(r.error, close_code::protocol_error) << int{b0};
    EXPECT_TRUE(r.events.empty());
  }
}

// ---- message size (1009) ------------------------------------------------------------------

TEST(frame_parser_client_role, accepts_message_of_exactly_max_message) {
  const auto r = client_whole(concat({server_frame(frag_binary, pattern(60)), server_frame(fin_cont, pattern(40))}), 100);
  EXPECT_EQ(r.error, close_code::none);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].payload.size(), 100u);
}

TEST(frame_parser_client_role, rejects_oversized_frame_from_its_header_alone) {
  bytes header{
      0x82, 0x7F,                                      // FIN binary; MASK=0, 127
      0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  // 65536
  };
  frame_parser parser(65535, role::client);
  recorder rec;
  const auto r = parser.consume(header, rec);
  EXPECT_EQ(r.error, close_code::message_too_big);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(frame_parser_client_role, rejects_fragmented_message_over_max_message) {
  const bytes wire = concat({server_frame(frag_binary, pattern(60)), server_frame(frag_cont, "abc"),
                             server_frame(fin_cont, pattern(38))});
  const auto r = client_whole(wire, 100);  // 60 + 3 + 38 = 101
  EXPECT_EQ(r.error, close_code::message_too_big);
  EXPECT_TRUE(r.events.empty());
}

TEST(frame_parser_client_role, control_frames_do_not_count_toward_max_message) {
  const auto r = client_whole(concat({server_frame(frag_binary, "ab"), server_frame(fin_ping, pattern(100)),
                                      server_frame(fin_cont, "c")}),
                              3);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events.size(), 2u);
}

TEST(frame_parser_client_role, zero_max_message_allows_only_empty_messages) {
  EXPECT_EQ(client_whole(server_frame(fin_binary, ""), 0).error, close_code::none);
  EXPECT_EQ(client_whole(server_frame(fin_binary, "a"), 0).error, close_code::message_too_big);
}

// ---- UTF-8 (1007) ---------------------------------------------------------------------------

TEST(frame_parser_client_role, rejects_invalid_utf8_text) {
  for (const std::string_view bad : {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "a\x80"}) {
    const auto r = client_whole(server_frame(fin_text, bad));
    EXPECT_EQ(r.error, close_code::invalid_payload);
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser_client_role, rejects_text_ending_inside_a_code_point) {
  EXPECT_EQ(client_whole(server_frame(fin_text, "ok\xE2\x82")).error, close_code::invalid_payload);
  const auto r = client_whole(concat({server_frame(frag_text, "\xE2\x82"), server_frame(fin_cont, "")}));
  EXPECT_EQ(r.error, close_code::invalid_payload);
}

TEST(frame_parser_client_role, detects_invalid_utf8_before_the_frame_ends) {
  // 0x81, 100, then only "ab\xFF": the rest of the 100 bytes never comes.
  bytes wire = server_frame(fin_text, std::string("ab\xFF") + std::string(97, 'x'));
  wire.resize(2 + 3);
  frame_parser parser(1024, role::client);
  recorder rec;
  EXPECT_EQ(parser.consume(wire, rec).error, close_code::invalid_payload);
}

TEST(frame_parser_client_role, accepts_code_points_split_across_fragments) {
  const std::string text = "a\xE2\x82\xAC\xF0\x9F\x98\x80z";  // a € 😀 z
  for (std::size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      const bytes wire = concat({server_frame(frag_text, text.substr(0, cut1)),
                                 server_frame(frag_cont, text.substr(cut1, cut2 - cut1)),
                                 server_frame(fin_cont, text.substr(cut2))});
      const auto r = client_whole(wire);
      ASSERT_EQ(r.error, close_code::none) << cut1 << "," << cut2;
      ASSERT_EQ(r.events, (std::vector<event>{message(opcode::text, text)}));
      for (std::size_t chunk = 1; chunk < 5; ++chunk) {
        const std::size_t sizes[] = {chunk};
        ASSERT_EQ(client_chunked(wire, sizes).events, r.events);
      }
    }
  }
}

TEST(frame_parser_client_role, binary_messages_are_not_utf8_checked) {
  EXPECT_EQ(client_whole(server_frame(fin_binary, "\xFF\xFE")).error, close_code::none);
}

// ---- close frames -------------------------------------------------------------------------

TEST(frame_parser_client_role, empty_close_reports_no_status) {
  bytes wire = concat({server_frame(fin_close, ""), server_frame(fin_text, "after")});
  frame_parser parser(1024, role::client);
  recorder rec;
  const auto r = parser.consume(wire, rec);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, 2u);  // 0x88, 0x00: nothing after the close frame
  EXPECT_EQ(rec.events, (std::vector<event>{close(1005)}));
}

TEST(frame_parser_client_role, close_with_code_and_reason) {
  const bytes wire{0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'};  // FIN close, len 5, 1000, "bye"
  const auto r = client_whole(wire);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.events, (std::vector<event>{close(1000, "bye")}));
}

TEST(frame_parser_client_role, rejects_one_byte_close_payload) {
  const bytes body{0x03};
  EXPECT_EQ(client_whole(server_frame(fin_close, body)).error, close_code::protocol_error);
}

TEST(frame_parser_client_role, rejects_close_codes_not_allowed_on_the_wire) {
  for (const int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    const bytes body{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    const auto r = client_whole(server_frame(fin_close, body));
    EXPECT_EQ(r.error, close_code::protocol_error) << code;
    EXPECT_FALSE(r.closed);
  }
}

TEST(frame_parser_client_role, accepts_registered_and_application_close_codes) {
  for (const int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999}) {
    const bytes body{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    const auto r = client_whole(server_frame(fin_close, body));
    EXPECT_TRUE(r.closed) << code;
    EXPECT_EQ(r.events, (std::vector<event>{close(static_cast<std::uint16_t>(code))}));
  }
}

TEST(frame_parser_client_role, rejects_close_reason_that_is_not_utf8) {
  const bytes body{0x03, 0xE8, 'a', 0xC0, 0xAF};  // 1000, "a" + overlong '/'
  EXPECT_EQ(client_whole(server_frame(fin_close, body)).error, close_code::invalid_payload);
}

TEST(frame_parser_client_role, reads_nothing_after_close_or_error) {
  frame_parser parser(1024, role::client);
  recorder rec;
  bytes close_frame = server_frame(fin_close, "");
  ASSERT_TRUE(parser.consume(close_frame, rec).closed);
  bytes more = server_frame(fin_text, "x");
  const auto r = parser.consume(more, rec);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(rec.events.size(), 1u);

  frame_parser broken(1024, role::client);
  bytes masked{0x81, 0x80, 1, 2, 3, 4};
  ASSERT_EQ(broken.consume(masked, rec).error, close_code::protocol_error);
  bytes good = server_frame(fin_text, "x");
  const auto again = broken.consume(good, rec);
  EXPECT_EQ(again.error, close_code::protocol_error);
  EXPECT_EQ(again.consumed, 0u);
}

// ---- handler stop ---------------------------------------------------------------------------

TEST(frame_parser_client_role, stops_when_handler_returns_false) {
  const bytes first = server_frame(fin_text, "one");
  bytes wire = concat({first, server_frame(fin_ping, "p"), server_frame(fin_binary, "two")});
  frame_parser parser(1024, role::client);
  recorder rec;
  rec.keep_going = false;
  const auto r = parser.consume(wire, rec);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_EQ(rec.events, (std::vector<event>{message(opcode::text, "one")}));
  rec.keep_going = true;
  const auto rest = parser.consume(std::span<std::uint8_t>(wire).subspan(r.consumed), rec);
  EXPECT_EQ(rest.consumed, wire.size() - first.size());
  EXPECT_EQ(rec.events, (std::vector<event>{message(opcode::text, "one"), ping("p"), message(opcode::binary, "two")}));
}

TEST(frame_parser_client_role, stops_after_buffered_message_and_control_frame) {
  bytes wire = concat({server_frame(frag_text, "a"), server_frame(fin_ping, "p"), server_frame(fin_cont, "b"),
                       server_frame(fin_text, "c")});
  frame_parser parser(1024, role::client);
  recorder rec;
  rec.keep_going = false;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    const auto r = parser.consume(std::span<std::uint8_t>(wire).subspan(pos), rec);
    ASSERT_EQ(r.error, close_code::none);
    ASSERT_GT(r.consumed, 0u);
    pos += r.consumed;
  }
  EXPECT_EQ(rec.events, (std::vector<event>{ping("p"), message(opcode::text, "ab"), message(opcode::text, "c")}));
}

// ---- chunking -----------------------------------------------------------------------------

bytes mixed_stream() {
  return concat({
      server_frame(fin_text, "Hello"),
      server_frame(frag_text, "gr\xC3\xBC"),  // "grü"
      server_frame(fin_ping, "are you there"),
      server_frame(frag_cont, "\xC3\x9F" "e \xE2\x82"),  // "ße " + half of €
      server_frame(fin_cont, "\xAC!"),
      server_frame(fin_binary, pattern(300)),
      server_frame(fin_pong, ""),
      server_frame(fin_binary, ""),
      server_frame(frag_binary, pattern(130)),
      server_frame(fin_cont, pattern(9)),
      server_frame(fin_binary, pattern(70000)),  // 64-bit length
      server_frame(fin_close, bytes{0x0F, 0xA0, 'o', 'k'}),  // 4000 "ok"
  });
}

std::vector<event> mixed_stream_events() {
  bytes two_fragments = pattern(130);
  const bytes tail = pattern(9);
  two_fragments.insert(two_fragments.end(), tail.begin(), tail.end());
  return {message(opcode::text, "Hello"),
          ping("are you there"),
          message(opcode::text, "gr\xC3\xBC\xC3\x9F" "e \xE2\x82\xAC!"),
          message(opcode::binary, pattern(300)),
          pong(""),
          message(opcode::binary, ""),
          message(opcode::binary, two_fragments),
          message(opcode::binary, pattern(70000)),
          close(4000, "ok")};
}

TEST(frame_parser_client_role, same_events_one_byte_at_a_time) {
  const bytes wire = mixed_stream();
  const std::size_t sizes[] = {1};
  const auto r = client_chunked(wire, sizes);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.events, mixed_stream_events());
}

TEST(frame_parser_client_role, same_events_for_every_two_way_split) {
  const bytes wire = mixed_stream();
  const auto expected = mixed_stream_events();
  const auto whole = client_whole(wire);
  ASSERT_EQ(whole.events, expected);
  ASSERT_TRUE(whole.closed);
  ASSERT_EQ(whole.consumed, wire.size());
  // Every split inside the small frames, then a stride through the 70000-byte one.
  for (std::size_t split = 1; split < wire.size(); split += split < 800 || split > wire.size() - 200 ? 1 : 997) {
    const std::size_t sizes[] = {split, wire.size()};
    const auto r = client_chunked(wire, sizes);
    ASSERT_EQ(r.events, expected) << "split at " << split;
    ASSERT_TRUE(r.closed);
    ASSERT_EQ(r.consumed, wire.size());
  }
}

TEST(frame_parser_client_role, same_events_for_small_fixed_chunk_sizes) {
  const bytes wire = mixed_stream();
  for (std::size_t chunk = 1; chunk <= 40; ++chunk) {
    const std::size_t sizes[] = {chunk};
    const auto r = client_chunked(wire, sizes);
    ASSERT_EQ(r.events, mixed_stream_events()) << "chunk " << chunk;
    ASSERT_EQ(r.consumed, wire.size());
  }
}

TEST(frame_parser_client_role, same_events_for_random_chunkings) {
  const bytes wire = mixed_stream();
  std::mt19937 rng(6455);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> sizes;
    std::size_t total = 0;
    while (total < wire.size()) {
      const std::size_t n = std::uniform_int_distribution<std::size_t>(1, round % 2 ? 64 : 4000)(rng);
      sizes.push_back(n);
      total += n;
    }
    ASSERT_EQ(client_chunked(wire, sizes).events, mixed_stream_events()) << "round " << round;
  }
}

TEST(frame_parser_client_role, same_error_for_every_split) {
  const bytes wire = concat({server_frame(fin_text, "ok"), server_frame(frag_text, "abc"),
                             server_frame(frag_cont, "de\xF8gh"), server_frame(fin_cont, "x")});
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    const std::size_t sizes[] = {chunk};
    const auto r = client_chunked(wire, sizes);
    ASSERT_EQ(r.error, close_code::invalid_payload) << chunk;
    ASSERT_EQ(r.events, (std::vector<event>{message(opcode::text, "ok")}));
  }
}

// ---- buffering and state -------------------------------------------------------------------

TEST(frame_parser_client_role, reports_mid_message_and_buffered_bytes) {
  frame_parser parser(one_mib, role::client);
  recorder rec;
  EXPECT_FALSE(parser.mid_message());
  bytes header_part{0x81};
  parser.consume(header_part, rec);
  EXPECT_TRUE(parser.mid_message());

  frame_parser p2(one_mib, role::client);
  bytes frag = server_frame(frag_binary, "abcd");
  p2.consume(frag, rec);
  EXPECT_TRUE(p2.mid_message());
  EXPECT_EQ(p2.buffered_bytes(), 4u);
  p2.shrink();  // no effect mid-message
  EXPECT_EQ(p2.buffered_bytes(), 4u);
  bytes last = server_frame(fin_cont, "e");
  p2.consume(last, rec);
  EXPECT_FALSE(p2.mid_message());
  EXPECT_EQ(p2.buffered_bytes(), 0u);
  EXPECT_EQ(rec.events.back(), message(opcode::binary, "abcde"));
}

TEST(frame_parser_client_role, message_split_across_reads_is_copied_then_released) {
  frame_parser parser(one_mib, role::client);
  recorder rec;
  bytes wire = server_frame(fin_binary, pattern(100 * 1024));
  const std::size_t half = wire.size() / 2;
  parser.consume(std::span<std::uint8_t>(wire).first(half), rec);
  EXPECT_EQ(parser.buffered_bytes(), half - 10);  // header: 2 + 8-byte length, no key
  parser.consume(std::span<std::uint8_t>(wire).subspan(half), rec);
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].payload, pattern(100 * 1024));
  EXPECT_NE(rec.message_data[0], wire.data() + 10);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(frame_parser_client_role, header_split_before_extended_length_is_resumed) {
  // 2 + 8 header bytes arrive one at a time, then the whole payload in one read.
  const bytes payload = pattern(65536);
  bytes wire = server_frame(fin_binary, payload);
  frame_parser parser(one_mib, role::client);
  recorder rec;
  for (std::size_t i = 0; i < 10; ++i) {
    const auto r = parser.consume(std::span<std::uint8_t>(wire).subspan(i, 1), rec);
    ASSERT_EQ(r.error, close_code::none);
    ASSERT_EQ(r.consumed, 1u);
  }
  const auto r = parser.consume(std::span<std::uint8_t>(wire).subspan(10), rec);
  EXPECT_EQ(r.consumed, payload.size());
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.message_data[0], wire.data() + 10);  // zero copy: the payload came in one read
  EXPECT_EQ(rec.events[0].payload, payload);
}

}  // namespace
}  // namespace mles::ws
