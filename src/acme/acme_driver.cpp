// Runs an order_flow on an Asio strand (see acme_driver.hpp): each action the flow returns is
// carried out, and its result fed back, until done or failed.
#include "acme/acme_driver.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <string>
#include <utility>

namespace mles::acme {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

failed driver_failure(error_code error, std::string detail) {
  return failed{error, {}, std::move(detail), std::nullopt};
}

}  // namespace

acme_driver::acme_driver(asio::any_io_executor ex, order_flow flow, client_tls tls, challenge_hooks hooks,
                         driver_limits limits, finished_handler finished)
    : ex_(ex),
      strand_(asio::make_strand(ex)),
      wait_timer_(strand_),
      deadline_timer_(strand_),
      flow_(std::move(flow)),
      tls_(std::move(tls)),
      hooks_(std::move(hooks)),
      limits_(limits),
      finished_(std::move(finished)) {}

std::shared_ptr<acme_driver> acme_driver::start(asio::any_io_executor ex, order_flow flow, client_tls tls,
                                                challenge_hooks hooks, driver_limits limits,
                                                finished_handler finished) {
  auto driver = std::make_shared<acme_driver>(ex, std::move(flow), std::move(tls), std::move(hooks), limits,
                                              std::move(finished));
  asio::post(driver->strand_, [self = driver] {
    self->deadline_timer_.expires_after(self->limits_.total_timeout);
    self->deadline_timer_.async_wait([self](const error_code& ec) {
      if (ec) return;
      const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(self->limits_.total_timeout).count();
      self->finish(driver_failure(asio::error::timed_out,
                                  "order not finished within " + std::to_string(seconds) + " s"));
    });
    self->run(self->flow_.start());
  });
  return driver;
}

void acme_driver::cancel() {
  asio::post(strand_, [self = shared_from_this()] {
    self->finish(driver_failure(asio::error::operation_aborted, "order cancelled"));
  });
}

void acme_driver::run(action next) {
  if (finished_called_) return;
  if (++steps_ > limits_.max_steps) {
    return finish(driver_failure(boost::system::errc::make_error_code(boost::system::errc::value_too_large),
                                 "order flow took more than " + std::to_string(limits_.max_steps) + " steps"));
  }
  const std::uint64_t step = steps_;
  if (auto* req = std::get_if<http_request>(&next)) {
    const http_method method = req->method;
    std::string url = req->url;
    request(strand_, std::move(*req), tls_, limits_.https,
            [self = shared_from_this(), step, method, url = std::move(url)](const error_code& ec,
                                                                            http_response response) {
              self->on_response(step, method, url, ec, std::move(response));
            });
  } else if (auto* challenge = std::get_if<provision_challenge>(&next)) {
    if (!hooks_.provision) {
      return finish(driver_failure(boost::system::errc::make_error_code(boost::system::errc::not_supported),
                                   "no responder for " + std::string(to_string(challenge->type))));
    }
    provisioned_.push_back(*challenge);
    // ready may come from any thread, or never (the total deadline then ends the attempt).
    auto ready = [weak = weak_from_this(), strand = strand_, step] {
      asio::post(strand, [weak, step] {
        if (auto self = weak.lock()) self->on_ready(step);
      });
    };
    hooks_.provision(provisioned_.back(), std::move(ready));
  } else if (auto* pause = std::get_if<wait>(&next)) {
    wait_timer_.expires_after(pause->duration);
    wait_timer_.async_wait(
        [self = shared_from_this(), step](const error_code& ec) { self->on_waited(step, ec); });
  } else if (auto* success = std::get_if<done>(&next)) {
    finish(std::move(*success));
  } else {
    finish(std::move(std::get<failed>(next)));
  }
}

void acme_driver::on_response(std::uint64_t step, http_method method, const std::string& url, const error_code& ec,
                              http_response response) {
  if (finished_called_ || step != steps_) return;
  if (hooks_.exchanged) hooks_.exchanged(method, url, ec, response);
  if (ec) return finish(driver_failure(ec, "request to " + url + " failed: " + ec.message()));
  run(flow_.on_response(response, std::chrono::system_clock::now()));
}

void acme_driver::on_ready(std::uint64_t step) {
  if (finished_called_ || step != steps_) return;
  run(flow_.on_provisioned());
}

void acme_driver::on_waited(std::uint64_t step, const error_code& ec) {
  if (ec || finished_called_ || step != steps_) return;
  run(flow_.on_waited());
}

void acme_driver::finish(order_outcome outcome) {
  if (finished_called_) return;
  finished_called_ = true;
  wait_timer_.cancel();
  deadline_timer_.cancel();
  if (hooks_.withdraw) {
    for (const provision_challenge& challenge : provisioned_) hooks_.withdraw(challenge);
  }
  provisioned_.clear();
  asio::post(ex_, [finished = std::move(finished_), outcome = std::move(outcome)]() mutable {
    if (finished) finished(std::move(outcome));
  });
}

}  // namespace mles::acme
