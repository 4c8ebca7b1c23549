// ACME HTTP-01 responses being served (RFC 8555 §8.3): token → key authorization, set by the
// ACME manager while a challenge is provisioned, read by connections answering
// GET /.well-known/acme-challenge/<token>. Thread-safety: all functions from any thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mles::http {

class challenge_tokens {
 public:
  void set(std::string token, std::string key_authorization) {
    std::lock_guard lock(mutex_);
    tokens_[std::move(token)] = std::move(key_authorization);
  }
  void erase(const std::string& token) {
    std::lock_guard lock(mutex_);
    tokens_.erase(token);
  }
  std::optional<std::string> find(std::string_view token) const {
    std::lock_guard lock(mutex_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> tokens_;
};

}  // namespace mles::http
