// Content-coding negotiation: the client's Accept-Encoding picks the body's encoding for a
// compressible file (as in the reference server: zstd preferred, then brotli; gzip beyond the reference).
#pragma once

#include <cstdint>
#include <string_view>

namespace mles::http {

enum class content_encoding : std::uint8_t { identity, gzip, br, zstd };

// The Content-Encoding token ("zstd", "br", "gzip"); "identity" for identity, which is never
// sent as a header.
std::string_view encoding_token(content_encoding encoding);

// RFC 9110 §12.5.3. The coding with the highest q-value among zstd, br and gzip wins; equal
// q-values prefer zstd, then br, then gzip. q=0 excludes a coding; "*" gives its q-value to
// codings not listed; "x-gzip" means gzip; names are case-insensitive; an element with a
// malformed q-value is ignored. identity when nothing is acceptable, including an empty or
// absent header (identity is sent even if the client excluded it, rather than a 406).
content_encoding negotiate_encoding(std::string_view accept_encoding);

}  // namespace mles::http
