// The PEM certificate chain an order's certificate URL returns (RFC 8555 §7.4.2,
// application/pem-certificate-chain, leaf first) and the leaf's validity, from which the
// renewer schedules the next order. Pure: no I/O.
#pragma once

#include <boost/system/result.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace mles::acme {

inline constexpr std::string_view pem_chain_content_type = "application/pem-certificate-chain";

// Each "-----BEGIN CERTIFICATE-----" ... "-----END CERTIFICATE-----" block in order, verbatim,
// each ending in "\n". Text between blocks and blocks of other types are dropped.
std::vector<std::string> split_pem_chain(std::string_view pem);

struct certificate_validity {
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

// notBefore/notAfter of the first certificate in the PEM text.
boost::system::result<certificate_validity> read_leaf_validity(std::string_view chain_pem);

// When to renew: two thirds into the lifetime, notAfter - (notAfter - notBefore) / 3, as the
// reference server (rustls-acme) does.
std::chrono::system_clock::time_point renewal_time(const certificate_validity& validity);

}  // namespace mles::acme
