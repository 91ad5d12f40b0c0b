#include "cli/session.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/paths.h"
#include "common/junit.h"

namespace drover::cli {
namespace {

// A signal handler can reach the pool only through a global; it is set and
// cleared by InterruptGuard alone.
std::atomic<agent::Pool*> g_interrupt_target{nullptr};
std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true);
  if (agent::Pool* pool = g_interrupt_target.load()) pool->interrupt();
}

}  // namespace

int exit_code_for(const common::Error& error) {
  switch (error.code) {
    case common::ErrorCode::usage: return k_exit_usage;
    case common::ErrorCode::interrupted: return k_exit_interrupted;
    case common::ErrorCode::incomplete: return k_exit_tests_failed;
    default: return k_exit_internal;
  }
}

void print_error(const common::Error& error) {
  std::fflush(stdout);
  std::fprintf(stderr, "ERROR: %s\n", error.message.c_str());
}

common::Result<common::Durations> load_plan_durations(const std::filesystem::path& path) {
  auto durations = common::load_durations(path);
  if (!durations) {
    return common::fail(common::ErrorCode::usage, durations.error().message + " (fix or delete the durations file)");
  }
  return durations;
}

common::Result<void> check_junitxml(const RunOptions& options, const common::Collection& collection) {
  if (options.junitxml.empty()) return {};  // pytest reads the options only for --junitxml
  if (auto usable = common::check_junit_ini(collection.junit); !usable) {
    return common::fail(common::ErrorCode::internal, "INTERNALERROR --junitxml: " + usable.error().message);
  }
  return {};
}

common::Result<agent::PoolOptions> pool_options(const RunOptions& options, int workers) {
  auto worker_path = find_worker_path();
  if (!worker_path) return std::unexpected(worker_path.error());
  agent::PoolOptions pool;
  pool.python = options.python;
  pool.pytest_args = options.pytest_args;
  pool.worker_path = *worker_path;
  pool.rootdir = std::filesystem::current_path();
  pool.basetemp_root = std::filesystem::temp_directory_path() / ("drover-" + std::to_string(::getpid()));
  pool.workers = workers;
  pool.timeout = options.timeout;
  pool.max_worker_restart = options.max_worker_restart;
  pool.capture_limit = options.capture_limit;
  pool.worker_start = options.worker_start;
  return pool;
}

InterruptGuard::InterruptGuard(agent::Pool& pool) {
  g_interrupt_target.store(&pool);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

InterruptGuard::~InterruptGuard() {
  g_interrupt_target.store(nullptr);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

bool InterruptGuard::interrupted() { return g_interrupted.load(); }

}  // namespace drover::cli
