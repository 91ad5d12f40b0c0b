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
    result.phases.push_back(report);
  }
  return result;
}

TEST(Summary, AlwaysCarriesFailedAndPassed) {
  Counts counts;
  counts.passed = 40;
  EXPECT_EQ(summary_text(counts, 0.52), "0 failed, 40 passed in 0.52s");
  counts = Counts{3, 72, 4, 0, 2, 1, 2};
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
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  Reporter reporter(out, 0, false);
  reporter.collected(collection, 3, 2);
  // Finish out of order: the grouped section is still in collection order.
  results[2] = result_of(2, {{Phase::call, Status::passed}});
  reporter.test_finished(collection.items[2], *results[2]);
  results[0] = result_of(0, {{Phase::call, Status::failed}});
  reporter.test_finished(collection.items[0], *results[0]);
  results[1] = result_of(1, {{Phase::call, Status::passed}});
  reporter.test_finished(collection.items[1], *results[1]);
  const Counts counts = reporter.finish(collection, results, 0.5, "");
  std::fclose(out);
  const std::string text(buffer, size);
  std::free(buffer);
  EXPECT_EQ(counts.failed, 1);
  EXPECT_EQ(counts.passed, 2);
  EXPECT_NE(text.find("a.py F.\nb.py .\n"), std::string::npos) << text;
  EXPECT_NE(text.find("FAILED a.py::t1 - assert 1 == 2"), std::string::npos) << text;
  EXPECT_NE(text.find(" 1 failed, 2 passed in 0.50s "), std::string::npos) << text;
  EXPECT_LT(text.find("FAILURES"), text.find("short test summary info"));
}

TEST(Summary, CollectOnlyInPytestsWords) {
  EXPECT_EQ(collect_only_summary(3, 0, 0, 0.12), "3 tests collected in 0.12s");
  EXPECT_EQ(collect_only_summary(1, 0, 0, 0.12), "1 test collected in 0.12s");
  EXPECT_EQ(collect_only_summary(0, 0, 0, 0.01), "no tests collected in 0.01s");
  EXPECT_EQ(collect_only_summary(0, 2, 0, 0.04), "no tests collected (2 deselected) in 0.04s");
  EXPECT_EQ(collect_only_summary(2, 3, 1, 0.12), "2/5 tests collected (3 deselected), 1 error in 0.12s");
  EXPECT_EQ(collect_only_summary(2, 0, 2, 0.30), "2 tests collected, 2 errors in 0.30s");
}

std::string captured(const std::function<void(Reporter&)>& body, int verbosity = 0) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  Reporter reporter(out, verbosity, false);
  body(reporter);
  std::fclose(out);
  std::string text(buffer, size);
  std::free(buffer);
  return text;
}

TEST(Reporter, CollectOnlyListsNodeIdsThenErrors) {
  common::Collection collection;
  collection.items = {{"a.py::t1", "a.py", "", 1, {}}, {"a.py::t2", "a.py", "", 2, {}}};
  collection.errors = {{"bad.py", "E   ImportError"}};
  const std::string text =
      captured([&](Reporter& r) { r.collect_only(collection, {0, 1}, 0.3, "Interrupted: 1 error during collection"); });
  EXPECT_TRUE(text.starts_with("a.py::t1\na.py::t2\n\n")) << text;
  EXPECT_LT(text.find("ERROR collecting bad.py"), text.find("ERROR bad.py"));
  EXPECT_LT(text.find("ERROR bad.py"), text.find("!!! Interrupted: 1 error during collection !!!"));
  EXPECT_NE(text.find(" 2 tests collected, 1 error in 0.30s "), std::string::npos) << text;
}

TEST(Reporter, StopMessageLinesAfterTheFirstAreNotRuled) {
  common::Collection collection;
  const std::string text = captured([&](Reporter& r) {
    (void)r.finish(collection, {}, 0.1, "KeyboardInterrupt\n/x/test_k.py:2: KeyboardInterrupt");
  });
  EXPECT_NE(text.find("!!! KeyboardInterrupt !!!"), std::string::npos) << text;
  EXPECT_NE(text.find("\n/x/test_k.py:2: KeyboardInterrupt\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace drover::cli
