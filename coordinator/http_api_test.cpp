#include "coordinator/http_api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/workspace.h"
#include "coordinator/httplib_adapter.h"

namespace drover::coordinator {
namespace {

namespace farm = common::farm;
using Json = nlohmann::json;

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_data = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) /
             ("drover_http_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(m_data);
    std::filesystem::create_directories(m_data);
    m_store = std::move(Store::open(m_data / "drover.db").value());
    farm::RunSubmit submit;
    submit.collection.items = {{"t.py::a", "t.py", "", 1, {}}, {"t.py::b", "t.py", "", 2, {}}};
    submit.collection.hash = "h";
    RunRecord run;
    run.id = "r1";
    run.created = 100.0;
    run.tests = 2;
    ASSERT_TRUE(m_store->create_run(run, submit).has_value());
    common::TestResult result;
    result.index = 1;
    common::PhaseReport call;
    call.when = common::Phase::call;
    call.outcome = "failed";
    call.status = common::Status::failed;
    call.duration = 0.5;
    call.message = "AssertionError: boom";
    call.longrepr = "def test_b():\n>   assert False\nE   AssertionError: boom";
    result.phases = {call};
    ASSERT_TRUE(m_store->add_results("r1", {result}).has_value());
    ASSERT_TRUE(m_store->record_durations({{"t.py::b", 0.5}}).has_value());
  }

  void start(std::string token = "") {
    HttpApiOptions options;
    options.data = m_data;
    options.token = std::move(token);
    options.status = [] { return LiveStatus{2, 1, 1}; };
    m_api = std::make_unique<HttpApi>(*m_store, options);
    auto port = m_api->start("127.0.0.1", 0);
    ASSERT_TRUE(port.has_value()) << port.error().message;
    m_port = *port;
    m_client = std::make_unique<httplib::Client>("127.0.0.1", m_port);
    m_client->set_connection_timeout(5);
    m_client->set_read_timeout(5);
  }

  std::filesystem::path m_data;
  std::unique_ptr<Store> m_store;
  std::unique_ptr<HttpApi> m_api;
  std::unique_ptr<httplib::Client> m_client;
  int m_port = 0;
};

TEST_F(HttpApiTest, HealthRunsAndDurations) {
  start();
  auto health = m_client->Get("/api/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(Json::parse(health->body)["agents"], 2);

  auto runs = m_client->Get("/api/v1/runs");
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->status, 200);
  auto list = Json::parse(runs->body)["runs"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], "r1");

  auto run = m_client->Get("/api/v1/runs/r1");
  ASSERT_TRUE(run);
  ASSERT_EQ(run->status, 200);
  auto body = Json::parse(run->body);
  EXPECT_EQ(body["state"], "running");
  EXPECT_EQ(body["tests"], 2);
  EXPECT_EQ(body["counts"]["failed"], 1);

  auto missing = m_client->Get("/api/v1/runs/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(Json::parse(missing->body)["error"], "no run nope");
  // An id that is not UTF-8 is still just an unknown run.
  for (const char* path : {"/api/v1/runs/%ff%fe", "/api/v1/runs/%c0/junit.xml"}) {
    auto odd = m_client->Get(path);
    ASSERT_TRUE(odd) << path;
    EXPECT_EQ(odd->status, 404) << path;
  }

  auto durations = m_client->Get("/api/v1/durations");
  ASSERT_TRUE(durations);
  EXPECT_DOUBLE_EQ(Json::parse(durations->body)["t.py::b"].get<double>(), 0.5);

  auto unknown = m_client->Get("/api/v1/nothing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(HttpApiTest, JunitReportOfARun) {
  start();
  ASSERT_TRUE(m_store->finish_run("r1", "finished", "", 101.0).has_value());
  auto junit = m_client->Get("/api/v1/runs/r1/junit.xml");
  ASSERT_TRUE(junit);
  ASSERT_EQ(junit->status, 200) << junit->body;
  EXPECT_NE(junit->body.find("<testsuite"), std::string::npos);
  EXPECT_NE(junit->body.find("AssertionError: boom"), std::string::npos);
  // Served again from the cached file, identically.
  auto again = m_client->Get("/api/v1/runs/r1/junit.xml");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, junit->body);
  EXPECT_EQ(m_client->Get("/api/v1/runs/zzz/junit.xml")->status, 404);
}

TEST_F(HttpApiTest, WorkspacesAreContentAddressed) {
  start();
  const std::string bundle = "pretend this is a tar archive";
  const std::string hash = common::sha256_hex(bundle);
  auto put = m_client->Put(("/api/v1/workspaces/" + hash).c_str(), bundle, "application/x-tar");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 201);
  auto again = m_client->Put(("/api/v1/workspaces/" + hash).c_str(), bundle, "application/x-tar");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  auto get = m_client->Get(("/api/v1/workspaces/" + hash).c_str());
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, bundle);

  const std::string other(64, 'a');
  auto wrong = m_client->Put(("/api/v1/workspaces/" + other).c_str(), bundle, "application/x-tar");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 400);
  EXPECT_EQ(m_client->Get(("/api/v1/workspaces/" + other).c_str())->status, 404);
  EXPECT_EQ(m_client->Get("/api/v1/workspaces/..%2f..%2fetc%2fpasswd")->status, 404);
}

TEST_F(HttpApiTest, PushedDurationsReplaceStoredOnesAndKeepTheRest) {
  ASSERT_TRUE(m_store->record_durations({{"t.py::a", 2.0}}).has_value());
  start();
  auto put = m_client->Put("/api/v1/durations", R"({"t.py::b": 7.25, "u.py::new": 0})", "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 200) << put->body;
  EXPECT_EQ(Json::parse(put->body)["recorded"], 2);
  auto stored = m_store->durations();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored, (common::Durations{{"t.py::a", 2.0}, {"t.py::b", 7.25}, {"u.py::new", 0.0}}));
  auto got = m_client->Get("/api/v1/durations");
  ASSERT_TRUE(got);
  EXPECT_DOUBLE_EQ(Json::parse(got->body)["t.py::b"].get<double>(), 7.25);
}

TEST_F(HttpApiTest, BadDurationsAreRefusedWholeWithOneLine) {
  start();
  const std::pair<std::string, std::string> cases[] = {
      {"{\"t.py::a\": 1,", "durations: invalid JSON"},
      {"", "durations: invalid JSON"},
      {"[1, 2]", "durations: not a JSON object of node id -> seconds"},
      {"3.5", "durations: not a JSON object of node id -> seconds"},
      // The valid first entry must not be stored either: all or nothing.
      {R"({"t.py::a": 1, "t.py::b": "slow"})", "durations: not a JSON object of node id -> seconds"},
      {R"({"t.py::a": 1, "t.py::b": null})", "durations: not a JSON object of node id -> seconds"},
      {R"({"t.py::a": 1, "t.py::b": -0.5})", "durations: negative duration for 't.py::b'"},
  };
  for (const auto& [body, message] : cases) {
    auto put = m_client->Put("/api/v1/durations", body, "application/json");
    ASSERT_TRUE(put) << body;
    EXPECT_EQ(put->status, 400) << body;
    EXPECT_EQ(Json::parse(put->body)["error"], message) << body;
  }
  EXPECT_EQ(m_store->durations().value(), (common::Durations{{"t.py::b", 0.5}}));
}

TEST_F(HttpApiTest, TokenGuardsEverythingButHealth) {
  start("s3cret");
  EXPECT_EQ(m_client->Get("/api/v1/health")->status, 200);
  EXPECT_EQ(m_client->Put("/api/v1/durations", R"({"t.py::a": 1})", "application/json")->status, 401);
  EXPECT_EQ(m_store->durations().value(), (common::Durations{{"t.py::b", 0.5}}));
  EXPECT_EQ(m_client->Get("/api/v1/runs")->status, 401);
  m_client->set_bearer_token_auth("wrong");
  EXPECT_EQ(m_client->Get("/api/v1/runs")->status, 401);
  m_client->set_bearer_token_auth("s3cret");
  EXPECT_EQ(m_client->Get("/api/v1/runs")->status, 200);
  httplib::Client plain("127.0.0.1", m_port);  // sends only the header given
  EXPECT_EQ(plain.Get("/api/v1/runs", {{"Authorization", "bearer s3cret"}})->status, 200);  // scheme: any case
  EXPECT_EQ(plain.Get("/api/v1/runs", {{"Authorization", "Bearer S3CRET"}})->status, 401);
  EXPECT_EQ(plain.Get("/api/v1/runs", {{"Authorization", "Bearer s3cret2"}})->status, 401);
  EXPECT_EQ(m_client->Put("/api/v1/durations", R"({"t.py::a": 1})", "application/json")->status, 200);
  EXPECT_DOUBLE_EQ(m_store->durations().value().at("t.py::a"), 1.0);
}

// A connected TCP socket to the API, or -1.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(HttpApiTest, GarbageOnThePortLeavesItServing) {
  start();
  for (const std::string& garbage : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                                    std::string("NOT HTTP AT ALL\r\n\r\n"),
                                    std::string("GET /api/v1/runs HTTP/1.1\r\nContent-Length: 99999999999\r\n")}) {
    const int fd = connect_to(m_port);
    ASSERT_GE(fd, 0);
    ASSERT_GT(::write(fd, garbage.data(), garbage.size()), 0);
    ::shutdown(fd, SHUT_WR);
    char buffer[256];
    while (::read(fd, buffer, sizeof buffer) > 0) {
    }
    ::close(fd);
  }
  auto health = m_client->Get("/api/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(HttpApiTest, IdleAndHalfSentConnectionsDoNotStarveTheApi) {
  start();
  std::vector<int> held;
  const std::string half = "GET /api/v1/runs HTTP/1.1\r\nHost: x\r\n";  // never finished
  for (int i = 0; i < 24; ++i) {
    const int fd = connect_to(m_port);
    ASSERT_GE(fd, 0);
    if (i % 2 == 0) {
      ASSERT_GT(::write(fd, half.data(), half.size()), 0);
    }
    held.push_back(fd);
  }
  m_client->set_read_timeout(std::chrono::seconds(3));
  auto health = m_client->Get("/api/v1/health");
  for (const int fd : held) ::close(fd);
  ASSERT_TRUE(health) << "the API stopped answering";
  EXPECT_EQ(health->status, 200);
}

TEST_F(HttpApiTest, BusyPortIsAnError) {
  start();
  HttpApi second(*m_store, HttpApiOptions{m_data, "", nullptr});
  auto port = second.start("127.0.0.1", m_port);
  ASSERT_FALSE(port.has_value());
  EXPECT_NE(port.error().message.find("cannot listen"), std::string::npos);
}

}  // namespace
}  // namespace drover::coordinator
