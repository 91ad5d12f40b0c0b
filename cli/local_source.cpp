#include "cli/local_source.h"

#include <chrono>

namespace drover::cli {
namespace {

constexpr const char* k_local_agent = "local";

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// The pool's leases among the scheduler's commands (one local agent: no cancels).
std::vector<agent::WorkLease> leases_of(std::vector<coordinator::Command> commands) {
  std::vector<agent::WorkLease> leases;
  for (auto& command : commands) {
    if (auto* assign = std::get_if<coordinator::AssignCommand>(&command)) {
      leases.push_back(agent::WorkLease{assign->lease.id, std::move(assign->lease.tests)});
    }
  }
  return leases;
}

}  // namespace

LocalWorkSource::LocalWorkSource(coordinator::Scheduler& scheduler, int slots, int maxfail, OnResult on_result)
    : m_scheduler(scheduler), m_maxfail(maxfail), m_on_result(std::move(on_result)) {
  m_scheduler.agent_joined(k_local_agent, slots);
}

std::vector<agent::WorkLease> LocalWorkSource::request(int credits) {
  if (m_scheduler.stopped()) return {};
  return leases_of(m_scheduler.request_work(k_local_agent, credits, now_seconds()));
}

std::vector<agent::WorkLease> LocalWorkSource::request_successor(int credits, common::TestIndex head) {
  // Two workers, units of 2.0 s, 1.8 s and 10 x 0.2 s: the first worker's 2 s test cannot
  // start before its successor is known; taking the 1.8 s unit behind it would end that
  // worker at 3.8 s while the other runs out of work at 2 s.
  const auto next = m_scheduler.next_estimate();
  if (credits < 1 || m_scheduler.stopped() || !next || m_scheduler.at_tail() ||
      m_scheduler.estimate_of(head) <= *next) {
    return request(credits);
  }
  return leases_of(m_scheduler.request_last(k_local_agent, now_seconds()));
}

std::vector<agent::WorkLease> LocalWorkSource::request_lookahead(int credits) {
  // A unit this long loses under 1% to the round trip of asking for it when needed.
  constexpr double k_lookahead_limit = 0.25;  // seconds
  // The queue's last pieces go to whichever worker frees first: taken ahead, they
  // would wait behind this worker's queue while another worker idles. Asking when
  // needed costs a round trip through a pipe (under a millisecond) per piece, more
  // than a tail of tiny tests could be unbalanced by.
  constexpr double k_tail_lookahead_limit = 0.005;  // seconds
  const auto estimate = m_scheduler.next_estimate();
  if (!estimate) return request(credits);  // nothing queued: maybe a tail lease to take over
  if (*estimate > k_lookahead_limit) return {};
  if (*estimate > k_tail_lookahead_limit && m_scheduler.at_tail()) return {};
  return request(credits);
}

bool LocalWorkSource::exhausted() { return m_scheduler.stopped() || m_scheduler.queued_tests() == 0; }

bool LocalWorkSource::stopping() { return m_scheduler.stopped(); }

void LocalWorkSource::completed(common::TestResult result) {
  carry_out(m_scheduler.result(k_local_agent, std::move(result)));
}

void LocalWorkSource::handed_back(std::uint64_t lease, std::vector<common::TestIndex> tests) {
  carry_out(m_scheduler.hand_back(k_local_agent, lease, tests));
}

void LocalWorkSource::session_exit(const agent::SessionExit& exit) {
  if (!m_exit) m_exit = exit;
  m_scheduler.stop();
  // Back to the stopped scheduler: not run, hence not reported.
  if (exit.test) carry_out(m_scheduler.hand_back(k_local_agent, exit.lease, {*exit.test}));
}

void LocalWorkSource::fail_remaining(const std::string& message) {
  carry_out(m_scheduler.fail_remaining(message));
}

void LocalWorkSource::carry_out(std::vector<coordinator::Command> commands) {
  for (auto& command : commands) {
    auto* final_result = std::get_if<coordinator::FinalCommand>(&command);
    if (final_result == nullptr) continue;  // one local agent: no cancels, no reassignments
    const common::Status status = final_result->result.final_status();
    if (status == common::Status::failed || status == common::Status::error) {
      ++m_failures;
      if (m_maxfail > 0 && m_failures >= m_maxfail && !m_hit_maxfail) {
        m_hit_maxfail = true;
        m_scheduler.stop();
      }
    }
    m_on_result(final_result->result);
  }
}

}  // namespace drover::cli
