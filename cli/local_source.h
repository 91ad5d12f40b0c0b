// The in-process transport between the one scheduler and the local pool:
// local mode is the farm with this WorkSource instead of ZeroMQ.
//
// It also applies the run's stop rules (-x / --maxfail, Ctrl-C) and hands
// each final result to a callback (the terminal reporter). Thread-safety: one
// thread (the pool's loop).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "agent/pool.h"
#include "coordinator/scheduler.h"

namespace drover::cli {

class LocalWorkSource final : public agent::WorkSource {
 public:
  using OnResult = std::function<void(const common::TestResult&)>;

  // `maxfail` 0 means no limit.
  LocalWorkSource(coordinator::Scheduler& scheduler, int slots, int maxfail, OnResult on_result);

  [[nodiscard]] std::vector<agent::WorkLease> request(int credits) override;
  // Long units (estimated over k_lookahead_limit) and the queue's last pieces (the
  // scheduler's tail) are not given as lookahead: they wait for a worker that needs
  // work, so one worker cannot hoard them while another idles.
  [[nodiscard]] std::vector<agent::WorkLease> request_lookahead(int credits) override;
  // Behind a test estimated longer than the next unit, before the tail: the queue's last
  // (shortest) unit, so the long units go to workers that free sooner (LPT) rather than
  // wait behind a long test.
  [[nodiscard]] std::vector<agent::WorkLease> request_successor(int credits, common::TestIndex head) override;
  [[nodiscard]] bool exhausted() override;
  [[nodiscard]] bool stopping() override;
  void completed(common::TestResult result) override;
  void handed_back(std::uint64_t lease, std::vector<common::TestIndex> tests) override;
  // pytest.exit() or KeyboardInterrupt in a test: the whole run stops, as pytest's
  // session does; the test has no result, as in pytest.
  void session_exit(const agent::SessionExit& exit) override;

  // Stop handing out work (Ctrl-C).
  void stop() { m_scheduler.stop(); }
  // True when --maxfail (or -x) was reached.
  [[nodiscard]] bool hit_maxfail() const { return m_hit_maxfail; }
  [[nodiscard]] int failures() const { return m_failures; }
  // The first session exit, when a test ended the run.
  [[nodiscard]] const std::optional<agent::SessionExit>& exit() const { return m_exit; }

  // Tests never run that the scheduler still holds get an error result.
  void fail_remaining(const std::string& message);

 private:
  void carry_out(std::vector<coordinator::Command> commands);

  coordinator::Scheduler& m_scheduler;
  int m_maxfail;
  OnResult m_on_result;
  int m_failures = 0;
  bool m_hit_maxfail = false;
  std::optional<agent::SessionExit> m_exit;
};

}  // namespace drover::cli
