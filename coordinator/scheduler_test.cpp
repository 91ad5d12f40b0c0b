#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace drover::coordinator {
namespace {

// prefix + n. (Not `"literal" + std::to_string(n)`: GCC 12 at -O3 reports a bogus
// -Wrestrict for it, PR105651, which -Werror turns into a build failure.)
std::string numbered(std::string_view prefix, long long n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

using common::Status;
using common::TestResult;
using common::WorkUnit;

WorkUnit unit(std::vector<TestIndex> tests, double estimate = 1.0, std::string group = "g") {
  return WorkUnit{std::move(tests), estimate, std::move(group), {}};
}

// A unit with its tests' own estimates (seconds, parallel to `tests`).
WorkUnit timed_unit(std::vector<TestIndex> tests, std::vector<double> seconds) {
  double estimate = 0.0;
  for (double s : seconds) estimate += s;
  return WorkUnit{std::move(tests), estimate, "g", std::move(seconds)};
}

TestResult passed(TestIndex index, std::string worker = "gw0") {
  return common::synthetic_result(index, Status::passed, "", "", std::move(worker));
}

std::vector<Lease> leases(const std::vector<Command>& commands) {
  std::vector<Lease> out;
  for (const Command& c : commands) {
    if (const auto* assign = std::get_if<AssignCommand>(&c)) out.push_back(assign->lease);
  }
  return out;
}

std::vector<TestResult> finals(const std::vector<Command>& commands) {
  std::vector<TestResult> out;
  for (const Command& c : commands) {
    if (const auto* final = std::get_if<FinalCommand>(&c)) out.push_back(final->result);
  }
  return out;
}

std::vector<CancelCommand> cancels(const std::vector<Command>& commands) {
  std::vector<CancelCommand> out;
  for (const Command& c : commands) {
    if (const auto* cancel = std::get_if<CancelCommand>(&c)) out.push_back(*cancel);
  }
  return out;
}

// Reports every test of `lease` as passed from its agent; returns the finals.
std::vector<TestResult> finish_lease(Scheduler& s, const Lease& lease) {
  std::vector<TestResult> out;
  for (TestIndex t : lease.tests) {
    auto f = finals(s.result(lease.agent, passed(t)));
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

TEST(Scheduler, TwoAgentsPullUnitsInQueueOrderUntilDone) {
  Scheduler s({unit({0, 1}), unit({2}), unit({3, 4}), unit({5})});
  s.agent_joined("a", 1);  // (two slots in all: enough queued work behind every unit, none is halved)
  s.agent_joined("b", 1);
  EXPECT_EQ(s.queued_tests(), 6u);
  const auto a = leases(s.request_work("a", 2, 0.0));
  const auto b = leases(s.request_work("b", 1, 0.0));
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].tests, (std::vector<TestIndex>{0, 1}));
  EXPECT_EQ(a[1].tests, (std::vector<TestIndex>{2}));
  EXPECT_EQ(b[0].tests, (std::vector<TestIndex>{3, 4}));
  EXPECT_EQ(a[0].agent, "a");
  EXPECT_NE(a[0].id, a[1].id);
  EXPECT_FALSE(a[0].speculative);
  EXPECT_EQ(s.queued_tests(), 1u);
  EXPECT_EQ(s.leased_tests(), 5u);

  EXPECT_EQ(finish_lease(s, a[0]).size(), 2u);
  EXPECT_EQ(finish_lease(s, b[0]).size(), 2u);
  const auto more = leases(s.request_work("b", 1, 1.0));
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].tests, std::vector<TestIndex>{5});
  EXPECT_FALSE(s.done());
  EXPECT_EQ(finish_lease(s, a[1]).size(), 1u);
  EXPECT_EQ(finish_lease(s, more[0]).size(), 1u);
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.finished_tests(), 6u);
  EXPECT_TRUE(leases(s.request_work("a", 2, 2.0)).empty());
}

TEST(Scheduler, TailUnitIsHalvedWhenTooLittleWorkIsQueuedBehindIt) {
  // Three 4-test units, two slots: the last unit has nothing behind it.
  Scheduler s({unit({0, 1, 2, 3}, 4.0), unit({4, 5, 6, 7}, 4.0), unit({8, 9, 10, 11}, 4.0)});
  s.agent_joined("a", 1);
  s.agent_joined("b", 1);
  EXPECT_EQ(leases(s.request_work("a", 1, 0.0))[0].tests, (std::vector<TestIndex>{0, 1, 2, 3}));
  // 4 s queued behind the second unit: enough to keep the other slot busy, kept whole.
  EXPECT_EQ(leases(s.request_work("b", 1, 0.0))[0].tests, (std::vector<TestIndex>{4, 5, 6, 7}));
  // Nothing behind the last one: its first half goes, the rest is the next lease.
  EXPECT_EQ(leases(s.request_work("a", 1, 1.0))[0].tests, (std::vector<TestIndex>{8, 9}));
  EXPECT_EQ(s.queued_tests(), 2u);
  const auto rest = leases(s.request_work("b", 1, 1.0));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].tests, (std::vector<TestIndex>{10}));  // halved again: still nothing behind
  EXPECT_EQ(leases(s.request_work("a", 1, 2.0))[0].tests, std::vector<TestIndex>{11});
  EXPECT_EQ(s.queued_tests(), 0u);

  // One slot: never halved.
  Scheduler one({unit({0, 1, 2, 3}, 4.0)});
  one.agent_joined("a", 1);
  EXPECT_EQ(leases(one.request_work("a", 1, 0.0))[0].tests.size(), 4u);
}

TEST(Scheduler, TailCutIsByEstimateAndKeepsCollectionOrder) {
  // The last unit: 0.03 + 0.05 + 0.01 + 2.0 + 0.02 s. Half its estimate is reached with
  // the 2 s test; the parts stay in collection order (a worker that gets both runs the
  // module in pytest's order).
  Scheduler s({timed_unit({3, 4, 5, 6, 7}, {0.03, 0.05, 0.01, 2.0, 0.02})});
  s.agent_joined("a", 1);
  s.agent_joined("b", 1);
  EXPECT_EQ(leases(s.request_work("a", 1, 0.0))[0].tests, (std::vector<TestIndex>{3, 4, 5, 6}));
  EXPECT_DOUBLE_EQ(*s.next_estimate(), 0.02);
  EXPECT_EQ(leases(s.request_work("b", 1, 0.0))[0].tests, std::vector<TestIndex>{7});
  EXPECT_EQ(s.queued_tests(), 0u);

  // A long test first: it goes alone, the rest is the next lease.
  Scheduler first({timed_unit({0, 1, 2}, {3.0, 0.5, 0.5})});
  first.agent_joined("a", 2);
  EXPECT_EQ(leases(first.request_work("a", 1, 0.0))[0].tests, std::vector<TestIndex>{0});
  EXPECT_EQ(leases(first.request_work("a", 1, 0.0))[0].tests, std::vector<TestIndex>{1});  // cut again
  EXPECT_EQ(leases(first.request_work("a", 1, 0.0))[0].tests, std::vector<TestIndex>{2});
}

TEST(Scheduler, RequestLastTakesTheShortestUnitUnlessATailRestWaits) {
  Scheduler s({timed_unit({0}, {2.0}), timed_unit({1}, {1.8}), timed_unit({2, 3}, {0.3, 0.2}),
               timed_unit({4, 5}, {0.2, 0.1})});
  s.agent_joined("a", 2);
  EXPECT_EQ(leases(s.request_work("a", 1, 0.0))[0].tests, std::vector<TestIndex>{0});
  EXPECT_EQ(leases(s.request_last("a", 0.0))[0].tests, (std::vector<TestIndex>{4, 5}));  // the back
  EXPECT_EQ(leases(s.request_work("a", 1, 0.0))[0].tests, std::vector<TestIndex>{1});    // LPT goes on
  // {2, 3} alone: as request_work(), cut at the tail.
  EXPECT_EQ(leases(s.request_last("a", 0.0))[0].tests, std::vector<TestIndex>{2});
  EXPECT_EQ(s.queued_tests(), 1u);

  // The front is a tail cut's rest: it stays the very next lease.
  Scheduler rest({timed_unit({0, 1, 2, 3}, {0.2, 0.2, 0.2, 0.2}), timed_unit({4}, {0.1})});
  rest.agent_joined("a", 2);
  EXPECT_EQ(leases(rest.request_work("a", 1, 0.0))[0].tests, (std::vector<TestIndex>{0, 1}));
  EXPECT_EQ(leases(rest.request_last("a", 0.0))[0].tests, std::vector<TestIndex>{2});  // rest, cut again
  EXPECT_NEAR(rest.estimate_of(3), 0.2, 1e-12);
  EXPECT_EQ(rest.estimate_of(99), 0.0);
}

TEST(Scheduler, FirstResultWinsAndDuplicatesAreDropped) {
  Scheduler s({unit({0, 1})});
  s.agent_joined("a", 1);
  ASSERT_EQ(leases(s.request_work("a", 1, 0.0)).size(), 1u);
  auto first = finals(s.result("a", passed(0)));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].index, 0u);
  EXPECT_TRUE(s.result("a", passed(0)).empty());
  TestResult failed = common::synthetic_result(0, Status::failed, "boom", "boom");
  EXPECT_TRUE(s.result("a", failed).empty());
  EXPECT_TRUE(s.result("a", passed(42)).empty());  // not in this run
  EXPECT_EQ(s.finished_tests(), 1u);
  EXPECT_FALSE(s.done());
}

TEST(Scheduler, HandBackGoesToTheQueueFrontAsOneUnit) {
  Scheduler s({unit({0, 1, 2}), unit({3}), unit({4})});
  s.agent_joined("a", 1);
  const auto first = leases(s.request_work("a", 1, 0.0));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(finals(s.result("a", passed(0))).size(), 1u);
  EXPECT_TRUE(s.hand_back("a", first[0].id, {2, 1, 0, 99}).empty());  // 0 done, 99 not leased
  EXPECT_EQ(s.queued_tests(), 4u);
  const auto again = leases(s.request_work("a", 1, 1.0));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].tests, (std::vector<TestIndex>{1, 2}));
  EXPECT_NE(again[0].id, first[0].id);
  // A hand-back for a lease that no longer exists changes nothing.
  EXPECT_TRUE(s.hand_back("a", first[0].id, {1}).empty());
  EXPECT_EQ(s.queued_tests(), 2u);
}

TEST(Scheduler, AgentLostMidLeaseRequeuesItsUnfinishedTests) {
  Scheduler s({unit({0, 1, 2}), unit({3})});
  s.agent_joined("a", 1);
  s.agent_joined("b", 1);
  const auto a = leases(s.request_work("a", 1, 0.0));
  EXPECT_EQ(finals(s.result("a", passed(0))).size(), 1u);
  EXPECT_TRUE(s.agent_lost("a", "missed heartbeats").empty());
  EXPECT_EQ(s.queued_tests(), 3u);
  const auto b = leases(s.request_work("b", 2, 1.0));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].tests, (std::vector<TestIndex>{1, 2}));  // back at the front
  EXPECT_EQ(b[1].tests, std::vector<TestIndex>{3});
  // A late result from the lost agent still counts if it is first.
  EXPECT_EQ(finals(s.result("a", passed(1))).size(), 1u);
  EXPECT_TRUE(s.result("b", passed(1)).empty());
  EXPECT_EQ(finals(s.result("b", passed(2))).size(), 1u);
  EXPECT_EQ(finals(s.result("b", passed(3))).size(), 1u);
  EXPECT_TRUE(s.done());
}

TEST(Scheduler, TestLostTwiceBecomesAnError) {
  Scheduler s({unit({7, 8})}, SchedulerOptions{.max_losses = 2, .speculate_at_tail = false});
  s.agent_joined("a", 1);
  ASSERT_EQ(leases(s.request_work("a", 1, 0.0)).size(), 1u);
  EXPECT_EQ(finals(s.result("a", passed(7))).size(), 1u);
  EXPECT_TRUE(s.agent_lost("a", "connection closed").empty());
  s.agent_joined("b", 1);
  ASSERT_EQ(leases(s.request_work("b", 1, 1.0)).size(), 1u);
  const auto errors = finals(s.agent_lost("b", "missed heartbeats"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].index, 8u);
  EXPECT_EQ(errors[0].final_status(), Status::error);
  EXPECT_EQ(errors[0].phases.at(0).message, "lost with agent b");
  EXPECT_NE(errors[0].phases.at(0).longrepr.find("a, b"), std::string::npos);
  EXPECT_EQ(s.queued_tests(), 0u);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.agent_lost("b", "again").empty());  // unknown agent: nothing
}

// QA's case: a group leased to a2 and copied to a3 at the tail; both agents die.
// Only the first unfinished test of a lease can have been in flight: it is lost
// twice and becomes an error; the test behind it never started and runs on a1.
TEST(Scheduler, OnlyTheInFlightTestOfALostLeaseCountsALoss) {
  Scheduler s({unit({0, 1}, 1.0), unit({2}, 1.0)}, SchedulerOptions{.max_losses = 2, .speculate_at_tail = true});
  s.agent_joined("a2", 1);
  const auto original = leases(s.request_work("a2", 1, 0.0));
  ASSERT_EQ(original.size(), 1u);
  ASSERT_EQ(original[0].tests, (std::vector<TestIndex>{0, 1}));
  s.agent_joined("a1", 1);
  const auto other = leases(s.request_work("a1", 1, 0.0));
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(finish_lease(s, other[0]).size(), 1u);
  s.agent_joined("a3", 1);
  const auto copy = leases(s.request_work("a3", 1, 5.0));
  ASSERT_EQ(copy.size(), 1u);
  ASSERT_TRUE(copy[0].speculative);
  ASSERT_EQ(copy[0].tests, (std::vector<TestIndex>{0, 1}));

  EXPECT_TRUE(s.agent_lost("a2", "missed heartbeats").empty());
  EXPECT_EQ(s.queued_tests(), 0u);  // a3's copy still holds both
  const auto errors = finals(s.agent_lost("a3", "missed heartbeats"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].index, 0u);
  EXPECT_EQ(errors[0].phases.at(0).message, "lost with agent a3");
  EXPECT_NE(errors[0].phases.at(0).longrepr.find("a2, a3"), std::string::npos);
  EXPECT_EQ(s.queued_tests(), 1u);
  const auto rerun = leases(s.request_work("a1", 1, 6.0));
  ASSERT_EQ(rerun.size(), 1u);
  EXPECT_EQ(rerun[0].tests, std::vector<TestIndex>{1});
  EXPECT_EQ(finish_lease(s, rerun[0]).size(), 1u);
  EXPECT_TRUE(s.done());
}

// A test behind the first of a lease never counts a loss, however often its agents die.
TEST(Scheduler, NotStartedTestsAreRequeuedWithoutCountingALoss) {
  Scheduler s({unit({4, 5, 6})}, SchedulerOptions{.max_losses = 1, .speculate_at_tail = false});
  s.agent_joined("a", 1);
  ASSERT_EQ(leases(s.request_work("a", 1, 0.0)).size(), 1u);
  EXPECT_EQ(finals(s.result("a", passed(4))).size(), 1u);
  const auto errors = finals(s.agent_lost("a", "gone"));
  ASSERT_EQ(errors.size(), 1u);  // max_losses 1: the in-flight test 5 is an error at once
  EXPECT_EQ(errors[0].index, 5u);
  EXPECT_EQ(s.queued_tests(), 1u);  // 6 never started: back in the queue
  s.agent_joined("b", 1);
  const auto again = leases(s.request_work("b", 1, 1.0));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].tests, std::vector<TestIndex>{6});
}

// Closing a run: queued and leased tests alike get the error; holders are cancelled.
TEST(Scheduler, FailUnfinishedClosesLeasedTestsToo) {
  Scheduler s({unit({0, 1}), unit({2})}, SchedulerOptions{.max_losses = 2, .speculate_at_tail = false});
  s.agent_joined("a", 1);
  ASSERT_EQ(leases(s.request_work("a", 1, 0.0)).size(), 1u);
  EXPECT_EQ(finals(s.result("a", passed(0))).size(), 1u);
  s.stop();
  const auto commands = s.fail_unfinished("not run: coordinator stopping");
  const auto errors = finals(commands);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].index, 2u);  // queued first
  EXPECT_EQ(errors[1].index, 1u);
  for (const auto& error : errors) EXPECT_EQ(error.phases.at(0).message, "not run: coordinator stopping");
  ASSERT_EQ(cancels(commands).size(), 1u);
  EXPECT_EQ(cancels(commands)[0].agent, "a");
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.result("a", passed(1)).empty());  // a late result is a duplicate
}

TEST(Scheduler, SpeculativeTailCopiesTheOldestLeaseAndCancelsTheLoser) {
  Scheduler s({unit({0, 1}), unit({2, 3})});
  s.agent_joined("a", 1);
  s.agent_joined("b", 1);
  const auto a = leases(s.request_work("a", 1, 0.0));
  const auto b = leases(s.request_work("b", 1, 5.0));
  EXPECT_EQ(finals(s.result("b", passed(2))).size(), 1u);
  EXPECT_EQ(finals(s.result("b", passed(3))).size(), 1u);
  // Queue empty, a's older lease still open: b gets a copy of its unfinished tests.
  const auto copy = leases(s.request_work("b", 2, 6.0));
  ASSERT_EQ(copy.size(), 1u);
  EXPECT_TRUE(copy[0].speculative);
  EXPECT_EQ(copy[0].agent, "b");
  EXPECT_EQ(copy[0].tests, (std::vector<TestIndex>{0, 1}));
  // Never twice for the same test, and never to the agent that holds it.
  s.agent_joined("c", 1);
  EXPECT_TRUE(s.request_work("c", 1, 7.0).empty());
  EXPECT_TRUE(s.request_work("a", 1, 7.0).empty());
  // The copy finishes test 1 first: a is told to drop it.
  const auto won = s.result("b", passed(1));
  ASSERT_EQ(finals(won).size(), 1u);
  ASSERT_EQ(cancels(won).size(), 1u);
  EXPECT_EQ(cancels(won)[0].agent, "a");
  EXPECT_EQ(cancels(won)[0].tests, std::vector<TestIndex>{1});
  EXPECT_TRUE(s.result("a", passed(1)).empty());
  // The original finishes test 0 first: the copy is cancelled.
  const auto original = s.result("a", passed(0));
  ASSERT_EQ(finals(original).size(), 1u);
  ASSERT_EQ(cancels(original).size(), 1u);
  EXPECT_EQ(cancels(original)[0].agent, "b");
  EXPECT_TRUE(s.done());
}

TEST(Scheduler, LeaseWaitingBehindRunningWorkMovesToAnIdleAgent) {
  Scheduler s({unit({0}), unit({1}), unit({2})});
  s.agent_joined("a", 1);
  s.agent_joined("b", 1);
  // a takes a lease to run and one of lookahead; b gets the last unit.
  const auto a = leases(s.request_work("a", 2, 0.0));
  ASSERT_EQ(a.size(), 2u);
  const auto b = leases(s.request_work("b", 2, 1.0));
  ASSERT_EQ(b.size(), 1u);  // a lookahead credit never takes another agent's lease
  EXPECT_EQ(finals(s.result("b", passed(2))).size(), 1u);
  // b is idle while a's second lease waits: it moves to b, and a is told to drop it.
  const auto moved = s.request_work("b", 1, 2.0);
  ASSERT_EQ(leases(moved).size(), 1u);
  EXPECT_FALSE(leases(moved)[0].speculative);
  EXPECT_EQ(leases(moved)[0].tests, a[1].tests);
  ASSERT_EQ(cancels(moved).size(), 1u);
  EXPECT_EQ(cancels(moved)[0].agent, "a");
  EXPECT_EQ(cancels(moved)[0].tests, a[1].tests);
  // a now holds no more than its slot: nothing moves back.
  EXPECT_TRUE(leases(s.request_work("a", 1, 3.0)).size() <= 1u);
  EXPECT_EQ(finals(s.result("b", passed(a[1].tests[0]))).size(), 1u);
  EXPECT_EQ(finals(s.result("a", passed(a[0].tests[0]))).size(), 1u);
  EXPECT_TRUE(s.done());
}

TEST(Scheduler, OnlyLeasesOutLongerThanTheirEstimateAreSpeculated) {
  // a runs two units at once (two slots) and the queue is empty from the start:
  // b must not copy them before they are overdue.
  Scheduler s({unit({0, 1}, 4.0), unit({2}, 10.0)});
  s.agent_joined("a", 2);
  s.agent_joined("b", 1);
  ASSERT_EQ(leases(s.request_work("a", 2, 100.0)).size(), 2u);
  EXPECT_TRUE(s.request_work("b", 2, 100.0).empty());
  EXPECT_TRUE(s.request_work("b", 2, 103.9).empty());
  // The 4 s lease is overdue, the 10 s one is not yet.
  const auto first = leases(s.request_work("b", 2, 104.0));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].speculative);
  EXPECT_EQ(first[0].tests, (std::vector<TestIndex>{0, 1}));
  EXPECT_EQ(finish_lease(s, first[0]).size(), 2u);
  const auto second = leases(s.request_work("b", 1, 110.0));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].tests, std::vector<TestIndex>{2});
}

TEST(Scheduler, LosingOneCopyKeepsTheOtherRunning) {
  Scheduler s({unit({0}), unit({1})});
  s.agent_joined("a", 1);
  s.agent_joined("b", 1);
  (void)s.request_work("a", 1, 0.0);
  (void)s.request_work("b", 1, 1.0);
  EXPECT_EQ(finals(s.result("b", passed(1))).size(), 1u);
  ASSERT_EQ(leases(s.request_work("b", 1, 2.0)).size(), 1u);  // copy of test 0
  EXPECT_TRUE(s.agent_lost("a", "gone").empty());
  EXPECT_EQ(s.queued_tests(), 0u);  // b's copy still runs: nothing to requeue
  EXPECT_FALSE(s.done());
  EXPECT_EQ(finals(s.result("b", passed(0))).size(), 1u);
  EXPECT_TRUE(s.done());
}

TEST(Scheduler, NoSpeculationWhenDisabledOrWithOneAgent) {
  Scheduler off({unit({0}), unit({1})}, SchedulerOptions{.max_losses = 2, .speculate_at_tail = false});
  (void)off.request_work("a", 1, 0.0);
  (void)off.request_work("b", 1, 0.0);
  EXPECT_EQ(finals(off.result("b", passed(1))).size(), 1u);
  EXPECT_TRUE(off.request_work("b", 1, 1.0).empty());

  Scheduler local({unit({0}), unit({1})});
  (void)local.request_work("gw", 1, 0.0);
  EXPECT_TRUE(local.request_work("gw", 1, 0.0).size() == 1);
  EXPECT_TRUE(local.request_work("gw", 1, 0.0).empty());  // its own lease is never copied
}

TEST(Scheduler, StopHandsOutNothingButLeasedTestsStillReport) {
  Scheduler s({unit({0}), unit({1}), unit({2})});
  s.agent_joined("a", 1);
  const auto a = leases(s.request_work("a", 1, 0.0));
  s.stop();
  EXPECT_TRUE(s.stopped());
  EXPECT_TRUE(s.request_work("a", 5, 1.0).empty());
  EXPECT_EQ(finals(s.result("a", passed(0))).size(), 1u);
  EXPECT_FALSE(s.done());
  const auto errors = finals(s.fail_remaining("not run: stopped after 1 failure"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].index, 1u);
  EXPECT_EQ(errors[1].index, 2u);
  EXPECT_EQ(errors[0].final_status(), Status::error);
  EXPECT_EQ(errors[0].phases.at(0).message, "not run: stopped after 1 failure");
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.finished_tests(), 3u);
}

TEST(Scheduler, FailRemainingLeavesLeasedTestsAlone) {
  Scheduler s({unit({3, 4}), unit({0}), unit({5})});
  const auto a = leases(s.request_work("a", 1, 0.0));
  ASSERT_EQ(a.size(), 1u);
  const auto errors = finals(s.fail_remaining("interrupted"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].index, 0u);  // collection order
  EXPECT_EQ(errors[1].index, 5u);
  EXPECT_FALSE(s.done());
  EXPECT_EQ(finish_lease(s, a[0]).size(), 2u);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.fail_remaining("again").empty());
}

TEST(Scheduler, DuplicateTestsAcrossUnitsAreQueuedOnce) {
  Scheduler s({unit({0, 1}), unit({1, 2}), unit({})});
  EXPECT_EQ(s.queued_tests(), 3u);
  const auto all = leases(s.request_work("a", 5, 0.0));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].tests, std::vector<TestIndex>{2});
}

TEST(Scheduler, RunsAreIndependentInstances) {
  const std::vector<WorkUnit> units{unit({0}), unit({1})};
  Scheduler first(units);
  Scheduler second(units);
  const auto a = leases(first.request_work("a", 2, 0.0));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(finals(first.result("a", passed(0))).size(), 1u);
  EXPECT_EQ(second.queued_tests(), 2u);
  EXPECT_EQ(second.finished_tests(), 0u);
  const auto b = leases(second.request_work("a", 2, 0.0));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].id, a[0].id);  // same numbering, separate state
  EXPECT_EQ(finals(second.result("a", passed(0))).size(), 1u);
}

TEST(Scheduler, SameEventsGiveSameCommands) {
  auto run = [] {
    Scheduler s({unit({0, 1}), unit({2}), unit({3}), unit({4, 5})});
    std::vector<std::string> log;
    for (const Lease& l : leases(s.request_work("b", 2, 0.0))) log.push_back(numbered("b", l.id));
    for (const Lease& l : leases(s.request_work("a", 2, 1.0))) log.push_back(numbered("a", l.id));
    for (TestIndex t : {0u, 1u, 2u}) (void)s.result("b", passed(t));
    for (const Lease& l : leases(s.request_work("b", 2, 2.0))) {
      std::string tests;
      for (TestIndex t : l.tests) tests += std::to_string(t);
      log.push_back("spec" + tests);
    }
    for (const auto& c : cancels(s.result("b", passed(4)))) log.push_back("cancel-" + c.agent);
    return log;
  };
  const auto once = run();
  EXPECT_EQ(once, run());
  EXPECT_EQ(once.back(), "cancel-a");
}

}  // namespace
}  // namespace drover::coordinator
