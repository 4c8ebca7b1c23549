// Logging set-up: spdlog to stderr, level from --log-level, MLES_LOG or RUST_LOG.
#pragma once

#include <spdlog/common.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mles::app {

// Accepts spdlog level names (trace, debug, info, warn, warning, error, critical, off) and
// RUST_LOG-style lists ("debug", "mles=debug,warp=info", "info,mles=trace"): an entry for
// "mles" wins over a bare default. nullopt when nothing in it is a level.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text);

enum class log_format { text, json };

// "text" or "json"; nullopt otherwise.
std::optional<log_format> parse_log_format(std::string_view text);

// text: "2026-12-02T01:02:03.456 info message" (local time, as before). json: one object per
// line, {"ts":"2026-12-02T01:02:03.456Z","level":"info","msg":"...", fields...}, ts in UTC
// (RFC 3339, milliseconds), fields from net::log_fields (e.g. remote, reason), every string
// escaped (quotes, backslashes, control characters; invalid UTF-8 replaced by U+FFFD).
void setup_logging(spdlog::level::level_enum level, log_format format = log_format::text);

// The JSON line of one message (without the newline): what the json format writes.
std::string json_log_line(std::chrono::system_clock::time_point ts, spdlog::level::level_enum level,
                          std::string_view msg);

}  // namespace mles::app
