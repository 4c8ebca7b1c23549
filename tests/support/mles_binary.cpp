// mles_binary: start-up line parsing and loopback port reservation for end-to-end tests.
#include "support/mles_binary.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace mles::test {

std::string binary_under_test(std::string built) {
  if (const char* p = std::getenv("MLES_TEST_BINARY"); p != nullptr && *p != '\0') return p;
  return built;
}

std::optional<std::uint16_t> parse_port(const std::string& line) {
  std::optional<std::uint16_t> port;
  for (std::size_t i = line.find(':'); i != std::string::npos; i = line.find(':', i + 1)) {
    std::size_t j = i + 1;
    unsigned long value = 0;
    while (j < line.size() && line[j] >= '0' && line[j] <= '9' && value <= 65535) {
      value = value * 10 + static_cast<unsigned long>(line[j] - '0');
      ++j;
    }
    if (j > i + 1 && value > 0 && value <= 65535) port = static_cast<std::uint16_t>(value);
  }
  return port;
}

std::string joined_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "\n  | " + l;
  return out;
}

started_binary start_binary(std::vector<std::string> args, std::vector<std::string> env,
                            std::chrono::milliseconds startup_timeout) {
  started_binary s;
  s.process = std::make_unique<child_process>(std::move(args), std::move(env));
  const auto line = s.process->wait_stderr_line("listening on ", startup_timeout);
  if (!line) {
    ADD_FAILURE() << "no 'listening on' line on stderr; stderr was:" << joined_lines(s.process->err_lines());
    return s;
  }
  const auto port = parse_port(*line);
  if (!port) {
    ADD_FAILURE() << "no port at the end of: " << *line;
    return s;
  }
  s.port = *port;
  return s;
}

std::vector<std::uint16_t> free_loopback_ports(std::size_t n) {
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  std::string failure;
  for (std::size_t i = 0; i < n && failure.empty(); ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      failure = std::string{"socket: "} + std::strerror(errno);
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      failure = std::string{"bind/getsockname 127.0.0.1:0: "} + std::strerror(errno);
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (const int fd : fds) ::close(fd);
  if (!failure.empty()) throw std::runtime_error("free_loopback_ports: " + failure);
  return ports;
}

}  // namespace mles::test
