#include "cli/local_source.h"

#include <gtest/gtest.h>

namespace drover::cli {
namespace {

using common::TestIndex;
using common::WorkUnit;

WorkUnit timed_unit(std::vector<TestIndex> tests, std::vector<double> seconds) {
  double estimate = 0.0;
  for (double s : seconds) estimate += s;
  return WorkUnit{std::move(tests), estimate, "g", std::move(seconds)};
}

std::vector<TestIndex> tests_of(const std::vector<agent::WorkLease>& leases) {
  std::vector<TestIndex> out;
  for (const auto& lease : leases) out.insert(out.end(), lease.tests.begin(), lease.tests.end());
  return out;
}

TEST(LocalWorkSource, LookaheadTakesNeitherLongUnitsNorTheTail) {
  // Two slots. After the 0.5 s unit, a 0.15 s unit has as much behind it (kept
  // whole), the last one nothing (the tail).
  coordinator::Scheduler scheduler({timed_unit({0}, {0.5}), timed_unit({1, 2}, {0.1, 0.05}),
                                    timed_unit({3, 4}, {0.05, 0.1})});
  LocalWorkSource source(scheduler, 2, 0, [](const common::TestResult&) {});
  EXPECT_TRUE(source.request_lookahead(1).empty());  // 0.5 s: over the lookahead limit
  EXPECT_EQ(tests_of(source.request(1)), std::vector<TestIndex>{0});
  EXPECT_FALSE(scheduler.at_tail());
  EXPECT_EQ(tests_of(source.request_lookahead(1)), (std::vector<TestIndex>{1, 2}));
  EXPECT_TRUE(scheduler.at_tail());
  EXPECT_TRUE(source.request_lookahead(1).empty());  // the tail waits for a worker in need
  EXPECT_EQ(tests_of(source.request(1)), std::vector<TestIndex>{3});  // cut in two
  EXPECT_EQ(tests_of(source.request(1)), std::vector<TestIndex>{4});
  EXPECT_FALSE(scheduler.at_tail());
  EXPECT_TRUE(source.exhausted());
}

TEST(LocalWorkSource, SuccessorOfALongTestIsTheShortestUnit) {
  // Two 1-test units of 2.0 s and 1.8 s, then 4 x 0.5 s: the worker holding the 2 s test
  // gets the shortest unit as its successor, so the 1.8 s one goes to the other worker.
  coordinator::Scheduler scheduler({timed_unit({0}, {2.0}), timed_unit({1}, {1.8}), timed_unit({2}, {0.5}),
                                    timed_unit({3}, {0.5}), timed_unit({4}, {0.5}), timed_unit({5}, {0.5})});
  LocalWorkSource source(scheduler, 2, 0, [](const common::TestResult&) {});
  EXPECT_EQ(tests_of(source.request(1)), std::vector<TestIndex>{0});
  EXPECT_EQ(tests_of(source.request_successor(1, 0)), std::vector<TestIndex>{5});
  EXPECT_EQ(tests_of(source.request(1)), std::vector<TestIndex>{1});
  EXPECT_EQ(tests_of(source.request_successor(1, 1)), std::vector<TestIndex>{4});
  // Behind a test no longer than the next unit: the front, longest first.
  EXPECT_EQ(tests_of(source.request_successor(1, 5)), std::vector<TestIndex>{2});
}

TEST(LocalWorkSource, LookaheadStillTakesATailOfTinyTests) {
  // Under 5 ms of tests: a round trip per piece would cost more than any imbalance.
  coordinator::Scheduler scheduler({timed_unit({0, 1, 2, 3}, {0.001, 0.0005, 0.0005, 0.001})});
  LocalWorkSource source(scheduler, 2, 0, [](const common::TestResult&) {});
  EXPECT_TRUE(scheduler.at_tail());
  EXPECT_EQ(tests_of(source.request_lookahead(1)), (std::vector<TestIndex>{0, 1}));
}

}  // namespace
}  // namespace drover::cli
