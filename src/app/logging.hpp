// Logging set-up: spdlog to stderr, level from --log-level, MLES_LOG or RUST_LOG.
#pragma once

#include <spdlog/common.h>

#include <optional>
#include <string_view>

namespace mles::app {

// Accepts spdlog level names (trace, debug, info, warn, warning, error, critical, off) and
// RUST_LOG-style lists ("debug", "mles=debug,warp=info", "info,mles=trace"): an entry for
// "mles" wins over a bare default. nullopt when nothing in it is a level.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text);

void setup_logging(spdlog::level::level_enum level);

}  // namespace mles::app
