// Helpers for the pool tests: a scratch directory with a pytest suite, and a
// WorkSource that behaves like a small scheduler and records everything.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/pool.h"

namespace drover::agent::testing {

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "drover-pool-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) m_path = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
  void write(const std::string& name, const std::string& text) const {
    std::filesystem::create_directories((m_path / name).parent_path());
    std::ofstream(m_path / name) << text;
  }
  [[nodiscard]] std::string read(const std::string& name) const {
    std::ifstream in(m_path / name);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  std::filesystem::path m_path;
};

inline PoolOptions options_for(const ScratchDir& dir, int workers) {
  PoolOptions options;
  options.python = "/usr/bin/python3";
  options.worker_path = std::filesystem::path(DROVER_SOURCE_DIR) / "worker_py";
  options.rootdir = dir.path();
  options.basetemp_root = dir.path() / ".basetemp";
  options.workers = workers;
  options.pytest_args = {"-p", "no:cacheprovider", "-q", "tests"};
  options.worker_start = WorkerStart::exec;  // whatever the CPU count; fork tests ask for fork
  return options;
}

// A queue of leases; tests handed back go to the front again (as the real
// scheduler does) unless `requeue` is off.
class RecordingSource : public WorkSource {
 public:
  std::deque<WorkLease> queue;
  std::vector<common::TestResult> results;
  std::vector<std::pair<std::uint64_t, std::vector<TestIndex>>> handed;
  std::vector<Cancellation> cancellations;  // given out once, at the first result
  std::function<bool(const RecordingSource&)> stop_when;
  std::function<void(const common::TestResult&)> on_result;
  bool requeue = true;
  int polls = 0;
  std::uint64_t next_lease = 1000;

  void add(std::vector<TestIndex> tests) { queue.push_back({next_lease++, std::move(tests)}); }
  void add_each(TestIndex count) {
    for (TestIndex i = 0; i < count; ++i) add({i});
  }

  std::vector<WorkLease> request(int credits) override {
    std::vector<WorkLease> out;
    if (stopping()) return out;
    while (credits-- > 0 && !queue.empty()) {
      out.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    return out;
  }
  bool exhausted() override { return queue.empty(); }
  bool stopping() override { return stop_when && stop_when(*this); }
  std::vector<Cancellation> take_cancellations() override {
    if (results.empty()) return {};
    return std::exchange(cancellations, {});
  }
  void completed(common::TestResult result) override {
    if (on_result) on_result(result);
    results.push_back(std::move(result));
  }
  void handed_back(std::uint64_t lease, std::vector<TestIndex> tests) override {
    handed.emplace_back(lease, tests);
    if (requeue && !stopping()) queue.push_front({next_lease++, std::move(tests)});
  }
  void poll() override { ++polls; }
  int poll_interval_ms() const override { return 100; }

  [[nodiscard]] const common::TestResult* result_for(TestIndex index) const {
    for (const auto& result : results) {
      if (result.index == index) return &result;
    }
    return nullptr;
  }
  [[nodiscard]] std::map<TestIndex, int> counts() const {
    std::map<TestIndex, int> out;
    for (const auto& result : results) ++out[result.index];
    return out;
  }
};

// Alive and not a zombie waiting for a reaper.
inline bool process_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z' && text[close + 2] != 'X';
}

// True when `pid` ends within 5 s; kills it otherwise.
inline bool ends_soon(pid_t pid) {
  for (int attempt = 0; attempt < 100 && process_running(pid); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!process_running(pid)) return true;
  ::kill(pid, SIGKILL);
  return false;
}

// Runs `drover` in a forked child, waits (up to 10 s) until `dir`'s file `name` lists
// `count` pids, kills the child with SIGKILL (no destructor runs) and returns the pids.
inline std::vector<pid_t> kill_drover_once_listed(const ScratchDir& dir, const std::string& name, std::size_t count,
                                                  const std::function<void()>& drover) {
  const pid_t child = ::fork();
  if (child < 0) return {};
  if (child == 0) {
    drover();
    ::_exit(0);
  }
  std::vector<pid_t> pids;
  for (int attempt = 0; attempt < 200 && pids.size() < count; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pids.clear();
    std::istringstream in(dir.read(name));
    for (pid_t pid; in >> pid;) pids.push_back(pid);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  return pids;
}

// True when this process has no child left, reaped or not.
inline bool no_children() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD;
}

}  // namespace drover::agent::testing
