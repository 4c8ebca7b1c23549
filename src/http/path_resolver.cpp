// Request target → file under the domain root (see path_resolver.hpp). Boost.URL validates
// and splits the target; std::filesystem resolves symlinks for the containment check.
#include "http/path_resolver.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>

namespace mles::http {

namespace fs = std::filesystem;

bool is_resource_shortage(int err) noexcept {
  switch (err) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN:
    case ENOBUFS:
    case EINTR:
      return true;
    default: return false;
  }
}

namespace {

resolved_path fail(resolve_status status) { return {status, {}}; }

resolve_status status_for(const std::error_code& ec) {
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    if (is_resource_shortage(ec.value())) return resolve_status::unavailable;
  }
  return ec == std::errc::permission_denied ? resolve_status::forbidden : resolve_status::not_found;
}

// Component-wise, so "/srv/www2" is not inside "/srv/www". Both paths are canonical.
bool is_within(const fs::path& root, const fs::path& p) {
  return std::mismatch(root.begin(), root.end(), p.begin(), p.end()).first == root.end();
}

// What the target names: anything, a directory (trailing '/'), or the index.html inside one
// (which may not be a directory again: an "index.html -> ." symlink must not loop).
enum class expect { file_or_directory, directory, index_file };

// The canonical regular file a candidate names, refused when it resolves outside root.
// A directory is served through its index.html, which may itself be a symlink.
resolved_path check_on_disk(const fs::path& root, const fs::path& candidate, expect kind) {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(candidate, ec);
  if (ec) return fail(status_for(ec));
  if (!is_within(root, real)) return fail(resolve_status::forbidden);
  const fs::file_status st = fs::status(real, ec);
  if (ec) return fail(status_for(ec));
  if (fs::is_directory(st)) {
    if (kind == expect::index_file) return fail(resolve_status::not_found);
    return check_on_disk(root, real / "index.html", expect::index_file);
  }
  if (!fs::exists(st)) return fail(resolve_status::not_found);
  // "/file.css/" names a directory that does not exist.
  if (kind == expect::directory) return fail(resolve_status::not_found);
  // FIFOs, sockets and devices would block or leak: never served.
  if (!fs::is_regular_file(st)) return fail(resolve_status::forbidden);
  return {resolve_status::ok, std::move(real)};
}

}  // namespace

resolved_path resolve_path(const fs::path& root, std::string_view target) {
  const auto url = boost::urls::parse_origin_form(target);
  if (!url) return fail(resolve_status::bad_request);

  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return fail(resolve_status::not_found);

  fs::path candidate = real_root;
  for (const auto encoded : url->encoded_segments()) {
    const std::string segment = encoded.decode();
    if (segment.find('\0') != std::string::npos) return fail(resolve_status::bad_request);
    if (segment == ".." || segment.find_first_of("/\\") != std::string::npos) {
      return fail(resolve_status::forbidden);
    }
    if (segment.empty() || segment == ".") continue;
    candidate /= segment;
  }
  const expect kind = url->encoded_path().ends_with('/') ? expect::directory : expect::file_or_directory;
  return check_on_disk(real_root, candidate, kind);
}

}  // namespace mles::http
