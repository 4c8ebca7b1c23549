// send_batch against real loopback TCP sockets: queued sends leave only when the batch
// completes, each owner gets exactly sendmsg()'s result (bytes, a short count, -EAGAIN, an
// error), a forgotten send never leaves, and the batch's bounds refuse rather than grow.
#include "net/send_batch.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace mles::net {
namespace {

using namespace std::chrono_literals;

// A connected loopback TCP pair: `local` sends (non-blocking, as the server's), `peer` reads.
struct tcp_pair {
  int local = -1;
  int peer = -1;
  tcp_pair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listener, 1), 0);
    EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
    peer = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(peer, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    local = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    EXPECT_GE(local, 0);
    ::close(listener);
  }
  ~tcp_pair() {
    if (local >= 0) ::close(local);
    if (peer >= 0) ::close(peer);
  }
  tcp_pair(const tcp_pair&) = delete;
  tcp_pair& operator=(const tcp_pair&) = delete;

  // What the peer can read now, without waiting.
  std::string available() const {
    std::string got;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  // Reads exactly n bytes (waits at most 30 s in all).
  std::string read_exactly(std::size_t n) const {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      const std::string more = available();
      if (more.empty()) std::this_thread::sleep_for(1ms);
      got += more;
    }
    return got;
  }
};

struct result {
  std::string owner;
  long bytes;
  std::size_t attempted;
  std::size_t tag = 0;
  std::string offered;  // the bytes of the send's iovecs, as handed back
};
std::vector<result>* results = nullptr;  // the test's, while it runs

void record(void* owner, const send_batch::outcome& o) {
  std::string offered;
  for (int i = 0; i < o.count; ++i) offered.append(static_cast<const char*>(o.iov[i].iov_base), o.iov[i].iov_len);
  results->push_back({*static_cast<std::string*>(owner), o.result, o.attempted, o.tag, std::move(offered)});
}

class send_batch_test : public ::testing::Test {
 protected:
  void SetUp() override {
    results = &got_;
    std::string why_not;
    batch_ = send_batch::make(64, &record, arena_, why_not);
    if (!batch_) GTEST_SKIP() << "io_uring unavailable here: " << why_not;
  }
  void TearDown() override { results = nullptr; }

  static std::shared_ptr<void> owner(std::string name) { return std::make_shared<std::string>(std::move(name)); }
  // Queues one send of `bytes` from memory kept until the test ends.
  bool add(const std::shared_ptr<void>& who, int fd, std::string bytes) {
    const std::string& kept = kept_.emplace_back(std::move(bytes));
    iovec iov{const_cast<char*>(kept.data()), kept.size()};
    return batch_->add(who, fd, &iov, 1, 0, kept.size());
  }

  std::unique_ptr<send_batch> batch_;
  std::vector<result> got_;
  std::deque<std::string> kept_;
  std::vector<std::uint8_t> arena_ = std::vector<std::uint8_t>(256 * 1024);
};

TEST_F(send_batch_test, queued_sends_leave_together_when_the_batch_completes_and_each_owner_gets_its_bytes) {
  tcp_pair a, b, c;
  batch_->begin();
  // a: one buffer of its own; b: a copy in the batch's space followed by its own buffer;
  // c: two copies side by side in the batch's space.
  const std::string to_a = "to a: " + std::string(1000, 'a');
  ASSERT_TRUE(add(owner("a"), a.local, to_a));
  const std::string b_head = "b's head ";
  const std::string b_tail(5000, 'b');
  auto space = batch_->copy_space();
  ASSERT_EQ(space.size(), arena_.size()) << "the whole arena at first";
  std::memcpy(space.data(), b_head.data(), b_head.size());
  iovec b_iov[2] = {{space.data(), b_head.size()}, {const_cast<char*>(b_tail.data()), b_tail.size()}};
  ASSERT_TRUE(batch_->add(owner("b"), b.local, b_iov, 2, b_head.size(), b_head.size() + b_tail.size()));
  space = batch_->copy_space();
  EXPECT_EQ(space.data(), arena_.data() + b_head.size()) << "b's copy would be overwritten";
  const std::string to_c = "for c, copied";
  std::memcpy(space.data(), to_c.data(), to_c.size());
  iovec c_iov{space.data(), to_c.size()};
  ASSERT_TRUE(batch_->add(owner("c"), c.local, &c_iov, 1, to_c.size(), to_c.size(), 42));
  EXPECT_EQ(batch_->queued(), 3u);

  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(a.available(), "") << "a send left before the batch completed";
  EXPECT_EQ(b.available(), "");
  EXPECT_EQ(c.available(), "");

  batch_->complete();
  ASSERT_EQ(got_.size(), 3u);
  EXPECT_EQ(got_[0].owner, "a");
  EXPECT_EQ(got_[0].bytes, static_cast<long>(to_a.size()));
  EXPECT_EQ(got_[1].owner, "b");
  EXPECT_EQ(got_[1].bytes, static_cast<long>(b_head.size() + b_tail.size()));
  EXPECT_EQ(got_[1].attempted, b_head.size() + b_tail.size());
  EXPECT_EQ(got_[2].owner, "c");
  EXPECT_EQ(got_[2].bytes, static_cast<long>(to_c.size()));
  // Each completion is handed what was offered (a TLS sender keeps the unsent tail from it)
  // and the tag it was queued with.
  EXPECT_EQ(got_[1].offered, b_head + b_tail);
  EXPECT_EQ(got_[2].offered, to_c);
  EXPECT_EQ(got_[2].tag, 42u);
  EXPECT_EQ(got_[0].tag, 0u);
  EXPECT_EQ(a.read_exactly(to_a.size()), to_a);
  EXPECT_EQ(b.read_exactly(b_head.size() + b_tail.size()), b_head + b_tail);
  EXPECT_EQ(c.read_exactly(to_c.size()), to_c);
  EXPECT_FALSE(batch_->collecting());
  EXPECT_EQ(batch_->queued(), 0u);

  // The batch is used again: the next pass's copy space starts over.
  batch_->begin();
  EXPECT_EQ(batch_->copy_space().size(), arena_.size());
  ASSERT_TRUE(add(owner("a again"), a.local, "second"));
  batch_->complete();
  ASSERT_EQ(got_.size(), 4u);
  EXPECT_EQ(got_[3].bytes, 6);
  EXPECT_EQ(a.read_exactly(6), "second");
}

TEST_F(send_batch_test, a_full_socket_reports_eagain_at_once) {
  tcp_pair full;
  // Fill the socket until the kernel refuses even one byte (the peer does not read), then
  // queue a send at once. (A batch that waited for room would hang here until the test's
  // timeout: nobody reads.) TCP may free a little room moments later, so a send that still
  // fitted is retried; every attempt must complete without waiting.
  const std::string chunk(64 * 1024, 'f');
  long seen = 0;
  for (int attempt = 0; attempt < 20 && seen != -EAGAIN; ++attempt) {
    for (const std::size_t size : {chunk.size(), std::size_t{4096}, std::size_t{1}}) {
      for (int i = 0; i < 100000; ++i) {
        if (::send(full.local, chunk.data(), size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) break;
      }
    }
    got_.clear();
    batch_->begin();
    EXPECT_TRUE(add(owner("full"), full.local, "more"));
    batch_->complete();
    ASSERT_EQ(got_.size(), 1u);
    seen = got_[0].bytes;
    EXPECT_TRUE(seen == -EAGAIN || seen == 4) << seen;
  }
  EXPECT_EQ(seen, -EAGAIN);
}

TEST_F(send_batch_test, a_short_send_reports_what_the_kernel_took) {
  tcp_pair short_one;
  // Offered far more than its buffers hold while the peer does not read.
  batch_->begin();
  EXPECT_TRUE(add(owner("short"), short_one.local, std::string(16 * 1024 * 1024, 's')));
  batch_->complete();
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_GT(got_[0].bytes, 0);
  EXPECT_LT(got_[0].bytes, 16 * 1024 * 1024);
  EXPECT_EQ(got_[0].attempted, 16u * 1024 * 1024);
  const auto n = static_cast<std::size_t>(got_[0].bytes);
  EXPECT_EQ(short_one.read_exactly(n), std::string(n, 's'));
}

TEST_F(send_batch_test, a_send_to_a_reset_connection_reports_the_error) {
  tcp_pair gone;
  const linger reset{1, 0};
  ASSERT_EQ(::setsockopt(gone.peer, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  ::close(gone.peer);
  gone.peer = -1;
  // The reset reaches the local end asynchronously: wait until a read sees it.
  char c;
  for (int i = 0; i < 3000 && ::recv(gone.local, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  batch_->begin();
  ASSERT_TRUE(add(owner("gone"), gone.local, "anyone there?"));
  batch_->complete();
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_LT(got_[0].bytes, 0);
  EXPECT_NE(got_[0].bytes, -EAGAIN);
}

TEST_F(send_batch_test, a_forgotten_send_never_leaves_and_gets_no_completion) {
  tcp_pair kept, dropped;
  auto going = owner("going");
  batch_->begin();
  ASSERT_TRUE(add(owner("kept"), kept.local, "kept"));
  ASSERT_TRUE(add(going, dropped.local, "never"));
  batch_->forget(going.get());
  batch_->complete();
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].owner, "kept");
  EXPECT_EQ(kept.read_exactly(4), "kept");
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(dropped.available(), "");
}

TEST_F(send_batch_test, sends_are_refused_outside_a_pass_past_the_entries_and_from_a_completion) {
  tcp_pair p;
  EXPECT_FALSE(add(owner("early"), p.local, "x")) << "queued outside begin()..complete()";
  batch_->begin();
  int queued = 0;
  for (int i = 0; i < 100; ++i) {
    if (!batch_->has_room()) break;
    ASSERT_TRUE(add(owner(std::to_string(i)), p.local, "x"));
    ++queued;
  }
  EXPECT_EQ(queued, 64) << "the ring has 64 entries";
  EXPECT_FALSE(batch_->has_room());
  EXPECT_FALSE(add(owner("one too many"), p.local, "x"));
  batch_->complete();
  EXPECT_EQ(got_.size(), 64u);
  EXPECT_EQ(p.read_exactly(64), std::string(64, 'x'));
  // A batch holding submit_bytes asks to go out (the readers start while more is prepared).
  batch_->begin();
  ASSERT_TRUE(add(owner("big"), p.local, std::string(send_batch::submit_bytes - 1, 'y')));
  EXPECT_TRUE(batch_->has_room());
  ASSERT_TRUE(add(owner("one more"), p.local, "y"));
  EXPECT_FALSE(batch_->has_room());
  batch_->complete();
  EXPECT_EQ(p.read_exactly(send_batch::submit_bytes), std::string(send_batch::submit_bytes, 'y'));
}

TEST_F(send_batch_test, records_sealed_into_the_batch_stay_put_while_more_are_appended) {
  tcp_pair a, b;
  batch_->begin();
  byte_buffer& out = batch_->sealed();
  const std::size_t room = batch_->sealed_room();
  ASSERT_GE(room, 1024u * 1024) << "room for a fan-out's records";
  const std::string first(300 * 1024, 'r');
  out.insert(out.end(), first.begin(), first.end());
  iovec a_iov{out.data(), 1000};  // (small sends: only the record space may run out)
  ASSERT_TRUE(batch_->add(owner("a"), a.local, &a_iov, 1, 0, 1000, 7));
  const std::uint8_t* where = out.data();
  const std::string second(batch_->sealed_room() - 1, 's');  // all that is left but a byte
  out.insert(out.end(), second.begin(), second.end());
  EXPECT_EQ(out.data(), where) << "the records queued first moved";
  iovec b_iov{out.data() + first.size(), 1000};
  ASSERT_TRUE(batch_->add(owner("b"), b.local, &b_iov, 1, 0, 1000, 8));
  EXPECT_FALSE(batch_->has_room()) << "no record space left";
  batch_->complete();
  ASSERT_EQ(got_.size(), 2u);
  EXPECT_EQ(got_[0].tag, 7u);
  EXPECT_EQ(a.read_exactly(1000), first.substr(0, 1000));
  EXPECT_EQ(b.read_exactly(1000), std::string(1000, 's'));
  batch_->begin();
  EXPECT_EQ(batch_->sealed_room(), room) << "the next pass starts with the whole buffer";
  batch_->complete();
}

// A completion that writes again (the rest of a burst) goes out directly: the finished batch
// takes nothing more.
send_batch* refusing = nullptr;
int refused_fd = -1;
void add_from_completion(void* owner, const send_batch::outcome& o) {
  record(owner, o);
  static const std::string again = "again";
  iovec iov{const_cast<char*>(again.data()), again.size()};
  const bool queued = refusing->add(std::make_shared<std::string>("x"), refused_fd, &iov, 1, 0, 5);
  results->push_back({queued ? "queued" : "refused", 0, 0, 0, ""});
}

TEST(send_batch_completion, takes_no_new_send) {
  std::vector<result> got;
  results = &got;
  std::string why_not;
  std::vector<std::uint8_t> arena(256 * 1024);
  auto batch = send_batch::make(8, &add_from_completion, arena, why_not);
  if (!batch) GTEST_SKIP() << "io_uring unavailable here: " << why_not;
  tcp_pair p;
  refusing = batch.get();
  refused_fd = p.local;
  batch->begin();
  static const std::string first = "first";
  iovec iov{const_cast<char*>(first.data()), first.size()};
  ASSERT_TRUE(batch->add(std::make_shared<std::string>("p"), p.local, &iov, 1, 0, first.size()));
  batch->complete();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].owner, "refused");
  EXPECT_EQ(batch->queued(), 0u);
  results = nullptr;
}

}  // namespace
}  // namespace mles::net
