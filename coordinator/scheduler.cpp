#include "coordinator/scheduler.h"

#include <algorithm>
#include <utility>

namespace drover::coordinator {

Scheduler::Scheduler(std::vector<common::WorkUnit> units, SchedulerOptions options)
    : m_options(options) {
  for (common::WorkUnit& unit : units) {
    const size_t group = m_groups.size();
    m_groups.push_back(unit.group);
    // Each test's estimate (else its share of the unit's): labels units that come back
    // to the queue (hand_back, agent_lost), cuts units at the tail (split_at_tail) and
    // tells when a lease is overdue (speculation).
    const bool per_test = unit.test_estimates.size() == unit.tests.size();
    const double share = unit.tests.empty() ? 0.0 : unit.estimate / static_cast<double>(unit.tests.size());
    std::vector<TestIndex> fresh;
    double estimate = 0.0;
    for (size_t i = 0; i < unit.tests.size(); ++i) {
      const double seconds = per_test ? unit.test_estimates[i] : share;
      // A test listed twice (in two units) is queued once: the first listing wins.
      if (!m_tests.emplace(unit.tests[i], TestInfo{seconds, group}).second) continue;
      m_queued.insert(unit.tests[i]);
      fresh.push_back(unit.tests[i]);
      estimate += seconds;
    }
    if (fresh.empty()) continue;
    unit.tests = std::move(fresh);
    unit.estimate = estimate;
    unit.test_estimates.clear();  // m_tests has them
    m_queue_estimate += unit.estimate;
    m_queue.push_back(std::move(unit));
  }
}

void Scheduler::agent_joined(const AgentId& agent, int slots) { m_agents[agent].slots = slots; }

std::vector<Command> Scheduler::request_work(const AgentId& agent, int credits, double now) {
  std::vector<Command> commands;
  AgentState& state = m_agents[agent];  // an agent that never said hello joins implicitly
  if (m_stopped) return commands;

  while (credits > 0 && !m_queue.empty()) {
    std::vector<TestIndex> tests = pop_unit(false);
    if (tests.empty()) continue;
    split_at_tail(tests);
    commands.push_back(AssignCommand{open_lease(agent, state, std::move(tests), false, now)});
    --credits;
  }

  while (credits > 0 && m_queue.empty()) {
    std::optional<Lease> moved = steal_lease(agent, state, now, commands);
    if (!moved) break;
    commands.push_back(AssignCommand{std::move(*moved)});
    --credits;
  }
  if (m_options.speculate_at_tail) {
    // Copies go to free slots only: a busy agent's lookahead credit is not idle.
    auto has_free_slot = [&] { return state.slots <= 0 || state.leases.size() < static_cast<std::size_t>(state.slots); };
    while (credits > 0 && m_queue.empty() && has_free_slot()) {
      std::optional<Lease> copy = speculative_lease(agent, state, now);
      if (!copy) break;
      commands.push_back(AssignCommand{std::move(*copy)});
      --credits;
    }
  }
  return commands;
}

std::vector<Command> Scheduler::request_last(const AgentId& agent, double now) {
  if (m_stopped || m_queue.size() <= 1 || m_front_is_rest) return request_work(agent, 1, now);
  std::vector<Command> commands;
  AgentState& state = m_agents[agent];
  while (m_queue.size() > 1) {
    std::vector<TestIndex> tests = pop_unit(true);
    if (tests.empty()) continue;
    commands.push_back(AssignCommand{open_lease(agent, state, std::move(tests), false, now)});
    return commands;
  }
  return request_work(agent, 1, now);
}

std::vector<TestIndex> Scheduler::pop_unit(bool back) {
  common::WorkUnit unit = std::move(back ? m_queue.back() : m_queue.front());
  back ? m_queue.pop_back() : m_queue.pop_front();
  m_queue_estimate = m_queue.empty() ? 0.0 : m_queue_estimate - unit.estimate;
  if (!back) m_front_is_rest = false;
  // Tests may have finished while queued (a late result from a lost agent).
  std::vector<TestIndex> tests;
  for (TestIndex test : unit.tests) {
    if (m_queued.erase(test) > 0) tests.push_back(test);
  }
  return tests;
}

std::vector<Command> Scheduler::result(const AgentId& agent, common::TestResult result) {
  std::vector<Command> commands;
  const TestIndex test = result.index;
  if (!m_tests.contains(test)) return commands;  // not part of this run
  // A late copy (speculation, cancelled or lost agent): finishing the test already
  // removed it from every lease, so there is nothing left to do.
  if (m_finished.contains(test)) return commands;
  finish(test, std::move(result), agent, commands);
  return commands;
}

std::vector<Command> Scheduler::hand_back(const AgentId& agent, LeaseId lease,
                                          const std::vector<TestIndex>& tests) {
  std::vector<Command> commands;
  auto agent_it = m_agents.find(agent);
  if (agent_it == m_agents.end()) return commands;
  auto lease_it = agent_it->second.leases.find(lease);
  if (lease_it == agent_it->second.leases.end()) return commands;

  std::vector<TestIndex> requeue;
  for (TestIndex test : tests) {
    if (!remove_pending(lease_it->second, test)) continue;
    drop_holder(test, agent, lease);
    if (!m_finished.contains(test) && !m_holders.contains(test)) requeue.push_back(test);
  }
  if (lease_it->second.pending.empty()) agent_it->second.leases.erase(lease_it);
  requeue_front(std::move(requeue));
  return commands;
}

std::vector<Command> Scheduler::agent_lost(const AgentId& agent, const std::string& reason) {
  std::vector<Command> commands;
  auto agent_it = m_agents.find(agent);
  if (agent_it == m_agents.end()) return commands;
  std::map<LeaseId, LeaseState> leases = std::move(agent_it->second.leases);
  m_agents.erase(agent_it);

  // Requeued leases go to the front in their original order: oldest lease first.
  std::vector<std::vector<TestIndex>> requeue;
  for (auto& [id, lease] : leases) {
    std::vector<TestIndex> back;
    // The agent runs a lease in order and reports each test as it finishes, so only
    // the first pending test can have been in flight; the others never started there
    // and go back to the queue without counting a loss.
    bool first = true;
    for (TestIndex test : lease.pending) {
      drop_holder(test, agent, id);
      if (m_finished.contains(test)) continue;
      const bool in_flight = std::exchange(first, false);
      if (!in_flight) {
        if (!m_holders.contains(test)) back.push_back(test);
        continue;
      }
      std::vector<AgentId>& lost_with = m_lost_with[test];
      lost_with.push_back(agent);
      if (static_cast<int>(lost_with.size()) >= m_options.max_losses) {
        std::string message = "lost with agent " + agent;
        std::string longrepr = "drover: test lost with " + std::to_string(lost_with.size()) +
                               " agents (";
        for (size_t i = 0; i < lost_with.size(); ++i) {
          longrepr += (i > 0 ? ", " : "") + lost_with[i];
        }
        longrepr += "); last: " + reason;
        finish(test,
               common::synthetic_result(test, common::Status::error, std::move(message),
                                        std::move(longrepr), agent),
               agent, commands);
      } else if (!m_holders.contains(test)) {
        back.push_back(test);  // no other copy is running: it must run again
      }
    }
    requeue.push_back(std::move(back));
  }
  for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) requeue_front(std::move(*it));
  return commands;
}

void Scheduler::stop() { m_stopped = true; }

std::vector<Command> Scheduler::fail_remaining(const std::string& message) {
  std::vector<Command> commands;
  // m_queued is ordered: errors come out in collection order.
  const std::set<TestIndex> queued = std::move(m_queued);
  m_queued.clear();
  m_queue.clear();
  m_queue_estimate = 0.0;
  m_front_is_rest = false;
  for (TestIndex test : queued) {
    m_finished.insert(test);
    commands.push_back(FinalCommand{common::synthetic_result(test, common::Status::error, message, message)});
  }
  return commands;
}

std::vector<Command> Scheduler::fail_unfinished(const std::string& message) {
  std::vector<Command> commands = fail_remaining(message);
  std::set<TestIndex> leased;
  for (const auto& [test, holders] : m_holders) leased.insert(test);
  for (TestIndex test : leased) {
    finish(test, common::synthetic_result(test, common::Status::error, message, message), AgentId{},
           commands);
  }
  return commands;
}

bool Scheduler::done() const { return m_queued.empty() && m_holders.empty(); }

size_t Scheduler::queued_tests() const { return m_queued.size(); }

std::optional<double> Scheduler::next_estimate() const {
  if (m_queue.empty()) return std::nullopt;
  return m_queue.front().estimate;
}

bool Scheduler::at_tail() const {
  if (m_queue.empty()) return false;
  const double behind = m_queue_estimate - m_queue.front().estimate;
  return cut_at_tail(m_queue.front().estimate, m_queue.front().tests.size(), behind);
}

double Scheduler::estimate_of(TestIndex test) const {
  const auto it = m_tests.find(test);
  return it == m_tests.end() ? 0.0 : it->second.estimate;
}

bool Scheduler::cut_at_tail(double unit, size_t tests, double behind) const {
  int slots = 0;
  for (const auto& [id, agent] : m_agents) slots += std::max(0, agent.slots);
  return slots >= 2 && tests >= 2 && behind < unit * (slots - 1);
}

size_t Scheduler::leased_tests() const { return m_holders.size(); }

bool Scheduler::holds(const AgentId& agent, TestIndex test) const {
  auto holders = m_holders.find(test);
  return holders != m_holders.end() &&
         std::any_of(holders->second.begin(), holders->second.end(),
                     [&](const auto& holder) { return holder.first == agent; });
}

// --- internals -------------------------------------------------------------

Lease Scheduler::open_lease(const AgentId& agent, AgentState& state, std::vector<TestIndex> tests,
                            bool speculative, double now) {
  Lease lease{m_next_lease++, agent, std::move(tests), speculative};
  for (TestIndex test : lease.tests) m_holders[test].emplace(agent, lease.id);
  state.leases.emplace(lease.id, LeaseState{lease, lease.tests, now});
  return lease;
}

void Scheduler::split_at_tail(std::vector<TestIndex>& tests) {
  // At the tail the work queued behind a unit cannot keep the other slots busy while
  // it runs: hand out its first half, by the tests' estimates, and put the rest back
  // at the queue front. The cut keeps collection order (a worker that gets both parts
  // runs the module in pytest's order, order-dependent tests included), and a module cut
  // this way may set its fixtures up on two workers, never twice on one: the rest is the
  // very next lease anyone gets, so it either follows the first part on the same worker
  // or starts on another.
  double unit = 0.0;
  for (TestIndex test : tests) unit += m_tests.at(test).estimate;
  if (!cut_at_tail(unit, tests.size(), m_queue_estimate)) return;
  // The first tests up to half the unit's estimate: at least one, never all.
  std::size_t first = 0;
  double taken = 0.0;
  while (first + 1 < tests.size() && (first == 0 || taken < unit / 2)) {
    taken += m_tests.at(tests[first]).estimate;
    ++first;
  }
  std::vector<TestIndex> rest(tests.begin() + static_cast<std::ptrdiff_t>(first), tests.end());
  tests.resize(first);
  requeue_front(std::move(rest));
  m_front_is_rest = true;
}

std::optional<Lease> Scheduler::steal_lease(const AgentId& agent, AgentState& state, double now,
                                            std::vector<Command>& commands) {
  // An agent holding more leases than slots has its newest ones waiting behind running
  // work (lookahead, so its workers never starve). Stale estimates can leave such a
  // lease waiting while another agent idles: it moves, untouched, to the idle agent.
  // Only a free slot steals, never a lookahead credit: leases then never go back and forth.
  if (state.slots <= 0 || state.leases.size() >= static_cast<std::size_t>(state.slots)) return std::nullopt;
  AgentId holder;
  const LeaseState* newest = nullptr;
  for (const auto& [other, other_state] : m_agents) {
    if (other == agent || other_state.slots <= 0 ||
        other_state.leases.size() <= static_cast<std::size_t>(other_state.slots)) {
      continue;
    }
    for (const auto& [id, lease] : other_state.leases) {
      if (lease.lease.speculative) continue;
      if (newest == nullptr || lease.started > newest->started ||
          (lease.started == newest->started && lease.lease.id > newest->lease.id)) {
        newest = &lease;
        holder = other;
      }
    }
  }
  if (newest == nullptr) return std::nullopt;
  const LeaseId id = newest->lease.id;
  std::vector<TestIndex> tests = newest->pending;
  AgentState& holder_state = m_agents[holder];
  for (TestIndex test : tests) drop_holder(test, holder, id);
  holder_state.leases.erase(id);
  commands.push_back(CancelCommand{holder, tests});
  return open_lease(agent, state, std::move(tests), false, now);
}

std::optional<Lease> Scheduler::speculative_lease(const AgentId& agent, AgentState& state,
                                                  double now) {
  // The straggler: the oldest lease (earliest start, then lowest id) of another
  // agent that still has tests never copied and has been out longer than its
  // estimate. Its remaining tests are copied whole: which of them already started
  // is unknown here. Without the age rule a run with no more units than credits
  // would have every test copied the moment it was leased (lookahead empties the
  // queue at once), running the whole run twice instead of its tail.
  const LeaseState* oldest = nullptr;
  for (const auto& [other, other_state] : m_agents) {
    if (other == agent) continue;
    for (const auto& [id, lease] : other_state.leases) {
      const bool eligible = std::any_of(lease.pending.begin(), lease.pending.end(),
                                        [&](TestIndex t) { return !m_speculated.contains(t); });
      if (!eligible || now - lease.started < lease_estimate(lease.lease)) continue;
      if (oldest == nullptr || lease.started < oldest->started ||
          (lease.started == oldest->started && lease.lease.id < oldest->lease.id)) {
        oldest = &lease;
      }
    }
  }
  if (oldest == nullptr) return std::nullopt;
  std::vector<TestIndex> tests;
  for (TestIndex test : oldest->pending) {
    if (m_speculated.insert(test).second) tests.push_back(test);
  }
  return open_lease(agent, state, std::move(tests), true, now);
}

double Scheduler::lease_estimate(const Lease& lease) const {
  double seconds = 0.0;
  for (TestIndex test : lease.tests) seconds += m_tests.at(test).estimate;
  return seconds;
}

void Scheduler::finish(TestIndex test, common::TestResult result, const AgentId& winner,
                       std::vector<Command>& commands) {
  m_finished.insert(test);
  m_queued.erase(test);
  result.index = test;
  commands.push_back(FinalCommand{std::move(result)});
  auto holders = m_holders.find(test);
  if (holders == m_holders.end()) return;
  const std::set<std::pair<AgentId, LeaseId>> copies = std::move(holders->second);
  m_holders.erase(holders);
  for (const auto& [agent, lease] : copies) {
    forget(agent, lease, test);
    // The winner's own copy simply ended; every other copy is cancelled.
    if (agent != winner) commands.push_back(CancelCommand{agent, {test}});
  }
}

void Scheduler::forget(const AgentId& agent, LeaseId lease, TestIndex test) {
  auto agent_it = m_agents.find(agent);
  if (agent_it == m_agents.end()) return;
  auto lease_it = agent_it->second.leases.find(lease);
  if (lease_it == agent_it->second.leases.end()) return;
  remove_pending(lease_it->second, test);
  if (lease_it->second.pending.empty()) agent_it->second.leases.erase(lease_it);
}

bool Scheduler::remove_pending(LeaseState& lease, TestIndex test) {
  auto it = std::find(lease.pending.begin(), lease.pending.end(), test);
  if (it == lease.pending.end()) return false;
  lease.pending.erase(it);
  return true;
}

void Scheduler::drop_holder(TestIndex test, const AgentId& agent, LeaseId lease) {
  auto it = m_holders.find(test);
  if (it == m_holders.end()) return;
  it->second.erase({agent, lease});
  if (it->second.empty()) m_holders.erase(it);
}

void Scheduler::requeue_front(std::vector<TestIndex> tests) {
  if (tests.empty()) return;
  std::sort(tests.begin(), tests.end());  // a unit runs in collection order
  common::WorkUnit unit;
  const size_t group = m_tests.at(tests.front()).group;
  bool same_group = true;
  for (TestIndex test : tests) {
    const TestInfo& info = m_tests.at(test);
    unit.estimate += info.estimate;
    same_group = same_group && info.group == group;
    m_queued.insert(test);
  }
  if (same_group) unit.group = m_groups[group];
  unit.tests = std::move(tests);
  m_queue_estimate += unit.estimate;
  m_queue.push_front(std::move(unit));
}

}  // namespace drover::coordinator
