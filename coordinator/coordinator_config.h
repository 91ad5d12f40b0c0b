// Settings of `drover coordinator`: where to listen, where to keep state, and
// who may connect. Read from a YAML file (--config); flags override it.
//
//     bind: tcp://0.0.0.0:5555          # ZeroMQ ROUTER for agents and clients
//     http: 0.0.0.0:8080                # HTTP API ("" = none)
//     data: /var/lib/drover             # SQLite database and workspace bundles
//     key_file: coordinator.key         # this coordinator's CURVE pair (drover keygen)
//     agent_keys: [Z85 key or key file, ...]
//     client_keys: [Z85 key or key file, ...]
//     job_keys: [Z85 key or key file, ...]   # CI queue jobs: agent and client in one
//     no_agent_timeout: 300             # seconds a run may have no agent before it is closed
//     http_token: s3cret                # or http_token_file: path
//     heartbeat_interval_ms: 1000
//     heartbeat_lost_after: 5
//
// Relative paths are relative to the config file. Unknown keys and wrong types
// are a one-line usage Error naming the file and key. Thread-safety: plain values.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/zmq_curve.h"

namespace drover::coordinator {

struct CoordinatorConfig {
  std::string bind = "tcp://127.0.0.1:5555";
  std::string http = "127.0.0.1:8080";
  std::filesystem::path data = "drover-data";
  std::optional<common::CurveKeyPair> keys;  // with a secret key: CURVE on
  std::map<std::string, std::string> allow;  // public key -> "agent" | "client" | "job" (both)
  std::string http_token;
  bool insecure = false;
  int heartbeat_interval_ms = 1000;
  int heartbeat_lost_after = 5;
  double no_agent_timeout = 300.0;
};

// Reads `path` over `config` (its values are the defaults).
[[nodiscard]] common::Result<CoordinatorConfig> load_coordinator_config(
    const std::filesystem::path& path, CoordinatorConfig config);

// Refuses a non-loopback bind without CURVE keys unless `insecure`; refuses keys
// without an allow-list entry. Returns the warning to log, "" when none.
[[nodiscard]] common::Result<std::string> check_security(const CoordinatorConfig& config);

// "tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:2", "ipc://..." and
// "inproc://..." are local; everything else (0.0.0.0, *, other hosts) is not.
[[nodiscard]] bool is_local_endpoint(const std::string& endpoint);

// "HOST:PORT" -> (host, port); port 0 picks a free one.
[[nodiscard]] common::Result<std::pair<std::string, int>> parse_host_port(const std::string& text);

}  // namespace drover::coordinator
