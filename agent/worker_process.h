// One running worker process as the pool's poll loop sees it: non-blocking
// line I/O on the protocol channels, the tail of its stdout/stderr, its exit.
//
// Commands are buffered and written as the channel accepts them, so a busy
// worker never blocks the loop. Output is drained continuously (a worker that
// prints a lot never stalls on a full pipe) and only the last lines are kept,
// for crash and timeout messages. The destructor kills the process group and
// reaps the child. Thread-safety: none; owned by the pool's thread.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/process.h"

namespace drover::agent {

// The last lines a process wrote, bounded by lines and bytes.
class OutputTail {
 public:
  static constexpr std::size_t k_max_lines = 100;
  static constexpr std::size_t k_max_bytes = 16 * 1024;

  void append(std::string_view bytes);
  // The kept lines, '\n'-joined, including an unterminated last line.
  [[nodiscard]] std::string text() const;
  // From the last line starting with `prefix` to the end; "" when there is none.
  [[nodiscard]] std::string from_last(std::string_view prefix) const;

 private:
  void push_line(std::string line);
  std::deque<std::string> m_lines;
  std::size_t m_bytes = 0;
  std::string m_partial;
};

class WorkerProcess {
 public:
  WorkerProcess(ProcessLauncher& launcher, ChildProcess child);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return m_child.pid; }
  // A seat whose forked process has not said hello: no pid to signal or reap yet.
  // If the seat's message pipe closes first, the process counts as exited (status
  // 0) without ever having been born; the pool then starts one itself.
  [[nodiscard]] bool unborn() const { return m_child.pid <= 0; }
  // The pid from the seat's hello (the process is drover's child by then).
  void adopt(pid_t pid);

  // Appends the descriptors to watch; handle_events() takes back the same span.
  [[nodiscard]] std::size_t add_poll_fds(std::vector<pollfd>& fds) const;
  // Reads, writes and reaps as the revents say. Complete message lines are
  // appended to `lines`; once the process exited, everything it wrote has
  // been read first.
  void handle_events(std::span<const pollfd> fds, std::vector<std::string>& lines);
  // Without a pidfd the exit is noticed by polling: the loop calls this often;
  // for an unborn seat, after handling the lines read (a hello gives it a pid).
  void check_exit(std::vector<std::string>& lines);
  // False when exits must be noticed by polling check_exit() (no pidfd).
  [[nodiscard]] bool has_exit_fd() const { return unborn() || m_child.exit_fd.valid(); }

  // Queues one command line ("...\n"); dropped once the process is gone.
  void send(std::string line);
  // Signals the process group (never after the child was reaped).
  void signal(int sig);

  [[nodiscard]] const std::optional<ExitStatus>& exit_status() const { return m_exit; }
  [[nodiscard]] bool exited() const { return m_exit.has_value(); }
  // True once the worker closed its message pipe (normally just before it exits).
  [[nodiscard]] bool messages_closed() const { return !m_child.messages.valid(); }
  [[nodiscard]] const OutputTail& output() const { return m_output; }

 private:
  void read_messages(std::vector<std::string>& lines);
  void read_output();
  void flush_commands();
  void reap(std::vector<std::string>& lines);

  ProcessLauncher& m_launcher;
  ChildProcess m_child;
  std::optional<ExitStatus> m_exit;
  std::string m_message_buffer;
  std::string m_command_buffer;
  OutputTail m_output;
};

}  // namespace drover::agent
