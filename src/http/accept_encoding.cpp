// Accept-Encoding parsing and coding choice (see accept_encoding.hpp). Pure: no I/O.
#include "http/accept_encoding.hpp"

#include <array>
#include <optional>

namespace mles::http {

namespace {

constexpr std::string_view whitespace = " \t";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(whitespace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(whitespace) - first + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char c = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (c != b[i]) return false;
  }
  return true;
}

// RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
// thousandths.
std::optional<int> parse_qvalue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
  int value = (s[0] - '0') * 1000;
  if (s.size() == 1) return value;
  if (s[1] != '.' || s.size() > 5) return std::nullopt;
  int scale = 100;
  for (const char c : s.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    value += (c - '0') * scale;
    scale /= 10;
  }
  return value <= 1000 ? std::optional<int>(value) : std::nullopt;
}

// The q-value of one element's parameters ("; q=0.5"); 1000 when absent.
std::optional<int> element_qvalue(std::string_view params) {
  int q = 1000;
  while (!params.empty()) {
    const auto semicolon = params.find(';');
    const std::string_view param = trim(params.substr(0, semicolon));
    params = semicolon == std::string_view::npos ? std::string_view{} : params.substr(semicolon + 1);
    const auto equals = param.find('=');
    if (equals == std::string_view::npos || !iequals(trim(param.substr(0, equals)), "q")) continue;
    const auto parsed = parse_qvalue(trim(param.substr(equals + 1)));
    if (!parsed) return std::nullopt;
    q = *parsed;
  }
  return q;
}

}  // namespace

std::string_view encoding_token(content_encoding encoding) {
  switch (encoding) {
    case content_encoding::zstd: return "zstd";
    case content_encoding::br: return "br";
    case content_encoding::gzip: return "gzip";
    case content_encoding::identity: break;
  }
  return "identity";
}

content_encoding negotiate_encoding(std::string_view accept_encoding) {
  // Preference order for ties; -1 = not listed.
  constexpr std::array candidates{content_encoding::zstd, content_encoding::br, content_encoding::gzip};
  std::array<int, candidates.size()> q{-1, -1, -1};
  int wildcard = -1;
  while (!accept_encoding.empty()) {
    const auto comma = accept_encoding.find(',');
    const std::string_view element = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
    const auto semicolon = element.find(';');
    const std::string_view name = trim(element.substr(0, semicolon));
    const auto qvalue = element_qvalue(semicolon == std::string_view::npos ? std::string_view{}
                                                                            : element.substr(semicolon + 1));
    if (name.empty() || !qvalue) continue;
    if (name == "*") {
      wildcard = *qvalue;
      continue;
    }
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (iequals(name, encoding_token(candidates[i])) ||
          (candidates[i] == content_encoding::gzip && iequals(name, "x-gzip"))) {
        q[i] = *qvalue;
      }
    }
  }
  content_encoding best = content_encoding::identity;
  int best_q = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const int effective = q[i] >= 0 ? q[i] : wildcard;
    if (effective > best_q) {
      best = candidates[i];
      best_q = effective;
    }
  }
  return best;
}

}  // namespace mles::http
