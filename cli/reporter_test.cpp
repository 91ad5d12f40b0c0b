#include "cli/reporter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

namespace drover::cli {
namespace {

using common::Phase;
using common::PhaseReport;
using common::Status;
using common::TestResult;

TestResult result_of(common::TestIndex index, std::vector<std::pair<Phase, Status>> phases) {
  TestResult result;
  result.index = index;
  result.worker = "gw0";
  for (auto [when, status] : phases) {
    PhaseReport report;
    report.when = when;
    report.status = status;
    report.outcome = status == Status::failed || status == Status::error ? "failed" : "passed";
    if (status == Status::failed) report.longrepr = "E   assert 1 == 2";
    report.message = status == Status::failed ? "assert 1 == 2" : "";
    report.crash = report.message;
    result.phases.push_back(report);
  }
  return result;
}

// What a Reporter writing to memory printed while `body` used it.
std::string captured(const std::function<void(Reporter&)>& body, int verbosity = 0, bool tty = false) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  Reporter reporter(out, verbosity, tty);
  body(reporter);
  std::fclose(out);
  std::string text(buffer, size);
  std::free(buffer);
  return text;
}

TEST(Summary, AlwaysCarriesFailedAndPassed) {
  Counts counts;
  counts.passed = 40;
  EXPECT_EQ(summary_text(counts, 0.52), "0 failed, 40 passed in 0.52s");
  counts = Counts{3, 72, 4, 0, 2, 1, 2, 0, {}};
  EXPECT_EQ(summary_text(counts, 1.31), "3 failed, 72 passed, 4 skipped, 2 xfailed, 1 xpassed, 2 errors in 1.31s");
  counts = Counts{};
  counts.errors = 1;
  EXPECT_EQ(summary_text(counts, 0.0), "0 failed, 0 passed, 1 error in 0.00s");
}

TEST(Summary, LongRunsShowClockTime) { EXPECT_EQ(format_elapsed(75.123), "75.12s (0:01:15)"); }

TEST(Summary, HeadLineIsPytestsDomain) {
  EXPECT_EQ(head_line("pkg/test_a.py::TestX::test_y[a::b]"), "TestX.test_y[a::b]");
  EXPECT_EQ(head_line("test_a.py::test_f"), "test_f");
  EXPECT_EQ(head_line("test_a.py"), "test_a.py");
}

TEST(Counts, CountOneReportPerCategoryLikePytest) {
  Counts counts;
  counts.add(result_of(0, {{Phase::setup, Status::none}, {Phase::call, Status::passed}, {Phase::teardown, Status::error}}));
  counts.add(result_of(1, {{Phase::setup, Status::error}, {Phase::teardown, Status::none}}));
  counts.add(result_of(2, {{Phase::setup, Status::none}, {Phase::call, Status::failed}, {Phase::teardown, Status::none}}));
  EXPECT_EQ(counts.passed, 1);
  EXPECT_EQ(counts.errors, 2);
  EXPECT_EQ(counts.failed, 1);
  EXPECT_FALSE(counts.ok());
}

TEST(Reporter, GroupsResultsPerFileInCollectionOrder) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}, {"a.py::t2", "a.py", "", 2, {}}, {"b.py::t3", "b.py", "", 1, {}}};
  std::vector<std::optional<TestResult>> results(3);
  Counts counts;
  const std::string text = captured([&](Reporter& reporter) {
    reporter.collected(collection, 3, 2);
    // Finish out of order: the grouped section is still in collection order.
    for (common::TestIndex i : {2, 0, 1}) {
      results[i] = result_of(i, {{Phase::call, i == 0 ? Status::failed : Status::passed}});
      reporter.test_finished(collection.items[i], *results[i]);
    }
    counts = reporter.finish(collection, results, 0.5, "", WarningsSummary{});
  });
  EXPECT_EQ(counts.failed, 1);
  EXPECT_EQ(counts.passed, 2);
  EXPECT_NE(text.find("a.py F.\nb.py .\n"), std::string::npos) << text;
  EXPECT_NE(text.find("FAILED a.py::t1 - assert 1 == 2"), std::string::npos) << text;
  EXPECT_NE(text.find(" 1 failed, 2 passed in 0.50s "), std::string::npos) << text;
  EXPECT_LT(text.find("FAILURES"), text.find("short test summary info"));
}

TEST(Summary, WarningsComeBeforeErrorsAsInPytest) {
  Counts counts;
  counts.passed = 1;
  counts.warnings = 1;
  EXPECT_EQ(summary_text(counts, 0.01), "0 failed, 1 passed, 1 warning in 0.01s");
  counts = Counts{1, 2, 0, 0, 0, 1, 3, 0, {}};
  counts.warnings = 5;
  EXPECT_EQ(summary_text(counts, 0.01), "1 failed, 2 passed, 1 xpassed, 5 warnings, 3 errors in 0.01s");
}

TEST(Summary, PluginCategoriesFollowPytestsOwnInFirstSeenOrder) {
  // pytest-rerunfailures' "rerun", pytest-subtests' "subtests passed": counted under their
  // own names after pytest's known words; they are not the tests' outcomes.
  TestResult flaky;
  PhaseReport setup;
  setup.when = Phase::setup;
  PhaseReport rerun;
  rerun.status = Status::other;
  rerun.category = "rerun";
  rerun.letter = "R";
  PhaseReport call;
  call.status = Status::passed;
  flaky.phases = {setup, rerun, setup, rerun, setup, call};
  EXPECT_EQ(flaky.final_status(), Status::passed);
  TestResult subtests;
  PhaseReport sub;
  sub.status = Status::other;
  sub.category = "subtests passed";
  subtests.phases = {sub, call, sub};
  Counts counts;
  counts.add(flaky);
  counts.add(subtests);
  counts.errors = 1;
  EXPECT_EQ(summary_text(counts, 0.01), "0 failed, 2 passed, 1 error, 2 rerun, 2 subtests passed in 0.01s");
}

std::string finished_text(const common::Collection& collection, const std::vector<std::optional<TestResult>>& results,
                          const WarningsSummary& warnings) {
  return captured([&](Reporter& reporter) { (void)reporter.finish(collection, results, 0.5, "", warnings); });
}

// pytest's order: FAILURES, warnings summary, short test summary info, closing line.
TEST(Reporter, WarningsSummaryBetweenFailuresAndShortSummary) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}};
  std::vector<std::optional<TestResult>> results(1);
  results[0] = result_of(0, {{Phase::call, Status::failed}});
  WarningsSummary warnings;
  warnings.add(1, {"a.py::t1", "a.py:2: UserWarning: w\n  warn('w')\n", 1});
  const std::string text = finished_text(collection, results, warnings);
  const auto section = text.find("= warnings summary =");
  ASSERT_NE(section, std::string::npos) << text;
  EXPECT_LT(text.find("FAILURES"), section);
  EXPECT_LT(section, text.find("short test summary info"));
  EXPECT_NE(text.find("a.py::t1\n  a.py:2: UserWarning: w\n    warn('w')\n\n-- Docs: "), std::string::npos) << text;
  EXPECT_NE(text.find(" 1 failed, 0 passed, 1 warning in 0.50s "), std::string::npos) << text;

  // --disable-warnings: no section, the count stays.
  collection.show_warnings = false;
  const std::string quiet = finished_text(collection, results, warnings);
  EXPECT_EQ(quiet.find("warnings summary"), std::string::npos) << quiet;
  EXPECT_NE(quiet.find(" 1 failed, 0 passed, 1 warning in 0.50s "), std::string::npos) << quiet;
}

// -q on a terminal: no "collected" line, but the live line still knows the total.
TEST(Reporter, QuietLiveLineCountsAgainstTheSelection) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}, {"a.py::t2", "a.py", "", 2, {}}};
  const std::string text = captured(
      [&](Reporter& reporter) {
        reporter.collected(collection, 2, 2);
        reporter.test_finished(collection.items[0], result_of(0, {{Phase::call, Status::passed}}));
      },
      -1, true);
  EXPECT_EQ(text.find("collected"), std::string::npos) << text;
  EXPECT_NE(text.find("[1/2] "), std::string::npos) << text;
}

// Not a terminal: a line of dots ends with the progress, right-aligned, as pytest's.
TEST(Reporter, DotsLineEndsWithItsProgress) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}, {"a.py::t2", "a.py", "", 2, {}}};
  std::vector<std::optional<TestResult>> results(2);
  const std::string text = captured(
      [&](Reporter& reporter) {
        reporter.collected(collection, 2, 1);
        for (common::TestIndex i = 0; i < 2; ++i) {
          results[i] = result_of(i, {{Phase::call, Status::passed}});
          reporter.test_finished(collection.items[i], *results[i]);
        }
        (void)reporter.finish(collection, results, 0.5, "", WarningsSummary{});
      },
      -1);
  const std::string first = text.substr(0, text.find('\n'));
  EXPECT_EQ(first, ".." + std::string(79 - 2 - 7, ' ') + " [100%]") << text;
  EXPECT_NE(text.find("\n0 failed, 2 passed in 0.50s\n"), std::string::npos) << text;  // -q: unframed
}

// pytest's show_skipped(): every folded skip line takes the first skip's word, a plugin's
// (pytest-subtests' SUBSKIP) included; a collection skip first makes them all SKIPPED.
TEST(Reporter, SkipLinesTakeTheFirstSkipsWord) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}, {"a.py::t2", "a.py", "", 5, {}}};
  collection.reportchars = "s";
  std::vector<std::optional<TestResult>> results(2);
  for (common::TestIndex i = 0; i < 2; ++i) {
    results[i] = result_of(i, {{Phase::call, Status::skipped}});
    results[i]->phases[0].message = "Skipped: why " + std::to_string(i);
    results[i]->phases[0].skip_where = "a.py:" + std::to_string(i + 2);
  }
  results[0]->phases[0].word = "SUBSKIP";
  const std::string text = finished_text(collection, results, WarningsSummary{});
  EXPECT_NE(text.find("\nSUBSKIP [1] a.py:2: why 0\nSUBSKIP [1] a.py:3: why 1\n"), std::string::npos) << text;

  collection.skips = {{"b.py", "b.py", 1, "Skipped: module"}};
  const std::string with_module = finished_text(collection, results, WarningsSummary{});
  EXPECT_NE(with_module.find("\nSKIPPED [1] b.py:1: module\nSKIPPED [1] a.py:2: why 0\n"), std::string::npos)
      << with_module;
}

// -qq: pytest prints no closing line (its summary_stats() returns below verbosity -1).
TEST(Reporter, VeryQuietPrintsNoClosingLine) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}};
  std::vector<std::optional<TestResult>> results{result_of(0, {{Phase::call, Status::passed}})};
  const std::string text = captured(
      [&](Reporter& reporter) {
        reporter.collected(collection, 1, 1);
        reporter.test_finished(collection.items[0], *results[0]);
        (void)reporter.finish(collection, results, 0.5, "", WarningsSummary{});
      },
      -2);
  EXPECT_EQ(text.find("passed"), std::string::npos) << text;
  EXPECT_NE(text.find('.'), std::string::npos) << text;  // the progress still shows
}

// pytest-cov's section goes where pytest's terminal summary hooks print: after the
// warnings summary, before the short test summary.
TEST(Reporter, PluginSummaryBeforeTheShortSummary) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}};
  std::vector<std::optional<TestResult>> results(1);
  results[0] = result_of(0, {{Phase::call, Status::failed}});
  WarningsSummary warnings;
  warnings.add(1, {"a.py::t1", "a.py:2: UserWarning: w\n", 1});
  const std::string text = captured([&](Reporter& reporter) {
    reporter.set_plugin_summary("\n---------- coverage: here -----------\nTOTAL 1 0 100%\n\n");
    (void)reporter.finish(collection, results, 0.5, "", warnings);
  });
  const auto coverage = text.find("---------- coverage: here");
  ASSERT_NE(coverage, std::string::npos) << text;
  EXPECT_LT(text.find("warnings summary"), coverage);
  EXPECT_LT(coverage, text.find("short test summary info"));
}

TEST(Summary, CollectOnlyInPytestsWords) {
  EXPECT_EQ(collect_only_summary(3, 0, 0, 0.12), "3 tests collected in 0.12s");
  EXPECT_EQ(collect_only_summary(1, 0, 0, 0.12), "1 test collected in 0.12s");
  EXPECT_EQ(collect_only_summary(0, 0, 0, 0.01), "no tests collected in 0.01s");
  EXPECT_EQ(collect_only_summary(0, 2, 0, 0.04), "no tests collected (2 deselected) in 0.04s");
  EXPECT_EQ(collect_only_summary(2, 3, 1, 0.12), "2/5 tests collected (3 deselected), 1 error in 0.12s");
  EXPECT_EQ(collect_only_summary(2, 0, 2, 0.30), "2 tests collected, 2 errors in 0.30s");
}

TEST(Reporter, CollectOnlyListsNodeIdsThenErrors) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}, {"a.py::t2", "a.py", "", 2, {}}};
  collection.errors = {{"bad.py", "E   ImportError", ""}};
  const std::string text =
      captured([&](Reporter& r) {
        r.collect_only(collection, {0, 1}, 0.3, "Interrupted: 1 error during collection", WarningsSummary{});
      });
  EXPECT_TRUE(text.starts_with("a.py::t1\na.py::t2\n\n")) << text;
  EXPECT_LT(text.find("ERROR collecting bad.py"), text.find("ERROR bad.py"));
  EXPECT_LT(text.find("ERROR bad.py"), text.find("!!! Interrupted: 1 error during collection !!!"));
  EXPECT_NE(text.find(" 2 tests collected, 1 error in 0.30s "), std::string::npos) << text;
}

// pytest --co: the collection's warnings summary after the errors, before the short
// summary; its closing line counts no warnings.
TEST(Reporter, CollectOnlyHasTheWarningsSummaryWithoutACount) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}};
  collection.errors = {{"bad.py", "E   ImportError", ""}};
  WarningsSummary warnings;
  warnings.add_session({{"a.py:2", "a.py:2: UserWarning: w\n  warn('w')\n", 1}});
  auto listed = [&] {
    return captured([&](Reporter& r) { r.collect_only(collection, {0}, 0.3, "", warnings); });
  };
  const std::string text = listed();
  const auto section = text.find("= warnings summary =");
  ASSERT_NE(section, std::string::npos) << text;
  EXPECT_LT(text.find("ERROR collecting bad.py"), section);
  EXPECT_LT(section, text.find("short test summary info"));
  EXPECT_NE(text.find(" 1 test collected, 1 error in 0.30s "), std::string::npos) << text;

  collection.show_warnings = false;  // --disable-warnings
  EXPECT_EQ(listed().find("warnings summary"), std::string::npos);
}

TEST(Reporter, StopMessageLinesAfterTheFirstAreNotRuled) {
  common::Collection collection;
  const std::string text = captured([&](Reporter& r) {
    (void)r.finish(collection, {}, 0.1, "KeyboardInterrupt\n/x/test_k.py:2: KeyboardInterrupt", WarningsSummary{});
  });
  EXPECT_NE(text.find("!!! KeyboardInterrupt !!!"), std::string::npos) << text;
  EXPECT_NE(text.find("\n/x/test_k.py:2: KeyboardInterrupt\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace drover::cli
