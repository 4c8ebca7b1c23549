// mles-history-fill: writes a --history-dir store of C channels × M messages (S-byte payloads
// in real server frames, each channel starting with a join frame) through the server's own
// store module, to time a restart: `mles --history-dir DIR ...` then logs
// "history: N messages in C channels restored from DIR in T ms".
//   mles-history-fill DIR [CHANNELS=10000] [MESSAGES=200] [SIZE=64]
#include "store/history_db.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mles-history-fill DIR [CHANNELS=10000] [MESSAGES=200] [SIZE=64]\n");
    return 2;
  }
  const long channels = argc > 2 ? std::atol(argv[2]) : 10000;
  const long messages = argc > 3 ? std::atol(argv[3]) : 200;
  const long size = argc > 4 ? std::atol(argv[4]) : 64;
  if (channels <= 0 || messages <= 0 || size <= 0 || size > 125) {
    std::fprintf(stderr, "mles-history-fill: CHANNELS and MESSAGES > 0, 0 < SIZE <= 125\n");
    return 2;
  }
  mles::store::history_db_options o;
  o.dir = argv[1];
  o.limit = static_cast<std::size_t>(messages);
  o.sync_interval = std::chrono::milliseconds(200);
  o.max_queued_bytes = std::size_t{1} << 30;
  mles::store::history_db db(o);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const auto t0 = std::chrono::steady_clock::now();
  for (long c = 0; c < channels; ++c) {
    const std::string channel = "channel-" + std::to_string(c);
    for (long i = 0; i < messages; ++i) {
      mles::store::history_record r;
      r.channel = channel;
      r.origin_instance = 1;
      r.seq = static_cast<std::uint64_t>(i + 1);
      std::string payload = i == 0 ? "{\"uid\":\"u\",\"channel\":\"" + channel + "\"}"
                                   : std::string(static_cast<std::size_t>(size), 'x');
      if (payload.size() > 125) payload.resize(125);
      r.flags = i == 0 ? 2 : 0;  // the first is a join frame (history only)
      r.frame.push_back(static_cast<char>(i == 0 ? 0x81 : 0x82));  // FIN + text / binary
      r.frame.push_back(static_cast<char>(payload.size()));
      r.frame += payload;
      r.time_ms = now;
      db.append(std::move(r));
    }
  }
  if (!db.flush(std::chrono::minutes(10))) {
    std::fprintf(stderr, "mles-history-fill: the store could not write everything\n");
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %ld channels x %ld messages in %.1f s\n", channels, messages, s);
  return 0;
}
