// Tests for MIME types: extension → Content-Type and the compressible/JSON/HTML predicates.
#include "http/mime.hpp"

#include <gtest/gtest.h>

namespace mles::http {
namespace {

TEST(content_type_for, knows_common_web_types) {
  const std::pair<const char*, const char*> cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json; charset=utf-8"},
      {"app.js.map", "application/json; charset=utf-8"},
      {"logo.svg", "image/svg+xml"},
      {"app.wasm", "application/wasm"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.jpeg", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.webp", "image/webp"},
      {"a.avif", "image/avif"},
      {"favicon.ico", "image/x-icon"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"f.ttf", "font/ttf"},
      {"f.otf", "font/otf"},
      {"readme.txt", "text/plain; charset=utf-8"},
      {"feed.xml", "application/xml; charset=utf-8"},
      {"doc.pdf", "application/pdf"},
      {"song.mp3", "audio/mpeg"},
      {"clip.mp4", "video/mp4"},
      {"clip.webm", "video/webm"},
      {"sound.ogg", "audio/ogg"},
      {"app.apk", "application/vnd.android.package-archive"},
      {"site.webmanifest", "application/manifest+json; charset=utf-8"},
  };
  for (const auto& [file, type] : cases) EXPECT_EQ(content_type_for(file), type) << file;
}

TEST(content_type_for, ignores_extension_case_and_directories) {
  EXPECT_EQ(content_type_for("/srv/www/INDEX.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("/srv/www.d/README"), "application/octet-stream");
}

TEST(content_type_for, falls_back_to_octet_stream) {
  for (const char* file : {"noext", "archive.unknownext", "trailingdot.", ".hidden", "x.averyveryverylongextension"}) {
    EXPECT_EQ(content_type_for(file), "application/octet-stream") << file;
  }
}

TEST(is_compressible, accepts_text_like_types_only) {
  for (const char* type : {"text/html; charset=utf-8", "text/css", "text/javascript; charset=utf-8",
                           "application/json", "application/manifest+json; charset=utf-8", "image/svg+xml",
                           "application/wasm", "application/xml", "application/javascript"}) {
    EXPECT_TRUE(is_compressible(type)) << type;
  }
  for (const char* type : {"image/png", "image/jpeg", "font/woff2", "video/mp4", "application/octet-stream",
                           "application/pdf", "application/zip"}) {
    EXPECT_FALSE(is_compressible(type)) << type;
  }
}

TEST(is_json, matches_json_and_plus_json) {
  EXPECT_TRUE(is_json("application/json; charset=utf-8"));
  EXPECT_TRUE(is_json("application/manifest+json"));
  EXPECT_FALSE(is_json("text/javascript"));
}

TEST(is_html, matches_html_with_or_without_parameters) {
  EXPECT_TRUE(is_html("text/html; charset=utf-8"));
  EXPECT_TRUE(is_html("text/html"));
  EXPECT_FALSE(is_html("text/htmlx"));
  EXPECT_FALSE(is_html("text/css"));
}

}  // namespace
}  // namespace mles::http
