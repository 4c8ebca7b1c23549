// ws_session: join and publish for one client (or peer) session.
#include "net/ws_session.hpp"

#include "net/log_limit.hpp"
#include "net/peer_wire.hpp"
#include "proto/auth.hpp"
#include "proto/join_frame.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace mles::net {

namespace {

std::string_view as_text(std::span<const std::uint8_t> p) {
  return {reinterpret_cast<const char*>(p.data()), p.size()};
}

}  // namespace

ws_session::ws_session(connection& c, std::string peer_id)
    : websocket(c, ws::role::server, std::min(c.ctx().settings.max_message, c.ctx().settings.max_join_frame)),
      peer_(peer_id.empty() ? nullptr : std::make_unique<peer_state>(c, std::move(peer_id))) {
  c.set_open_deadline(c.loop().now() + c.ctx().settings.join_timeout);
}

std::string ws_session::describe() const {
  std::string s;
  if (!uid_.empty()) s = "uid=" + uid_ + " channel=" + std::string(channel_name());
  if (peer_) s += (s.empty() ? "" : " ") + std::string("peer=") + peer_->id;
  return s;
}

std::string_view ws_session::channel_name() const noexcept {
  if (membership_.where) return membership_.channel_name();
  return admitting_ ? std::string_view(admitting_->channel) : std::string_view();
}

void ws_session::peer_state::deliver(hub::shared_frame frame, hub::delivery_kind kind) {
  conn.deliver(std::move(frame), kind);
}

void ws_session::peer_state::relay(const hub::message& m, hub::delivery_kind kind) {
  conn.deliver(encode_enveloped(m, *conn.ctx().hub.self(), ws::role::server, conn.frame_sharing()), kind);
}

void ws_session::on_bytes(std::span<std::uint8_t> bytes) {
  websocket::on_bytes(bytes);
  end_batch();
}

void ws_session::end_batch() {
  if (!batch_open_) return;
  batch_open_ = false;
  // Empty when the session left meanwhile (leaving delivers the batch first).
  if (membership_) conn_.ctx().hub.end_batch(membership_);
}

bool ws_session::on_data(ws::opcode op, std::span<const std::uint8_t> payload) {
  if (admitting_) {
    // Cluster mode: the join is at the gate. Keep what follows, in order, within a bound.
    admitting_->early_bytes += payload.size();
    if (admitting_->early_bytes > conn_.ctx().settings.max_queue + conn_.ctx().settings.max_message) {
      close(ws::close_code::policy_violation, "too much sent before the join completed", errc::slow_consumer,
            "messages before the join completed");
      return false;
    }
    admitting_->early.push_back({op, std::vector<std::uint8_t>(payload.begin(), payload.end())});
    return true;
  }
  if (!joined_) return handle_join(op, payload);
  if (peer_) return handle_peer_message(payload);
  auto& hub = conn_.ctx().hub;
  auto& counters = conn_.loop().counters();
  loop_counters::bump(counters.messages_in, 1);
  loop_counters::bump(counters.bytes_in, payload.size());
  if (auto* durable = hub.durable(); durable && durable->durable_before_forward()) {
    // Numbered now: the stored record and what peers receive carry the same sequence.
    publish_when_durable(*durable, hub::message{encode(op, payload), nullptr, hub.next_sequence(membership_) & hub::max_sequence, 0});
    return true;
  }
  std::size_t recipients = 0;
  hub::shared_frame frame = encode(op, payload);
  const std::size_t bytes = frame.size();
  // The rest of this read's messages join it; end_batch() delivers them.
  batch_open_ = true;
  hub.publish_batched(membership_, std::move(frame), conn_.loop().now(), &recipients);
  loop_counters::bump(counters.messages_out, recipients);
  loop_counters::bump(counters.bytes_out, recipients * bytes);
  return true;
}

// --history-sync 0: the message is forwarded once the store has it on disk. The store calls
// back in the order of the appends, so a session's messages keep their order; if the disk
// fails, the message is forwarded anyway (the store keeps it queued and retries).
void ws_session::publish_when_durable(hub::history_store& durable, hub::message m) {
  std::weak_ptr<connection> weak = conn_.shared_from_this();
  event_loop* loop = &conn_.loop();
  auto pending = std::make_shared<hub::message>(m);
  durable.append_durable(membership_.where->name(), m, [weak, loop, pending](bool) {
    boost::asio::post(loop->io(), [weak, pending] {
      auto c = weak.lock();
      if (!c || c->closed()) return;
      auto* self = dynamic_cast<ws_session*>(c->handler());
      if (!self || !self->membership_ || self->closing()) return;
      std::size_t recipients = 0;
      const std::size_t bytes = pending->frame.size();
      c->ctx().hub.publish(self->membership_, std::move(*pending), c->loop().now(), hub::persisted::already,
                           &recipients);
      auto& counters = c->loop().counters();
      loop_counters::bump(counters.messages_out, recipients);
      loop_counters::bump(counters.bytes_out, recipients * bytes);
    });
  });
}

bool ws_session::handle_peer_message(std::span<const std::uint8_t> payload) {
  hub::message m;
  if (auto ec = decode_enveloped(payload, peer_->last_origin, m, conn_.frame_sharing())) {
    close(ws::close_code::protocol_error, ec.message(), errc::protocol_error, ec.message());
    return false;
  }
  std::size_t recipients = 0;
  const std::size_t bytes = m.frame.size();
  conn_.ctx().hub.publish(membership_, std::move(m), conn_.loop().now(), hub::persisted::no, &recipients);
  auto& counters = conn_.loop().counters();
  loop_counters::bump(counters.messages_out, recipients);
  loop_counters::bump(counters.bytes_out, recipients * bytes);
  return true;
}

bool ws_session::handle_join(ws::opcode op, std::span<const std::uint8_t> payload) {
  const auto& ctx = conn_.ctx();
  boost::system::error_code ec;
  proto::join_frame join;
  if (op != ws::opcode::text) ec = proto::errc::join_not_text;
  else ec = proto::parse_join_frame(as_text(payload), join);
  if (!ec) ec = ctx.auth.verify(join);
  if (ec) return refuse_join(ec, join.channel);
  uid_ = join.uid;
  if (!ctx.gate) return enter_hub(std::string(as_text(payload)), join.channel);
  // Cluster mode: the gate brings the channel's history in and claims the uid cluster-wide.
  // Messages may follow the join frame at once: they get the joined session's size limit.
  admitting_ = std::make_unique<gate_wait>();
  admitting_->channel = join.channel;
  parser().set_max_message(ctx.settings.max_message);
  admitting_->join_text.assign(as_text(payload));
  std::weak_ptr<connection> weak = conn_.shared_from_this();
  event_loop* loop = &conn_.loop();
  join_gate* gate = ctx.gate;
  gate->admit(join.channel, peer_ ? std::string() : uid_,
              [weak, loop, gate, channel = join.channel, uid = uid_](admission a) {
                boost::asio::post(loop->io(), [weak, a, gate, channel, uid] {
                  auto c = weak.lock();
                  auto* self = c ? dynamic_cast<ws_session*>(c->handler()) : nullptr;
                  if (!self) {
                    // The session is gone: give the claim back.
                    if (a == admission::claimed) gate->release(channel, uid);
                    return;
                  }
                  self->on_admitted(a);
                });
              });
  return true;
}

void ws_session::on_admitted(admission a) {
  const std::unique_ptr<gate_wait> wait = std::move(admitting_);
  claimed_ = a == admission::claimed;
  if (!wait) return;
  if (closing() || conn_.closed()) {
    release_claim(wait->channel);
    return;
  }
  if (a == admission::taken) {
    refuse_join(proto::errc::duplicate_uid, wait->channel);
    return;
  }
  if (!enter_hub(std::move(wait->join_text), wait->channel)) return;
  // What the client sent while the join was at the gate, in order.
  for (auto& m : wait->early) {
    if (closing() || !on_data(m.op, m.payload)) break;
  }
  end_batch();
}

void ws_session::release_claim(std::string_view channel) noexcept {
  if (!claimed_) return;
  claimed_ = false;
  if (auto* gate = conn_.ctx().gate) gate->release(std::string(channel), uid_);
}

bool ws_session::refuse_join(const boost::system::error_code& ec, std::string_view channel) {
  if (ec == proto::errc::too_many_channels) {
    // A bound of the server, not a fault of this join: try again later (1013).
    close(ws::close_code::try_again_later, ec.message(), errc::channel_cap, std::string(channel));
    return false;
  }
  const bool auth = ec == proto::errc::auth_mismatch || ec == proto::errc::auth_required;
  // Auth refusals at warn, the others at info; both rate-limited (an attacker chooses how many).
  const auto level = auth ? spdlog::level::warn : spdlog::level::info;
  if (problem_lines().allow(level)) {
    const std::string remote = conn_.describe(), reason = ec.message();
    log_fields f{{"remote", remote}, {"reason", "join_refused"}, {"detail", reason}};
    spdlog::log(level, "{}: join refused: {}", remote, reason);
  }
  close(ws::close_code::policy_violation, ec.message(), errc::join_refused, ec.message());
  return false;
}

bool ws_session::enter_hub(std::string join_text, const std::string& channel) {
  const auto& ctx = conn_.ctx();
  boost::system::error_code ec;
  // The hub's member is the connection; a peer session encodes what it relays.
  const auto role = peer_ ? hub::member_role::peer_session : hub::member_role::client;
  membership_ = ctx.hub.join(channel, uid_,
                             encode(ws::opcode::text, {reinterpret_cast<const std::uint8_t*>(join_text.data()),
                                                       join_text.size()}),
                             conn_.shared_from_this(), ec, conn_.loop().now(), role);
  if (ec) {
    release_claim(channel);
    return refuse_join(ec, channel);
  }
  joined_ = true;
  parser().set_max_message(ctx.settings.max_message);
  start_pinging();
  if (!peer_) {
    counted_joined_ = true;
    ctx.counters.joined.fetch_add(1, std::memory_order_relaxed);
  }
  if (session_lines().allow(spdlog::level::info)) {
    const std::string who = conn_.describe();
    log_fields f{{"uid", uid_}, {"channel", channel}};
    spdlog::info("{}: joined", who);
  }
  return true;
}

void ws_session::uncount_joined() noexcept {
  if (!counted_joined_) return;
  counted_joined_ = false;
  conn_.ctx().counters.joined.fetch_sub(1, std::memory_order_relaxed);
}

void ws_session::on_leave() {
  uncount_joined();
  release_claim(channel_name());
  if (membership_) conn_.ctx().hub.leave(membership_);
}

void ws_session::on_sweep(event_loop::clock::time_point now) {
  if (!joined_ && !closing()) {
    // A join at the gate counts against the same deadline (the gate answers well before it).
    if (now >= conn_.open_deadline()) {
      close(ws::close_code::policy_violation, proto::make_error_code(proto::errc::join_timeout).message(),
            errc::join_timeout);
    }
    return;
  }
  websocket::on_sweep(now);
}

void ws_session::on_finished(const boost::system::error_code& why, std::string_view detail) {
  uncount_joined();
  release_claim(channel_name());
  if (membership_) conn_.ctx().hub.leave(membership_);
  const std::string text = detail.empty() ? why.message() : why.message() + ": " + std::string(detail);
  const char* reason = why.category() == net_category() ? errc_name(static_cast<errc>(why.value())) : "other";
  if (!uid_.empty()) {
    if (session_lines().allow(spdlog::level::info)) {
      const std::string who = conn_.describe();
      log_fields f{{"uid", uid_}, {"channel", channel_name()}, {"reason", reason}};
      spdlog::info("{}: session ended: {}", who, text);
    }
  } else {
    spdlog::debug("{}: connection ended: {}", conn_.describe(), text);
  }
}

}  // namespace mles::net
