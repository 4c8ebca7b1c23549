// The --cache directory: ACME account key and certificate, in the reference server's layout
// (rustls-acme DirCache) so an operator switching servers keeps account and certificate.
//   cached_account_<H>: the account key, PKCS#8 DER;
//     H = base64url(SHA-256(contact_1 ‖ 0x00 ‖ … ‖ contact_n ‖ 0x00 ‖ directory_url))
//   cached_cert_<H>: certificate key PEM, "\n", the chain PEM as downloaded (leaf first);
//     H = base64url(SHA-256(domain_1 ‖ 0x00 ‖ … ‖ directory_url))
// Files are written atomically (temp file, fsync, rename, fsync of the directory) with mode
// 0600 in a 0700 directory. Thread-safety: none needed (used by one ACME manager).
#pragma once

#include <boost/system/error_code.hpp>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mles::store {

// Writes bytes to path atomically with the given mode (directory must exist).
boost::system::error_code write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                                std::filesystem::perms mode);

class acme_cache {
 public:
  explicit acme_cache(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Creates the directory (0700) if missing; an existing one is tightened to 0700.
  boost::system::error_code prepare() const;

  std::filesystem::path account_path(std::span<const std::string> contacts, std::string_view directory_url) const;
  std::filesystem::path certificate_path(std::span<const std::string> domains, std::string_view directory_url) const;

  // nullopt when absent; unreadable files are reported in ec.
  std::optional<std::string> load(const std::filesystem::path& path, boost::system::error_code& ec) const;
  boost::system::error_code store(const std::filesystem::path& path, std::string_view bytes) const;

  // Splits a cached_cert_ file into (key PEM, chain PEM); nullopt unless it has a private
  // key block followed by at least one certificate.
  static std::optional<std::pair<std::string, std::string>> split_certificate_file(std::string_view text);
  static std::string join_certificate_file(std::string_view key_pem, std::string_view chain_pem);

  const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  std::filesystem::path dir_;
};

// The file-name hash of the reference cache layout (see above).
std::string reference_cache_hash(std::span<const std::string> parts, std::string_view directory_url);

}  // namespace mles::store
