// libFuzzer target for request-path resolution: resolve_path on arbitrary
// targets against a real temporary tree whose root holds symlinks to files outside it.
// Invariant: an ok result is a regular file inside the canonical root, never the outside file.
#include "http/path_resolver.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

void require(bool condition) {
  if (!condition) std::abort();
}

// <tmp>/mles-path-fuzz-<pid>/{root/{index.html,a/b.txt,a/index.html,leak,out},outside/secret}
struct tree {
  tree() : base(fs::temp_directory_path() / ("mles-path-fuzz-" + std::to_string(::getpid()))) {
    fs::remove_all(base);
    fs::create_directories(base / "root" / "a");
    fs::create_directories(base / "outside");
    std::ofstream(base / "root" / "index.html") << "home";
    std::ofstream(base / "root" / "a" / "b.txt") << "b";
    std::ofstream(base / "root" / "a" / "index.html") << "a";
    std::ofstream(base / "outside" / "secret") << "secret";
    fs::create_symlink(base / "outside" / "secret", base / "root" / "leak");
    fs::create_symlink(base / "outside", base / "root" / "out");
    fs::create_symlink("b.txt", base / "root" / "a" / "alias");
    root = fs::canonical(base / "root");
  }
  ~tree() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  fs::path base;
  fs::path root;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tree t;
  const std::string_view target(reinterpret_cast<const char*>(data), size);
  const auto result = mles::http::resolve_path(t.base / "root", target);
  if (result.status != mles::http::resolve_status::ok) {
    require(result.file.empty());
    return 0;
  }
  require(fs::is_regular_file(result.file));
  require(result.file == fs::canonical(result.file));
  const auto [root_end, file_it] = std::mismatch(t.root.begin(), t.root.end(), result.file.begin(), result.file.end());
  require(root_end == t.root.end());
  require(file_it != result.file.end());
  return 0;
}
