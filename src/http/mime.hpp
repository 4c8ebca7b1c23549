// MIME types for static files: the file extension decides Content-Type, and the type decides
// whether the body is worth compressing. Pure; tables are constant.
#pragma once

#include <filesystem>
#include <string_view>

namespace mles::http {

// Content-Type for a file by its extension (ASCII case-insensitive), with "; charset=utf-8"
// on text types; "application/octet-stream" for unknown or missing extensions.
std::string_view content_type_for(const std::filesystem::path& file);

// Text-like types worth compressing: text/*, JSON and *+json, JavaScript, XML and
// *+xml (SVG), WASM. Parameters after ';' are ignored.
bool is_compressible(std::string_view content_type);

// JSON (application/json or *+json): such responses carry Access-Control-Allow-Origin: *.
bool is_json(std::string_view content_type);

// HTML, the type whose responses carry no-cache and the security headers.
bool is_html(std::string_view content_type);

}  // namespace mles::http
