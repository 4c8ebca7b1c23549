// Tests for the ACME cache: reference-compatible names, atomic 0600 files, the 0700 directory.
#include "store/acme_cache.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sys/stat.h>

using mles::store::acme_cache;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("mles-cache-test-" + std::to_string(rd()));
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

constexpr std::string_view production = "https://acme-v02.api.letsencrypt.org/directory";

}  // namespace

TEST(acme_cache, names_files_like_the_reference_server) {
  // Vector from the reference layout notes: domains mles.test, www.mles.test + production.
  const std::vector<std::string> domains{"mles.test", "www.mles.test"};
  acme_cache cache("/var/cache/mles");
  EXPECT_EQ(cache.certificate_path(domains, production).filename(),
            "cached_cert_0vl5czZTTGI9wbxVzbxnK8oJWSH-fAAQs4lLTE8M4MM");
  // Contacts hash the same way, in command-line order.
  const std::vector<std::string> a{"mailto:a@x.io", "mailto:b@x.io"}, b{"mailto:b@x.io", "mailto:a@x.io"};
  EXPECT_NE(cache.account_path(a, production), cache.account_path(b, production));
  EXPECT_EQ(cache.account_path(a, production).filename().string().rfind("cached_account_", 0), 0u);
}

TEST(acme_cache, stores_atomically_with_private_modes_and_loads_back) {
  temp_dir t;
  acme_cache cache(t.path / "nested" / "cache");
  const auto file = cache.certificate_path(std::vector<std::string>{"mles.test"}, production);
  ASSERT_FALSE(cache.store(file, "first"));
  ASSERT_FALSE(cache.store(file, "second"));  // replaced, not appended
  boost::system::error_code ec;
  EXPECT_EQ(cache.load(file, ec), "second");
  EXPECT_FALSE(ec);
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(mode_of(cache.dir()), 0700u);
  // No temporary files are left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(cache.dir())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(acme_cache, reports_a_missing_file_as_absent_and_an_unwritable_directory_as_an_error) {
  temp_dir t;
  acme_cache cache(t.path);
  boost::system::error_code ec;
  EXPECT_FALSE(cache.load(t.path / "cached_cert_none", ec));
  EXPECT_FALSE(ec);
  // A regular file where the directory should be: store fails with a clear error.
  fs::create_directories(t.path.parent_path());
  std::ofstream(t.path.string() + "-file") << "x";
  acme_cache blocked(t.path.string() + "-file");
  EXPECT_TRUE(blocked.store(blocked.dir() / "cached_cert_x", "data"));
  fs::remove(t.path.string() + "-file");
}

TEST(acme_cache, splits_and_joins_the_certificate_file) {
  const std::string key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  const std::string chain = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
                            "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n";
  const auto joined = acme_cache::join_certificate_file(key, chain);
  const auto split = acme_cache::split_certificate_file(joined);
  ASSERT_TRUE(split);
  EXPECT_EQ(split->first, key);
  EXPECT_EQ(split->second, chain);
  EXPECT_FALSE(acme_cache::split_certificate_file(chain));  // no key
  EXPECT_FALSE(acme_cache::split_certificate_file(key));    // no certificate
}
