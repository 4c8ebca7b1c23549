// Tests for proto::parse_proxy_header: every rule of PROXY protocol v1 and v2 as we accept it.
#include "proto/proxy_header.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mles::proto {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

proxy_result parse(std::string_view s) { return parse_proxy_header(bytes_of(s)); }

const std::string sig("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);

std::string v2(std::uint8_t ver_cmd, std::uint8_t fam, const std::string& payload) {
  std::string h = sig;
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>(payload.size() >> 8);
  h += static_cast<char>(payload.size() & 0xFF);
  return h + payload;
}

std::string inet4(std::string tlvs = {}) {
  // 192.0.2.7:51234 -> 198.51.100.1:443
  std::string p("\xC0\x00\x02\x07\xC6\x33\x64\x01\xC8\x22\x01\xBB", 12);
  return p + tlvs;
}

std::string inet6() {
  std::string p(36, '\0');
  p[0] = '\x20'; p[1] = '\x01'; p[2] = '\x0d'; p[3] = '\xb8'; p[15] = '\x05';  // 2001:db8::5
  p[16] = '\x20'; p[17] = '\x01'; p[18] = '\x0d'; p[19] = '\xb8'; p[31] = '\x01';
  p[32] = '\x12'; p[33] = '\x34';  // port 4660
  p[34] = '\x01'; p[35] = '\xBB';
  return p;
}

TEST(proxy_v1, tcp4_gives_the_source_and_the_length) {
  const std::string h = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n";
  const auto r = parse(h + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(r.status, proxy_status::done) << r.what;
  EXPECT_EQ(r.version, 1);
  EXPECT_EQ(r.consumed, h.size());
  ASSERT_TRUE(r.source);
  EXPECT_EQ(r.source->address.to_string(), "192.0.2.7");
  EXPECT_EQ(r.source->port, 51234);
}

TEST(proxy_v1, tcp6_and_unknown) {
  const auto r = parse("PROXY TCP6 2001:db8::5 2001:db8::1 4660 443\r\n");
  ASSERT_EQ(r.status, proxy_status::done) << r.what;
  ASSERT_TRUE(r.source);
  EXPECT_EQ(r.source->address.to_string(), "2001:db8::5");
  EXPECT_EQ(r.source->port, 4660);
  for (const char* u : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY UNKNOWN whatever\r\n"}) {
    const auto k = parse(u);
    EXPECT_EQ(k.status, proxy_status::done) << u;
    EXPECT_FALSE(k.source) << u;
    EXPECT_EQ(k.consumed, std::string_view(u).size());
  }
}

TEST(proxy_v1, the_longest_header_is_107_bytes) {
  const std::string longest =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  ASSERT_EQ(longest.size(), proxy_v1_max);
  EXPECT_EQ(parse(longest).status, proxy_status::done);
  // Without a CRLF within 107 bytes: refused, however the rest goes on.
  EXPECT_EQ(parse("PROXY UNKNOWN " + std::string(93, 'x')).status, proxy_status::invalid);
  EXPECT_EQ(parse("PROXY UNKNOWN " + std::string(92, 'x')).status, proxy_status::need_more);
}

TEST(proxy_v1, every_prefix_of_a_valid_header_needs_more) {
  const std::string h = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n";
  for (std::size_t n = 0; n < h.size(); ++n)
    EXPECT_EQ(parse(h.substr(0, n)).status, proxy_status::need_more) << n;
}

TEST(proxy_v1, malformed_headers_are_invalid) {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\n",         // LF without CR
           "PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",           // missing port
           "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443 9\r\n",     // extra field
           "PROXY TCP4  192.0.2.7 198.51.100.1 51234 443\r\n",      // double space
           "PROXY TCP4 192.0.2.256 198.51.100.1 51234 443\r\n",     // bad octet
           "PROXY TCP4 2001:db8::5 198.51.100.1 51234 443\r\n",     // v6 in TCP4
           "PROXY TCP6 192.0.2.7 2001:db8::1 51234 443\r\n",        // v4 in TCP6
           "PROXY TCP6 fe80::1%eth0 2001:db8::1 51234 443\r\n",     // scope id
           "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",       // port too big
           "PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n",        // leading zero
           "PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",          // sign
           "PROXY UDP4 192.0.2.7 198.51.100.1 51234 443\r\n",       // protocol
           "PROXY UNKNOWNX\r\n",                                   // protocol
           "PROXY TCP4 192.0.2.7\r198.51.100.1 51234 443\r\n",     // CR inside
           "PROXY TCP4 192.0.2.7\t198.51.100.1 51234 443\r\n",     // control character
           "proxy TCP4 192.0.2.7 198.51.100.1 51234 443\r\n",       // case
           "GET / HTTP/1.1\r\n",                                    // no header at all
           "\x16\x03\x01\x02\x00",                                  // a TLS ClientHello
       }) {
    const auto r = parse(bad);
    EXPECT_EQ(r.status, proxy_status::invalid) << bad;
    EXPECT_FALSE(r.what.empty());
  }
  // Rejected as soon as a byte departs from the grammar, without waiting for more.
  EXPECT_EQ(parse("PROXX").status, proxy_status::invalid);
  EXPECT_EQ(parse("PROXY TCP4 1.2.3.4\x01").status, proxy_status::invalid);
}

TEST(proxy_v2, inet_gives_the_source_and_skips_tlvs) {
  const std::string tlv("\x04\x00\x03" "abc" "\xEE\x00\x00", 9);  // NOOP-like TLVs, skipped
  const std::string h = v2(0x21, 0x11, inet4(tlv));
  const auto r = parse(h + "\x16\x03\x01");
  ASSERT_EQ(r.status, proxy_status::done) << r.what;
  EXPECT_EQ(r.version, 2);
  EXPECT_EQ(r.consumed, h.size());
  ASSERT_TRUE(r.source);
  EXPECT_EQ(r.source->address.to_string(), "192.0.2.7");
  EXPECT_EQ(r.source->port, 51234);
}

TEST(proxy_v2, inet6_and_local) {
  const auto r = parse(v2(0x21, 0x21, inet6()));
  ASSERT_EQ(r.status, proxy_status::done) << r.what;
  ASSERT_TRUE(r.source);
  EXPECT_EQ(r.source->address.to_string(), "2001:db8::5");
  EXPECT_EQ(r.source->port, 0x1234);
  // LOCAL: the balancer speaking for itself; any family, addresses ignored.
  for (int fam : {0x00, 0x11, 0x21}) {
    const std::string payload = fam == 0x00 ? std::string() : fam == 0x11 ? inet4() : inet6();
    const auto l = parse(v2(0x20, static_cast<std::uint8_t>(fam), payload));
    EXPECT_EQ(l.status, proxy_status::done) << int(fam);
    EXPECT_FALSE(l.source);
  }
  // PROXY with UNSPEC or UNIX: nothing usable, the connection's own address.
  EXPECT_EQ(parse(v2(0x21, 0x00, "")).status, proxy_status::done);
  EXPECT_EQ(parse(v2(0x21, 0x31, std::string(216, 'u'))).status, proxy_status::done);
  EXPECT_FALSE(parse(v2(0x21, 0x31, std::string(216, 'u'))).source);
}

TEST(proxy_v2, every_prefix_of_a_valid_header_needs_more) {
  const std::string h = v2(0x21, 0x11, inet4("\x04\x00\x01x"));
  for (std::size_t n = 0; n < h.size(); ++n)
    EXPECT_EQ(parse(h.substr(0, n)).status, proxy_status::need_more) << n;
}

TEST(proxy_v2, malformed_headers_are_invalid) {
  EXPECT_EQ(parse(v2(0x11, 0x11, inet4())).status, proxy_status::invalid);  // version 1 in binary
  EXPECT_EQ(parse(v2(0x31, 0x11, inet4())).status, proxy_status::invalid);  // version 3
  EXPECT_EQ(parse(v2(0x22, 0x11, inet4())).status, proxy_status::invalid);  // command 2
  EXPECT_EQ(parse(v2(0x21, 0x41, inet4())).status, proxy_status::invalid);  // family 4
  EXPECT_EQ(parse(v2(0x21, 0x13, inet4())).status, proxy_status::invalid);  // transport 3
  EXPECT_EQ(parse(v2(0x21, 0x12, inet4())).status, proxy_status::invalid);  // datagram
  EXPECT_EQ(parse(v2(0x21, 0x11, inet4().substr(0, 11))).status, proxy_status::invalid);  // short block
  EXPECT_EQ(parse(v2(0x21, 0x21, inet4())).status, proxy_status::invalid);  // 12 bytes for INET6
  // Oversized: refused from the 16 bytes alone, without waiting for the announced length.
  std::string big = sig + std::string("\x21\x11\xFF\xFF", 4);
  EXPECT_EQ(parse(big).status, proxy_status::invalid);
  std::string over = sig + std::string("\x21\x11", 2);
  over += static_cast<char>((proxy_v2_max_payload + 1) >> 8);
  over += static_cast<char>((proxy_v2_max_payload + 1) & 0xFF);
  EXPECT_EQ(parse(over).status, proxy_status::invalid);
  EXPECT_EQ(parse(v2(0x21, 0x11, inet4(std::string(proxy_v2_max_payload - 12, '\0')))).status,
            proxy_status::done);
  // A wrong signature byte.
  std::string h = v2(0x21, 0x11, inet4());
  h[7] = 'X';
  EXPECT_EQ(parse(h).status, proxy_status::invalid);
  EXPECT_EQ(parse(std::string("\x0D\x0A\x0D\x0B", 4)).status, proxy_status::invalid);
}

TEST(proxy_header, empty_input_needs_more_and_other_bytes_are_invalid) {
  EXPECT_EQ(parse("").status, proxy_status::need_more);
  EXPECT_EQ(parse_proxy_header(std::span<const std::uint8_t>()).status, proxy_status::need_more);
  const std::uint8_t zero = 0;
  EXPECT_EQ(parse_proxy_header({&zero, 1}).status, proxy_status::invalid);
}

}  // namespace
}  // namespace mles::proto
