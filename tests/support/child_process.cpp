// child_process: posix_spawn with stdout/stderr redirected to pipes, poll()-driven reads.
#include "support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace mles::test {
namespace {

using steady = std::chrono::steady_clock;

bool inherited(std::string_view entry) {
  for (std::string_view drop : {"MLES_KEY=", "MLES_LOG=", "RUST_LOG="}) {
    if (entry.rfind(drop, 0) == 0) return false;
  }
  return true;
}

int to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

child_process::child_process(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string{"pipe2: "} + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (inherited(*e)) env.emplace_back(*e);
  }
  for (auto& e : extra_env) env.push_back(std::move(e));
  std::vector<char*> argv_c;
  for (auto& a : argv) argv_c.push_back(a.data());
  argv_c.push_back(nullptr);
  std::vector<char*> env_c;
  for (auto& e : env) env_c.push_back(e.data());
  env_c.push_back(nullptr);

  const int rc = ::posix_spawn(&pid_, argv_c[0], &actions, nullptr, argv_c.data(), env_c.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("posix_spawn(" + argv[0] + "): " + std::strerror(rc));
  }
}

child_process::~child_process() {
  if (pid_ > 0 && !exit_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void child_process::signal(int sig) {
  if (pid_ > 0 && !exit_) ::kill(pid_, sig);
}

void child_process::pump(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  const int n = ::poll(fds, 2, static_cast<int>(std::max<long long>(timeout.count(), 0)));
  if (n <= 0) return;
  char buf[4096];
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0) continue;
    for (;;) {
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) break;
      (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(got));
    }
  }
}

std::optional<std::string> child_process::wait_stderr_line(std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    std::size_t eol;
    while ((eol = err_.find('\n', err_scanned_)) != std::string::npos) {
      std::string line = err_.substr(err_scanned_, eol - err_scanned_);
      err_scanned_ = eol + 1;
      if (line.find(needle) != std::string::npos) return line;
    }
    const auto now = steady::now();
    if (now >= deadline) return std::nullopt;
    const bool exited_before = exit_.has_value();
    if (!exit_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_ = to_code(status);
    }
    const std::size_t before = out_.size() + err_.size();
    pump(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                  std::chrono::milliseconds{exit_ ? 5 : 50}));
    // Exited, and its pipes hold nothing more: the line will never come.
    if (exited_before && out_.size() + err_.size() == before && err_.find('\n', err_scanned_) == std::string::npos) {
      return std::nullopt;
    }
  }
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (!exit_) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_ = to_code(status);
      break;
    }
    const auto now = steady::now();
    if (now >= deadline) return std::nullopt;
    pump(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                  std::chrono::milliseconds{20}));
  }
  // Drain what the child wrote before exiting (pipes at EOF once every writer is gone).
  const auto drain_deadline = steady::now() + std::chrono::milliseconds{500};
  for (;;) {
    const std::size_t before = out_.size() + err_.size();
    pump(std::chrono::milliseconds{10});
    if (out_.size() + err_.size() == before || steady::now() >= drain_deadline) break;
  }
  return exit_;
}

void child_process::poll_output(std::chrono::milliseconds timeout) {
  if (!exit_) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_ = to_code(status);
  }
  pump(timeout);
}

std::vector<std::string> child_process::err_lines() const {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < err_.size()) {
    std::size_t eol = err_.find('\n', pos);
    if (eol == std::string::npos) eol = err_.size();
    std::string line = err_.substr(pos, eol - pos);
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(std::move(line));
    pos = eol + 1;
  }
  return lines;
}

}  // namespace mles::test
