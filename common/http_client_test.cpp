#include "common/http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace drover::common {
namespace {

namespace fs = std::filesystem;

// A fresh self-signed certificate for 127.0.0.1 and its key, as PEM files in a
// temporary folder removed with it.
class TestCertificate {
 public:
  TestCertificate() : m_dir(fs::temp_directory_path() / ("drover-http-tls-" + std::to_string(::getpid()))) {
    fs::create_directories(m_dir);
    EVP_PKEY* key = EVP_RSA_gen(2048);
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key, EVP_sha256());
    FILE* out = std::fopen(cert_path().c_str(), "w");
    PEM_write_X509(out, cert);
    std::fclose(out);
    out = std::fopen(key_path().c_str(), "w");
    PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(out);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;
  ~TestCertificate() { fs::remove_all(m_dir); }
  std::string cert_path() const { return (m_dir / "cert.pem").string(); }
  std::string key_path() const { return (m_dir / "key.pem").string(); }

 private:
  fs::path m_dir;
};

// Trusts `cert` (through OpenSSL's SSL_CERT_FILE) while in scope.
class TrustCertificate {
 public:
  explicit TrustCertificate(const TestCertificate& cert) { ::setenv("SSL_CERT_FILE", cert.cert_path().c_str(), 1); }
  TrustCertificate(const TrustCertificate&) = delete;
  TrustCertificate& operator=(const TrustCertificate&) = delete;
  ~TrustCertificate() { ::unsetenv("SSL_CERT_FILE"); }
};

// A real HTTP server on a loopback port picked by the OS; HTTPS when given a certificate.
class TestServer {
 public:
  explicit TestServer(const TestCertificate* tls = nullptr)
      : m_scheme(tls != nullptr ? "https" : "http"),
        m_owned(tls != nullptr ? std::make_unique<httplib::SSLServer>(tls->cert_path().c_str(), tls->key_path().c_str())
                               : std::make_unique<httplib::Server>()),
        m_server(*m_owned) {
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
    // A byte every 100 ms for 2 s: never silent long enough for a read timeout.
    m_server.Get("/trickle", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/plain", [](std::size_t offset, httplib::DataSink& sink) {
        if (offset >= 20) {
          sink.done();
          return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return sink.write("x", 1);
      });
    });
    m_server.Get(R"(/echo.*)", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.target, "text/plain");
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
    return m_scheme + "://127.0.0.1:" + std::to_string(m_port) + path;
  }
  std::string m_last_put;
  std::string m_last_type;

 private:
  std::string m_scheme;
  std::unique_ptr<httplib::Server> m_owned;
  httplib::Server& m_server;
  int m_port = 0;
  std::thread m_thread;
};

// Binds `fd` to a loopback port the OS picks and returns the port.
int bind_loopback(int fd) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

// A loopback socket listening with `backlog` (the kernel completes connections into it
// unanswered); its port goes to `port`. -1 on failure.
int listen_loopback(int backlog, int& port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  port = bind_loopback(fd);
  if (port <= 0 || listen(fd, backlog) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A GET of `url` with a total timeout of `seconds` ("0.3s" in the message)
// fails as timed out, and sooner than `limit`.
void expect_timeout(const std::string& url, double seconds, const std::string& text,
                    std::chrono::milliseconds limit) {
  const auto start = std::chrono::steady_clock::now();
  HttpOptions options;
  options.timeout = seconds;
  auto result = make_http_client(options)->get(url);
  ASSERT_FALSE(result);
  EXPECT_LT(std::chrono::steady_clock::now() - start, limit);
  EXPECT_EQ(result.error().code, ErrorCode::io);
  EXPECT_EQ(result.error().message, "GET " + url + ": timed out after " + text);
}

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
  const int port = bind_loopback(fd);
  ASSERT_GT(port, 0);
  close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  HttpOptions options;
  options.connect_timeout = 2;
  options.timeout = 5;
  auto result = make_http_client(options)->get(url);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::io);
  EXPECT_EQ(result.error().message, "GET " + url + ": cannot connect to 127.0.0.1:" + std::to_string(port));
}

TEST(HttpClient, TotalTimeoutBoundsASlowServer) {
  TestServer server;
  expect_timeout(server.url("/slow"), 0.3, "0.3s", std::chrono::milliseconds(1400));
}

TEST(HttpClient, TotalTimeoutBoundsATricklingServer) {
  TestServer server;
  expect_timeout(server.url("/trickle"), 0.5, "0.5s", std::chrono::milliseconds(1500));
}

TEST(HttpClient, ServerThatAcceptsAndNeverAnswersIsGivenUpOn) {
  // A hung server or proxy: the connection is accepted (by the kernel's backlog), then
  // nothing. The silence timeout ends the request long before the total one.
  int port = 0;
  const int listener = listen_loopback(4, port);
  ASSERT_GE(listener, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/api/v1/health";
  HttpOptions options;
  options.timeout = 60;
  options.silence_timeout = 0.3;
  const auto start = std::chrono::steady_clock::now();
  auto result = make_http_client(options)->get(url);
  close(listener);
  ASSERT_FALSE(result);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(result.error().code, ErrorCode::io);
  EXPECT_EQ(result.error().message, "GET " + url + ": no answer from 127.0.0.1:" + std::to_string(port) + " for 0.3s");
}

TEST(HttpClient, PathAndQueryAreSentAsGiven) {
  TestServer server;
  auto client = make_http_client();
  auto response = client->get(server.url("/echo/a%2Fb+c?x=1,2#fragment"));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->body, "/echo/a%2Fb+c?x=1,2");
  auto root = client->get(server.url(""));  // no path: "/"
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->status, 404);
}

TEST(HttpClient, BadUrlIsAUsageError) {
  auto client = make_http_client();
  for (const std::string url : {"ftp://h/x", "127.0.0.1:8080/x", "http:///x", "http://h:/x", "http://h:99999/x",
                                "http://h:8o/x", "http://u:p@h/x", "http://[::1/x", "http://h/a b"}) {
    auto result = client->get(url);
    ASSERT_FALSE(result) << url;
    EXPECT_EQ(result.error().code, ErrorCode::usage) << url;
    EXPECT_TRUE(result.error().message.starts_with("GET " + url + ": bad URL '" + url + "': "))
        << result.error().message;
  }
}

TEST(HttpClient, HttpsToAPlainServerIsATlsError) {
  TestServer server;
  std::string url = server.url("/hello");
  url.replace(0, 4, "https");
  HttpOptions options;
  options.timeout = 5;
  auto result = make_http_client(options)->get(url);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::io);
  EXPECT_TRUE(result.error().message.starts_with("GET " + url + ": TLS handshake")) << result.error().message;
}

TEST(HttpClient, HttpsChecksTheServerCertificate) {
  const TestCertificate cert;
  TestServer server(&cert);
  HttpOptions options{"s3cret"};
  options.timeout = 5;
  auto untrusted = make_http_client(options)->get(server.url("/hello"));
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, ErrorCode::io);
  EXPECT_EQ(untrusted.error().message,
            "GET " + server.url("/hello") + ": the TLS certificate of " + server.url("").substr(8) + " did not verify");
  const TrustCertificate trust(cert);
  auto response = make_http_client(options)->get(server.url("/hello"));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->body, "auth=Bearer s3cret");
}

TEST(HttpClient, HttpsRequestIsBoundedByTheTimeout) {
  const TestCertificate cert;
  TestServer server(&cert);
  const TrustCertificate trust(cert);
  expect_timeout(server.url("/slow"), 0.3, "0.3s", std::chrono::milliseconds(1400));
}

TEST(HttpClient, ServerHangingUpOnAnUploadIsAnError) {
  // Accepts one connection and resets it at once; the client is still writing.
  int port = 0;
  const int listener = listen_loopback(1, port);
  ASSERT_GE(listener, 0);
  std::thread server([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    const linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/blob";
  HttpOptions options;
  options.timeout = 10;
  auto result = make_http_client(options)->put(url, std::string(32 << 20, 'x'), "application/x-tar");
  server.join();
  close(listener);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::io);
  // Depending on when the reset lands (before httplib's connect check or during the
  // write), it is a refused connection or a failed send: one line either way.
  const std::string where = "127.0.0.1:" + std::to_string(port);
  const std::string& message = result.error().message;
  EXPECT_TRUE(message.starts_with("PUT " + url + ": connection to " + where + " failed while ") ||
              message.starts_with("PUT " + url + ": cannot connect to " + where))
      << message;
}

TEST(HttpClient, JoinUrl) {
  EXPECT_EQ(join_url("http://h:1/", "/api/v1/durations"), "http://h:1/api/v1/durations");
  EXPECT_EQ(join_url("http://h:1", "api"), "http://h:1/api");
}

}  // namespace
}  // namespace drover::common
