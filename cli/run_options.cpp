#include "cli/run_options.h"

#include <charconv>
#include <thread>

namespace drover::cli {
namespace {

using common::ErrorCode;
using common::fail;

int cpu_count() {
  const unsigned count = std::thread::hardware_concurrency();
  return count == 0 ? 1 : static_cast<int>(count);
}

}  // namespace

void add_run_flags(CLI::App& command, RunFlags& flags, bool with_shards) {
  command.add_option("paths", flags.paths, "Paths and node ids to run (as for pytest)");
  // Strings stay raw (see RunFlags), so "" would read as "not given": `--timeout ""` or
  // `--shard=` are usage errors instead. Options added below take this check.
  const std::size_t first_flag = command.get_options().size();
  command.add_option("-n,--numprocesses", flags.workers, "Workers: a number or 'auto' (CPUs); default min(tests, CPUs)");
  command.add_option("--python", flags.python, "Python interpreter with pytest (default: $DROVER_PYTHON, drover.yaml, python3)");
  command.add_option("-k", flags.keyword, "Only run tests matching the expression (pytest -k)");
  command.add_option("-m", flags.markexpr, "Only run tests matching the mark expression (pytest -m)");
  command.add_option("--durations", flags.durations, "Durations file (pytest-split format; default <rootdir>/.test_durations)");
  command.add_option("--group-by", flags.group_by, "Keep tests together by: none, file or class (default file)");
  command.add_flag("--continue-on-collection-errors", flags.continue_on_collection_errors,
                     "Run the collected tests even when some modules fail to collect");
  if (with_shards) {
    command.add_option("--junitxml,--junit-xml", flags.junitxml, "Write a JUnit XML report to this file");
    command.add_flag("-x,--exitfirst", flags.exitfirst, "Stop after the first failure or error");
    command.add_option("--maxfail", flags.maxfail, "Stop after this many failures or errors");
    command.add_option("--timeout", flags.timeout, "Fail a test that runs longer than this many seconds");
    command.add_flag("-v,--verbose", flags.verbose, "One line per test, with the worker that ran it");
    command.add_flag("-q,--quiet", flags.quiet, "Less output");
    command.add_option("--max-worker-restart", flags.max_worker_restart, "Replace crashed workers at most this often (default 4 x workers)");
    command.add_option("--worker-start", flags.worker_start,
                       "fork: collect once, fork the other workers; exec: start each anew; auto (default): fork when there are more workers than CPUs");
    command.add_option("--capture-limit", flags.capture_limit, "Bytes of captured output kept per test and section (default 1048576)");
    command.add_option("--shard", flags.shard, "Run only this static shard (0-based)");
    command.add_option("--total-shards", flags.total_shards, "Number of static shards");
    command.add_option("--coordinator", flags.coordinator, "Run on a farm: the coordinator's tcp://HOST:PORT");
    command.add_option("--run-id", flags.run_id, "Farm/CI queue run id (default: generated)");
    command.add_option("--workspace", flags.workspace, "Farm: agents already have this checkout; skip the upload");
    command.add_flag("--wait-all", flags.wait_all, "CI queue: exit with the whole run's code, not this job's");
    command.add_option("--connect-timeout", flags.connect_timeout,
                       "Seconds to wait for the coordinator (default 5); CI queue jobs then run their static shard");
  }
  const CLI::Validator non_empty([](const std::string& value) { return value.empty() ? "must not be empty" : ""; },
                                 "", "NONEMPTY");
  const auto options = command.get_options();
  for (std::size_t i = first_flag; i < options.size(); ++i) {
    if (options[i]->get_expected_min() > 0) options[i]->check(non_empty);
  }
}

int stricter_maxfail(int a, int b) {
  if (a <= 0) return std::max(0, b);
  if (b <= 0) return a;
  return std::min(a, b);
}

common::Result<RunOptions> resolve_run_options(const RunFlags& flags, const EnvLookup& env) {
  namespace fs = std::filesystem;
  RunOptions options;
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  options.rootdir = cwd;
  common::Config config;
  if (auto found = common::find_config(cwd)) {
    auto loaded = common::load_config(*found);
    if (!loaded) return std::unexpected(loaded.error());
    config = std::move(*loaded);
    options.rootdir = found->parent_path();
  }

  if (!flags.python.empty()) {
    options.python = flags.python;
  } else if (auto from_env = env("DROVER_PYTHON"); from_env && !from_env->empty()) {
    options.python = *from_env;
  } else {
    options.python = config.python.value_or("python3");
  }

  const std::string workers = !flags.workers.empty() ? flags.workers : config.workers.value_or("");
  if (workers == "auto") {
    options.workers = cpu_count();
    options.workers_explicit = true;
  } else if (!workers.empty()) {
    auto count = parse_number<int>(workers, "-n/--numprocesses", 1);
    if (!count) return std::unexpected(count.error());
    options.workers = *count;
    options.workers_explicit = true;
  } else {
    options.workers = cpu_count();
  }

  if (!flags.junitxml.empty()) options.junitxml = flags.junitxml;
  else if (config.junitxml) options.junitxml = options.rootdir / *config.junitxml;

  options.durations_explicit = !flags.durations.empty() || config.durations.has_value();
  if (!flags.durations.empty()) options.durations = flags.durations;
  else if (config.durations) options.durations = options.rootdir / *config.durations;
  else options.durations = options.rootdir / ".test_durations";

  if (!flags.maxfail.empty()) {
    auto maxfail = parse_number<int>(flags.maxfail, "--maxfail", 0);  // 0: no limit, as pytest
    if (!maxfail) return std::unexpected(maxfail.error());
    options.maxfail = *maxfail;
  } else if (config.maxfail) {
    options.maxfail = *config.maxfail;
  }
  if (flags.exitfirst) options.maxfail = 1;

  if (!flags.timeout.empty()) {
    auto timeout = parse_number<double>(flags.timeout, "--timeout", 0.0, common::k_max_timeout);
    if (!timeout) return std::unexpected(timeout.error());
    options.timeout = *timeout;
  } else {
    options.timeout = config.timeout.value_or(0.0);
  }

  options.verbosity = flags.verbose - flags.quiet;

  if (!flags.max_worker_restart.empty()) {
    auto restarts = parse_number<int>(flags.max_worker_restart, "--max-worker-restart", 0);
    if (!restarts) return std::unexpected(restarts.error());
    options.max_worker_restart = *restarts;
  } else {
    options.max_worker_restart = config.max_worker_restart.value_or(-1);
  }

  if (!flags.capture_limit.empty()) {
    auto limit = parse_number<long long>(flags.capture_limit, "--capture-limit", 1);
    if (!limit) return std::unexpected(limit.error());
    options.capture_limit = static_cast<std::size_t>(*limit);
  } else if (config.capture_limit) {
    options.capture_limit = static_cast<std::size_t>(*config.capture_limit);
  }

  const std::string worker_start = !flags.worker_start.empty() ? flags.worker_start : config.worker_start.value_or("auto");
  const auto parsed_start = agent::parse_worker_start(worker_start);
  if (!parsed_start) {
    return fail(ErrorCode::usage, "--worker-start must be auto, fork or exec, not '" + worker_start + "'");
  }
  options.worker_start = *parsed_start;

  options.continue_on_collection_errors =
      flags.continue_on_collection_errors || config.continue_on_collection_errors.value_or(false);

  auto shard = resolve_shard(flags.shard, flags.total_shards, env);
  if (!shard) return std::unexpected(shard.error());
  options.shard = *shard;

  const std::string group_by = !flags.group_by.empty() ? flags.group_by : config.group_by.value_or("file");
  auto parsed_group = common::parse_group_by(group_by);
  if (!parsed_group) return std::unexpected(parsed_group.error());
  options.group_by = *parsed_group;

  if (!flags.run_id.empty() && flags.coordinator.empty()) {
    return fail(ErrorCode::usage, "--run-id needs --coordinator");
  }
  options.coordinator = flags.coordinator;
  options.run_id = flags.run_id;
  options.workspace = flags.workspace;
  options.wait_all = flags.wait_all;
  if (!flags.connect_timeout.empty()) {
    auto seconds = parse_number<double>(flags.connect_timeout, "--connect-timeout", 0.1);
    if (!seconds) return std::unexpected(seconds.error());
    options.connect_timeout = *seconds;
  }
  if (options.coordinator.empty() && (options.wait_all || !flags.connect_timeout.empty())) {
    return fail(ErrorCode::usage, options.wait_all ? "--wait-all needs --coordinator" : "--connect-timeout needs --coordinator");
  }
  if (!options.coordinator.empty() && options.shard && options.run_id.empty()) {
    return fail(ErrorCode::usage, "--coordinator with --shard (CI queue mode) needs --run-id, the same in every job");
  }

  // The workers' pytest: drover.yaml's args, then selection flags, paths, and what follows "--".
  options.pytest_args = config.pytest_args;
  if (!flags.keyword.empty()) options.pytest_args.insert(options.pytest_args.end(), {"-k", flags.keyword});
  if (!flags.markexpr.empty()) options.pytest_args.insert(options.pytest_args.end(), {"-m", flags.markexpr});
  if (options.continue_on_collection_errors) options.pytest_args.push_back("--continue-on-collection-errors");
  // drover's -v/-q are pytest's too (as pytest-xdist passes them on): the workers' pytest
  // shapes assertion diffs and header lines by them, and reports the sum in `collected`.
  for (int i = 0; i < flags.verbose; ++i) options.pytest_args.push_back("-v");
  for (int i = 0; i < flags.quiet; ++i) options.pytest_args.push_back("-q");
  options.pytest_args.insert(options.pytest_args.end(), flags.paths.begin(), flags.paths.end());
  options.pytest_args.insert(options.pytest_args.end(), flags.pytest_args.begin(), flags.pytest_args.end());
  return options;
}

std::filesystem::path durations_path(const RunOptions& options, const std::string& pytest_rootdir) {
  if (options.durations_explicit || pytest_rootdir.empty()) return options.durations;
  return std::filesystem::path(pytest_rootdir) / ".test_durations";
}

}  // namespace drover::cli
