// A throwaway self-signed certificate (EC P-256, SAN DNS:<host>, a random serial and a unique
// subject) written as PEM files, for tests of --tls-cert/--tls-key and --peer-ca.
#pragma once

#include <filesystem>
#include <string>

namespace mles::test {

// Throws std::runtime_error on failure.
void write_test_certificate(const std::filesystem::path& cert_pem, const std::filesystem::path& key_pem,
                            const std::string& host = "localhost");

// A fresh empty directory under the system temp dir, removed by the destructor.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace mles::test
