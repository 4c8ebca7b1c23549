// renewal_info: RFC 9773 certificate identifiers, window parsing, the random pick.
#include "acme/renewal_info.hpp"

#include "acme/base64url.hpp"
#include "acme/error.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <charconv>
#include <memory>

namespace mles::acme {

std::optional<std::string> ari_certificate_id(std::string_view chain_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())),
                                                &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!leaf) return std::nullopt;
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(leaf.get());
  const ASN1_INTEGER* serial = X509_get0_serialNumber(leaf.get());
  if (!aki || !serial) return std::nullopt;
  unsigned char* der = nullptr;
  const int len = i2d_ASN1_INTEGER(serial, &der);
  if (len < 3) {
    OPENSSL_free(der);
    return std::nullopt;
  }
  // DER INTEGER: tag, one length byte (serials are at most 20 octets), then the contents.
  const std::string contents(reinterpret_cast<const char*>(der) + 2, static_cast<std::size_t>(len - 2));
  OPENSSL_free(der);
  const std::string key_id(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki)),
                           static_cast<std::size_t>(ASN1_STRING_length(aki)));
  return base64url_encode(key_id) + "." + base64url_encode(contents);
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view t) {
  auto num = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > t.size()) return std::nullopt;
    int v = 0;
    const auto [p, ec] = std::from_chars(t.data() + at, t.data() + at + n, v);
    if (ec != std::errc{} || p != t.data() + at + n) return std::nullopt;
    return v;
  };
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':')
    return std::nullopt;
  const auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), s = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !s || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *s > 60)
    return std::nullopt;
  std::size_t at = 19;
  std::chrono::nanoseconds fraction{0};
  if (at < t.size() && t[at] == '.') {
    std::int64_t scale = 100'000'000;
    ++at;
    const std::size_t digits_from = at;
    while (at < t.size() && t[at] >= '0' && t[at] <= '9') {
      fraction += std::chrono::nanoseconds((t[at] - '0') * scale);
      scale /= 10;
      ++at;
    }
    if (at == digits_from) return std::nullopt;
  }
  std::chrono::minutes offset{0};
  if (at < t.size() && (t[at] == 'Z' || t[at] == 'z') && at + 1 == t.size()) {
  } else if (at + 6 == t.size() && (t[at] == '+' || t[at] == '-') && t[at + 3] == ':') {
    const auto oh = num(at + 1, 2), om = num(at + 4, 2);
    if (!oh || !om) return std::nullopt;
    offset = std::chrono::hours(*oh) + std::chrono::minutes(*om);
    if (t[at] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(*y), std::chrono::month(static_cast<unsigned>(*mo)),
                                        std::chrono::day(static_cast<unsigned>(*d))};
  if (!ymd.ok()) return std::nullopt;
  const auto when = std::chrono::sys_days(ymd) + std::chrono::hours(*h) + std::chrono::minutes(*mi) +
                    std::chrono::seconds(*s) - offset;
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(when + fraction);
}

boost::system::result<renewal_window> parse_renewal_info(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return make_error_code(errc::invalid_json);
  const auto* window = v.as_object().if_contains("suggestedWindow");
  if (!window || !window->is_object()) return make_error_code(errc::malformed_resource);
  const auto* start = window->as_object().if_contains("start");
  const auto* end = window->as_object().if_contains("end");
  if (!start || !end || !start->is_string() || !end->is_string()) return make_error_code(errc::malformed_resource);
  const auto s = parse_rfc3339(std::string_view(start->as_string()));
  const auto e = parse_rfc3339(std::string_view(end->as_string()));
  if (!s || !e || *e < *s) return make_error_code(errc::malformed_resource);
  return renewal_window{*s, *e};
}

std::chrono::system_clock::time_point choose_renewal_time(const renewal_window& window,
                                                          std::chrono::system_clock::time_point now,
                                                          std::mt19937_64& rng) {
  if (window.end <= now) return now;
  const auto from = std::max(window.start, now);
  const auto span = (window.end - from).count();
  std::uniform_int_distribution<std::int64_t> pick(0, span);
  return from + std::chrono::system_clock::duration(pick(rng));
}

}  // namespace mles::acme
