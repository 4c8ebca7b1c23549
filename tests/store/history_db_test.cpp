// Tests for the durable history store (store/history_db): round trips across a reopen, the
// per-channel bounds and expiry, durability against a killed process (forked children),
// torn WAL tails, corrupt and foreign database files, unwritable and full disks, file modes,
// and channel names that must never reach the file system.
#include "store/history_db.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using mles::store::history_db;
using mles::store::history_db_options;
using mles::store::history_record;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct temp_dir {
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("mles-history-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Polls pred every few ms; every wait in these tests is bounded.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A frame with binary bytes (NUL included) that identify i.
std::string frame_of(int i, std::size_t size) {
  std::string f(size, '\0');
  for (std::size_t k = 0; k < size; ++k) f[k] = static_cast<char>((static_cast<std::size_t>(i) * 31 + k * 7) & 0xff);
  if (size >= 4) std::memcpy(f.data(), &i, 4);
  return f;
}

history_record record(const std::string& channel, int i, std::size_t size = 16, std::uint8_t flags = 0) {
  history_record r;
  r.channel = channel;
  r.origin_server = i % 3 == 0 ? "" : "peer-" + std::to_string(i % 3) + ".example:443";
  r.origin_instance = 0xFEDCBA9876543210ull + static_cast<std::uint64_t>(i);  // above INT64_MAX
  r.seq = static_cast<std::uint64_t>(i) + 1;
  r.flags = flags;
  r.frame = frame_of(i, size);
  r.time_ms = now_ms();
  return r;
}

// What load() hands back for r (the channel is passed once, not per record).
history_record stored(history_record r) {
  r.channel.clear();
  return r;
}

history_db_options options(const fs::path& dir) {
  history_db_options o;
  o.dir = dir;
  o.sync_interval = 50ms;
  o.retry_interval = 50ms;
  return o;
}

using loaded = std::map<std::string, std::vector<history_record>>;

loaded load_all(const history_db_options& o) {
  loaded out;
  history_db db(o);
  db.load([&](const std::string& channel, std::vector<history_record>&& records) {
    EXPECT_FALSE(out.contains(channel)) << "channel handed out twice";
    out[channel] = std::move(records);
  });
  return out;
}

// Collects log lines (thread-safe) while installed as spdlog's default logger.
class capture_sink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::size_t count(spdlog::level::level_enum level, std::string_view needle) {
    std::lock_guard lk(mutex_);
    std::size_t n = 0;
    for (const auto& [l, text] : lines_) n += l == level && text.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
  std::string dump() {
    std::lock_guard lk(mutex_);
    std::string out;
    for (const auto& [l, text] : lines_) out += std::string(spdlog::level::to_string_view(l).data()) + " " + text + "\n";
    return out;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& m) override {
    lines_.emplace_back(m.level, std::string(m.payload.data(), m.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::pair<spdlog::level::level_enum, std::string>> lines_;
};

// Declare before the store: the store may log until it is destroyed. MLES_HISTORY_TEST_LOGS=1
// prints what was captured.
struct log_capture {
  log_capture() : sink(std::make_shared<capture_sink>()), previous(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("history-test", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~log_capture() {
    spdlog::set_default_logger(previous);
    if (std::getenv("MLES_HISTORY_TEST_LOGS")) std::printf("%s", sink->dump().c_str());
  }
  std::shared_ptr<capture_sink> sink;
  std::shared_ptr<spdlog::logger> previous;
};

// Runs body in a forked child, which ends with _exit(0) after it or kills itself inside it.
// Returns the wait status (bounded: a child still running after 60 s is killed).
int in_child(const std::function<void()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "child did not finish within 60 s";
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  return status;
}

bool killed(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

void write_all(int fd, const void* p, std::size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w <= 0) return;
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::vector<int> read_ints(int fd) {
  std::vector<int> out;
  int v = 0;
  while (::read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) out.push_back(v);
  return out;
}

fs::path db_path(const fs::path& dir) { return dir / "history.sqlite3"; }

std::vector<fs::path> corrupt_copies(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with("history.sqlite3.corrupt-") &&
        !e.path().filename().string().ends_with("-wal") && !e.path().filename().string().ends_with("-shm")) {
      out.push_back(e.path());
    }
  }
  return out;
}

}  // namespace

// ---- round trips and bounds ----

TEST(history_db, round_trip_across_a_reopen_keeps_order_and_every_field) {
  temp_dir t;
  std::vector<history_record> a, b;
  {
    history_db db(options(t.path));
    for (int i = 0; i < 20; ++i) {
      a.push_back(record("alpha", i, 10 + static_cast<std::size_t>(i), i % 5 == 0 ? 2 : (i % 7 == 0 ? 4 : 0)));
      db.append(a.back());
      if (i % 2 == 0) {
        b.push_back(record("beta", 100 + i, 0));  // an empty frame is kept as empty
        db.append(b.back());
      }
    }
    ASSERT_TRUE(db.flush(10s));
    const auto s = db.current_stats();
    EXPECT_EQ(s.appended, 30u);
    EXPECT_EQ(s.committed, 30u);
    EXPECT_TRUE(s.healthy);
  }
  const auto got = load_all(options(t.path));
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got.at("alpha").size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(got.at("alpha")[i], stored(a[i])) << "record " << i;
  ASSERT_EQ(got.at("beta").size(), b.size());
  for (std::size_t i = 0; i < b.size(); ++i) EXPECT_EQ(got.at("beta")[i], stored(b[i])) << "record " << i;
}

TEST(history_db, keeps_the_last_limit_records_per_channel_join_records_counting_like_others) {
  temp_dir t;
  auto o = options(t.path);
  o.limit = 5;
  std::vector<history_record> all;
  {
    history_db db(o);
    for (int i = 0; i < 12; ++i) {
      all.push_back(record("ch", i, 8, i % 2 == 0 ? 2 : 0));  // every other one a join frame
      db.append(all.back());
      if (i % 4 == 3) {
        ASSERT_TRUE(db.flush(10s));  // several commits, each pruning
      }
    }
    db.append(record("other", 0));
    ASSERT_TRUE(db.flush(10s));
  }
  // Pruned on disk, not just at load: a larger limit finds only the last five.
  auto wide = options(t.path);
  wide.limit = 1000;
  const auto got = load_all(wide);
  ASSERT_EQ(got.at("ch").size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(got.at("ch")[i], stored(all[7 + i]));
  EXPECT_EQ(got.at("other").size(), 1u);
}

TEST(history_db, keeps_the_channel_within_max_bytes_and_always_keeps_the_newest) {
  temp_dir t;
  auto o = options(t.path);
  o.max_bytes = 100;
  std::vector<history_record> all;
  {
    history_db db(o);
    for (int i = 0; i < 10; ++i) {
      all.push_back(record("ch", i, 30));
      db.append(all.back());
    }
    ASSERT_TRUE(db.flush(10s));
  }
  auto got = load_all(o);
  ASSERT_EQ(got.at("ch").size(), 3u);  // 3 x 30 <= 100 < 4 x 30
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(got.at("ch")[i], stored(all[7 + i]));
  {
    history_db db(o);
    db.load([](const std::string&, std::vector<history_record>&&) {});
    all.push_back(record("ch", 50, 500));  // alone over the limit: kept, everything older goes
    db.append(all.back());
    ASSERT_TRUE(db.flush(10s));
  }
  got = load_all(o);
  ASSERT_EQ(got.at("ch").size(), 1u);
  EXPECT_EQ(got.at("ch")[0], stored(all.back()));
}

TEST(history_db, prunes_without_a_load_first_and_applies_smaller_bounds_at_load) {
  temp_dir t;
  std::vector<history_record> all;
  {
    history_db db(options(t.path));
    for (int i = 0; i < 10; ++i) {
      all.push_back(record("ch", i));
      db.append(all.back());
    }
    ASSERT_TRUE(db.flush(10s));
  }
  {
    // No load(): the store counts the channel from the database when it is first written.
    auto o = options(t.path);
    o.limit = 8;
    history_db db(o);
    all.push_back(record("ch", 10));
    db.append(all.back());
    ASSERT_TRUE(db.flush(10s));
  }
  auto o = options(t.path);
  o.limit = 3;
  auto got = load_all(o);
  ASSERT_EQ(got.at("ch").size(), 3u);
  EXPECT_EQ(got.at("ch").back(), stored(all.back()));
  got = load_all(options(t.path));  // the excess was deleted at the previous load
  ASSERT_EQ(got.at("ch").size(), 3u);
}

TEST(history_db, forgets_channels_whose_newest_record_is_older_than_the_ttl) {
  temp_dir t;
  const std::int64_t day = 24 * 3600 * 1000;
  std::vector<history_record> mixed;
  {
    history_db db(options(t.path));
    for (int i = 0; i < 3; ++i) {
      auto r = record("stale", i);
      r.time_ms = now_ms() - 31 * day;
      db.append(r);
    }
    for (int i = 0; i < 3; ++i) {  // old records, but the channel is alive: all kept
      mixed.push_back(record("alive", i));
      mixed.back().time_ms = now_ms() - (40 - i) * day;
      db.append(mixed.back());
    }
    mixed.push_back(record("alive", 9));
    db.append(mixed.back());
    ASSERT_TRUE(db.flush(10s));
  }
  auto got = load_all(options(t.path));  // ttl 30 days
  EXPECT_FALSE(got.contains("stale"));
  ASSERT_EQ(got.at("alive").size(), mixed.size());
  for (std::size_t i = 0; i < mixed.size(); ++i) EXPECT_EQ(got.at("alive")[i], stored(mixed[i]));
  // Deleted, not just skipped: a longer ttl does not bring it back.
  auto o = options(t.path);
  o.ttl = std::chrono::seconds(365 * 24 * 3600);
  got = load_all(o);
  EXPECT_FALSE(got.contains("stale"));
}

TEST(history_db, forget_deletes_a_channel_in_order_with_the_appends_around_it) {
  temp_dir t;
  std::vector<history_record> keep;
  history_record again;
  {
    history_db db(options(t.path));
    for (int i = 0; i < 5; ++i) db.append(record("gone", i));
    for (int i = 0; i < 5; ++i) {
      keep.push_back(record("kept", i));
      db.append(keep.back());
    }
    ASSERT_TRUE(db.flush(10s));
    db.append(record("gone", 5));
    db.forget("gone");                 // this and the one just before it, in the same commit
    db.forget("never-seen");           // harmless
    again = record("gone", 6);
    db.append(again);                  // after the forget: a new history
    ASSERT_TRUE(db.flush(10s));
  }
  const auto got = load_all(options(t.path));
  ASSERT_EQ(got.at("gone").size(), 1u);
  EXPECT_EQ(got.at("gone")[0], stored(again));
  EXPECT_EQ(got.at("kept").size(), keep.size());
  EXPECT_FALSE(got.contains("never-seen"));
}

TEST(history_db, channel_names_are_data_never_file_names) {
  temp_dir t;
  std::vector<std::string> names{"a/b", "..", "../../etc/passwd", "/", "history.sqlite3", "'; DROP TABLE history; --",
                                 std::string(10 * 1024, 'x')};
  std::string binaryish;
  for (int c = 1; c < 128; ++c) binaryish += static_cast<char>(c);
  names.push_back(binaryish);
  names.push_back("\xff\xfe\x80 high bytes");
  {
    history_db db(options(t.path));
    for (std::size_t i = 0; i < names.size(); ++i) db.append(record(names[i], static_cast<int>(i)));
    ASSERT_TRUE(db.flush(10s));
  }
  const auto got = load_all(options(t.path));
  ASSERT_EQ(got.size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    ASSERT_TRUE(got.contains(names[i])) << "name " << i;
    ASSERT_EQ(got.at(names[i]).size(), 1u);
    EXPECT_EQ(got.at(names[i])[0].frame, frame_of(static_cast<int>(i), 16));
  }
  // Nothing but the database in the directory (and nothing outside it).
  for (const auto& e : fs::recursive_directory_iterator(t.path)) {
    EXPECT_EQ(e.path().filename(), "history.sqlite3") << e.path();
  }
}

// ---- files ----

TEST(history_db, creates_a_private_directory_and_private_files) {
  temp_dir t;
  const auto dir = t.path / "nested" / "history";
  history_db db(options(dir));
  db.append(record("ch", 1));
  ASSERT_TRUE(db.flush(10s));
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(db_path(dir)), 0600u);
  ASSERT_TRUE(fs::exists(db_path(dir).string() + "-wal"));
  EXPECT_EQ(mode_of(db_path(dir).string() + "-wal"), 0600u);
  EXPECT_FALSE(fs::exists(db_path(dir).string() + "-shm"));  // exclusive locking: no shared-memory file
}

TEST(history_db, leaves_an_existing_directory_as_it_is_and_tightens_existing_files) {
  temp_dir t;
  ASSERT_EQ(::chmod(t.path.c_str(), 0755), 0);
  {
    history_db db(options(t.path));
    db.append(record("ch", 1));
    ASSERT_TRUE(db.flush(10s));
  }
  EXPECT_EQ(mode_of(t.path), 0755u);
  ASSERT_EQ(::chmod(db_path(t.path).c_str(), 0644), 0);
  history_db db(options(t.path));
  db.append(record("ch", 2));
  ASSERT_TRUE(db.flush(10s));
  EXPECT_EQ(mode_of(db_path(t.path)), 0600u);
  EXPECT_EQ(mode_of(db_path(t.path).string() + "-wal"), 0600u);
}

TEST(history_db, a_second_store_on_the_same_directory_waits_for_the_first_to_close) {
  temp_dir t;
  log_capture logs;
  auto first = std::make_unique<history_db>(options(t.path));
  history_db second(options(t.path));
  EXPECT_FALSE(second.current_stats().healthy);
  EXPECT_NE(second.current_stats().last_error.find("locked"), std::string::npos)
      << second.current_stats().last_error;
  const auto r = record("ch", 1);
  second.append(r);
  first.reset();
  ASSERT_TRUE(eventually([&] { return second.current_stats().committed == 1; }));
  EXPECT_TRUE(second.current_stats().healthy);
}

TEST(history_db, durable_appends_do_not_delay_the_group_commit_of_plain_ones) {
  temp_dir t;
  auto o = options(t.path);
  o.sync_interval = 300ms;
  history_db db(o);
  for (int i = 0; i < 40; ++i) {  // 40 early commits: far more than the intervals they take
    std::atomic<bool> done{false};
    db.append_durable(record("durable", i), [&](bool) { done = true; });
    ASSERT_TRUE(eventually([&] { return done.load(); }));
  }
  db.append(record("plain", 0));
  // Committed by the next tick, not 40 intervals later (bounded generously for a busy box).
  EXPECT_TRUE(eventually([&] { return db.current_stats().committed == 41; }, 6s));
}

// ---- durability: forked children that are killed ----

TEST(history_db, every_acknowledged_durable_append_survives_a_kill) {
  temp_dir t;
  int acks[2];
  ASSERT_EQ(::pipe(acks), 0);
  const int status = in_child([&] {
    ::close(acks[0]);
    auto o = options(t.path);
    o.limit = 1000;
    o.sync_interval = std::chrono::hours(1);  // only append_durable commits
    auto* db = new history_db(o);            // never destroyed: the process is killed
    std::atomic<int> acked{0};
    for (int i = 0; i < 1000; ++i) {
      db->append_durable(record("ch", i), [&, i](bool ok) {
        if (!ok) return;
        write_all(acks[1], &i, sizeof i);
        if (++acked == 60) ::raise(SIGKILL);  // on the writer thread, appends still in flight
      });
      std::this_thread::sleep_for(200us);
    }
    std::this_thread::sleep_for(60s);  // the kill comes first
  });
  ::close(acks[1]);
  const auto acked = read_ints(acks[0]);
  ::close(acks[0]);
  ASSERT_TRUE(killed(status)) << status;
  ASSERT_GE(acked.size(), 60u);
  auto o = options(t.path);
  o.limit = 1000;
  const auto got = load_all(o);
  ASSERT_TRUE(got.contains("ch"));
  const auto& records = got.at("ch");
  // Commits are in order: what survived is a prefix, and it holds every acknowledged record.
  ASSERT_GE(records.size(), acked.size());
  for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].frame, frame_of(static_cast<int>(i), 16));
  for (const int i : acked) EXPECT_LT(static_cast<std::size_t>(i), records.size());
  EXPECT_LT(records.size(), 1000u);  // the kill came while appends were still being made
}

TEST(history_db, with_sync_zero_every_append_is_committed_without_a_flush) {
  temp_dir t;
  const int status = in_child([&] {
    auto o = options(t.path);
    o.sync_interval = 0ms;
    auto* db = new history_db(o);
    for (int i = 0; i < 30; ++i) {
      db->append(record("ch", i));
      // Each append is committed on its own, before the next one is made.
      if (!eventually([&] { return db->current_stats().committed == static_cast<std::uint64_t>(i) + 1; })) ::_exit(3);
    }
    ::raise(SIGKILL);
  });
  ASSERT_TRUE(killed(status)) << status;
  const auto got = load_all(options(t.path));
  ASSERT_EQ(got.at("ch").size(), 30u);
}

TEST(history_db, group_commits_reach_the_disk_each_interval_without_a_flush) {
  temp_dir t;
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const int status = in_child([&] {
    ::close(report[0]);
    auto o = options(t.path);
    o.sync_interval = 200ms;
    auto* db = new history_db(o);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) db->append(record("ch", i));
    if (!eventually([&] { return db->current_stats().committed == 20; })) ::_exit(3);
    const int elapsed_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
    write_all(report[1], &elapsed_ms, sizeof elapsed_ms);
    for (int i = 20; i < 25; ++i) db->append(record("ch", i));  // younger than the interval: may be lost
    ::raise(SIGKILL);
  });
  ::close(report[1]);
  const auto elapsed = read_ints(report[0]);
  ::close(report[0]);
  ASSERT_TRUE(killed(status)) << status;
  ASSERT_EQ(elapsed.size(), 1u);
  std::printf("20 records committed by the 200 ms group commit after %d ms\n", elapsed[0]);
  const auto got = load_all(options(t.path));
  const auto& records = got.at("ch");
  ASSERT_GE(records.size(), 20u);
  ASSERT_LE(records.size(), 25u);
  for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].frame, frame_of(static_cast<int>(i), 16));
}

TEST(history_db, flush_then_kill_loses_nothing) {
  temp_dir t;
  const int status = in_child([&] {
    auto o = options(t.path);
    o.sync_interval = std::chrono::hours(1);
    auto* db = new history_db(o);
    for (int i = 0; i < 100; ++i) db->append(record(i % 2 ? "odd" : "even", i));
    if (!db->flush(20s)) ::_exit(3);
    ::raise(SIGKILL);
  });
  ASSERT_TRUE(killed(status)) << status;
  const auto got = load_all(options(t.path));
  EXPECT_EQ(got.at("odd").size(), 50u);
  EXPECT_EQ(got.at("even").size(), 50u);
}

TEST(history_db, destroying_the_store_commits_what_is_queued) {
  temp_dir t;
  const int status = in_child([&] {
    auto o = options(t.path);
    o.sync_interval = std::chrono::hours(1);
    {
      history_db db(o);
      for (int i = 0; i < 100; ++i) db.append(record("ch", i));
    }  // SIGTERM path: the destructor flushes
    ::_exit(0);
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(load_all(options(t.path)).at("ch").size(), 100u);
}

// ---- damaged files ----

// A child commits records 0-9 and then 10-19 (two commits in the WAL) and is killed.
void two_commits_then_kill(const fs::path& dir) {
  const int status = in_child([&] {
    auto o = options(dir);
    o.sync_interval = std::chrono::hours(1);
    auto* db = new history_db(o);
    for (int i = 0; i < 10; ++i) db->append(record("ch", i));
    if (!db->flush(20s)) ::_exit(3);
    for (int i = 10; i < 20; ++i) db->append(record("ch", i));
    if (!db->flush(20s)) ::_exit(3);
    ::raise(SIGKILL);
  });
  ASSERT_TRUE(killed(status)) << status;
  ASSERT_GT(fs::file_size(db_path(dir).string() + "-wal"), 0u);
}

TEST(history_db, a_torn_wal_tail_is_ignored_and_the_commits_before_it_kept) {
  temp_dir t;
  two_commits_then_kill(t.path);
  const auto wal = db_path(t.path).string() + "-wal";
  fs::resize_file(wal, fs::file_size(wal) - 100);  // the second commit's last frame is torn
  log_capture logs;
  const auto got = load_all(options(t.path));
  ASSERT_EQ(got.at("ch").size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(got.at("ch")[i].frame, frame_of(static_cast<int>(i), 16));
  EXPECT_EQ(logs.sink->count(spdlog::level::warn, "torn"), 1u) << logs.sink->dump();
  EXPECT_TRUE(corrupt_copies(t.path).empty());  // a torn tail is not corruption
}

TEST(history_db, garbage_after_the_last_wal_commit_is_ignored) {
  temp_dir t;
  two_commits_then_kill(t.path);
  {
    std::ofstream wal(db_path(t.path).string() + "-wal", std::ios::binary | std::ios::app);
    std::mt19937 rng(7);
    for (int i = 0; i < 5000; ++i) wal.put(static_cast<char>(rng()));
  }
  log_capture logs;
  const auto got = load_all(options(t.path));
  ASSERT_EQ(got.at("ch").size(), 20u);
  EXPECT_EQ(logs.sink->count(spdlog::level::warn, "torn"), 1u) << logs.sink->dump();
}

TEST(history_db, a_garbage_database_file_is_moved_aside_and_a_fresh_one_started) {
  temp_dir t;
  {
    std::ofstream f(db_path(t.path), std::ios::binary);
    std::mt19937 rng(1);
    for (int i = 0; i < 16384; ++i) f.put(static_cast<char>(rng()));
  }
  log_capture logs;
  {
    history_db db(options(t.path));
    EXPECT_TRUE(db.current_stats().healthy);
    std::size_t channels = 0;
    db.load([&](const std::string&, std::vector<history_record>&&) { ++channels; });
    EXPECT_EQ(channels, 0u);
    db.append(record("ch", 1));
    ASSERT_TRUE(db.flush(10s));
  }
  ASSERT_EQ(corrupt_copies(t.path).size(), 1u);
  EXPECT_EQ(fs::file_size(corrupt_copies(t.path)[0]), 16384u);  // kept as it was, for the operator
  EXPECT_GE(logs.sink->count(spdlog::level::err, "moved to"), 1u) << logs.sink->dump();
  EXPECT_EQ(load_all(options(t.path)).at("ch").size(), 1u);
}

TEST(history_db, a_database_with_damaged_pages_is_moved_aside_and_what_is_readable_salvaged) {
  temp_dir t;
  std::map<std::string, std::vector<history_record>> written;
  {
    history_db db(options(t.path));
    for (int c = 0; c < 3; ++c) {
      const std::string name = "ch" + std::to_string(c);
      for (int i = 0; i < 50; ++i) {
        written[name].push_back(record(name, c * 1000 + i, 900));
        db.append(written[name].back());
      }
    }
    ASSERT_TRUE(db.flush(10s));
  }  // closed cleanly: everything is in the database file
  const auto size = fs::file_size(db_path(t.path));
  ASSERT_GT(size, 20u * 4096);
  {
    std::fstream f(db_path(t.path), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(10 * 4096);
    for (int i = 0; i < 3 * 4096; ++i) f.put(static_cast<char>(0xA5));
  }
  log_capture logs;
  loaded got;
  {
    history_db db(options(t.path));
    db.load([&](const std::string& c, std::vector<history_record>&& r) { got[c] = std::move(r); });
    EXPECT_TRUE(db.current_stats().healthy);
    db.append(record("after", 1));
    ASSERT_TRUE(db.flush(10s));
  }
  EXPECT_EQ(corrupt_copies(t.path).size(), 1u);
  // Whatever was salvaged is exactly what was written, and was written into the fresh database.
  std::size_t salvaged = 0;
  for (const auto& [channel, records] : got) {
    ASSERT_TRUE(written.contains(channel));
    const auto& w = written.at(channel);
    for (auto r : records) {
      r.channel = channel;
      EXPECT_NE(std::find(w.begin(), w.end(), r), w.end()) << "a record that was never written";
      ++salvaged;
    }
  }
  std::printf("salvaged %zu of 150 records\n", salvaged);
  auto again = load_all(options(t.path));
  EXPECT_EQ(again.at("after").size(), 1u);
  again.erase("after");
  EXPECT_EQ(again, got);
}

TEST(history_db, a_foreign_sqlite_file_is_moved_aside_not_written_into) {
  temp_dir t;
  // An SQLite database with someone else's table: sqlite3's CLI is not assumed; make one with
  // our own store and change its application id by hand (offset 68 of the header).
  {
    history_db db(options(t.path));
    db.append(record("ch", 1));
    ASSERT_TRUE(db.flush(10s));
  }
  {
    std::fstream f(db_path(t.path), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(68);
    f.write("\x00\x00\x00\x01", 4);
  }
  const auto got = load_all(options(t.path));
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(corrupt_copies(t.path).size(), 1u);
}

// ---- failures: unwritable directory, full disk ----

TEST(history_db, an_unwritable_directory_keeps_appends_queued_and_commits_them_once_fixed) {
  temp_dir t;
  log_capture logs;
  // A regular file where a parent directory should be stops root as well as anyone.
  const auto blocker = t.path / "blocker";
  std::ofstream(blocker) << "x";
  auto o = options(blocker / "history");
  history_db db(o);
  EXPECT_FALSE(db.current_stats().healthy);
  EXPECT_FALSE(db.current_stats().last_error.empty());
  std::vector<history_record> all;
  for (int i = 0; i < 10; ++i) {
    all.push_back(record("ch", i));
    db.append(all.back());
  }
  std::atomic<int> durable_result{-1};
  all.push_back(record("ch", 10));
  db.append_durable(all.back(), [&](bool ok) { durable_result = ok ? 1 : 0; });
  ASSERT_TRUE(eventually([&] { return durable_result != -1; }, 10s));
  EXPECT_EQ(durable_result, 0);  // told at once that it is not durable
  EXPECT_FALSE(db.flush(2s));
  ASSERT_TRUE(eventually([&] { return db.current_stats().failed_commits >= 3; }));  // retrying
  EXPECT_EQ(db.current_stats().committed, 0u);
  fs::remove(blocker);
  ASSERT_TRUE(eventually([&] { return db.current_stats().committed == all.size(); }));
  EXPECT_TRUE(db.current_stats().healthy);
  EXPECT_EQ(db.current_stats().dropped, 0u);
  EXPECT_EQ(mode_of(o.dir), 0700u);
  // One warning for the whole episode, one line when healthy again.
  EXPECT_EQ(logs.sink->count(spdlog::level::warn, "blocker"), 1u) << logs.sink->dump();
  EXPECT_EQ(logs.sink->count(spdlog::level::info, "healthy again"), 1u) << logs.sink->dump();
  ASSERT_TRUE(db.flush(10s));
}

TEST(history_db, bounds_the_queue_while_failing_by_dropping_the_oldest) {
  temp_dir t;
  log_capture logs;
  const auto blocker = t.path / "blocker";
  std::ofstream(blocker) << "x";
  auto o = options(blocker / "history");
  o.max_queued_bytes = 20 * 1024;
  history_db db(o);
  std::vector<history_record> all;
  for (int i = 0; i < 200; ++i) {
    all.push_back(record("ch", i, 1000));
    db.append(all.back());
  }
  const auto s = db.current_stats();
  EXPECT_GT(s.dropped, 150u);
  EXPECT_LE(s.queued_bytes, o.max_queued_bytes);
  ASSERT_TRUE(eventually([&] { return logs.sink->count(spdlog::level::warn, "dropping the oldest") == 1; }))
      << logs.sink->dump();
  fs::remove(blocker);
  ASSERT_TRUE(eventually([&] { return db.current_stats().committed + db.current_stats().dropped == all.size(); }));
  ASSERT_TRUE(db.flush(10s));
  db.load([&](const std::string&, std::vector<history_record>&& records) {
    // The newest records, in order, ending with the last one appended.
    ASSERT_FALSE(records.empty());
    const std::size_t first = all.size() - records.size();
    for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i], stored(all[first + i]));
  });
}

// A small tmpfs that fills up; skipped where mounting is not permitted.
struct small_tmpfs {
  small_tmpfs() {
    path = t.path / "mnt";
    fs::create_directories(path);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=256k,mode=0700") == 0) mounted = true;
    else why = std::strerror(errno);
  }
  ~small_tmpfs() {
    if (mounted && ::umount(path.c_str()) != 0) ::umount2(path.c_str(), MNT_DETACH);
  }
  // Fills the file system with a file; false if it could not fill it.
  bool fill(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    const std::string chunk(4096, 'f');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {}
    const bool full = errno == ENOSPC;
    ::close(fd);
    return full;
  }
  temp_dir t;
  fs::path path;
  bool mounted = false;
  std::string why;
};

TEST(history_db, a_full_disk_is_logged_appends_are_kept_bounded_and_committed_after_space_frees) {
  small_tmpfs disk;
  if (!disk.mounted) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk.why;
  log_capture logs;
  auto o = options(disk.path / "history");
  o.max_queued_bytes = 32 * 1024;
  o.limit = 1000;
  {
    history_db db(o);
    db.append(record("ch", 0, 500));
    ASSERT_TRUE(db.flush(10s));
    const auto filler = disk.path / "filler";
    ASSERT_TRUE(disk.fill(filler));
    std::vector<history_record> all;
    for (int i = 1; i <= 100; ++i) {
      all.push_back(record("ch", i, 500));
      db.append(all.back());  // accepted, never blocking
    }
    ASSERT_TRUE(eventually([&] { return db.current_stats().failed_commits >= 2; })) << logs.sink->dump();
    auto s = db.current_stats();
    EXPECT_FALSE(s.healthy);
    EXPECT_GT(s.dropped, 0u);
    EXPECT_LE(s.queued_bytes, o.max_queued_bytes);
    EXPECT_EQ(logs.sink->count(spdlog::level::warn, "full"), 1u) << logs.sink->dump();
    EXPECT_FALSE(db.flush(2s));
    fs::remove(filler);
    ASSERT_TRUE(eventually([&] { return db.current_stats().healthy; })) << db.current_stats().last_error;
    ASSERT_TRUE(db.flush(10s));
    s = db.current_stats();
    EXPECT_EQ(s.committed + s.dropped, 101u);
    EXPECT_EQ(logs.sink->count(spdlog::level::info, "healthy again"), 1u) << logs.sink->dump();
  }
  const auto got = load_all(o);
  const auto& records = got.at("ch");
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records.front().frame, frame_of(0, 500));    // committed before the disk filled
  EXPECT_EQ(records.back().frame, frame_of(100, 500));   // the newest is never dropped
}

// ---- concurrency ----

TEST(history_db, appends_from_many_threads_all_commit_in_each_threads_order) {
  temp_dir t;
  auto o = options(t.path);
  o.limit = 1000;
  {
    history_db db(o);
    std::vector<std::thread> threads;
    std::atomic<int> acked{0};
    for (int k = 0; k < 8; ++k) {
      threads.emplace_back([&, k] {
        for (int i = 0; i < 300; ++i) {
          auto r = record("t" + std::to_string(k), i);
          if (i % 10 == 0) db.append_durable(std::move(r), [&](bool ok) { acked += ok ? 1 : 0; });
          else db.append(std::move(r));
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE(db.flush(20s));
    EXPECT_EQ(acked, 8 * 30);
    EXPECT_EQ(db.current_stats().committed, 8u * 300);
  }
  const auto got = load_all(o);
  ASSERT_EQ(got.size(), 8u);
  for (const auto& [channel, records] : got) {
    ASSERT_EQ(records.size(), 300u) << channel;
    for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].seq, i + 1);
  }
}
