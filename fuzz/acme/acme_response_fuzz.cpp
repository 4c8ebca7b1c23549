// libFuzzer target for ACME response parsing: every resource parser, Retry-After, the PEM
// chain helpers, and the order flow's first step fed the bytes as a directory body, checking
// that nothing throws or crashes and that what is accepted meets the parsers' contracts.
#include "acme/certificate_chain.hpp"
#include "acme/error.hpp"
#include "acme/order_flow.hpp"
#include "acme/resources.hpp"
#include "acme/retry_after.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace {

using mles::acme::errc;

void require(bool condition) {
  if (!condition) std::abort();
}

template <class Result>
void require_parse_contract(const Result& result) {
  if (result) return;
  require(result.error() == errc::invalid_json || result.error() == errc::malformed_resource);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace acme = mles::acme;

  const auto directory = acme::parse_directory(text);
  require_parse_contract(directory);
  if (directory) require(!directory->new_nonce.empty() && !directory->new_account.empty() && !directory->new_order.empty());

  require_parse_contract(acme::parse_account(text));

  const auto order = acme::parse_order(text);
  require_parse_contract(order);
  if (order) require(!order->finalize.empty());

  const auto authorization = acme::parse_authorization(text);
  require_parse_contract(authorization);
  if (authorization) {
    for (const auto& c : authorization->challenges) require(!c.type.empty() && !c.url.empty());
  }

  require_parse_contract(acme::parse_challenge(text));

  const auto problem = acme::parse_problem(text);
  require_parse_contract(problem);
  if (problem) require(!problem->type.empty());

  const auto now = std::chrono::system_clock::time_point{} + std::chrono::hours{24 * 365 * 55};
  if (const auto wait = acme::parse_retry_after(text, now)) require(wait->count() >= 0);

  for (const auto& block : acme::split_pem_chain(text)) require(text.find(block.substr(0, block.size() - 1)) != text.npos);
  if (const auto validity = acme::read_leaf_validity(text); !validity) require(validity.error() == errc::invalid_pem);

  // The flow must turn any directory body into a request or a failure, never anything else.
  static const auto key = acme::p256_key::generate();
  require(key.has_value());
  acme::order_settings settings;
  settings.directory_url = "https://ca.test/dir";
  settings.names = {"mles.test"};
  acme::order_flow flow(settings, *key);
  flow.start();
  acme::http_response response;
  response.status = 200;
  response.body = std::string(text);
  const acme::action next = flow.on_response(response, now);
  require(std::holds_alternative<acme::http_request>(next) || std::holds_alternative<acme::failed>(next));
  return 0;
}
