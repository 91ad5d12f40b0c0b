#include "agent/farm_workspace.h"

#include <utility>

#include "common/workspace.h"

namespace drover::agent {

namespace fs = std::filesystem;
using common::ErrorCode;

WorkspaceCache::WorkspaceCache(fs::path root, common::HttpClient& http, std::string server)
    : m_root(std::move(root)), m_http(http), m_server(std::move(server)) {}

common::Result<fs::path> WorkspaceCache::ensure(const std::string& hash) {
  if (!common::is_sha256_hex(hash)) return common::fail(ErrorCode::protocol, "bad workspace hash: '" + hash + "'");
  const fs::path dest = m_root / "workspaces" / hash;
  std::error_code ec;
  if (fs::is_directory(dest, ec)) return dest;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return common::fail(ErrorCode::io, "cannot create " + dest.parent_path().string() + ": " + ec.message());
  const std::string url = common::join_url(m_server, "/api/v1/workspaces/" + hash);
  auto response = common::expect_ok("GET", url, m_http.get(url));
  if (!response) return std::unexpected(response.error());
  if (const auto got = common::sha256_hex(response->body); got != hash) {
    return common::fail(ErrorCode::io, "workspace " + hash + " downloaded with hash " + got);
  }
  if (auto unpacked = common::unpack_bundle(response->body, dest); !unpacked) {
    return std::unexpected(unpacked.error());
  }
  return dest;
}

common::Result<fs::path> WorkspaceCache::verify_checkout(const fs::path& checkout, const std::string& hash) {
  const std::string key = checkout.string();
  if (auto it = m_verified.find(key); it != m_verified.end() && it->second == hash) return checkout;
  auto bundle = common::pack_workspace(checkout);
  if (!bundle) return std::unexpected(bundle.error());
  if (bundle->hash != hash) {
    return common::fail(ErrorCode::collection, "checkout " + key + " differs from the client's workspace (hash " +
                                                   bundle->hash.substr(0, 12) + ", expected " +
                                                   hash.substr(0, 12) + ")");
  }
  m_verified[key] = hash;
  return checkout;
}

}  // namespace drover::agent
