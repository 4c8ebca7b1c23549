// federation: which links exist, driven by the hub's local interest.
#include "peer/federation.hpp"

#include <boost/asio/post.hpp>

#include <functional>

namespace mles::peer {

federation::federation(std::vector<peer_url> peers, link_settings settings, std::vector<net::event_loop*> loops,
                       net::event_loop& home)
    : peers_(std::move(peers)), settings_(std::move(settings)), loops_(std::move(loops)), home_(home) {}

federation::~federation() = default;

net::event_loop& federation::loop_for(const std::string& channel) const {
  return *loops_[std::hash<std::string>{}(channel) % loops_.size()];
}

void federation::on_interest(const std::string& channel, bool has_clients) {
  if (stopping_.load(std::memory_order_relaxed)) return;
  boost::asio::post(home_.io(), [this, channel, has_clients] { set_interest(channel, has_clients); });
}

void federation::set_interest(const std::string& channel, bool wanted) {
  if (stopping_.load(std::memory_order_relaxed)) return;
  auto& entry = channels_[channel];
  entry.wanted = wanted;
  const std::uint64_t generation = ++entry.generation;
  entry.idle = 0;
  if (wanted && entry.links.empty()) {
    net::event_loop& loop = loop_for(channel);
    for (const auto& url : peers_) {
      entry.links.push_back(std::make_shared<link>(loop, url, channel, settings_, stopping_,
                                                   [this, channel](std::uint64_t g) {
        boost::asio::post(home_.io(), [this, channel, g] { on_link_idle(channel, g); });
      }));
    }
  }
  for (const auto& l : entry.links) {
    boost::asio::post(l->loop().io(), [l, wanted, generation] { l->want(wanted, generation); });
  }
  if (!wanted && entry.links.empty()) channels_.erase(channel);
}

// A link reports that it closed for lack of local members, as of the interest change
// `generation`; when every link of the channel did so for the latest change, the channel's
// entry goes (the posted handlers keep the links alive until they have run).
void federation::on_link_idle(const std::string& channel, std::uint64_t generation) {
  auto it = channels_.find(channel);
  if (it == channels_.end() || it->second.wanted || it->second.generation != generation) return;
  if (++it->second.idle == it->second.links.size()) channels_.erase(it);
}

void federation::stop() {
  stopping_.store(true, std::memory_order_relaxed);
  boost::asio::post(home_.io(), [this] {
    for (auto& [name, entry] : channels_) {
      for (const auto& l : entry.links) boost::asio::post(l->loop().io(), [l] { l->stop(); });
    }
  });
}

}  // namespace mles::peer
