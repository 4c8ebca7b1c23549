// acme_cache: reference-compatible file names, atomic 0600 writes.
#include "store/acme_cache.hpp"

#include "acme/base64url.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace mles::store {

namespace {

boost::system::error_code last_errno() { return {errno, boost::system::system_category()}; }

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

boost::system::error_code write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                                std::filesystem::perms mode) {
  std::random_device rd;
  const auto temp = path.parent_path() / (path.filename().string() + ".tmp" + std::to_string(rd()));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return last_errno();
  boost::system::error_code ec;
  // fchmod: the umask must not loosen or tighten the mode we were asked for.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0 || !write_all(fd, bytes) || ::fsync(fd) != 0) ec = last_errno();
  if (::close(fd) != 0 && !ec) ec = last_errno();
  if (!ec && ::rename(temp.c_str(), path.c_str()) != 0) ec = last_errno();
  if (ec) {
    ::unlink(temp.c_str());
    return ec;
  }
  // The rename itself must survive a crash: sync the directory entry.
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return {};
}

std::string reference_cache_hash(std::span<const std::string> parts, std::string_view directory_url) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  const unsigned char zero = 0;
  for (const auto& p : parts) {
    EVP_DigestUpdate(md, p.data(), p.size());
    EVP_DigestUpdate(md, &zero, 1);
  }
  EVP_DigestUpdate(md, directory_url.data(), directory_url.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md, digest, &len);
  EVP_MD_CTX_free(md);
  return acme::base64url_encode({reinterpret_cast<const char*>(digest), len});
}

boost::system::error_code acme_cache::prepare() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return ec;
  if (::chmod(dir_.c_str(), 0700) != 0) return last_errno();
  return {};
}

std::filesystem::path acme_cache::account_path(std::span<const std::string> contacts,
                                               std::string_view directory_url) const {
  return dir_ / ("cached_account_" + reference_cache_hash(contacts, directory_url));
}

std::filesystem::path acme_cache::certificate_path(std::span<const std::string> domains,
                                                   std::string_view directory_url) const {
  return dir_ / ("cached_cert_" + reference_cache_hash(domains, directory_url));
}

std::optional<std::string> acme_cache::load(const std::filesystem::path& path, boost::system::error_code& ec) const {
  ec = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno != ENOENT) ec = last_errno();
    return std::nullopt;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    ec = last_errno();
    return std::nullopt;
  }
  return bytes;
}

boost::system::error_code acme_cache::store(const std::filesystem::path& path, std::string_view bytes) const {
  if (auto ec = prepare()) return ec;
  return write_file_atomically(path, bytes, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::optional<std::pair<std::string, std::string>> acme_cache::split_certificate_file(std::string_view text) {
  constexpr std::string_view key_end = "-----END PRIVATE KEY-----";
  const auto end = text.find(key_end);
  if (text.find("-----BEGIN PRIVATE KEY-----") == std::string_view::npos || end == std::string_view::npos)
    return std::nullopt;
  std::string key(text.substr(0, end + key_end.size()));
  key += '\n';
  std::string_view rest = text.substr(end + key_end.size());
  const auto cert = rest.find("-----BEGIN CERTIFICATE-----");
  if (cert == std::string_view::npos) return std::nullopt;
  return std::pair{std::move(key), std::string(rest.substr(cert))};
}

std::string acme_cache::join_certificate_file(std::string_view key_pem, std::string_view chain_pem) {
  std::string out(key_pem);
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += '\n';
  out += chain_pem;
  return out;
}

}  // namespace mles::store
