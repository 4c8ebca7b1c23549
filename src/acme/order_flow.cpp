// The ACME order flow state machine (see order_flow.hpp for the flow and its actions).
// Pure: no I/O; every response arrives through on_response().
#include "acme/order_flow.hpp"

#include "acme/base64url.hpp"
#include "acme/certificate_chain.hpp"
#include "acme/challenge.hpp"
#include "acme/csr.hpp"
#include "acme/error.hpp"
#include "acme/jws.hpp"
#include "acme/retry_after.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace mles::acme {

namespace {

bool is_success(unsigned status) { return status >= 200 && status < 300; }

// RFC 8555 §8.1: a token uses the base64url alphabet; it ends up in an HTTP path and a
// certificate hash, so nothing else passes.
bool is_valid_token(std::string_view token) {
  return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string new_account_payload(const std::vector<std::string>& emails) {
  boost::json::object payload;
  payload["termsOfServiceAgreed"] = true;
  if (!emails.empty()) {
    boost::json::array contact;
    for (const std::string& email : emails) contact.emplace_back("mailto:" + email);
    payload["contact"] = std::move(contact);
  }
  return boost::json::serialize(payload);
}

std::string new_order_payload(const std::vector<std::string>& names) {
  boost::json::array identifiers;
  for (const std::string& name : names) {
    identifiers.emplace_back(boost::json::object{{"type", "dns"}, {"value", name}});
  }
  return boost::json::serialize(boost::json::object{{"identifiers", std::move(identifiers)}});
}

// The problem explaining an invalid authorization: the first challenge error present.
std::optional<problem> first_error(const authorization& authz) {
  for (const challenge& c : authz.challenges) {
    if (c.error) return c.error;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(challenge_type type) noexcept {
  switch (type) {
    case challenge_type::tls_alpn_01:
      return "tls-alpn-01";
    case challenge_type::http_01:
      return "http-01";
  }
  return "";
}

order_flow::order_flow(order_settings settings, p256_key account_key)
    : settings_(std::move(settings)), account_key_(std::move(account_key)) {}

action order_flow::start() {
  if (stage_ != stage::idle) return fail(errc::unexpected_event, "start() called twice");
  if (settings_.names.empty()) {
    return fail(boost::system::errc::make_error_code(boost::system::errc::invalid_argument), "no names to order");
  }
  stage_ = stage::directory;
  return http_request{http_method::get, settings_.directory_url, {}, {}, {}};
}

action order_flow::on_provisioned() {
  if (stage_ != stage::provisioning) {
    return fail(errc::unexpected_event, "on_provisioned() without provision_challenge");
  }
  // RFC 8555 §7.5.1: the trigger's payload is exactly the empty object.
  return send(stage::challenge, signed_request{challenge_url_, "{}", signer::kid, {}});
}

action order_flow::on_waited() {
  if (stage_ != stage::waiting) return fail(errc::unexpected_event, "on_waited() without wait");
  return after_wait_ == stage::authorization ? fetch_authorization() : fetch_order();
}

action order_flow::on_response(const http_response& response, std::chrono::system_clock::time_point now) {
  now_ = now;
  if (!response.replay_nonce.empty()) nonce_ = response.replay_nonce;
  if (awaiting_nonce_) {
    awaiting_nonce_ = false;
    if (!is_success(response.status)) return fail_response(response, "newNonce");
    if (nonce_.empty()) return fail(errc::missing_nonce, "newNonce");
    return sign_pending();
  }
  switch (stage_) {
    case stage::directory:
      return on_directory(response);
    case stage::account:
    case stage::new_order:
    case stage::authorization:
    case stage::challenge:
    case stage::order:
    case stage::finalize:
    case stage::certificate:
      return on_signed_response(response);
    case stage::idle:
    case stage::provisioning:
    case stage::waiting:
    case stage::finished:
      break;
  }
  return fail(errc::unexpected_event, "on_response() without http_request");
}

action order_flow::send(stage next, signed_request request) {
  stage_ = next;
  pending_ = std::move(request);
  bad_nonces_ = 0;
  return sign_pending();
}

action order_flow::sign_pending() {
  if (nonce_.empty()) {
    awaiting_nonce_ = true;
    return http_request{http_method::head, directory_.new_nonce, {}, {}, {}};
  }
  const std::string_view kid = pending_.key_id == signer::jwk ? std::string_view() : account_url_;
  auto jws = make_jws(account_key_, kid, nonce_, pending_.url, pending_.payload);
  // RFC 8555 §6.5: a nonce is good for one request.
  nonce_.clear();
  if (!jws) return fail(jws.error(), "signing a request");
  return http_request{http_method::post, pending_.url, std::move(*jws), std::string(jose_content_type),
                      pending_.accept};
}

action order_flow::on_signed_response(const http_response& response) {
  if (response.status == 400) {
    const auto cause = parse_problem(response.body);
    if (cause && cause->type == bad_nonce_problem) {
      if (++bad_nonces_ > settings_.max_bad_nonce_retries) {
        return fail(errc::too_many_bad_nonces, cause->detail, cause->type);
      }
      return sign_pending();
    }
  }
  switch (stage_) {
    case stage::account:
      return on_account(response);
    case stage::new_order:
      return on_new_order(response);
    case stage::authorization:
      return on_authorization(response);
    case stage::challenge:
      return on_challenge(response);
    case stage::order:
    case stage::finalize:
      return on_order(response);
    case stage::certificate:
      return on_certificate(response);
    default:
      break;
  }
  return fail(errc::unexpected_event, "response in no request stage");
}

action order_flow::on_directory(const http_response& response) {
  if (!is_success(response.status)) return fail_response(response, "directory");
  auto parsed = parse_directory(response.body);
  if (!parsed) return fail(parsed.error(), "directory");
  directory_ = std::move(*parsed);
  if (directory_.external_account_required) return fail(errc::external_account_required, "directory");
  return send(stage::account, signed_request{directory_.new_account, new_account_payload(settings_.emails),
                                             signer::jwk, {}});
}

action order_flow::on_account(const http_response& response) {
  // RFC 8555 §7.3: 201 for a new account, 200 when the key is already registered.
  if (response.status != 200 && response.status != 201) return fail_response(response, "newAccount");
  if (response.location.empty()) return fail(errc::missing_location, "newAccount");
  const auto parsed = parse_account(response.body);
  if (!parsed) return fail(parsed.error(), "newAccount");
  if (parsed->status != status::valid) return fail(errc::account_not_valid, "newAccount");
  account_url_ = response.location;
  return send(stage::new_order, signed_request{directory_.new_order, new_order_payload(settings_.names),
                                               signer::kid, {}});
}

action order_flow::on_new_order(const http_response& response) {
  if (!is_success(response.status)) return fail_response(response, "newOrder");
  if (response.location.empty()) return fail(errc::missing_location, "newOrder");
  auto parsed = parse_order(response.body);
  if (!parsed) return fail(parsed.error(), "newOrder");
  order_url_ = response.location;
  order_ = std::move(*parsed);
  if (order_.status == status::ready) return finalize_order();  // every authorization reused
  if (order_.status != status::pending) return fail_with(errc::order_invalid, order_.error, "new order is not pending");
  authorization_index_ = 0;
  return next_authorization();
}

action order_flow::next_authorization() {
  polls_ = 0;
  next_backoff_ = settings_.poll_initial;
  if (authorization_index_ == order_.authorizations.size()) return fetch_order();
  challenge_triggered_ = false;
  return fetch_authorization();
}

action order_flow::fetch_authorization() {
  return send(stage::authorization, signed_request{order_.authorizations[authorization_index_], {}, signer::kid, {}});
}

action order_flow::on_authorization(const http_response& response) {
  if (!is_success(response.status)) return fail_response(response, "authorization");
  const auto authz = parse_authorization(response.body);
  if (!authz) return fail(authz.error(), "authorization");
  if (authz->status == status::valid) {
    ++authorization_index_;
    return next_authorization();
  }
  if (authz->status != status::pending) {
    return fail_with(errc::authorization_invalid, first_error(*authz), "authorization is not pending");
  }
  if (challenge_triggered_) return poll_later(response, stage::authorization);

  for (const challenge_type wanted : settings_.challenge_preference) {
    const auto offered = std::find_if(authz->challenges.begin(), authz->challenges.end(),
                                      [&](const challenge& c) { return c.type == to_string(wanted); });
    if (offered == authz->challenges.end()) continue;
    if (!is_valid_token(offered->token)) return fail(errc::malformed_resource, "challenge token");
    challenge_url_ = offered->url;
    if (offered->status == status::processing) {
      // Triggered by an earlier attempt: only wait for the outcome.
      challenge_triggered_ = true;
      return poll_later(response, stage::authorization);
    }
    if (offered->status != status::pending) {
      return fail_with(errc::authorization_invalid, offered->error, "challenge is not pending");
    }
    stage_ = stage::provisioning;
    return provision_challenge{wanted, authz->identifier.value, offered->token,
                               key_authorization(offered->token, account_key_)};
  }
  std::string offered_types;
  for (const challenge& c : authz->challenges) offered_types += (offered_types.empty() ? "" : ", ") + c.type;
  return fail(errc::no_usable_challenge, authz->identifier.value + " offers " + offered_types);
}

action order_flow::on_challenge(const http_response& response) {
  if (!is_success(response.status)) return fail_response(response, "challenge");
  const auto parsed = parse_challenge(response.body);
  if (!parsed) return fail(parsed.error(), "challenge");
  if (parsed->status == status::invalid) {
    return fail_with(errc::authorization_invalid, parsed->error, "challenge is invalid");
  }
  challenge_triggered_ = true;
  return poll_later(response, stage::authorization);
}

action order_flow::fetch_order() {
  return send(stage::order, signed_request{order_url_, {}, signer::kid, {}});
}

action order_flow::finalize_order() {
  auto csr = make_csr(settings_.names);
  if (!csr) return fail(csr.error(), "certificate request");
  certificate_key_pem_ = std::move(csr->key_pem);
  polls_ = 0;
  next_backoff_ = settings_.poll_initial;
  const boost::json::object payload{{"csr", base64url_encode(csr->der)}};
  return send(stage::finalize, signed_request{order_.finalize, boost::json::serialize(payload), signer::kid, {}});
}

action order_flow::on_order(const http_response& response) {
  const std::string_view step = stage_ == stage::finalize ? "finalize" : "order";
  if (!is_success(response.status)) return fail_response(response, step);
  auto parsed = parse_order(response.body);
  if (!parsed) return fail(parsed.error(), std::string(step));
  order_ = std::move(*parsed);
  switch (order_.status) {
    case status::ready:
      // Ready after finalize: the CA has not started yet, keep polling.
      return certificate_key_pem_.empty() ? finalize_order() : poll_later(response, stage::order);
    case status::pending:
    case status::processing:
      return poll_later(response, stage::order);
    case status::valid:
      if (!order_.certificate) return fail(errc::malformed_resource, "valid order without certificate");
      if (certificate_key_pem_.empty()) return fail(errc::order_invalid, "order is valid before finalize");
      return send(stage::certificate,
                  signed_request{*order_.certificate, {}, signer::kid, std::string(pem_chain_content_type)});
    default:
      break;
  }
  return fail_with(errc::order_invalid, order_.error, "order is invalid");
}

action order_flow::on_certificate(const http_response& response) {
  if (!is_success(response.status)) return fail_response(response, "certificate");
  if (split_pem_chain(response.body).empty()) return fail(errc::invalid_pem, "certificate");
  const auto validity = read_leaf_validity(response.body);
  if (!validity) return fail(validity.error(), "certificate");
  stage_ = stage::finished;
  return done{response.body, std::move(certificate_key_pem_), validity->not_before, validity->not_after};
}

action order_flow::poll_later(const http_response& response, stage poll) {
  if (++polls_ > settings_.max_polls) {
    return fail(errc::too_many_polls, poll == stage::authorization ? "authorization still pending" : "order not done");
  }
  std::chrono::milliseconds delay = next_backoff_;
  if (const auto hint = parse_retry_after(response.retry_after, now_)) {
    delay = std::min<std::chrono::milliseconds>(*hint, settings_.retry_after_max);
  } else {
    next_backoff_ = std::min(next_backoff_ * 2, settings_.poll_max);
  }
  stage_ = stage::waiting;
  after_wait_ = poll;
  return wait{delay};
}

action order_flow::fail(boost::system::error_code error, std::string detail, std::string problem_type,
                        std::optional<std::chrono::seconds> retry_after) {
  stage_ = stage::finished;
  awaiting_nonce_ = false;
  return failed{error, std::move(problem_type), std::move(detail), retry_after};
}

action order_flow::fail_with(errc error, const std::optional<problem>& cause, std::string fallback_detail) {
  if (!cause) return fail(error, std::move(fallback_detail));
  return fail(error, cause->detail, cause->type);
}

action order_flow::fail_response(const http_response& response, std::string_view step) {
  const auto retry_after = parse_retry_after(response.retry_after, now_);
  if (const auto cause = parse_problem(response.body)) {
    return fail(errc::ca_problem, cause->detail, cause->type, retry_after);
  }
  return fail(errc::unexpected_status, std::string(step) + ": HTTP " + std::to_string(response.status), {},
              retry_after);
}

}  // namespace mles::acme
