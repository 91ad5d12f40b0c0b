// Forked workers (PoolOptions::fork_workers): the first worker collects and forks
// the others, which are then drover's own children, as if started anew.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "agent/pool.h"
#include "agent/pool_test_support.h"

namespace drover::agent {
namespace {

using common::Status;
using testing::RecordingSource;
using testing::ScratchDir;

class PoolForkTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(testing::no_children()) << "a worker process was left behind"; }
  ScratchDir dir;
};

// Not exhausted until the first result: idle workers stay up meanwhile.
class WaitingSource : public RecordingSource {
 public:
  bool exhausted() override { return queue.empty() && !results.empty(); }
};

PoolOptions forking(const ScratchDir& dir) {
  auto options = testing::options_for(dir, 2);
  options.worker_start = WorkerStart::fork;
  return options;
}

// In the tests: whether this process is a fork of the first worker, and the pid of
// the other worker (drover's other child).
const char* const k_helpers = R"(
import os, time

COLLECTED_IN = os.getpid()


def forked():
    return os.getpid() != COLLECTED_IN


def sibling():
    drover = os.getppid()
    deadline = time.time() + 10
    while time.time() < deadline:
        kids = set()
        for task in os.listdir("/proc/%d/task" % drover):
            try:
                with open("/proc/%d/task/%s/children" % (drover, task)) as children:
                    kids.update(int(pid) for pid in children.read().split())
            except OSError:
                pass
        kids.discard(os.getpid())
        if kids:
            return kids.pop()
        time.sleep(0.01)
    return 0
)";

TEST_F(PoolForkTest, FirstWorkersCrashLeavesTheForkedWorkerRunning) {
  // Whichever worker asks first gets work: the forked one holds its tests until the
  // first worker has crashed in one, so the first worker surely runs one. Only the
  // first crash counts; the tests handed back from it, or run by its replacement, pass.
  dir.write("tests/test_x.py", std::string(k_helpers) + R"(
import pytest

RECORD = os.path.join(os.path.dirname(__file__), "..", "sibling")


@pytest.mark.parametrize("n", range(4))
def test_crash(n):
    if forked():
        deadline = time.time() + 10
        while not os.path.exists(RECORD) and time.time() < deadline:
            time.sleep(0.01)
        return
    if os.path.exists(RECORD):
        return
    with open(RECORD + ".tmp", "w") as out:
        out.write("%d %d" % (forked(), sibling()))
    os.rename(RECORD + ".tmp", RECORD)
    os.kill(os.getpid(), 9)
)");
  Pool pool(forking(dir));
  ASSERT_TRUE(pool.start().has_value());
  WaitingSource source;
  source.add_each(4);
  bool sibling_alive = false;
  int crashed_in_fork = -1;
  pid_t sibling = 0;
  int crashes = 0;
  source.on_result = [&](const common::TestResult& result) {
    if (result.phases.at(0).message != "worker crashed (signal 9)") return;
    ++crashes;
    std::istringstream in(dir.read("sibling"));
    in >> crashed_in_fork >> sibling;
    sibling_alive = sibling > 0 && testing::process_running(sibling);
  };
  auto ran = pool.run(source);
  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  ASSERT_EQ(source.results.size(), 4u);
  EXPECT_EQ(crashes, 1);
  EXPECT_EQ(crashed_in_fork, 0) << "the first worker should have run the test";
  EXPECT_GT(sibling, 0);
  EXPECT_TRUE(sibling_alive) << "the forked worker died with the first one";
}

TEST_F(PoolForkTest, ForkedWorkersExitStatusIsRead) {
  dir.write("tests/test_x.py", std::string(k_helpers) + R"(
import pytest


@pytest.mark.parametrize("n", range(8))
def test_n(n):
    if forked():
        os._exit(7)
    time.sleep(0.3)
)");
  Pool pool(forking(dir));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add_each(8);
  auto ran = pool.run(source);
  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  ASSERT_EQ(source.results.size(), 8u);
  int exits = 0;
  for (const auto& result : source.results) {
    if (result.final_status() == Status::passed) continue;
    ++exits;
    EXPECT_EQ(result.worker, "gw1");
    EXPECT_EQ(result.phases.at(0).message, "worker exited with code 7");
  }
  // The forked gw1 dies in its first test; its replacement is started anew.
  EXPECT_EQ(exits, 1);
}

// drover killed with SIGKILL (no destructor runs): the forked worker dies with it too.
TEST_F(PoolForkTest, ForkedWorkersDieWhenDroverIsKilled) {
  dir.write("tests/test_x.py", std::string(k_helpers) + R"(

def test_wait():
    with open(os.path.join(os.path.dirname(__file__), "..", "pids"), "w") as out:
        out.write("%d %d\n" % (os.getpid(), sibling()))
    time.sleep(60)
)");
  const auto pids = testing::kill_drover_once_listed(dir, "pids", 2, [&] {
    Pool pool(forking(dir));
    if (!pool.start()) return;
    WaitingSource source;
    source.add({0});
    (void)pool.run(source);
  });
  ASSERT_EQ(pids.size(), 2u);
  ASSERT_TRUE(pids[0] > 0 && pids[1] > 0);
  for (pid_t pid : pids) EXPECT_TRUE(testing::ends_soon(pid)) << "worker " << pid << " outlived drover";
}

// Destroyed right after start(): the forked worker may not have said hello yet.
TEST_F(PoolForkTest, DestructorReapsWorkersStillBeingForked) {
  dir.write("tests/test_x.py", "def test_a():\n    pass\n");
  for (int round = 0; round < 3; ++round) {
    Pool pool(forking(dir));
    ASSERT_TRUE(pool.start().has_value());
  }
  // TearDown checks that no child is left.
}

}  // namespace
}  // namespace drover::agent
