// The agent's cache of workspace bundles: one unpacked tree per hash under
// DIR/workspaces/<sha256>, fetched from the coordinator's HTTP API the first
// time a run needs it and reused by every later run with the same hash.
//
// A bundle whose bytes do not hash to the name it was fetched under is
// rejected, so a cache entry is always exactly the client's tree. A run may
// instead name a checkout the agent already has (an absolute workdir); that
// tree is packed and must hash to the run's workspace (checked once per path).
// Failure: one-line Errors (HTTP, hash mismatch, unpack). Thread-safety: one
// thread (the agent's session thread) uses a cache.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "common/error.h"
#include "common/http_client.h"

namespace drover::agent {

class WorkspaceCache {
 public:
  // `server` is the coordinator's HTTP base URL ("http://host:8080").
  WorkspaceCache(std::filesystem::path root, common::HttpClient& http, std::string server);

  // The directory holding the bundle `hash`, downloading and unpacking it when missing.
  [[nodiscard]] common::Result<std::filesystem::path> ensure(const std::string& hash);
  // `checkout` itself when its files pack to `hash`.
  [[nodiscard]] common::Result<std::filesystem::path> verify_checkout(const std::filesystem::path& checkout,
                                                                      const std::string& hash);

 private:
  std::filesystem::path m_root;
  common::HttpClient& m_http;
  std::string m_server;
  std::map<std::string, std::string> m_verified;  // checkout path -> hash it packed to
};

}  // namespace drover::agent
