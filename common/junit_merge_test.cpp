// Reading JUnit files back and merging them: totals, completeness problems,
// pytest's own reports, malformed input.
#include "common/junit_merge.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/junit.h"
#include "common/junit_read.h"
#include "common/workspace.h"

namespace drover::common {
namespace {

namespace fs = std::filesystem;

// What pytest 7.2.1 wrote for a small suite (trimmed tracebacks).
constexpr const char* k_pytest_report =
    R"(<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="3" failures="2" skipped="3" tests="9" time="0.047" timestamp="2026-11-24T04:52:08.927645" hostname="vm">)"
    R"(<testcase classname="" name="pkg.test_broken" time="0.000"><error message="collection failure">ImportError</error></testcase>)"
    R"(<testcase classname="pkg.test_mod" name="test_pass" time="0.001"/>)"
    R"(<testcase classname="pkg.test_mod" name="test_fail" time="0.010"><failure message="assert 1 == 2">tb</failure></testcase>)"
    R"(<testcase classname="pkg.test_mod" name="test_skip" time="0.000"><skipped type="pytest.skip" message="nope">/x/pkg/test_mod.py:4: nope</skipped></testcase>)"
    R"(<testcase classname="pkg.test_mod" name="test_xfail" time="0.000"><skipped type="pytest.xfail" message="known"/></testcase>)"
    R"(<testcase classname="pkg.test_mod" name="test_td_pass" time="0.000"><error message="failed on teardown with &quot;boom&quot;">tb</error></testcase>)"
    R"(<testcase classname="pkg.test_mod" name="test_td_fail" time="0.100"><failure message="assert False">tb</failure></testcase>)"
    R"(<testcase classname="pkg.test_mod" name="test_td_fail" time="0.200"><error message="failed on teardown with &quot;boom&quot;">tb</error></testcase>)"
    R"(<testcase classname="pkg.test_mod.TestC" name="test_m[1]" time="0.000"><skipped type="pytest.skip" message="x">y</skipped></testcase>)"
    R"(</testsuite></testsuites>)";

class JunitMergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_dir = fs::temp_directory_path() / ("drover_merge_test_" + std::to_string(::getpid()));
    fs::create_directories(m_dir);
    for (const char* nodeid : {"a.py::test_1", "a.py::test_2", "b.py::TestK::test_3[x]", "b.py::test_dup",
                               "b.py::test_dup", "c.py::test_5"}) {
      TestItem item;
      item.nodeid = nodeid;
      m_collection.items.push_back(item);
    }
    std::string joined;
    for (const TestItem& item : m_collection.items) joined += (joined.empty() ? "" : "\n") + item.nodeid;
    m_collection.hash = sha256_hex(joined);
  }
  void TearDown() override { fs::remove_all(m_dir); }

  // Writes shard `index` of `total` holding `assigned`, with a passing result for
  // each of `ran` (default: every assigned test).
  JunitFile shard(int index, int total, std::vector<TestIndex> assigned, std::optional<std::vector<TestIndex>> ran = {}) {
    JunitReport report;
    report.collection = &m_collection;
    report.shard_index = index;
    report.total_shards = total;
    report.assigned = assigned;
    report.assigned_set = true;
    report.elapsed = 1.5;
    for (TestIndex test : ran.value_or(assigned)) {
      TestResult result;
      result.index = test;
      PhaseReport call;
      call.outcome = "passed";
      call.status = Status::passed;
      call.duration = 0.25 + test;
      result.phases.push_back(call);
      report.results.push_back(result);
    }
    const fs::path path = m_dir / ("shard-" + std::to_string(index) + ".xml");
    EXPECT_TRUE(write_junit(path, report));
    auto file = read_junit(path);
    EXPECT_TRUE(file) << file.error().message;
    file->path = "shard-" + std::to_string(index) + ".xml";
    return *file;
  }

  static bool has_problem(const MergedReport& merged, std::string_view text) {
    for (const std::string& problem : merged.problems) {
      if (problem.find(text) != std::string::npos) return true;
    }
    return false;
  }

  static std::string problems(const MergedReport& merged) {
    std::string out;
    for (const std::string& problem : merged.problems) out += problem + "\n";
    return out;
  }

  fs::path m_dir;
  Collection m_collection;
};

TEST_F(JunitMergeTest, CompleteShardsMergeWithTotalsAndNodeIds) {
  const MergedReport merged = merge_junit({shard(1, 2, {1, 3, 4}), shard(0, 2, {0, 2, 5})}, "0.1.0");
  EXPECT_TRUE(merged.problems.empty()) << problems(merged);
  EXPECT_EQ(merged.tests, 6);
  EXPECT_EQ(merged.counts.passed, 6);
  EXPECT_DOUBLE_EQ(merged.time, 3.0);
  const pugi::xml_node suite = merged.document->child("testsuites").child("testsuite");
  EXPECT_STREQ(suite.attribute("tests").value(), "6");
  EXPECT_STREQ(suite.attribute("time").value(), "3.000");
  // Shard 0's testcases first, whatever the argument order.
  EXPECT_STREQ(suite.child("testcase").attribute("name").value(), "test_1");
  ASSERT_EQ(merged.case_times.size(), 6u);
  EXPECT_EQ(merged.case_times[0].nodeid, "a.py::test_1");
  EXPECT_EQ(merged.case_times[2].nodeid, "c.py::test_5");
  EXPECT_EQ(merged.case_times[4].nodeid, "b.py::test_dup");
  EXPECT_EQ(merged.case_times[5].nodeid, "b.py::test_dup");
  EXPECT_EQ(summary_words(merged.counts, merged.time), "6 passed in 3.00s");
}

TEST_F(JunitMergeTest, MissingShard) {
  const MergedReport merged = merge_junit({shard(0, 3, {0, 1}), shard(2, 3, {4, 5})}, "");
  EXPECT_TRUE(has_problem(merged, "missing shard 1 (shards 0-2)")) << problems(merged);
  EXPECT_TRUE(has_problem(merged, "2 of 6 collected tests are in no report's assignment")) << problems(merged);
}

TEST_F(JunitMergeTest, DuplicateShard) {
  const MergedReport merged = merge_junit({shard(0, 2, {0, 1, 2}), shard(0, 2, {0, 1, 2}), shard(1, 2, {3, 4, 5})}, "");
  EXPECT_TRUE(has_problem(merged, "shard 0 reported 2 times: shard-0.xml, shard-0.xml")) << problems(merged);
  EXPECT_TRUE(has_problem(merged, "assigned 2 times across reports: a.py::test_1")) << problems(merged);
}

TEST_F(JunitMergeTest, MissingAndDuplicatedTests) {
  // Shard 0 lost test 1; shard 1 ran b.py::test_dup only once though it was collected twice.
  const MergedReport merged = merge_junit({shard(0, 2, {0, 1, 2}, std::vector<TestIndex>{0, 2}),
                                           shard(1, 2, {3, 4, 5}, std::vector<TestIndex>{3, 5})},
                                          "");
  EXPECT_TRUE(has_problem(merged, "shard-0.xml: not reported: a.py::test_2")) << problems(merged);
  EXPECT_TRUE(has_problem(merged, "shard-1.xml: reported once, assigned 2 times: b.py::test_dup")) << problems(merged);

  // A test reported twice where assigned once.
  const MergedReport twice = merge_junit({shard(0, 2, {0, 1, 2}, std::vector<TestIndex>{0, 1, 1, 2}),
                                          shard(1, 2, {3, 4, 5})},
                                         "");
  EXPECT_TRUE(has_problem(twice, "shard-0.xml: reported 2 times, assigned once: a.py::test_2")) << problems(twice);
  // A test outside the assignment.
  const MergedReport stray = merge_junit({shard(0, 2, {0, 1, 2}, std::vector<TestIndex>{0, 1, 2, 5}),
                                          shard(1, 2, {3, 4, 5})},
                                         "");
  EXPECT_TRUE(has_problem(stray, "shard-0.xml: reported but not assigned to it: c::test_5")) << problems(stray);
}

TEST_F(JunitMergeTest, HashMismatch) {
  JunitFile first = shard(0, 2, {0, 1, 2});
  JunitFile second = shard(1, 2, {3, 4, 5});
  second.drover.collection_hash = "0123456789abcdef";
  const MergedReport merged = merge_junit({first, second}, "");
  EXPECT_TRUE(has_problem(merged, "shard-1.xml: collection hash 0123456789ab differs from")) << problems(merged);

  // Assignments that cover every index but name other tests than the collection.
  m_collection.items[5].nodeid = "c.py::test_renamed";
  const MergedReport renamed = merge_junit({first, shard(1, 2, {3, 4, 5})}, "");
  EXPECT_TRUE(has_problem(renamed, "test 5 is c.py::test_renamed") ||
              has_problem(renamed, "do not hash to the collection hash"))
      << problems(renamed);
}

TEST_F(JunitMergeTest, PlainPytestReportTotalsAndCounts) {
  auto file = parse_junit(k_pytest_report, "pytest.xml");
  ASSERT_TRUE(file) << file.error().message;
  ASSERT_EQ(file->suites.size(), 1u);
  const auto& cases = file->suites[0].cases;
  ASSERT_EQ(cases.size(), 9u);
  EXPECT_TRUE(cases[0].collection_report);
  EXPECT_TRUE(cases[7].continuation);
  EXPECT_FALSE(cases[5].continuation);
  EXPECT_EQ(cases[4].kind, CaseKind::xfailed);

  auto other = parse_junit(
      R"(<testsuite name="pytest" tests="2" errors="0" failures="0" skipped="0" time="1.0"><testcase classname="t" name="a" time="0.5"/>)"
      R"(<testcase classname="t" name="b" time="0.5"/></testsuite>)",
      "other.xml");
  ASSERT_TRUE(other) << other.error().message;
  const MergedReport merged = merge_junit({*file, *other}, "");
  EXPECT_TRUE(merged.problems.empty()) << problems(merged);  // plain reports: nothing to check against
  EXPECT_EQ(merged.tests, 11);
  EXPECT_EQ(merged.failures, 2);
  EXPECT_EQ(merged.errors, 3);
  EXPECT_EQ(merged.skipped, 3);
  EXPECT_NEAR(merged.time, 1.047, 1e-9);
  EXPECT_EQ(summary_words(merged.counts, merged.time), "2 failed, 4 passed, 2 skipped, 1 xfailed, 3 errors in 1.05s");  // test_td_pass: passed and an error, as pytest counts it
  // The teardown-error testcase adds its time to the failed test's.
  EXPECT_NEAR(merged.case_times[5].seconds, 0.3, 1e-9);
}

// pytest's JUnit for a teardown error after a passed or skipped call: one testcase, and
// pytest's closing line counts both ("1 passed, 1 skipped, 2 errors").
TEST_F(JunitMergeTest, TeardownErrorsCountWithTheirTestsOutcome) {
  auto file = parse_junit(
      R"(<testsuite name="pytest" tests="3" errors="2" failures="0" skipped="1" time="0.1">)"
      R"(<testcase classname="t" name="a"><error message="failed on teardown with &quot;RuntimeError: td&quot;">tb</error></testcase>)"
      R"(<testcase classname="t" name="b"><skipped type="pytest.skip" message="inner">t.py:8: inner</skipped>)"
      R"(<error message="failed on teardown with &quot;RuntimeError: td&quot;">tb</error></testcase>)"
      R"(<testcase classname="t" name="c"><error message="failed on setup with &quot;E&quot;">tb</error></testcase>)"
      R"(</testsuite>)",
      "pytest.xml");
  ASSERT_TRUE(file) << file.error().message;
  const MergedReport merged = merge_junit({*file}, "");
  EXPECT_EQ(summary_words(merged.counts, merged.time), "1 passed, 1 skipped, 3 errors in 0.10s");
}

TEST_F(JunitMergeTest, CollectionErrorsOfEveryShardCountOnce) {
  m_collection.errors.push_back({"d/test_bad.py", "ImportError", ""});
  const MergedReport merged = merge_junit({shard(0, 2, {0, 1, 2}), shard(1, 2, {3, 4, 5})}, "");
  EXPECT_TRUE(merged.problems.empty()) << problems(merged);
  EXPECT_EQ(merged.tests, 7);
  EXPECT_EQ(merged.errors, 1);
  EXPECT_EQ(merged.counts.errors, 1);
}

TEST_F(JunitMergeTest, ShardMixedWithPlainReport) {
  auto plain = parse_junit(k_pytest_report, "pytest.xml");
  ASSERT_TRUE(plain);
  const MergedReport merged = merge_junit({shard(0, 1, {0, 1, 2, 3, 4, 5}), *plain}, "");
  EXPECT_TRUE(has_problem(merged, "pytest.xml: not a drover shard report")) << problems(merged);
}

TEST_F(JunitMergeTest, LongProblemListsAreCut) {
  m_collection.items.clear();
  std::vector<TestIndex> all;
  std::string joined;
  for (TestIndex i = 0; i < 30; ++i) {
    TestItem item;
    item.nodeid = "t.py::test_" + std::to_string(i);
    joined += (i ? "\n" : "") + item.nodeid;
    m_collection.items.push_back(item);
    all.push_back(i);
  }
  m_collection.hash = sha256_hex(joined);
  const MergedReport merged = merge_junit({shard(0, 1, all, std::vector<TestIndex>{})}, "");
  ASSERT_EQ(merged.problems.size(), 21u) << problems(merged);
  EXPECT_EQ(merged.problems.front(), "shard-0.xml: not reported: t.py::test_0");
  EXPECT_EQ(merged.problems.back(), "not reported: ... and 10 more");
}

TEST_F(JunitMergeTest, MergedReportAmongTheShards) {
  JunitFile first = shard(0, 2, {0, 1, 2});
  JunitFile second = shard(1, 2, {3, 4, 5});
  const MergedReport merged = merge_junit({first, second}, "0.1.0");
  ASSERT_TRUE(merged.problems.empty()) << problems(merged);
  const fs::path path = m_dir / "junit.xml";
  ASSERT_TRUE(save_xml_atomically(path, *merged.document));
  auto again = read_junit(path);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->drover.merged_reports, 2);
  again->path = "junit.xml";
  const MergedReport twice = merge_junit({first, second, *again}, "0.1.0");
  EXPECT_TRUE(has_problem(twice, "junit.xml: already a merged report, not a shard")) << problems(twice);
}

TEST_F(JunitMergeTest, MalformedAndForeignFiles) {
  auto html = parse_junit("<html><body/></html>", "report.xml");
  ASSERT_FALSE(html);
  EXPECT_EQ(html.error().message, "report.xml: not a JUnit XML file (root element <html>)");
  auto broken = parse_junit("<testsuites><testsuite>", "report.xml");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with("report.xml: malformed XML: ")) << broken.error().message;
  EXPECT_NE(broken.error().message.find(" at offset "), std::string::npos);
  auto empty = parse_junit("", "empty.xml");
  ASSERT_FALSE(empty);
  EXPECT_TRUE(empty.error().message.starts_with("empty.xml: ")) << empty.error().message;
  auto bad_total = parse_junit(R"(<testsuite tests="many"/>)", "r.xml");
  ASSERT_FALSE(bad_total);
  EXPECT_EQ(bad_total.error().message, "r.xml: bad tests attribute 'many' in <testsuite>");
  for (const char* time : {"inf", "nan", "-1"}) {  // would reach a durations file as null
    auto bad_time = parse_junit(fmt::format(R"(<testsuite><testcase classname="a" name="t" time="{}"/></testsuite>)", time), "r.xml");
    ASSERT_FALSE(bad_time) << time;
    EXPECT_EQ(bad_time.error().message, fmt::format("r.xml: bad time attribute '{}' in <testcase>", time));
  }
  // Counts a merge would allocate for: a corrupt report, not a plan.
  for (const char* property : {R"(name="drover.total_shards" value="2000000000")",
                               R"(name="drover.collected_count" value="2000000000")"}) {
    auto huge = parse_junit(fmt::format(R"(<testsuite><properties><property {}/></properties></testsuite>)", property), "r.xml");
    ASSERT_FALSE(huge) << property;
    EXPECT_TRUE(huge.error().message.starts_with("r.xml: bad drover.")) << huge.error().message;
  }
  auto directory = read_junit(m_dir);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().message, m_dir.string() + ": is a directory");
  auto missing = read_junit(m_dir / "nope.xml");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.xml: cannot read: No such file or directory"), std::string::npos);
}

TEST(JunitMergeWords, SummaryLine) {
  EXPECT_EQ(summary_words({}, 0.004), "no tests ran in 0.00s");
  EXPECT_EQ(summary_words({.failed = 1, .errors = 1}, 125.5), "1 failed, 1 error in 125.50s (0:02:05)");
}

TEST(JunitMergeNodeIds, GuessFromPlainReports) {
  const KnownNodeids known = index_nodeids({"tests/test_k.py::TestA::test_b[1]"});
  const auto none = [](const std::string&) { return false; };
  EXPECT_EQ(guess_nodeid({"tests.test_k.TestA", "test_b[1]"}, known, none), "tests/test_k.py::TestA::test_b[1]");
  EXPECT_EQ(guess_nodeid({"pkg.test_m.TestC", "test_x"}, known, none), "pkg/test_m.py::TestC::test_x");
  const auto exists = [](const std::string& path) { return path == "pkg/TestMod.py"; };
  EXPECT_EQ(guess_nodeid({"pkg.TestMod", "test_x"}, known, exists), "pkg/TestMod.py::test_x");
  EXPECT_EQ(guess_nodeid({"", "pkg.test_broken"}, known, none), "");

  Durations durations{{"tests/test_k.py::TestA::test_b[1]", 9.0}, {"old.py::test_gone", 1.0}};
  const std::vector<CaseTime> times{{{"tests.test_k.TestA", "test_b[1]"}, 2.0, ""},
                                    {{"t", "x"}, 1.0, "t.py::x"},
                                    {{"t", "x"}, 3.0, "t.py::x"}};
  EXPECT_EQ(update_durations_from_merge(durations, times, none), 2);
  EXPECT_EQ(durations["tests/test_k.py::TestA::test_b[1]"], 2.0);
  EXPECT_EQ(durations["t.py::x"], 3.0);
  EXPECT_EQ(durations["old.py::test_gone"], 1.0);
}

}  // namespace
}  // namespace drover::common
