#include "cli/session.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <cstring>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <random>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

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
  std::error_code ec;
  if (std::filesystem::is_directory(options.junitxml, ec)) {  // pytest's words and code
    return common::fail(common::ErrorCode::usage, "--junitxml must be a filename, given: " + options.junitxml.string());
  }
  if (auto usable = common::check_junit_ini(collection.junit); !usable) {
    return common::fail(common::ErrorCode::internal, "INTERNALERROR --junitxml: " + usable.error().message);
  }
  return {};
}

int exit_code_with_report(int code, bool report_lost) {
  return report_lost && code == k_exit_ok ? k_exit_tests_failed : code;
}

void adopt_pytest_options(RunOptions& options, const common::Collection& collection) {
  if (options.junitxml.empty() && !collection.junitxml.empty()) options.junitxml = collection.junitxml;
}

bool stops_on_collection_errors(const RunOptions& options, const common::Collection& collection) {
  return !collection.errors.empty() && !options.continue_on_collection_errors &&
         !collection.continue_on_collection_errors;
}

std::string collection_errors_stop(const common::Collection& collection) {
  const auto errors = collection.errors.size();
  return "Interrupted: " + std::to_string(errors) + (errors == 1 ? " error" : " errors") + " during collection";
}

int report_collect_only(Reporter& reporter, const RunOptions& options, const common::Collection& collection,
                        const std::vector<common::TestIndex>& selection, double elapsed,
                        const WarningsSummary& warnings) {
  const bool stopped = stops_on_collection_errors(options, collection);
  reporter.collect_only(collection, selection, elapsed, stopped ? collection_errors_stop(collection) : "", warnings);
  if (stopped) return k_exit_interrupted;
  if (!collection.errors.empty()) return k_exit_tests_failed;
  if (selection.empty() && !options.shard) return k_exit_no_tests;
  return k_exit_ok;
}

constexpr std::uint32_t k_shard_random_seed = 20261130;

common::Result<agent::PoolOptions> pool_options(const RunOptions& options, int workers) {
  auto worker_path = find_worker_path();
  if (!worker_path) return std::unexpected(worker_path.error());
  agent::PoolOptions pool;
  pool.python = options.python;
  pool.pytest_args = options.pytest_args;
  pool.worker_path = *worker_path;
  pool.rootdir = std::filesystem::current_path();
  pool.basetemp_root = temp_directory() / ("drover-" + std::to_string(::getpid()));
  pool.workers = workers;
  pool.timeout = options.timeout;
  pool.max_worker_restart = options.max_worker_restart;
  pool.capture_limit = options.capture_limit;
  pool.worker_start = options.worker_start;
  pool.coverage_dir = pool.basetemp_root / "coverage";
  // Every shard of a CI matrix must collect the same order (the plan is computed in
  // each job): one fixed seed for shards; a new one for each run otherwise.
  pool.random_seed = options.shard ? k_shard_random_seed : std::random_device{}();
  return pool;
}

namespace {

// `python -m drover_worker MODE_ARGS... PYTEST_ARGS...` in the workers' environment;
// waits for it. Its exit code (128 + signal when killed), or why it could not start.
common::Result<int> run_worker_module(const agent::PoolOptions& pool, std::vector<std::string> mode_args,
                                      const posix_spawn_file_actions_t* actions) {
  std::vector<std::string> args = {pool.python, "-m", "drover_worker"};
  args.insert(args.end(), mode_args.begin(), mode_args.end());
  args.insert(args.end(), pool.pytest_args.begin(), pool.pytest_args.end());
  const std::vector<std::string> env = agent::worker_environment(pool);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& entry : env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = -1;
  if (const int error = ::posix_spawnp(&pid, argv[0], actions, nullptr, argv.data(), envp.data()); error != 0) {
    return common::fail(common::ErrorCode::worker, "cannot run " + pool.python + ": " + std::strerror(error));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : k_exit_internal;
}

std::string last_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

int run_pytest_in_foreground(const agent::PoolOptions& pool) {
  auto status = run_worker_module(pool, {"--plain", "--"}, nullptr);
  if (!status) {
    print_error(status.error());
    return k_exit_internal;
  }
  return *status;
}

common::Result<CoverageReport> report_coverage(const agent::PoolOptions& pool, int tests_failed) {
  const auto& scratch = pool.basetemp_root;
  std::error_code ec;
  std::filesystem::create_directories(scratch, ec);
  const auto result_path = scratch / "coverage.json";
  const auto log_path = scratch / "coverage.log";
  std::filesystem::remove(result_path, ec);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  auto status = run_worker_module(
      pool, {"--coverage-report", result_path.string(), pool.coverage_dir.string(), std::to_string(tests_failed), "--"},
      &actions);
  posix_spawn_file_actions_destroy(&actions);
  if (!status) return std::unexpected(status.error());
  std::ifstream in(result_path);
  const auto result = nlohmann::json::parse(in, nullptr, false);
  const bool active = result.is_object() && result.contains("active") && result["active"].is_boolean() &&
                      result["active"].get<bool>();
  if (!in || !active) {
    const std::string why = last_line(log_path);
    return common::fail(common::ErrorCode::internal,
                        "pytest-cov could not report" + (why.empty() ? std::string() : ": " + why));
  }
  CoverageReport report;
  if (auto text = result.find("text"); text != result.end() && text->is_string()) report.text = text->get<std::string>();
  if (auto failed = result.find("failed"); failed != result.end() && failed->is_boolean()) report.failed = failed->get<bool>();
  return report;
}

InterruptGuard::InterruptGuard(agent::Pool& pool) {
  g_interrupt_target.store(&pool);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);  // a closed terminal or a CI cancel: stop as on Ctrl-C
  std::signal(SIGPIPE, SIG_IGN);
}

InterruptGuard::~InterruptGuard() {
  g_interrupt_target.store(nullptr);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);
}

bool InterruptGuard::interrupted() { return g_interrupted.load(); }

}  // namespace drover::cli
