// A warm pool of pytest workers on this machine.
//
// start() launches every worker in parallel (Python started, pytest imported,
// the suite collected) and returns the collection of the first one ready;
// the others must arrive at the same hash. run() then pulls leases from a
// WorkSource (the in-process scheduler locally, the coordinator on a farm),
// feeds workers with correct nextitem order, and streams every finished test
// back. A worker that crashes or times out yields a synthetic result for its
// in-flight test, hands its other queued tests back, and is replaced (bounded
// by max_worker_restart). No worker process survives the Pool.
// Thread-safety: one thread drives a Pool; interrupt() may be called from a
// signal handler or another thread. Workers die with the thread that started
// them (PR_SET_PDEATHSIG), so start() and run() belong on one long-lived thread.
//
// Results a run produces besides pytest's own:
// - crash (signal, os._exit, broken protocol): status error, message
//   "worker crashed (signal 11)" / "worker exited with code N" / "worker broke
//   the protocol", longrepr "worker 'gw0' crashed while running '<nodeid>'" plus
//   the worker's last output lines. Counts against max_worker_restart; past it
//   the slot is retired.
// - timeout (options.timeout > 0): status failed, message "timeout after N s",
//   longrepr the Python stack the worker's faulthandler printed. The worker exits
//   by itself at the timeout; drover kills it 2 s later if it did not. Timeouts
//   do not count against max_worker_restart: the test was at fault, and each
//   timeout consumes a test, so replacements stay bounded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/collection.h"
#include "common/error.h"
#include "common/test_result.h"

namespace drover::agent {

using common::TestIndex;

// How a pool starts its workers: each as a new interpreter (exec), or only the
// first, which forks the others once it collected (fork), or fork only when there
// are more workers than CPUs (automatic: the starts would queue for the CPU).
enum class WorkerStart { automatic, fork, exec };
// "auto", "fork" or "exec"; nullopt for anything else.
[[nodiscard]] std::optional<WorkerStart> parse_worker_start(std::string_view text);

struct PoolOptions {
  std::string python = "python3";        // the user's interpreter
  std::vector<std::string> pytest_args;  // passed to every worker's pytest
  std::filesystem::path worker_path;     // folder holding the drover_worker package
  std::filesystem::path rootdir;         // working directory of the workers
  std::filesystem::path basetemp_root;   // each worker gets basetemp_root/<name> unless the user set one
  int workers = 1;
  double timeout = 0.0;                  // per-test seconds; 0 = none
  int max_worker_restart = -1;           // -1: 4 * workers (pytest-xdist's default)
  std::size_t capture_limit = 1 << 20;   // bytes per captured-output section
  std::string name_prefix = "gw";        // worker names: gw0, gw1, ...
  // A worker shut down so its last test could run (no nextitem in sight) is replaced
  // at once, not when work turns up: a farm agent's next run finds warm workers.
  bool keep_warm = false;
  // fork: start only the first worker as a new interpreter and fork the others
  // from it once it collected: start-up and collection are paid once, and the heap
  // is shared. drover starts the others itself when the first cannot fork (see
  // worker_py/drover_worker/seats.py). Replacements are always started anew.
  WorkerStart worker_start = WorkerStart::automatic;
  // >= 0: each worker stops running its queue after this many of its own tests failed
  // or errored (0: only pytest's own -x/--maxfail), or pytest's limit if stricter, so
  // no test starts behind the failure that reached the run's limit before the source
  // can stop the run (which it must do: every failure a worker counts, it counts too).
  // -1: workers never stop by themselves (a farm agent: the coordinator decides).
  int maxfail = -1;
  // pytest-cov: each worker moves its data file here when its session ends, out of the
  // project, for cli's report_coverage() to combine. Empty: files stay where pytest-cov
  // saves them (a farm agent).
  std::filesystem::path coverage_dir;
  // Seeds Python's `random` in every worker before pytest starts (reseeded from the OS
  // before the first test): what plugins and test modules draw from it while pytest
  // configures and collects (pytest-random-order's default seed, random parametrize
  // values) is the same in every worker, so all collect the same tests in the same order.
  std::optional<std::uint32_t> random_seed;
};

// A test ended pytest's session on its worker (pytest.exit(), KeyboardInterrupt), as it
// ends pytest's whole session. pytest reports no result for that test.
struct SessionExit {
  std::optional<TestIndex> test;  // the test that did it, if one was running
  std::uint64_t lease = 0;        // its lease
  int returncode = 2;             // pytest's exit code: pytest.exit()'s returncode, else 2
  std::string message;            // pytest's words: "_pytest.outcomes.Exit: bye", "KeyboardInterrupt"
  std::string detail;             // lines pytest prints below the message (may be empty)
  std::string worker;             // the worker's name
  std::vector<common::Warning> warnings;  // what the test recorded before (pytest counts them)

  // `first` (the message, as is or ruled) with pytest's detail lines below it, if any.
  [[nodiscard]] std::string with_detail(std::string first) const {
    return detail.empty() ? first : first + "\n" + detail;
  }
};

// The environment a worker runs in: this process's, with the worker on PYTHONPATH.
[[nodiscard]] std::vector<std::string> worker_environment(const PoolOptions& options);

struct Cancellation {
  TestIndex test = 0;
  bool stop_running = false;
  bool operator==(const Cancellation&) const = default;
};

struct WorkLease {
  std::uint64_t id = 0;
  std::vector<TestIndex> tests;  // run in this order
};

// Where a pool gets work and sends results.
class WorkSource {
 public:
  virtual ~WorkSource() = default;
  // Up to `credits` leases; empty when there is nothing to hand out right now.
  // Called often (each loop turn, per worker short of work): must be cheap. A
  // remote source may wait briefly for its reply.
  [[nodiscard]] virtual std::vector<WorkLease> request(int credits) = 0;
  // As request(), for a worker that already has its running test's successor: work it
  // takes only to hide the round trip. A source may keep long units for a worker that
  // needs work instead (a long unit held in lookahead could leave another worker idle).
  [[nodiscard]] virtual std::vector<WorkLease> request_lookahead(int credits) { return request(credits); }
  // As request(), for a worker whose queued test `head` cannot start before its successor
  // is known (pytest's nextitem): what it gets waits behind `head`. A source may give a
  // short unit behind a long test, keeping long units for workers that free sooner.
  [[nodiscard]] virtual std::vector<WorkLease> request_successor(int credits, TestIndex head) {
    (void)head;
    return request(credits);
  }
  // True once request() will never return work again (tests handed back may
  // still make it return work; the pool then starts workers as needed).
  [[nodiscard]] virtual bool exhausted() = 0;
  // True when queued, not yet started tests should be dropped (-x, Ctrl-C).
  [[nodiscard]] virtual bool stopping() = 0;
  // Tests the source wants dropped from workers' queues (speculative copies that
  // lost the race, a cancelled run). Returned once; the pool cancels those not started
  // yet, and with `stop_running` also stops one already running (see k_cancel_grace).
  [[nodiscard]] virtual std::vector<Cancellation> take_cancellations() { return {}; }
  // One finished test, real or synthetic (crash, timeout).
  virtual void completed(common::TestResult result) = 0;
  // Tests of a lease that were not started and never will be on this pool.
  virtual void handed_back(std::uint64_t lease, std::vector<TestIndex> tests) = 0;
  // A test ended its worker's session (the worker exits; its other tests are handed
  // back). The pool neither completes nor hands back `exit.test`: the source accounts
  // for it. By default the run goes on and the test gets an error result naming the exit.
  virtual void session_exit(const SessionExit& exit);
  // Fired while waiting, at least every `poll_interval_ms`, so a remote source can
  // read its socket. Local sources do nothing.
  virtual void poll() {}
  [[nodiscard]] virtual int poll_interval_ms() const { return 1000; }
};

class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();  // kills and reaps every worker still running
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Launches the workers and waits for the first collection. Errors: the
  // interpreter is missing or lacks pytest (ErrorCode::worker, one line naming
  // it), pytest rejects the arguments (ErrorCode::usage, pytest's error line),
  // the worker died (ErrorCode::worker, with its last output lines), a worker
  // speaks another protocol (ErrorCode::protocol), workers collected different
  // tests (ErrorCode::collection, naming both hashes), Ctrl-C
  // (ErrorCode::interrupted). Workers still collecting when start() returns are
  // checked against this collection during run().
  [[nodiscard]] common::Result<common::Collection> start();
  // Runs until the source is exhausted (or stopping) and every worker is idle,
  // then shuts the workers down cleanly (session fixtures torn down).
  //
  // Pull: a worker with at most two tests queued behind the running one asks
  // request(1), so the next test is known before the last one must start (see
  // PROTOCOL.md) without the worker waiting for the round trip. When
  // request() gives nothing, an idle worker waits, unless exhausted() says no
  // work will come; a worker whose last queued test waits for a successor is
  // shut down so that test runs (its slot is started again if work turns up).
  // stopping(): queued tests not started are dropped and handed back (a test
  // already committed as the running test's nextitem too: the session ends, as
  // pytest's does on -x), running tests finish, workers shut down. take_cancellations(): cancelled
  // tests are handed back, not reported; a running one with `stop_running` is stopped by
  // killing its worker (if still running k_cancel_grace after its start) and handed back.
  //
  // Errors, each after every unfinished test was handed back and every worker
  // stopped: ErrorCode::interrupted (interrupt()); ErrorCode::collection (a
  // replacement or late worker collected different tests); ErrorCode::worker
  // "maximum crashed workers reached: N" (every slot retired; results already
  // completed stand, the caller fails what is left).
  [[nodiscard]] common::Result<void> run(WorkSource& source);
  // Async-signal-safe: makes run() stop handing out work and kill the workers.
  void interrupt();

  [[nodiscard]] int worker_count() const;
  // The first worker's Python and pytest versions ("3.11.2", "7.2.1"), once start() returned.
  [[nodiscard]] std::string python_version() const;
  [[nodiscard]] std::string pytest_version() const;
  // Warnings pytest recorded outside any test (config and collection time), in the
  // order recorded. Every worker collects and records them: each counts once, as in
  // pytest (as often as the one worker that recorded it most often).
  [[nodiscard]] std::vector<common::Warning> session_warnings() const;
  // True when start() failed because pytest ended without an error and without a
  // session: an informational option (--help, --version, --fixtures, --markers) whose
  // output was for the user. Run pytest in the foreground for it instead.
  [[nodiscard]] bool ended_without_session() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace drover::agent
