// The pool and the pytest session's own endings, against the real worker: a test
// that calls pytest.exit(), workers that stop at their own failures (--maxfail),
// and informational options that end pytest without a session.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "agent/pool.h"
#include "agent/pool_test_support.h"

namespace drover::agent {
namespace {

using common::Status;
using testing::RecordingSource;
using testing::ScratchDir;

constexpr const char* k_exiting =
    "import pytest\n"
    "def test_a():\n    pass\n"
    "def test_exit():\n    pytest.exit('bye', returncode=7)\n"
    "def test_c():\n    pass\n";

// Stops the run at the first session exit, as the local source does.
class ExitingSource : public RecordingSource {
 public:
  std::optional<SessionExit> exit;
  void session_exit(const SessionExit& event) override { exit = event; }
};

class PoolSessionTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(testing::no_children()) << "a worker process was left behind"; }
  ScratchDir dir;
};

bool handed_back(const RecordingSource& source, TestIndex index) {
  return std::any_of(source.handed.begin(), source.handed.end(), [&](const auto& entry) {
    return std::find(entry.second.begin(), entry.second.end(), index) != entry.second.end();
  });
}

TEST_F(PoolSessionTest, ASessionExitReachesTheSourceAndTheTestHasNoResult) {
  dir.write("tests/test_e.py", k_exiting);
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  ExitingSource source;
  source.requeue = false;
  source.stop_when = [&](const RecordingSource&) { return source.exit.has_value(); };
  source.add({0, 1, 2});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_TRUE(source.exit.has_value());
  EXPECT_EQ(source.exit->test, std::optional<TestIndex>(1));
  EXPECT_EQ(source.exit->lease, 1000u);
  EXPECT_EQ(source.exit->returncode, 7);
  EXPECT_EQ(source.exit->message, "_pytest.outcomes.Exit: bye");
  EXPECT_EQ(source.exit->worker, "gw0");
  ASSERT_EQ(source.results.size(), 1u);  // test_a only: no crash result for test_exit
  EXPECT_EQ(source.results[0].index, 0u);
  EXPECT_TRUE(handed_back(source, 2));
  EXPECT_FALSE(handed_back(source, 1));
}

TEST_F(PoolSessionTest, ASessionEndedInTeardownKeepsTheTestsResult) {
  // pytest reports the test (its call ran): 1 passed, exit code 6.
  dir.write("tests/test_t.py",
            "import pytest\n\n@pytest.fixture\ndef f():\n    yield\n    pytest.exit('teardown exit', returncode=6)\n\n"
            "def test_1(f):\n    pass\n\ndef test_2():\n    pass\n");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  ExitingSource source;
  source.requeue = false;
  source.stop_when = [&](const RecordingSource&) { return source.exit.has_value(); };
  source.add({0, 1});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_TRUE(source.exit.has_value());
  EXPECT_EQ(source.exit->returncode, 6);
  EXPECT_FALSE(source.exit->test.has_value());
  ASSERT_NE(source.result_for(0), nullptr);
  EXPECT_EQ(source.result_for(0)->final_status(), Status::passed);
  EXPECT_EQ(source.result_for(1), nullptr);
  EXPECT_TRUE(handed_back(source, 1));
}

TEST_F(PoolSessionTest, ByDefaultASessionExitIsAnErrorAndTheRunGoesOn) {
  // A farm agent's source: the coordinator needs a result for every test.
  dir.write("tests/test_e.py", k_exiting);
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add({0, 1, 2});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_NE(source.result_for(1), nullptr);
  EXPECT_EQ(source.result_for(1)->final_status(), Status::error);
  EXPECT_EQ(source.result_for(1)->phases.front().message, "the test ended the pytest session: _pytest.outcomes.Exit: bye");
  ASSERT_NE(source.result_for(2), nullptr);  // on a fresh worker: not a crash, no restart counted
  EXPECT_EQ(source.result_for(2)->final_status(), Status::passed);
}

TEST_F(PoolSessionTest, WorkersWithMaxfailStartNothingAfterTheirFailure) {
  dir.write("tests/test_y.py", "def test_e1():\n    assert 0\ndef test_e2():\n    assert 0\ndef test_ok():\n    pass\n");
  auto options = testing::options_for(dir, 1);
  options.maxfail = 1;
  Pool pool(options);
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.requeue = false;
  source.stop_when = [](const RecordingSource& s) { return !s.results.empty(); };
  source.add({0, 1, 2});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_EQ(source.results.size(), 1u);
  EXPECT_EQ(source.results[0].final_status(), Status::failed);
  EXPECT_TRUE(handed_back(source, 1));  // the committed nextitem too
  EXPECT_TRUE(handed_back(source, 2));
}

TEST_F(PoolSessionTest, InformationalOptionsEndWithoutASession) {
  dir.write("tests/test_a.py", "def test_a():\n    pass\n");
  auto options = testing::options_for(dir, 2);
  options.pytest_args = {"--version"};
  Pool pool(options);
  EXPECT_FALSE(pool.start().has_value());
  EXPECT_TRUE(pool.ended_without_session());
}

}  // namespace
}  // namespace drover::agent
