// Body compression for static files: one synchronous call per (file, encoding). Large inputs
// take milliseconds to seconds, so the connection code runs them on a worker thread, never on
// an event loop, and keeps the result in the compression_cache.
#pragma once

#include "http/accept_encoding.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace mles::http {

// Fast levels, chosen for serving on demand rather than for the smallest output.
inline constexpr int zstd_level = 3;
inline constexpr int brotli_quality = 5;
inline constexpr int gzip_level = 6;

// The input compressed with encoding as a complete zstd frame, brotli stream or gzip member
// (RFC 8878, RFC 7932, RFC 1952). identity returns a copy. nullopt only when the library
// fails (out of memory). Thread-safe: no shared state.
std::optional<std::string> compress(content_encoding encoding, std::string_view input);

}  // namespace mles::http
