// Tests for body compression: each coding round-trips through its reference decoder and
// actually shrinks text.
#include "http/compression.hpp"

#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

namespace mles::http {
namespace {

std::string sample_text() {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "<p class=\"msg\">hello mles " + std::to_string(i % 17) + "</p>\n";
  return text;
}

std::string zstd_decompress(const std::string& in) {
  const auto size = ZSTD_getFrameContentSize(in.data(), in.size());
  EXPECT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  EXPECT_NE(size, ZSTD_CONTENTSIZE_UNKNOWN);
  std::string out(static_cast<std::size_t>(size), '\0');
  const auto n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string brotli_decompress(const std::string& in, std::size_t expected_size) {
  std::string out(expected_size, '\0');
  std::size_t n = out.size();
  EXPECT_EQ(BrotliDecoderDecompress(in.size(), reinterpret_cast<const std::uint8_t*>(in.data()), &n,
                                    reinterpret_cast<std::uint8_t*>(out.data())),
            BROTLI_DECODER_RESULT_SUCCESS);
  out.resize(n);
  return out;
}

std::string gzip_decompress(const std::string& in, std::size_t expected_size) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);  // gzip wrapper only
  std::string out(expected_size + 1, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

std::string round_trip(content_encoding encoding, const std::string& input) {
  const auto compressed = compress(encoding, input);
  EXPECT_TRUE(compressed);
  if (!compressed) return {};
  switch (encoding) {
    case content_encoding::zstd: return zstd_decompress(*compressed);
    case content_encoding::br: return brotli_decompress(*compressed, input.size());
    case content_encoding::gzip: return gzip_decompress(*compressed, input.size());
    case content_encoding::identity: break;
  }
  return *compressed;
}

TEST(compress, round_trips_every_coding) {
  const std::string text = sample_text();
  for (const auto encoding : {content_encoding::zstd, content_encoding::br, content_encoding::gzip,
                              content_encoding::identity}) {
    EXPECT_EQ(round_trip(encoding, text), text) << encoding_token(encoding);
  }
}

TEST(compress, round_trips_empty_and_binary_input) {
  std::string binary(4096, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>((i * 2654435761u) >> 13);
  for (const auto encoding : {content_encoding::zstd, content_encoding::br, content_encoding::gzip}) {
    EXPECT_EQ(round_trip(encoding, ""), "") << encoding_token(encoding);
    EXPECT_EQ(round_trip(encoding, binary), binary) << encoding_token(encoding);
  }
}

TEST(compress, shrinks_repetitive_text) {
  const std::string text = sample_text();
  for (const auto encoding : {content_encoding::zstd, content_encoding::br, content_encoding::gzip}) {
    const auto compressed = compress(encoding, text);
    ASSERT_TRUE(compressed);
    EXPECT_LT(compressed->size(), text.size() / 10) << encoding_token(encoding);
  }
}

TEST(compress, gzip_output_has_gzip_magic) {
  const auto compressed = compress(content_encoding::gzip, "hello");
  ASSERT_TRUE(compressed);
  ASSERT_GE(compressed->size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>((*compressed)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*compressed)[1]), 0x8b);
}

}  // namespace
}  // namespace mles::http
