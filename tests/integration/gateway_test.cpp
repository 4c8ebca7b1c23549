// The redirect listener (--redirect, --http-port) and the reverse proxy (--proxy) as a client
// sees them from the real server, plain and TLS, with a real upstream on loopback.
#include "integration_test.hpp"
#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace mles::test {
namespace {

using namespace std::chrono_literals;

// A one-thread HTTP/1.1 upstream on 127.0.0.1: records each request, answers with a fixed
// response and closes. Every wait is bounded.
class upstream_server {
 public:
  explicit upstream_server(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~upstream_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      const auto deadline = steady::now() + 5s;
      // Head, then Content-Length bytes of body.
      for (;;) {
        const auto end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
          std::size_t length = 0;
          const auto cl = in.find("Content-Length: ");
          if (cl != std::string::npos && cl < end) length = std::stoul(in.substr(cl + 16));
          if (in.size() >= end + 4 + length) break;
        }
        pollfd q{c, POLLIN, 0};
        if (steady::now() > deadline || ::poll(&q, 1, 100) < 0) break;
        if (!(q.revents & POLLIN)) continue;
        char buf[4096];
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(in);
      }
      (void)::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  std::string response_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

class mles_gateway : public server_test {
 protected:
  std::unique_ptr<http_client> client_on(std::uint16_t port, transport mode) {
    auto c = std::make_unique<http_client>();
    connect_options o = srv().client_options();
    o.mode = mode;
    EXPECT_TRUE(c->connect(port, o)) << c->error();
    return c;
  }
};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_gateway);

TEST_P(mles_gateway, redirects_http_to_https_keeping_path_and_query) {
  auto& s = start([](app::config& c) {
    c.redirect = true;
    c.http_port = 0;
    c.domains = {"localhost", "example.test"};
  });
  const std::uint16_t http_port = s.server().redirect_port();
  ASSERT_NE(http_port, 0);
  auto c = client_on(http_port, transport::plain);
  const http_reply r = c->exchange(http_request("GET", "/chat/room?x=1&y=2", "example.test:80"));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.code, 301) << r.describe();
  // The TLS port here is not 443, so it is named in the target.
  EXPECT_EQ(r.header("Location"), "https://example.test:" + std::to_string(s.port()) + "/chat/room?x=1&y=2");
  // Keep-alive: a second request on the same connection; unknown host → 404, no redirect.
  const http_reply unknown = c->exchange(http_request("GET", "/", "evil.test"));
  ASSERT_TRUE(unknown.ok()) << unknown.describe();
  EXPECT_EQ(unknown.code, 404);
  EXPECT_FALSE(unknown.header("Location"));
  const http_reply post = c->exchange(http_request("POST", "/", "localhost", {{"Content-Length", "0"}}));
  ASSERT_TRUE(post.ok()) << post.describe();
  EXPECT_EQ(post.code, 405);
}

TEST_P(mles_gateway, redirect_port_refuses_websocket_upgrades) {
  auto& s = start([](app::config& c) {
    c.redirect = true;
    c.http_port = 0;
  });
  auto c = client_on(s.server().redirect_port(), transport::plain);
  const http_reply r = c->exchange(http_request("GET", "/", "localhost",
                                                {{"Upgrade", "websocket"},
                                                 {"Connection", "Upgrade"},
                                                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                                 {"Sec-WebSocket-Version", "13"},
                                                 {"Sec-WebSocket-Protocol", "mles-websocket"}}));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.code, 400);
}

TEST_P(mles_gateway, proxies_a_prefix_to_its_upstream_with_the_prefix_stripped) {
  upstream_server up("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Upstream: yes\r\n"
                     "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"
                     "{\"ok\":true}");
  upstream_server other("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nshort");
  auto& s = start([&](app::config& c) {
    c.proxies = {{"api/keeper", "http://127.0.0.1:" + std::to_string(up.port())},
                 {"api", "http://127.0.0.1:" + std::to_string(other.port())}};
  });
  auto c = client_on(s.port(), GetParam());
  const http_reply r = c->exchange(http_request("POST", "/api/keeper/items?id=7", "localhost",
                                                {{"X-Client", "kept"}, {"Content-Type", "text/plain"}, {"Content-Length", "7"}},
                                                "payload"));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.code, 201) << r.describe();
  EXPECT_EQ(r.body, "{\"ok\":true}");
  EXPECT_EQ(r.header("X-Upstream"), "yes");
  EXPECT_EQ(r.count("Set-Cookie"), 2u);
  const auto seen = up.requests();
  ASSERT_EQ(seen.size(), 1u);
  // Longest prefix won, prefix stripped, query, method, headers and body kept, Host rewritten.
  EXPECT_EQ(seen[0].substr(0, seen[0].find("\r\n")), "POST /items?id=7 HTTP/1.1");
  EXPECT_NE(seen[0].find("X-Client: kept\r\n"), std::string::npos) << seen[0];
  EXPECT_NE(seen[0].find("Host: 127.0.0.1:" + std::to_string(up.port())), std::string::npos) << seen[0];
  EXPECT_EQ(seen[0].substr(seen[0].size() - 7), "payload");
  EXPECT_TRUE(other.requests().empty());
  // The connection stays usable: the shorter prefix goes to the other upstream.
  const http_reply r2 = c->exchange(http_request("GET", "/api/x", "localhost"));
  ASSERT_TRUE(r2.ok()) << r2.describe();
  EXPECT_EQ(r2.body, "short");
}

TEST_P(mles_gateway, answers_502_when_the_upstream_is_down) {
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  const int closed_port = ntohs(a.sin_port);
  ::close(probe);  // nothing listens there now
  auto& s = start([&](app::config& c) { c.proxies = {{"down", "http://127.0.0.1:" + std::to_string(closed_port)}}; });
  auto c = client_on(s.port(), GetParam());
  const http_reply r = c->exchange(http_request("GET", "/down/x", "localhost"));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.code, 502) << r.describe();
}

}  // namespace
}  // namespace mles::test
