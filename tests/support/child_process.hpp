// A child process for end-to-end tests of the real binary: argv in, stdout/stderr captured
// through non-blocking pipes, every wait bounded. The destructor kills a child still running.
// Thread-safety: one controlling thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mles::test {

class child_process {
 public:
  // Starts argv[0] with argv. The child's environment is ours without MLES_KEY, MLES_LOG and
  // RUST_LOG, plus extra_env ("NAME=value"). Throws std::runtime_error if spawning fails.
  explicit child_process(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Sends a signal (no-op once the child was reaped).
  void signal(int sig);

  // Reads stderr until a complete line containing needle arrives; returns that line. nullopt
  // at the deadline, or as soon as the child has exited and its stderr is drained.
  std::optional<std::string> wait_stderr_line(std::string_view needle,
                                              std::chrono::milliseconds timeout);
  // Waits for the exit, draining the pipes. Exit code, or 128 + signal number when killed
  // by a signal; nullopt when still running at the deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Reads what stdout/stderr hold, waiting at most timeout for something to arrive, and
  // notes an exit. Lets a test keep the pipes drained (a child blocked on a full stderr pipe
  // stops serving) and look at err() without the line cursor of wait_stderr_line.
  void poll_output(std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
  // Exit code once the child was seen to exit (by wait_exit, wait_stderr_line or poll_output).
  std::optional<int> exit_code() const noexcept { return exit_; }

  const std::string& out() const noexcept { return out_; }
  const std::string& err() const noexcept { return err_; }
  // Non-empty stderr lines so far.
  std::vector<std::string> err_lines() const;

 private:
  // Reads what the pipes hold, waiting at most timeout for something to arrive.
  void pump(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::optional<int> exit_;
  std::string out_;
  std::string err_;
  std::size_t err_scanned_ = 0;
};

}  // namespace mles::test
