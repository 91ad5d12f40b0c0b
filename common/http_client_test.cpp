#include "common/http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace drover::common {
namespace {

// A real HTTP server on a loopback port picked by the OS.
class TestServer {
 public:
  TestServer() {
    m_server.Get("/hello", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("auth=" + req.get_header_value("Authorization"), "text/plain");
    });
    m_server.Put("/blob", [this](const httplib::Request& req, httplib::Response& res) {
      m_last_put = req.body;
      m_last_type = req.get_header_value("Content-Type");
      res.status = 201;
    });
    m_server.Get("/missing", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content("no such run\nsecond line", "text/plain");
    });
    m_server.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content("late", "text/plain");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    // bind_to_any_port already listens: connections queue until the thread accepts them.
  }
  ~TestServer() {
    m_server.stop();
    m_thread.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
  }
  std::string m_last_put;
  std::string m_last_type;

 private:
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
};

TEST(HttpClient, GetSendsBearerToken) {
  TestServer server;
  auto client = make_http_client(HttpOptions{"s3cret"});
  auto response = client->get(server.url("/hello"));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "auth=Bearer s3cret");
  auto anonymous = make_http_client()->get(server.url("/hello"));
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->body, "auth=");
}

TEST(HttpClient, PutUploadsBinaryBody) {
  TestServer server;
  std::string body(300000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  auto response = make_http_client()->put(server.url("/blob"), body, "application/x-tar");
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(server.m_last_put, body);
  EXPECT_EQ(server.m_last_type, "application/x-tar");
}

TEST(HttpClient, HeadReportsStatusWithoutBody) {
  TestServer server;
  auto client = make_http_client();
  auto found = client->head(server.url("/hello"));
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->status, 200);
  EXPECT_TRUE(found->body.empty());
  auto missing = client->head(server.url("/missing"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpClient, NonSuccessStatusBecomesOneLineError) {
  TestServer server;
  const std::string url = server.url("/missing");
  auto result = expect_ok("GET", url, make_http_client()->get(url));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::io);
  EXPECT_EQ(result.error().message, "GET " + url + ": HTTP 404: no such run");
}

TEST(HttpClient, RefusedConnectionIsAnError) {
  // Bind a port, then close it: nothing listens there afterwards.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  HttpOptions options;
  options.connect_timeout = 2;
  options.timeout = 5;
  auto result = make_http_client(options)->get(url);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::io);
  EXPECT_TRUE(result.error().message.starts_with("GET " + url + ": ")) << result.error().message;
  EXPECT_EQ(result.error().message.find('\n'), std::string::npos);
}

TEST(HttpClient, TotalTimeoutBoundsASlowServer) {
  TestServer server;
  const auto start = std::chrono::steady_clock::now();
  HttpOptions options;
  options.timeout = 0.3;
  auto result = make_http_client(options)->get(server.url("/slow"));
  EXPECT_FALSE(result);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
}

TEST(HttpClient, JoinUrl) {
  EXPECT_EQ(join_url("http://h:1/", "/api/v1/durations"), "http://h:1/api/v1/durations");
  EXPECT_EQ(join_url("http://h:1", "api"), "http://h:1/api");
}

}  // namespace
}  // namespace drover::common
