#include "agent/farm_source.h"

#include <gtest/gtest.h>

namespace drover::agent {
namespace {

namespace farm = common::farm;

farm::Lease lease(const std::string& run, std::uint64_t id, std::vector<TestIndex> tests) {
  farm::Lease l;
  l.run_id = run;
  l.lease_id = id;
  l.tests = std::move(tests);
  l.workspace = "ws";
  l.collection_hash = "h";
  return l;
}

template <class T>
std::vector<T> only(const std::vector<farm::Message>& messages) {
  std::vector<T> out;
  for (const auto& m : messages) {
    if (auto* t = std::get_if<T>(&m)) out.push_back(*t);
  }
  return out;
}

common::TestResult result(TestIndex index) {
  return common::synthetic_result(index, common::Status::passed, "", "", "gw0");
}

TEST(FarmMailbox, CreditsCountHeldLeasesWithLookahead) {
  FarmMailbox mailbox(2);  // 2 slots, one lease of lookahead each
  EXPECT_EQ(mailbox.wanted_credits(), 4);
  mailbox.add_lease(lease("r1", 1, {0, 1}));
  EXPECT_EQ(mailbox.wanted_credits(), 3);
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  auto got = source.request(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[0].tests, (std::vector<TestIndex>{0, 1}));
  EXPECT_EQ(mailbox.wanted_credits(), 3);  // still held until every test reports
  source.completed(result(0));
  source.completed(result(1));
  EXPECT_EQ(mailbox.wanted_credits(), 4);
  const auto out = mailbox.take_outgoing();
  const auto results = only<farm::TestResultMsg>(out);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].lease_id, 1u);
  EXPECT_EQ(results[0].run_id, "r1");
  EXPECT_EQ(results[0].result.worker, "a1/gw0");
  ASSERT_EQ(only<farm::LeaseDone>(out).size(), 1u);
  EXPECT_TRUE(mailbox.take_outgoing().empty());
}

TEST(FarmMailbox, AnotherWorkspaceExhaustsTheSourceOnlyWhenOursIsDrained) {
  FarmMailbox mailbox(1);
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  EXPECT_FALSE(source.exhausted());  // idle: stay warm
  auto other = lease("r2", 7, {3});
  other.workspace = "other code";
  mailbox.add_lease(other);
  mailbox.add_lease(lease("r1", 8, {4}));
  EXPECT_FALSE(source.exhausted());
  ASSERT_EQ(source.request(5).size(), 1u);  // only r1's lease
  EXPECT_TRUE(source.exhausted());
  auto key = mailbox.next_key(0);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->run_id, "r2");
}

TEST(FarmMailbox, HandBackSkipsCancelledTestsAndClosesTheLease) {
  FarmMailbox mailbox(1);
  mailbox.add_lease(lease("r1", 1, {0, 1, 2}));
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  ASSERT_EQ(source.request(1).size(), 1u);
  mailbox.cancel(farm::Cancel{"r1", {1}, "won elsewhere", true});
  EXPECT_EQ(source.take_cancellations(), (std::vector<Cancellation>{{1, true}}));
  EXPECT_TRUE(source.take_cancellations().empty());
  source.completed(result(0));
  source.handed_back(1, {1, 2});
  const auto out = mailbox.take_outgoing();
  const auto backs = only<farm::HandBack>(out);
  ASSERT_EQ(backs.size(), 1u);
  EXPECT_EQ(backs[0].tests, (std::vector<TestIndex>{2}));
  EXPECT_EQ(only<farm::LeaseDone>(out).size(), 1u);
}

TEST(FarmMailbox, WholeRunCancelDropsItsTestsAndKeepsThePool) {
  FarmMailbox mailbox(1);
  mailbox.add_lease(lease("r1", 1, {0}));
  mailbox.add_lease(lease("r1", 2, {1}));
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  ASSERT_EQ(source.request(1).size(), 1u);
  mailbox.cancel(farm::Cancel{"r1", {}, "client stopped"});
  EXPECT_FALSE(source.stopping());  // the warm pool stays for the next run
  EXPECT_EQ(source.take_cancellations(), (std::vector<Cancellation>{{0, false}}));
  const auto backs = only<farm::HandBack>(mailbox.take_outgoing());
  ASSERT_EQ(backs.size(), 1u);
  EXPECT_EQ(backs[0].lease_id, 2u);
  source.handed_back(1, {0});  // the coordinator closes it as "not run"
  const auto out = mailbox.take_outgoing();
  ASSERT_EQ(only<farm::HandBack>(out).size(), 1u);
  EXPECT_EQ(only<farm::HandBack>(out)[0].tests, std::vector<TestIndex>{0});
  EXPECT_EQ(only<farm::LeaseDone>(out).size(), 1u);
  mailbox.add_lease(lease("r1", 3, {2}));  // late lease of a cancelled run goes straight back
  EXPECT_EQ(only<farm::HandBack>(mailbox.take_outgoing()).size(), 1u);
}

TEST(FarmMailbox, RunsOfTheSameWorkspaceShareThePoolButNeverATestIndex) {
  FarmMailbox mailbox(2);
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  mailbox.add_lease(lease("r1", 1, {0, 1}));
  mailbox.add_lease(lease("r2", 2, {1, 2}));  // index 1 is r1's while r1 holds it
  mailbox.add_lease(lease("r2", 3, {3}));
  auto got = source.request(5);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[1].id, 3u);
  EXPECT_FALSE(source.exhausted());
  source.completed(result(3));
  source.completed(result(0));
  source.completed(result(1));
  got = source.request(5);  // r1 is done with index 1: r2's lease may go now
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 2u);
  source.completed(result(1));
  const auto results = only<farm::TestResultMsg>(mailbox.take_outgoing());
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].run_id, "r2");
  EXPECT_EQ(results[0].lease_id, 3u);
  EXPECT_EQ(results[2].run_id, "r1");
  EXPECT_EQ(results[3].run_id, "r2");
  EXPECT_EQ(results[3].lease_id, 2u);
}

TEST(FarmMailbox, RefusedRunHandsBackAndReportsTheError) {
  FarmMailbox mailbox(1);
  mailbox.add_lease(lease("r1", 1, {0, 1}));
  mailbox.refuse_run("r1", common::ErrorCode::collection, "collection differs");
  auto out = mailbox.take_outgoing();
  ASSERT_EQ(only<farm::HandBack>(out).size(), 1u);
  const auto errors = only<farm::ErrorMsg>(out);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "collection");
  EXPECT_EQ(errors[0].run_id, "r1");
  mailbox.add_lease(lease("r1", 2, {2}));
  EXPECT_EQ(only<farm::HandBack>(mailbox.take_outgoing()).size(), 1u);
  EXPECT_FALSE(mailbox.next_key(0));
}

TEST(FarmMailbox, AbortDropsResultsOfTheOldConnection) {
  FarmMailbox mailbox(1);
  mailbox.add_lease(lease("r1", 1, {0}));
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  ASSERT_EQ(source.request(1).size(), 1u);
  mailbox.abort();
  EXPECT_TRUE(source.stopping());
  source.completed(result(0));
  EXPECT_TRUE(mailbox.take_outgoing().empty());
  EXPECT_EQ(mailbox.wanted_credits(), 2);
  mailbox.close();
  EXPECT_EQ(mailbox.wanted_credits(), 0);
  EXPECT_TRUE(mailbox.closed());
}

TEST(FarmMailbox, CancellationsOfAnotherRunDoNotReachThisPool) {
  // Runs sharing a workspace and arguments share a pool, and test indices are per run:
  // another run's cancelled test 0 is not this run's test 0.
  FarmMailbox mailbox(1);
  mailbox.add_lease(lease("r1", 1, {0}));
  FarmWorkSource source(mailbox, key_of(lease("r1", 0, {})), "a1");
  ASSERT_EQ(source.request(1).size(), 1u);
  mailbox.cancel(farm::Cancel{"r2", {0}, "won elsewhere", true});
  EXPECT_TRUE(source.take_cancellations().empty());
  mailbox.cancel(farm::Cancel{"r1", {0}, "won elsewhere", true});
  EXPECT_EQ(source.take_cancellations(), (std::vector<Cancellation>{{0, true}}));
}

}  // namespace
}  // namespace drover::agent
