// zstd, brotli and gzip one-shot compression (see compression.hpp).
#include "http/compression.hpp"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>

namespace mles::http {

namespace {

std::optional<std::string> compress_zstd(std::string_view input) {
  std::string out(ZSTD_compressBound(input.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), zstd_level);
  if (ZSTD_isError(n)) return std::nullopt;
  out.resize(n);
  return out;
}

std::optional<std::string> compress_brotli(std::string_view input) {
  std::string out(BrotliEncoderMaxCompressedSize(input.size()), '\0');
  std::size_t n = out.size();
  if (n == 0 ||
      !BrotliEncoderCompress(brotli_quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, input.size(),
                             reinterpret_cast<const std::uint8_t*>(input.data()), &n,
                             reinterpret_cast<std::uint8_t*>(out.data()))) {
    return std::nullopt;
  }
  out.resize(n);
  return out;
}

std::optional<std::string> compress_gzip(std::string_view input) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&zs, gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::string out(deflateBound(&zs, static_cast<uLong>(input.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  // deflateBound covers the whole input; avail_in/avail_out are 32-bit, so inputs over 4 GiB
  // go in slices until Z_STREAM_END.
  std::size_t in_left = input.size();
  int rc = Z_OK;
  do {
    const std::size_t in_slice = std::min<std::size_t>(in_left, UINT_MAX);
    zs.avail_in = static_cast<uInt>(in_slice);
    zs.next_out = reinterpret_cast<Bytef*>(out.data()) + zs.total_out;
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - zs.total_out, UINT_MAX));
    rc = deflate(&zs, in_slice == in_left ? Z_FINISH : Z_NO_FLUSH);
    in_left -= in_slice - zs.avail_in;
  } while (rc == Z_OK);
  const std::size_t n = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  out.resize(n);
  return out;
}

}  // namespace

std::optional<std::string> compress(content_encoding encoding, std::string_view input) {
  switch (encoding) {
    case content_encoding::zstd: return compress_zstd(input);
    case content_encoding::br: return compress_brotli(input);
    case content_encoding::gzip: return compress_gzip(input);
    case content_encoding::identity: break;
  }
  return std::string(input);
}

}  // namespace mles::http
