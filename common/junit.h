// JUnit XML: writing drover's report (reading and merging: junit_read.h, junit_merge.h).
//
// The writer produces what pytest 7's own --junitxml produces (default xunit2
// family): <testsuites><testsuite name="pytest" ...> with one <testcase> per test
// (classname, name, time; xunit1 adds file and 0-based line), <failure>/<error>/
// <skipped> with pytest's messages, a second <testcase> for a teardown error after
// a failed call, collection errors and module-level skips as pytest records them,
// record_property()'s <properties> in the testcase, and <system-out>/<system-err>
// only as junit_logging asks (pytest's default: none).
// drover adds testsuite <properties> (version, collection hash, shard index and
// count, assigned node ids) so a merge can prove completeness; the names are below.
// Failure: a one-line Error naming the file; the file is written to a temporary
// name and renamed, so readers never see half a report. Thread-safety: free functions.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/collection.h"
#include "common/error.h"
#include "common/test_result.h"

namespace drover::common {

// drover's testsuite properties: the one place their names are defined.
inline constexpr std::string_view k_junit_prop_version = "drover.version";
inline constexpr std::string_view k_junit_prop_collection_hash = "drover.collection_hash";
inline constexpr std::string_view k_junit_prop_shard_index = "drover.shard_index";    // 0-based
inline constexpr std::string_view k_junit_prop_total_shards = "drover.total_shards";
inline constexpr std::string_view k_junit_prop_collected_count = "drover.collected_count";
inline constexpr std::string_view k_junit_prop_assigned_count = "drover.assigned_count";
// One property per assigned test, value = node id, in collection order; a node id
// collected twice appears twice.
inline constexpr std::string_view k_junit_prop_assigned = "drover.assigned";
// The assigned tests' indices in the collection, as ranges ("0-3,7,9-10"), in the
// same order: the shards of a run together must cover 0..collected_count-1 once,
// and their node ids in index order must hash to the collection hash.
inline constexpr std::string_view k_junit_prop_assigned_indices = "drover.assigned_indices";
// Written by `drover merge`: how many reports went into the merged one.
inline constexpr std::string_view k_junit_prop_merged_reports = "drover.merged_reports";

// pytest's junit_family ini option.
enum class JunitFamily { xunit2, xunit1 };
// pytest's junit_logging ini option: which captured output goes into the report.
enum class JunitLogging { no, log, system_out, system_err, out_err, all };

[[nodiscard]] Result<JunitFamily> parse_junit_family(std::string_view word);  // "xunit2", "xunit1", "legacy"
// "no", "log", ..., "all"; any other word writes no output, as in pytest.
[[nodiscard]] JunitLogging parse_junit_logging(std::string_view word);
// Whether pytest's --junitxml can report with these ini options. pytest fails with an
// INTERNALERROR (exit 3) on a bad junit_family or junit_log_passing_tests: so does
// this, with ErrorCode::internal, before any test runs. Other options take any word.
[[nodiscard]] Result<void> check_junit_ini(const JunitIni& ini);

struct JunitReport {
  // The tests, and pytest's junit_* ini options (collection->junit) that shape the
  // report: suite name, family, captured output, durations.
  const Collection* collection = nullptr;
  std::vector<TestResult> results;  // any order; one per test that ran
  double elapsed = 0.0;             // seconds, whole run
  std::string timestamp;            // ISO 8601, "" for (now - elapsed) in local time
  std::string hostname;             // "" for this host
  // Static shard this report covers, when sharded.
  std::optional<int> shard_index;
  std::optional<int> total_shards;
  // Tests this report was responsible for (a shard's assignment); when empty,
  // every collected test.
  std::vector<TestIndex> assigned;
  bool assigned_set = false;  // true when `assigned` is meaningful even if empty
  std::vector<std::pair<std::string, std::string>> extra_properties;
  std::string drover_version;  // written as drover.version when not empty
};

[[nodiscard]] Result<void> write_junit(const std::filesystem::path& path, const JunitReport& report);

}  // namespace drover::common
