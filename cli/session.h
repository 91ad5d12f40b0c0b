// Shared steps of the commands that run pytest locally (run, plan): start the
// warm pool, map errors to pytest's exit codes, print errors the same way.
// Thread-safety: one thread; the signal handler only calls Pool::interrupt.
#pragma once

#include <filesystem>
#include <string>

#include <vector>

#include "agent/pool.h"
#include "cli/reporter.h"
#include "cli/run_options.h"
#include "common/durations.h"
#include "common/error.h"

namespace drover::cli {

// pytest's exit code for an Error (usage -> 4, interrupted -> 2, incomplete -> 1, else 3).
[[nodiscard]] int exit_code_for(const common::Error& error);
// "ERROR: message" on stderr, as pytest prints its own errors.
void print_error(const common::Error& error);

// With --junitxml: whether pytest's --junitxml could report with the collection's
// junit_* ini options (common::check_junit_ini); pytest fails on a bad one, exit 3.
[[nodiscard]] common::Result<void> check_junitxml(const RunOptions& options, const common::Collection& collection);

// What pytest made of its own options that drover does for it: a --junitxml given to
// pytest (after `--` or in addopts) is drover's report to write (the workers do not).
void adopt_pytest_options(RunOptions& options, const common::Collection& collection);
// A run whose JUnit report could not be written fails (1, as pytest's INTERNALERROR
// there): a CI reading only the report must not go green.
[[nodiscard]] int exit_code_with_report(int code, bool report_lost);

// Collection errors end the run before any test: unless --continue-on-collection-errors,
// drover's own or pytest's (after `--` or in the ini's addopts).
[[nodiscard]] bool stops_on_collection_errors(const RunOptions& options, const common::Collection& collection);

// "Interrupted: 2 errors during collection": the stop line of a run that collection
// errors end (unless --continue-on-collection-errors).
[[nodiscard]] std::string collection_errors_stop(const common::Collection& collection);

// --collect-only (pytest's, from the pytest args or ini addopts): prints the selected
// tests as `pytest --co -q` does (with the collection's warnings summary) and returns
// pytest's exit code for it (0; 5 when nothing was collected; collection errors as in
// a run). Runs nothing.
[[nodiscard]] int report_collect_only(Reporter& reporter, const RunOptions& options,
                                      const common::Collection& collection,
                                      const std::vector<common::TestIndex>& selection, double elapsed,
                                      const WarningsSummary& warnings);

// Pool options for a local run from resolved run options.
[[nodiscard]] common::Result<agent::PoolOptions> pool_options(const RunOptions& options, int workers);

// The durations file a run plans from (none yet: empty). One that exists but cannot be
// used is the user's to fix: a usage error (exit 4) naming it.
[[nodiscard]] common::Result<common::Durations> load_plan_durations(const std::filesystem::path& path);

// pytest itself in the foreground (`python -m drover_worker --plain -- ARGS`: the
// `pytest` command's behaviour) on drover's stdout and stderr, for informational
// options such as --help, --version, --fixtures, --markers. Returns its exit code.
[[nodiscard]] int run_pytest_in_foreground(const agent::PoolOptions& pool);

// pytest-cov's part once the workers are done (collection.coverage): combines their data
// (moved to pool.coverage_dir) and writes its reports in a pytest session that runs
// nothing (`python -m drover_worker --coverage-report`, as after a run with
// `tests_failed` failures); its output goes to a log in pool.basetemp_root. `text` is pytest-cov's terminal section; `failed`: --cov-fail-under not met.
struct CoverageReport {
  std::string text;
  bool failed = false;
};
[[nodiscard]] common::Result<CoverageReport> report_coverage(const agent::PoolOptions& pool, int tests_failed);

// While alive, SIGINT and SIGTERM interrupt `pool` instead of killing drover.
class InterruptGuard {
 public:
  explicit InterruptGuard(agent::Pool& pool);
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  [[nodiscard]] static bool interrupted();
};

}  // namespace drover::cli
