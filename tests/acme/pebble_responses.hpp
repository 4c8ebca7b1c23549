// Response bodies shaped exactly like pebble 2.4.0's (Let's Encrypt's test CA; URL paths and
// member order as it sends them, see shared ACME notes §4), for the parser and order flow tests.
#pragma once

#include <string>

namespace mles::acme::pebble {

inline const std::string base = "https://127.0.0.1:14000";
inline const std::string directory_url = base + "/dir";
inline const std::string nonce_url = base + "/nonce-plz";
inline const std::string new_account_url = base + "/sign-me-up";
inline const std::string new_order_url = base + "/order-plz";
inline const std::string account_url = base + "/my-account/1";
inline const std::string order_url = base + "/my-order/o1";
inline const std::string finalize_url = base + "/finalize-order/o1";
inline const std::string certificate_url = base + "/certZ/c1";

inline std::string authz_url(int i) { return base + "/authZ/a" + std::to_string(i); }
inline std::string challenge_url(int i, const std::string& type) { return base + "/chalZ/" + type + std::to_string(i); }
inline std::string token(int i) { return "tok" + std::to_string(i) + "_pXg4Vyc4c9pH1f9E2Z0jE8PR7e8eMUm3DxbZOI"; }

inline const std::string directory = R"({
   "keyChange": "https://127.0.0.1:14000/rollover-account-key",
   "meta": {
      "externalAccountRequired": false,
      "termsOfService": "data:text/plain,Do%20what%20thou%20wilt"
   },
   "newAccount": "https://127.0.0.1:14000/sign-me-up",
   "newNonce": "https://127.0.0.1:14000/nonce-plz",
   "newOrder": "https://127.0.0.1:14000/order-plz",
   "revokeCert": "https://127.0.0.1:14000/revoke-cert"
})";

inline const std::string account = R"({
   "status": "valid",
   "contact": [
      "mailto:admin@mles.test"
   ],
   "orders": "https://127.0.0.1:14000/list-orderz/1"
})";

inline std::string order(const std::string& status, int authorizations = 2, bool with_certificate = false) {
  std::string authz;
  for (int i = 1; i <= authorizations; ++i) authz += (i > 1 ? ",\n      \"" : "\"") + authz_url(i) + "\"";
  return R"({
   "status": ")" + status + R"(",
   "expires": "2024-06-02T10:00:00Z",
   "identifiers": [
      {"type": "dns", "value": "mles.test"},
      {"type": "dns", "value": "www.mles.test"}
   ],
   "finalize": ")" + finalize_url + R"(",
   "authorizations": [
      )" + authz + R"(
   ])" + (with_certificate ? ",\n   \"certificate\": \"" + certificate_url + "\"" : std::string()) + "\n}";
}

// Challenges in pebble's random order; dns-01 first so picking by type matters.
inline std::string authorization(int i, const std::string& status, const std::string& challenge_status = "pending",
                                 const std::string& error = "") {
  const std::string name = i == 1 ? "mles.test" : "www.mles.test";
  auto chal = [&](const std::string& type) {
    return R"({"type": ")" + type + R"(", "url": ")" + challenge_url(i, type) + R"(", "token": ")" + token(i) +
           R"(", "status": ")" + challenge_status + "\"" + (error.empty() ? "" : ", \"error\": " + error) + "}";
  };
  return R"({
   "status": ")" + status + R"(",
   "identifier": {"type": "dns", "value": ")" + name + R"("},
   "challenges": [
      )" + chal("dns-01") + ",\n      " + chal("tls-alpn-01") + ",\n      " + chal("http-01") + R"(
   ],
   "expires": "2024-06-01T11:00:00Z"
})";
}

inline std::string challenge(int i, const std::string& type, const std::string& status) {
  return R"({"type": ")" + type + R"(", "url": ")" + challenge_url(i, type) + R"(", "token": ")" + token(i) +
         R"(", "status": ")" + status + R"("})";
}

inline const std::string bad_nonce =
    R"({"type": "urn:ietf:params:acme:error:badNonce", "detail": "JWS has an invalid anti-replay nonce: kXL3MrZUl-1dtgCbGJ-vgQ", "status": 400})";

inline const std::string tls_alpn_error =
    R"({"type": "urn:ietf:params:acme:error:unauthorized", "detail": "Incorrect validation certificate for tls-alpn-01 challenge. Missing acmeValidationV1 extension.", "status": 403})";

inline const std::string rejected_identifier =
    R"({"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Order included a blocked identifier: blocked.test", "status": 400})";

}  // namespace mles::acme::pebble
