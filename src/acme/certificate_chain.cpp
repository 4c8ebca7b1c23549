// PEM chain splitting and leaf validity for issued certificates. Pure: no I/O.
#include "acme/certificate_chain.hpp"

#include "acme/error.hpp"
#include "acme/openssl_handles.hpp"

#include <openssl/pem.h>

#include <ctime>

namespace mles::acme {

namespace {

constexpr std::string_view begin_marker = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view end_marker = "-----END CERTIFICATE-----";

boost::system::result<std::chrono::system_clock::time_point> to_time_point(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return errc::invalid_pem;
  const std::chrono::year_month_day date{std::chrono::year{tm.tm_year + 1900},
                                         std::chrono::month{static_cast<unsigned>(tm.tm_mon + 1)},
                                         std::chrono::day{static_cast<unsigned>(tm.tm_mday)}};
  if (!date.ok()) return errc::invalid_pem;
  const std::chrono::sys_seconds seconds = std::chrono::sys_days{date} + std::chrono::hours{tm.tm_hour} +
                                           std::chrono::minutes{tm.tm_min} + std::chrono::seconds{tm.tm_sec};
  // system_clock counts nanoseconds (years 1678-2262); X.509 allows up to 9999 ("no expiry").
  using clock = std::chrono::system_clock;
  if (seconds >= std::chrono::floor<std::chrono::seconds>(clock::time_point::max())) return clock::time_point::max();
  if (seconds <= std::chrono::ceil<std::chrono::seconds>(clock::time_point::min())) return clock::time_point::min();
  return clock::time_point{seconds.time_since_epoch()};
}

}  // namespace

std::vector<std::string> split_pem_chain(std::string_view pem) {
  std::vector<std::string> out;
  for (;;) {
    const std::size_t begin = pem.find(begin_marker);
    if (begin == std::string_view::npos) break;
    const std::size_t end = pem.find(end_marker, begin + begin_marker.size());
    if (end == std::string_view::npos) break;
    const std::size_t stop = end + end_marker.size();
    out.emplace_back(pem.substr(begin, stop - begin));
    out.back() += '\n';
    pem.remove_prefix(stop);
  }
  return out;
}

boost::system::result<certificate_validity> read_leaf_validity(std::string_view chain_pem) {
  const openssl::bio_ptr bio = openssl::read_bio(chain_pem);
  if (!bio) return errc::invalid_pem;
  const openssl::x509_ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) return errc::invalid_pem;
  const auto not_before = to_time_point(X509_get0_notBefore(leaf.get()));
  const auto not_after = to_time_point(X509_get0_notAfter(leaf.get()));
  if (!not_before || !not_after) return errc::invalid_pem;
  return certificate_validity{*not_before, *not_after};
}

std::chrono::system_clock::time_point renewal_time(const certificate_validity& validity) {
  return validity.not_after - (validity.not_after - validity.not_before) / 3;
}

}  // namespace mles::acme
