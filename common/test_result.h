// Results of running one test: one PhaseReport per phase pytest ran.
//
// `status` is pytest's own category for the report (pytest_report_teststatus:
// the word the summary line counts), so plugins and xfail logic are honoured
// exactly as in pytest. Synthetic results (worker crash, timeout, lost agent,
// not run) are ordinary PhaseReports made by drover. Thread-safety: plain values.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/collection.h"

namespace drover::common {

enum class Phase { setup, call, teardown };

// pytest's report category. `none` is pytest's "" (a passed setup or teardown);
// `other` a plugin's own category (PhaseReport::category: "rerun", "subtests passed"),
// counted under its name and not the test's outcome.
enum class Status { none, passed, failed, skipped, xfailed, xpassed, error, other };

// pytest's words: "passed", "failed", ... ("" for none).
[[nodiscard]] std::string_view to_string(Status status);
[[nodiscard]] std::string_view to_string(Phase phase);
// Parses pytest's words; nullopt-like failure is reported as false.
[[nodiscard]] bool parse_status(std::string_view word, Status& out);
[[nodiscard]] bool parse_phase(std::string_view word, Phase& out);

struct PhaseReport {
  Phase when = Phase::call;
  std::string outcome;   // pytest's raw report outcome: "passed", "failed", "skipped"
  Status status = Status::none;
  double duration = 0.0; // seconds
  std::string longrepr;  // failure/error text as pytest prints it; skip: "file:line: reason"
  std::string message;   // one line: exception line for failures, reason for skips/xfails
  // A failure's whole crash message (pytest's reprcrash.message, every line), when
  // its longrepr has one; "" otherwise. pytest's JUnit writes it as the message.
  std::string crash;
  // A skip's place in pytest's short summary ("SKIPPED [n] WHERE: reason"): "file:line",
  // or "file" for a skip marker; relative to the invocation directory. "" when not a skip.
  std::string skip_where;
  // ("Captured stdout call", text), ("Captured stderr call", ...), ("Captured log call", ...)
  std::vector<std::pair<std::string, std::string>> sections;
  // pytest's item.user_properties as (name, str(value)): record_property().
  std::vector<std::pair<std::string, std::string>> properties;
  // Status::other: the plugin's category word ("rerun"). "" otherwise.
  std::string category;
  // With pytest's --tb=line, a failure's one line in the FAILURES section: "path:line: message".
  std::string crash_line;
  // pytest's head of a failed report's FAILURES/ERRORS section ("TestX.test_y[1]",
  // "[doctest] mod.f"); "" when the worker sent none (drover then derives it from the node id).
  std::string head_line;
  // The progress letter and -v word pytest_report_teststatus gave, when a plugin's
  // differ from the status's own ("R"/"RERUN", "u"/"SUBFAIL"); "" for the defaults.
  std::string letter;
  std::string word;
};

// A warning pytest recorded (pytest_warning_recorded), as its warnings summary shows it.
struct Warning {
  std::string location;  // the test's node id, or "file:line" for one outside any test
  std::string message;   // pytest's text: "file:line: UserWarning: text\n  source line\n"
  int count = 1;         // recorded this many times, identically
};

struct TestResult {
  TestIndex index = 0;
  std::string worker;  // "gw0" locally, "agent-name/gw1" on a farm
  std::vector<PhaseReport> phases;
  // Recorded while the test ran (setup to teardown), identical ones merged.
  std::vector<Warning> warnings;

  // The single final outcome of the test: the first failing or noteworthy
  // phase decides (error in setup/teardown -> error, call -> its status).
  [[nodiscard]] Status final_status() const;
  [[nodiscard]] double duration() const;  // sum over phases
};

// A result drover makes for a test that pytest could not finish: a worker crash
// ("worker crashed (signal 11)"), a timeout, a lost agent, a test never run.
[[nodiscard]] TestResult synthetic_result(TestIndex index, Status status, std::string message,
                                          std::string longrepr, std::string worker = {});

}  // namespace drover::common
