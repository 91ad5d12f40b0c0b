// The ordered list of tests pytest collected, as every worker reports it.
//
// Tests are addressed by their index in Collection::items: node ids can repeat
// (duplicate parametrize ids), indices cannot. `hash` is computed by the worker
// (see PROTOCOL.md) and must be equal on every worker of a run.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace drover::common {

using TestIndex = std::uint32_t;

struct TestItem {
  std::string nodeid;                // "pkg/test_a.py::TestX::test_y[1]"
  std::string file;                  // "pkg/test_a.py", relative to rootdir, '/' separated
  std::string cls;                   // "TestX" or empty
  int line = 0;                      // 1-based line of the test function, 0 if unknown
  std::vector<std::string> markers;  // marker names, e.g. "slow", "parametrize"
};

// A collector that failed (import error, syntax error, ...).
struct CollectError {
  std::string nodeid;    // "pkg/test_bad.py"
  std::string longrepr;  // pytest's text for it
  std::string message;   // first line of its crash message, when pytest has one ("" else)
};

// A module skipped at collection time (pytest.skip(allow_module_level=True),
// a skip marker on a module, ...).
struct CollectSkip {
  std::string nodeid;  // "pkg/test_mod.py"
  std::string file;    // path of the skip location
  int line = 0;        // 1-based line of the skip location
  std::string reason;  // "Skipped: no database"
};

// pytest's ini options for its --junitxml as the worker read them (config.getini),
// in pytest's words: the JUnit writer interprets them exactly as pytest does.
struct JunitIni {
  std::string suite_name = "pytest";      // junit_suite_name
  std::string family = "xunit2";          // junit_family: xunit2, xunit1 or legacy
  std::string logging = "no";             // junit_logging: no, log, system-out, ...
  std::string duration_report = "total";  // junit_duration_report: total or a phase
  bool log_passing_tests = true;          // junit_log_passing_tests
  std::string error;                      // an option pytest could not read ("" when fine)
};

struct Collection {
  std::vector<TestItem> items;
  std::string hash;  // hex digest over the node ids, see PROTOCOL.md
  std::vector<CollectError> errors;
  std::vector<CollectSkip> skips;
  std::string rootdir;  // absolute path of pytest's rootdir
  std::size_t deselected = 0;  // tests -k/-m (or plugins) removed from the collection
  JunitIni junit;
  // pytest would print a warnings summary (false with --disable-warnings); the warning
  // count in the closing line is shown either way.
  bool show_warnings = true;
  // What pytest made of its own options (ini addopts included), for drover to follow.
  // Not part of `hash`, and not sent to the farm (agents get the pytest args themselves).
  bool collect_only = false;  // --collect-only/--co: list the tests, run none
  int maxfail = 0;            // pytest's -x (1) / --maxfail N; 0: no limit
  bool coverage = false;      // pytest-cov measures in the workers: drover combines and reports
  std::vector<std::string> header;  // plugins' session header lines (pytest_report_header)
  std::string tbstyle;  // pytest's --tb when it shapes the summary: "no" or "line"; "" otherwise
  std::string reportchars = "fE";  // pytest's -r, resolved (getreportopt): the short summary's parts
  int verbose = 0;  // pytest's own -v/-q (args or addopts): count of -v minus count of -q
  std::string junitxml;  // pytest's own --junitxml (args or addopts), absolute; drover writes it
  bool continue_on_collection_errors = false;  // pytest's own flag (args or addopts)
};

}  // namespace drover::common
