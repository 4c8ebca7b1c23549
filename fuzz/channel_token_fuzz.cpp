// libFuzzer target for cluster::channel_token / channel_from_token: arbitrary bytes in, read
// both as a channel and as a token. A channel must encode to one safe subject token that
// decodes back to it; a token that decodes must be canonical (re-encode to itself).
#include "cluster/subject.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

bool in_alphabet(std::string_view token) {
  for (const char c : token) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '='))
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mles::cluster;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // As a channel.
  const std::string token = channel_token(input);
  require(is_subject_token(token));
  require(in_alphabet(token));
  require(token.size() >= input.size() && token.size() <= 3 * input.size() + 1);
  const auto channel = channel_from_token(token);
  require(channel.has_value() && *channel == input);
  const std::string subject = channel_subject("mles", input);
  require(subject.size() == 5 + token.size() && subject.compare(0, 5, "mles.") == 0);
  require(subject.find('.', 5) == std::string::npos);

  // As a token.
  if (const auto decoded = channel_from_token(input)) {
    require(in_alphabet(input) && is_subject_token(input));
    require(channel_token(*decoded) == input);
  }
  return 0;
}
