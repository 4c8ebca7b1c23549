// End-to-end tests of the durable history (--history-dir, --history-sync; README, "History on
// disk") with real `mles` processes on loopback. A channel's history, join frames included, survives a restart:
// everything after SIGTERM (the store is flushed at stop), everything older than the group
// commit interval after SIGKILL, and with --history-sync 0 everything a member received. After
// a restart the history keeps the in-memory bounds (--limit, --history-bytes, the newest always
// kept), every channel comes back in its own channel whatever its name, and the directory holds
// nothing but history.sqlite3* (0700 directory, 0600 files). A damaged store (a torn
// write-ahead-log tail, garbage appended, a database file that is not one) never stops the
// server, and neither does an unusable directory or a full disk: it serves from memory and
// writes the records once the disk works again. Linked servers (README, "Linking servers")
// resynchronise on link-up: a server restarted with an empty (or its old) directory gets the
// channel's history back from its peers, and no member anywhere receives a message twice.
//
// A newcomer's history replay is what it receives right after joining while nobody publishes
// (README, "Protocol in one screen": "the channel's history ... is replayed on join", oldest
// first, join frames included; the newcomer's own join is not part of it). Client messages are
// "msg:<uid>:<n>". The binary is $MLES_TEST_BINARY when set, else the mles built with the
// tests. With MLES_HISTORY_E2E_LOGS set, the servers' logs are printed for passing tests too.
#include "support/mles_cluster.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#ifndef MLES_BINARY
#error "MLES_BINARY must name the mles executable"
#endif

namespace mles::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr millis replay_timeout{30'000};  // a newcomer's whole history arrived
// After a newcomer's expected history frames, nothing more may arrive for this long. On one
// server the history is queued at the join, before the answer to the join's ping barrier, so a
// short look suffices; where links can still bring frames, the tests look for quiet_period.
constexpr millis replay_quiet{300};
constexpr millis store_timeout{30'000};   // the store logged what it does (its retries are 5 s apart)
// Waited after the last message before a SIGKILL that must not lose it: well beyond the group
// commit interval (the tests give 0.2 s or 1 s; README, "History on disk": "kill -9 ... loses at
// most the last interval").
constexpr millis beyond_sync_interval{2'000};
// Time for a few group commits of 0.2 s where nothing depends on their having happened.
constexpr millis a_few_commits{1'000};

std::string msg(std::string_view uid, int n) { return "msg:" + std::string{uid} + ":" + std::to_string(n); }

// The join frame a member sent, as the history replays it (byte for byte).
std::string join_frame(std::string_view uid, std::string_view channel) { return ws_client::join_text(uid, channel); }

// A message of exactly size bytes: "msg:<uid>:<n>|xxxx...".
std::string padded(std::string_view uid, int n, std::size_t size) {
  std::string s = msg(uid, n) + "|";
  if (s.size() < size) s.append(size - s.size(), 'x');
  return s;
}

std::vector<std::string> msgs(std::string_view uid, int first, int count) {
  std::vector<std::string> out;
  for (int n = first; n < first + count; ++n) out.push_back(msg(uid, n));
  return out;
}

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<std::string> history_flags(const fs::path& dir, std::string_view sync,
                                       std::vector<std::string> more = {}) {
  std::vector<std::string> flags{"--history-dir", dir.string(), "--history-sync", std::string{sync}};
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// got == want, with the sizes and both sequences around the first difference when not.
::testing::AssertionResult same_sequence(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  if (got == want) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  auto around = [&](const std::vector<std::string>& v) {
    std::string out;
    const std::size_t from = i >= 3 ? i - 3 : 0;
    for (std::size_t k = from; k < v.size() && k < i + 5; ++k) out += "\n    [" + std::to_string(k) + "] " + printable_head(v[k]);
    return out.empty() ? std::string{" (nothing)"} : out;
  };
  return ::testing::AssertionFailure() << got.size() << " frames instead of " << want.size()
                                       << "; first difference at index " << i << "\n  got:" << around(got)
                                       << "\n  want:" << around(want);
}

// With --history-sync 0 a client's message reaches the in-memory history once it is on disk,
// while joins and link messages that arrive meanwhile are written at once: after a restart
// the frames are the same and each sender's frames keep their order, but frames of different
// senders may interleave differently (README, "History on disk"). The sender of "msg:X:n" is
// X; join frames count as one sender (they are written in the order the joins happened).
::testing::AssertionResult same_frames_in_each_senders_order(const std::vector<std::string>& got,
                                                             const std::vector<std::string>& want) {
  auto sender = [](const std::string& f) {
    if (f.rfind("msg:", 0) == 0) return f.substr(0, f.find(':', 4));
    return std::string("join");
  };
  auto split = [&](const std::vector<std::string>& v) {
    std::map<std::string, std::vector<std::string>> by;
    for (const auto& f : v) by[sender(f)].push_back(f);
    return by;
  };
  const auto g = split(got), w = split(want);
  if (g == w) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << got.size() << " frames, " << want.size() << " wanted;";
  for (const auto& [who, frames] : w) {
    auto it = g.find(who);
    if (it == g.end()) failure << " nothing from " << who << ";";
    else if (it->second != frames) failure << " " << who << ": " << same_sequence(it->second, frames).message() << ";";
  }
  for (const auto& [who, frames] : g) {
    if (!w.count(who)) failure << " unexpected frames from " << who << ";";
  }
  return failure;
}

// Appends n pseudo-random bytes to a file (created 0600 if missing).
void append_garbage(const fs::path& file, std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(gen() & 0xff);
  const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << "open " << file << ": " << std::strerror(errno);
  const ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
  ::close(fd);
  ASSERT_EQ(wrote, static_cast<ssize_t>(n)) << "append to " << file;
}

// Overwrites the file from byte offset on (to its end) with pseudo-random bytes.
void overwrite_from(const fs::path& file, std::uintmax_t offset, unsigned seed) {
  const std::uintmax_t size = fs::file_size(file);
  ASSERT_GT(size, offset) << file << " is only " << size << " bytes";
  std::mt19937 gen(seed);
  std::string bytes(static_cast<std::size_t>(size - offset), '\0');
  for (char& c : bytes) c = static_cast<char>(gen() & 0xff);
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << "overwrite " << file;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0xffffu;  // no such file: a mode no file has
  return st.st_mode & 07777;
}

std::string octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", mode);
  return buf;
}

// Names of the entries of a directory (not recursive), sorted.
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += " '" + n + "'";
  return out.empty() ? " (nothing)" : out;
}

// A tmpfs of the given size mounted on an existing empty directory (mount(2)); detached by the
// destructor, so that it goes even while a killed server's files are still open.
class tmpfs_mount {
 public:
  tmpfs_mount(fs::path at, std::string_view size) : at_(std::move(at)) {
    const std::string data = "size=" + std::string{size} + ",mode=0755";
    if (::mount("tmpfs", at_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = "mount -t tmpfs -o " + data + " tmpfs " + at_.string() + ": " + std::strerror(errno);
    }
  }
  ~tmpfs_mount() {
    if (mounted_ && ::umount2(at_.c_str(), MNT_DETACH) != 0) {
      std::cerr << "umount " << at_ << ": " << std::strerror(errno) << "\n";
    }
  }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;

  bool mounted() const noexcept { return mounted_; }
  const std::string& error() const noexcept { return error_; }

 private:
  fs::path at_;
  bool mounted_ = false;
  std::string error_;
};

// Writes file until the file system is full (ENOSPC); the bytes written.
std::uintmax_t fill_up(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    ADD_FAILURE() << "open " << file << ": " << std::strerror(errno);
    return 0;
  }
  const std::string chunk(4096, 'f');
  std::uintmax_t total = 0;
  int last_errno = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    const ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n <= 0) {
      last_errno = errno;
      break;
    }
    total += static_cast<std::uintmax_t>(n);
  }
  ::close(fd);
  EXPECT_EQ(last_errno, ENOSPC) << "filling " << file << " stopped with: " << std::strerror(last_errno);
  return total;
}

// ---------------------------------------------------------------------------------------------
// Fixture: the cluster (one server "h" for most tests), a scratch directory for the history
// directories, every member's received frames, and on failure (or with MLES_HISTORY_E2E_LOGS)
// the servers' command lines and logs of every run.

struct inbox {
  std::vector<std::string> frames;        // data payloads in arrival order, the history replay first
  std::map<std::string, int> count;       // how often each payload arrived
};

class durable_history : public ::testing::Test {
 protected:
  void TearDown() override {
    net_.stop_all();
    if (HasFailure() || std::getenv("MLES_HISTORY_E2E_LOGS") != nullptr) net_.dump_logs(std::cerr);
    disk_.reset();  // after the servers stopped
  }

  // One server, "h", with these flags; started.
  bool start_one(std::vector<std::string> extra) {
    net_.declare({{.name = "h", .extra = std::move(extra)}});
    return net_.start(0);
  }

  member& join(std::size_t server, const std::string& uid, std::optional<std::string> channel = std::nullopt) {
    member& m = net_.join(server, uid, std::move(channel));
    inboxes_[&m];
    return m;
  }

  const inbox& of(const member& m) { return inboxes_[&m]; }

  // Reads what has arrived for these members into their inboxes until done() or duration.
  bool pump_for(const std::vector<member*>& ms, millis duration, const std::function<bool()>& done = [] {
    return false;
  }) {
    return pump(
        net_, ms, duration,
        [&](std::size_t r, const std::string& payload) {
          inbox& in = inboxes_[ms[r]];
          in.frames.push_back(payload);
          ++in.count[payload];
        },
        done);
  }

  // Every one of want is in m's inbox.
  bool holds_all(const member& m, const std::vector<std::string>& want) {
    const inbox& in = inboxes_[&m];
    return std::all_of(want.begin(), want.end(), [&](const std::string& w) { return in.count.contains(w); });
  }

  // Waits until each member's inbox holds every frame wanted for it (a failure naming what is
  // missing when not within timeout), then reads for `quiet` more so that extra frames show.
  bool await_all(const std::vector<std::pair<member*, std::vector<std::string>>>& wanted, millis timeout,
                 millis quiet = 0ms) {
    std::vector<member*> ms;
    for (const auto& [m, w] : wanted) ms.push_back(m);
    const bool done = pump_for(ms, timeout, [&] {
      return std::all_of(wanted.begin(), wanted.end(), [&](const auto& mw) { return holds_all(*mw.first, mw.second); });
    });
    if (!done) {
      for (const auto& [m, w] : wanted) {
        std::size_t missing = 0;
        std::string first;
        for (const auto& f : w) {
          if (!inboxes_[m].count.contains(f)) {
            if (missing++ == 0) first = f;
          }
        }
        if (missing > 0) {
          ADD_FAILURE() << m->uid << ": " << missing << " of " << w.size() << " expected frames did not arrive within "
                        << timeout.count() << " ms (first missing: " << printable_head(first) << "; "
                        << inboxes_[m].frames.size() << " arrived)";
        }
      }
    }
    if (quiet > 0ms) pump_for(ms, quiet);
    return done;
  }

  // A newcomer: joins uid on the server and reads its history replay, what arrives until at
  // least `expected` frames (bounded by replay_timeout) and then for `quiet` more.
  member& newcomer(std::size_t server, const std::string& uid, std::size_t expected,
                   std::optional<std::string> channel = std::nullopt, millis quiet = replay_quiet) {
    member& m = join(server, uid, std::move(channel));
    if (!m.open) return m;
    if (!pump_for({&m}, replay_timeout, [&] { return of(m).frames.size() >= expected; })) {
      ADD_FAILURE() << uid << ": " << of(m).frames.size() << " history frames within " << replay_timeout.count()
                    << " ms, expected " << expected;
    }
    pump_for({&m}, quiet);
    return m;
  }

  // The newcomer's history replay.
  std::vector<std::string> replay(std::size_t server, const std::string& uid, std::size_t expected,
                                  std::optional<std::string> channel = std::nullopt, millis quiet = replay_quiet) {
    return of(newcomer(server, uid, expected, std::move(channel), quiet)).frames;
  }

  // sender sends msg:<uid>:<first..first+count-1>.
  void publish(member& sender, int first, int count) {
    for (int n = first; n < first + count; ++n) {
      ASSERT_TRUE(sender.ws->send_text(msg(sender.uid, n))) << sender.uid << ": " << sender.ws->error();
    }
  }

  // A line of the current run of server i, warn or worse, with "history:"; nullopt after timeout.
  std::optional<std::string> history_warning(std::size_t i, millis timeout = store_timeout) {
    const auto hit = net_.wait_log(
        i, [](std::string_view l) { return at_least_warn(l) && l.find("history:") != std::string_view::npos; }, 0,
        timeout);
    if (!hit) return std::nullopt;
    return hit->line;
  }

  // The start-up lines of the current run of server i saying what it restored: README, "History
  // on disk": "history: N messages in M channels restored from DIR in T ms", and the store's
  // own "history: <file>: loaded N records of M channels (...)". Both count join frames.
  void expect_restored(std::size_t i, std::size_t records, std::size_t channels) {
    const std::string counts[] = {
        "history: " + std::to_string(records) + " messages in " + std::to_string(channels) + " channel",
        "loaded " + std::to_string(records) + " records of " + std::to_string(channels) + " channel"};
    for (const std::string& what : counts) {
      const auto hit = net_.wait_log(
          i, [&](std::string_view l) { return l.find(what) != std::string_view::npos; }, 0, log_timeout);
      EXPECT_TRUE(hit) << "no start-up line with '" << what << "'";
    }
  }

  // No payload but join frames (JSON; a member may legitimately join twice) arrived twice at m,
  // and each sender's "msg:" numbers arrived in increasing order (README: "in per-sender order").
  void expect_once_in_order(const member& m) {
    const inbox& in = inboxes_[&m];
    int dups = 0;
    for (const auto& [payload, n] : in.count) {
      if (n > 1 && payload.rfind('{', 0) != 0 && ++dups <= 5) {
        ADD_FAILURE() << m.uid << " received " << printable_head(payload) << " " << n << " times";
      }
    }
    EXPECT_LE(dups, 5) << m.uid << ": " << dups << " payloads received more than once";
    std::map<std::string, int> last;
    for (const auto& f : in.frames) {
      const auto p = parse_payload("msg", f);
      if (!p) continue;
      const auto it = last.find(p->first);
      if (it != last.end() && p->second <= it->second) {
        ADD_FAILURE() << m.uid << ": msg:" << p->first << ":" << p->second << " arrived after msg:" << p->first << ":"
                      << it->second;
        return;
      }
      last[p->first] = p->second;
    }
  }

  // No server's current run logged a link or session closed for a protocol error (close 1002,
  // RFC 6455 §7.4.1): between healthy servers of this project it never is.
  void expect_no_protocol_errors() {
    for (std::size_t i = 0; i < net_.size(); ++i) {
      const auto n = net_.count_log(i, [](std::string_view l) { return l.find("close 1002") != std::string_view::npos; });
      EXPECT_EQ(n, 0u) << "server " << net_.name(i) << " logged " << n << " line(s) with 'close 1002'";
    }
  }

  // The "msg:" payloads m received, as a set.
  std::set<std::string> msg_set(const member& m) {
    std::set<std::string> out;
    for (const auto& [payload, n] : inboxes_[&m].count) {
      if (payload.rfind("msg:", 0) == 0) out.insert(payload);
    }
    return out;
  }

  cluster net_{binary_under_test(MLES_BINARY), "history"};
  temp_dir tmp_;
  std::optional<tmpfs_mount> disk_;
  std::map<const member*, inbox> inboxes_;
};

#define MLES_ASSERT_NO_FAILURE_YET() ASSERT_FALSE(::testing::Test::HasFailure())

// ---------------------------------------------------------------------------------------------
// 1-3: what survives a stop.

// A --history-sync value; the test name shows it with '_' for '.'.
class durable_history_sync : public durable_history, public ::testing::WithParamInterface<const char*> {};

std::string sync_name(const ::testing::TestParamInfo<const char*>& param_info) {
  std::string name = std::string{"sync_"} + param_info.param;
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

// SIGTERM flushes the store: everything published before it is back after a restart, join
// frames included, in order, with a 1 s group commit interval as with every message durable
// before it is forwarded (0).
using sigterm_with_sync = durable_history_sync;
TEST_P(sigterm_with_sync, keeps_every_message_published_before_sigterm_in_order) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, GetParam())));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 50);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 50)}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));

  ASSERT_TRUE(net_.start(0));
  expect_restored(0, 52, 1);
  const std::string channel = net_.channel();
  EXPECT_TRUE(same_sequence(replay(0, "late", 52),
                            concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 50)})));
}

INSTANTIATE_TEST_SUITE_P(history, sigterm_with_sync, ::testing::Values("1", "0"), sync_name);

// SIGKILL loses at most the last group commit interval: messages older than it survive, join
// frames included, in order (with 0, nothing a member received may be lost).
using sigkill_with_sync = durable_history_sync;
TEST_P(sigkill_with_sync, keeps_messages_older_than_the_sync_interval_after_sigkill_in_order) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, GetParam())));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 50);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 50)}}, delivery_timeout));
  pump_for({&sub}, beyond_sync_interval);
  ASSERT_TRUE(net_.kill(0));

  ASSERT_TRUE(net_.start(0));
  const std::string channel = net_.channel();
  EXPECT_TRUE(same_sequence(replay(0, "late", 52),
                            concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 50)})));
}

INSTANTIATE_TEST_SUITE_P(history, sigkill_with_sync, ::testing::Values("0.2", "0"), sync_name);

// --history-sync 0: a message reaches the other members only once it is durable, so whatever a
// member received survives a SIGKILL that comes while the publisher is still sending. The
// history after the restart is a prefix of what was sent (the store commits in order).
TEST_F(durable_history, keeps_whatever_a_member_received_after_sigkill_with_sync_0) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "0", {"--limit", "10000"})));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();

  constexpr int target = 150;       // kill once sub received at least this message
  constexpr int max_in_flight = 64; // sent but not yet received by sub: the publisher keeps sending
  int sent = 0;
  int received = -1;                // highest n of msg:pub:n that sub received, in order
  const auto deadline = steady::now() + delivery_timeout;
  for (int pass = 0; pass < max_passes && received < target && steady::now() < deadline; ++pass) {
    for (int burst = 0; burst < 8 && sent - received - 1 < max_in_flight; ++burst) {
      ASSERT_TRUE(pub.ws->send_text(msg("pub", sent))) << pub.ws->error();
      ++sent;
    }
    pump_for({&sub}, 2ms, [&] { return !of(sub).frames.empty(); });
    for (const auto& f : of(sub).frames) {
      if (f.rfind('{', 0) == 0) continue;  // pub's join frame, sub's history
      const auto p = parse_payload("msg", f);
      ASSERT_TRUE(p && p->first == "pub" && p->second == received + 1) << "sub received " << printable_head(f)
                                                                       << " after msg:pub:" << received;
      received = p->second;
    }
    inboxes_[&sub] = {};
  }
  ASSERT_GE(received, target) << "sub received only up to msg:pub:" << received << " within "
                              << delivery_timeout.count() << " ms";
  for (int burst = 0; burst < 8; ++burst) {  // the publisher is still sending at the kill
    ASSERT_TRUE(pub.ws->send_text(msg("pub", sent))) << pub.ws->error();
    ++sent;
  }
  ASSERT_TRUE(net_.kill(0));

  ASSERT_TRUE(net_.start(0));
  const std::string channel = net_.channel();
  const auto got = replay(0, "late", static_cast<std::size_t>(received) + 3);
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0], join_frame("pub", channel));
  EXPECT_EQ(got[1], join_frame("sub", channel));
  int n = 0;
  for (std::size_t i = 2; i < got.size(); ++i, ++n) {
    ASSERT_EQ(got[i], msg("pub", n)) << "history frame " << i << " (messages: received " << received << ", sent "
                                     << sent << ")";
  }
  EXPECT_GT(n, received) << "received up to msg:pub:" << received << " before the kill, the history ends at msg:pub:"
                         << n - 1;
  EXPECT_LE(n, sent);
}

// --history-sync 0: a client's message joins the history in memory (and reaches the members)
// once it is on disk; joins arriving meanwhile are in memory before it. The disk must keep the
// order the members saw: after a restart a newcomer finds exactly what one found before.
TEST_F(durable_history, keeps_each_senders_order_when_joins_arrive_while_a_message_awaits_the_disk) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "0")));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  // Upgraded sessions that join right after each message (README, "Protocol in one screen").
  constexpr int rounds = 20;
  std::vector<std::unique_ptr<ws_client>> joiners;
  for (int n = 0; n < rounds; ++n) {
    auto c = std::make_unique<ws_client>();
    connect_options o;
    o.timeout = session_timeout;
    handshake_options h;
    h.timeout = session_timeout;
    ASSERT_TRUE(c->connect(net_.at(0).port, o)) << c->error();
    ASSERT_EQ(c->handshake(h).code, 101);
    joiners.push_back(std::move(c));
  }
  for (int n = 0; n < rounds; ++n) {
    ASSERT_TRUE(pub.ws->send_text(msg("pub", n))) << pub.ws->error();
    ASSERT_TRUE(joiners[static_cast<std::size_t>(n)]->join("j" + std::to_string(n), net_.channel()));
  }
  for (auto& c : joiners) ASSERT_TRUE(c->sync(session_timeout)) << c->error();
  // Every message is durable and in memory once sub has it.
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, rounds)}}, delivery_timeout));
  for (auto& c : joiners) {
    c->send_close(1000);
    c->close_socket();
  }
  const auto before = replay(0, "before", 2 + 2 * rounds);

  ASSERT_TRUE(net_.stop(0));
  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(same_frames_in_each_senders_order(replay(0, "after", before.size() + 1),
                                                concat({before, {join_frame("before", net_.channel())}})));
}

// ---------------------------------------------------------------------------------------------
// 4, 5: bounds and channels after a restart.

// --limit: after 30 messages and a restart, the last 10 (the join frames fell out first).
TEST_F(durable_history, restores_the_last_limit_messages) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1", {"--limit", "10"})));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 30);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 30)}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(same_sequence(replay(0, "late", 10), msgs("pub", 20, 10)));
}

// A stored record whose sequence number is beyond what the hub keeps (56 bits; this server
// never writes one: another program's or a damaged row) is left out at start; the rest of
// the channel's history comes back in order and the server serves.
TEST_F(durable_history, leaves_out_a_stored_record_whose_sequence_is_beyond_the_hubs_range) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1")));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 6);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 6)}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));

  // Rows in order: join pub, join sub, messages 0..5. Message 1 gets 2^56, message 3 2^64-1.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "history.sqlite3").c_str(), &db), SQLITE_OK);
  const char* sql =
      "UPDATE history SET seq = 72057594037927936 WHERE id = (SELECT id FROM history ORDER BY id LIMIT 1 OFFSET 3);"
      "UPDATE history SET seq = -1 WHERE id = (SELECT id FROM history ORDER BY id LIMIT 1 OFFSET 5);";
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  const std::string why = err ? err : "";
  sqlite3_free(err);
  ASSERT_EQ(sqlite3_changes(db), 1) << why;
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << why;

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(net_.wait_log(
      0, [](std::string_view l) { return at_least_warn(l) && l.find("2 stored record(s)") != std::string_view::npos; }, 0,
      store_timeout))
      << "no warning naming the 2 records left out";
  const std::string channel = net_.channel();
  const auto sent = msgs("pub", 0, 6);
  EXPECT_TRUE(same_sequence(replay(0, "late", 6), concat({{join_frame("pub", channel), join_frame("sub", channel)},
                                                           {sent[0], sent[2], sent[4], sent[5]}})));
}

// --history-bytes counts whole frames (2-4 header bytes + payload); with 200-byte payloads and a
// bound of 1100 bytes exactly the last 5 fit whether or not headers are counted. A message
// larger than the bound is kept alone: the newest always is.
TEST_F(durable_history, restores_the_byte_bounded_tail_and_always_the_newest_message) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1", {"--history-bytes", "1100"})));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  std::vector<std::string> sent;
  for (int n = 0; n < 30; ++n) {
    sent.push_back(padded("pub", n, 200));
    ASSERT_TRUE(pub.ws->send_text(sent.back())) << pub.ws->error();
  }
  ASSERT_TRUE(await_all({{&sub, sent}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(same_sequence(replay(0, "late", 5), std::vector<std::string>(sent.end() - 5, sent.end())));
  MLES_ASSERT_NO_FAILURE_YET();

  member& big = join(0, "big");
  const std::string huge = padded("big", 0, 4000);
  ASSERT_TRUE(big.ws->send_text(huge));
  ASSERT_TRUE(big.ws->sync(session_timeout)) << big.ws->error();  // processed before the stop
  ASSERT_TRUE(net_.stop(0));

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(same_sequence(replay(0, "later", 1), {huge}));
}

// Channel names are only ever data: 20 plain channels and some that look like paths (or are
// long) all come back, each in its own channel, and the directory holds only history.sqlite3*.
TEST_F(durable_history, restores_every_channel_in_its_own_channel_whatever_its_name) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1")));
  std::vector<std::string> channels;
  for (int i = 0; i < 20; ++i) channels.push_back("room-" + std::to_string(i));
  for (const char* odd : {"../x", "a/b", "/tmp", "..", "with spaces", "quote\"and\\backslash", "history.sqlite3-wal"}) {
    channels.emplace_back(odd);
  }
  channels.push_back(std::string(1000, 'c'));
  std::vector<member*> pubs;
  for (std::size_t c = 0; c < channels.size(); ++c) pubs.push_back(&join(0, "p" + std::to_string(c), channels[c]));
  MLES_ASSERT_NO_FAILURE_YET();
  for (member* p : pubs) publish(*p, 0, 5);
  for (member* p : pubs) ASSERT_TRUE(p->ws->sync(session_timeout)) << p->uid << ": " << p->ws->error();
  ASSERT_TRUE(net_.stop(0));

  ASSERT_TRUE(net_.start(0));
  expect_restored(0, channels.size() * 6, channels.size());

  std::vector<std::pair<member*, std::vector<std::string>>> wanted;
  for (std::size_t c = 0; c < channels.size(); ++c) {
    const std::string uid = "p" + std::to_string(c);
    wanted.emplace_back(&join(0, "late", channels[c]), concat({{join_frame(uid, channels[c])}, msgs(uid, 0, 5)}));
  }
  MLES_ASSERT_NO_FAILURE_YET();
  await_all(wanted, replay_timeout, quiet_period);
  for (std::size_t c = 0; c < channels.size(); ++c) {
    EXPECT_TRUE(same_sequence(of(*wanted[c].first).frames, wanted[c].second))
        << "channel '" << printable_head(channels[c]) << "'";
  }

  for (const auto& name : entries(dir)) {
    EXPECT_EQ(name.rfind("history.sqlite3", 0), 0u) << "unexpected entry in the history directory: '" << name << "'";
    EXPECT_TRUE(fs::is_regular_file(dir / name)) << name;
  }
  EXPECT_EQ(entries(tmp_.path()), std::vector<std::string>{"hist"}) << "beside the history directory:"
                                                                    << listed(entries(tmp_.path()));
}

// ---------------------------------------------------------------------------------------------
// 6: a damaged store never stops the server.

// Garbage after the last commit of the write-ahead log (a crash in the middle of a write) is
// ignored with a warning; the commits before it are all there (https://sqlite.org/walformat.html).
TEST_F(durable_history, ignores_a_torn_write_ahead_log_tail_after_a_crash) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "0.2")));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 20);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 20)}}, delivery_timeout));
  pump_for({&sub}, beyond_sync_interval);
  ASSERT_TRUE(net_.kill(0));
  const fs::path wal = dir / "history.sqlite3-wal";
  std::cerr << "write-ahead log after SIGKILL: "
            << (fs::exists(wal) ? std::to_string(fs::file_size(wal)) + " bytes" : std::string{"none"}) << "\n";
  append_garbage(wal, 3000, 1);
  MLES_ASSERT_NO_FAILURE_YET();

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(history_warning(0)) << "no warning about the torn write-ahead log";
  const std::string channel = net_.channel();
  EXPECT_TRUE(same_sequence(replay(0, "late", 22),
                            concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 20)})));
}

// After a clean stop the write-ahead log is usually gone (checkpointed at close): garbage then
// goes to whichever file is there. Nothing committed is lost; the server stops cleanly again.
TEST_F(durable_history, serves_the_whole_history_after_garbage_is_appended_to_the_store) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1")));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 20);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 20)}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));
  const fs::path wal = dir / "history.sqlite3-wal";
  const bool wal_left = fs::exists(wal) && fs::file_size(wal) > 0;
  append_garbage(wal_left ? wal : dir / "history.sqlite3", 3000, 2);
  MLES_ASSERT_NO_FAILURE_YET();

  ASSERT_TRUE(net_.start(0));
  if (wal_left) {
    EXPECT_TRUE(history_warning(0)) << "no warning about the write-ahead log's tail";
  }
  const std::string channel = net_.channel();
  EXPECT_TRUE(same_sequence(replay(0, "late", 22),
                            concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 20)})));
}

// A history.sqlite3 that is no database at all is moved aside (history.sqlite3.corrupt-<time>)
// and a fresh store started: nothing of it reaches a client, and the new history is durable.
TEST_F(durable_history, moves_a_garbage_database_aside_and_starts_afresh) {
  const fs::path dir = tmp_.path() / "hist";
  fs::create_directory(dir);
  ::chmod(dir.c_str(), 0700);
  append_garbage(dir / "history.sqlite3", 64 * 1024, 3);
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(start_one(history_flags(dir, "1")));
  const auto warning = history_warning(0);
  EXPECT_TRUE(warning) << "no warning (or error) about the garbage database";
  const auto names = entries(dir);
  EXPECT_TRUE(std::any_of(names.begin(), names.end(),
                          [](const std::string& n) { return n.rfind("history.sqlite3.corrupt-", 0) == 0; }))
      << "no history.sqlite3.corrupt-<time> in the directory:" << listed(names);

  const std::string channel = net_.channel();
  EXPECT_TRUE(same_sequence(replay(0, "first", 0), {})) << "history from the garbage";
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 10);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 10)}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(same_sequence(replay(0, "late", 13),
                            concat({{join_frame("first", channel), join_frame("pub", channel), join_frame("sub", channel)},
                                    msgs("pub", 0, 10)})));
  const auto again = history_warning(0, 0ms);  // the start-up lines are all in by now
  EXPECT_FALSE(again) << "a warning about the fresh store at the next start: " << again.value_or("");
}

// Garbage over the database's pages after its first: the database fails its check at open and is
// moved aside, the server starts (with what could be salvaged), the replay holds nothing that
// was not sent, each frame once and in order, and it serves.
TEST_F(durable_history, starts_and_serves_after_the_database_pages_are_damaged) {
  const fs::path dir = tmp_.path() / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1")));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 30);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 30)}}, delivery_timeout));
  ASSERT_TRUE(net_.stop(0));
  const fs::path db = dir / "history.sqlite3";
  ASSERT_TRUE(fs::exists(db));
  overwrite_from(db, std::min<std::uintmax_t>(4096, fs::file_size(db) / 2), 4);
  fs::remove(dir / "history.sqlite3-wal");
  MLES_ASSERT_NO_FAILURE_YET();

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(history_warning(0)) << "no warning (or error) about the damaged database";
  const auto names = entries(dir);
  EXPECT_TRUE(std::any_of(names.begin(), names.end(),
                          [](const std::string& n) { return n.rfind("history.sqlite3.corrupt-", 0) == 0; }))
      << "the damaged database was not moved aside; the directory holds:" << listed(names);
  const std::string channel = net_.channel();
  const auto original =
      concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 30)});
  const auto got = replay(0, "late", 0);
  std::size_t at = 0;  // got must be a subsequence of original
  for (const auto& f : got) {
    while (at < original.size() && original[at] != f) ++at;
    ASSERT_LT(at, original.size()) << "history frame " << printable_head(f)
                                   << " was never sent, or is out of order or repeated";
    ++at;
  }
  std::cerr << "history after the damage: " << got.size() << " of " << original.size() << " frames\n";
  member& pub2 = join(0, "pub2");
  member& sub2 = join(0, "sub2");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub2, 0, 5);
  EXPECT_TRUE(await_all({{&sub2, msgs("pub2", 0, 5)}}, delivery_timeout));
}

// ---------------------------------------------------------------------------------------------
// 7, 8: an unusable directory or a full disk: the server serves from memory.

TEST_F(durable_history, serves_from_memory_when_the_directory_cannot_be_made) {
  const fs::path file = tmp_.path() / "file";
  std::ofstream(file) << "a regular file\n";
  ASSERT_TRUE(start_one(history_flags(file / "sub", "1")));
  const auto warning = history_warning(0);
  EXPECT_TRUE(warning) << "no warning about the unusable history directory";
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 10);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 10)}}, delivery_timeout));
  const std::string channel = net_.channel();
  EXPECT_TRUE(same_sequence(replay(0, "late", 12),
                            concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 10)})));
  EXPECT_TRUE(fs::is_regular_file(file));
  std::ifstream in(file);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "a regular file");
}

// A full file system (a small tmpfs filled up): the server serves from memory and warns; once
// space is freed, its retries (every 5 s) write what waited, so that it survives a SIGKILL.
TEST_F(durable_history, writes_the_waiting_records_once_a_full_disk_has_room_again) {
  const fs::path mnt = tmp_.path() / "disk";
  fs::create_directory(mnt);
  disk_.emplace(mnt, "256k");
  if (!disk_->mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk_->error();
  const fs::path filler = mnt / "filler";
  const auto filled = fill_up(filler);
  std::cerr << "filled the tmpfs with " << filled << " bytes\n";
  const fs::path dir = mnt / "hist";
  ASSERT_TRUE(start_one(history_flags(dir, "1")));
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 20);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 20)}}, delivery_timeout));
  const auto warning = history_warning(0);
  EXPECT_TRUE(warning) << "no warning about the full disk";
  const std::string channel = net_.channel();
  const auto expected = concat({{join_frame("pub", channel), join_frame("sub", channel)}, msgs("pub", 0, 20)});
  EXPECT_TRUE(same_sequence(replay(0, "late", 22), expected));
  MLES_ASSERT_NO_FAILURE_YET();

  const std::size_t log_mark = net_.log(0).err().size();
  fs::remove(filler);
  const auto healthy = net_.wait_log(
      0,
      [](std::string_view l) {
        return l.find("history:") != std::string_view::npos && l.find("healthy again") != std::string_view::npos;
      },
      log_mark, store_timeout);
  ASSERT_TRUE(healthy) << "no 'history: ... healthy again' within " << store_timeout.count()
                       << " ms after space was freed";
  pump_for({&sub}, beyond_sync_interval);
  ASSERT_TRUE(net_.kill(0));

  ASSERT_TRUE(net_.start(0));
  EXPECT_TRUE(same_sequence(replay(0, "later", 23), concat({expected, {join_frame("late", channel)}})));
}

// ---------------------------------------------------------------------------------------------
// 9: file modes, whatever the umask.

TEST_F(durable_history, creates_a_private_directory_and_private_files) {
  const fs::path dir = tmp_.path() / "made" / "hist";
  const mode_t old_mask = ::umask(0);  // the child inherits it: the server must set the modes itself
  const bool started = start_one(history_flags(dir, "0.2"));
  ::umask(old_mask);
  ASSERT_TRUE(started);
  member& pub = join(0, "pub");
  member& sub = join(0, "sub");
  MLES_ASSERT_NO_FAILURE_YET();
  publish(pub, 0, 5);
  ASSERT_TRUE(await_all({{&sub, msgs("pub", 0, 5)}}, delivery_timeout));
  pump_for({&sub}, a_few_commits);  // a write-ahead log to look at, most likely

  auto check = [&](const char* when) {
    EXPECT_EQ(octal(mode_of(dir)), "0700") << when << ": " << dir;
    EXPECT_EQ(octal(mode_of(dir / "history.sqlite3")), "0600") << when;
    for (const auto& name : entries(dir)) {
      EXPECT_EQ(octal(mode_of(dir / name)), "0600") << when << ": " << name;
    }
    std::cerr << when << ": the history directory holds" << listed(entries(dir)) << "\n";
  };
  check("running");
  ASSERT_TRUE(net_.stop(0));
  check("stopped");
}

// ---------------------------------------------------------------------------------------------
// 10, 11: linked servers resynchronise when a link comes up.

struct resync_case {
  const char* name;
  bool links_back;            // the restarted server also has --peer to the other
  bool keeps_dir;             // restarted on its old directory instead of an empty one
  const char* sync = "0.2";   // --history-sync of both
  bool restart_again = false; // finally b is stopped and restarted: its history comes back unchanged
};

void PrintTo(const resync_case& c, std::ostream* os) { *os << c.name; }

class history_resync : public durable_history, public ::testing::WithParamInterface<resync_case> {};

// a --peer b (and b --peer a when links_back): members on both exchange messages; b is killed
// (its directory deleted unless keeps_dir) and restarted while a's members keep talking. A
// newcomer b3 on b then receives every message of a's history exactly once (in its replay or
// delivered when the link brings it), so does the next newcomer in its replay, and a's members
// never receive anything twice, nor anything but the messages of the others. With
// restart_again, what b got back is on its disk too: after a SIGTERM and a restart a newcomer
// finds the history exactly as the newcomer before the stop did.
TEST_P(history_resync, restarted_server_gets_the_history_back_from_its_peer_and_nobody_receives_twice) {
  const resync_case& c = GetParam();
  const std::vector<std::string> common{"--peer-retry-max", "1", "--limit", "1000"};
  server_options a{.name = "a", .peers = {1}, .extra = history_flags(tmp_.path() / "a", c.sync, common)};
  server_options b{.name = "b", .extra = history_flags(tmp_.path() / "b", c.sync, common)};
  if (c.links_back) b.peers = {0};
  net_.declare({a, b});
  ASSERT_TRUE(net_.start_all());
  member& a1 = join(0, "a1");
  member& a2 = join(0, "a2");
  member& b1 = join(1, "b1");
  member& b2 = join(1, "b2");
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("peer mode"));
  const std::vector<member*> first{&a1, &a2, &b1, &b2};
  await_paths(net_, first, first, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();

  for (member* m : first) publish(*m, 0, 20);
  auto others = [&](const member* self, int count) {
    std::vector<std::string> w;
    for (member* m : first) {
      if (m != self) {
        const auto part = msgs(m->uid, 0, count);
        w.insert(w.end(), part.begin(), part.end());
      }
    }
    return w;
  };
  ASSERT_TRUE(await_all({{&a1, others(&a1, 20)}, {&a2, others(&a2, 20)}, {&b1, others(&b1, 20)},
                         {&b2, others(&b2, 20)}},
                        delivery_timeout));
  // b's store has (most likely) all of it; what it lost would come back with the resync.
  if (c.keeps_dir) pump_for(first, a_few_commits);

  ASSERT_TRUE(net_.kill(1));
  if (!c.keeps_dir) fs::remove_all(tmp_.path() / "b");
  // a's members keep talking while b is down: a's history holds messages b never had.
  publish(a1, 20, 10);
  ASSERT_TRUE(await_all({{&a2, msgs("a1", 20, 10)}}, delivery_timeout));

  ASSERT_TRUE(net_.start(1));
  member& b3 = join(1, "b3");
  MLES_ASSERT_NO_FAILURE_YET();
  const auto history = concat({msgs("a1", 0, 30), msgs("a2", 0, 20), msgs("b1", 0, 20), msgs("b2", 0, 20)});
  EXPECT_TRUE(await_all({{&b3, history}, {&a1, {}}, {&a2, {}}}, replay_timeout, quiet_period));
  const std::string channel = net_.channel();
  member& b4 = newcomer(1, "b4", history.size(), std::nullopt, quiet_period);
  EXPECT_TRUE(holds_all(b4, history)) << "b4's history lacks messages";
  for (const char* uid : {"a1", "a2", "b1", "b2", "b3"}) {
    EXPECT_TRUE(of(b4).count.contains(join_frame(uid, channel))) << "b4's history lacks the join frame of " << uid;
  }

  // After the resync, traffic flows both ways exactly once.
  publish(a1, 30, 10);
  publish(b3, 0, 10);
  EXPECT_TRUE(await_all({{&a1, msgs("b3", 0, 10)}, {&a2, concat({msgs("a1", 30, 10), msgs("b3", 0, 10)})},
                         {&b3, msgs("a1", 30, 10)}, {&b4, concat({msgs("a1", 30, 10), msgs("b3", 0, 10)})}},
                        delivery_timeout, quiet_period));

  for (member* m : {&a1, &a2, &b1, &b2, &b3, &b4}) expect_once_in_order(*m);
  auto as_set = [](std::initializer_list<std::vector<std::string>> parts) {
    const auto all = concat(parts);
    return std::set<std::string>(all.begin(), all.end());
  };
  EXPECT_EQ(msg_set(a1), as_set({msgs("a2", 0, 20), msgs("b1", 0, 20), msgs("b2", 0, 20), msgs("b3", 0, 10)}));
  EXPECT_EQ(msg_set(a2), as_set({msgs("a1", 0, 40), msgs("b1", 0, 20), msgs("b2", 0, 20), msgs("b3", 0, 10)}));
  EXPECT_EQ(msg_set(b3), as_set({history, msgs("a1", 30, 10)}));
  EXPECT_EQ(msg_set(b4), as_set({history, msgs("a1", 30, 10), msgs("b3", 0, 10)}));

  if (c.restart_again) {
    const auto before = of(newcomer(1, "b5", of(b4).frames.size(), std::nullopt, quiet_period)).frames;
    ASSERT_TRUE(net_.stop(1));
    ASSERT_TRUE(net_.start(1));
    // The links come back meanwhile: what they bring must not be new to b either.
    const auto after = replay(1, "b6", before.size() + 1, std::nullopt, quiet_period);
    const auto want = concat({before, {join_frame("b5", channel)}});
    if (std::string(c.sync) == "0") {
      EXPECT_TRUE(same_frames_in_each_senders_order(after, want)) << "b's history after a restart differs from the one before it";
    } else {
      EXPECT_TRUE(same_sequence(after, want)) << "b's history after a restart differs from the one before it";
    }
  }
  expect_no_protocol_errors();
}

INSTANTIATE_TEST_SUITE_P(
    restarts, history_resync,
    ::testing::Values(resync_case{"empty_dir_linked_from_the_peer", false, false},
                      resync_case{"empty_dir_linking_both_ways", true, false},
                      resync_case{"old_dir_linking_both_ways", true, true, "0.2", true},
                      resync_case{"empty_dir_linking_both_ways_sync_0", true, false, "0", true}),
    [](const ::testing::TestParamInfo<resync_case>& param_info) { return std::string{param_info.param.name}; });

// Three servers in a full mesh: c restarts with an empty directory and gets the history back
// from a and b (each of which offers all of it, over links in both directions), its newcomers
// receive every message once, and a's and b's members see no duplicate.
TEST_F(durable_history, mesh_member_restarted_empty_gets_the_history_back_once) {
  const std::vector<std::string> common{"--peer-retry-max", "1", "--limit", "1000"};
  net_.declare({{.name = "a", .peers = {1, 2}, .extra = history_flags(tmp_.path() / "a", "0.2", common)},
                {.name = "b", .peers = {0, 2}, .extra = history_flags(tmp_.path() / "b", "0.2", common)},
                {.name = "c", .peers = {0, 1}, .extra = history_flags(tmp_.path() / "c", "0.2", common)}});
  ASSERT_TRUE(net_.start_all());
  member& a1 = join(0, "a1");
  member& b1 = join(1, "b1");
  member& c1 = join(2, "c1");
  MLES_ASSERT_NO_FAILURE_YET();
  ASSERT_TRUE(net_.wait_all_links_up("peer mode"));
  const std::vector<member*> first{&a1, &b1, &c1};
  await_paths(net_, first, first, everyone_else);
  MLES_ASSERT_NO_FAILURE_YET();
  for (member* m : first) publish(*m, 0, 20);
  ASSERT_TRUE(await_all({{&a1, concat({msgs("b1", 0, 20), msgs("c1", 0, 20)})},
                         {&b1, concat({msgs("a1", 0, 20), msgs("c1", 0, 20)})},
                         {&c1, concat({msgs("a1", 0, 20), msgs("b1", 0, 20)})}},
                        delivery_timeout));

  ASSERT_TRUE(net_.kill(2));
  fs::remove_all(tmp_.path() / "c");
  publish(a1, 20, 10);
  ASSERT_TRUE(await_all({{&b1, msgs("a1", 20, 10)}}, delivery_timeout));

  ASSERT_TRUE(net_.start(2));
  member& c2 = join(2, "c2");
  MLES_ASSERT_NO_FAILURE_YET();
  const auto history = concat({msgs("a1", 0, 30), msgs("b1", 0, 20), msgs("c1", 0, 20)});
  EXPECT_TRUE(await_all({{&c2, history}, {&a1, {}}, {&b1, {}}}, replay_timeout, quiet_period));
  member& c3 = newcomer(2, "c3", history.size(), std::nullopt, quiet_period);
  EXPECT_TRUE(holds_all(c3, history)) << "c3's history lacks messages";
  publish(c2, 0, 10);
  EXPECT_TRUE(await_all({{&a1, msgs("c2", 0, 10)}, {&b1, msgs("c2", 0, 10)}, {&c3, msgs("c2", 0, 10)}},
                        delivery_timeout, quiet_period));

  for (member* m : {&a1, &b1, &c1, &c2, &c3}) expect_once_in_order(*m);
  auto as_set = [](std::initializer_list<std::vector<std::string>> parts) {
    const auto all = concat(parts);
    return std::set<std::string>(all.begin(), all.end());
  };
  EXPECT_EQ(msg_set(a1), as_set({msgs("b1", 0, 20), msgs("c1", 0, 20), msgs("c2", 0, 10)}));
  EXPECT_EQ(msg_set(b1), as_set({msgs("a1", 0, 30), msgs("c1", 0, 20), msgs("c2", 0, 10)}));
  EXPECT_EQ(msg_set(c2), as_set({history}));
  EXPECT_EQ(msg_set(c3), as_set({history, msgs("c2", 0, 10)}));
  expect_no_protocol_errors();
}

}  // namespace
}  // namespace mles::test
