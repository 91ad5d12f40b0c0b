// The options of `drover run` (and `drover plan`): raw flags from the command
// line, merged with drover.yaml and the environment into one validated value.
// Precedence: command line, then environment (DROVER_PYTHON), then drover.yaml,
// then built-in defaults. Failure: a one-line usage Error. Thread-safety: pure.
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/pool.h"
#include "cli/shard_env.h"
#include "common/config.h"
#include "common/error.h"
#include "common/planner.h"

namespace drover::cli {

// `text` as a finite number from `minimum` to `maximum`, or the usage error naming `flag`.
template <class T>
common::Result<T> parse_number(const std::string& text, const std::string& flag, T minimum,
                               T maximum = std::numeric_limits<T>::max()) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  bool finite = true;
  if constexpr (std::is_floating_point_v<T>) finite = std::isfinite(value);  // from_chars takes inf, nan
  if (text.empty() || ec != std::errc() || ptr != end || !finite) {
    return common::fail(common::ErrorCode::usage, "argument " + flag + ": invalid value '" + text + "'");
  }
  if (value < minimum) {
    return common::fail(common::ErrorCode::usage,
                        fmt::format("argument {}: must be at least {}, got '{}'", flag, minimum, text));
  }
  if (value > maximum) {
    return common::fail(common::ErrorCode::usage,
                        fmt::format("argument {}: must be at most {}, got '{}'", flag, maximum, text));
  }
  return value;
}

// What CLI11 fills in; strings stay raw so validation and messages live in one place.
struct RunFlags {
  std::vector<std::string> paths;
  std::string workers;
  std::string python;
  std::string junitxml;
  std::string keyword;
  std::string markexpr;
  bool exitfirst = false;
  std::string maxfail;
  std::string timeout;
  std::string durations;
  int verbose = 0;
  int quiet = 0;
  std::string max_worker_restart;
  std::string capture_limit;
  std::string worker_start;
  bool continue_on_collection_errors = false;
  std::string shard;
  std::string total_shards;
  std::string group_by;
  std::string coordinator;
  std::string run_id;
  std::string workspace;
  bool wait_all = false;
  std::string connect_timeout;
  std::vector<std::string> pytest_args;  // after "--" (split off by main)
};

// Registers the shared flags of run/plan on `command`.
void add_run_flags(CLI::App& command, RunFlags& flags, bool with_shards);

struct RunOptions {
  std::filesystem::path rootdir;   // where drover.yaml was found, else the current directory
  std::string python;
  int workers = 0;                 // resolved count
  bool workers_explicit = false;   // -n given (else min(tests, CPUs))
  std::filesystem::path junitxml;  // empty: none
  std::filesystem::path durations; // always set; see durations_path()
  bool durations_explicit = false; // from --durations or drover.yaml
  int maxfail = 0;                 // 0: no limit
  double timeout = 0.0;
  int verbosity = 0;               // -1 quiet, 0 normal, 1+ verbose
  int max_worker_restart = -1;
  std::size_t capture_limit = 1 << 20;
  agent::WorkerStart worker_start = agent::WorkerStart::automatic;  // --worker-start
  bool continue_on_collection_errors = false;
  std::optional<ShardSpec> shard;
  common::GroupBy group_by = common::GroupBy::file;
  std::vector<std::string> pytest_args;  // everything the workers' pytest gets
  std::string coordinator;
  std::string run_id;
  std::string workspace;
  bool wait_all = false;
  double connect_timeout = 5.0;  // seconds to wait for the coordinator's Welcome
};

// The stricter of two failure limits, 0 meaning none: drover's own and pytest's.
[[nodiscard]] int stricter_maxfail(int a, int b);

[[nodiscard]] common::Result<RunOptions> resolve_run_options(const RunFlags& flags, const EnvLookup& env);

// The durations file: as given, else .test_durations at pytest's rootdir (which
// is where pytest.ini is, not necessarily the current directory).
[[nodiscard]] std::filesystem::path durations_path(const RunOptions& options, const std::string& pytest_rootdir);

}  // namespace drover::cli
