// The ACME order flow (RFC 8555 §7, RFC 8737) as a Sans-I/O state machine: it decides every
// request and reacts to every response, while a driver owns sockets, TLS, timers and the
// challenge responders. Pure: no I/O, no clock (the driver passes "now").
//
// Driving it
//   action a = flow.start();
//   loop:  http_request        → execute it, then a = flow.on_response(response, now)
//          provision_challenge → make the responder answer it, then a = flow.on_provisioned()
//          wait                → sleep for duration, then a = flow.on_waited()
//          done / failed       → stop; withdraw every challenge provisioned for this flow
// One flow is one order attempt; after failed, the renewer retries later with a new flow.
// Not thread-safe: owned and fed by one driver on one strand.
//
// The flow, step by step (each step's errors end in failed)
//   1. GET directory → newNonce, newAccount, newOrder URLs (externalAccountRequired → failed).
//   2. Nonces: every response's Replay-Nonce is kept for the next signed request; when none
//      is held, HEAD newNonce first.
//   3. newAccount, JWS with "jwk": {"termsOfServiceAgreed":true,"contact":["mailto:<email>",..]}.
//      200 (key already registered: account key reuse) or 201 (created); Location = account
//      URL, the "kid" of every later request. The account must be "valid".
//   4. newOrder {"identifiers":[{"type":"dns","value":<name>},..]} for all names at once;
//      201 + Location = order URL (polled later).
//   5. Each authorization in turn, POST-as-GET (JWS, payload ""): "valid" → skipped (reused
//      authorization). "pending" → the first offered challenge type in the preference list →
//      provision_challenge; after on_provisioned(), POST exactly {} to the challenge URL
//      (pebble -strict refuses anything else); then poll the authorization until "valid".
//      "invalid" → failed with the challenge's error problem.
//   6. Poll the order until "ready"; finalize with {"csr": base64url(DER)} (fresh P-256 key,
//      SAN = all names); poll until "valid".
//   7. POST-as-GET the certificate URL (Accept: application/pem-certificate-chain) → done with
//      the chain (leaf first), the key, and the leaf's notBefore/notAfter.
//
// Polling: each wait honours the response's Retry-After (capped at retry_after_max), else
// backs off from poll_initial doubling to poll_max; at most max_polls polls per
// authorization and per order state, then failed(too_many_polls).
// badNonce (400, urn:ietf:params:acme:error:badNonce): the same request is signed again with
// the nonce of that error response and resent; more than max_bad_nonce_retries in a row →
// failed(too_many_bad_nonces). Any other CA problem fails the order with its type and detail
// verbatim (and its Retry-After, for rate limits).
#pragma once

#include "acme/error.hpp"
#include "acme/p256_key.hpp"
#include "acme/resources.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mles::acme {

enum class challenge_type { tls_alpn_01, http_01 };

// The ACME name of the type: "tls-alpn-01", "http-01".
std::string_view to_string(challenge_type type) noexcept;

enum class http_method { get, head, post };

// Perform this request and feed the response to on_response().
struct http_request {
  http_method method = http_method::get;
  std::string url;
  std::string body;          // the JWS for POST, else empty
  std::string content_type;  // "application/jose+json" for POST, else empty
  std::string accept;        // "application/pem-certificate-chain" for the certificate, else empty
};

// Make the responder for type answer the challenge (tls-alpn-01: the certificate from
// make_tls_alpn01_certificate(name, key_authorization) for SNI name with ALPN acme-tls/1;
// http-01: key_authorization at http01_path(token)), then call on_provisioned().
struct provision_challenge {
  challenge_type type;
  std::string name;
  std::string token;
  std::string key_authorization;
};

// Sleep, then call on_waited().
struct wait {
  std::chrono::milliseconds duration;
};

// The order is fulfilled.
struct done {
  std::string certificate_chain_pem;  // as downloaded, leaf first
  std::string key_pem;                // PKCS#8 of the certificate key
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

// The order attempt is over. problem_type/detail are the CA's problem verbatim when the CA
// sent one (error == errc::ca_problem, authorization_invalid, order_invalid or
// too_many_bad_nonces); otherwise problem_type is empty and detail names the step.
struct failed {
  boost::system::error_code error;
  std::string problem_type;
  std::string detail;
  std::optional<std::chrono::seconds> retry_after;  // from the failing response, if any
};

using action = std::variant<http_request, provision_challenge, wait, done, failed>;

// A response as the driver received it; absent headers are empty strings.
struct http_response {
  unsigned status = 0;
  std::string replay_nonce;  // Replay-Nonce
  std::string location;      // Location
  std::string retry_after;   // Retry-After, raw
  std::string body;
};

struct order_settings {
  std::string directory_url;
  std::vector<std::string> names;   // one order, one certificate, all names as SAN
  std::vector<std::string> emails;  // each becomes a "mailto:" contact
  std::vector<challenge_type> challenge_preference{challenge_type::tls_alpn_01, challenge_type::http_01};
  unsigned max_bad_nonce_retries = 10;
  unsigned max_polls = 30;
  std::chrono::milliseconds poll_initial{1000};
  std::chrono::milliseconds poll_max{10000};
  std::chrono::seconds retry_after_max{300};
};

class order_flow {
 public:
  // account_key: loaded from the cache, or new; newAccount returns the same account for a
  // registered key, so no account URL needs to be stored.
  order_flow(order_settings settings, p256_key account_key);

  action start();
  action on_response(const http_response& response, std::chrono::system_clock::time_point now);
  action on_provisioned();
  action on_waited();

  // The account URL (kid) once newAccount succeeded, else empty.
  const std::string& account_url() const noexcept { return account_url_; }

 private:
  enum class stage {
    idle,
    directory,
    account,
    new_order,
    authorization,
    provisioning,
    challenge,
    order,
    finalize,
    certificate,
    waiting,
    finished,
  };
  enum class signer { jwk, kid };

  // A signed request, kept until answered so badNonce can re-sign and resend it.
  struct signed_request {
    std::string url;
    std::string payload;  // empty: POST-as-GET
    signer key_id = signer::kid;
    std::string accept;
  };

  action send(stage next, signed_request request);
  action sign_pending();
  action on_signed_response(const http_response& response);
  action on_directory(const http_response& response);
  action on_account(const http_response& response);
  action on_new_order(const http_response& response);
  action on_authorization(const http_response& response);
  action on_challenge(const http_response& response);
  action on_order(const http_response& response);
  action on_certificate(const http_response& response);

  action next_authorization();
  action fetch_authorization();
  action fetch_order();
  action finalize_order();
  action poll_later(const http_response& response, stage poll);
  action fail(boost::system::error_code error, std::string detail, std::string problem_type = {},
              std::optional<std::chrono::seconds> retry_after = std::nullopt);
  action fail_with(errc error, const std::optional<problem>& cause, std::string fallback_detail);
  action fail_response(const http_response& response, std::string_view step);

  order_settings settings_;
  p256_key account_key_;
  stage stage_ = stage::idle;
  stage after_wait_ = stage::idle;
  bool awaiting_nonce_ = false;
  std::chrono::system_clock::time_point now_;

  directory directory_;
  std::string nonce_;
  std::string account_url_;
  std::string order_url_;
  order order_;
  signed_request pending_;
  unsigned bad_nonces_ = 0;

  std::size_t authorization_index_ = 0;
  std::string challenge_url_;
  bool challenge_triggered_ = false;
  unsigned polls_ = 0;
  std::chrono::milliseconds next_backoff_{0};

  std::string certificate_key_pem_;
};

}  // namespace mles::acme
