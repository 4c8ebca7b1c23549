// libFuzzer target for proto::parse_envelope (peer links): arbitrary bytes in; whatever parses
// must hold a valid origin and re-encode (header + payload) to exactly the input.
#include "proto/peer_envelope.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mles::proto;
  const std::span<const std::uint8_t> message(data, size);
  envelope e;
  const auto ec = parse_envelope(message, e);
  if (ec) {
    require(&ec.category() == &mles_category());
    require(ec.value() >= static_cast<int>(errc::envelope_truncated) &&
            ec.value() <= static_cast<int>(errc::envelope_bad_sequence));
    return 0;
  }
  require(is_valid_server_id(e.server));
  require((e.flags & ~envelope_flags::all) == 0);
  require(e.seq >= 1);
  const std::size_t header = envelope_header_size(e.server);
  require(header + e.payload.size() == size);
  require(e.payload.data() == data + header);  // a view into the input, not a copy

  std::vector<std::uint8_t> again(header + e.payload.size());
  require(write_envelope_header(again.data(), e.flags, e.server, e.instance, e.seq) == header);
  if (!e.payload.empty()) std::memcpy(again.data() + header, e.payload.data(), e.payload.size());
  require(std::memcmp(again.data(), data, size) == 0);
  return 0;
}
