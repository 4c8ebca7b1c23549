// Extension → Content-Type table and type predicates (see mime.hpp).
#include "http/mime.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace mles::http {

namespace {

// Sorted by extension for binary search (checked by a static_assert below).
// JavaScript is text/javascript (RFC 9239); fonts are font/* (RFC 8081).
constexpr std::array<std::pair<std::string_view, std::string_view>, 50> types{{
    {"aac", "audio/aac"},
    {"apk", "application/vnd.android.package-archive"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"cjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"ics", "text/calendar; charset=utf-8"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"jsonld", "application/ld+json; charset=utf-8"},
    {"m4a", "audio/mp4"},
    {"map", "application/json; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/opus"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json; charset=utf-8"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml; charset=utf-8"},
    {"yaml", "application/yaml; charset=utf-8"},
    {"yml", "application/yaml; charset=utf-8"},
    {"zip", "application/zip"},
}};
static_assert(std::is_sorted(types.begin(), types.end()));

constexpr std::string_view octet_stream = "application/octet-stream";
constexpr std::size_t max_extension = 16;

// The media type without parameters, e.g. "text/html" of "text/html; charset=utf-8".
std::string_view media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (content_type.ends_with(' ')) content_type.remove_suffix(1);
  return content_type;
}

}  // namespace

std::string_view content_type_for(const std::filesystem::path& file) {
  const std::string& name = file.native();
  const auto dot = name.rfind('.');
  if (dot == std::string::npos || name.find('/', dot) != std::string::npos) return octet_stream;
  const std::string_view extension = std::string_view(name).substr(dot + 1);
  if (extension.empty() || extension.size() > max_extension) return octet_stream;
  std::array<char, max_extension> buffer{};
  std::transform(extension.begin(), extension.end(), buffer.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  const std::string_view lower(buffer.data(), extension.size());
  const auto it = std::lower_bound(types.begin(), types.end(), lower,
                                   [](const auto& entry, std::string_view key) { return entry.first < key; });
  return it != types.end() && it->first == lower ? it->second : octet_stream;
}

bool is_compressible(std::string_view content_type) {
  const std::string_view type = media_type(content_type);
  return type.starts_with("text/") || type.ends_with("+json") || type.ends_with("+xml") ||
         type == "application/json" || type == "application/javascript" || type == "application/xml" ||
         type == "application/wasm" || type == "application/yaml";
}

bool is_json(std::string_view content_type) {
  const std::string_view type = media_type(content_type);
  return type == "application/json" || type.ends_with("+json");
}

bool is_html(std::string_view content_type) { return media_type(content_type) == "text/html"; }

}  // namespace mles::http
