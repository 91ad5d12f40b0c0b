// Pool failure paths against the real worker: crashes, timeouts, restart
// limit, bad interpreters and arguments, collections that differ.
#include <gtest/gtest.h>

#include "agent/pool.h"
#include "agent/pool_test_support.h"

namespace drover::agent {
namespace {

using common::ErrorCode;
using common::Status;
using testing::RecordingSource;
using testing::ScratchDir;

class PoolFailureTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(testing::no_children()) << "a worker process was left behind"; }
  ScratchDir dir;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST_F(PoolFailureTest, CrashesBecomeErrorsAndTheRestRuns) {
  dir.write("tests/test_crash.py", R"(
import os

def test_before():
    pass

def test_exit():
    print("about to exit")
    os._exit(3)

def test_segv():
    import ctypes
    ctypes.string_at(0)

def test_after():
    pass
)");
  Pool pool(testing::options_for(dir, 1));
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add({0, 1, 2, 3});
  auto ran = pool.run(source);
  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  ASSERT_EQ(source.results.size(), 4u);
  for (const auto& [index, count] : source.counts()) EXPECT_EQ(count, 1) << index;
  EXPECT_EQ(source.result_for(0)->final_status(), Status::passed);
  EXPECT_EQ(source.result_for(3)->final_status(), Status::passed);

  const auto& exited = *source.result_for(1);
  EXPECT_EQ(exited.final_status(), Status::error);
  EXPECT_EQ(exited.worker, "gw0");
  EXPECT_EQ(exited.phases.at(0).message, "worker exited with code 3");
  EXPECT_TRUE(contains(exited.phases[0].longrepr, "worker 'gw0' crashed while running 'tests/test_crash.py::test_exit'"))
      << exited.phases[0].longrepr;

  const auto& segv = *source.result_for(2);
  EXPECT_EQ(segv.final_status(), Status::error);
  EXPECT_EQ(segv.phases.at(0).message, "worker crashed (signal 11)");
  // pytest's faulthandler wrote the Python stack to the worker's stderr.
  EXPECT_TRUE(contains(segv.phases[0].longrepr, "Segmentation fault")) << segv.phases[0].longrepr;
  EXPECT_TRUE(contains(segv.phases[0].longrepr, "test_segv")) << segv.phases[0].longrepr;
  // The queued tests of the crashed worker went back to the source and ran later.
  EXPECT_FALSE(source.handed.empty());
}

TEST_F(PoolFailureTest, TimeoutFailsTheTestWithItsStack) {
  dir.write("tests/test_slow.py", R"(
import time

def test_quick():
    pass

def test_sleepy():
    time.sleep(30)

def test_after():
    pass
)");
  auto options = testing::options_for(dir, 1);
  options.timeout = 1;
  options.max_worker_restart = 0;  // a timeout does not count as a crash
  Pool pool(options);
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add({0, 1, 2});
  const auto began = std::chrono::steady_clock::now();
  auto ran = pool.run(source);
  ASSERT_TRUE(ran.has_value()) << ran.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(20));
  ASSERT_EQ(source.results.size(), 3u);
  const auto& slow = *source.result_for(1);
  EXPECT_EQ(slow.final_status(), Status::failed);
  EXPECT_EQ(slow.phases.at(0).message, "timeout after 1 s");
  EXPECT_TRUE(contains(slow.phases[0].longrepr, "Timeout (")) << slow.phases[0].longrepr;
  EXPECT_TRUE(contains(slow.phases[0].longrepr, "test_sleepy")) << slow.phases[0].longrepr;
  EXPECT_EQ(source.result_for(2)->final_status(), Status::passed);
}

TEST_F(PoolFailureTest, RestartLimitRetiresTheWorker) {
  dir.write("tests/test_crash.py", R"(
import os
import pytest

@pytest.mark.parametrize("n", range(4))
def test_exit(n):
    os._exit(1)
)");
  auto options = testing::options_for(dir, 1);
  options.max_worker_restart = 1;
  Pool pool(options);
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add_each(4);
  auto ran = pool.run(source);
  ASSERT_FALSE(ran.has_value());
  EXPECT_EQ(ran.error().code, ErrorCode::worker);
  EXPECT_EQ(ran.error().message, "maximum crashed workers reached: 1");
  // Two crashes (the first restarted, the second past the limit), each its own error.
  ASSERT_EQ(source.results.size(), 2u);
  for (const auto& result : source.results) EXPECT_EQ(result.final_status(), Status::error);
}

TEST_F(PoolFailureTest, DifferentCollectionsAreAnError) {
  // The first worker to create the marker collects one test fewer.
  dir.write("tests/conftest.py", R"(
import os

def pytest_collection_modifyitems(config, items):
    try:
        os.close(os.open(os.path.join(os.path.dirname(__file__), "..", "marker"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return
    del items[-1]
)");
  dir.write("tests/test_x.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n");
  Pool pool(testing::options_for(dir, 2));
  auto started = pool.start();
  common::Error error;
  if (started) {
    RecordingSource source;
    source.add({0});
    auto ran = pool.run(source);
    ASSERT_FALSE(ran.has_value());
    error = ran.error();
  } else {
    error = started.error();
  }
  EXPECT_EQ(error.code, ErrorCode::collection);
  EXPECT_TRUE(contains(error.message, "different tests were collected between gw")) << error.message;
  EXPECT_TRUE(contains(error.message, "1 tests (hash ")) << error.message;
  EXPECT_TRUE(contains(error.message, "2 tests (hash ")) << error.message;
}

TEST_F(PoolFailureTest, InterpreterWithoutPytest) {
  dir.write("tests/test_x.py", "def test_a():\n    pass\n");
  dir.write("fakepython", "#!/bin/sh\nexport PYTHONPATH=" + dir.path().string() + "/nopytest:$PYTHONPATH\nexec /usr/bin/python3 \"$@\"\n");
  // A `pytest` module that fails to import, as on an interpreter without pytest.
  dir.write("nopytest/pytest.py", "raise ImportError(\"No module named 'pytest'\")\n");
  std::filesystem::permissions(dir.path() / "fakepython", std::filesystem::perms::owner_all);
  auto options = testing::options_for(dir, 2);
  options.python = (dir.path() / "fakepython").string();
  options.worker_path = std::filesystem::path(DROVER_SOURCE_DIR) / "worker_py";
  Pool pool(options);
  auto started = pool.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::usage);
  EXPECT_TRUE(contains(started.error().message, "pytest is not installed for")) << started.error().message;
  EXPECT_EQ(started.error().message.find('\n'), std::string::npos) << started.error().message;
}

TEST_F(PoolFailureTest, MissingInterpreter) {
  auto options = testing::options_for(dir, 1);
  options.python = "/nonexistent/python3";
  Pool pool(options);
  auto started = pool.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::usage);
  EXPECT_EQ(started.error().message, "/nonexistent/python3: No such file or directory");
  Pool pool2([&] {
    auto o = options;
    o.python = "no-such-python-anywhere";
    return o;
  }());
  auto started2 = pool2.start();
  ASSERT_FALSE(started2.has_value());
  EXPECT_EQ(started2.error().message, "no-such-python-anywhere: command not found");
}

TEST_F(PoolFailureTest, WorkerPackageMissing) {
  auto options = testing::options_for(dir, 1);
  options.worker_path = dir.path() / "nowhere";
  Pool pool(options);
  auto started = pool.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::worker);
  EXPECT_EQ(started.error().message, "/usr/bin/python3: No module named drover_worker");
}

TEST_F(PoolFailureTest, PytestUsageErrorIsAUsageError) {
  dir.write("tests/test_x.py", "def test_a():\n    pass\n");
  auto options = testing::options_for(dir, 2);
  options.pytest_args.push_back("--no-such-flag");
  Pool pool(options);
  auto started = pool.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::usage);
  // pytest's own two lines, without their "ERROR: " (drover's print_error adds it once).
  EXPECT_TRUE(started.error().message.starts_with("usage: pytest [options]")) << started.error().message;
  EXPECT_TRUE(contains(started.error().message, "\npytest: error: unrecognized arguments: --no-such-flag"))
      << started.error().message;

  auto missing = testing::options_for(dir, 1);
  missing.pytest_args = {"-p", "no:cacheprovider", "no_such_dir"};
  Pool pool2(missing);
  auto started2 = pool2.start();
  ASSERT_FALSE(started2.has_value());
  EXPECT_EQ(started2.error().code, ErrorCode::usage);
  EXPECT_EQ(started2.error().message, "file or directory not found: no_such_dir");
}

// A stand-in worker package (no pytest) that follows the protocol until it
// does something wrong; `protocol` and `misbehave` shape what it does.
void write_fake_worker(const ScratchDir& dir, int protocol, const std::string& misbehave) {
  dir.write("fake/drover_worker/__init__.py", "");
  dir.write("fake/drover_worker/__main__.py", R"(
import json, os, sys, time
a = sys.argv
out = os.fdopen(int(a[a.index("--out-fd") + 1]), "w")
commands = os.fdopen(int(a[a.index("--in-fd") + 1]), "r")
def send(message):
    out.write(json.dumps(message) + "\n")
    out.flush()
send({"type": "hello", "protocol": )" + std::to_string(protocol) + R"(, "pid": os.getpid()})
send({"type": "collected", "rootdir": "/", "hash": "h", "items": [{"nodeid": "t::a"}, {"nodeid": "t::b"}]})
for line in commands:
    command = json.loads(line)
    if command["type"] == "run":
        send({"type": "start", "index": command["indices"][0]})
        )" + misbehave + R"(
        time.sleep(60)
    elif command["type"] == "shutdown":
        send({"type": "bye", "exitstatus": 0})
        sys.exit(0)
)");
}

TEST_F(PoolFailureTest, GarbageFromAWorkerIsAProtocolFailure) {
  write_fake_worker(dir, 1, "out.write('this is not json\\n'); out.flush()");
  auto options = testing::options_for(dir, 1);
  options.worker_path = dir.path() / "fake";
  options.max_worker_restart = 0;
  Pool pool(options);
  auto collection = pool.start();
  ASSERT_TRUE(collection.has_value()) << collection.error().message;
  EXPECT_EQ(collection->items.size(), 2u);
  RecordingSource source;
  source.add({0, 1});
  auto ran = pool.run(source);
  ASSERT_FALSE(ran.has_value());
  EXPECT_EQ(ran.error().message, "maximum crashed workers reached: 0");
  ASSERT_EQ(source.results.size(), 1u);
  const auto& result = source.results[0];
  EXPECT_EQ(result.index, 0u);
  EXPECT_EQ(result.final_status(), Status::error);
  EXPECT_EQ(result.phases.at(0).message, "worker broke the protocol");
  EXPECT_TRUE(contains(result.phases[0].longrepr, "not a JSON object: this is not json")) << result.phases[0].longrepr;
}

TEST_F(PoolFailureTest, OutOfOrderMessageIsAProtocolFailure) {
  write_fake_worker(dir, 1, "send({'type': 'finished', 'index': 1})");
  auto options = testing::options_for(dir, 1);
  options.worker_path = dir.path() / "fake";
  options.max_worker_restart = 0;
  Pool pool(options);
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add({0, 1});
  ASSERT_FALSE(pool.run(source).has_value());
  ASSERT_EQ(source.results.size(), 1u);
  EXPECT_TRUE(contains(source.results[0].phases.at(0).longrepr, "unexpected `finished`"));
}

// A worker whose own timeout does not fire is killed by drover.
TEST_F(PoolFailureTest, DroverKillsAWorkerStuckPastItsTimeout) {
  write_fake_worker(dir, 1, "pass");
  auto options = testing::options_for(dir, 1);
  options.worker_path = dir.path() / "fake";
  options.timeout = 0.5;
  Pool pool(options);
  ASSERT_TRUE(pool.start().has_value());
  RecordingSource source;
  source.add({1});
  ASSERT_TRUE(pool.run(source).has_value());
  ASSERT_EQ(source.results.size(), 1u);
  const auto& phase = source.results[0].phases.at(0);
  EXPECT_EQ(phase.status, Status::failed);
  EXPECT_EQ(phase.message, "timeout after 0.5 s");
  EXPECT_TRUE(contains(phase.longrepr, "Timeout: worker 'gw0' was killed after 2.")) << phase.longrepr;
  EXPECT_TRUE(contains(phase.longrepr, "running 't::b'")) << phase.longrepr;
}

TEST_F(PoolFailureTest, WorkerOfAnotherProtocolVersion) {
  write_fake_worker(dir, 2, "pass");
  auto options = testing::options_for(dir, 2);
  options.worker_path = dir.path() / "fake";
  Pool pool(options);
  auto started = pool.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::protocol);
  EXPECT_EQ(started.error().message, "the worker speaks protocol 2; this drover speaks 1");
}

}  // namespace
}  // namespace drover::agent
