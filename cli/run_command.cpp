// `drover run`: collect on a warm local pool, plan, run, report.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

#include "agent/pool.h"
#include "cli/commands.h"
#include "cli/local_source.h"
#include "cli/remote_run.h"
#include "cli/reporter.h"
#include "cli/run_options.h"
#include "cli/warnings_summary.h"
#include "cli/session.h"
#include "common/durations.h"
#include "common/junit.h"
#include "common/planner.h"
#include "coordinator/scheduler.h"

namespace drover::cli {
namespace {

using common::Collection;
using common::TestIndex;
using common::TestResult;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The tests this job runs: all, or its static shard.
std::vector<TestIndex> select_tests(const RunOptions& options, const Collection& collection,
                                    const std::vector<double>& estimates) {
  std::vector<TestIndex> selection;
  if (!options.shard) {
    selection.resize(collection.items.size());
    for (TestIndex i = 0; i < selection.size(); ++i) selection[i] = i;
    return selection;
  }
  auto shards = common::plan_shards(collection, estimates, options.group_by, options.shard->total);
  return shards[static_cast<std::size_t>(options.shard->index)].tests;
}

common::JunitReport junit_report(const RunOptions& options, const Collection& collection,
                                 const std::vector<std::optional<TestResult>>& results,
                                 const std::vector<TestIndex>& selection, double elapsed) {
  common::JunitReport report;
  report.collection = &collection;
  for (const auto& result : results) {
    if (result) report.results.push_back(*result);
  }
  report.elapsed = elapsed;
  report.drover_version = k_version;
  if (options.shard) {
    report.shard_index = options.shard->index;
    report.total_shards = options.shard->total;
    report.assigned = selection;
    report.assigned_set = true;
  }
  return report;
}

// No work at all, and stopping: the pool ends every worker's session at once.
class NoWork final : public agent::WorkSource {
 public:
  [[nodiscard]] std::vector<agent::WorkLease> request(int) override { return {}; }
  [[nodiscard]] bool exhausted() override { return true; }
  [[nodiscard]] bool stopping() override { return true; }
  void completed(TestResult) override {}
  void handed_back(std::uint64_t, std::vector<TestIndex>) override {}
};

int run_local_session(const RunOptions& given, bool& report_lost) {
  RunOptions options = given;  // pytest's own --junitxml joins it once collected
  const auto started = Clock::now();
  auto pool_opts = pool_options(options, options.workers);
  if (!pool_opts) {
    print_error(pool_opts.error());
    return exit_code_for(pool_opts.error());
  }
  pool_opts->maxfail = options.maxfail;  // workers stop at once on their own failures
  // The workers' basetemps go on every way out (an early Ctrl-C too), after the pool
  // (declared below, so destroyed first) has stopped its workers.
  struct RemoveOnExit {
    std::filesystem::path dir;
    ~RemoveOnExit() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_basetemp{pool_opts->basetemp_root};
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  Reporter reporter(stdout, options.verbosity, tty, terminal_width());

  agent::Pool pool(*pool_opts);
  InterruptGuard guard(pool);
  // The pool's warnings (a crashed or timed-out worker) share the terminal with the
  // progress: each gets a line of its own, in drover's words rather than a log's.
  if (auto logger = spdlog::get("agent")) {
    logger->set_pattern(::isatty(STDERR_FILENO) != 0 ? "\r\033[Kdrover: %l: %v" : "\ndrover: %l: %v");
  }
  auto collection = pool.start();
  if (!collection && collection.error().code == common::ErrorCode::interrupted) {
    if (!options.junitxml.empty()) {
      // As pytest interrupted while collecting: a report without tests (a CI still finds one).
      const common::Collection none;
      std::vector<std::optional<TestResult>> no_results;
      if (auto written = common::write_junit(options.junitxml,
                                             junit_report(options, none, no_results, {}, seconds_since(started)));
          !written) {
        print_error(written.error());
      }
    }
    reporter.line(reporter.ruled("Interrupted: KeyboardInterrupt", '!'));
    reporter.header("no tests ran in " + format_elapsed(seconds_since(started)));
    return k_exit_interrupted;
  }
  if (!collection && pool.ended_without_session()) return run_pytest_in_foreground(*pool_opts);
  if (!collection) {
    print_error(collection.error());
    return exit_code_for(collection.error());
  }
  adopt_pytest_options(options, *collection);
  if (auto usable = check_junitxml(options, *collection); !usable) {
    print_error(usable.error());
    return exit_code_for(usable.error());
  }
  const int verbosity = collection->verbose;  // pytest's count, drover's -v/-q included
  reporter.set_verbosity(verbosity);
  // Only now: pytest prints no session header for usage errors and informational options.
  if (verbosity >= 0) reporter.header("test session starts");
  if (verbosity >= 0) reporter.line("rootdir: " + collection->rootdir);
  if (verbosity >= 0) for (const auto& line : collection->header) reporter.line(line);
  reporter.set_invocation_dir(collection->rootdir, std::filesystem::current_path().string());
  const auto durations_file = durations_path(options, collection->rootdir);
  auto durations = load_plan_durations(durations_file);
  if (!durations) {
    print_error(durations.error());
    return exit_code_for(durations.error());
  }

  const auto estimates = common::estimate_durations(*collection, *durations);
  const auto selection = select_tests(options, *collection, estimates);
  const int workers = options.workers_explicit
                          ? options.workers
                          : std::max(1, std::min<int>(options.workers, static_cast<int>(selection.size())));
  if (collection->collect_only) {
    NoWork none;
    (void)pool.run(none);  // every worker ends its session cleanly
    WarningsSummary warnings;
    warnings.add_session(pool.session_warnings());
    return report_collect_only(reporter, options, *collection, selection, seconds_since(started), warnings);
  }
  reporter.collected(*collection, selection.size(), static_cast<std::size_t>(workers));

  std::vector<std::optional<TestResult>> results(collection->items.size());
  WarningsSummary warnings;
  if (!options.junitxml.empty()) {
    reporter.set_junit_path(std::filesystem::absolute(options.junitxml).lexically_normal().string());
  }
  auto finish = [&](const std::string& stop_message) {
    const double elapsed = seconds_since(started);
    warnings.add_session(pool.session_warnings());
    // Written first: "generated xml file" is printed only for a report that exists.
    std::optional<common::Error> unwritten;
    if (!options.junitxml.empty()) {
      if (auto written = common::write_junit(options.junitxml, junit_report(options, *collection, results, selection, elapsed));
          !written) {
        unwritten = written.error();
        reporter.set_junit_path("");
      }
    }
    const Counts counts = reporter.finish(*collection, results, elapsed, stop_message, warnings);
    if (unwritten) {
      print_error(*unwritten);
      report_lost = true;
    }
    std::vector<TestResult> ran;
    for (const auto& result : results) {
      if (result) ran.push_back(*result);
    }
    // Shards leave the file alone: the next shard planned from it in the same checkout
    // must see what this one saw. `drover merge --durations` refreshes it for the suite.
    if (!ran.empty() && !options.shard) {
      common::update_durations(*durations, *collection, ran);
      if (auto saved = common::save_durations(durations_file, *durations); !saved) print_error(saved.error());
    }
    return counts;
  };

  // pytest-cov's part, once the workers are done (see report_coverage).
  bool coverage_failed = false;
  bool coverage_lost = false;
  auto cover = [&] {
    int failed = static_cast<int>(collection->errors.size());  // as pytest's session.testsfailed
    for (const auto& result : results) {
      Counts one;
      if (result) one.add(*result);
      failed += one.failed + one.errors;
    }
    if (auto coverage = report_coverage(*pool_opts, failed)) {
      reporter.set_plugin_summary(coverage->text);
      coverage_failed = coverage->failed;
    } else {
      print_error(coverage.error());
      coverage_lost = true;
    }
  };

  // pytest counts collection errors as failures: at -x/--maxfail it stops collecting
  // there and runs nothing (exit 1), before it would stop for the errors themselves.
  const int maxfail = stricter_maxfail(options.maxfail, collection->maxfail);
  const auto collect_failures = static_cast<int>(collection->errors.size());
  if (maxfail > 0 && collect_failures >= maxfail) {
    collection->errors.resize(static_cast<std::size_t>(maxfail));
    finish("stopping after " + std::to_string(maxfail) + " failures");
    return k_exit_tests_failed;
  }
  if (stops_on_collection_errors(options, *collection)) {
    finish(collection_errors_stop(*collection));
    return k_exit_interrupted;
  }
  if (selection.empty()) {
    if (collection->coverage) {
      NoWork none;
      (void)pool.run(none);  // the workers end their sessions: pytest-cov saves what collecting ran
      cover();
    }
    finish("");
    if (coverage_lost) return k_exit_internal;
    if (coverage_failed) return k_exit_tests_failed;
    // A shard the plan leaves empty is a valid, green job; an empty suite (a -k typo, no
    // tests) is pytest's exit 5 in every shard, so the matrix cannot pass with zero tests.
    if (options.shard && !collection->items.empty()) return k_exit_ok;
    return collection->errors.empty() ? k_exit_no_tests : k_exit_tests_failed;
  }

  // Longest first balances several workers; one has nothing to balance and runs the
  // suite in collection order, as pytest does (so -x stops where pytest stops), test by
  // test: a plugin may have interleaved modules (pytest-order), which grouping by file
  // would undo.
  auto units = common::make_units(*collection, selection, estimates,
                                  workers == 1 ? common::GroupBy::none : options.group_by, workers);
  if (workers == 1) {
    std::ranges::sort(units, {}, [](const common::WorkUnit& unit) { return unit.tests.front(); });
  }
  coordinator::SchedulerOptions scheduler_options;
  scheduler_options.speculate_at_tail = false;  // one machine: a second copy would compete for the same CPUs
  coordinator::Scheduler scheduler(std::move(units), scheduler_options);
  LocalWorkSource source(scheduler, workers, maxfail > 0 ? maxfail - collect_failures : 0,
                         [&](const TestResult& result) {
    warnings.take(results[result.index].emplace(result));
    reporter.test_finished(collection->items[result.index], *results[result.index]);
  });
  auto ran = pool.run(source);
  std::string stop_message;
  const bool interrupted = ran ? InterruptGuard::interrupted() : ran.error().code == common::ErrorCode::interrupted;
  if (!ran && !interrupted) {
    print_error(ran.error());
    source.fail_remaining("not run: " + ran.error().message);
  } else if (interrupted) {
    std::size_t not_run = 0;
    for (TestIndex index : selection) not_run += results[index] ? 0 : 1;
    stop_message = "Interrupted: KeyboardInterrupt, " + std::to_string(not_run) + " of " +
                   std::to_string(selection.size()) + " tests not run";
  } else if (const auto& exit = source.exit()) {
    // As pytest: an interrupted session (2) says why before the closing line, others after it.
    stop_message = exit->with_detail(exit->message);
  } else if (source.hit_maxfail()) {
    stop_message = "stopping after " + std::to_string(source.failures()) + " failures";
  } else if (!scheduler.done()) {
    source.fail_remaining("not run: no worker left");
  }
  if (stop_message.empty()) {
    // The last line of defence: whatever went wrong, every selected test ends with one outcome.
    for (TestIndex index : selection) {
      if (!results[index]) {
        results[index] = common::synthetic_result(index, common::Status::error, "not run: lost by drover",
                                                  "drover lost this test's result: please report this as a bug");
      }
    }
  }
  const auto& exit = source.exit();
  if (exit) {
    // The test that ended the session is not reported, but pytest counts its warnings.
    for (const common::Warning& warning : exit->warnings) warnings.add(exit->test ? *exit->test + 1 : 0, warning);
  }
  if (collection->coverage && !interrupted && !exit) cover();
  const bool exit_after = exit && exit->returncode != k_exit_interrupted;
  const Counts counts = finish(exit_after ? "" : stop_message);
  if (exit_after) reporter.line(exit->with_detail(reporter.ruled(exit->message, '!')));
  if (interrupted) return k_exit_interrupted;
  if (exit) return exit->returncode;
  // Crashed workers past the restart limit leave failed tests behind: a test failure, not ours.
  if (!ran && ran.error().code != common::ErrorCode::worker) return exit_code_for(ran.error());
  if (coverage_lost) return k_exit_internal;
  return counts.ok() && !coverage_failed ? k_exit_ok : k_exit_tests_failed;
}

int run_local(const RunOptions& options) {
  bool report_lost = false;
  const int code = run_local_session(options, report_lost);
  return exit_code_with_report(code, report_lost);
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code, const std::vector<std::string>& passthrough) {
  auto* command = app.add_subcommand("run", "Run a pytest suite on a warm pool of workers");
  auto flags = std::make_shared<RunFlags>();
  add_run_flags(*command, *flags, true);
  command->callback([command, flags, &exit_code, &passthrough] {
    flags->pytest_args = passthrough;
    auto options = resolve_run_options(*flags, process_env());
    if (!options) {
      print_error(options.error());
      exit_code = exit_code_for(options.error());
      return;
    }
    if (check_args_only(*command)) return;
    if (!options->coordinator.empty()) {
      if (auto remote = run_remote(*options)) {
        exit_code = *remote;
        return;
      }
    }
    exit_code = run_local(*options);
  });
}

}  // namespace drover::cli
