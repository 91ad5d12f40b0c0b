// drover.yaml: per-project defaults for `drover run` (and friends).
//
// The file sits at the project root: the first directory, from the current one
// upwards, holding drover.yaml; the search stops at a directory with pytest.ini,
// pyproject.toml, tox.ini, setup.cfg or .git. Every key is optional; command-line
// flags override it. Unknown keys and wrong types are a one-line usage Error
// naming the file and key. Thread-safety: free functions over values.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace drover::common {

// The longest --timeout / `timeout:` accepted (about 31 years): beyond it the worker's
// faulthandler timer and the pool's deadline arithmetic would overflow.
inline constexpr double k_max_timeout = 1e9;

struct Config {
  std::optional<std::string> python;
  std::optional<std::string> workers;  // "auto" or a positive number
  std::optional<double> timeout;  // seconds, 0 (none) to k_max_timeout
  std::optional<int> max_worker_restart;
  std::optional<int> maxfail;
  std::optional<std::string> junitxml;
  std::optional<std::string> durations;
  std::optional<std::string> group_by;
  std::optional<long long> capture_limit;
  std::optional<bool> continue_on_collection_errors;
  std::optional<std::string> worker_start;  // "auto", "fork" or "exec"
  std::vector<std::string> pytest_args;
  std::filesystem::path source;  // the file read; empty when none was found
};

// Finds drover.yaml from `start` upwards (see above); nullopt when there is none.
[[nodiscard]] std::optional<std::filesystem::path> find_config(const std::filesystem::path& start);
[[nodiscard]] Result<Config> load_config(const std::filesystem::path& path);
[[nodiscard]] Result<Config> parse_config(const std::string& text, const std::string& name);

}  // namespace drover::common
