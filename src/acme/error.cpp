// The "acme" error category: short messages for acme::errc, used in the ACME client's logs.
#include "acme/error.hpp"

#include <string>

namespace mles::acme {

namespace {

class acme_error_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "acme"; }

  std::string message(int ev) const override { return describe(ev); }

  const char* message(int ev, char* /*buffer*/, std::size_t /*len*/) const noexcept override {
    return describe(ev);
  }

 private:
  static const char* describe(int ev) noexcept {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "ok";
      case errc::invalid_json:
        return "response is not JSON";
      case errc::malformed_resource:
        return "response JSON lacks a required member or has a mistyped one";
      case errc::invalid_pem:
        return "no usable PEM key or certificate";
      case errc::not_p256_key:
        return "key is not ECDSA P-256";
      case errc::crypto_failure:
        return "OpenSSL operation failed";
      case errc::ca_problem:
        return "the CA reported a problem";
      case errc::unexpected_status:
        return "unexpected HTTP status from the CA";
      case errc::missing_nonce:
        return "response has no Replay-Nonce";
      case errc::missing_location:
        return "response has no Location";
      case errc::account_not_valid:
        return "ACME account is not valid";
      case errc::external_account_required:
        return "the CA requires external account binding";
      case errc::no_usable_challenge:
        return "no offered challenge type is enabled";
      case errc::authorization_invalid:
        return "authorization failed";
      case errc::order_invalid:
        return "order became invalid";
      case errc::too_many_polls:
        return "gave up polling";
      case errc::too_many_bad_nonces:
        return "too many badNonce answers in a row";
      case errc::unexpected_event:
        return "event does not match the last action";
    }
    return "unknown acme error";
  }
};

}  // namespace

const boost::system::error_category& acme_category() noexcept {
  static const acme_error_category category;
  return category;
}

}  // namespace mles::acme
