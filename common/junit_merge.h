// Merging JUnit reports (drover's shards, pytest's own, other xunit) into one
// report, and proving a sharded run complete.
//
// The merged report is one <testsuites><testsuite> as pytest writes it, with
// every testcase copied verbatim and totals summed from the inputs (pytest's
// own counting, quirks included). When the inputs carry drover's properties
// (junit.h), the merge checks: one collection hash; shard indices 0..N-1 each
// present once; every report holds exactly its assigned tests (a node id
// assigned twice must be reported twice); the shards' assignments together
// cover the collection once and hash to the collection hash. Each problem is
// one line in MergedReport::problems; merging never fails on them.
// Thread-safety: pure functions over values.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <pugixml.hpp>
#include <string>
#include <vector>

#include "common/durations.h"
#include "common/error.h"
#include "common/junit_read.h"

namespace drover::common {

// Per-test outcomes in pytest's summary words.
struct MergeCounts {
  int failed = 0;
  int passed = 0;
  int skipped = 0;
  int xfailed = 0;
  int errors = 0;
};

// One test's time, for the durations file: the node id when a drover report
// names it, else empty (see guess_nodeid).
struct CaseTime {
  TestAddress address;
  double seconds = 0.0;
  std::string nodeid;
};

struct MergedReport {
  std::shared_ptr<pugi::xml_document> document;
  int reports = 0;
  // The merged testsuite's attributes.
  int tests = 0;
  int failures = 0;
  int errors = 0;
  int skipped = 0;
  double time = 0.0;  // sum of the reports' times: test time, not wall time
  MergeCounts counts;
  std::vector<std::string> problems;  // empty: complete
  std::vector<CaseTime> case_times;   // one per test, collection reports excluded
};

[[nodiscard]] MergedReport merge_junit(const std::vector<JunitFile>& files, const std::string& drover_version);

// "3 failed, 72 passed, 4 skipped in 12.31s", as pytest's summary line words it.
[[nodiscard]] std::string summary_words(const MergeCounts& counts, double seconds);

// Node ids by the testcase address pytest writes for them.
using KnownNodeids = std::map<TestAddress, std::string>;
[[nodiscard]] KnownNodeids index_nodeids(const std::vector<std::string>& nodeids);

// A node id for a testcase of a plain pytest report, which records only
// classname and name: the one in `known` (e.g. the durations file's keys) with
// the same address; else the longest classname prefix naming an
// existing "<prefix>.py" (checked with `file_exists`, relative to the cwd); else
// the module is taken to end before the trailing Capitalized (class) parts.
// Empty for a testcase without a classname.
using FileExists = std::function<bool(const std::string&)>;
[[nodiscard]] std::string guess_nodeid(const TestAddress& address, const KnownNodeids& known,
                                       const FileExists& file_exists);

// Records the merged times into `durations` (node id -> seconds); a node id seen
// more than once keeps its longest time. Returns how many tests were recorded.
int update_durations_from_merge(Durations& durations, const std::vector<CaseTime>& times,
                                const FileExists& file_exists);

}  // namespace drover::common
