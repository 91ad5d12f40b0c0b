#include "agent/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

extern char** environ;

namespace drover::agent {
namespace {

using common::ErrorCode;

std::string errno_text(int error) { return std::strerror(error); }

std::mutex g_children_mutex;
std::set<pid_t> g_children;      // registered workers, until reaped (register_child)
std::deque<pid_t> g_groups;      // their process groups (= their pids), the latest 4096
constexpr std::size_t k_groups_kept = 4096;

// Field 5 of /proc/PID/stat (also readable for a zombie); -1 when unknown.
pid_t process_group_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 1));
  std::string state;
  pid_t parent = 0, group = -1;
  fields >> state >> parent >> group;
  return fields ? group : -1;
}

// A descriptor above the range the child's layout uses, close-on-exec, so the
// child's dup2() calls can never clobber a source descriptor.
int high_cloexec(int fd) {
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return high;
}

bool set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// Resolved before clone: PATH lookup allocates, which the child must not.
std::optional<std::string> resolve_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    const auto candidate = std::filesystem::path(dir.empty() ? std::string_view(".") : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

// What the child needs between clone and exec, prepared by the parent.
struct ChildArgs {
  pid_t parent;
  const char* program;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  int stdin_fd, output_fd, command_fd, message_fd, error_fd;
  const int* extra_fds;  // placed at k_child_first_extra_fd + i; all >= that + count
  int extra_count;
};

// Everything the child does between clone and exec: async-signal-safe calls
// only, and no writes to memory it shares with the parent besides errno (see
// spawn_child()).
[[noreturn]] void child_main(const ChildArgs& a) {
  const pid_t parent = a.parent;
  const int error_fd = a.error_fd;
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  // Dispositions and masks survive exec; the worker must start with defaults.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int error = 0;
  if (::dup2(a.stdin_fd, 0) < 0 || ::dup2(a.output_fd, 1) < 0 || ::dup2(a.output_fd, 2) < 0 ||
      ::dup2(a.command_fd, k_child_command_fd) < 0 || ::dup2(a.message_fd, k_child_message_fd) < 0) {
    error = errno;
  }
  for (int i = 0; error == 0 && i < a.extra_count; ++i) {
    if (::dup2(a.extra_fds[i], k_child_first_extra_fd + i) < 0) error = errno;
  }
  // Only the layout above crosses exec; the error pipe is close-on-exec and
  // above the layout, so it survives until exec.
  if (error == 0) {
    ::syscall(SYS_close_range, static_cast<unsigned>(k_child_first_extra_fd + a.extra_count),
              static_cast<unsigned>(error_fd - 1), 0U);
    ::syscall(SYS_close_range, static_cast<unsigned>(error_fd + 1), UINT_MAX, 0U);
  }
  if (error == 0 && a.cwd[0] != '\0' && ::chdir(a.cwd) != 0) error = errno;
  if (error == 0) {
    ::execve(a.program, a.argv, a.envp);
    error = errno;
  }
  [[maybe_unused]] auto written = ::write(error_fd, &error, sizeof error);
  ::_exit(127);
}

int child_entry(void* raw) { child_main(*static_cast<const ChildArgs*>(raw)); }

// Like posix_spawn: the child shares the parent's memory (CLONE_VM) on a stack of
// its own, and the parent waits until it called exec or exited (CLONE_VFORK). A
// fork() would copy drover's page tables and take copy-on-write faults in both
// processes; on a VM that made starting the second worker take 10-25 ms. All
// signals stay blocked around the clone so no handler of drover's runs in the
// child before child_main() resets the dispositions and unblocks them.
pid_t spawn_child(ChildArgs& args) {
  constexpr std::size_t k_stack_size = 256 * 1024;
  std::vector<char> stack(k_stack_size);
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::clone(child_entry, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = clone_errno;
  return pid;
}

class RealProcessLauncher final : public ProcessLauncher {
 public:
  common::Result<ChildProcess> launch(const LaunchSpec& spec) override {
    if (spec.argv.empty()) return common::fail(ErrorCode::internal, "launch: empty command");
    auto program = resolve_program(spec.argv[0]);
    // The program is the user's interpreter (--python): one that cannot run is their
    // usage error (exit 4), not drover's.
    if (!program) return common::fail(ErrorCode::usage, spec.argv[0] + ": command not found");

    // Child-side ends are duplicated above fd 10 and close-on-exec; parent-side
    // ends are close-on-exec so sibling workers never inherit each other's pipes.
    int command[2], message[2], output[2], error_pipe[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, command) != 0) return os_error("socketpair");
    UniqueFd command_parent(command[0]), command_child(high_cloexec(command[1]));
    if (::pipe2(message, O_CLOEXEC) != 0) return os_error("pipe");
    UniqueFd message_parent(message[0]), message_child(high_cloexec(message[1]));
    if (::pipe2(output, O_CLOEXEC) != 0) return os_error("pipe");
    UniqueFd output_parent(output[0]), output_child(high_cloexec(output[1]));
    if (::pipe2(error_pipe, O_CLOEXEC) != 0) return os_error("pipe");
    UniqueFd error_read(error_pipe[0]), error_write(high_cloexec(error_pipe[1]));
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) return os_error("/dev/null");
    UniqueFd stdin_child(high_cloexec(null_fd));
    if (!command_child.valid() || !message_child.valid() || !output_child.valid() ||
        !error_write.valid() || !stdin_child.valid()) {
      return os_error("fcntl");
    }
    // Extra descriptors land at k_child_first_extra_fd...; their sources sit above
    // that range so placing one never overwrites another's source.
    const int extra_count = static_cast<int>(spec.extra_fds.size());
    const int extra_base = std::max(10, k_child_first_extra_fd + extra_count);
    std::vector<UniqueFd> extras;
    std::vector<int> extra_fds;
    for (int fd : spec.extra_fds) {
      extras.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, extra_base));
      if (!extras.back().valid()) return os_error("fcntl");
      extra_fds.push_back(extras.back().get());
    }
    // The error pipe must sit above the child's layout, which child_main's dup2s fill
    // (it keeps the pipe and closes everything else above the layout). No fixed floor:
    // a low RLIMIT_NOFILE (ulimit -n 64) must still leave room.
    const int layout_end = k_child_first_extra_fd + extra_count;
    if (error_write.get() < layout_end) {
      error_write = UniqueFd(::fcntl(error_write.get(), F_DUPFD_CLOEXEC, layout_end));
      if (!error_write.valid()) return os_error("fcntl");
    }

    std::vector<char*> argv, envp;
    for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    for (const std::string& var : spec.env) envp.push_back(const_cast<char*>(var.c_str()));
    envp.push_back(nullptr);
    const std::string cwd = spec.cwd.string();

    ChildArgs args{::getpid(),          program->c_str(),     argv.data(),       envp.data(),
                   cwd.c_str(),         stdin_child.get(),    output_child.get(), command_child.get(),
                   message_child.get(), error_write.get(), extra_fds.data(), extra_count};
    const pid_t pid = spawn_child(args);
    if (pid < 0) return os_error("clone");
    ::setpgid(pid, pid);  // also done by the child; whoever runs first wins the race
    error_write.reset();
    int child_errno = 0;
    ssize_t got;
    do {
      got = ::read(error_read.get(), &child_errno, sizeof child_errno);
    } while (got < 0 && errno == EINTR);
    if (got > 0) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      return common::fail(ErrorCode::usage, spec.argv[0] + ": " + errno_text(child_errno));
    }

    register_child(pid);
    ChildProcess child;
    child.pid = pid;
    child.exit_fd = open_pidfd(pid);
    child.commands = std::move(command_parent);
    child.messages = std::move(message_parent);
    child.output = std::move(output_parent);
    set_nonblocking(child.commands.get());
    set_nonblocking(child.messages.get());
    set_nonblocking(child.output.get());
    return child;
  }

  void signal_group(pid_t pid, int sig) override {
    if (pid > 0 && ::kill(-pid, sig) != 0) ::kill(pid, sig);
  }

  std::optional<ExitStatus> try_reap(pid_t pid) override {
    if (pid <= 0) return std::nullopt;  // waitpid would take any child
    int status = 0;
    pid_t got;
    do {
      got = ::waitpid(pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got != pid) return std::nullopt;
    {
      const std::lock_guard lock(g_children_mutex);
      g_children.erase(pid);
    }
    if (WIFSIGNALED(status)) return ExitStatus{true, WTERMSIG(status)};
    return ExitStatus{false, WEXITSTATUS(status)};
  }

 private:
  static std::unexpected<common::Error> os_error(const char* what) {
    return common::fail(ErrorCode::worker, std::string("cannot start worker: ") + what + ": " + errno_text(errno));
  }
};

}  // namespace

UniqueFd open_pidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

common::Result<Seat> make_seat() {
  const auto os_error = [](const char* what) {
    return common::fail(ErrorCode::worker, std::string("cannot prepare a worker: ") + what + ": " + errno_text(errno));
  };
  int command[2], message[2], output[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, command) != 0) return os_error("socketpair");
  Seat seat;
  seat.parent.commands = UniqueFd(command[0]);
  seat.command = UniqueFd(command[1]);
  if (::pipe2(message, O_CLOEXEC) != 0) return os_error("pipe");
  seat.parent.messages = UniqueFd(message[0]);
  seat.message = UniqueFd(message[1]);
  if (::pipe2(output, O_CLOEXEC) != 0) return os_error("pipe");
  seat.parent.output = UniqueFd(output[0]);
  seat.output = UniqueFd(output[1]);
  set_nonblocking(seat.parent.commands.get());
  set_nonblocking(seat.parent.messages.get());
  set_nonblocking(seat.parent.output.get());
  return seat;
}

namespace {
std::mutex g_subreaper_mutex;
int g_subreaper_count = 0;
}  // namespace

void register_child(pid_t pid) {
  const std::lock_guard lock(g_children_mutex);
  g_children.insert(pid);
  g_groups.push_back(pid);
  if (g_groups.size() > k_groups_kept) g_groups.pop_front();
}

int reap_strays() {
  std::vector<pid_t> strays;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream children(task.path() / "children");
    for (pid_t pid; children >> pid;) strays.push_back(pid);
  }
  int running = 0;
  const std::lock_guard lock(g_children_mutex);
  for (pid_t pid : strays) {
    if (g_children.contains(pid)) continue;
    // Only processes from a worker's group: drover's own helpers (git, a probe of the
    // interpreter) are waited for by whoever started them.
    if (std::find(g_groups.begin(), g_groups.end(), process_group_of(pid)) == g_groups.end()) continue;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == 0) ++running;
  }
  return running;
}

SubreaperScope::SubreaperScope() {
  const std::lock_guard lock(g_subreaper_mutex);
  if (g_subreaper_count++ == 0) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

SubreaperScope::~SubreaperScope() {
  const std::lock_guard lock(g_subreaper_mutex);
  if (--g_subreaper_count == 0) ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

void UniqueFd::reset(int fd) {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = fd;
}

std::unique_ptr<ProcessLauncher> make_process_launcher() { return std::make_unique<RealProcessLauncher>(); }

std::vector<std::string> environment_with(const std::string& key, const std::string& value) {
  std::vector<std::string> env;
  const std::string prefix = key + "=";
  for (char** var = environ; var && *var; ++var) {
    if (std::string_view(*var).starts_with(prefix)) continue;
    env.emplace_back(*var);
  }
  env.push_back(prefix + value);
  return env;
}

std::string describe(const ExitStatus& status) {
  if (status.signaled) return "crashed (signal " + std::to_string(status.code) + ")";
  return "exited with code " + std::to_string(status.code);
}

}  // namespace drover::agent
