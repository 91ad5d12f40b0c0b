// The JUnit writer and pytest's text rules, checked against what pytest 7.2's
// own --junitxml writes for the same outcomes.
#include "common/junit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <pugixml.hpp>
#include <sstream>

#include "common/junit_read.h"
#include "common/junit_text.h"

namespace drover::common {
namespace {

namespace fs = std::filesystem;

PhaseReport phase(Phase when, std::string outcome, Status status, double duration = 0.0,
                  std::string message = {}, std::string longrepr = {}) {
  PhaseReport report;
  report.when = when;
  report.outcome = std::move(outcome);
  report.status = status;
  report.duration = duration;
  report.message = std::move(message);
  report.longrepr = std::move(longrepr);
  return report;
}

TestResult result(TestIndex index, std::vector<PhaseReport> phases) {
  TestResult out;
  out.index = index;
  out.phases = std::move(phases);
  return out;
}

// setup passed, call as given, teardown passed.
TestResult with_call(TestIndex index, PhaseReport call) {
  return result(index, {phase(Phase::setup, "passed", Status::none, 0.001), std::move(call),
                        phase(Phase::teardown, "passed", Status::none, 0.001)});
}

class JunitWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_dir = fs::temp_directory_path() / ("drover_junit_test_" + std::to_string(::getpid()));
    fs::create_directories(m_dir);
    m_collection.rootdir = "/src";
    m_collection.hash = "abc123";
  }
  void TearDown() override { fs::remove_all(m_dir); }

  TestIndex add(std::string nodeid) {
    TestItem item;
    item.nodeid = std::move(nodeid);
    item.file = item.nodeid.substr(0, item.nodeid.find("::"));
    item.line = 10;
    m_collection.items.push_back(item);
    return static_cast<TestIndex>(m_collection.items.size() - 1);
  }

  pugi::xml_node write(JunitReport report) {
    report.collection = &m_collection;
    report.timestamp = "2026-11-24T04:52:08.927645";
    report.hostname = "vm";
    const fs::path path = m_dir / "sub" / "report.xml";
    auto written = write_junit(path, report);
    EXPECT_TRUE(written) << written.error().message;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    m_text = text.str();
    EXPECT_TRUE(m_doc.load_string(m_text.c_str())) << m_text;
    return m_doc.child("testsuites").child("testsuite");
  }

  fs::path m_dir;
  Collection m_collection;
  pugi::xml_document m_doc;
  std::string m_text;
};

TEST_F(JunitWriterTest, OutcomesAsPytestWritesThem) {
  JunitReport report;
  const auto pass = add("pkg/test_mod.py::test_pass");
  const auto failed = add("pkg/test_mod.py::test_fail");
  const auto skip = add("pkg/test_mod.py::test_skip");
  const auto xfail = add("pkg/test_mod.py::test_xfail");
  const auto xpass = add("pkg/test_mod.py::test_xpass");
  const auto strict = add("pkg/test_mod.py::test_xpass_strict");
  const auto method = add("pkg/test_mod.py::TestC::test_m[1-a b]");
  report.results.push_back(with_call(method, phase(Phase::call, "passed", Status::passed)));
  report.results.push_back(with_call(pass, phase(Phase::call, "passed", Status::passed, 0.5)));
  report.results.push_back(with_call(failed, phase(Phase::call, "failed", Status::failed, 0, "assert False",
                                                   "E   assert False\n\npkg/test_mod.py:3: AssertionError")));
  report.results.push_back(with_call(skip, phase(Phase::call, "skipped", Status::skipped, 0, "nope",
                                                 "pkg/test_mod.py:4: nope")));
  report.results.push_back(with_call(xfail, phase(Phase::call, "skipped", Status::xfailed, 0, "reason: known")));
  report.results.push_back(with_call(xpass, phase(Phase::call, "passed", Status::xpassed, 0, "x")));
  report.results.push_back(with_call(strict, phase(Phase::call, "failed", Status::failed, 0, "",
                                                   "[XPASS(strict)] strict")));
  report.elapsed = 1.25;
  const pugi::xml_node suite = write(report);

  EXPECT_TRUE(m_text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" "
                                 "errors=\"0\" failures=\"2\" skipped=\"2\" tests=\"7\" time=\"1.250\" "
                                 "timestamp=\"2026-11-24T04:52:08.927645\" hostname=\"vm\">"))
      << m_text;
  std::vector<pugi::xml_node> cases;
  for (pugi::xml_node testcase : suite.children("testcase")) cases.push_back(testcase);
  ASSERT_EQ(cases.size(), 7u);
  // Collection order, whatever order the results came in.
  EXPECT_STREQ(cases[0].attribute("classname").value(), "pkg.test_mod");
  EXPECT_STREQ(cases[0].attribute("name").value(), "test_pass");
  EXPECT_STREQ(cases[0].attribute("time").value(), "0.502");
  EXPECT_FALSE(cases[0].attribute("file"));  // xunit2 has no file/line
  EXPECT_FALSE(cases[0].first_child());
  EXPECT_STREQ(cases[1].child("failure").attribute("message").value(), "assert False");
  EXPECT_STREQ(cases[1].child("failure").text().get(), "E   assert False\n\npkg/test_mod.py:3: AssertionError");
  EXPECT_STREQ(cases[2].child("skipped").attribute("type").value(), "pytest.skip");
  EXPECT_STREQ(cases[2].child("skipped").attribute("message").value(), "nope");
  EXPECT_STREQ(cases[2].child("skipped").text().get(), "/src/pkg/test_mod.py:4: nope");
  EXPECT_STREQ(cases[3].child("skipped").attribute("type").value(), "pytest.xfail");
  EXPECT_STREQ(cases[3].child("skipped").attribute("message").value(), "known");
  EXPECT_STREQ(cases[3].child("skipped").text().get(), "");
  EXPECT_FALSE(cases[4].first_child());  // a non-strict xpass is a plain pass
  EXPECT_STREQ(cases[5].child("failure").attribute("message").value(), "[XPASS(strict)] strict");
  EXPECT_STREQ(cases[6].attribute("classname").value(), "pkg.test_mod.TestC");
  EXPECT_STREQ(cases[6].attribute("name").value(), "test_m[1-a b]");
}

TEST_F(JunitWriterTest, SetupAndTeardownErrorsCountLikePytest) {
  JunitReport report;
  const auto setup = add("t.py::test_setup_err");
  const auto td_pass = add("t.py::test_td_pass");
  const auto td_fail = add("t.py::test_td_fail");
  report.results.push_back(result(setup, {phase(Phase::setup, "failed", Status::error, 0.1, "RuntimeError: boom", "tb"),
                                          phase(Phase::teardown, "passed", Status::none, 0.2)}));
  report.results.push_back(with_call(td_pass, phase(Phase::call, "passed", Status::passed)));
  report.results.back().phases.back() = phase(Phase::teardown, "failed", Status::error, 0, "RuntimeError: td", "tb2");
  report.results.push_back(with_call(td_fail, phase(Phase::call, "failed", Status::failed, 0.25, "assert False", "tb3")));
  report.results.back().phases.back() = phase(Phase::teardown, "failed", Status::error, 0.125, "RuntimeError: td", "tb4");
  const pugi::xml_node suite = write(report);

  // pytest: errors=3 failures=1 tests=4 (a passed test with a teardown error counts twice;
  // a failed one with a teardown error is one test in two testcases).
  EXPECT_STREQ(suite.attribute("errors").value(), "3");
  EXPECT_STREQ(suite.attribute("failures").value(), "1");
  EXPECT_STREQ(suite.attribute("tests").value(), "4");
  std::vector<pugi::xml_node> cases;
  for (pugi::xml_node testcase : suite.children("testcase")) cases.push_back(testcase);
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_STREQ(cases[0].child("error").attribute("message").value(), "failed on setup with \"RuntimeError: boom\"");
  EXPECT_STREQ(cases[0].attribute("time").value(), "0.300");
  EXPECT_STREQ(cases[1].child("error").attribute("message").value(), "failed on teardown with \"RuntimeError: td\"");
  EXPECT_STREQ(cases[2].child("failure").text().get(), "tb3");
  EXPECT_STREQ(cases[2].attribute("time").value(), "0.251");
  EXPECT_STREQ(cases[3].attribute("name").value(), "test_td_fail");
  EXPECT_STREQ(cases[3].child("error").text().get(), "tb4");
  EXPECT_STREQ(cases[3].attribute("time").value(), "0.125");
}

TEST_F(JunitWriterTest, ReportWithoutCrashLocationUsesWholeLongrepr) {
  // A missing fixture: pytest has no reprcrash and quotes str(longrepr), newlines
  // included; the worker's one-line message is only the longrepr's first line.
  JunitReport report;
  const auto index = add("t.py::test_missing_fixture");
  const std::string longrepr = "file /src/t.py, line 27\n  def test_missing_fixture(nope):\nE  fixture 'nope' not found";
  report.results.push_back(result(index, {phase(Phase::setup, "failed", Status::error, 0, "file /src/t.py, line 27", longrepr),
                                          phase(Phase::teardown, "passed", Status::none)}));
  const pugi::xml_node suite = write(report);
  EXPECT_EQ(std::string(suite.child("testcase").child("error").attribute("message").value()),
            "failed on setup with \"" + longrepr + "\"");
}

TEST_F(JunitWriterTest, SyntheticResultsAreErrorsAndFailures) {
  JunitReport report;
  const auto crashed = add("t.py::test_crash");
  const auto slow = add("t.py::test_slow");
  report.results.push_back(synthetic_result(crashed, Status::error, "worker crashed (signal 11)", "last lines"));
  report.results.push_back(synthetic_result(slow, Status::failed, "timeout after 5 s", "stack"));
  const pugi::xml_node suite = write(report);
  const pugi::xml_node first = suite.child("testcase");
  EXPECT_STREQ(first.child("error").attribute("message").value(), "worker crashed (signal 11)");
  EXPECT_STREQ(first.child("error").text().get(), "last lines");
  EXPECT_STREQ(first.next_sibling("testcase").child("failure").attribute("message").value(), "timeout after 5 s");
  EXPECT_STREQ(suite.attribute("tests").value(), "2");
}

TEST_F(JunitWriterTest, CollectionErrorsAndModuleSkips) {
  m_collection.errors.push_back({"pkg/test_broken.py", "ImportError while importing test module", ""});
  m_collection.skips.push_back({"pkg/test_modskip.py", "pkg/test_modskip.py", 2, "Skipped: no database"});
  const pugi::xml_node suite = write(JunitReport{});
  const pugi::xml_node error = suite.child("testcase");
  EXPECT_STREQ(error.attribute("classname").value(), "");
  EXPECT_STREQ(error.attribute("name").value(), "pkg.test_broken");
  EXPECT_STREQ(error.attribute("time").value(), "0.000");
  EXPECT_STREQ(error.child("error").attribute("message").value(), "collection failure");
  const pugi::xml_node skip = error.next_sibling("testcase");
  EXPECT_STREQ(skip.child("skipped").attribute("message").value(), "collection skipped");
  EXPECT_STREQ(skip.child("skipped").text().get(), "('/src/pkg/test_modskip.py', 2, 'Skipped: no database')");
  EXPECT_STREQ(suite.attribute("tests").value(), "2");
  EXPECT_STREQ(suite.attribute("errors").value(), "1");
  EXPECT_STREQ(suite.attribute("skipped").value(), "1");
}

TEST_F(JunitWriterTest, CapturedOutputFollowsJunitLogging) {
  const auto index = add("t.py::test_out");
  TestResult test = with_call(index, phase(Phase::call, "passed", Status::passed));
  test.phases[0].sections = {{"Captured stdout setup", "setup-out\n"}};
  test.phases[1].sections = {{"Captured stdout setup", "setup-out\n"},
                             {"Captured stdout call", "out\x07\n"},
                             {"Captured log call", "WARNING  root:t.py:7 logw\n"},
                             {"Captured stderr call", "err\n"}};
  test.phases[2].sections = {{"Captured stdout teardown", "td-out\n"}};
  JunitReport report;
  report.results.push_back(test);
  EXPECT_FALSE(write(report).child("testcase").child("system-out"));  // pytest's default: junit_logging=no

  m_collection.junit.logging = "all";
  const pugi::xml_node testcase = write(report).child("testcase");
  const std::string rule(33, '-');
  EXPECT_EQ(std::string(testcase.child("system-out").text().get()),
            rule + " Captured Log " + rule + "\nWARNING  root:t.py:7 logw\n\n" + rule + " Captured Out " + rule +
                "\nsetup-out\nout#x07\ntd-out\n\n");
  EXPECT_EQ(std::string(testcase.child("system-err").text().get()), rule + " Captured Err " + rule + "\nerr\n\n");

  m_collection.junit.log_passing_tests = false;
  EXPECT_FALSE(write(report).child("testcase").child("system-out"));
}

TEST_F(JunitWriterTest, Xunit1AddsFileAndZeroBasedLine) {
  const auto index = add("pkg/test_mod.py::TestC::test_m");  // line 10, 1-based
  m_collection.errors.push_back({"pkg/test_broken.py", "ImportError", ""});
  JunitReport report;
  m_collection.junit.family = "xunit1";
  report.results.push_back(with_call(index, phase(Phase::call, "passed", Status::passed)));
  const pugi::xml_node suite = write(report);
  const pugi::xml_node error = suite.child("testcase");
  EXPECT_STREQ(error.attribute("file").value(), "pkg/test_broken.py");
  EXPECT_FALSE(error.attribute("line"));
  const pugi::xml_node test = error.next_sibling("testcase");
  EXPECT_STREQ(test.attribute("file").value(), "pkg/test_mod.py");
  EXPECT_STREQ(test.attribute("line").value(), "9");
  EXPECT_EQ(parse_junit_family("legacy"), JunitFamily::xunit1);
  EXPECT_FALSE(parse_junit_family("xunit3"));
  EXPECT_EQ(parse_junit_logging("out-err"), JunitLogging::out_err);
  EXPECT_EQ(parse_junit_logging("yes"), JunitLogging::no);  // pytest writes no output for an unknown word
}

TEST_F(JunitWriterTest, UserPropertiesOpenTheTestcase) {
  const auto index = add("t.py::test_prop");
  TestResult test = with_call(index, phase(Phase::call, "failed", Status::failed, 0, "assert 0", "tb"));
  test.phases[2].properties = {{"example_key", "1"}, {"ctl", "a\x01" "b"}};
  JunitReport report;
  report.results.push_back(test);
  const pugi::xml_node testcase = write(report).child("testcase");
  // pytest: <properties> first, then the failure; values through bin_xml_escape.
  EXPECT_STREQ(testcase.first_child().name(), "properties");
  const pugi::xml_node first = testcase.child("properties").child("property");
  EXPECT_STREQ(first.attribute("name").value(), "example_key");
  EXPECT_STREQ(first.attribute("value").value(), "1");
  EXPECT_STREQ(first.next_sibling("property").attribute("value").value(), "a#x01b");
  EXPECT_TRUE(testcase.child("failure"));
}

TEST_F(JunitWriterTest, CrashMessageIsTheWholeMessage) {
  const auto failed = add("t.py::test_fail");
  const auto setup = add("t.py::test_setup");
  PhaseReport call = phase(Phase::call, "failed", Status::failed, 0, "AssertionError: plain msg", "tb");
  call.crash = "AssertionError: plain msg\nassert 0";
  PhaseReport error = phase(Phase::setup, "failed", Status::error, 0, "RuntimeError: a", "tb");
  error.crash = "RuntimeError: a\nb";
  JunitReport report;
  report.results.push_back(with_call(failed, call));
  report.results.push_back(result(setup, {error, phase(Phase::teardown, "passed", Status::none)}));
  const pugi::xml_node suite = write(report);
  EXPECT_STREQ(suite.child("testcase").child("failure").attribute("message").value(),
               "AssertionError: plain msg\nassert 0");
  EXPECT_NE(m_text.find("message=\"AssertionError: plain msg&#10;assert 0\""), std::string::npos) << m_text;
  EXPECT_STREQ(suite.child("testcase").next_sibling().child("error").attribute("message").value(),
               "failed on setup with \"RuntimeError: a\nb\"");
}

TEST_F(JunitWriterTest, IniOptionsShapeTheReport) {
  const auto index = add("t.py::test_x");
  TestResult test = with_call(index, phase(Phase::call, "passed", Status::passed, 0.5));
  test.phases[0].duration = 0.25;
  test.phases[2].duration = 0.125;
  JunitReport report;
  report.results.push_back(test);
  EXPECT_STREQ(write(report).attribute("name").value(), "pytest");
  EXPECT_STREQ(write(report).child("testcase").attribute("time").value(), "0.875");
  m_collection.junit.suite_name = "mysuite";
  m_collection.junit.duration_report = "call";
  pugi::xml_node suite = write(report);
  EXPECT_STREQ(suite.attribute("name").value(), "mysuite");
  EXPECT_STREQ(suite.child("testcase").attribute("time").value(), "0.500");
  m_collection.junit.duration_report = "teardown";  // pytest compares the word with each phase
  EXPECT_STREQ(write(report).child("testcase").attribute("time").value(), "0.125");
  m_collection.junit.duration_report = "foo";
  EXPECT_STREQ(write(report).child("testcase").attribute("time").value(), "0.000");
}

TEST_F(JunitWriterTest, BadIniOptionsFailAsPytestDoes) {
  JunitIni ini;
  EXPECT_TRUE(check_junit_ini(ini));
  ini.family = "legacy";
  EXPECT_TRUE(check_junit_ini(ini));
  ini.logging = "foo";  // pytest writes no output for it, and no error
  EXPECT_TRUE(check_junit_ini(ini));
  ini.family = "foo";
  auto bad = check_junit_ini(ini);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::internal);
  EXPECT_NE(bad.error().message.find("junit_family"), std::string::npos);
  ini = JunitIni{};
  ini.error = "junit_log_passing_tests: invalid truth value 'foo'";
  ASSERT_FALSE(check_junit_ini(ini));
  m_collection.junit = ini;
  JunitReport report;
  report.collection = &m_collection;
  EXPECT_FALSE(write_junit(m_dir / "bad.xml", report));
}

TEST_F(JunitWriterTest, DroverPropertiesListTheAssignment) {
  add("a.py::test_x");
  add("a.py::test_dup");
  add("a.py::test_dup");
  add("a.py::test_y");
  JunitReport report;
  report.shard_index = 1;
  report.total_shards = 3;
  report.assigned = {1, 2, 3};
  report.assigned_set = true;
  report.drover_version = "0.1.0";
  report.extra_properties = {{"ci", "yes"}};
  write(report);
  auto file = parse_junit(m_text, "report.xml");
  ASSERT_TRUE(file) << file.error().message;
  const DroverProperties& drover = file->drover;
  EXPECT_EQ(drover.version, "0.1.0");
  EXPECT_EQ(drover.collection_hash, "abc123");
  EXPECT_EQ(drover.shard_index, 1);
  EXPECT_EQ(drover.total_shards, 3);
  EXPECT_EQ(drover.collected_count, 4);
  EXPECT_EQ(drover.assigned_count, 3);
  EXPECT_EQ(drover.assigned, (std::vector<std::string>{"a.py::test_dup", "a.py::test_dup", "a.py::test_y"}));
  EXPECT_EQ(drover.assigned_indices, (std::vector<int>{1, 2, 3}));
  ASSERT_EQ(file->suites.size(), 1u);
  EXPECT_EQ(file->suites[0].properties, (std::vector<std::pair<std::string, std::string>>{{"ci", "yes"}}));
  EXPECT_NE(m_text.find("<property name=\"drover.assigned_indices\" value=\"1-3\"/>"), std::string::npos);
}

TEST_F(JunitWriterTest, UnsetAssignmentMeansEveryTest) {
  add("a.py::test_x");
  add("a.py::test_y");
  write(JunitReport{});
  auto file = parse_junit(m_text, "report.xml");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->drover.assigned_count, 2);
  EXPECT_FALSE(file->drover.shard_index);
}

TEST_F(JunitWriterTest, UnwritablePathIsOneLineError) {
  add("a.py::test_x");
  JunitReport report;
  report.collection = &m_collection;
  std::ofstream(m_dir / "file") << "x";
  auto written = write_junit(m_dir / "file" / "report.xml", report);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code, ErrorCode::io);
  EXPECT_NE(written.error().message.find("report.xml"), std::string::npos);
  EXPECT_EQ(written.error().message.find('\n'), std::string::npos);
}

TEST(JunitText, BinXmlEscapeMatchesPytest) {
  // pytest: 'out\x07 é 😀\x7f' -> 'out#x07 é #x1F600\x7f'
  EXPECT_EQ(bin_xml_escape("out\x07 \xC3\xA9 \xF0\x9F\x98\x80\x7F"), "out#x07 \xC3\xA9 #x1F600\x7F");
  EXPECT_EQ(bin_xml_escape("a\tb\nc\rd\x1b"), "a\tb\nc\rd#x1B");
  EXPECT_EQ(bin_xml_escape("\xEF\xBF\xBE"), "#xFFFE");
  EXPECT_EQ(bin_xml_escape("bad \xFF byte"), "bad #xFF byte");
}

TEST(JunitText, XmlSafeKeepsWhatPytestWritesUnescaped) {
  // A classname from "pkg_🐍/test_e.py", a skip message: pytest writes 🐍 as it is; only
  // what XML cannot carry is escaped (pytest's report would be malformed there).
  EXPECT_EQ(xml_safe("pkg_\xF0\x9F\x90\x8D.test_e"), "pkg_\xF0\x9F\x90\x8D.test_e");
  EXPECT_EQ(xml_safe("a\x1b \xC3\xA9 \xEF\xBF\xBE bad \xFF"), "a#x1B \xC3\xA9 #xFFFE bad #xFF");
}

TEST(JunitText, MangleTestAddress) {
  EXPECT_EQ(mangle_test_address("pkg/test_a.py::TestX::test_y[a/b::c]"),
            (TestAddress{"pkg.test_a.TestX", "test_y[a/b::c]"}));
  EXPECT_EQ(mangle_test_address("test_a.py::test_y"), (TestAddress{"test_a", "test_y"}));
  EXPECT_EQ(mangle_test_address("pkg/test_bad.py"), (TestAddress{"", "pkg.test_bad"}));
}

TEST(JunitText, PythonFormatting) {
  EXPECT_EQ(python_repr("Skipped: no db"), "'Skipped: no db'");
  EXPECT_EQ(python_repr("it's"), "\"it's\"");
  EXPECT_EQ(python_repr("a'b\"c\n"), "'a\\'b\"c\\n'");
  EXPECT_EQ(python_center(" Captured Out ", 80, '-'), std::string(33, '-') + " Captured Out " + std::string(33, '-'));
  EXPECT_EQ(python_center("ab", 5, '-'), "--ab-");  // CPython puts the odd fill on the left here
  EXPECT_EQ(python_center("abc", 6, '-'), "-abc--");
  EXPECT_EQ(format_seconds(0.0005), "0.001");
  EXPECT_EQ(format_seconds(12.3456), "12.346");
}

TEST(JunitText, IndexRanges) {
  EXPECT_EQ(format_index_ranges({0, 1, 2, 3, 7, 9, 10}), "0-3,7,9-10");
  EXPECT_EQ(format_index_ranges({}), "");
  EXPECT_EQ(parse_index_ranges("0-3,7,9-10"), (std::vector<int>{0, 1, 2, 3, 7, 9, 10}));
  EXPECT_EQ(parse_index_ranges(""), std::vector<int>{});
  EXPECT_FALSE(parse_index_ranges("3-1"));
  EXPECT_FALSE(parse_index_ranges("1,"));
  EXPECT_FALSE(parse_index_ranges("x"));
  EXPECT_FALSE(parse_index_ranges("0-2000000000"));
}

}  // namespace
}  // namespace drover::common
