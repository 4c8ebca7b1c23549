// The Retry-After response header (RFC 9110 §10.2.3), which ACME CAs send on polled
// resources and rate limits (RFC 8555 §6.6, §7.5.1). Pure: no I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace mles::acme {

// delta-seconds ("120") or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") turned into a
// wait from now; a date in the past gives zero. The obsolete RFC 850 and asctime date forms,
// and anything else, give nullopt (the caller then uses its own backoff).
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

}  // namespace mles::acme
