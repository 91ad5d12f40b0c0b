// The durations file: pytest-split's `.test_durations` format, a JSON object
// mapping node id -> seconds. Read by the planner, written after every run.
//
// Failure: a missing file is an empty map, not an error; anything that is not
// a JSON object of non-negative numbers is a one-line parse Error naming the
// file. Writes go to a temporary file renamed into place, so a crash never
// leaves a half-written file. Thread-safety: free functions over values.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/test_result.h"

namespace drover::common {

using Durations = std::map<std::string, double>;

[[nodiscard]] Result<Durations> load_durations(const std::filesystem::path& path);
// The same checks on text already in memory (an HTTP body); errors start with `source`.
[[nodiscard]] Result<Durations> parse_durations(std::string_view text, const std::string& source);
[[nodiscard]] Result<void> save_durations(const std::filesystem::path& path, const Durations& durations);

// Records each result's duration (sum of phases) under its node id. Entries of
// tests not in `results` are kept. Synthetic results (crash, timeout) are recorded
// too: a test that hit the timeout is known to be slow.
void update_durations(Durations& durations, const Collection& collection,
                      const std::vector<TestResult>& results);

}  // namespace drover::common
