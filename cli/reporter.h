// The terminal output of a run, in pytest's words.
//
// While tests run: a live line on a TTY, progress dots otherwise (-q, default)
// or one line per test with its worker (-v). At the end: results grouped per
// file in collection order (whatever the scheduling), FAILURES and ERRORS
// sections with pytest's tracebacks and captured output, the short test
// summary, and a closing line that always carries both the failed and the
// passed count. Thread-safety: one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/warnings_summary.h"
#include "common/collection.h"
#include "common/test_result.h"

namespace drover::cli {

// Counts per pytest category, as pytest's summary line counts them (one per report).
struct Counts {
  int failed = 0;
  int passed = 0;
  int skipped = 0;
  int deselected = 0;
  int xfailed = 0;
  int xpassed = 0;
  int errors = 0;
  std::int64_t warnings = 0;
  // Plugins' own categories (Status::other: "rerun", "subtests passed") in first-seen order.
  std::vector<std::pair<std::string, std::int64_t>> others;

  void add(const common::TestResult& result);
  [[nodiscard]] bool ok() const { return failed == 0 && errors == 0; }
};

// "3 failed, 72 passed, 4 skipped, 2 xfailed, 1 xpassed, 5 warnings, 2 errors in 1.31s"
[[nodiscard]] std::string summary_text(const Counts& counts, double elapsed);
// pytest's closing line for --collect-only: "3 tests collected in 0.12s", "2/5 tests
// collected (3 deselected), 1 error in 0.12s", "no tests collected in 0.01s".
[[nodiscard]] std::string collect_only_summary(std::size_t selected, std::size_t deselected, std::size_t errors,
                                               double elapsed);
// pytest's duration words: "0.52s", "75.12s (0:01:15)".
[[nodiscard]] std::string format_elapsed(double seconds);
// "pkg/test_a.py::TestX::test_y[1]" -> "TestX.test_y[1]", as pytest's section heads.
[[nodiscard]] std::string head_line(const std::string& nodeid);

// pytest's terminal width: $COLUMNS, else the terminal's (stdout), else 80; under 40
// counts as 80.
[[nodiscard]] int terminal_width();

class Reporter {
 public:
  Reporter(std::FILE* out, int verbosity, bool tty, int width = 80);

  void header(const std::string& text);
  // The run's last line: "==== 1 failed, 2 passed in 0.50s ====", unframed with -q.
  void closing_line(const std::string& text);
  void line(const std::string& text);
  // The run's size for the progress; prints pytest's "collected N items" line unless -q.
  void collected(const common::Collection& collection, std::size_t selected, std::size_t workers);
  void test_finished(const common::TestItem& item, const common::TestResult& result);
  // Prints the collection errors as pytest does ("ERROR collecting ...").
  void collection_errors(const common::Collection& collection);
  // --collect-only: the selected tests' node ids, one a line, collection errors as in
  // a run, the warnings summary (unless collection.show_warnings is false; pytest's
  // --co closing line has no warning count), `stop_message` (if any) and
  // collect_only_summary(), as `pytest --co -q`.
  void collect_only(const common::Collection& collection, const std::vector<common::TestIndex>& selection,
                    double elapsed, const std::string& stop_message, const WarningsSummary& warnings);
  // Everything after the run; returns the counts it printed. The warnings summary
  // follows FAILURES (unless collection.show_warnings is false); its count is in the
  // closing line either way. `stop_message` is ruled with '!' before the closing line;
  // lines after its first are printed as they are.
  Counts finish(const common::Collection& collection,
                const std::vector<std::optional<common::TestResult>>& results, double elapsed,
                const std::string& stop_message, const WarningsSummary& warnings);

  // Text plugins wrote in pytest's terminal summary (pytest-cov's report), printed by
  // finish() where pytest prints it: after the warnings summary, before the short summary.
  void set_plugin_summary(std::string text) { m_plugin_summary = std::move(text); }
  // Run from `cwd` below pytest's `rootdir`: node ids and files are shown relative to
  // cwd, as pytest's terminal shows them (config.cwd_relative_nodeid).
  void set_invocation_dir(const std::string& rootdir, const std::string& cwd);
  // `nodeid` (relative to the rootdir) as the terminal shows it.
  [[nodiscard]] std::string shown(const std::string& nodeid) const;
  // --junitxml: pytest's "--- generated xml file: PATH ---" line, before the plugins' text.
  void set_junit_path(std::string path) { m_junit_path = std::move(path); }
  // Once pytest's own -v/-q are known (they add to drover's).
  void set_verbosity(int verbosity) { m_verbosity = verbosity; }

  // "===== text =====" padded to the terminal width.
  [[nodiscard]] std::string ruled(const std::string& text, char fill) const;

 private:
  void progress_dot(const common::TestResult& result);
  void clear_live_line();
  void stop_line(const std::string& stop_message);
  // The "short test summary info" lines for pytest's -r characters (collection.reportchars).
  [[nodiscard]] std::vector<std::string> short_summary(const common::Collection& collection,
                                                       const std::vector<std::optional<common::TestResult>>& results) const;
  void warnings_section(const common::Collection& collection, const WarningsSummary& warnings);
  void rerun_section(const common::Collection& collection,
                     const std::vector<std::optional<common::TestResult>>& results);
  void passes_section(const common::Collection& collection,
                      const std::vector<std::optional<common::TestResult>>& results);

  std::FILE* m_out;
  int m_verbosity;
  bool m_tty;
  int m_width;
  std::size_t m_total = 0;
  std::size_t m_done = 0;
  std::size_t m_column = 0;
  Counts m_live;
  bool m_live_shown = false;
  std::string m_plugin_summary;
  std::string m_rootdir;  // set when the invocation directory differs from it
  std::string m_cwd;
  std::string m_junit_path;
};

}  // namespace drover::cli
