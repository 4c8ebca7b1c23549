// The links of this server to its peers (--peer): one link per channel with local members and
// per peer, opened when the hub reports a channel's first client and released when it reports
// the last one gone (the link lingers, then closes). Each channel's links live on one event
// loop (chosen by the channel's hash), so a channel's traffic stays on one thread.
// Thread-safety: on_interest() from any thread (it posts to the home loop); start/stop from the
// controlling thread; the map of links only on the home loop.
#pragma once

#include "hub/hub.hpp"
#include "net/event_loop.hpp"
#include "peer/link.hpp"
#include "peer/peer_url.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mles::peer {

class federation final : public hub::interest_observer {
 public:
  federation(std::vector<peer_url> peers, link_settings settings, std::vector<net::event_loop*> loops,
             net::event_loop& home);
  ~federation();
  federation(const federation&) = delete;
  federation& operator=(const federation&) = delete;

  // Server stop: no new attempts, every link's timers cancelled (the loops close the
  // connections). Call before the loops' graceful close.
  void stop();

  // hub::interest_observer
  void on_interest(const std::string& channel, bool has_clients) override;

 private:
  struct channel_links {
    bool wanted = false;
    std::uint64_t generation = 0;              // counts interest changes
    std::size_t idle = 0;                      // links idle since the last change
    std::vector<std::shared_ptr<link>> links;  // one per peer, same order as peers_
  };
  void set_interest(const std::string& channel, bool wanted);  // home loop
  void on_link_idle(const std::string& channel, std::uint64_t generation);  // home loop
  net::event_loop& loop_for(const std::string& channel) const;

  std::vector<peer_url> peers_;
  link_settings settings_;
  std::vector<net::event_loop*> loops_;
  net::event_loop& home_;
  std::atomic<bool> stopping_{false};
  std::unordered_map<std::string, channel_links> channels_;  // home loop only
};

}  // namespace mles::peer
