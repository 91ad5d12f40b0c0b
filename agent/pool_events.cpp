// Pool::Impl's reactions to what workers say and to their exits.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include "agent/pool_impl.h"

namespace drover::agent {
namespace {

using common::ErrorCode;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// pytest's own words for a usage error (exit code 4), without the "ERROR: " pytest
// puts first (drover's print_error adds it): argparse's "usage:" and "error:" lines,
// else pytest's "ERROR: ..." line, else everything it printed.
std::string usage_message(const std::string& tail) {
  const auto lines = split_lines(tail);
  constexpr std::string_view k_prefix = "ERROR: ";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(": error: ") == std::string::npos) continue;
    if (i > 0 && lines[i - 1].starts_with("ERROR: usage:")) return lines[i - 1].substr(k_prefix.size()) + "\n" + lines[i];
    return lines[i];
  }
  for (const std::string& line : lines) {
    if (line.starts_with(k_prefix) && !line.starts_with("ERROR: usage:")) return line.substr(k_prefix.size());
  }
  return tail.empty() ? "pytest: usage error" : tail;
}

std::string mismatch_message(const std::string& first_name, const common::Collection& first,
                             const std::string& second_name, const common::Collection& second) {
  std::string message = "different tests were collected between " + first_name + " and " + second_name +
                        ": " + std::to_string(first.items.size()) + " tests (hash " + first.hash + ") vs " +
                        std::to_string(second.items.size()) + " tests (hash " + second.hash + ")";
  const std::size_t common_size = std::min(first.items.size(), second.items.size());
  for (std::size_t i = 0; i <= common_size; ++i) {
    const std::string a = i < first.items.size() ? first.items[i].nodeid : "(end)";
    const std::string b = i < second.items.size() ? second.items[i].nodeid : "(end)";
    if (a != b) return message + "; first difference at #" + std::to_string(i) + ": " + a + " vs " + b;
  }
  return message;
}

// Identical warnings merge into one entry; past k_max_test_warnings different ones the
// rest are only counted, in one last entry.
void add_test_warning(std::vector<common::Warning>& warnings, const common::Warning& warning) {
  const auto same = std::find_if(warnings.begin(), warnings.end(), [&](const common::Warning& kept) {
    return kept.message == warning.message && kept.location == warning.location;
  });
  if (same != warnings.end()) {
    same->count += warning.count;
  } else if (warnings.size() < k_max_test_warnings) {
    warnings.push_back(warning);
  } else {
    if (warnings.size() == k_max_test_warnings) warnings.push_back({warning.location, k_more_warnings_text, 0});
    warnings.back().count += warning.count;
  }
}

}  // namespace

std::string Pool::Impl::nodeid(TestIndex index) const {
  if (collection && index < collection->items.size()) return collection->items[index].nodeid;
  std::string text = "#";  // built in two steps: g++ 12 warns (falsely) on "#" + std::string
  text += std::to_string(index);
  return text;
}

void Pool::Impl::on_line(Worker& worker, const std::string& line) {
  auto message = decode_worker_message(line);
  if (!message) return protocol_failure(worker, message.error().message);
  on_message(worker, *message);
}

void Pool::Impl::protocol_failure(Worker& worker, const std::string& why) {
  if (worker.deliberate) {
    // Being stopped already (Ctrl-C, abort): its queue was taken back, so the report of a
    // test it kept running (it ignored SIGINT/SIGTERM) is late, not a broken protocol.
    log->debug("{}: {} while stopping", worker.name, why);
    worker.process->signal(SIGKILL);
    return;
  }
  log->error("{}: {}", worker.name, why);
  worker.failure = why;
  worker.state = WorkerState::stopping;
  worker.process->signal(SIGKILL);
}

void Pool::Impl::on_message(Worker& worker, const WorkerMessage& message) {
  const auto expect = [&](bool ok, const char* type) {
    if (!ok) protocol_failure(worker, std::string("worker sent an unexpected `") + type + "` message");
    return ok;
  };
  const bool running_state = worker.state == WorkerState::ready || worker.state == WorkerState::busy ||
                             worker.state == WorkerState::stopping;
  if (const auto* hello = std::get_if<HelloMessage>(&message)) {
    if (worker.process->unborn()) {
      if (hello->pid <= 0 || hello->pid > std::numeric_limits<pid_t>::max()) {
        return protocol_failure(worker, "a forked worker sent no valid pid in its hello");
      }
      worker.process->adopt(static_cast<pid_t>(hello->pid));
      log->debug("{}: forked as pid {}", worker.name, hello->pid);
    }
    if (!expect(worker.state == WorkerState::starting, "hello")) return;
    if (hello->protocol != k_worker_protocol) {
      return protocol_failure(worker, "the worker speaks protocol " + std::to_string(hello->protocol) +
                                          "; this drover speaks " + std::to_string(k_worker_protocol));
    }
    const auto has = [&](const char* feature) {
      return std::find(hello->features.begin(), hello->features.end(), feature) != hello->features.end();
    };
    worker.can_cancel = has("cancel");
    worker.can_stop = has("stop");
    worker.state = WorkerState::collecting;
    if (pytest_version.empty()) {
      python_version = hello->python;
      pytest_version = hello->pytest;
    }
    log->debug("{}: pid {}, Python {}, pytest {}", worker.name, hello->pid, hello->python, hello->pytest);
  } else if (const auto* fatal = std::get_if<FatalMessage>(&message)) {
    worker.fatal = fatal->message;
    log->debug("{}: fatal: {}", worker.name, fatal->message);
  } else if (const auto* collected = std::get_if<CollectedMessage>(&message)) {
    if (!expect(worker.state == WorkerState::collecting, "collected")) return;
    on_collected(worker, collected->collection);
  } else if (const auto* start = std::get_if<StartMessage>(&message)) {
    const auto it = std::find_if(worker.queue.begin(), worker.queue.end(),
                                 [&](const QueuedTest& t) { return t.index == start->index && t.sent; });
    if (!expect(running_state && !worker.running && it != worker.queue.end(), "start")) return;
    worker.running = start->index;
    worker.running_since = Clock::now();
    worker.phases.clear();
    worker.warnings.clear();
  } else if (const auto* report = std::get_if<ReportMessage>(&message)) {
    if (!expect(worker.running == report->index, "report")) return;
    worker.phases.push_back(report->report);
  } else if (const auto* finished = std::get_if<FinishedMessage>(&message)) {
    if (!expect(worker.running == finished->index, "finished")) return;
    on_finished(worker, finished->index);
  } else if (std::get_if<ByeMessage>(&message)) {
    if (!expect(worker.shutdown_sent, "bye")) return;
    worker.bye = true;
    worker.kill_at = Clock::now() + k_exit_after_bye;
  } else if (const auto* cancelled = std::get_if<CancelledMessage>(&message)) {
    if (!expect(worker.cancels_in_flight > 0, "cancelled")) return;
    on_cancelled(worker, cancelled->indices);
  } else if (const auto* warned = std::get_if<WarningMessage>(&message)) {
    on_warning(worker, *warned);
  } else if (const auto* exit = std::get_if<ExitMessage>(&message)) {
    if (!expect(worker.collected && !worker.session_exited, "exit")) return;
    on_session_exit(worker, *exit);
  } else if (std::get_if<NoSessionMessage>(&message)) {
    if (!expect(!worker.collected, "nosession")) return;
    no_session = true;
  } else if (const auto* unknown = std::get_if<UnknownMessage>(&message)) {
    log->debug("{}: ignoring unknown message type \"{}\"", worker.name, unknown->type);
  }
}

void Pool::Impl::on_collected(Worker& worker, const common::Collection& collected) {
  if (!collection) {
    collection = collected;
    reference_worker = worker.name;
  } else if (collected.hash != collection->hash) {
    // A replacement in the reference worker's own slot has its name: "gw0's replacement".
    const std::string name = worker.name == reference_worker ? worker.name + "'s replacement" : worker.name;
    log->error("{}: collection differs from {}'s", name, reference_worker);
    failure = common::Error{ErrorCode::collection, mismatch_message(reference_worker, *collection, name, collected)};
    worker.deliberate = true;
    worker.state = WorkerState::stopping;
    worker.process->signal(SIGKILL);
    return;
  }
  worker.collected = true;
  worker.state = WorkerState::ready;
  log->debug("{}: collected {} tests", worker.name, collected.items.size());
  if (source) send_unsent(worker);
}

void Pool::Impl::on_warning(Worker& worker, const WarningMessage& warned) {
  if (worker.running) return add_test_warning(worker.warnings, warned.warning);
  if (worker.collected) {
    // The worker sends none between tests, nor after its run loop (pytest shows those in
    // no summary either); a newer worker might.
    log->debug("{}: ignoring a warning recorded outside a test after collection", worker.name);
    return;
  }
  // Every worker collects the suite and records the same warnings, a forked one none.
  const std::pair key{warned.warning.location, warned.warning.message};
  const int seen = ++worker.early_warnings[key];
  int& kept = session_warning_counts[key];
  if (seen <= kept) return;
  kept = seen;
  session_warnings.push_back(warned.warning);
}

void Pool::Impl::on_finished(Worker& worker, TestIndex index) {
  common::TestResult result;
  result.index = index;
  result.worker = worker.name;
  result.phases = std::exchange(worker.phases, {});
  result.warnings = std::exchange(worker.warnings, {});
  const auto it = std::find_if(worker.queue.begin(), worker.queue.end(),
                               [&](const QueuedTest& t) { return t.index == index; });
  if (it != worker.queue.end()) worker.queue.erase(it);
  worker.running.reset();
  if (worker.queue.empty()) {
    if (worker.state == WorkerState::busy) worker.state = WorkerState::ready;
    if (worker.state == WorkerState::stopping && worker.shutdown_sent && !worker.kill_at) {
      worker.kill_at = Clock::now() + k_teardown_limit;
    }
  }
  if (source) source->completed(std::move(result));
}

void Pool::Impl::on_cancelled(Worker& worker, const std::vector<TestIndex>& indices) {
  std::vector<QueuedTest> dropped;
  for (TestIndex index : indices) {
    const auto it = std::find_if(worker.queue.begin(), worker.queue.end(), [&](const QueuedTest& t) {
      return t.index == index && worker.running != index;
    });
    if (it == worker.queue.end()) continue;
    dropped.push_back(*it);
    worker.queue.erase(it);
  }
  --worker.cancels_in_flight;
  if (worker.queue.empty() && worker.state == WorkerState::busy) worker.state = WorkerState::ready;
  give_back(dropped);
}

void Pool::Impl::on_session_exit(Worker& worker, const ExitMessage& exit) {
  log->debug("{}: the session ended: {}", worker.name, exit.message);
  const bool in_running = worker.running && (!exit.index || *exit.index == *worker.running);
  if (in_running && std::ranges::any_of(worker.phases, [](const common::PhaseReport& phase) {
        return phase.when == common::Phase::call;
      })) {
    // Ended in its teardown: its call ran and pytest reports it (1 passed, in its JUnit).
    on_finished(worker, *worker.running);
  }
  worker.session_exited = true;
  worker.state = WorkerState::stopping;  // no more work: it tears down and exits
  worker.kill_at = Clock::now() + k_teardown_limit;
  SessionExit event{std::nullopt, 0, exit.returncode, exit.message, exit.detail, worker.name, {}};
  if (worker.running && in_running) {
    const auto it = std::find_if(worker.queue.begin(), worker.queue.end(),
                                 [&](const QueuedTest& t) { return t.index == *worker.running; });
    event.test = *worker.running;
    if (it != worker.queue.end()) {
      event.lease = it->lease;
      worker.queue.erase(it);
    }
    worker.running.reset();
    worker.phases.clear();
    event.warnings = std::exchange(worker.warnings, {});
  }
  if (source) source->session_exit(event);
}

void Pool::Impl::give_back(const std::vector<QueuedTest>& tests) {
  if (tests.empty() || !source) return;
  std::vector<std::pair<std::uint64_t, std::vector<TestIndex>>> by_lease;  // in first-seen order
  for (const QueuedTest& test : tests) {
    auto it = std::find_if(by_lease.begin(), by_lease.end(), [&](const auto& entry) { return entry.first == test.lease; });
    if (it == by_lease.end()) it = by_lease.insert(by_lease.end(), {test.lease, {}});
    it->second.push_back(test.index);
  }
  for (auto& [lease, indices] : by_lease) source->handed_back(lease, std::move(indices));
}

void Pool::Impl::hand_back(Worker& worker, bool include_running) {
  std::vector<QueuedTest> back;
  std::deque<QueuedTest> kept;
  for (const QueuedTest& test : worker.queue) {
    if (!include_running && worker.running == test.index) {
      kept.push_back(test);
    } else {
      back.push_back(test);
    }
  }
  worker.queue = std::move(kept);
  if (include_running) worker.running.reset();
  give_back(back);
}

common::Error Pool::Impl::start_error(const Worker& worker, const ExitStatus& status) const {
  const std::string tail = worker.process->output().text();
  if (!worker.failure.empty()) return {ErrorCode::protocol, worker.failure};
  if (no_session) return {ErrorCode::worker, "pytest ended without running a session (exit code " +
                                                 std::to_string(status.code) + ")"};
  if (!status.signaled && status.code == 4) return {ErrorCode::usage, usage_message(tail)};
  if (!worker.fatal.empty()) {
    const std::string first = split_lines(worker.fatal).front();
    // An interpreter without pytest is the user's choice to fix (--python): exit 4.
    return {first.starts_with("pytest is not installed for") ? ErrorCode::usage : ErrorCode::worker, first};
  }
  const auto lines = split_lines(tail);
  // Python's own one-line complaints ("python3: No module named drover_worker").
  if (lines.size() == 1) return {ErrorCode::worker, lines.front()};
  std::string message = "worker " + worker.name + " (" + options.python + ") " + describe(status) +
                        " before collecting tests";
  if (!tail.empty()) message += ":\n" + tail;
  return {ErrorCode::worker, message};
}

common::TestResult Pool::Impl::lost_test_result(const Worker& worker, const ExitStatus& status) const {
  const TestIndex index = *worker.running;
  const double elapsed = std::chrono::duration<double>(Clock::now() - worker.running_since).count();
  const OutputTail& output = worker.process->output();
  if (worker.timed_out) {
    std::string stack = output.from_last("Timeout (");
    if (stack.empty()) {
      stack = "Timeout: worker '" + worker.name + "' was killed after " + seconds_text(elapsed) + " s running '" +
              nodeid(index) + "'";
      if (const std::string tail = output.text(); !tail.empty()) stack += "\n" + tail;
    }
    return common::synthetic_result(index, common::Status::failed, "timeout after " + seconds_text(options.timeout) + " s",
                                    std::move(stack), worker.name);
  }
  std::string longrepr = "worker '" + worker.name + "' crashed while running '" + nodeid(index) + "'";
  if (!worker.failure.empty()) longrepr += "\n" + worker.failure;
  if (!worker.fatal.empty()) longrepr += "\n" + worker.fatal;
  if (const std::string tail = output.text(); !tail.empty()) longrepr += "\n" + tail;
  const std::string message = worker.failure.empty() ? "worker " + describe(status) : "worker broke the protocol";
  return common::synthetic_result(index, common::Status::error, message, std::move(longrepr), worker.name);
}

void Pool::Impl::on_exit(Worker& worker) {
  if (worker.process->unborn()) {
    // Its seat closed without a hello: the first worker did not fork it (it
    // could not, or died first). Started the usual way unless the pool is ending.
    worker.process.reset();
    worker.state = WorkerState::dead;
    if (failure || interrupted.load() || worker.deliberate || worker.retired) return;
    log->debug("{}: not forked; starting it", worker.name);
    if (auto spawned = spawn(worker); !spawned) {
      log->error("{}: cannot start: {}", worker.name, spawned.error().message);
      worker.retired = true;
    }
    return;
  }
  const ExitStatus status = *worker.process->exit_status();
  const bool clean = worker.bye;
  std::string what = describe(status);  // for the log line
  if (!worker.collected) {
    if (!collection && !worker.deliberate && !failure) failure = start_error(worker, status);
  } else if (worker.running && worker.cancel_killed && worker.running == worker.cancelled_running) {
    what = "killed: its test " + nodeid(*worker.running) + " was cancelled";  // hand_back() returns it
  } else if (worker.running) {
    const TestIndex index = *worker.running;
    // The worker's faulthandler exits on its own right at the timeout; drover
    // kills it only when that did not happen.
    const double elapsed = std::chrono::duration<double>(Clock::now() - worker.running_since).count();
    if (options.timeout > 0 && elapsed >= options.timeout - 0.05) worker.timed_out = true;
    common::TestResult lost = lost_test_result(worker, status);
    what = lost.phases.front().message + " while running " + nodeid(index);
    worker.queue.erase(std::find_if(worker.queue.begin(), worker.queue.end(),
                                    [&](const QueuedTest& t) { return t.index == index; }));
    worker.running.reset();
    if (source) source->completed(std::move(lost));
  }
  hand_back(worker, true);
  if (!clean) launcher->signal_group(worker.process->pid(), SIGKILL);  // the test's leftovers
  const bool crashed =
      !clean && !worker.deliberate && !worker.session_exited && (collection.has_value() || worker.collected);
  if (!crashed) {
    log->debug("{}: {}", worker.name, what);
    worker.wants_respawn = worker.drained && options.keep_warm;
  } else if (worker.cancel_killed) {
    log->debug("{}: {}", worker.name, what);
    worker.wants_respawn = !worker.shutdown_sent;
  } else if (worker.timed_out) {
    // The test's fault, not the worker's: not counted against the restart limit.
    log->warn("{}: {}", worker.name, what);
    worker.wants_respawn = !worker.shutdown_sent;
  } else if (++crashes > max_restarts) {
    log->warn("{}: {}; not restarted: maximum crashed workers reached: {}", worker.name, what, max_restarts);
    worker.retired = true;
  } else {
    log->warn("{}: {}; restart {} of {}", worker.name, what, crashes, max_restarts);
    // A worker shutting down had nothing left to do: its slot starts again on demand.
    worker.wants_respawn = !worker.shutdown_sent;
  }
  worker.process.reset();
  worker.state = WorkerState::dead;
  if (forking) (void)reap_strays();  // see ~Impl
}

}  // namespace drover::agent
