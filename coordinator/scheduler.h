// The one scheduler: a pure state machine over a run's work units and the
// agents (local pool or remote machines) that pull from it.
//
// Events go in (agent joined, work requested, result, tests handed back, agent
// lost, tick), commands come out; no sockets, no clock of its own, no logging.
// Local mode drives it in-process with a single agent; farm mode drives it from
// the coordinator's ZeroMQ loop. Guarantees: every test ends with exactly one
// final result (first result wins, later copies are dropped); tests handed back
// or lost with an agent return to the queue; a test lost with agents
// `max_losses` times gets an error result instead of another attempt.
// Thread-safety: none; one owner thread drives it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/planner.h"
#include "common/test_result.h"

namespace drover::coordinator {

using common::TestIndex;
using AgentId = std::string;
using LeaseId = std::uint64_t;

struct Lease {
  LeaseId id = 0;
  AgentId agent;
  std::vector<TestIndex> tests;
  bool speculative = false;  // a copy of tests already leased elsewhere (tail speculation)
};

struct SchedulerOptions {
  int max_losses = 2;            // a test lost with this many agents becomes an error
  bool speculate_at_tail = true; // idle agents may re-run stragglers when the queue is empty
};

// Carry out: send this lease to its agent.
struct AssignCommand {
  Lease lease;
};
// Carry out: tell the agent to drop these tests (the other copy already finished).
struct CancelCommand {
  AgentId agent;
  std::vector<TestIndex> tests;
};
// Carry out: report this as the test's one final result.
struct FinalCommand {
  common::TestResult result;
};
using Command = std::variant<AssignCommand, CancelCommand, FinalCommand>;

class Scheduler {
 public:
  Scheduler(std::vector<common::WorkUnit> units, SchedulerOptions options = {});

  void agent_joined(const AgentId& agent, int slots);
  // Up to `credits` leases for `agent`, one unit each from the queue front; none once
  // stopped. With two or more slots in all, a unit whose estimate times (slots - 1)
  // exceeds the work queued behind it is cut where half its estimate is reached (collection
  // order kept), the rest put back at the front. With the queue empty, an agent with a
  // free slot (fewer leases than slots) takes over a lease another agent holds beyond its
  // slots (the newest: queued behind running work, not started); the holder gets a
  // CancelCommand for it. After that, with
  // speculate_at_tail, a free slot may copy the unfinished tests of another agent's
  // oldest lease that has been out at least as long as its estimate (each test is copied
  // at most once); the first result wins and the other copy gets a CancelCommand.
  // `now` (seconds, any epoch) dates leases.
  [[nodiscard]] std::vector<Command> request_work(const AgentId& agent, int credits, double now);
  // One lease of the queue's last unit (the shortest, in longest-first order), for a
  // slot that needs a test only to wait behind a long one (see LocalWorkSource); as
  // request_work() when at most one unit is queued or the front is a tail cut's rest.
  [[nodiscard]] std::vector<Command> request_last(const AgentId& agent, double now);
  // A finished test. The first result for a test wins; duplicates yield nothing.
  [[nodiscard]] std::vector<Command> result(const AgentId& agent, common::TestResult result);
  // Tests of a lease the agent will not run (worker replaced, cancelled): back to the queue front.
  [[nodiscard]] std::vector<Command> hand_back(const AgentId& agent, LeaseId lease,
                                               const std::vector<TestIndex>& tests);
  // The agent is gone: its unfinished leased tests go back to the queue front (unless
  // another copy still runs). Only the first unfinished test of each lease can have
  // been in flight (an agent runs a lease in order): that one counts a loss, and lost
  // `max_losses` times gets an error result "lost with agent <id>" instead; the
  // lease's other tests never started there and count none. Its results arriving
  // later are still accepted if first.
  [[nodiscard]] std::vector<Command> agent_lost(const AgentId& agent, const std::string& reason);
  // Stop handing out work (-x, --maxfail, Ctrl-C). Leased tests may still report.
  void stop();
  // Every remaining queued test, never run, gets an error result with `message`
  // (in collection order). Leased tests are untouched: they may still report.
  [[nodiscard]] std::vector<Command> fail_remaining(const std::string& message);

  // Every test without a final result, queued or leased, gets an error result with
  // `message` (the run is being closed: nothing will report any more); holders of
  // leased tests get a CancelCommand.
  [[nodiscard]] std::vector<Command> fail_unfinished(const std::string& message);

  [[nodiscard]] bool stopped() const { return m_stopped; }
  // True when no test is queued or leased: nothing more will be handed out or reported.
  [[nodiscard]] bool done() const;
  [[nodiscard]] size_t queued_tests() const;
  // The estimate (s) of the unit request_work() would hand out next; nullopt when none is queued.
  [[nodiscard]] std::optional<double> next_estimate() const;
  // True when the unit request_work() would hand out next is cut (split_at_tail): the
  // queue's last pieces, best left to whichever slot frees first.
  [[nodiscard]] bool at_tail() const;
  // The estimate (s) of one test of the run; 0 for a test not in it.
  [[nodiscard]] double estimate_of(TestIndex test) const;
  [[nodiscard]] size_t finished_tests() const { return m_finished.size(); }
  // Tests leased to at least one agent and not finished yet.
  [[nodiscard]] size_t leased_tests() const;
  // `agent` holds `test` in one of its leases now (a copy of it, at least).
  [[nodiscard]] bool holds(const AgentId& agent, TestIndex test) const;

 private:
  struct LeaseState {
    Lease lease;
    std::vector<TestIndex> pending;  // leased tests without a result yet, in lease order
    double started = 0.0;            // `now` when handed out: the oldest is speculated first
  };
  struct AgentState {
    int slots = 0;
    std::map<LeaseId, LeaseState> leases;  // only leases with pending tests
  };
  struct TestInfo {
    double estimate = 0.0;  // share of its original unit's estimate
    size_t group = 0;       // index into m_groups
  };

  Lease open_lease(const AgentId& agent, AgentState& state, std::vector<TestIndex> tests,
                   bool speculative, double now);
  std::optional<Lease> speculative_lease(const AgentId& agent, AgentState& state, double now);
  // Takes the queue's front (or back) unit out: its tests still waiting (none if all
  // finished while queued).
  std::vector<TestIndex> pop_unit(bool back);
  // Cuts a unit being handed out at half its estimate when too little work is queued behind it.
  void split_at_tail(std::vector<TestIndex>& tests);
  // A unit of `unit` seconds, with `behind` seconds queued behind it, is cut.
  [[nodiscard]] bool cut_at_tail(double unit, size_t tests, double behind) const;
  std::optional<Lease> steal_lease(const AgentId& agent, AgentState& state, double now,
                                   std::vector<Command>& commands);
  [[nodiscard]] double lease_estimate(const Lease& lease) const;  // seconds, from the units' estimates
  // Records the one final result of `test` and cancels every copy not run by `winner`.
  void finish(TestIndex test, common::TestResult result, const AgentId& winner,
              std::vector<Command>& commands);
  void forget(const AgentId& agent, LeaseId lease, TestIndex test);
  static bool remove_pending(LeaseState& lease, TestIndex test);
  void drop_holder(TestIndex test, const AgentId& agent, LeaseId lease);
  void requeue_front(std::vector<TestIndex> tests);

  std::deque<common::WorkUnit> m_queue;  // front = next to hand out; may hold finished tests
  double m_queue_estimate = 0.0;         // seconds, sum over m_queue's units (the tail's measure)
  // The front unit is the rest of a unit cut at the tail: it must be the very next lease
  // (request_last() leaves the back alone meanwhile), so no worker sets that module up twice.
  bool m_front_is_rest = false;
  std::set<TestIndex> m_queued;          // unfinished tests waiting in m_queue
  std::map<TestIndex, TestInfo> m_tests; // every test of the run
  std::vector<std::string> m_groups;
  std::map<AgentId, AgentState> m_agents;
  // Leases holding each unfinished, leased test: more than one only under speculation.
  std::map<TestIndex, std::set<std::pair<AgentId, LeaseId>>> m_holders;
  std::set<TestIndex> m_speculated;  // copied once already: never again
  std::set<TestIndex> m_finished;
  std::map<TestIndex, std::vector<AgentId>> m_lost_with;
  SchedulerOptions m_options;
  LeaseId m_next_lease = 1;
  bool m_stopped = false;
};

}  // namespace drover::coordinator
