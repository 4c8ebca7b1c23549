// Shared pieces of the integration tests: a GoogleTest fixture parametrised over plain and
// TLS that owns an in-process server, and assertions phrased as what a client sees.
#pragma once

#include "support/mles_auth.hpp"
#include "support/server_fixture.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mles::test {

using namespace std::chrono_literals;

// Base of TEST_P suites: GetParam() is the transport; start() runs a server for the test.
class server_test : public ::testing::TestWithParam<transport> {
 protected:
  server_fixture& start(const std::function<void(app::config&)>& tweak = {}) {
    srv_ = std::make_unique<server_fixture>(GetParam(), tweak);
    return *srv_;
  }
  server_fixture& srv() { return *srv_; }
  void TearDown() override { srv_.reset(); }

  std::unique_ptr<server_fixture> srv_;
};

inline std::string transport_name(const ::testing::TestParamInfo<transport>& info) {
  return to_string(info.param);
}

#define MLES_INSTANTIATE_OVER_TRANSPORTS(suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(over, suite,                                                         \
                           ::testing::Values(::mles::test::transport::plain,                    \
                                             ::mles::test::transport::tls),                     \
                           ::mles::test::transport_name)

inline std::string shorten(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  if (s.size() > 80) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// The next data message the client reads is exactly (opcode, payload).
inline ::testing::AssertionResult receives(ws_client& c, std::uint8_t opcode, std::string_view payload,
                                           millis timeout = default_timeout) {
  const message m = c.read_message(timeout);
  if (!m.ok()) {
    return ::testing::AssertionFailure() << "expected " << opcode_name(opcode) << " '" << shorten(payload)
                                         << "' but the read ended: " << to_string(m.status) << " "
                                         << c.error();
  }
  if (m.opcode == op::close) {
    return ::testing::AssertionFailure() << "expected " << opcode_name(opcode) << " '" << shorten(payload)
                                         << "' but got close " << m.close_code;
  }
  if (m.opcode != opcode || m.payload != payload) {
    return ::testing::AssertionFailure() << "expected " << opcode_name(opcode) << " '" << shorten(payload)
                                         << "' but got " << opcode_name(m.opcode) << " '" << shorten(m.payload)
                                         << "'";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult receives_text(ws_client& c, std::string_view payload,
                                                millis timeout = default_timeout) {
  return receives(c, op::text, payload, timeout);
}

// The server sends a close frame (with this code when given), then ends the TCP connection.
inline ::testing::AssertionResult closes_with(ws_client& c, std::optional<std::uint16_t> code,
                                              millis timeout = default_timeout) {
  const auto got = c.expect_close(timeout);
  if (!got) return ::testing::AssertionFailure() << c.error();
  if (code && *got != *code) {
    return ::testing::AssertionFailure() << "close code " << *got << ", expected " << *code;
  }
  if (!c.wait_closed(timeout)) {
    return ::testing::AssertionFailure() << "close frame " << *got << " received but then: " << c.error();
  }
  return ::testing::AssertionSuccess();
}

// The session ends: a close frame (any code) then TCP close.
inline ::testing::AssertionResult session_closed(ws_client& c, millis timeout = default_timeout) {
  return closes_with(c, std::nullopt, timeout);
}

// The server ends the connection, with or without a close frame first.
inline ::testing::AssertionResult connection_ends(ws_client& c, millis timeout = default_timeout) {
  if (c.wait_closed(timeout)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << c.error();
}

// A joined member that reads the history it is sent: the frames in order, then a marker
// sent live by someone else proves nothing more was in the history.
struct expected_message {
  std::uint8_t opcode;
  std::string payload;
};

inline ::testing::AssertionResult receives_all(ws_client& c, const std::vector<expected_message>& expected) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    auto r = receives(c, expected[i].opcode, expected[i].payload);
    if (!r) return ::testing::AssertionFailure() << "message " << i << " of " << expected.size() << ": " << r.message();
  }
  return ::testing::AssertionSuccess();
}

inline expected_message text(std::string s) { return {op::text, std::move(s)}; }
inline expected_message binary(std::string s) { return {op::binary, std::move(s)}; }

}  // namespace mles::test
