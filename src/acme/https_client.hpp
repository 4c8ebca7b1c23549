// The ACME client's HTTPS/1.1 transport: performs one order_flow http_request against the CA
// (resolve ─► connect ─► TLS with SNI + certificate verification ─► write ─► read) on an Asio
// executor and hands back the order_flow http_response. One connection per request.
#pragma once

#include "acme/order_flow.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace mles::acme {

// Whom the client trusts for the CA's HTTPS endpoint: the system's trust store (public CAs
// such as Let's Encrypt) or one PEM CA file (a test CA such as pebble, --acme-ca-cert).
// Immutable once made; copies share the context; safe to use from any thread.
class client_tls {
 public:
  static boost::system::result<client_tls> system_trust();
  static boost::system::result<client_tls> from_ca_file(const std::string& pem_path);

  boost::asio::ssl::context& context() const noexcept { return *context_; }

 private:
  explicit client_tls(std::shared_ptr<boost::asio::ssl::context> context) : context_(std::move(context)) {}

  std::shared_ptr<boost::asio::ssl::context> context_;
};

struct https_limits {
  std::chrono::milliseconds connect_timeout{10'000};   // resolve + connect + TLS handshake
  std::chrono::milliseconds exchange_timeout{30'000};  // write the request, read the response
  std::size_t max_body_bytes = 1u << 20;               // ACME bodies and PEM chains are small
};

using https_handler = std::function<void(boost::system::error_code, http_response)>;

// Sends request (an https:// URL) and calls done exactly once, never inline, on ex: with the
// response for any HTTP status (the order flow judges statuses), or with an error when no
// response arrived: an unusable URL (errc::invalid_argument), resolution, connection or TLS
// failure (certificate verification included), a body over the limit, or
// boost::beast::error::timeout at a deadline. Never throws. ex may be multi-threaded: the
// exchange runs on a strand of it. An exchange in flight ends by its own deadlines.
void request(boost::asio::any_io_executor ex, http_request request, const client_tls& tls,
             const https_limits& limits, https_handler done);

}  // namespace mles::acme
