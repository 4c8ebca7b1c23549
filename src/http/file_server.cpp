// file_server: request → response plan for static files, the --filelimit slots, and the
// compression worker thread.
#include "http/file_server.hpp"

#include "http/compression.hpp"
#include "http/conditional.hpp"
#include "http/mime.hpp"
#include "http/path_resolver.hpp"

#include <cerrno>
#include <chrono>
#include <sys/stat.h>
#include <fstream>
#include <iterator>

namespace mles::http {

namespace {

constexpr std::size_t max_queued_jobs = 64;

struct file_stamp {
  std::uint64_t size;
  std::chrono::system_clock::time_point mtime;
  std::filesystem::file_time_type file_time;
};

// One stat: size and modification time, in both clocks the callers need.
std::optional<file_stamp> stamp_of(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const auto mtime = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec) +
                                            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  return file_stamp{static_cast<std::uint64_t>(st.st_size), mtime, std::chrono::file_clock::from_sys(mtime)};
}

constexpr std::size_t max_cached_paths = 4096;
constexpr auto path_cache_ttl = std::chrono::seconds(1);

}  // namespace

file_server::file_server(std::filesystem::path wwwroot, std::span<const std::string> domains,
                         std::size_t file_limit, std::size_t compression_cache_bytes)
    : root_(std::move(wwwroot)), domains_(domains), cache_(compression_cache_bytes),
      slots_free_(std::max<std::size_t>(1, file_limit)), worker_([this] { worker_loop(); }) {}

file_server::~file_server() {
  {
    std::lock_guard lock(jobs_mutex_);
    stopping_ = true;
  }
  jobs_cv_.notify_all();
  worker_.join();
}

file_response file_server::respond(const file_request& req) {
  file_response r;
  auto text = [&](unsigned status, std::string_view body, std::string_view extra = {}) {
    r.status = status;
    r.headers = "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n";
    r.headers += extra;
    r.memory = std::make_shared<const std::string>(body);
    r.content_length = body.size();
    r.send_body = !req.head;
    return r;
  };
  if (!req.get_or_head) return text(405, "method not allowed\n", "Allow: GET, HEAD\r\n");
  const auto domain = domains_.match(req.host);
  // As in the reference server, a Host that is not one of the domains gets no file.
  if (!domain || root_.empty()) return text(404, "not found\n");
  const auto resolved = resolve_cached(*domain, req.target);
  switch (resolved.status) {
    case resolve_status::ok: break;
    case resolve_status::not_found: return text(404, "not found\n");
    case resolve_status::forbidden: return text(403, "forbidden\n");
    case resolve_status::bad_request: return text(400, "bad request target\n");
    case resolve_status::unavailable: return text(503, "try again later\n", "Retry-After: 5\r\n");
  }
  errno = 0;
  const auto stamp = stamp_of(resolved.file);
  if (!stamp && is_resource_shortage(errno)) return text(503, "try again later\n", "Retry-After: 5\r\n");
  if (!stamp) return text(404, "not found\n");
  const std::uint64_t size = stamp->size;
  const auto mtime = stamp->mtime;
  const auto file_time = stamp->file_time;
  const std::string_view type = content_type_for(resolved.file);
  const bool compressible = is_compressible(type);
  const content_encoding encoding =
      compressible && size > 0 && size <= compression_cache::max_file_bytes ? negotiate_encoding(req.accept_encoding)
                                                                            : content_encoding::identity;
  const std::string etag = make_etag(size, mtime, encoding);

  r.headers.reserve(256);
  r.headers += "Content-Type: ";
  r.headers += type;
  r.headers += "\r\nETag: " + etag + "\r\nLast-Modified: " +
               format_http_date(std::chrono::floor<std::chrono::seconds>(mtime)) + "\r\nCache-Control: ";
  r.headers += cache_control_for(type);
  r.headers += "\r\nX-Content-Type-Options: nosniff\r\n";
  if (compressible) r.headers += "Vary: Accept-Encoding\r\n";
  if (is_json(type)) r.headers += "Access-Control-Allow-Origin: *\r\n";

  if (is_not_modified(req.if_none_match, req.if_modified_since, etag, mtime)) {
    r.status = 304;
    r.send_body = false;
    return r;
  }
  r.send_body = !req.head;
  if (encoding != content_encoding::identity) {
    r.status = 200;
    r.headers += "Content-Encoding: ";
    r.headers += encoding_token(encoding);
    r.headers += "\r\n";
    compression_key key{resolved.file.string(), encoding, file_time, size};
    if (auto body = cache_.find(key)) {
      r.content_length = body->size();
      r.memory = std::move(body);
    } else {
      r.compress = std::move(key);
    }
    return r;
  }
  r.headers += "Accept-Ranges: bytes\r\n";
  range_result range = parse_range(req.range, size);
  if (!req.if_range.empty() && !if_range_matches(req.if_range, etag, mtime)) range = {};
  switch (range.status) {
    case range_status::unsatisfiable:
      r.status = 416;
      r.headers += "Content-Range: " + content_range(range, size) + "\r\n";
      r.send_body = false;
      return r;
    case range_status::partial:
      r.status = 206;
      r.headers += "Content-Range: " + content_range(range, size) + "\r\n";
      r.offset = range.range.first;
      r.content_length = range.range.last - range.range.first + 1;
      break;
    case range_status::full:
      r.status = 200;
      r.content_length = size;
      break;
  }
  r.file = resolved.file;
  return r;
}

// Path resolution costs a readlink per path component (symlinks must not lead out of the
// root); a hot file is resolved at most once a second. A symlink changed meanwhile is seen
// within that second.
resolved_path file_server::resolve_cached(std::string_view domain, std::string_view target) {
  std::string key;
  key.reserve(domain.size() + 1 + target.size());
  key.append(domain).append(1, '\0').append(target);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(paths_mutex_);
    auto it = paths_.find(key);
    if (it != paths_.end() && it->second.expires > now) return it->second.result;
  }
  resolved_path r = resolve_path(root_ / std::string(domain), target);
  std::lock_guard lock(paths_mutex_);
  if (paths_.size() >= max_cached_paths) paths_.clear();  // bounded; rebuilt from hot paths
  // A shortage of descriptors or memory says nothing about the file: not remembered.
  if (r.status != resolve_status::unavailable) paths_[std::move(key)] = {r, now + path_cache_ttl};
  return r;
}

bool file_server::compress_async(const compression_key& key,
                                 std::function<void(std::shared_ptr<const std::string>)> done) {
  {
    std::lock_guard lock(jobs_mutex_);
    if (jobs_.size() >= max_queued_jobs) return false;
    jobs_.push_back({key, std::move(done)});
  }
  jobs_cv_.notify_one();
  return true;
}

void file_server::worker_loop() {
  for (;;) {
    job j;
    {
      std::unique_lock lock(jobs_mutex_);
      jobs_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      j = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::shared_ptr<const std::string> body = cache_.find(j.key);
    if (!body) {
      std::ifstream in(j.key.path, std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const bool unchanged = in.good() || in.eof();
      const auto now = stamp_of(j.key.path);
      // The plan's ETag and length describe the file as it was; a file changed meanwhile
      // gets no body here (the connection plans the request again).
      if (unchanged && content.size() == j.key.size && now && now->file_time == j.key.mtime) {
        if (auto compressed = compress(j.key.encoding, content)) {
          body = std::make_shared<const std::string>(std::move(*compressed));
          cache_.insert(j.key, body);
        }
      }
    }
    j.done(std::move(body));
  }
}

bool file_server::try_open_slot(std::function<void()> wake) {
  std::lock_guard lock(slots_mutex_);
  if (slots_free_ > 0) {
    --slots_free_;
    return true;
  }
  slot_waiters_.push_back(std::move(wake));
  return false;
}

void file_server::close_slot() {
  std::deque<std::function<void()>> waiters;
  {
    std::lock_guard lock(slots_mutex_);
    ++slots_free_;
    waiters.swap(slot_waiters_);
  }
  // Everyone waiting tries again (a waiter may have gone away meanwhile; those that lose the
  // race queue up again).
  for (auto& w : waiters) w();
}

}  // namespace mles::http
