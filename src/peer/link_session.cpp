// link_upgrade and link_session: a link's connection from the upgrade to the end.
#include "peer/link_session.hpp"

#include "net/peer_wire.hpp"
#include "peer/link.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>
#include <spdlog/spdlog.h>

#include <cstring>

namespace mles::peer {

namespace {

constexpr std::string_view join_ping = "mles-link";

hub::shared_frame raw_bytes(std::string_view s) {
  return hub::shared_frame::copy_of({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

}  // namespace

// ---------------------------------------------------------------- upgrade

link_upgrade::link_upgrade(net::connection& c, std::shared_ptr<link> owner,
                           net::event_loop::clock::time_point deadline)
    : connection_handler(c), owner_(std::move(owner)), key_(ws::make_client_key()), reader_(key_),
      deadline_(deadline) {}

void link_upgrade::on_ready() {
  const auto& s = owner_->settings();
  std::vector<std::pair<std::string, std::string>> extra;
  extra.emplace_back("User-Agent", "mles/" MLES_VERSION);
  if (s.peer_mode) extra.emplace_back(std::string(net::peer_header_name), net::peer_header_value(s.server_id));
  const auto& url = owner_->url();
  conn_.push(raw_bytes(ws::make_upgrade_request(url.host_header(), url.target, key_, extra)));
}

void link_upgrade::on_bytes(std::span<std::uint8_t> bytes) {
  if (handed_over_ || conn_.closing()) return;
  const auto r = reader_.feed(bytes);
  switch (r.state) {
    case ws::upgrade_state::need_more: return;
    case ws::upgrade_state::refused: return conn_.finish(net::errc::upgrade_refused, r.error);
    case ws::upgrade_state::accepted: break;
  }
  const auto& s = owner_->settings();
  bool peer_mode = false;
  if (s.peer_mode) {
    if (auto id = net::parse_peer_header(reader_.header(net::peer_header_name))) {
      if (*id == s.server_id) return conn_.finish(net::errc::upgrade_refused, "the peer is this server itself");
      peer_mode = true;
    }
  }
  handed_over_ = true;
  auto next = std::make_unique<link_session>(conn_, owner_, peer_mode, deadline_);
  link_session& session = *next;
  conn_.replace_handler(std::move(next));  // this phase stays alive until the read returns
  session.start(bytes.subspan(r.consumed));
}

void link_upgrade::on_sweep(net::event_loop::clock::time_point now) {
  if (now >= deadline_) conn_.finish(net::errc::connect_timeout, "no answer to the upgrade request");
}

void link_upgrade::on_go_away() { conn_.finish(net::errc::server_stopping); }

void link_upgrade::on_finished(const boost::system::error_code& why, std::string_view detail) {
  if (!handed_over_) owner_->on_ended(why, detail);
}

// ---------------------------------------------------------------- session

link_session::link_session(net::connection& c, std::shared_ptr<link> owner, bool peer_mode,
                           net::event_loop::clock::time_point deadline)
    : websocket(c, ws::role::client, owner->settings().max_message), owner_(std::move(owner)),
      peer_mode_(peer_mode), deadline_(deadline) {}

std::string link_session::describe() const {
  return "link " + owner_->url().text + " channel '" + owner_->channel() + "'";
}

void link_session::start(std::span<std::uint8_t> early_bytes) {
  const std::string& join = owner_->join_text();
  conn_.push(encode(ws::opcode::text, {reinterpret_cast<const std::uint8_t*>(join.data()), join.size()}));
  // The peer answers this ping only if it accepted the join (a refusal closes the session
  // first): the pong is the join's acknowledgement, from any server that speaks RFC 6455.
  conn_.push(encode(ws::opcode::ping, {reinterpret_cast<const std::uint8_t*>(join_ping.data()), join_ping.size()}));
  boost::system::error_code ec;
  membership_ = conn_.ctx().hub.join(owner_->channel(), {}, {}, conn_.shared_from_this(), ec, conn_.loop().now(),
                                     peer_mode_ ? hub::member_role::peer_link : hub::member_role::reference_link);
  begin(early_bytes);
}

void link_session::deliver(hub::shared_frame frame, hub::delivery_kind kind) {
  relay(hub::message{std::move(frame), nullptr, 0, 0}, kind);
}

void link_session::relay(const hub::message& m, hub::delivery_kind kind) {
  if (peer_mode_) {
    conn_.deliver(net::encode_enveloped(m, *conn_.ctx().hub.self(), ws::role::client, conn_.frame_sharing()), kind);
    return;
  }
  // A server without the peer mode would deliver a join frame to its members: joins stay here.
  if (m.flags & hub::message_flags::join) return;
  const auto v = net::view_server_frame(m.frame);
  conn_.deliver(net::encode_frame(ws::role::client, v.op, v.payload, conn_.frame_sharing()), kind);
}

// Deliveries to local members of what the link brought (metrics: messages and bytes out).
void link_session::count_delivered(std::size_t recipients, std::size_t bytes) noexcept {
  auto& counters = conn_.loop().counters();
  net::loop_counters::bump(counters.messages_out, recipients);
  net::loop_counters::bump(counters.bytes_out, recipients * bytes);
}

bool link_session::on_data(ws::opcode op, std::span<const std::uint8_t> payload) {
  if (!membership_) return true;
  auto& hub = conn_.ctx().hub;
  if (peer_mode_) {
    hub::message m;
    if (auto ec = net::decode_enveloped(payload, last_origin_, m, conn_.frame_sharing())) {
      close(ws::close_code::protocol_error, ec.message(), net::errc::protocol_error, ec.message());
      return false;
    }
    std::size_t recipients = 0;
    const std::size_t bytes = m.frame.size();
    hub.publish(membership_, std::move(m), conn_.loop().now(), hub::persisted::no, &recipients);
    count_delivered(recipients, bytes);
    return true;
  }
  // A reference server replays its history, which holds this link's own join frames.
  const std::string& join = owner_->join_text();
  if (op == ws::opcode::text && payload.size() == join.size() &&
      std::memcmp(payload.data(), join.data(), join.size()) == 0)
    return true;
  std::size_t recipients = 0;
  hub::shared_frame frame = net::encode_frame(ws::role::server, op, payload, conn_.frame_sharing());
  const std::size_t bytes = frame.size();
  hub.publish(membership_, hub::message{std::move(frame), nullptr, 0, 0}, conn_.loop().now(), hub::persisted::no,
              &recipients);
  count_delivered(recipients, bytes);
  return true;
}

bool link_session::on_pong(std::span<const std::uint8_t> payload) {
  if (!up_ && payload.size() == join_ping.size() &&
      std::memcmp(payload.data(), join_ping.data(), join_ping.size()) == 0)
    mark_up();
  return true;
}

void link_session::mark_up() {
  up_ = true;
  start_pinging();
  owner_->on_up(peer_mode_);
  // Resynchronisation both ways: the peer replayed its history to us at the join; in peer
  // mode we send ours, and the peer keeps what it did not have (deduplicated by origin).
  if (peer_mode_) conn_.ctx().hub.replay(membership_);
}

void link_session::on_leave() {
  if (membership_) conn_.ctx().hub.leave(membership_);
}

void link_session::end() {
  close(ws::close_code::normal, "link closed", net::errc::link_closed);
}

void link_session::on_sweep(net::event_loop::clock::time_point now) {
  if (!up_ && !closing() && now >= deadline_) {
    close(ws::close_code::going_away, "no answer to the join", net::errc::connect_timeout, "no answer to the join");
    return;
  }
  websocket::on_sweep(now);
}

void link_session::on_finished(const boost::system::error_code& why, std::string_view detail) {
  if (membership_) conn_.ctx().hub.leave(membership_);
  owner_->on_ended(why, detail);
}

}  // namespace mles::peer
