// ETag, HTTP-date, conditional request and Range logic (see conditional.hpp). Pure: no I/O.
#include "http/conditional.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <limits>

namespace mles::http {

namespace {

constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view whitespace = " \t";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(whitespace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(whitespace) - first + 1);
}

// Exactly the digits of s (a leading space allowed for asctime's day) as a number.
std::optional<int> parse_digits(std::string_view s) {
  if (s.starts_with(' ')) s.remove_prefix(1);
  int value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || s[0] == '-' || s[0] == '+') {
    return std::nullopt;
  }
  return value;
}

std::optional<unsigned> parse_month(std::string_view s) {
  for (std::size_t i = 0; i < month_names.size(); ++i) {
    if (s == month_names[i]) return static_cast<unsigned>(i + 1);
  }
  return std::nullopt;
}

// "hh:mm:ss" → seconds since midnight.
std::optional<std::chrono::seconds> parse_time_of_day(std::string_view s) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  const auto h = parse_digits(s.substr(0, 2));
  const auto m = parse_digits(s.substr(3, 2));
  const auto sec = parse_digits(s.substr(6, 2));
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  return std::chrono::hours(*h) + std::chrono::minutes(*m) + std::chrono::seconds(*sec);
}

std::optional<sys_seconds> make_time(std::optional<int> year, std::optional<unsigned> month, std::optional<int> day,
                                     std::optional<std::chrono::seconds> time_of_day) {
  if (!year || !month || !day || !time_of_day || *day < 1) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(*year), std::chrono::month(*month),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date) + *time_of_day;
}

// The entity-tags of an If-None-Match / If-Range list, each passed (quotes included, "W/"
// removed) to visit until it returns true. Malformed lists stop the scan.
template <typename Visit>
bool any_entity_tag(std::string_view list, Visit visit) {
  std::size_t i = 0;
  while (i < list.size()) {
    if (list[i] == ' ' || list[i] == '\t' || list[i] == ',') {
      ++i;
      continue;
    }
    if (list.substr(i).starts_with("W/")) i += 2;
    if (i >= list.size() || list[i] != '"') return false;
    const auto close = list.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    if (visit(list.substr(i, close - i + 1))) return true;
    i = close + 1;
  }
  return false;
}

// A byte position; values beyond 64 bits saturate (they only ever mean "to the end").
std::optional<std::uint64_t> parse_position(std::string_view s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::uint64_t>::max();
  return value;
}

sys_seconds whole_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t);
}

}  // namespace

std::string make_etag(std::uint64_t size, std::chrono::system_clock::time_point mtime,
                      content_encoding encoding) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
  std::array<char, 64> buffer{};
  char* p = buffer.data();
  *p++ = '"';
  p = std::to_chars(p, buffer.data() + buffer.size(), size, 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, buffer.data() + buffer.size(), static_cast<std::uint64_t>(ns), 16).ptr;
  std::string etag(buffer.data(), p);
  if (encoding != content_encoding::identity) {
    etag += '-';
    etag += encoding_token(encoding);
  }
  etag += '"';
  return etag;
}

std::string format_http_date(sys_seconds time) {
  const auto day = std::chrono::floor<std::chrono::days>(time);
  const std::chrono::year_month_day date(day);
  const std::chrono::hh_mm_ss clock(time - day);
  const std::chrono::weekday weekday(day);
  std::array<char, 32> buffer{};
  const int n = std::snprintf(buffer.data(), buffer.size(), "%s, %02u %s %04d %02d:%02d:%02d GMT",
                              day_names[weekday.c_encoding()].data(), static_cast<unsigned>(date.day()),
                              month_names[static_cast<unsigned>(date.month()) - 1].data(),
                              static_cast<int>(date.year()), static_cast<int>(clock.hours().count()),
                              static_cast<int>(clock.minutes().count()),
                              static_cast<int>(clock.seconds().count()));
  return std::string(buffer.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

std::optional<sys_seconds> parse_http_date(std::string_view s) {
  const auto comma = s.find(',');
  if (comma == 3) {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() != 29 || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || !s.ends_with(" GMT")) {
      return std::nullopt;
    }
    return make_time(parse_digits(s.substr(12, 4)), parse_month(s.substr(8, 3)), parse_digits(s.substr(5, 2)),
                     parse_time_of_day(s.substr(17, 8)));
  }
  if (comma != std::string_view::npos) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year of 70+ is 19xx.
    const std::string_view rest = s.substr(comma + 1);
    if (rest.size() != 23 || rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' || rest[10] != ' ' ||
        !rest.ends_with(" GMT")) {
      return std::nullopt;
    }
    auto year = parse_digits(rest.substr(8, 2));
    if (year) *year += *year >= 70 ? 1900 : 2000;
    return make_time(year, parse_month(rest.substr(4, 3)), parse_digits(rest.substr(1, 2)),
                     parse_time_of_day(rest.substr(11, 8)));
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') return std::nullopt;
  return make_time(parse_digits(s.substr(20, 4)), parse_month(s.substr(4, 3)), parse_digits(s.substr(8, 2)),
                   parse_time_of_day(s.substr(11, 8)));
}

bool is_not_modified(std::string_view if_none_match, std::string_view if_modified_since, std::string_view etag,
                     std::chrono::system_clock::time_point mtime) {
  if_none_match = trim(if_none_match);
  if (!if_none_match.empty()) {
    if (if_none_match == "*") return true;
    const std::string_view ours = etag.starts_with("W/") ? etag.substr(2) : etag;
    return any_entity_tag(if_none_match, [ours](std::string_view tag) { return tag == ours; });
  }
  const auto since = parse_http_date(trim(if_modified_since));
  return since && whole_seconds(mtime) <= *since;
}

std::string_view cache_control_for(std::string_view content_type) {
  return content_type.starts_with("text/html") ? "no-cache" : "public, max-age=3600";
}

range_result parse_range(std::string_view range_header, std::uint64_t file_size) {
  constexpr range_result full{};
  std::string_view spec = trim(range_header);
  constexpr std::string_view unit = "bytes=";
  if (spec.size() < unit.size()) return full;
  for (std::size_t i = 0; i < unit.size(); ++i) {
    const char c = spec[i] >= 'A' && spec[i] <= 'Z' ? static_cast<char>(spec[i] - 'A' + 'a') : spec[i];
    if (c != unit[i]) return full;
  }
  spec = trim(spec.substr(unit.size()));
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return full;
  const range_result unsatisfiable{range_status::unsatisfiable, {}};
  if (dash == 0) {
    const auto suffix = parse_position(spec.substr(1));
    if (!suffix) return full;
    if (*suffix == 0 || file_size == 0) return unsatisfiable;
    return {range_status::partial, {file_size - std::min(*suffix, file_size), file_size - 1}};
  }
  const auto first = parse_position(spec.substr(0, dash));
  if (!first) return full;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  if (dash + 1 < spec.size()) {
    const auto parsed = parse_position(spec.substr(dash + 1));
    if (!parsed || *parsed < *first) return full;
    last = *parsed;
  }
  if (*first >= file_size) return unsatisfiable;
  return {range_status::partial, {*first, std::min(last, file_size - 1)}};
}

bool if_range_matches(std::string_view if_range, std::string_view etag, std::chrono::system_clock::time_point mtime) {
  if_range = trim(if_range);
  if (if_range.empty()) return true;
  if (if_range.starts_with('"')) return !etag.starts_with("W/") && if_range == etag;
  if (if_range.starts_with("W/")) return false;
  const auto date = parse_http_date(if_range);
  return date && *date == whole_seconds(mtime);
}

std::string content_range(const range_result& range, std::uint64_t file_size) {
  std::string value = "bytes ";
  if (range.status == range_status::partial) {
    value += std::to_string(range.range.first);
    value += '-';
    value += std::to_string(range.range.last);
  } else {
    value += '*';
  }
  value += '/';
  value += std::to_string(file_size);
  return value;
}

}  // namespace mles::http
