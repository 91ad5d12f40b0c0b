#include "agent/worker_process.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <utility>

namespace drover::agent {
namespace {

constexpr std::size_t k_read_chunk = 64 * 1024;
constexpr auto k_reap_limit = std::chrono::seconds(5);

}  // namespace

void OutputTail::append(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    if (newline == std::string_view::npos) {
      m_partial.append(bytes);
      // A process that never writes a newline must not grow the tail forever.
      if (m_partial.size() > k_max_bytes) m_partial.erase(0, m_partial.size() - k_max_bytes);
      return;
    }
    m_partial.append(bytes.substr(0, newline));
    push_line(std::exchange(m_partial, {}));
    bytes.remove_prefix(newline + 1);
  }
}

void OutputTail::push_line(std::string line) {
  if (line.size() > k_max_bytes) line.erase(0, line.size() - k_max_bytes);
  m_bytes += line.size() + 1;
  m_lines.push_back(std::move(line));
  while (m_lines.size() > k_max_lines || m_bytes > k_max_bytes) {
    m_bytes -= m_lines.front().size() + 1;
    m_lines.pop_front();
  }
}

std::string OutputTail::text() const {
  std::string out;
  for (const std::string& line : m_lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  if (!m_partial.empty()) {
    if (!out.empty()) out += '\n';
    out += m_partial;
  }
  return out;
}

std::string OutputTail::from_last(std::string_view prefix) const {
  std::size_t start = m_lines.size();
  for (std::size_t i = m_lines.size(); i-- > 0;) {
    if (std::string_view(m_lines[i]).starts_with(prefix)) {
      start = i;
      break;
    }
  }
  if (start == m_lines.size()) return {};
  std::string out;
  for (std::size_t i = start; i < m_lines.size(); ++i) {
    if (!out.empty()) out += '\n';
    out += m_lines[i];
  }
  if (!m_partial.empty()) out += '\n' + m_partial;
  return out;
}

WorkerProcess::WorkerProcess(ProcessLauncher& launcher, ChildProcess child)
    : m_launcher(launcher), m_child(std::move(child)) {}

WorkerProcess::~WorkerProcess() {
  if (m_exit || unborn()) return;
  m_launcher.signal_group(m_child.pid, SIGKILL);
  // SIGKILL cannot be ignored; the wait is bounded only against a child stuck
  // in the kernel, which then stays a zombie rather than hanging drover.
  const auto deadline = std::chrono::steady_clock::now() + k_reap_limit;
  while (!m_launcher.try_reap(m_child.pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return;
    if (m_child.exit_fd.valid()) {
      pollfd fd{m_child.exit_fd.get(), POLLIN, 0};
      ::poll(&fd, 1, 100);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

std::size_t WorkerProcess::add_poll_fds(std::vector<pollfd>& fds) const {
  // Always four entries (fd -1 is ignored by poll) so the span lines up.
  fds.push_back({m_child.messages.valid() ? m_child.messages.get() : -1, POLLIN, 0});
  fds.push_back({m_child.output.valid() ? m_child.output.get() : -1, POLLIN, 0});
  fds.push_back({!m_exit && m_child.exit_fd.valid() ? m_child.exit_fd.get() : -1, POLLIN, 0});
  fds.push_back({!m_command_buffer.empty() && m_child.commands.valid() ? m_child.commands.get() : -1,
                 POLLOUT, 0});
  return 4;
}

void WorkerProcess::adopt(pid_t pid) {
  register_child(pid);
  m_child.pid = pid;
  m_child.exit_fd = open_pidfd(pid);
}

void WorkerProcess::handle_events(std::span<const pollfd> fds, std::vector<std::string>& lines) {
  if (fds.size() < 4) return;
  if (fds[0].fd >= 0 && fds[0].revents != 0) read_messages(lines);
  if (fds[1].fd >= 0 && fds[1].revents != 0) read_output();
  if (fds[3].fd >= 0 && fds[3].revents != 0) flush_commands();
  if (fds[2].fd >= 0 && fds[2].revents != 0) reap(lines);
}

void WorkerProcess::check_exit(std::vector<std::string>& lines) {
  if (!m_exit) reap(lines);
}

void WorkerProcess::reap(std::vector<std::string>& lines) {
  if (unborn()) {
    // Lines just read may carry the hello that gives this seat its pid: the pool
    // handles them first and polls again.
    if (m_child.messages.valid() || !lines.empty()) return;
    m_exit = ExitStatus{};
    read_output();
    m_child.commands.reset();
    m_command_buffer.clear();
    return;
  }
  auto status = m_launcher.try_reap(m_child.pid);
  if (!status) return;
  m_exit = status;
  // The child is gone: what it wrote is all in the pipes, unless a grandchild
  // still holds them, and then the non-blocking reads stop at "nothing yet".
  read_messages(lines);
  read_output();
  m_child.commands.reset();
  m_command_buffer.clear();
}

void WorkerProcess::send(std::string line) {
  if (m_exit || !m_child.commands.valid()) return;
  m_command_buffer += std::move(line);
  flush_commands();
}

void WorkerProcess::signal(int sig) {
  if (!m_exit && !unborn()) m_launcher.signal_group(m_child.pid, sig);
}

void WorkerProcess::read_messages(std::vector<std::string>& lines) {
  char chunk[k_read_chunk];
  while (m_child.messages.valid()) {
    const ssize_t got = ::read(m_child.messages.get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) return;
    if (got <= 0) {
      // EOF (or a broken pipe): a partial last line is passed on so that the
      // codec reports it instead of it vanishing silently.
      if (!m_message_buffer.empty()) lines.push_back(std::exchange(m_message_buffer, {}));
      m_child.messages.reset();
      return;
    }
    const std::size_t search_from = m_message_buffer.size();  // older bytes hold no newline
    m_message_buffer.append(chunk, static_cast<std::size_t>(got));
    std::size_t consumed = 0;
    for (auto newline = m_message_buffer.find('\n', search_from); newline != std::string::npos;
         newline = m_message_buffer.find('\n', consumed)) {
      if (newline > consumed) lines.push_back(m_message_buffer.substr(consumed, newline - consumed));
      consumed = newline + 1;
    }
    m_message_buffer.erase(0, consumed);
  }
}

void WorkerProcess::read_output() {
  char chunk[k_read_chunk];
  while (m_child.output.valid()) {
    const ssize_t got = ::read(m_child.output.get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) return;
    if (got <= 0) {
      m_child.output.reset();
      return;
    }
    m_output.append(std::string_view(chunk, static_cast<std::size_t>(got)));
  }
}

void WorkerProcess::flush_commands() {
  while (!m_command_buffer.empty() && m_child.commands.valid()) {
    const ssize_t sent = ::send(m_child.commands.get(), m_command_buffer.data(), m_command_buffer.size(),
                                MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && errno == EAGAIN) return;
    if (sent < 0) {
      // EPIPE/ECONNRESET: the worker is gone or closed its end; its exit is
      // handled through the exit descriptor, the commands are moot.
      m_command_buffer.clear();
      m_child.commands.reset();
      return;
    }
    m_command_buffer.erase(0, static_cast<std::size_t>(sent));
  }
}

}  // namespace drover::agent
