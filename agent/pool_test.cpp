// Pool against the real Python worker (worker_py) and real pytest.
#include "agent/pool.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/pool_test_support.h"

namespace drover::agent {
namespace {

using common::ErrorCode;
using common::Status;
using testing::RecordingSource;
using testing::ScratchDir;

class PoolTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(testing::no_children()) << "a worker process was left behind"; }
  ScratchDir dir;
};

const char* const k_three_modules = R"(
import pytest

@pytest.mark.parametrize("n", range(3))
def test_p(n):
    assert n < 3
)";

TEST_F(PoolTest, RunsEverySuiteTestOnceWithTwoWorkers) {
  dir.write("tests/test_a.py", k_three_modules);
  dir.write("tests/test_b.py", "def test_one():\n    pass\n\ndef test_fail():\n    assert 1 == 2\n");
  dir.write("tests/test_c.py", "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_skip():\n    pass\n");
  Pool pool(testing::options_for(dir, 2));
  EXPECT_EQ(pool.worker_count(), 2);
  auto collection = pool.start();
  ASSERT_TRUE(collection.has_value()) << collection.error().message;
  ASSERT_EQ(collection->items.size(), 6u);
  EXPECT_EQ(collection->items[3].nodeid, "tests/test_b.py::test_one");
  EXPECT_EQ(collection->hash.size(), 64u);

  RecordingSource source;
  source.add({0, 1, 2});
  source.add({3, 4});
  source.add({5});
  auto ran = pool.run(source);
  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  ASSERT_EQ(source.results.size(), 6u);
  for (const auto& [index, count] : source.counts()) EXPECT_EQ(count, 1) << index;
  EXPECT_EQ(source.result_for(0)->final_status(), Status::passed);
  EXPECT_EQ(source.result_for(4)->final_status(), Status::failed);
  EXPECT_EQ(source.result_for(5)->final_status(), Status::skipped);
  EXPECT_EQ(source.result_for(0)->phases.size(), 3u);
  const std::string worker = source.result_for(0)->worker;
  EXPECT_TRUE(worker == "gw0" || worker == "gw1") << worker;
  EXPECT_TRUE(source.handed.empty());
  EXPECT_GT(source.polls, 0);
}

// Both workers collect and record the collection warnings: the pool keeps them once
// (twice for the one recorded twice). A test's identical warnings become one entry.
TEST_F(PoolTest, CollectionWarningsCountOnceTestWarningsTravelWithTheResult) {
  dir.write("tests/test_w.py", R"(
import warnings

for _ in range(2):
    warnings.warn("twice at import", DeprecationWarning)
warnings.warn("once at import")

def test_loop():
    for _ in range(5):
        warnings.warn("in a loop", DeprecationWarning)

def test_quiet():
    pass
)");
  Pool pool(testing::options_for(dir, 2));
  auto collection = pool.start();
  ASSERT_TRUE(collection.has_value()) << collection.error().message;
  EXPECT_TRUE(collection->show_warnings);
  RecordingSource source;
  source.add({0});
  source.add({1});
  auto ran = pool.run(source);
  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  const auto session = pool.session_warnings();
  ASSERT_EQ(session.size(), 3u);
  EXPECT_EQ(session[0].location, "tests/test_w.py:5");
  EXPECT_EQ(session[1].location, "tests/test_w.py:5");
  EXPECT_NE(session[0].message.find("DeprecationWarning: twice at import"), std::string::npos) << session[0].message;
  EXPECT_EQ(session[2].location, "tests/test_w.py:6");
  const auto& loop = source.result_for(0)->warnings;
  ASSERT_EQ(loop.size(), 1u);
  EXPECT_EQ(loop[0].location, "tests/test_w.py::test_loop");
  EXPECT_EQ(loop[0].count, 5);
  EXPECT_NE(loop[0].message.find("DeprecationWarning: in a loop\n"), std::string::npos) << loop[0].message;
  EXPECT_TRUE(source.result_for(1)->warnings.empty());
}

TEST_F(PoolTest, StartReportsDeselectedTests) {
  dir.write("tests/test_k.py", "def test_keep():\n    pass\n\ndef test_drop():\n    pass\n");
  auto options = testing::options_for(dir, 1);
  options.pytest_args.insert(options.pytest_args.end(), {"-k", "not drop"});
  Pool pool(options);
  auto collection = pool.start();
  ASSERT_TRUE(collection.has_value()) << collection.error().message;
  ASSERT_EQ(collection->items.size(), 1u);
  EXPECT_EQ(collection->items[0].nodeid, "tests/test_k.py::test_keep");
  EXPECT_EQ(collection->deselected, 1u);
}

// Leases of one module arrive one test at a time; the worker keeps the module
// fixture across leases (nextitem) and tears it down exactly once, after the
// last test, when the session ends.
TEST_F(PoolTest, ModuleFixtureSurvivesAcrossLeases) {
  dir.write("tests/test_m.py", R"(
import os
import pytest

LOG = os.path.join(os.path.dirname(__file__), "..", "fixture.log")

@pytest.fixture(scope="module")
def resource():
    with open(LOG, "a") as log:
        log.write("setup\n")
    yield 1
    with open(LOG, "a") as log:
        log.write("teardown\n")

@pytest.mark.parametrize("n", range(4))
def test_uses(resource, n):
    with open(LOG, "a") as log:
        log.write("test %d\n" % n)
)");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add_each(4);
  ASSERT_TRUE(pool.run(source).has_value());
  EXPECT_EQ(source.results.size(), 4u);
  EXPECT_EQ(dir.read("fixture.log"), "setup\ntest 0\ntest 1\ntest 2\ntest 3\nteardown\n");
}

// The next lease is asked for while two tests still wait behind the running one,
// not when the worker's last test stalls waiting for its nextitem: test_1 only
// finishes once the source was asked for the second lease.
TEST_F(PoolTest, NextLeaseIsAskedForBeforeTheWorkerRunsDry) {
  dir.write("tests/test_ahead.py", R"(
import os, time

ASKED = os.path.join(os.path.dirname(__file__), "..", "asked.txt")

def test_0():
    pass

def test_1():
    deadline = time.monotonic() + 60
    while not os.path.exists(ASKED):
        assert time.monotonic() < deadline, "the second lease was not asked for while test_1 ran"
        time.sleep(0.01)

def test_2():
    pass

def test_3():
    pass

def test_4():
    pass
)");
  class AskRecordingSource : public RecordingSource {
   public:
    explicit AskRecordingSource(const ScratchDir& scratch) : m_scratch(scratch) {}
    std::vector<WorkLease> request(int credits) override {
      auto leases = RecordingSource::request(credits);
      if (!leases.empty() && leases.front().tests.front() == 4) m_scratch.write("asked.txt", "yes");
      return leases;
    }

   private:
    const ScratchDir& m_scratch;
  };
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  AskRecordingSource source(dir);
  source.add({0, 1, 2, 3});
  source.add({4});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_EQ(source.results.size(), 5u);
  for (TestIndex index = 0; index < 5; ++index) {
    EXPECT_EQ(source.result_for(index)->final_status(), Status::passed) << index;
  }
}

TEST_F(PoolTest, StoppingSourceDropsQueuedTests) {
  dir.write("tests/test_x.py", R"(
import time

def test_fail():
    assert False

def test_slow_a():
    time.sleep(0.3)

def test_slow_b():
    time.sleep(0.3)

def test_slow_c():
    time.sleep(0.3)
)");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add({0, 1, 2, 3});
  source.stop_when = [](const RecordingSource& s) {
    for (const auto& result : s.results) {
      if (result.final_status() == Status::failed) return true;
    }
    return false;
  };
  ASSERT_TRUE(pool.run(source).has_value());
  // Tests already started or committed as a running test's nextitem still
  // run; the rest of the lease comes back unrun.
  ASSERT_GE(source.results.size(), 1u);
  EXPECT_LE(source.results.size(), 3u);
  std::size_t handed = 0;
  for (const auto& [lease, tests] : source.handed) handed += tests.size();
  EXPECT_GE(handed, 1u);
  EXPECT_EQ(source.results.size() + handed, 4u);
}

TEST_F(PoolTest, CancelledTestsAreHandedBackNotRun) {
  dir.write("tests/test_x.py", R"(
import time
import pytest

@pytest.mark.parametrize("n", range(6))
def test_slow(n):
    time.sleep(0.2)
)");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.requeue = false;
  source.add({0, 1, 2, 3, 4, 5});
  source.cancellations = {{4}, {5}};
  ASSERT_TRUE(pool.run(source).has_value());
  EXPECT_EQ(source.results.size(), 4u);
  EXPECT_EQ(source.result_for(4), nullptr);
  EXPECT_EQ(source.result_for(5), nullptr);
  ASSERT_EQ(source.handed.size(), 1u);
  EXPECT_EQ(source.handed[0].second, (std::vector<TestIndex>{4, 5}));
}

TEST_F(PoolTest, ACancelledRunningTestIsStoppedAndHandedBack) {
  dir.write("tests/test_x.py", R"(
import time

def test_a():
    pass

def test_long():
    time.sleep(60)

def test_c():
    pass
)");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  // test_long is cancelled (stop_running) half a second after test_a's result, when it
  // has started; it goes back unreported and the slot's new worker runs test_c.
  struct CancellingSource : RecordingSource {
    std::optional<std::chrono::steady_clock::time_point> first_result;
    std::vector<Cancellation> take_cancellations() override {
      if (results.empty()) return {};
      const auto now = std::chrono::steady_clock::now();
      if (!first_result) first_result = now;
      if (now - *first_result < std::chrono::milliseconds(500)) return {};
      return std::exchange(cancellations, {});
    }
    void handed_back(std::uint64_t lease, std::vector<TestIndex> tests) override {
      handed.emplace_back(lease, tests);
      std::erase(tests, TestIndex{1});
      if (!tests.empty()) queue.push_front({next_lease++, std::move(tests)});
    }
  } source;
  source.add({0});
  source.add({1});
  source.add({2});
  source.cancellations = {{1, true}};
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(pool.run(source).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_EQ(source.result_for(1), nullptr);
  ASSERT_NE(source.result_for(0), nullptr);
  ASSERT_NE(source.result_for(2), nullptr);
  EXPECT_EQ(source.result_for(2)->final_status(), Status::passed);
  bool handed_long = false;
  for (const auto& [lease, tests] : source.handed) handed_long = handed_long || std::count(tests.begin(), tests.end(), TestIndex{1}) > 0;
  EXPECT_TRUE(handed_long);
}

TEST_F(PoolTest, WorkArrivingAfterAWorkerParkedRespawnsIt) {
  dir.write("tests/test_x.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  // A source that has nothing for a moment although it is not exhausted: the
  // worker's only test is run (shutdown), and the later lease gets a new worker.
  struct LateSource : RecordingSource {
    bool released = false;
    std::vector<WorkLease> request(int credits) override {
      if (!results.empty() && !released) {
        released = true;
        add({1});
      }
      return RecordingSource::request(credits);
    }
    bool exhausted() override { return released && queue.empty(); }
  } source;
  source.add({0});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_EQ(source.results.size(), 2u);
  EXPECT_EQ(source.result_for(1)->final_status(), Status::passed);
}

TEST_F(PoolTest, InterruptKillsWorkersAndHandsTestsBack) {
  dir.write("tests/test_x.py", "import time\n\ndef test_hang():\n    time.sleep(60)\n\ndef test_next():\n    pass\n");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.requeue = false;
  source.add({0, 1});
  std::thread interrupter([&pool] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    pool.interrupt();
  });
  const auto began = std::chrono::steady_clock::now();
  auto ran = pool.run(source);
  interrupter.join();
  ASSERT_FALSE(ran.has_value());
  EXPECT_EQ(ran.error().code, ErrorCode::interrupted);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10));
  EXPECT_TRUE(source.results.empty());
  ASSERT_EQ(source.handed.size(), 1u);
  EXPECT_EQ(source.handed[0].second, (std::vector<TestIndex>{0, 1}));
}

TEST_F(PoolTest, InterruptDuringStart) {
  dir.write("tests/conftest.py", "import time\ntime.sleep(60)\n");
  dir.write("tests/test_x.py", "def test_a():\n    pass\n");
  Pool pool(testing::options_for(dir, 2));
  std::thread interrupter([&pool] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    pool.interrupt();
  });
  auto started = pool.start();
  interrupter.join();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::interrupted);
}

TEST_F(PoolTest, DestructorReapsWorkersThatNeverRan) {
  dir.write("tests/test_x.py", "def test_a():\n    pass\n");
  {
    Pool pool(testing::options_for(dir, 2));
    ASSERT_TRUE(pool.start().has_value());
  }
  // TearDown checks that no child is left.
}

// drover killed with SIGKILL (no destructor runs) while its workers are busy
// (here: collecting, so they do not notice the closed pipes): they die with it.
TEST_F(PoolTest, WorkersDieWhenDroverIsKilled) {
  dir.write("tests/conftest.py", R"(
import os, time
with open(os.path.join(os.path.dirname(__file__), "..", "pids"), "a") as pids:
    pids.write("%d\n" % os.getpid())
time.sleep(60)
)");
  dir.write("tests/test_x.py", "def test_a():\n    pass\n");
  const auto pids = testing::kill_drover_once_listed(dir, "pids", 2, [&] {
    Pool pool(testing::options_for(dir, 2));
    (void)pool.start();
  });
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t pid : pids) EXPECT_TRUE(testing::ends_soon(pid)) << "worker " << pid << " outlived drover";
}

}  // namespace
}  // namespace drover::agent
