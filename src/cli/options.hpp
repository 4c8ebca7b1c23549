// Command line (+ MLES_KEY, MLES_LOG, RUST_LOG) → app::config. Flags and defaults follow the
// reference server; the rest is ours. Pure apart from reading the environment
// through the getenv function it is given.
#pragma once

#include "app/config.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mles::cli {

struct parse_outcome {
  std::optional<app::config> config;  // set when the server should run
  int exit_code = 0;                  // when config is empty: 0 (help/version) or 2 (usage error)
  std::string output;                 // text for stdout (help/version) or stderr (one error line)
  std::vector<std::string> notices;   // warnings to log once logging is set up
};

using getenv_fn = std::function<const char*(const char*)>;

parse_outcome parse_command_line(int argc, const char* const* argv, const getenv_fn& getenv);

}  // namespace mles::cli
