// libFuzzer target for proto::parse_proxy_header (--proxy-protocol): arbitrary bytes in; the
// result must be consistent, bounded, and stable when more bytes follow a complete header.
#include "proto/proxy_header.hpp"

#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mles::proto;
  const std::span<const std::uint8_t> in(data, size);
  const proxy_result r = parse_proxy_header(in);
  switch (r.status) {
    case proxy_status::need_more:
      // Never asks for more than a header can be.
      require(size < proxy_header_max);
      break;
    case proxy_status::invalid:
      require(!r.what.empty());
      break;
    case proxy_status::done: {
      require(r.version == 1 || r.version == 2);
      require(r.consumed > 0 && r.consumed <= size && r.consumed <= proxy_header_max);
      if (r.version == 1) require(r.consumed <= proxy_v1_max && data[r.consumed - 1] == '\n');
      // The header alone parses the same; bytes after it do not matter.
      const proxy_result alone = parse_proxy_header(in.first(r.consumed));
      require(alone.status == proxy_status::done && alone.consumed == r.consumed);
      require(alone.source.has_value() == r.source.has_value());
      if (r.source) require(alone.source->address == r.source->address && alone.source->port == r.source->port);
      // Every shorter prefix is incomplete (a header is recognised at its last byte only).
      if (r.consumed > 1) require(parse_proxy_header(in.first(r.consumed - 1)).status == proxy_status::need_more);
      break;
    }
  }
  return 0;
}
