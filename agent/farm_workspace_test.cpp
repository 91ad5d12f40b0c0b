#include "agent/farm_workspace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>

#include "common/workspace.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;

// Serves fixed bodies by URL and counts requests: the HttpClient seam.
class FakeHttp final : public common::HttpClient {
 public:
  std::map<std::string, std::string> bodies;
  int gets = 0;
  common::Result<common::HttpResponse> get(const std::string& url) override {
    ++gets;
    auto it = bodies.find(url);
    if (it == bodies.end()) return common::HttpResponse{404, "{\"error\": \"not found\"}"};
    return common::HttpResponse{200, it->second};
  }
  common::Result<common::HttpResponse> head(const std::string& url) override {
    return common::HttpResponse{bodies.contains(url) ? 200L : 404L, ""};
  }
  common::Result<common::HttpResponse> put(const std::string&, std::string_view, const std::string&) override {
    return common::fail(common::ErrorCode::io, "read-only");
  }
};

class WorkspaceCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    m_dir = fs::temp_directory_path() / ("drover-cache-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(m_dir / "src");
    std::ofstream(m_dir / "src" / "test_a.py") << "def test_a():\n    pass\n";
    auto bundle = common::pack_workspace(m_dir / "src");
    ASSERT_TRUE(bundle);
    m_bundle = *bundle;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }
  std::string url(const std::string& hash) const { return "http://coord:8080/api/v1/workspaces/" + hash; }

  fs::path m_dir;
  common::WorkspaceBundle m_bundle;
};

TEST_F(WorkspaceCacheTest, DownloadsOnceAndReusesByHash) {
  FakeHttp http;
  http.bodies[url(m_bundle.hash)] = m_bundle.bytes;
  WorkspaceCache cache(m_dir / "agent", http, "http://coord:8080/");
  auto first = cache.ensure(m_bundle.hash);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, m_dir / "agent" / "workspaces" / m_bundle.hash);
  EXPECT_TRUE(fs::is_regular_file(*first / "test_a.py"));
  auto second = cache.ensure(m_bundle.hash);
  ASSERT_TRUE(second);
  EXPECT_EQ(http.gets, 1);
}

TEST_F(WorkspaceCacheTest, RejectsBytesThatDoNotMatchTheHash) {
  FakeHttp http;
  const std::string wrong(64, 'a');
  http.bodies[url(wrong)] = m_bundle.bytes;
  WorkspaceCache cache(m_dir / "agent", http, "http://coord:8080");
  auto got = cache.ensure(wrong);
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("downloaded with hash"), std::string::npos);
  EXPECT_FALSE(fs::exists(m_dir / "agent" / "workspaces" / wrong));
}

TEST_F(WorkspaceCacheTest, MissingBundleAndBadHashAreErrors) {
  FakeHttp http;
  WorkspaceCache cache(m_dir / "agent", http, "http://coord:8080");
  auto missing = cache.ensure(std::string(64, 'b'));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("HTTP 404"), std::string::npos);
  auto unsafe = cache.ensure("../../etc");
  ASSERT_FALSE(unsafe);
  EXPECT_EQ(http.gets, 1);  // an unsafe name never reaches the network
}

TEST_F(WorkspaceCacheTest, VerifiesAnExistingCheckoutByHash) {
  FakeHttp http;
  WorkspaceCache cache(m_dir / "agent", http, "http://coord:8080");
  auto same = cache.verify_checkout(m_dir / "src", m_bundle.hash);
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ(*same, m_dir / "src");
  auto other = cache.verify_checkout(m_dir / "src", std::string(64, 'c'));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, common::ErrorCode::collection);
  EXPECT_EQ(http.gets, 0);
}

}  // namespace
}  // namespace drover::agent
