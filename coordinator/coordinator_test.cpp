// The coordinator over real ZeroMQ on loopback, with fake agents and clients
// that speak the farm protocol by hand.
#include "coordinator/coordinator.h"

#include <chrono>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/protocol.h"
#include "common/zmq_socket.h"
#include "coordinator/httplib_adapter.h"

namespace drover::coordinator {
namespace {

namespace farm = common::farm;
using Clock = std::chrono::steady_clock;

constexpr int k_beat_ms = 50;

// A hand-driven farm peer: sends messages, waits for one type while keeping
// itself and its companions alive with heartbeats.
class FakePeer {
 public:
  FakePeer(const std::string& endpoint, std::optional<common::CurveClientOptions> curve = std::nullopt)
      : m_dealer(std::move(common::ZmqDealer::connect(endpoint, curve).value())) {}

  void send(const farm::Message& message) { ASSERT_TRUE(m_dealer->send(farm::encode(message)).has_value()); }
  void send_raw(const std::string& frame) { ASSERT_TRUE(m_dealer->send(frame).has_value()); }

  // Receives until a T arrives (other messages are kept in `seen`), beating for
  // `alive` peers meanwhile. Gives up after 10 s.
  template <class T>
  std::optional<T> wait_for(std::vector<FakePeer*> alive = {}) {
    alive.push_back(this);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    auto next_beat = Clock::now();
    while (Clock::now() < deadline) {
      if (Clock::now() >= next_beat) {
        for (FakePeer* peer : alive) peer->send(farm::Heartbeat{});
        next_beat = Clock::now() + std::chrono::milliseconds(k_beat_ms / 2);
      }
      auto frame = m_dealer->receive(k_beat_ms / 4);
      if (!frame) {
        m_error = frame.error().message;
        return std::nullopt;
      }
      if (!frame->has_value()) continue;
      auto envelope = farm::decode(**frame);
      if (!envelope) continue;
      if (auto* wanted = std::get_if<T>(&envelope->message)) return *wanted;
      seen.push_back(envelope->message);
    }
    return std::nullopt;
  }

  farm::Welcome hello(const std::string& role, int slots = 0) {
    farm::Hello hello;
    hello.role = role;
    hello.name = role;
    hello.slots = slots;
    send(hello);
    auto welcome = wait_for<farm::Welcome>();
    EXPECT_TRUE(welcome.has_value()) << m_error;
    return welcome.value_or(farm::Welcome{});
  }

  std::vector<farm::Message> seen;
  std::string m_error;

 private:
  std::unique_ptr<common::ZmqDealer> m_dealer;
};

common::TestResult passed(common::TestIndex index) {
  common::TestResult result;
  result.index = index;
  result.worker = "agent/gw0";
  common::PhaseReport call;
  call.when = common::Phase::call;
  call.outcome = "passed";
  call.status = common::Status::passed;
  call.duration = 0.01;
  result.phases = {call};
  return result;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void start(CoordinatorConfig config = {}) {
    const auto name = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    config.bind = "tcp://127.0.0.1:*";
    config.http = "127.0.0.1:0";
    config.data = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) / ("drover_coord_" + name);
    std::filesystem::remove_all(config.data);
    config.heartbeat_interval_ms = k_beat_ms;
    // Generous, so a loaded machine (parallel ctest) never loses a live fake peer.
    config.heartbeat_lost_after = 20;
    auto coordinator = Coordinator::open(config);
    ASSERT_TRUE(coordinator.has_value()) << coordinator.error().message;
    m_coordinator = std::move(*coordinator);
    m_thread = std::thread([this] { (void)m_coordinator->run(); });
  }

  void TearDown() override {
    if (m_coordinator) m_coordinator->stop();
    if (m_thread.joinable()) m_thread.join();
  }

  farm::RunSubmit submission(int tests) {
    farm::RunSubmit submit;
    submit.run_id = "loop-1";
    submit.workspace = std::string(64, 'f');
    for (int i = 0; i < tests; ++i) {
      submit.collection.items.push_back({"test_" + std::to_string(i) + ".py::t",
                                         "test_" + std::to_string(i) + ".py", "", 1, {}});
    }
    submit.collection.hash = "h";
    submit.speculate = false;
    return submit;
  }

  std::unique_ptr<Coordinator> m_coordinator;
  std::thread m_thread;
};

TEST_F(CoordinatorTest, AgentLeasesResultsAndHeartbeatLossRequeue) {
  start();
  FakePeer client(m_coordinator->endpoint());
  FakePeer first(m_coordinator->endpoint());
  FakePeer second(m_coordinator->endpoint());
  EXPECT_EQ(client.hello("client").heartbeat_interval_ms, k_beat_ms);
  first.hello("agent", 1);
  second.hello("agent", 1);

  client.send(submission(2));
  auto accepted = client.wait_for<farm::RunAccepted>({&first, &second});
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->tests, 2);

  first.send(farm::WorkRequest{1});
  auto lease = first.wait_for<farm::Lease>({&client, &second});
  ASSERT_TRUE(lease.has_value());
  ASSERT_EQ(lease->tests.size(), 1u);
  first.send(farm::TestResultMsg{"loop-1", lease->lease_id, passed(lease->tests[0])});
  auto streamed = client.wait_for<farm::ResultStream>({&first, &second});
  ASSERT_TRUE(streamed.has_value());
  EXPECT_EQ(streamed->result.index, lease->tests[0]);

  // The first agent takes the second test and then falls silent.
  first.send(farm::WorkRequest{1});
  auto doomed = first.wait_for<farm::Lease>({&client, &second});
  ASSERT_TRUE(doomed.has_value());
  second.send(farm::WorkRequest{1});
  auto requeued = second.wait_for<farm::Lease>({&client});  // first no longer beats
  ASSERT_TRUE(requeued.has_value());
  EXPECT_EQ(requeued->tests, doomed->tests);
  second.send(farm::TestResultMsg{"loop-1", requeued->lease_id, passed(requeued->tests[0])});
  auto finished = client.wait_for<farm::RunFinished>({&second});
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->state, "finished");
  EXPECT_EQ(finished->counts.at("passed"), 2);

  // The HTTP API shows the finished run, read back from SQLite.
  httplib::Client http("127.0.0.1", m_coordinator->http_port());
  auto run = http.Get("/api/v1/runs/loop-1");
  ASSERT_TRUE(run);
  ASSERT_EQ(run->status, 200);
  EXPECT_EQ(nlohmann::json::parse(run->body)["state"], "finished");
  auto health = http.Get("/api/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(nlohmann::json::parse(health->body)["agents"], 1);
}

TEST_F(CoordinatorTest, GarbageFramesAreDroppedAndServiceContinues) {
  start();
  FakePeer noisy(m_coordinator->endpoint());
  noisy.send_raw("this is not msgpack");
  noisy.send_raw(std::string("\xdd\xff\xff\xff\xff", 5));
  noisy.send_raw(farm::encode(farm::Heartbeat{}).substr(0, 5));
  // Before Hello, a valid message is answered with an Error, not ignored.
  noisy.send(farm::WorkRequest{3});
  auto error = noisy.wait_for<farm::ErrorMsg>();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "protocol");
  // The same connection can still start over properly.
  EXPECT_FALSE(noisy.hello("agent", 2).peer_id.empty());
}

TEST_F(CoordinatorTest, CurveRefusesUnknownKeys) {
  if (!common::curve_available()) GTEST_SKIP() << "libzmq without CURVE";
  auto server = common::generate_curve_keypair().value();
  auto agent = common::generate_curve_keypair().value();
  auto stranger = common::generate_curve_keypair().value();
  CoordinatorConfig config;
  config.keys = server;
  config.allow = {{agent.public_key, "agent"}};
  start(config);

  FakePeer good(m_coordinator->endpoint(), common::CurveClientOptions{server.public_key, agent});
  EXPECT_FALSE(good.hello("agent", 1).peer_id.empty());

  FakePeer bad(m_coordinator->endpoint(), common::CurveClientOptions{server.public_key, stranger});
  farm::Hello hello;
  hello.role = "agent";
  hello.slots = 1;
  bad.send(hello);
  EXPECT_FALSE(bad.wait_for<farm::Welcome>().has_value());
  EXPECT_NE(bad.m_error.find("refused this CURVE key"), std::string::npos) << bad.m_error;

  // An allowed agent key may not pose as a client.
  FakePeer impostor(m_coordinator->endpoint(), common::CurveClientOptions{server.public_key, agent});
  farm::Hello as_client;
  as_client.role = "client";
  impostor.send(as_client);
  auto refused = impostor.wait_for<farm::ErrorMsg>();
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->message.find("not allowed to connect as client"), std::string::npos);
}

TEST_F(CoordinatorTest, RunsSurviveACoordinatorRestart) {
  start();
  const auto endpoint = m_coordinator->endpoint();
  {
    FakePeer client(endpoint);
    FakePeer agent(endpoint);
    client.hello("client");
    agent.hello("agent", 1);
    client.send(submission(1));
    ASSERT_TRUE(client.wait_for<farm::RunAccepted>({&agent}).has_value());
    agent.send(farm::WorkRequest{1});
    auto lease = agent.wait_for<farm::Lease>({&client});
    ASSERT_TRUE(lease.has_value());
    agent.send(farm::TestResultMsg{"loop-1", lease->lease_id, passed(0)});
    ASSERT_TRUE(client.wait_for<farm::RunFinished>({&agent}).has_value());
  }
  m_coordinator->stop();
  m_thread.join();
  m_coordinator.reset();

  CoordinatorConfig config;
  config.bind = "tcp://127.0.0.1:*";
  config.http = "127.0.0.1:0";
  config.data = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) / "drover_coord_RunsSurviveACoordinatorRestart";
  auto reopened = Coordinator::open(config);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().message;
  m_coordinator = std::move(*reopened);
  m_thread = std::thread([this] { (void)m_coordinator->run(); });
  httplib::Client http("127.0.0.1", m_coordinator->http_port());
  auto run = http.Get("/api/v1/runs/loop-1");
  ASSERT_TRUE(run);
  ASSERT_EQ(run->status, 200);
  EXPECT_EQ(nlohmann::json::parse(run->body)["counts"]["passed"], 1);
  auto durations = http.Get("/api/v1/durations");
  ASSERT_TRUE(durations);
  EXPECT_TRUE(nlohmann::json::parse(durations->body).contains("test_0.py::t"));
}

TEST(CoordinatorOpenTest, BadBindIsAnError) {
  CoordinatorConfig config;
  config.bind = "tcp://not-an-address:x";
  config.http = "";
  config.data = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) / "drover_coord_badbind";
  auto coordinator = Coordinator::open(config);
  ASSERT_FALSE(coordinator.has_value());
  EXPECT_NE(coordinator.error().message.find("cannot bind"), std::string::npos);
}

}  // namespace
}  // namespace drover::coordinator
