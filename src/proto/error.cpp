// The "mles" error category: short human messages for proto::errc, used in logs and as
// WebSocket close reasons (so each stays well under the 123-byte reason limit).
#include "proto/error.hpp"

#include <string>

namespace mles::proto {

namespace {

class mles_error_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "mles"; }

  std::string message(int ev) const override { return describe(ev); }

  const char* message(int ev, char* /*buffer*/, std::size_t /*len*/) const noexcept override {
    return describe(ev);
  }

 private:
  static const char* describe(int ev) noexcept {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "ok";
      case errc::join_not_text:
        return "join frame must be a text message";
      case errc::join_not_json:
        return "join frame is not a JSON object";
      case errc::join_missing_uid:
        return "join frame needs a non-empty string uid";
      case errc::join_missing_channel:
        return "join frame needs a non-empty string channel";
      case errc::join_non_ascii:
        return "uid and channel must be ASCII";
      case errc::join_bad_auth_type:
        return "auth must be a string";
      case errc::auth_required:
        return "auth required";
      case errc::auth_mismatch:
        return "auth mismatch";
      case errc::duplicate_uid:
        return "uid already joined to this channel";
      case errc::join_timeout:
        return "no join frame in time";
      case errc::envelope_truncated:
        return "peer envelope truncated";
      case errc::envelope_bad_magic:
        return "peer envelope: bad magic or version";
      case errc::envelope_bad_flags:
        return "peer envelope: unknown flag bits";
      case errc::envelope_bad_server_id:
        return "peer envelope: bad origin server id";
      case errc::envelope_bad_sequence:
        return "peer envelope: sequence 0";
      case errc::too_many_channels:
        return "server busy: too many channels";
    }
    return "unknown mles error";
  }
};

}  // namespace

const boost::system::error_category& mles_category() noexcept {
  static const mles_error_category category;
  return category;
}

}  // namespace mles::proto
