// Starting worker processes: the OS seam of the pool.
//
// ProcessLauncher starts a child with the worker protocol's file layout (stdin
// /dev/null; stdout+stderr into one pipe; the command channel at fd
// k_child_command_fd and the message pipe at fd k_child_message_fd; every other
// descriptor closed), in its own process group (a terminal Ctrl-C reaches only
// drover, and a kill of the group also takes the test's own subprocesses), with
// PR_SET_PDEATHSIG=SIGKILL so no worker outlives the thread that started it.
// The command channel is a stream socket rather than a pipe so that writing to
// a dead worker gives EPIPE instead of killing drover with SIGPIPE; to the
// worker it reads like a pipe.
// Failure: launch() returns ErrorCode::worker naming the program when it cannot
// be found or exec'd. Thread-safety: a launcher may be shared; UniqueFd and
// ChildProcess are plain owners.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace drover::agent {

inline constexpr int k_child_command_fd = 3;  // the worker's --in-fd
inline constexpr int k_child_message_fd = 4;  // the worker's --out-fd
inline constexpr int k_child_first_extra_fd = 5;  // LaunchSpec::extra_fds from here on

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.m_fd, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  [[nodiscard]] int get() const { return m_fd; }
  [[nodiscard]] bool valid() const { return m_fd >= 0; }
  void reset(int fd = -1);

 private:
  int m_fd = -1;
};

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] without a '/' is looked up in PATH
  std::vector<std::string> env;   // the complete environment, "KEY=value"
  std::filesystem::path cwd;      // empty: inherit
  // Descriptors the child inherits at k_child_first_extra_fd, +1, ... in this order
  // (the launcher duplicates them; the caller keeps and closes its own).
  std::vector<int> extra_fds;
};

// The parent's side of a started child. pid -1: a seat (make_seat()) whose
// process has not said who it is yet.
struct ChildProcess {
  pid_t pid = -1;
  UniqueFd exit_fd;   // pidfd: readable once the child exited; invalid when unsupported
  UniqueFd commands;  // write end of the command channel (non-blocking)
  UniqueFd messages;  // read end of the message pipe (non-blocking)
  UniqueFd output;    // read end of the stdout+stderr pipe (non-blocking)
};

struct ExitStatus {
  bool signaled = false;
  int code = 0;  // exit code, or the signal number when signaled
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  [[nodiscard]] virtual common::Result<ChildProcess> launch(const LaunchSpec& spec) = 0;
  // Sends `sig` to the child's whole process group.
  virtual void signal_group(pid_t pid, int sig) = 0;
  // Reaps the child if it exited; never blocks.
  [[nodiscard]] virtual std::optional<ExitStatus> try_reap(pid_t pid) = 0;
};

// clone/exec on Linux (posix_spawn-style: the child shares memory until exec).
[[nodiscard]] std::unique_ptr<ProcessLauncher> make_process_launcher();

// A seat: the channels of a worker that another worker will fork (see Pool,
// "forked workers"). `parent` has the usual non-blocking parent-side ends and pid
// -1; the child-side ends (command socket, message pipe write end, stdout+stderr
// pipe write end) go to the forking worker as LaunchSpec::extra_fds.
struct Seat {
  ChildProcess parent;
  UniqueFd command, message, output;
};
[[nodiscard]] common::Result<Seat> make_seat();

// A pidfd for `pid` (invalid when the kernel has none).
[[nodiscard]] UniqueFd open_pidfd(pid_t pid);

// Workers are registered from launch (or adoption, for forked ones) until reaped,
// process-wide, so that reap_strays() leaves every pool's workers to their pool.
void register_child(pid_t pid);
// Reaps, without blocking, exited children of this process that are no registered
// worker but belong to a worker's process group: processes orphaned below drover
// while it was a subreaper (a forking worker killed mid-fork leaves its
// intermediate process so). Returns how many such children are still running.
int reap_strays();

// While one of these lives, this process is a child subreaper
// (PR_SET_CHILD_SUBREAPER): orphaned descendants become its children, which is
// how a worker forked by another worker becomes drover's own child. Counted, so
// pools starting at once in several threads share it.
class SubreaperScope {
 public:
  SubreaperScope();
  ~SubreaperScope();
  SubreaperScope(const SubreaperScope&) = delete;
  SubreaperScope& operator=(const SubreaperScope&) = delete;
};

// The current environment with `key` set to `value` (replacing any old value).
[[nodiscard]] std::vector<std::string> environment_with(const std::string& key, const std::string& value);

// "exited with code 3" / "crashed (signal 11)" style wording for messages.
[[nodiscard]] std::string describe(const ExitStatus& status);

}  // namespace drover::agent
