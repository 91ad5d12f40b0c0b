// The inside of Pool (agent/pool.h): the worker state machine and the poll loop.
// Private to the agent library; split over pool.cpp (lifecycle, loop, timers)
// and pool_events.cpp (protocol messages, exits, results).
//
// Worker states: starting (launched, no hello yet) -> collecting (hello seen)
// -> ready (collected, same hash, idle) <-> busy (tests queued) -> stopping
// (shutdown sent, or killed) -> dead (no process). A dead slot is respawned
// eagerly after a crash or timeout while the restart budget allows, or on
// demand when the source has work for it ("parked" after a clean shutdown).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/pool.h"
#include "agent/process.h"
#include "agent/worker_messages.h"
#include "agent/worker_process.h"

namespace drover::agent {

using Clock = std::chrono::steady_clock;

// How long a worker gets for each way of ending before it is killed.
inline constexpr auto k_timeout_grace = std::chrono::seconds(2);      // past --timeout: faulthandler goes first
inline constexpr auto k_teardown_limit = std::chrono::seconds(120);   // session teardown after shutdown
inline constexpr auto k_exit_after_bye = std::chrono::seconds(5);     // interpreter exit after bye
inline constexpr auto k_terminate_grace = std::chrono::seconds(2);    // SIGTERM -> SIGKILL
inline constexpr auto k_closed_pipe_limit = std::chrono::seconds(5);  // message pipe closed, still alive
// A cancelled test still running this long after its cancel (or its start) is stopped
// by killing its worker: a short test ends on its own, cheaper than a new worker.
inline constexpr auto k_cancel_grace = std::chrono::seconds(1);

// Distinct warnings kept per test; the rest are counted in one more entry with
// k_more_warnings_text (a test warning in a loop must not fill the agent's memory).
inline constexpr std::size_t k_max_test_warnings = 1000;
inline constexpr const char* k_more_warnings_text =
    "[drover: this test recorded more than 1000 different warnings; the others are counted, not shown]\n";

// "2", "0.5": seconds as people write them.
[[nodiscard]] std::string seconds_text(double seconds);

enum class WorkerState { starting, collecting, ready, busy, stopping, dead };

struct QueuedTest {
  TestIndex index = 0;
  std::uint64_t lease = 0;
  bool sent = false;        // part of a `run` command already
  bool cancel_asked = false;  // part of a `cancel` already: asked once, never again
};

struct Worker {
  int slot = 0;
  std::string name;
  WorkerState state = WorkerState::dead;
  std::unique_ptr<WorkerProcess> process;
  std::deque<QueuedTest> queue;  // unfinished tests in run order, the running one included
  std::optional<TestIndex> running;
  Clock::time_point running_since;
  std::vector<common::PhaseReport> phases;  // of the running test
  std::vector<common::Warning> warnings;    // of the running test
  // Warnings recorded before its collection, counted by (location, message).
  std::map<std::pair<std::string, std::string>, int> early_warnings;
  bool collected = false;
  bool can_cancel = false;
  bool can_stop = false;        // understands `stop` (hello features)
  bool stop_sent = false;
  bool session_exited = false;  // sent `exit`: a test ended its session
  int cancels_in_flight = 0;
  bool bye = false;
  bool shutdown_sent = false;
  bool deliberate = false;  // drover killed it on purpose (stopping, abort): not a crash
  bool timed_out = false;   // drover killed it for the running test's timeout
  std::optional<TestIndex> cancelled_running;  // the running test was cancelled (see k_cancel_grace)
  Clock::time_point cancel_kill_at;
  bool cancel_killed = false;  // drover killed it for that: the test goes back, not a crash
  std::string failure;      // why drover killed it (protocol error), "" otherwise
  std::string fatal;        // the worker's own `fatal` message
  std::optional<Clock::time_point> kill_at;       // SIGKILL then
  std::optional<Clock::time_point> closed_since;  // message pipe closed, process still alive
  bool retired = false;         // restart budget spent: never respawned
  bool wants_respawn = false;   // replace it as soon as the loop gets to it
  bool drained = false;         // shut down with work in its queue, for lack of a nextitem
};

struct Pool::Impl {
  explicit Impl(PoolOptions pool_options);
  ~Impl();  // waits for seats still being forked, so those workers can be killed too
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  PoolOptions options;
  std::unique_ptr<ProcessLauncher> launcher;
  std::shared_ptr<spdlog::logger> log;
  std::vector<Worker> workers;  // one per slot, fixed size
  std::optional<common::Collection> collection;
  std::string python_version;  // from the first worker's hello
  std::string pytest_version;
  std::string reference_worker;  // whose collection the others are compared with
  int crashes = 0;
  int max_restarts = 0;
  bool started = false;
  UniqueFd wake_read;
  UniqueFd wake_write;
  std::atomic<bool> interrupted{false};
  WorkSource* source = nullptr;         // set during run()
  std::optional<common::Error> failure;  // ends start()/run() with this error
  bool no_session = false;  // a worker's pytest ended without a session (Pool::ended_without_session)
  bool forking = false;  // the first worker forks the others (options.worker_start)
  std::optional<SubreaperScope> subreaper;  // while forked workers may still turn up
  std::vector<common::Warning> session_warnings;  // see Pool::session_warnings()
  std::map<std::pair<std::string, std::string>, int> session_warning_counts;

  // pool.cpp
  [[nodiscard]] common::Result<void> spawn(Worker& worker);
  // Starts `first`, which forks one worker per seat for `others` once it collected.
  [[nodiscard]] common::Result<void> spawn_forking(Worker& first, std::span<Worker> others);
  void install(Worker& worker, ChildProcess child);
  [[nodiscard]] LaunchSpec launch_spec(const Worker& worker) const;
  [[nodiscard]] std::string basetemp(const Worker& worker) const;
  void pump(int timeout_ms);
  void check_timers(Clock::time_point now);
  [[nodiscard]] int wait_ms(Clock::time_point now, Clock::time_point next_source_poll) const;
  void step(Worker& worker, bool stopping);
  void stop_worker(Worker& worker);
  void shutdown(Worker& worker);
  void enqueue(Worker& worker, const std::vector<WorkLease>& leases);
  void send_unsent(Worker& worker);
  void apply_cancellations(const std::vector<Cancellation>& cancellations);
  [[nodiscard]] common::Error abort_all(common::Error error, bool hand_back);
  [[nodiscard]] bool any_alive() const;
  [[nodiscard]] bool any_unborn() const;

  // pool_events.cpp
  void on_line(Worker& worker, const std::string& line);
  void on_message(Worker& worker, const WorkerMessage& message);
  void on_collected(Worker& worker, const common::Collection& collected);
  void on_finished(Worker& worker, TestIndex index);
  void on_cancelled(Worker& worker, const std::vector<TestIndex>& indices);
  void on_warning(Worker& worker, const WarningMessage& warned);
  void on_session_exit(Worker& worker, const ExitMessage& exit);
  void on_exit(Worker& worker);
  void protocol_failure(Worker& worker, const std::string& why);
  // Hands tests back to the source, grouped by lease; removes them from the queue.
  void hand_back(Worker& worker, bool include_running);
  void give_back(const std::vector<QueuedTest>& tests);
  [[nodiscard]] common::Error start_error(const Worker& worker, const ExitStatus& status) const;
  [[nodiscard]] common::TestResult lost_test_result(const Worker& worker, const ExitStatus& status) const;
  [[nodiscard]] std::string nodeid(TestIndex index) const;
};

[[nodiscard]] std::shared_ptr<spdlog::logger> agent_logger();

}  // namespace drover::agent
