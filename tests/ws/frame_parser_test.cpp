// Tests for ws::frame_parser: RFC 6455 §5 framing rules for the server role, fed as wire
// bytes (annotated per field) whole and in every chunking.
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

bytes pattern(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

// ---- RFC 6455 §5.7 examples -------------------------------------------------------------

TEST(frame_parser, parses_rfc_single_frame_masked_hello) {
  bytes wire{
      0x81,                    // FIN, text
      0x85,                    // MASK, length 5
      0x37, 0xfa, 0x21, 0x3d,  // masking key
      0x7f, 0x9f, 0x4d, 0x51, 0x58,  // "Hello" masked
  };
  frame_parser parser(1024);
  recorder rec;
  const auto r = parser.consume(wire, rec);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_FALSE(r.closed);
  ASSERT_EQ(rec.events, (std::vector<event>{message(opcode::text, "Hello")}));
  // zero-copy: the message was unmasked in place and handed out as a span into the input
  EXPECT_EQ(rec.message_data[0], wire.data() + 6);
  EXPECT_FALSE(parser.mid_message());
}

TEST(frame_parser, joins_rfc_fragmented_hello) {
  // RFC 6455 §5.7 "fragmented unmasked text message", masked as a client must send it.
  const bytes wire = concat({
      client_frame(frag_text, "Hel"),  // 0x01: FIN=0, text
      client_frame(fin_cont, "lo"),    // 0x80: FIN=1, continuation
  });
  const auto r = feed_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.events, (std::vector<event>{message(opcode::text, "Hello")}));
}

TEST(frame_parser, delivers_rfc_masked_pong_and_ping) {
  bytes wire{
      0x8a, 0x85,                    // FIN, pong; MASK, length 5
      0x37, 0xfa, 0x21, 0x3d,        // masking key
      0x7f, 0x9f, 0x4d, 0x51, 0x58,  // "Hello"
  };
  const bytes ping_frame = client_frame(fin_ping, "Hello");  // 0x89 0x85 key masked-Hello
  wire.insert(wire.end(), ping_frame.begin(), ping_frame.end());
  const auto r = feed_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{pong("Hello"), ping("Hello")}));
}

TEST(frame_parser, reads_rfc_256_byte_binary_with_16_bit_length) {
  const bytes payload = pattern(256);
  const bytes wire = client_frame(fin_binary, payload);
  ASSERT_EQ(wire[1], 0xFE);  // MASK | 126: 16-bit length follows
  ASSERT_EQ(wire[2], 0x01);  // 0x0100 = 256
  ASSERT_EQ(wire[3], 0x00);
  EXPECT_EQ(feed_whole(wire).events, (std::vector<event>{message(opcode::binary, payload)}));
}

TEST(frame_parser, reads_rfc_64_kib_binary_with_64_bit_length) {
  const bytes payload = pattern(65536);
  const bytes wire = client_frame(fin_binary, payload);
  ASSERT_EQ(wire[1], 0xFF);  // MASK | 127: 64-bit length follows
  EXPECT_EQ(bytes(wire.begin() + 2, wire.begin() + 10),
            (bytes{0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));  // 65536
  EXPECT_EQ(feed_whole(wire).events, (std::vector<event>{message(opcode::binary, payload)}));
}

// ---- lengths --------------------------------------------------------------------------------

TEST(frame_parser, accepts_edge_lengths) {
  for (const std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 65537u}) {
    const bytes payload = pattern(n);
    const auto r = feed_whole(client_frame(fin_binary, payload));
    EXPECT_EQ(r.error, close_code::none) << n;
    EXPECT_EQ(r.events, (std::vector<event>{message(opcode::binary, payload)})) << n;
    // and split after the header and in the middle of the payload
    const std::size_t sizes[] = {1, 3, n / 2 + 1, 7};
    EXPECT_EQ(feed_chunked(client_frame(fin_binary, payload), sizes).events, r.events) << n;
  }
}

TEST(frame_parser, accepts_empty_text_and_empty_fragments) {
  const bytes wire = concat({
      client_frame(fin_text, ""),      // empty unfragmented text
      client_frame(frag_binary, ""),   // empty first fragment
      client_frame(frag_cont, "ab"),   //
      client_frame(frag_cont, ""),     // empty middle fragment
      client_frame(fin_cont, ""),      // empty last fragment
      client_frame(fin_binary, ""),    // empty binary
  });
  const auto r = feed_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{message(opcode::text, ""), message(opcode::binary, "ab"),
                                          message(opcode::binary, "")}));
}

TEST(frame_parser, accepts_minimal_boundary_encodings) {
  // 126 with length 126 and 127 with length 65536 are the smallest legal extended forms.
  EXPECT_EQ(feed_whole(client_frame(fin_binary, pattern(126), rfc_mask, length_form::force16)).error,
            close_code::none);
  EXPECT_EQ(feed_whole(client_frame(fin_binary, pattern(65536), rfc_mask, length_form::force64)).error,
            close_code::none);
}

TEST(frame_parser, rejects_non_minimal_16_bit_length) {
  for (const std::size_t n : {0u, 5u, 125u}) {
    // 0x82, MASK|126, 16-bit length < 126
    const auto r = feed_whole(client_frame(fin_binary, pattern(n), rfc_mask, length_form::force16));
    EXPECT_EQ(r.error, close_code::protocol_error) << n;
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser, rejects_non_minimal_64_bit_length) {
  for (const std::size_t n : {0u, 125u, 126u, 65535u}) {
    // 0x82, MASK|127, 64-bit length < 65536
    const auto r = feed_whole(client_frame(fin_binary, pattern(n), rfc_mask, length_form::force64));
    EXPECT_EQ(r.error, close_code::protocol_error) << n;
  }
}

TEST(frame_parser, rejects_64_bit_length_with_top_bit_set) {
  const bytes wire{
      0x82, 0xFF,                                      // FIN binary; MASK | 127
      0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 2^63: MSB set
      0x01, 0x02, 0x03, 0x04,                          // key
  };
  EXPECT_EQ(feed_whole(wire, ~std::size_t{0}).error, close_code::protocol_error);
}

// ---- masking, RSV, opcodes ------------------------------------------------------------------

TEST(frame_parser, rejects_unmasked_client_frame) {
  const bytes wire{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};  // FIN text, MASK=0, len 5
  frame_parser parser(1024);
  recorder rec;
  bytes copy = wire;
  const auto r = parser.consume(copy, rec);
  EXPECT_EQ(r.error, close_code::protocol_error);
  EXPECT_TRUE(rec.events.empty());
}

TEST(frame_parser, rejects_unmasked_frame_after_two_bytes) {
  // The MASK bit is in byte 2: no need to wait for the rest of the header.
  bytes wire{0x82, 0x7E};  // FIN binary, MASK=0, 126
  frame_parser parser(1 << 20);
  recorder rec;
  EXPECT_EQ(parser.consume(wire, rec).error, close_code::protocol_error);
}

TEST(frame_parser, rejects_rsv_bits) {
  for (const int rsv : {0x40, 0x20, 0x10, 0x70}) {
    const auto r = feed_whole(client_frame(static_cast<std::uint8_t>(0x81 | rsv), "x"));
    EXPECT_EQ(r.error, close_code::protocol_error) << int{rsv};
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser, rejects_reserved_opcodes) {
  for (const int op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    const auto r = feed_whole(client_frame(static_cast<std::uint8_t>(0x80 | op), ""));
    EXPECT_EQ(r.error, close_code::protocol_error) << int{op};
  }
}

// ---- control frames ---------------------------------------------------------------------

TEST(frame_parser, rejects_fragmented_control_frames) {
  for (const std::uint8_t b0 : {std::uint8_t{0x08}, std::uint8_t{0x09}, std::uint8_t{0x0A}}) {  // FIN=0 close/ping/pong
    EXPECT_EQ(feed_whole(client_frame(b0, "")).error, close_code::protocol_error) << int{b0};
  }
}

TEST(frame_parser, rejects_control_frames_over_125_bytes) {
  for (const std::uint8_t b0 : {fin_close, fin_ping, fin_pong}) {
    EXPECT_EQ(feed_whole(client_frame(b0, pattern(126))).error, close_code::protocol_error);
    // 126 announced with the 16-bit form: still too long, and the length byte (126) says so
    bytes header{b0, 0xFE, 0x00, 0x7E};
    frame_parser parser(1 << 20);
    recorder rec;
    EXPECT_EQ(parser.consume(header, rec).error, close_code::protocol_error);
  }
}

TEST(frame_parser, accepts_125_byte_ping) {
  const bytes payload = pattern(125);
  const auto r = feed_whole(client_frame(fin_ping, payload));
  ASSERT_EQ(r.error, close_code::none);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].payload, payload);
}

TEST(frame_parser, delivers_control_frames_between_fragments_at_once) {
  const bytes wire = concat({
      client_frame(frag_text, "Hel"),
      client_frame(fin_ping, "p1"),  // between fragments: delivered before the message
      client_frame(frag_cont, "l"),
      client_frame(fin_pong, ""),
      client_frame(fin_cont, "o"),
  });
  const auto r = feed_whole(wire);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events, (std::vector<event>{ping("p1"), pong(""), message(opcode::text, "Hello")}));
}

TEST(frame_parser, close_inside_fragmented_message_is_delivered) {
  const auto r = feed_whole(concat({client_frame(frag_binary, "a"), client_frame(fin_close, "")}));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.events, (std::vector<event>{close(1005)}));
}

// ---- fragmentation rules ----------------------------------------------------------------

TEST(frame_parser, rejects_continuation_without_message) {
  EXPECT_EQ(feed_whole(client_frame(fin_cont, "x")).error, close_code::protocol_error);
  EXPECT_EQ(feed_whole(client_frame(frag_cont, "x")).error, close_code::protocol_error);
  // after a complete message, too
  const auto r = feed_whole(concat({client_frame(fin_text, "a"), client_frame(fin_cont, "b")}));
  EXPECT_EQ(r.error, close_code::protocol_error);
  EXPECT_EQ(r.events, (std::vector<event>{message(opcode::text, "a")}));
}

TEST(frame_parser, rejects_data_frame_inside_fragmented_message) {
  for (const std::uint8_t b0 : {fin_text, fin_binary, frag_text, frag_binary}) {
    const auto r = feed_whole(concat({client_frame(frag_binary, "a"), client_frame(b0, "b")}));
    EXPECT_EQ(r.error, close_code::protocol_error) << int{b0};
    EXPECT_TRUE(r.events.empty());
  }
}

// ---- message size (1009) ------------------------------------------------------------------

TEST(frame_parser, accepts_message_of_exactly_max_message) {
  const auto r = feed_whole(concat({client_frame(frag_binary, pattern(60)), client_frame(fin_cont, pattern(40))}), 100);
  EXPECT_EQ(r.error, close_code::none);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].payload.size(), 100u);
}

TEST(frame_parser, rejects_oversized_frame_from_its_header_alone) {
  // Only the header of a 64 KiB frame: the parser refuses before any payload arrives.
  bytes header{
      0x82, 0xFF,                                      // FIN binary; MASK | 127
      0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  // 65536
      0x01, 0x02, 0x03, 0x04,                          // key
  };
  frame_parser parser(65535);
  recorder rec;
  const auto r = parser.consume(header, rec);
  EXPECT_EQ(r.error, close_code::message_too_big);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(frame_parser, rejects_fragmented_message_over_max_message) {
  const bytes wire = concat({client_frame(frag_binary, pattern(60)), client_frame(frag_cont, "abc"),
                             client_frame(fin_cont, pattern(38))});
  const auto r = feed_whole(wire, 100);  // 60 + 3 + 38 = 101
  EXPECT_EQ(r.error, close_code::message_too_big);
  EXPECT_TRUE(r.events.empty());
}

TEST(frame_parser, control_frames_do_not_count_toward_max_message) {
  const auto r = feed_whole(concat({client_frame(frag_binary, "ab"), client_frame(fin_ping, pattern(100)),
                                    client_frame(fin_cont, "c")}),
                            3);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.events.size(), 2u);
}

TEST(frame_parser, zero_max_message_allows_only_empty_messages) {
  EXPECT_EQ(feed_whole(client_frame(fin_binary, ""), 0).error, close_code::none);
  EXPECT_EQ(feed_whole(client_frame(fin_binary, "a"), 0).error, close_code::message_too_big);
}

// ---- UTF-8 (1007) ---------------------------------------------------------------------------

TEST(frame_parser, rejects_invalid_utf8_text) {
  for (const std::string_view bad : {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "a\x80"}) {
    const auto r = feed_whole(client_frame(fin_text, bad));
    EXPECT_EQ(r.error, close_code::invalid_payload);
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(frame_parser, rejects_text_ending_inside_a_code_point) {
  EXPECT_EQ(feed_whole(client_frame(fin_text, "ok\xE2\x82")).error, close_code::invalid_payload);
  const auto r = feed_whole(concat({client_frame(frag_text, "\xE2\x82"), client_frame(fin_cont, "")}));
  EXPECT_EQ(r.error, close_code::invalid_payload);
}

TEST(frame_parser, detects_invalid_utf8_before_the_frame_ends) {
  // 0x81, MASK|100, key, then only "ab\xFF": the rest of the 100 bytes never comes.
  bytes wire = client_frame(fin_text, std::string("ab\xFF") + std::string(97, 'x'));
  wire.resize(2 + 4 + 3);
  frame_parser parser(1024);
  recorder rec;
  EXPECT_EQ(parser.consume(wire, rec).error, close_code::invalid_payload);
}

TEST(frame_parser, detects_invalid_utf8_in_an_early_fragment) {
  bytes wire = client_frame(frag_text, "\xC3\x28");  // invalid continuation
  frame_parser parser(1024);
  recorder rec;
  EXPECT_EQ(parser.consume(wire, rec).error, close_code::invalid_payload);
}

TEST(frame_parser, accepts_code_points_split_across_fragments) {
  const std::string text = "a\xE2\x82\xAC\xF0\x9F\x98\x80z";  // a € 😀 z
  for (std::size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      const bytes wire = concat({client_frame(frag_text, text.substr(0, cut1)),
                                 client_frame(frag_cont, text.substr(cut1, cut2 - cut1)),
                                 client_frame(fin_cont, text.substr(cut2))});
      const auto r = feed_whole(wire);
      ASSERT_EQ(r.error, close_code::none) << cut1 << "," << cut2;
      ASSERT_EQ(r.events, (std::vector<event>{message(opcode::text, text)}));
      // and across every read boundary as well
      for (std::size_t chunk = 1; chunk < 5; ++chunk) {
        const std::size_t sizes[] = {chunk};
        ASSERT_EQ(feed_chunked(wire, sizes).events, r.events);
      }
    }
  }
}

TEST(frame_parser, binary_messages_are_not_utf8_checked) {
  EXPECT_EQ(feed_whole(client_frame(fin_binary, "\xFF\xFE")).error, close_code::none);
}

// ---- close frames -------------------------------------------------------------------------

TEST(frame_parser, empty_close_reports_no_status) {
  const bytes wire = concat({client_frame(fin_close, ""), client_frame(fin_text, "after")});
  frame_parser parser(1024);
  recorder rec;
  bytes copy = wire;
  const auto r = parser.consume(copy, rec);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, 6u);  // 0x88, MASK|0, 4-byte key: nothing after the close frame
  EXPECT_EQ(rec.events, (std::vector<event>{close(1005)}));
}

TEST(frame_parser, close_with_code_and_reason) {
  const bytes body{0x03, 0xE8, 'b', 'y', 'e'};  // 1000 big-endian, "bye"
  const auto r = feed_whole(client_frame(fin_close, body));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.events, (std::vector<event>{close(1000, "bye")}));
}

TEST(frame_parser, rejects_one_byte_close_payload) {
  const bytes body{0x03};
  EXPECT_EQ(feed_whole(client_frame(fin_close, body)).error, close_code::protocol_error);
}

TEST(frame_parser, rejects_close_codes_not_allowed_on_the_wire) {
  for (const int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    const bytes body{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    const auto r = feed_whole(client_frame(fin_close, body));
    EXPECT_EQ(r.error, close_code::protocol_error) << code;
    EXPECT_FALSE(r.closed);
  }
}

TEST(frame_parser, accepts_registered_and_application_close_codes) {
  for (const int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                   3000, 4000, 4999}) {
    const bytes body{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    const auto r = feed_whole(client_frame(fin_close, body));
    EXPECT_TRUE(r.closed) << code;
    EXPECT_EQ(r.events, (std::vector<event>{close(static_cast<std::uint16_t>(code))}));
  }
}

TEST(frame_parser, rejects_close_reason_that_is_not_utf8) {
  const bytes body{0x03, 0xE8, 'a', 0xC0, 0xAF};  // 1000, "a" + overlong '/'
  EXPECT_EQ(feed_whole(client_frame(fin_close, body)).error, close_code::invalid_payload);
}

TEST(frame_parser, reads_nothing_after_close_or_error) {
  frame_parser parser(1024);
  recorder rec;
  bytes close_frame = client_frame(fin_close, "");
  ASSERT_TRUE(parser.consume(close_frame, rec).closed);
  bytes more = client_frame(fin_text, "x");
  const auto r = parser.consume(more, rec);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(rec.events.size(), 1u);

  frame_parser broken(1024);
  bytes unmasked{0x81, 0x00};
  ASSERT_EQ(broken.consume(unmasked, rec).error, close_code::protocol_error);
  bytes good = client_frame(fin_text, "x");
  const auto again = broken.consume(good, rec);
  EXPECT_EQ(again.error, close_code::protocol_error);
  EXPECT_EQ(again.consumed, 0u);
}

// ---- handler stop ---------------------------------------------------------------------------

TEST(frame_parser, stops_when_handler_returns_false) {
  const bytes first = client_frame(fin_text, "one");
  bytes wire = concat({first, client_frame(fin_ping, "p"), client_frame(fin_binary, "two")});
  frame_parser parser(1024);
  recorder rec;
  rec.keep_going = false;
  const auto r = parser.consume(wire, rec);
  EXPECT_EQ(r.error, close_code::none);
  EXPECT_EQ(r.consumed, first.size());  // exactly the first frame
  EXPECT_EQ(rec.events, (std::vector<event>{message(opcode::text, "one")}));
  // The rest can still be parsed (the parser state is consistent).
  rec.keep_going = true;
  const auto rest = parser.consume(std::span<std::uint8_t>(wire).subspan(r.consumed), rec);
  EXPECT_EQ(rest.consumed, wire.size() - first.size());
  EXPECT_EQ(rec.events, (std::vector<event>{message(opcode::text, "one"), ping("p"),
                                            message(opcode::binary, "two")}));
}

TEST(frame_parser, stops_after_buffered_message_and_control_frame) {
  bytes wire = concat({client_frame(frag_text, "a"), client_frame(fin_ping, "p"), client_frame(fin_cont, "b"),
                       client_frame(fin_text, "c")});
  frame_parser parser(1024);
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
  const bytes big = pattern(300);
  return concat({
      client_frame(fin_text, "Hello", {1, 2, 3, 4}),
      client_frame(frag_text, "gr\xC3\xBC", {9, 8, 7, 6}),  // "grü"
      client_frame(fin_ping, "are you there", {0xAA, 0xBB, 0xCC, 0xDD}),
      client_frame(frag_cont, "\xC3\x9F" "e \xE2\x82", {5, 6, 7, 8}),  // "ße " + half of €
      client_frame(fin_cont, "\xAC!", {0x11, 0x22, 0x33, 0x44}),
      client_frame(fin_binary, big, {0xDE, 0xAD, 0xBE, 0xEF}),
      client_frame(fin_pong, "", {0, 0, 0, 0}),
      client_frame(fin_binary, "", {1, 1, 1, 1}),
      client_frame(frag_binary, pattern(130), {3, 1, 4, 1}),
      client_frame(fin_cont, pattern(9), {5, 9, 2, 6}),
      client_frame(fin_close, bytes{0x0F, 0xA0, 'o', 'k'}, {2, 7, 1, 8}),  // 4000 "ok"
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
          close(4000, "ok")};
}

TEST(frame_parser, same_events_for_every_two_way_split) {
  const bytes wire = mixed_stream();
  const auto expected = mixed_stream_events();
  const auto whole = feed_whole(wire);
  ASSERT_EQ(whole.events, expected);
  ASSERT_TRUE(whole.closed);
  ASSERT_EQ(whole.consumed, wire.size());
  for (std::size_t split = 1; split < wire.size(); ++split) {
    const std::size_t sizes[] = {split, wire.size()};
    const auto r = feed_chunked(wire, sizes);
    ASSERT_EQ(r.events, expected) << "split at " << split;
    ASSERT_TRUE(r.closed);
    ASSERT_EQ(r.consumed, wire.size());
  }
}

TEST(frame_parser, same_events_for_every_fixed_chunk_size) {
  const bytes wire = mixed_stream();
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    const std::size_t sizes[] = {chunk};
    const auto r = feed_chunked(wire, sizes);
    ASSERT_EQ(r.events, mixed_stream_events()) << "chunk " << chunk;
    ASSERT_EQ(r.consumed, wire.size());
  }
}

TEST(frame_parser, same_events_for_random_chunkings) {
  const bytes wire = mixed_stream();
  std::mt19937 rng(6455);
  for (int round = 0; round < 500; ++round) {
    std::vector<std::size_t> sizes;
    std::size_t total = 0;
    while (total < wire.size()) {
      const std::size_t n = std::uniform_int_distribution<std::size_t>(1, round % 2 ? 8 : 200)(rng);
      sizes.push_back(n);
      total += n;
    }
    ASSERT_EQ(feed_chunked(wire, sizes).events, mixed_stream_events()) << "round " << round;
  }
}

TEST(frame_parser, same_error_for_every_split) {
  // valid text, then a fragment with an invalid byte deep inside, then more
  const bytes wire = concat({client_frame(fin_text, "ok"), client_frame(frag_text, "abc"),
                             client_frame(frag_cont, "de\xF8gh"), client_frame(fin_cont, "x")});
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    const std::size_t sizes[] = {chunk};
    const auto r = feed_chunked(wire, sizes);
    ASSERT_EQ(r.error, close_code::invalid_payload) << chunk;
    ASSERT_EQ(r.events, (std::vector<event>{message(opcode::text, "ok")}));
  }
}

// ---- buffering and state -------------------------------------------------------------------

TEST(frame_parser, reports_mid_message_and_buffered_bytes) {
  frame_parser parser(1 << 20);
  recorder rec;
  EXPECT_FALSE(parser.mid_message());
  bytes header_part{0x81};  // one byte of a header
  parser.consume(header_part, rec);
  EXPECT_TRUE(parser.mid_message());

  frame_parser p2(1 << 20);
  bytes frag = client_frame(frag_binary, "abcd");
  p2.consume(frag, rec);
  EXPECT_TRUE(p2.mid_message());
  EXPECT_EQ(p2.buffered_bytes(), 4u);
  p2.shrink();  // no effect mid-message
  EXPECT_EQ(p2.buffered_bytes(), 4u);
  bytes last = client_frame(fin_cont, "e");
  p2.consume(last, rec);
  EXPECT_FALSE(p2.mid_message());
  EXPECT_EQ(p2.buffered_bytes(), 0u);
  p2.shrink();
  EXPECT_EQ(rec.events.back(), message(opcode::binary, "abcde"));
}

TEST(frame_parser, large_message_split_across_reads_is_reassembled) {
  const bytes payload = pattern(200 * 1024);
  bytes wire = client_frame(fin_binary, payload, {0x12, 0x34, 0x56, 0x78});
  const std::size_t sizes[] = {4096, 1, 3, 8191};
  const auto r = feed_chunked(wire, sizes, 1 << 20);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].payload, payload);
}

TEST(frame_parser, message_split_across_reads_is_copied_then_released) {
  frame_parser parser(1 << 20);
  recorder rec;
  bytes wire = client_frame(fin_binary, pattern(100 * 1024));
  const std::size_t half = wire.size() / 2;
  parser.consume(std::span<std::uint8_t>(wire).first(half), rec);
  EXPECT_EQ(parser.buffered_bytes(), half - 10 - 4);  // header: 2 + 8-byte length + 4-byte key
  parser.consume(std::span<std::uint8_t>(wire).subspan(half), rec);
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_NE(rec.message_data[0], wire.data() + 14);  // delivered from the internal buffer
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace mles::ws
