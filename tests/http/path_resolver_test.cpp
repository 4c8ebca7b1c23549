// Tests for path resolution on a real temporary tree: index.html for directories, every
// traversal spelling refused, symlinks followed only while they stay inside the root.
#include "http/path_resolver.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace mles::http {
namespace {

namespace fs = std::filesystem;

// <tmp>/mles-http-XXXX/{www/site/..., outside/secret.txt}, removed at the end of each test.
class path_resolver_test : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("mles-http-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(std::random_device{}()));
    root_ = base_ / "www" / "site";
    fs::create_directories(root_ / "docs" / "empty");
    fs::create_directories(root_ / "assets");
    fs::create_directories(base_ / "outside");
    write(root_ / "index.html", "home");
    write(root_ / "docs" / "index.html", "docs");
    write(root_ / "docs" / "a b.txt", "space");
    write(root_ / "assets" / "app.js", "js");
    write(base_ / "outside" / "secret.txt", "secret");
    write(base_ / "www" / "site2.txt", "sibling");
  }

  void TearDown() override { fs::remove_all(base_); }

  static void write(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

  resolved_path resolve(std::string_view target) const { return resolve_path(root_, target); }

  fs::path canonical(const fs::path& p) const { return fs::canonical(p); }

  fs::path base_;
  fs::path root_;
};

TEST_F(path_resolver_test, serves_index_html_for_the_root_and_directories) {
  for (const char* target : {"/", "/?x=1", "/index.html"}) {
    const auto r = resolve(target);
    ASSERT_EQ(r.status, resolve_status::ok) << target;
    EXPECT_EQ(r.file, canonical(root_ / "index.html")) << target;
  }
  for (const char* target : {"/docs", "/docs/", "/docs/index.html"}) {
    const auto r = resolve(target);
    ASSERT_EQ(r.status, resolve_status::ok) << target;
    EXPECT_EQ(r.file, canonical(root_ / "docs" / "index.html")) << target;
  }
}

TEST_F(path_resolver_test, decodes_percent_encoding_once) {
  const auto r = resolve("/docs/a%20b.txt");
  ASSERT_EQ(r.status, resolve_status::ok);
  EXPECT_EQ(r.file, canonical(root_ / "docs" / "a b.txt"));
  // Double-encoded: "%2520" decodes to the literal name "a%20b.txt", which does not exist.
  EXPECT_EQ(resolve("/docs/a%2520b.txt").status, resolve_status::not_found);
}

TEST_F(path_resolver_test, skips_dot_and_empty_segments) {
  const auto r = resolve("/./assets//app.js");
  ASSERT_EQ(r.status, resolve_status::ok);
  EXPECT_EQ(r.file, canonical(root_ / "assets" / "app.js"));
}

TEST_F(path_resolver_test, missing_files_and_empty_directories_are_not_found) {
  EXPECT_EQ(resolve("/nope.html").status, resolve_status::not_found);
  EXPECT_EQ(resolve("/docs/empty/").status, resolve_status::not_found);
  EXPECT_EQ(resolve("/assets/app.js/").status, resolve_status::not_found);
  EXPECT_EQ(resolve("/assets/app.js/x").status, resolve_status::not_found);
}

TEST_F(path_resolver_test, missing_root_is_not_found) {
  EXPECT_EQ(resolve_path(base_ / "no-such-site", "/").status, resolve_status::not_found);
}

TEST_F(path_resolver_test, refuses_dot_dot_in_every_spelling) {
  for (const char* target : {"/../outside/secret.txt", "/docs/../../outside/secret.txt", "/%2e%2e/site2.txt",
                             "/%2E%2E/site2.txt", "/.%2e/site2.txt", "/docs/..", "/..%2fsite2.txt",
                             "/docs%2f..%2f..%2fsite2.txt", "/%2fetc%2fpasswd", "/..%5csite2.txt",
                             "/docs%5c..%5c..%5csite2.txt"}) {
    EXPECT_EQ(resolve(target).status, resolve_status::forbidden) << target;
  }
}

TEST_F(path_resolver_test, refuses_malformed_targets) {
  for (const std::string_view target :
       {std::string_view("/a%00.html"), std::string_view("/%00"), std::string_view("/a%zz"),
        std::string_view("/a%"), std::string_view("/a\\..\\..\\site2.txt"), std::string_view("index.html"),
        std::string_view("http://example.com/"), std::string_view("*"), std::string_view(""),
        std::string_view("/a b"), std::string_view("/a\0b", 4)}) {
    EXPECT_EQ(resolve(target).status, resolve_status::bad_request) << target;
  }
}

TEST_F(path_resolver_test, leading_double_slash_stays_under_the_root) {
  // "//etc/passwd" is a valid origin-form path: the empty first segment is skipped.
  EXPECT_EQ(resolve("//etc/passwd").status, resolve_status::not_found);
  EXPECT_EQ(resolve("//index.html").status, resolve_status::ok);
}

TEST_F(path_resolver_test, refuses_symlinks_pointing_outside_the_root) {
  fs::create_symlink(base_ / "outside" / "secret.txt", root_ / "leak.txt");
  fs::create_symlink(base_ / "outside", root_ / "out");
  EXPECT_EQ(resolve("/leak.txt").status, resolve_status::forbidden);
  EXPECT_EQ(resolve("/out/secret.txt").status, resolve_status::forbidden);
  EXPECT_EQ(resolve("/out/").status, resolve_status::forbidden);
}

TEST_F(path_resolver_test, dangling_symlink_is_not_found) {
  fs::create_symlink("../../outside/missing.txt", root_ / "dangling.txt");
  EXPECT_EQ(resolve("/dangling.txt").status, resolve_status::not_found);
}

TEST_F(path_resolver_test, refuses_index_html_symlink_pointing_outside) {
  fs::create_symlink(base_ / "outside" / "secret.txt", root_ / "docs" / "empty" / "index.html");
  EXPECT_EQ(resolve("/docs/empty/").status, resolve_status::forbidden);
}

TEST_F(path_resolver_test, does_not_loop_on_index_html_pointing_to_its_directory) {
  fs::create_symlink(".", root_ / "docs" / "empty" / "index.html");
  EXPECT_EQ(resolve("/docs/empty/").status, resolve_status::not_found);
}

TEST_F(path_resolver_test, follows_symlinks_that_stay_inside) {
  fs::create_symlink("assets/app.js", root_ / "alias.js");
  const auto r = resolve("/alias.js");
  ASSERT_EQ(r.status, resolve_status::ok);
  EXPECT_EQ(r.file, canonical(root_ / "assets" / "app.js"));
}

TEST_F(path_resolver_test, sibling_with_root_as_name_prefix_is_outside) {
  // "/www/site2.txt" shares the string prefix "/www/site" with the root.
  fs::create_symlink(base_ / "www" / "site2.txt", root_ / "sib.txt");
  EXPECT_EQ(resolve("/sib.txt").status, resolve_status::forbidden);
}

TEST_F(path_resolver_test, works_through_a_symlinked_root) {
  fs::create_directory_symlink(root_, base_ / "link-root");
  const auto r = resolve_path(base_ / "link-root", "/assets/app.js");
  ASSERT_EQ(r.status, resolve_status::ok);
  EXPECT_EQ(r.file, canonical(root_ / "assets" / "app.js"));
}

TEST_F(path_resolver_test, refuses_special_files) {
  ASSERT_EQ(::mkfifo((root_ / "pipe").c_str(), 0600), 0);
  EXPECT_EQ(resolve("/pipe").status, resolve_status::forbidden);
}

}  // namespace
}  // namespace mles::http
