// Reverse proxy forwarding client: sends one client request to a configured upstream
// (see proxy_rules.hpp) over a fresh HTTP/1.1 connection and hands back the response to relay.
// data path: request loop ─► proxy_table.match ─► forward ─► upstream ─► done(response) ─► client
#pragma once

#include "http/proxy_rules.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace mles::http {

struct proxy_request {
  boost::beast::http::verb method;
  std::string target;  // path + query for the upstream (prefix already stripped)
  // The client's headers as received, plus any the caller adds (e.g. X-Forwarded-For).
  // Host, hop-by-hop headers and Content-Length are not forwarded.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // bounded by the caller
};

struct proxy_response {
  unsigned status = 502;
  // To send to the client: the upstream's headers without hop-by-hop headers and without
  // Content-Length (the caller sets it; for HEAD it has the upstream's value no longer).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct proxy_limits {
  std::chrono::milliseconds connect_timeout{5'000};    // resolve + connect
  std::chrono::milliseconds response_timeout{30'000};  // whole exchange after connect
  std::size_t max_response_bytes = 64u << 20;          // response body
};

// Forwards one request to the upstream and calls done exactly once, on ex, with the
// upstream's response or a generated error: 502 (upstream unreachable, reset, malformed or
// too-large response) or 504 (timeout). Never throws; safe to call from the event loop
// (resolution of the upstream host is asynchronous too). done is never called inline.
// One connection per request (Connection: close to the upstream). Interim 1xx responses
// are skipped. ex may be multi-threaded: the exchange runs on a strand of it.
void forward(boost::asio::any_io_executor ex, const upstream& to, proxy_request req,
             const proxy_limits& limits, std::function<void(proxy_response)> done);

}  // namespace mles::http
