// Runs one order_flow (one ACME order attempt) to its end on an Asio executor: its
// http_requests go through https_client, its waits through a timer, its challenges to the
// caller's responders (hooks), and its outcome, done or failed, to a callback.
// data path: renewer ─► acme_driver ─► order_flow ⇄ https_client ⇄ CA; hooks ─► responders
#pragma once

#include "acme/https_client.hpp"
#include "acme/order_flow.hpp"
#include "acme/p256_key.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace mles::acme {

// How the driver reaches the responders, and who watches its exchanges. provision makes the
// responder answer the challenge and then calls ready (once, from any thread); withdraw is
// called once for every challenge provisioned, when the order attempt ends (however it ends);
// exchanged (optional) sees each request's method and URL with its result, for debug logs.
// All are called on the driver's strand and must not block.
struct challenge_hooks {
  std::function<void(const provision_challenge&, std::function<void()> ready)> provision;
  std::function<void(const provision_challenge&)> withdraw;
  std::function<void(http_method, const std::string& url, const boost::system::error_code&, const http_response&)>
      exchanged;
};

struct driver_limits {
  std::chrono::milliseconds total_timeout{std::chrono::minutes(10)};  // the whole order attempt
  unsigned max_steps = 1000;  // actions taken from the flow; a runaway flow ends in failed
  https_limits https;
};

using order_outcome = std::variant<done, failed>;

// One order attempt. Owned by its pending operations and by the caller's handle (start()'s
// result); thread-safety: cancel() from any thread, everything else runs on its strand.
class acme_driver : public std::enable_shared_from_this<acme_driver> {
 public:
  using finished_handler = std::function<void(order_outcome)>;

  // Starts the flow; finished is called exactly once, never inline, on ex. Failures are
  // the flow's (the CA's problem verbatim), a transport error (detail names the URL), a
  // hook that never became ready within total_timeout, asio::error::timed_out at the total
  // deadline, or asio::error::operation_aborted after cancel().
  static std::shared_ptr<acme_driver> start(boost::asio::any_io_executor ex, order_flow flow, client_tls tls,
                                            challenge_hooks hooks, driver_limits limits,
                                            finished_handler finished);

  // Ends the attempt with operation_aborted (no-op once finished). A request in flight is
  // abandoned: it ends by its own deadlines and its response is ignored.
  void cancel();

  acme_driver(boost::asio::any_io_executor ex, order_flow flow, client_tls tls, challenge_hooks hooks,
              driver_limits limits, finished_handler finished);

 private:
  void run(action next);
  void on_response(std::uint64_t step, http_method method, const std::string& url,
                   const boost::system::error_code& ec, http_response response);
  void on_ready(std::uint64_t step);
  void on_waited(std::uint64_t step, const boost::system::error_code& ec);
  void finish(order_outcome outcome);

  boost::asio::any_io_executor ex_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer wait_timer_;
  boost::asio::steady_timer deadline_timer_;
  order_flow flow_;
  client_tls tls_;
  challenge_hooks hooks_;
  driver_limits limits_;
  finished_handler finished_;
  std::vector<provision_challenge> provisioned_;
  std::uint64_t steps_ = 0;  // also tags each pending event, so a stale one is ignored
  bool finished_called_ = false;
};

}  // namespace mles::acme
