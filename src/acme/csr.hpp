// The certificate signing request sent to an order's finalize URL (RFC 8555 §7.4): a fresh
// P-256 key (never the account key) and a PKCS#10 CSR naming every domain. Pure: no I/O.
#pragma once

#include <boost/system/result.hpp>

#include <span>
#include <string>

namespace mles::acme {

struct certificate_request {
  std::string der;      // PKCS#10 DER; the finalize payload is {"csr": base64url(der)}
  std::string key_pem;  // PKCS#8 PEM of the new certificate key
};

// Empty subject, subjectAltName = one dNSName per name (in order), signed SHA-256 with a
// newly generated key. names must not be empty.
boost::system::result<certificate_request> make_csr(std::span<const std::string> names);

}  // namespace mles::acme
