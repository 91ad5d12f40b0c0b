// The coordinator's HTTP API (cpp-httplib), for humans, CI and the drover CLI:
//   GET  /api/v1/health                    {"status":"ok", ...} (never needs the token)
//   GET  /api/v1/runs                      newest runs first, with counts
//   GET  /api/v1/runs/{id}                 one run: state, tests, counts
//   GET  /api/v1/runs/{id}/junit.xml       the run's merged JUnit report
//   GET  /api/v1/durations                 history as a pytest-split .test_durations object
//   PUT  /api/v1/durations                 merge such an object into it (its values win)
//   PUT  /api/v1/workspaces/{sha256}       upload a workspace bundle (hash checked)
//   GET  /api/v1/workspaces/{sha256}       download it (HEAD: does it exist)
// With a token every route but health needs "Authorization: Bearer TOKEN".
// Errors are JSON {"error": "..."} with 400/401/404/500.
// Failure: start() errors when the address cannot be bound; request handlers
// never throw out of the server. Thread-safety: handlers run on httplib's thread
// pool and only use the thread-safe Store and the status callback.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common/error.h"
#include "coordinator/store.h"

namespace drover::coordinator {

// Live numbers only the loop knows; must be callable from any thread.
struct LiveStatus {
  int agents = 0;
  int clients = 0;
  int active_runs = 0;
};

struct HttpApiOptions {
  std::filesystem::path data;  // workspaces in data/workspaces, reports in data/reports
  std::string token;           // "" = no authentication
  std::function<LiveStatus()> status;
  std::size_t max_upload = std::size_t{2} << 30;  // bytes per workspace bundle
};

class HttpApi {
 public:
  HttpApi(Store& store, HttpApiOptions options);
  ~HttpApi();  // stops the server
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds host:port (port 0: any free port) and serves on a background thread.
  // Returns the bound port.
  [[nodiscard]] common::Result<int> start(const std::string& host, int port);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace drover::coordinator
