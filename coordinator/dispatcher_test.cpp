#include "coordinator/dispatcher.h"

#include <set>

#include <gtest/gtest.h>

namespace drover::coordinator {
namespace {

namespace farm = common::farm;

template <class T>
std::vector<T> sent(const std::vector<Outgoing>& out, const std::string& peer) {
  std::vector<T> found;
  for (const Outgoing& o : out) {
    if (o.peer == peer && std::holds_alternative<T>(o.message)) found.push_back(std::get<T>(o.message));
  }
  return found;
}

farm::Envelope envelope(farm::Message message) {
  return farm::Envelope{farm::k_protocol_version, farm::type_of(message), std::move(message)};
}

common::TestResult passed(common::TestIndex index, double seconds = 0.5) {
  common::TestResult result;
  result.index = index;
  result.worker = "a/gw0";
  common::PhaseReport call;
  call.when = common::Phase::call;
  call.outcome = "passed";
  call.status = common::Status::passed;
  call.duration = seconds;
  result.phases = {call};
  return result;
}

std::string nodeid(int i) { return "test_" + std::to_string(i) + ".py::t"; }

farm::RunSubmit submission(const std::string& run_id, int tests) {
  farm::RunSubmit submit;
  submit.run_id = run_id;
  submit.workspace = "ws";
  submit.pytest_args = {"-q"};
  for (int i = 0; i < tests; ++i) {
    submit.collection.items.push_back({nodeid(i), "test_" + std::to_string(i) + ".py", "", 1, {}});
  }
  submit.collection.hash = "hash-" + run_id;
  submit.group_by = "file";
  return submit;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::open(":memory:");
    ASSERT_TRUE(store.has_value());
    m_store = std::move(*store);
    m_dispatcher = std::make_unique<Dispatcher>(*m_store, DispatcherOptions{});
  }

  std::vector<Outgoing> say(const std::string& peer, farm::Message message, const std::string& role = "") {
    return m_dispatcher->on_message(peer, role, envelope(std::move(message)), m_now);
  }

  void hello_agent(const std::string& peer, int slots = 2) {
    farm::Hello hello;
    hello.role = "agent";
    hello.name = peer;
    hello.slots = slots;
    auto out = say(peer, hello);
    ASSERT_EQ(sent<farm::Welcome>(out, peer).size(), 1u);
  }

  void hello_client(const std::string& peer) {
    farm::Hello hello;
    hello.role = "client";
    hello.name = peer;
    auto out = say(peer, hello);
    ASSERT_EQ(sent<farm::Welcome>(out, peer).size(), 1u);
  }

  void hello_pinned(const std::string& peer, const std::string& run_id, int slots = 2) {
    farm::Hello hello;
    hello.role = "agent";
    hello.name = peer;
    hello.slots = slots;
    hello.run_id = run_id;
    auto out = say(peer, hello);
    ASSERT_EQ(sent<farm::Welcome>(out, peer).size(), 1u);
  }

  // Every lease `agent` has now, each test answered with a pass.
  int pass_all(const std::vector<Outgoing>& out, const std::string& agent, const std::string& run_id) {
    int passed_count = 0;
    for (const auto& lease : sent<farm::Lease>(out, agent)) {
      for (common::TestIndex index : lease.tests) {
        auto result = passed(index);
        result.worker = agent + "/gw0";
        (void)say(agent, farm::TestResultMsg{run_id, lease.lease_id, result});
        ++passed_count;
      }
    }
    return passed_count;
  }

  std::unique_ptr<Store> m_store;
  std::unique_ptr<Dispatcher> m_dispatcher;
  double m_now = 1000.0;
};

TEST_F(DispatcherTest, ResultsOnlyFromTheAgentHoldingTheTest) {
  hello_agent("A");
  hello_agent("B");
  hello_client("C");
  (void)say("C", submission("r1", 2));
  auto leases = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(leases.size(), 1u);
  const common::TestIndex held = leases[0].tests[0];
  // B was given nothing: neither A's test nor the queued one is B's to settle.
  for (common::TestIndex index : {held, static_cast<common::TestIndex>(1 - held)}) {
    auto out = say("B", farm::TestResultMsg{"r1", 999, passed(index)});
    EXPECT_TRUE(sent<farm::ResultStream>(out, "C").empty()) << index;
  }
  auto out = say("A", farm::TestResultMsg{"r1", leases[0].lease_id, passed(held)});
  EXPECT_EQ(sent<farm::ResultStream>(out, "C").size(), 1u);
}

TEST_F(DispatcherTest, RunFlowsFromSubmitThroughLeasesToFinished) {
  hello_agent("A");
  hello_client("C");
  auto accepted = say("C", submission("r1", 3));
  ASSERT_EQ(sent<farm::RunAccepted>(accepted, "C").size(), 1u);
  EXPECT_EQ(sent<farm::RunAccepted>(accepted, "C")[0].tests, 3);

  auto out = say("A", farm::WorkRequest{2});
  auto leases = sent<farm::Lease>(out, "A");
  ASSERT_EQ(leases.size(), 2u);  // credits bound the leases
  EXPECT_EQ(leases[0].run_id, "r1");
  EXPECT_EQ(leases[0].workspace, "ws");
  EXPECT_EQ(leases[0].collection_hash, "hash-r1");
  EXPECT_EQ(leases[0].collection_size, 3);

  std::set<common::TestIndex> seen;
  int streamed = 0;
  for (const auto& lease : leases) {
    for (common::TestIndex index : lease.tests) {
      seen.insert(index);
      out = say("A", farm::TestResultMsg{"r1", lease.lease_id, passed(index)});
      streamed += static_cast<int>(sent<farm::ResultStream>(out, "C").size());
      // The first result wins: a duplicate is not streamed again.
      out = say("A", farm::TestResultMsg{"r1", lease.lease_id, passed(index)});
      EXPECT_TRUE(sent<farm::ResultStream>(out, "C").empty());
    }
  }
  EXPECT_EQ(streamed, 2);
  // Both credits were used; the agent asks again when a slot frees up.
  out = say("A", farm::WorkRequest{1});
  leases = sent<farm::Lease>(out, "A");
  ASSERT_EQ(leases.size(), 1u);
  out = say("A", farm::TestResultMsg{"r1", leases[0].lease_id, passed(leases[0].tests[0])});
  auto finished = sent<farm::RunFinished>(out, "C");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].state, "finished");
  EXPECT_EQ(finished[0].counts.at("passed"), 3);
  EXPECT_EQ(m_dispatcher->active_runs(), 0u);

  auto record = m_store->run("r1").value();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, "finished");
  EXPECT_EQ(record->reported(), 3);
  EXPECT_EQ(m_store->durations().value().size(), 3u);
}

TEST_F(DispatcherTest, OutstandingCreditsAreServedWhenWorkArrives) {
  hello_agent("A");
  hello_client("C");
  EXPECT_TRUE(sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A").empty());
  auto out = say("C", submission("r1", 1));
  EXPECT_EQ(sent<farm::Lease>(out, "A").size(), 1u);
}

TEST_F(DispatcherTest, SilentAgentLosesItsLeasesToAnother) {
  hello_agent("A");
  hello_agent("B");
  hello_client("C");
  auto submit = submission("r1", 1);
  submit.speculate = false;
  (void)say("C", submit);
  auto first = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(sent<farm::Lease>(say("B", farm::WorkRequest{1}), "B").empty());
  // B and C keep talking; A goes silent for more than heartbeat_lost_after intervals.
  std::vector<farm::Lease> requeued;
  std::vector<farm::Heartbeat> beats;
  for (int second = 1; second <= farm::k_heartbeat_lost_after + 1; ++second) {
    m_now += 1.0;
    (void)say("B", farm::Heartbeat{});
    (void)say("C", farm::Heartbeat{});
    auto ticked = m_dispatcher->tick(m_now);
    for (auto& lease : sent<farm::Lease>(ticked, "B")) requeued.push_back(lease);
    for (auto& beat : sent<farm::Heartbeat>(ticked, "C")) beats.push_back(beat);
  }
  EXPECT_EQ(m_dispatcher->agent_count(), 1u);
  EXPECT_FALSE(beats.empty());  // the coordinator beats too
  ASSERT_EQ(requeued.size(), 1u);  // B's outstanding credit took A's test
  EXPECT_EQ(requeued[0].tests, first[0].tests);
  auto out = say("B", farm::TestResultMsg{"r1", requeued[0].lease_id, passed(requeued[0].tests[0])});
  ASSERT_EQ(sent<farm::RunFinished>(out, "C").size(), 1u);
  // A comes back from the dead with a late result: it must say Hello first.
  out = say("A", farm::TestResultMsg{"r1", first[0].lease_id, passed(first[0].tests[0])});
  auto errors = sent<farm::ErrorMsg>(out, "A");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "protocol");
}

TEST_F(DispatcherTest, RunsShareAgentsEvenlyAndAgentsStayWithTheirRun) {
  hello_agent("A", 2);
  hello_agent("B", 2);
  hello_client("C");
  (void)say("C", submission("r1", 6));
  auto first = sent<farm::Lease>(say("A", farm::WorkRequest{2}), "A");
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].run_id, "r1");
  EXPECT_EQ(first[1].run_id, "r1");
  (void)say("C", submission("r2", 6));
  // r2 has no agent: B goes there, and stays there.
  auto second = sent<farm::Lease>(say("B", farm::WorkRequest{2}), "B");
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].run_id, "r2");
  EXPECT_EQ(second[1].run_id, "r2");
  // A keeps its warm pool on r1 while both runs have one agent each.
  auto more = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].run_id, "r1");
}

TEST_F(DispatcherTest, OneAgentServesSeveralRunsInTurn) {
  hello_agent("A", 1);
  hello_client("C");
  (void)say("C", submission("r1", 1));
  (void)say("C", submission("r2", 1));
  auto lease = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(lease.size(), 1u);
  (void)say("A", farm::TestResultMsg{lease[0].run_id, lease[0].lease_id, passed(0)});
  auto next = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0].run_id, lease[0].run_id);  // the first run is done: on to the other
}

TEST_F(DispatcherTest, HelloOutsideTheVersionRangeIsRefused) {
  farm::Hello hello;
  hello.role = "agent";
  hello.slots = 1;
  hello.protocol_min = farm::k_protocol_version + 1;
  hello.protocol_max = farm::k_protocol_version + 2;
  auto out = say("X", hello);
  auto errors = sent<farm::ErrorMsg>(out, "X");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "protocol");
  EXPECT_NE(errors[0].message.find("this drover speaks"), std::string::npos);
  EXPECT_EQ(m_dispatcher->agent_count(), 0u);
}

TEST_F(DispatcherTest, KeyRoleMustMatchHelloRole) {
  m_dispatcher = std::make_unique<Dispatcher>(*m_store, DispatcherOptions{1000, 5, true});
  farm::Hello hello;
  hello.role = "agent";
  hello.slots = 1;
  EXPECT_EQ(sent<farm::ErrorMsg>(say("X", hello, "client"), "X").size(), 1u);
  EXPECT_EQ(sent<farm::Welcome>(say("X", hello, "agent"), "X").size(), 1u);
}

TEST_F(DispatcherTest, ClientCancelStopsTheRunAfterHandBack) {
  hello_agent("A");
  hello_client("C");
  (void)say("C", submission("r1", 5));
  auto leases = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(leases.size(), 1u);
  auto out = say("C", farm::Cancel{"r1", {}, "Ctrl-C"});
  ASSERT_EQ(sent<farm::Cancel>(out, "A").size(), 1u);  // the agent is told
  EXPECT_TRUE(sent<farm::RunFinished>(out, "C").empty());  // its lease is still out
  out = say("A", farm::HandBack{"r1", leases[0].lease_id, leases[0].tests, "cancelled"});
  auto finished = sent<farm::RunFinished>(out, "C");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].state, "cancelled");
  EXPECT_EQ(finished[0].counts.at("error"), 5);  // never run
  EXPECT_EQ(m_store->run("r1").value()->state, "cancelled");
}

TEST_F(DispatcherTest, CollectionMismatchOnEveryAgentFailsTheRun) {
  hello_agent("A");
  hello_client("C");
  (void)say("C", submission("r1", 2));
  auto leases = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(leases.size(), 1u);
  (void)say("A", farm::HandBack{"r1", leases[0].lease_id, leases[0].tests, "collection differs"});
  auto out = say("A", farm::ErrorMsg{"collection", "collected 3 tests, hash x", "r1"});
  auto finished = sent<farm::RunFinished>(out, "C");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].state, "failed");
  EXPECT_NE(finished[0].reason.find("collected 3 tests"), std::string::npos);
}

TEST_F(DispatcherTest, LostClientCancelsItsRun) {
  hello_agent("A");
  hello_client("C");
  (void)say("C", submission("r1", 2));
  (void)say("C", farm::Shutdown{"bye"});
  EXPECT_EQ(m_dispatcher->client_count(), 0u);
  EXPECT_EQ(m_dispatcher->active_runs(), 0u);
  EXPECT_EQ(m_store->run("r1").value()->state, "cancelled");
}

TEST_F(DispatcherTest, JoiningAFinishedRunReplaysItsEnd) {
  hello_agent("A");
  hello_client("C");
  (void)say("C", submission("r1", 1));
  auto leases = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(leases.size(), 1u);
  (void)say("A", farm::TestResultMsg{"r1", leases[0].lease_id, passed(0)});
  hello_client("D");
  auto out = say("D", submission("r1", 1));
  ASSERT_EQ(sent<farm::RunAccepted>(out, "D").size(), 1u);
  EXPECT_TRUE(sent<farm::RunAccepted>(out, "D")[0].joined);
  ASSERT_EQ(sent<farm::RunFinished>(out, "D").size(), 1u);
  EXPECT_EQ(sent<farm::RunFinished>(out, "D")[0].counts.at("passed"), 1);
}

TEST_F(DispatcherTest, BadSubmissionsAreRefused) {
  hello_client("C");
  auto submit = submission("r1", 2);
  submit.selection = {7};
  EXPECT_EQ(sent<farm::ErrorMsg>(say("C", submit), "C").size(), 1u);
  submit = submission("r1", 2);
  submit.group_by = "planet";
  EXPECT_EQ(sent<farm::ErrorMsg>(say("C", submit), "C").size(), 1u);
  EXPECT_EQ(sent<farm::ErrorMsg>(say("C", submission("../etc", 1)), "C").size(), 1u);
  hello_agent("A");
  EXPECT_EQ(sent<farm::ErrorMsg>(say("A", submission("r2", 1)), "A").size(), 1u);
  EXPECT_EQ(m_dispatcher->active_runs(), 0u);
}

TEST_F(DispatcherTest, ShutdownTellsEveryPeerAndFailsActiveRuns) {
  hello_agent("A");
  hello_client("C");
  (void)say("C", submission("r1", 2));
  auto out = m_dispatcher->shutdown("coordinator stopping", m_now);
  EXPECT_EQ(sent<farm::Shutdown>(out, "A").size(), 1u);
  EXPECT_EQ(sent<farm::Shutdown>(out, "C").size(), 1u);
  EXPECT_EQ(m_store->run("r1").value()->state, "failed");
}


// A phaseless result (the codec refuses it; this is the dispatcher's own guard) is
// dropped: the test stays leased and a real result still finishes it.
TEST_F(DispatcherTest, ResultWithoutPhasesIsDropped) {
  hello_agent("A", 1);
  hello_client("C");
  (void)say("C", submission("r1", 1));
  auto leases = sent<farm::Lease>(say("A", farm::WorkRequest{1}), "A");
  ASSERT_EQ(leases.size(), 1u);
  common::TestResult empty;
  empty.index = 0;
  empty.worker = "A/gw0";
  auto out = say("A", farm::TestResultMsg{"r1", leases[0].lease_id, empty});
  EXPECT_TRUE(sent<farm::ResultStream>(out, "C").empty());
  EXPECT_EQ(m_dispatcher->active_runs(), 1u);
  out = say("A", farm::TestResultMsg{"r1", leases[0].lease_id, passed(0)});
  EXPECT_EQ(sent<farm::ResultStream>(out, "C").size(), 1u);
  EXPECT_EQ(sent<farm::RunFinished>(out, "C").size(), 1u);
}

// A graceful stop closes leased tests too: nothing will report them any more.
TEST_F(DispatcherTest, ShutdownGivesLeasedAndQueuedTestsAnError) {
  hello_agent("A", 1);
  hello_client("C");
  (void)say("C", submission("r1", 3));
  auto leased = say("A", farm::WorkRequest{1});
  ASSERT_EQ(sent<farm::Lease>(leased, "A").size(), 1u);
  auto out = m_dispatcher->shutdown("coordinator stopping", m_now);
  auto streamed = sent<farm::ResultStream>(out, "C");
  ASSERT_EQ(streamed.size(), 3u);
  std::set<common::TestIndex> indices;
  for (const auto& stream : streamed) {
    indices.insert(stream.result.index);
    EXPECT_EQ(stream.result.final_status(), common::Status::error);
    EXPECT_EQ(stream.result.phases.at(0).message, "not run: coordinator stopping");
  }
  EXPECT_EQ(indices.size(), 3u);
  auto stored = m_store->results("r1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->size(), 3u);
  // Results reach the client before the Shutdown that ends its connection.
  std::size_t last_result = 0;
  std::size_t shutdown_at = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].peer != "C") continue;
    if (std::holds_alternative<farm::ResultStream>(out[i].message)) last_result = i;
    if (std::holds_alternative<farm::Shutdown>(out[i].message)) shutdown_at = i;
  }
  EXPECT_LT(last_result, shutdown_at);
}

farm::RunSubmit queue_submission(const std::string& run_id, int tests) {
  auto submit = submission(run_id, tests);
  submit.workspace.clear();
  submit.queue = true;
  return submit;
}

TEST_F(DispatcherTest, QueueRunIsServedOnlyByAgentsPinnedToIt) {
  hello_agent("farm");
  hello_client("job1");
  ASSERT_EQ(sent<farm::RunAccepted>(say("job1", queue_submission("q", 4)), "job1").size(), 1u);
  // An ordinary agent has no checkout of a queue run: it gets nothing.
  EXPECT_TRUE(sent<farm::Lease>(say("farm", farm::WorkRequest{4}), "farm").empty());
  hello_pinned("job1-agent", "q");
  auto out = say("job1-agent", farm::WorkRequest{4});
  EXPECT_FALSE(sent<farm::Lease>(out, "job1-agent").empty());
  // And a pinned agent serves no other run.
  hello_client("C");
  (void)say("C", submission("other", 2));
  hello_pinned("job2-agent", "q");
  for (const auto& lease : sent<farm::Lease>(say("job2-agent", farm::WorkRequest{4}), "job2-agent")) {
    EXPECT_EQ(lease.run_id, "q");
  }
}

TEST_F(DispatcherTest, QueueRunOutlivesItsClientsAndSecondJobJoinsIt) {
  hello_client("job1");
  (void)say("job1", queue_submission("q", 3));
  hello_pinned("job1-agent", "q", 1);
  auto out = say("job1-agent", farm::WorkRequest{1});
  ASSERT_EQ(sent<farm::Lease>(out, "job1-agent").size(), 1u);
  pass_all(out, "job1-agent", "q");
  // The first job's client goes away (its CI job died): the run goes on.
  (void)say("job1", farm::Shutdown{"killed"});
  EXPECT_EQ(m_dispatcher->active_runs(), 1u);

  hello_client("job2");
  auto join = say("job2", queue_submission("q", 3));
  ASSERT_EQ(sent<farm::RunAccepted>(join, "job2").size(), 1u);
  EXPECT_TRUE(sent<farm::RunAccepted>(join, "job2")[0].joined);
  // The late job is told what already happened.
  const auto replayed = sent<farm::ResultStream>(join, "job2");
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].result.worker, "job1-agent/gw0");

  (void)say("job1-agent", farm::Shutdown{"killed"});
  hello_pinned("job2-agent", "q", 2);
  out = say("job2-agent", farm::WorkRequest{4});
  EXPECT_EQ(pass_all(out, "job2-agent", "q"), 2);
  out = say("job2-agent", farm::Heartbeat{1});
  EXPECT_EQ(m_dispatcher->active_runs(), 0u);
  auto record = m_store->run("q");
  ASSERT_TRUE(record && record->has_value());
  EXPECT_EQ((*record)->state, "finished");
  EXPECT_EQ((*record)->reported(), 3);
}

TEST_F(DispatcherTest, JoiningAFinishedRunReplaysItAndChecksTheCollection) {
  hello_client("job1");
  (void)say("job1", queue_submission("q", 2));
  hello_pinned("job1-agent", "q");
  pass_all(say("job1-agent", farm::WorkRequest{4}), "job1-agent", "q");
  ASSERT_EQ(m_dispatcher->active_runs(), 0u);

  hello_client("late");
  auto out = say("late", queue_submission("q", 2));
  EXPECT_EQ(sent<farm::ResultStream>(out, "late").size(), 2u);
  ASSERT_EQ(sent<farm::RunFinished>(out, "late").size(), 1u);
  EXPECT_EQ(sent<farm::RunFinished>(out, "late")[0].state, "finished");

  auto other = queue_submission("q", 2);
  other.collection.hash = "different";
  out = say("late", other);
  ASSERT_EQ(sent<farm::ErrorMsg>(out, "late").size(), 1u);
  EXPECT_EQ(sent<farm::ErrorMsg>(out, "late")[0].code, "collection");
}

TEST_F(DispatcherTest, RunWithoutAgentsIsClosedWithNotRunErrors) {
  DispatcherOptions options;
  options.no_agent_timeout_s = 30.0;
  m_dispatcher = std::make_unique<Dispatcher>(*m_store, options);
  hello_client("job1");
  (void)say("job1", queue_submission("q", 3));
  hello_pinned("job1-agent", "q", 1);
  auto out = say("job1-agent", farm::WorkRequest{1});
  pass_all(out, "job1-agent", "q");
  (void)say("job1-agent", farm::Shutdown{"killed"});
  (void)say("job1", farm::Shutdown{"killed"});
  EXPECT_EQ(m_dispatcher->active_runs(), 1u);
  EXPECT_DOUBLE_EQ(m_dispatcher->next_tick(), m_now + 30.0);

  m_now += 29.0;
  (void)m_dispatcher->tick(m_now);
  EXPECT_EQ(m_dispatcher->active_runs(), 1u);
  m_now += 2.0;
  (void)m_dispatcher->tick(m_now);
  EXPECT_EQ(m_dispatcher->active_runs(), 0u);
  auto results = m_store->results("q");
  ASSERT_TRUE(results.has_value());
  ASSERT_EQ(results->size(), 3u);
  int not_run = 0;
  for (const auto& result : *results) {
    if (result.final_status() == common::Status::error) {
      EXPECT_EQ(result.phases[0].message, "not run: no agent left");
      ++not_run;
    }
  }
  EXPECT_EQ(not_run, 2);
  auto record = m_store->run("q");
  ASSERT_TRUE(record && record->has_value());
  EXPECT_EQ((*record)->state, "failed");
  EXPECT_EQ((*record)->reason, "no agent left");
}

TEST_F(DispatcherTest, AgentWithAnotherPytestCannotServeTheRun) {
  farm::Hello hello;
  hello.role = "agent";
  hello.name = "old";
  hello.slots = 1;
  hello.labels = {{"pytest", "6.2.5"}};
  ASSERT_EQ(sent<farm::Welcome>(say("old", hello), "old").size(), 1u);
  hello_client("C");
  auto submit = submission("r", 2);
  submit.pytest_version = "7.2.1";
  auto out = say("C", submit);
  const auto finished = sent<farm::RunFinished>(out, "C");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].state, "failed");
  EXPECT_EQ(finished[0].reason, "no agent can run it: pytest 6.2.5 on agent old#1, the client has pytest 7.2.1");
  EXPECT_EQ(sent<farm::ResultStream>(out, "C").size(), 2u);  // "not run" errors: nothing silently dropped
  EXPECT_TRUE(sent<farm::Lease>(say("old", farm::WorkRequest{1}), "old").empty());

  // Unknown or equal versions are no conflict.
  hello_agent("new");
  hello_client("D");
  submit = submission("r2", 1);
  submit.pytest_version = "6.2.5";
  (void)say("D", submit);
  EXPECT_EQ(m_dispatcher->active_runs(), 1u);
}

TEST_F(DispatcherTest, JoiningWithAnotherPytestIsRefused) {
  hello_client("job1");
  auto first = queue_submission("q", 2);
  first.pytest_version = "7.2.1";
  (void)say("job1", first);
  hello_client("job2");
  auto second = queue_submission("q", 2);
  second.pytest_version = "8.0.0";
  const auto errors = sent<farm::ErrorMsg>(say("job2", second), "job2");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "run q is running with pytest 7.2.1, not 8.0.0");
}

}  // namespace
}  // namespace drover::coordinator
