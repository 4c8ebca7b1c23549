// Validators and conditional requests for static files (RFC 9110 §8.8, §13, §14): ETag,
// Last-Modified, the 304 decision, Cache-Control policy and single byte ranges (206/416).
// Pure: the connection code passes the file's size and mtime and the request's headers.
#pragma once

#include "http/accept_encoding.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mles::http {

using sys_seconds = std::chrono::sys_seconds;

// A strong ETag from the file's size and mtime (nanoseconds, so quick rewrites differ), e.g.
// "\"1a2b-17f0c3a5e1d2c000\""; a compressed representation is a different entity, so its
// tag carries the coding: "\"1a2b-17f0c3a5e1d2c000-br\"".
std::string make_etag(std::uint64_t size, std::chrono::system_clock::time_point mtime,
                      content_encoding encoding);

// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
std::string format_http_date(sys_seconds time);

// Any of the three HTTP-date formats a recipient must accept: IMF-fixdate, RFC 850
// ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
std::optional<sys_seconds> parse_http_date(std::string_view text);

// RFC 9110 §13.2.2 for GET/HEAD: If-None-Match (weak comparison, "*" matches) decides when
// present; otherwise If-Modified-Since against the mtime truncated to seconds. Empty header
// values mean absent. true = answer 304 Not Modified.
bool is_not_modified(std::string_view if_none_match, std::string_view if_modified_since,
                     std::string_view etag, std::chrono::system_clock::time_point mtime);

// Cache-Control for a static file. HTML is "no-cache": browsers revalidate it on each use
// (a cheap 304 thanks to the ETag), so a new deploy shows at once. Other assets are
// "public, max-age=3600": served without asking for an hour, which bounds how stale a
// changed script or image can be, since our files carry no content hash in their names.
std::string_view cache_control_for(std::string_view content_type);

// An inclusive byte range [first, last] of a file.
struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

enum class range_status {
  full,           // no usable Range: 200 with the whole file
  partial,        // 206 with range
  unsatisfiable,  // 416 with Content-Range: bytes */size
};

struct range_result {
  range_status status = range_status::full;
  byte_range range;
};

// RFC 9110 §14.2 for one range: "bytes=a-b", "bytes=a-", "bytes=-n" (the last n bytes).
// Multiple ranges, other units and malformed values give full (a server may ignore Range);
// a syntactically valid range that starts beyond the file (or "-0") gives unsatisfiable.
range_result parse_range(std::string_view range_header, std::uint64_t file_size);

// RFC 9110 §13.1.5: a Range applies only when If-Range is absent or names the current
// representation: a strong ETag equal to etag, or an HTTP-date equal to the mtime.
bool if_range_matches(std::string_view if_range, std::string_view etag,
                      std::chrono::system_clock::time_point mtime);

// Content-Range value: "bytes first-last/size" for partial, "bytes */size" for
// unsatisfiable (RFC 9110 §14.4).
std::string content_range(const range_result& range, std::uint64_t file_size);

}  // namespace mles::http
