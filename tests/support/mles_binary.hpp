// Helpers for end-to-end tests of the real `mles` executable: start it and learn its port
// from the start-up line, reserve free loopback ports for servers that must know each other's
// ports before they start, and format a child's stderr for failure messages.
#pragma once

#include "support/child_process.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mles::test {

// The mles executable under test: $MLES_TEST_BINARY when set (to run a test binary against
// another build of mles), else built (the one compiled with the tests).
std::string binary_under_test(std::string built);

// The port at the end of a "listening on 127.0.0.1:PORT" line: the last ':<digits>'.
std::optional<std::uint16_t> parse_port(const std::string& line);

// The lines as an indented block ("\n  | line" each), for failure messages.
std::string joined_lines(const std::vector<std::string>& lines);

// A started binary and the port it reported (0 when it did not report one; a test failure
// was then added with its stderr).
struct started_binary {
  std::unique_ptr<child_process> process;
  std::uint16_t port = 0;
};

// Starts args[0] with args (env: see child_process) and waits for its
// "mles <version> listening on <addr>:<port>" line (README, "Logging").
started_binary start_binary(std::vector<std::string> args, std::vector<std::string> env = {},
                            std::chrono::milliseconds startup_timeout = std::chrono::milliseconds{10'000});

// n distinct TCP ports that were free on 127.0.0.1 a moment ago: bound to port 0 together
// (so the kernel hands out distinct ones), read back and closed. Another process may take one
// before the server binds it; ports come from the ephemeral range, where that is rare.
// Throws std::runtime_error when sockets cannot be bound.
std::vector<std::uint16_t> free_loopback_ports(std::size_t n);

}  // namespace mles::test
