// JUnit XML: writing drover's report, reading reports back, merging shards.
//
// The writer produces what pytest's own --junitxml produces (xunit2 family):
// one <testsuite name="pytest"> with one <testcase> per test (classname, name,
// file, line, time), <failure>/<error>/<skipped> with message and text,
// <system-out>/<system-err>, collection errors and module-level skips as pytest
// records them. drover adds testsuite <properties> (shard index and count,
// collection hash, assigned test ids) so a merge can prove completeness.
// Failure: a one-line Error naming the file. Thread-safety: free functions.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/collection.h"
#include "common/error.h"
#include "common/test_result.h"

namespace drover::common {

struct JunitReport {
  const Collection* collection = nullptr;
  std::vector<TestResult> results;  // any order; one per test that ran
  double elapsed = 0.0;             // seconds, whole run
  std::string timestamp;            // ISO 8601, "" for now
  std::string hostname;             // "" for this host
  // Static shard this report covers, when sharded.
  std::optional<int> shard_index;
  std::optional<int> total_shards;
  // Tests this report was responsible for (a shard's assignment); when empty,
  // every collected test.
  std::vector<TestIndex> assigned;
  bool assigned_set = false;  // true when `assigned` is meaningful even if empty
  std::vector<std::pair<std::string, std::string>> extra_properties;
};

[[nodiscard]] Result<void> write_junit(const std::filesystem::path& path, const JunitReport& report);

}  // namespace drover::common
