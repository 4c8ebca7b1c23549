// Path resolution: request target → the file to serve under <wwwroot>/<domain>/. Runs after
// host routing; its result decides 200/400/403/404 before any file is opened.
#pragma once

#include <filesystem>
#include <string_view>

namespace mles::http {

enum class resolve_status {
  ok,           // file is a regular file inside the root
  not_found,    // nothing there (or a directory without index.html)
  forbidden,    // a way out of the root: "..", "%2f" or "%5c" in a segment, a symlink outside
  bad_request,  // not an origin-form target, malformed percent-encoding, or a NUL byte
  unavailable,  // the filesystem could not be asked for lack of resources (EMFILE, ENOMEM...)
};

// Errors that say "not now" rather than "not there": out of descriptors or memory, or a
// transient failure. A file that cannot be read for one of these is a 503, never a 404.
bool is_resource_shortage(int err) noexcept;

struct resolved_path {
  resolve_status status = resolve_status::not_found;
  std::filesystem::path file;  // canonical (symlinks resolved); set only when status is ok
};

// Resolves an origin-form target ("/path?query"; the query is ignored) against root.
// Each path segment is percent-decoded exactly once; "." and empty segments are skipped; a
// directory means its index.html. The result is checked on the filesystem (symlinks
// resolved) to lie inside root. Blocking: a few stat/realpath calls on local files.
resolved_path resolve_path(const std::filesystem::path& root, std::string_view target);

}  // namespace mles::http
