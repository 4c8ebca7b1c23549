// Static files per domain: turns one GET/HEAD request into a response plan
// (status, headers, and a body from memory or from a file range) for the connection to send.
// data path: session (HTTP request) ─► file_server.respond ─► session (headers + body chunks)
// Compressing a file is the only expensive step; it runs on the compression_worker thread.
// Thread-safety: respond() and the file-slot functions are safe from any thread.
#pragma once

#include "http/accept_encoding.hpp"
#include "http/compression_cache.hpp"
#include "http/host.hpp"
#include "http/path_resolver.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace mles::http {

// The request fields the file server looks at.
struct file_request {
  bool head = false;
  bool get_or_head = true;  // false: any other method (405)
  std::string_view target;
  std::string_view host;
  std::string_view accept_encoding;
  std::string_view if_none_match;
  std::string_view if_modified_since;
  std::string_view range;
  std::string_view if_range;
};

struct file_response {
  unsigned status = 404;
  std::string headers;  // "Name: value\r\n" lines; no status line, no Content-Length
  std::uint64_t content_length = 0;
  bool send_body = true;  // false for HEAD and 304
  // The body comes from exactly one of:
  std::shared_ptr<const std::string> memory;  // error text or a cached compressed body
  std::filesystem::path file;                 // a byte range of a file, streamed
  std::uint64_t offset = 0;
  // ...or must first be compressed off the loop (then content_length is not yet known):
  std::optional<compression_key> compress;
};

class file_server {
 public:
  file_server(std::filesystem::path wwwroot, std::span<const std::string> domains,
              std::size_t file_limit, std::size_t compression_cache_bytes);
  ~file_server();
  file_server(const file_server&) = delete;
  file_server& operator=(const file_server&) = delete;

  file_response respond(const file_request& req);

  // Compresses key.path with key.encoding on the worker thread (cache first), then calls
  // done(body or nullptr when the file changed or compression failed) on the worker thread.
  // Returns false when the worker's queue is full (serve uncompressed then).
  bool compress_async(const compression_key& key,
                      std::function<void(std::shared_ptr<const std::string>)> done);

  // --filelimit: at most file_limit files open for streaming at once. try_open_slot either
  // takes a slot (true) or queues wake, which is called (from any thread) when a slot may be
  // free: the caller then tries again. close_slot gives a slot back.
  bool try_open_slot(std::function<void()> wake);
  void close_slot();

  compression_cache::stats cache_stats() const { return cache_.snapshot(); }
  const domain_set& domains() const noexcept { return domains_; }

 private:
  void worker_loop();
  resolved_path resolve_cached(std::string_view domain, std::string_view target);

  std::filesystem::path root_;
  domain_set domains_;
  compression_cache cache_;

  struct cached_path {
    resolved_path result;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex paths_mutex_;
  std::unordered_map<std::string, cached_path> paths_;

  std::mutex slots_mutex_;
  std::size_t slots_free_;
  std::deque<std::function<void()>> slot_waiters_;

  struct job {
    compression_key key;
    std::function<void(std::shared_ptr<const std::string>)> done;
  };
  std::mutex jobs_mutex_;
  std::condition_variable jobs_cv_;
  std::deque<job> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace mles::http
