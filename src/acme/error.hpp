// ACME client errors as an error_code category: why a parse, a key operation or an order
// failed. Pure: no I/O. The CA's own problem type and detail travel beside these, verbatim.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace mles::acme {

enum class errc {
  ok = 0,
  invalid_json = 1,           // body is not JSON
  malformed_resource,         // JSON, but not the resource's shape (member missing or mistyped)
  invalid_pem,                // no usable key or certificate in the PEM text
  not_p256_key,               // a key of another type or curve
  crypto_failure,             // OpenSSL refused an operation (allocation, signing)
  ca_problem,                 // the CA answered with a problem document
  unexpected_status,          // an HTTP status the flow cannot use, without a problem document
  missing_nonce,              // no Replay-Nonce where one was needed
  missing_location,           // no Location header on a created account or order
  account_not_valid,          // account deactivated or revoked
  external_account_required,  // the CA needs external account binding (not supported)
  no_usable_challenge,        // no offered challenge type is in the preference list
  authorization_invalid,      // validation failed
  order_invalid,              // order became invalid (or expired)
  too_many_polls,             // poll bound reached while still pending/processing
  too_many_bad_nonces,        // badNonce retry bound reached
  unexpected_event,           // the driver fed an event the flow was not waiting for
};

const boost::system::error_category& acme_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), acme_category()};
}

}  // namespace mles::acme

template <>
struct boost::system::is_error_code_enum<mles::acme::errc> : std::true_type {};
