// logging: level parsing (including the reference's RUST_LOG form) and the stderr logger.
#include "app/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace mles::app {
namespace {

std::optional<spdlog::level::level_enum> one_level(std::string_view s) {
  std::string t(s);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (t == "trace") return spdlog::level::trace;
  if (t == "debug") return spdlog::level::debug;
  if (t == "info") return spdlog::level::info;
  if (t == "warn" || t == "warning") return spdlog::level::warn;
  if (t == "error") return spdlog::level::err;
  if (t == "critical") return spdlog::level::critical;
  if (t == "off") return spdlog::level::off;
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text) {
  std::optional<spdlog::level::level_enum> fallback, ours;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (auto l = one_level(item)) fallback = l;
    } else if (trim(item.substr(0, eq)) == "mles") {
      if (auto l = one_level(trim(item.substr(eq + 1)))) ours = l;
    }
  }
  return ours ? ours : fallback;
}

void setup_logging(spdlog::level::level_enum level) {
  auto logger = spdlog::get("mles");
  if (!logger) logger = spdlog::stderr_color_mt("mles");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace mles::app
