// Retry-After parsing: delta-seconds and IMF-fixdate. Pure: no I/O.
#include "acme/retry_after.hpp"

#include <array>
#include <charconv>

namespace mles::acme {

namespace {

// Longer waits are not meaningful for a client that polls; it also keeps the arithmetic safe.
constexpr std::int64_t max_delta_seconds = 366LL * 24 * 60 * 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Exactly width digits at s[pos...].
std::optional<unsigned> digits_at(std::string_view s, std::size_t pos, std::size_t width) {
  const std::string_view part = s.substr(pos, width);
  if (part.size() != width || !all_digits(part)) return std::nullopt;
  unsigned value = 0;
  std::from_chars(part.data(), part.data() + part.size(), value);
  return value;
}

// IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", fixed positions. In whole
// seconds: years up to 9999 stay far inside the range, unlike system_clock's nanoseconds.
std::optional<std::chrono::sys_seconds> parse_imf_fixdate(std::string_view s) {
  static constexpr std::array<std::string_view, 7> days{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
      s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  bool day_name_ok = false;
  for (const auto d : days) day_name_ok = day_name_ok || s.substr(0, 3) == d;
  unsigned month = 0;
  for (unsigned i = 0; i < months.size(); ++i) {
    if (s.substr(8, 3) == months[i]) month = i + 1;
  }
  const auto day = digits_at(s, 5, 2);
  const auto year = digits_at(s, 12, 4);
  const auto hour = digits_at(s, 17, 2);
  const auto minute = digits_at(s, 20, 2);
  const auto second = digits_at(s, 23, 2);
  if (!day_name_ok || month == 0 || !day || !year || !hour || !minute || !second || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year{static_cast<int>(*year)}, std::chrono::month{month},
                                         std::chrono::day{*day}};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
         std::chrono::seconds{*second};
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (all_digits(value)) {
    // Leading zeros are allowed; more than 12 significant digits is past any sane wait.
    while (value.size() > 1 && value.front() == '0') value.remove_prefix(1);
    if (value.size() > 12) return std::chrono::seconds{max_delta_seconds};
    std::int64_t seconds = 0;
    std::from_chars(value.data(), value.data() + value.size(), seconds);
    return std::chrono::seconds{std::min(seconds, max_delta_seconds)};
  }
  const auto date = parse_imf_fixdate(value);
  if (!date) return std::nullopt;
  const auto now_seconds = std::chrono::floor<std::chrono::seconds>(now);
  if (*date <= now_seconds) return std::chrono::seconds{0};
  return std::min(*date - now_seconds, std::chrono::seconds{max_delta_seconds});
}

}  // namespace mles::acme
