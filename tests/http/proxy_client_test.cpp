// Tests for the reverse proxy forwarding client against a real upstream on 127.0.0.1:0:
// what arrives upstream, what comes back, and the 502/504 paths (done called exactly once).
#include "http/proxy_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

namespace mles::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using upstream_request = bhttp::request<bhttp::string_body>;

struct raw_reply {
  std::string bytes;       // written as they are
  bool hold_open = false;  // keep the connection open afterwards instead of closing it
};

// A real HTTP/1.1 upstream with its own thread and io_context: records each request and
// answers it with reply(request). Stopping the io_context in the destructor ends every wait.
class test_upstream {
 public:
  explicit test_upstream(std::function<raw_reply(const upstream_request&)> reply)
      : reply_(std::move(reply)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    do_accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~test_upstream() {
    ioc_.stop();
    thread_.join();
  }

  upstream address() const { return {"127.0.0.1", acceptor_.local_endpoint().port()}; }

  std::vector<upstream_request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  struct connection {
    explicit connection(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    beast::flat_buffer buffer;
    upstream_request request;
    raw_reply reply;
  };

  void do_accept() {
    acceptor_.async_accept([this](const beast::error_code& ec, tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<connection>(std::move(socket));
      bhttp::async_read(c->socket, c->buffer, c->request,
                        [this, c](const beast::error_code& e, std::size_t) { on_read(c, e); });
      do_accept();
    });
  }

  void on_read(const std::shared_ptr<connection>& c, const beast::error_code& ec) {
    if (ec) return;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(c->request);
    }
    c->reply = reply_(c->request);
    asio::async_write(c->socket, asio::buffer(c->reply.bytes), [this, c](const beast::error_code&, std::size_t) {
      if (c->reply.hold_open) return held_.push_back(c);
      beast::error_code ignored;
      c->socket.shutdown(tcp::socket::shutdown_send, ignored);
      c->socket.close(ignored);
    });
  }

  std::function<raw_reply(const upstream_request&)> reply_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<connection>> held_;  // upstream's thread only
  mutable std::mutex mutex_;
  std::vector<upstream_request> requests_;
  std::thread thread_;
};

raw_reply respond(std::string bytes) { return {std::move(bytes), false}; }

const std::string ok_reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct forward_result {
  int calls = 0;
  proxy_response response;
};

// Runs one forward on a fresh io_context, bounded. The loop must run out of work: nothing
// of the exchange outlives done.
forward_result run_forward(const upstream& to, proxy_request req, proxy_limits limits = {}) {
  asio::io_context ioc;
  forward_result result;
  forward(ioc.get_executor(), to, std::move(req), limits, [&](proxy_response r) {
    ++result.calls;
    result.response = std::move(r);
  });
  ioc.run_for(10s);
  EXPECT_TRUE(ioc.stopped()) << "exchange still pending after 10 s";
  EXPECT_EQ(result.calls, 1);
  return result;
}

proxy_request get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
  return {bhttp::verb::get, std::move(target), std::move(headers), {}};
}

std::vector<std::string> values(const std::vector<std::pair<std::string, std::string>>& headers,
                                std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [n, v] : headers)
    if (beast::iequals(n, name)) out.push_back(v);
  return out;
}

TEST(proxy_forward, forwards_get_with_query_and_the_target_as_given) {
  test_upstream up([](const upstream_request&) { return respond(ok_reply); });
  const auto r = run_forward(up.address(), get("/v1/items/%41?q=a%20b&x=1"));
  EXPECT_EQ(r.response.status, 200u);
  EXPECT_EQ(r.response.body, "ok");
  const auto reqs = up.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method(), bhttp::verb::get);
  EXPECT_EQ(reqs[0].target(), "/v1/items/%41?q=a%20b&x=1");
  EXPECT_TRUE(reqs[0].body().empty());
}

TEST(proxy_forward, preserves_method_and_body_for_post_and_put) {
  test_upstream up([](const upstream_request&) { return respond(ok_reply); });
  for (auto verb : {bhttp::verb::post, bhttp::verb::put}) {
    const auto r = run_forward(up.address(), {verb, "/submit", {{"Content-Type", "application/json"}}, "{\"a\":1}"});
    EXPECT_EQ(r.response.status, 200u);
  }
  const auto reqs = up.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method(), bhttp::verb::post);
  EXPECT_EQ(reqs[1].method(), bhttp::verb::put);
  for (const auto& req : reqs) {
    EXPECT_EQ(req.body(), "{\"a\":1}");
    EXPECT_EQ(req[bhttp::field::content_length], "7");
    EXPECT_EQ(req[bhttp::field::content_type], "application/json");
  }
}

TEST(proxy_forward, rewrites_host_to_the_upstream) {
  test_upstream up([](const upstream_request&) { return respond(ok_reply); });
  run_forward(up.address(), get("/", {{"Host", "chat.example.com"}}));
  const auto reqs = up.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].count(bhttp::field::host), 1u);
  EXPECT_EQ(reqs[0][bhttp::field::host], "127.0.0.1:" + std::to_string(up.address().port));
}

TEST(proxy_forward, drops_hop_by_hop_request_headers_and_keeps_the_rest) {
  test_upstream up([](const upstream_request&) { return respond(ok_reply); });
  run_forward(up.address(), {bhttp::verb::post,
                             "/",
                             {{"Connection", "keep-alive, X-Hop"},
                              {"X-Hop", "secret"},
                              {"Keep-Alive", "timeout=5"},
                              {"Proxy-Connection", "keep-alive"},
                              {"TE", "trailers"},
                              {"Trailer", "X-Checksum"},
                              {"Transfer-Encoding", "chunked"},
                              {"Upgrade", "websocket"},
                              {"Content-Length", "999"},
                              {"X-Forwarded-For", "192.0.2.7"},
                              {"Accept", "text/html"},
                              {"Cookie", "a=1"}},
                             "body"});
  const auto reqs = up.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& req = reqs[0];
  for (auto name : {"X-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"})
    EXPECT_EQ(req.count(name), 0u) << name;
  EXPECT_EQ(req[bhttp::field::connection], "close");
  EXPECT_EQ(req[bhttp::field::content_length], "4");
  EXPECT_EQ(req.body(), "body");
  EXPECT_EQ(req["X-Forwarded-For"], "192.0.2.7");
  EXPECT_EQ(req[bhttp::field::accept], "text/html");
  EXPECT_EQ(req[bhttp::field::cookie], "a=1");
}

TEST(proxy_forward, returns_upstream_status_headers_and_body) {
  test_upstream up([](const upstream_request& req) {
    const std::string status = req.target() == "/missing" ? "404 Not Found" : "500 Internal Server Error";
    return respond("HTTP/1.1 " + status +
                   "\r\nContent-Type: application/json\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"
                   "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Upstream: yes\r\n"
                   "Content-Length: 9\r\n\r\n{\"e\":\"x\"}");
  });
  for (auto [target, status] : {std::pair{"/missing", 404u}, std::pair{"/boom", 500u}}) {
    const auto r = run_forward(up.address(), get(target));
    EXPECT_EQ(r.response.status, status);
    EXPECT_EQ(r.response.body, "{\"e\":\"x\"}");
    const auto& h = r.response.headers;
    EXPECT_EQ(values(h, "Set-Cookie"), (std::vector<std::string>{"a=1; Path=/", "b=2"}));
    EXPECT_EQ(values(h, "Content-Type"), std::vector<std::string>{"application/json"});
    EXPECT_EQ(values(h, "X-Upstream"), std::vector<std::string>{"yes"});
    for (auto name : {"Connection", "X-Hop", "Keep-Alive", "Content-Length"})
      EXPECT_TRUE(values(h, name).empty()) << name;
  }
}

TEST(proxy_forward, decodes_a_chunked_response_and_drops_transfer_encoding) {
  test_upstream up([](const upstream_request&) {
    return respond(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
  });
  const auto r = run_forward(up.address(), get("/"));
  EXPECT_EQ(r.response.status, 200u);
  EXPECT_EQ(r.response.body, "hello, world");
  EXPECT_TRUE(values(r.response.headers, "Transfer-Encoding").empty());
  EXPECT_EQ(values(r.response.headers, "Content-Type"), std::vector<std::string>{"text/plain"});
}

TEST(proxy_forward, skips_interim_responses) {
  test_upstream up([](const upstream_request&) { return respond("HTTP/1.1 100 Continue\r\n\r\n" + ok_reply); });
  const auto r = run_forward(up.address(), {bhttp::verb::post, "/", {{"Expect", "100-continue"}}, "x"});
  EXPECT_EQ(r.response.status, 200u);
  EXPECT_EQ(r.response.body, "ok");
}

TEST(proxy_forward, reads_no_body_after_a_head_response) {
  // The upstream keeps the connection open: waiting for the 10 announced bytes would time out.
  test_upstream up([](const upstream_request&) {
    return raw_reply{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true};
  });
  const auto r = run_forward(up.address(), {bhttp::verb::head, "/", {}, {}}, {.response_timeout = 2s});
  EXPECT_EQ(r.response.status, 200u);
  EXPECT_TRUE(r.response.body.empty());
}

void expect_generated(const proxy_response& r, unsigned status, std::string_view body_start) {
  EXPECT_EQ(r.status, status);
  EXPECT_TRUE(r.body.starts_with(body_start)) << r.body;
  EXPECT_TRUE(r.body.ends_with("\n"));
  EXPECT_EQ(std::count(r.body.begin(), r.body.end(), '\n'), 1);
  EXPECT_EQ(values(r.headers, "Content-Type"), std::vector<std::string>{"text/plain; charset=utf-8"});
}

TEST(proxy_forward, answers_502_when_the_upstream_is_down) {
  std::uint16_t closed_port = 0;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  const auto r = run_forward({"127.0.0.1", closed_port}, get("/"));
  expect_generated(r.response, 502, "bad gateway: upstream unreachable");
}

TEST(proxy_forward, answers_504_when_the_upstream_never_answers) {
  test_upstream up([](const upstream_request&) { return raw_reply{"", true}; });
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_forward(up.address(), get("/"), {.response_timeout = 300ms});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  expect_generated(r.response, 504, "gateway timeout");
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 5s);
}

TEST(proxy_forward, answers_502_when_the_response_exceeds_the_limit) {
  test_upstream up([](const upstream_request& req) {
    const std::string body(4096, 'x');
    if (req.target() == "/chunked")
      return respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + body + "\r\n0\r\n\r\n");
    return respond("HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + body);
  });
  for (auto target : {"/sized", "/chunked"}) {
    const auto r = run_forward(up.address(), get(target), {.max_response_bytes = 1024});
    expect_generated(r.response, 502, "bad gateway: response too large");
  }
}

TEST(proxy_forward, answers_502_when_the_upstream_closes_mid_response) {
  test_upstream up([](const upstream_request&) { return respond("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"); });
  const auto r = run_forward(up.address(), get("/"));
  expect_generated(r.response, 502, "bad gateway: upstream closed the connection");
}

TEST(proxy_forward, answers_502_for_a_malformed_response) {
  test_upstream up([](const upstream_request&) { return respond("SMTP ready\r\n\r\n"); });
  const auto r = run_forward(up.address(), get("/"));
  expect_generated(r.response, 502, "bad gateway: malformed response");
}

}  // namespace
}  // namespace mles::http
